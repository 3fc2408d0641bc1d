"""Sensors: CRUD, readings over time, calibration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.api import StrictCharField
from mlmanager.core.filters import filter_queryset, raise_invalid_filter
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.sites import selectors
from mlmanager.sites.access import SiteAction
from mlmanager.sites.api.serializers import (
    CalibrationOutputSerializer,
    FiniteFloatField,
    NonZeroFloatField,
    SensorOutputSerializer,
    SensorTypeField,
    StrictBooleanField,
    duplicate_is_conflict,
)
from mlmanager.sites.filters import SensorFilter
from mlmanager.sites.services import sensors as sensor_services

READINGS_DEFAULT_RANGE = timedelta(hours=24)
READINGS_DEFAULT_LIMIT = 1000
READINGS_MAX_LIMIT = 10_000

# --- sensors ------------------------------------------------------------------------------------


class SensorFieldsSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=120)
    sensor_type = SensorTypeField(required=False)
    unit = StrictCharField(required=False, allow_blank=True, max_length=20)
    device_id = StrictCharField(max_length=120)
    location = StrictCharField(required=False, allow_blank=True, max_length=200)
    is_active = StrictBooleanField(required=False)
    sampling_interval_s = serializers.IntegerField(
        required=False, min_value=1, max_value=2_147_483_647
    )
    warning_min = FiniteFloatField(required=False, allow_null=True)
    warning_max = FiniteFloatField(required=False, allow_null=True)
    critical_min = FiniteFloatField(required=False, allow_null=True)
    critical_max = FiniteFloatField(required=False, allow_null=True)
    calibration_offset = FiniteFloatField(required=False)
    calibration_multiplier = NonZeroFloatField(required=False)
    metadata = serializers.DictField(required=False)


class SensorListCreateApi(APIView):
    parser_classes = [JSONParser]
    filterset_class = SensorFilter

    class InputSerializer(SensorFieldsSerializer):
        site = serializers.IntegerField(min_value=1)

    @extend_schema(responses=SensorOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        sensors = filter_queryset(
            request=request,
            queryset=selectors.sensors_for_caller(api_caller(request)).order_by(
                "site_id", "name", "pk"
            ),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request, view=self, queryset=sensors, serializer_class=SensorOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: SensorOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=data.pop("site"), action=SiteAction.MANAGE)
        try:
            sensor = sensor_services.sensor_create(caller=caller, site=site, **data)
        except DjangoValidationError as error:
            duplicate_is_conflict(error)
            raise
        return Response(SensorOutputSerializer(sensor).data, status=status.HTTP_201_CREATED)


class SensorDetailApi(APIView):
    parser_classes = [JSONParser]

    class UpdateSerializer(SensorFieldsSerializer):
        name = StrictCharField(required=False, max_length=120)
        device_id = StrictCharField(required=False, max_length=120)

    @extend_schema(responses=SensorOutputSerializer)
    def get(self, request: Request, sensor_id: int) -> Response:
        sensor = selectors.access_sensor(caller=api_caller(request), id=sensor_id)
        return Response(SensorOutputSerializer(sensor).data)

    @extend_schema(
        request=UpdateSerializer,
        responses=SensorOutputSerializer,
        description="Thresholds and calibration alone need the technician's role (or the "
        "site's admin); any other field the site's admin.",
    )
    def patch(self, request: Request, sensor_id: int) -> Response:
        caller = api_caller(request)
        # Found (404) before the body is read, so another team's ids reveal nothing.
        selectors.access_sensor(caller=caller, id=sensor_id)
        serializer = self.UpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        action = (
            SiteAction.MANAGE
            if sensor_services.sensor_update_needs_manage(list(fields))
            else SiteAction.MAINTAIN
        )
        sensor = selectors.access_sensor(caller=caller, id=sensor_id, action=action)
        try:
            sensor = sensor_services.sensor_update(caller=caller, sensor=sensor, **fields)
        except DjangoValidationError as error:
            duplicate_is_conflict(error)
            raise
        return Response(SensorOutputSerializer(sensor).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, sensor_id: int) -> Response:
        caller = api_caller(request)
        sensor = selectors.access_sensor(caller=caller, id=sensor_id, action=SiteAction.MANAGE)
        sensor_services.sensor_delete(caller=caller, sensor=sensor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SensorReadingsApi(APIView):
    class QuerySerializer(serializers.Serializer[Any]):
        start = serializers.DateTimeField(
            required=False, help_text="ISO 8601; default: 24 hours before `end`."
        )
        end = serializers.DateTimeField(
            required=False, help_text="ISO 8601, exclusive; default: now."
        )
        resolution = serializers.ChoiceField(
            choices=list(selectors.RESOLUTIONS),
            required=False,
            help_text="raw readings, or per-minute (1m) / per-hour (1h) averages.",
        )
        limit = serializers.IntegerField(
            required=False, min_value=1, max_value=READINGS_MAX_LIMIT, help_text="Default 1000."
        )

    class OutputSerializer(serializers.Serializer[Any]):
        class PointSerializer(serializers.Serializer[Any]):
            sensor = serializers.IntegerField()
            timestamp = serializers.DateTimeField()
            value = serializers.FloatField(help_text="Calibrated (raw); the average (1m, 1h).")
            raw_value = serializers.FloatField(required=False, help_text="raw only.")
            quality = serializers.CharField(required=False, help_text="raw only.")
            minimum = serializers.FloatField(required=False, help_text="1m and 1h only.")
            maximum = serializers.FloatField(required=False, help_text="1m and 1h only.")
            count = serializers.IntegerField(required=False, help_text="1m and 1h only.")

        class StatisticsSerializer(serializers.Serializer[Any]):
            class LatestSerializer(serializers.Serializer[Any]):
                timestamp = serializers.DateTimeField()
                value = serializers.FloatField()
                quality = serializers.CharField()

            count = serializers.IntegerField()
            average = serializers.FloatField(allow_null=True)
            minimum = serializers.FloatField(allow_null=True)
            maximum = serializers.FloatField(allow_null=True)
            latest = LatestSerializer(allow_null=True)

        class TimeRangeSerializer(serializers.Serializer[Any]):
            start = serializers.DateTimeField()
            end = serializers.DateTimeField()
            resolution = serializers.CharField()

        readings = PointSerializer(many=True)
        statistics = StatisticsSerializer()
        time_range = TimeRangeSerializer()

    @extend_schema(parameters=[QuerySerializer], responses=OutputSerializer)
    def get(self, request: Request, sensor_id: int) -> Response:
        sensor = selectors.access_sensor(caller=api_caller(request), id=sensor_id)
        query = self.QuerySerializer(data=request.query_params)
        # DRF reads `?start=` as "not sent"; the filters refuse it (core.filters), so here too.
        empty = [
            name
            for name in ("start", "end", "resolution", "limit")
            if request.query_params.get(name) == ""
        ]
        if empty:
            raise_invalid_filter({name: [_("This parameter may not be empty.")] for name in empty})
        if not query.is_valid():
            raise_invalid_filter(query.errors)
        start, end = _time_range(query.validated_data)
        resolution = query.validated_data.get("resolution", "raw")
        points = selectors.sensor_series(
            sensor=sensor,
            start=start,
            end=end,
            resolution=resolution,
            limit=query.validated_data.get("limit", READINGS_DEFAULT_LIMIT),
        )
        data = {
            "readings": points,
            "statistics": selectors.sensor_statistics(sensor=sensor, start=start, end=end),
            "time_range": {"start": start, "end": end, "resolution": resolution},
        }
        return Response(self.OutputSerializer(data).data)


def _time_range(query: dict[str, Any]) -> tuple[datetime, datetime]:
    """[start, end): `end` defaults to now and `start` to 24 hours before `end`."""
    end: datetime = query.get("end") or timezone.now()
    start: datetime | None = query.get("start")
    if start is None:
        try:
            start = end - READINGS_DEFAULT_RANGE
        except OverflowError:  # an end in the first day of year 1
            start = datetime.min.replace(tzinfo=UTC)
    if start >= end:
        raise_invalid_filter({"start": [_("start must be before end.")]})
    return start, end


class SensorCalibrateApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        reference_value = FiniteFloatField(
            help_text="What the sensor should read now (its latest raw reading's true value)."
        )

    class OutputSerializer(serializers.Serializer[Any]):
        calibration_offset = serializers.FloatField()
        reference_value = serializers.FloatField()
        previous_reading = serializers.FloatField(help_text="The latest raw reading.")

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request: Request, sensor_id: int) -> Response:
        caller = api_caller(request)
        sensor = selectors.access_sensor(caller=caller, id=sensor_id, action=SiteAction.MAINTAIN)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = sensor_services.sensor_calibrate(
            caller=caller,
            sensor=sensor,
            reference_value=serializer.validated_data["reference_value"],
        )
        return Response(self.OutputSerializer(record).data)


class SensorCalibrationListApi(APIView):
    @extend_schema(responses=CalibrationOutputSerializer(many=True))
    def get(self, request: Request, sensor_id: int) -> Response:
        sensor = selectors.access_sensor(caller=api_caller(request), id=sensor_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.sensor_calibrations(sensor=sensor),
            serializer_class=CalibrationOutputSerializer,
        )
