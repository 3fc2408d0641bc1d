"""API v1: sites (CRUD, status, production, emergency stop, members, device keys), sensors
(CRUD, readings over time, calibration), alerts (list, acknowledge) and the readings ingest.

Every id a client sends is fetched through `access_site` / `access_sensor` / `access_alert`
with the site action the operation needs (sites.access): another team's ids, and sites the
caller holds no role on, are not found; a role that does not allow the action is refused (403).
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import permissions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import BearerTokenAuthentication, api_caller
from mlmanager.accounts.selectors import access_team, current_team_for, team_members
from mlmanager.core.api import AutoSchema, ErrorSerializer, StrictCharField
from mlmanager.core.errors import ApplicationError, Conflict, NotFound, PayloadTooLarge
from mlmanager.core.filters import filter_queryset, raise_invalid_filter
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser, refuse_nul_in_json
from mlmanager.sites import selectors
from mlmanager.sites.access import SiteAction
from mlmanager.sites.authentication import DeviceKeyAuthentication, is_device_request
from mlmanager.sites.filters import AlertFilter, SensorFilter, SiteFilter
from mlmanager.sites.models import (
    Alert,
    CalibrationRecord,
    DeviceKey,
    ProductionRecord,
    Sensor,
    Site,
    SiteCommand,
    SiteMembership,
)
from mlmanager.sites.services import alerts as alert_services
from mlmanager.sites.services import readings as reading_services
from mlmanager.sites.services import sensors as sensor_services
from mlmanager.sites.services import sites as site_services

# The largest ingest body: 100 000 readings of about 100 bytes in JSON, with room. Read by the
# view itself, as Django's DATA_UPLOAD_MAX_MEMORY_SIZE (5 MiB) guards request.body only.
MAX_INGEST_BODY_BYTES = 32 * 1024 * 1024
READINGS_DEFAULT_RANGE = timedelta(hours=24)
READINGS_DEFAULT_LIMIT = 1000
READINGS_MAX_LIMIT = 10_000
CSV_MEDIA_TYPE = "text/csv"
# What a CSV body starts with, for the schema (other column orders are read too).
CSV_HEADER_PATTERN = "^(sensor|device_id),timestamp,value(,quality)?\r?\n"

# --- fields -------------------------------------------------------------------------------------


def inline_enum(values: list[str]) -> dict[str, Any]:
    """A string enum the schema keeps inline: drf-spectacular turns every enum property into a
    component named after the field, and "StatusEnum" / "RoleEnum" are the jobs' and the team
    memberships' already (a collision it warns about). Inside allOf it stays where it is (with
    a description beside it: an allOf alone is unwrapped again)."""
    return {"allOf": [{"type": "string", "enum": values}], "description": ", ".join(values)}


@extend_schema_field(inline_enum(Site.Status.values))
class SiteStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Site.Status.choices, **kwargs)


@extend_schema_field({"type": "string", "enum": Sensor.Type.values})
class SensorTypeField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Sensor.Type.choices, **kwargs)


@extend_schema_field({"type": "string", "enum": Alert.Severity.values})
class SeverityField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Alert.Severity.choices, **kwargs)


@extend_schema_field(inline_enum(SiteMembership.Role.values))
class SiteRoleField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=SiteMembership.Role.choices, **kwargs)


@extend_schema_field({"type": "number", "format": "double", "not": {"enum": [0]}})
class NonZeroFloatField(serializers.FloatField):
    """A finite number other than 0 (a calibration multiplier; the service refuses 0 too)."""

    def to_internal_value(self, data: Any) -> float:
        value = FiniteFloatField().to_internal_value(data)
        if value == 0:
            raise serializers.ValidationError(_("The calibration multiplier cannot be 0."))
        return value


class StrictBooleanField(serializers.BooleanField):
    """true or false as JSON has them: DRF's BooleanField also takes 0, 1, "yes", "on"..."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class FiniteFloatField(serializers.FloatField):
    """A number that is finite: "nan" or "inf" as text would pass DRF's FloatField."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return float(value)


def _duplicate_is_conflict(error: DjangoValidationError) -> None:
    """A name or device id already taken is 409 `already_exists`, as when a concurrent request
    takes it first (services' _clean_and_save): the request was valid, the state refused it."""
    errors = getattr(error, "error_dict", {}).values()
    if any(item.code in ("unique", "unique_together") for items in errors for item in items):
        raise Conflict(error.messages[0], code="already_exists") from None


# --- output serializers -------------------------------------------------------------------------


class SiteOutputSerializer(serializers.ModelSerializer[Site]):
    status = SiteStatusField(read_only=True)
    producing = serializers.BooleanField(
        read_only=True, help_text="Whether production runs (start_production, emergency_stop)."
    )

    class Meta:
        model = Site
        fields = [
            "id",
            "team",
            "name",
            "location",
            "latitude",
            "longitude",
            "capacity",
            "capacity_unit",
            "status",
            "description",
            "producing",
            "created_at",
        ]


class SensorOutputSerializer(serializers.ModelSerializer[Sensor]):
    sensor_type = SensorTypeField(read_only=True)

    class Meta:
        model = Sensor
        fields = [
            "id",
            "site",
            "name",
            "sensor_type",
            "unit",
            "device_id",
            "location",
            "is_active",
            "sampling_interval_s",
            "warning_min",
            "warning_max",
            "critical_min",
            "critical_max",
            "calibration_offset",
            "calibration_multiplier",
            "metadata",
        ]


class AlertOutputSerializer(serializers.ModelSerializer[Alert]):
    severity = SeverityField(read_only=True)
    acknowledged = serializers.BooleanField(read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "site",
            "sensor",
            "severity",
            "title",
            "message",
            "created_at",
            "acknowledged",
            "acknowledged_by",
            "acknowledged_at",
        ]


class MemberOutputSerializer(serializers.ModelSerializer[SiteMembership]):
    email = serializers.EmailField(source="user.email", read_only=True)
    role = SiteRoleField(read_only=True)

    class Meta:
        model = SiteMembership
        fields = ["user", "email", "role", "created_at"]


class DeviceKeyOutputSerializer(serializers.ModelSerializer[DeviceKey]):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = DeviceKey
        fields = [
            "id",
            "site",
            "name",
            "prefix",
            "is_active",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]


class ProductionOutputSerializer(serializers.ModelSerializer[ProductionRecord]):
    efficiency = serializers.SerializerMethodField()

    class Meta:
        model = ProductionRecord
        fields = ["date", "actual", "efficiency", "recorded_by", "updated_at"]

    def get_efficiency(self, record: ProductionRecord) -> float | None:
        """actual / the site's capacity per day; null without a capacity."""
        capacity = record.site.capacity
        return record.actual / capacity if capacity else None


class CommandOutputSerializer(serializers.ModelSerializer[SiteCommand]):
    class Meta:
        model = SiteCommand
        fields = [
            "id",
            "site",
            "command",
            "payload",
            "topic",
            "sent_by",
            "created_at",
            "published_at",
            "error",
        ]


class CalibrationOutputSerializer(serializers.ModelSerializer[CalibrationRecord]):
    class Meta:
        model = CalibrationRecord
        fields = [
            "id",
            "sensor",
            "calibrated_by",
            "reference_value",
            "previous_reading",
            "previous_offset",
            "calibration_offset",
            "calibration_multiplier",
            "created_at",
        ]


class IngestAnswerSerializer(serializers.Serializer[Any]):
    class RejectedSerializer(serializers.Serializer[Any]):
        index = serializers.IntegerField(help_text="The reading's position in the request (0..).")
        code = serializers.CharField(help_text="e.g. unknown_sensor, not_finite, invalid_value.")
        message = serializers.CharField()

    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = RejectedSerializer(many=True)


# --- sites --------------------------------------------------------------------------------------


class SiteInputSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=120)
    location = StrictCharField(required=False, allow_blank=True, max_length=200)
    latitude = FiniteFloatField(required=False, allow_null=True, min_value=-90, max_value=90)
    longitude = FiniteFloatField(required=False, allow_null=True, min_value=-180, max_value=180)
    capacity = FiniteFloatField(required=False, allow_null=True, min_value=0)
    capacity_unit = StrictCharField(required=False, allow_blank=True, max_length=30)
    status = SiteStatusField(required=False)
    description = StrictCharField(required=False, allow_blank=True)


class SiteListCreateApi(APIView):
    parser_classes = [JSONParser]
    filterset_class = SiteFilter

    class InputSerializer(SiteInputSerializer):
        team = serializers.IntegerField(
            required=False, min_value=1, help_text="The team's id (default: the current team)."
        )

    @extend_schema(responses=SiteOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        sites = filter_queryset(
            request=request,
            queryset=selectors.sites_for_caller(api_caller(request)).order_by("name", "pk"),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request, view=self, queryset=sites, serializer_class=SiteOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: SiteOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        caller = api_caller(request)
        team_id = data.pop("team", None)
        team = (
            access_team(caller=caller, id=team_id) if team_id else current_team_for(caller=caller)
        )
        if team is None:
            raise NotFound()
        try:
            site = site_services.site_create(caller=caller, team=team, **data)
        except DjangoValidationError as error:
            _duplicate_is_conflict(error)
            raise
        return Response(SiteOutputSerializer(site).data, status=status.HTTP_201_CREATED)


class SiteDetailApi(APIView):
    parser_classes = [JSONParser]

    class UpdateSerializer(SiteInputSerializer):
        name = StrictCharField(required=False, max_length=120)

    @extend_schema(responses=SiteOutputSerializer)
    def get(self, request: Request, site_id: int) -> Response:
        site = selectors.access_site(caller=api_caller(request), id=site_id)
        return Response(SiteOutputSerializer(site).data)

    @extend_schema(request=UpdateSerializer, responses=SiteOutputSerializer)
    def patch(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        serializer = self.UpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            site = site_services.site_update(caller=caller, site=site, **serializer.validated_data)
        except DjangoValidationError as error:
            _duplicate_is_conflict(error)
            raise
        return Response(SiteOutputSerializer(site).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        site_services.site_delete(caller=caller, site=site)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SiteStatusApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        class LatestReadingSerializer(serializers.Serializer[Any]):
            value = serializers.FloatField(allow_null=True)
            unit = serializers.CharField()
            timestamp = serializers.DateTimeField(allow_null=True)
            quality = serializers.CharField(allow_blank=True, help_text="good, uncertain or bad")
            state = serializers.ChoiceField(choices=["ok", "warning", "critical", "stale"])

        site = SiteOutputSerializer()
        latest_readings = serializers.DictField(
            child=LatestReadingSerializer(), help_text="By sensor id (as text), active sensors."
        )
        open_alerts = AlertOutputSerializer(many=True)
        efficiency = serializers.FloatField(
            allow_null=True, help_text="Today's production / capacity."
        )
        last_updated = serializers.DateTimeField(
            allow_null=True, help_text="The newest reading's time."
        )

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, site_id: int) -> Response:
        site = selectors.access_site(caller=api_caller(request), id=site_id)
        state = selectors.site_status(site=site)
        data = {
            "site": site,
            "latest_readings": {
                str(sensor.pk): {
                    "value": sensor.last_value,
                    "unit": sensor.unit,
                    "timestamp": sensor.last_timestamp,
                    "quality": sensor.last_quality,
                    "state": state.states[sensor.pk],
                }
                for sensor in state.sensors
            },
            "open_alerts": state.open_alerts,
            "efficiency": state.efficiency,
            "last_updated": state.last_updated,
        }
        return Response(self.OutputSerializer(data).data)


class SiteStartProductionApi(APIView):
    @extend_schema(request=None, responses=SiteOutputSerializer)
    def post(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.OPERATE)
        site = site_services.site_start_production(caller=caller, site=site)
        return Response(SiteOutputSerializer(site).data)


class SiteEmergencyStopApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        reason = StrictCharField(required=False, allow_blank=True, max_length=500)

    @extend_schema(request=InputSerializer, responses=CommandOutputSerializer)
    def post(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.OPERATE)
        # No body is no reason; a body that is not an object is refused.
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        command = site_services.site_emergency_stop(
            caller=caller, site=site, reason=serializer.validated_data.get("reason", "")
        )
        # Published after the commit: read the row again for published_at / error.
        command = selectors.site_commands(site=site).get(pk=command.pk)
        return Response(CommandOutputSerializer(command).data)


class SiteMemberListApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        user = serializers.IntegerField(min_value=1, help_text="A member of the site's team.")
        role = SiteRoleField()

    @extend_schema(responses=MemberOutputSerializer(many=True))
    def get(self, request: Request, site_id: int) -> Response:
        site = selectors.access_site(caller=api_caller(request), id=site_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.site_members(site=site),
            serializer_class=MemberOutputSerializer,
        )

    @extend_schema(
        request=InputSerializer,
        responses=MemberOutputSerializer,
        description="Give a member of the team a role on the site, or change it.",
    )
    def post(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if (
            not team_members(team=site.team)
            .filter(user_id=serializer.validated_data["user"])
            .exists()
        ):
            # Users outside the team are not found, as other teams' ids are.
            raise NotFound(
                _("The site's team has no member with this id."), code="not_a_team_member"
            )
        membership = site_services.site_member_set(
            caller=caller,
            site=site,
            user_id=serializer.validated_data["user"],
            role=serializer.validated_data["role"],
        )
        membership = selectors.site_members(site=site).get(pk=membership.pk)
        return Response(MemberOutputSerializer(membership).data)


class SiteMemberDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, site_id: int, user_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        if not selectors.site_members(site=site).filter(user_id=user_id).exists():
            raise NotFound()
        site_services.site_member_remove(caller=caller, site=site, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SiteDeviceKeyListApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        name = StrictCharField(required=False, allow_blank=True, max_length=100)

    class CreatedSerializer(DeviceKeyOutputSerializer):
        key = serializers.CharField(
            read_only=True, help_text="The raw key: shown this once, only its hash is kept."
        )

        class Meta(DeviceKeyOutputSerializer.Meta):
            fields = [*DeviceKeyOutputSerializer.Meta.fields, "key"]

    @extend_schema(responses=DeviceKeyOutputSerializer(many=True))
    def get(self, request: Request, site_id: int) -> Response:
        site = selectors.access_site(
            caller=api_caller(request), id=site_id, action=SiteAction.MANAGE
        )
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.site_device_keys(site=site),
            serializer_class=DeviceKeyOutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: CreatedSerializer})
    def post(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, raw = site_services.device_key_create(
            caller=caller, site=site, name=serializer.validated_data.get("name", "")
        )
        key.key = raw  # type: ignore[attr-defined]
        return Response(self.CreatedSerializer(key).data, status=status.HTTP_201_CREATED)


class SiteDeviceKeyDetailApi(APIView):
    @extend_schema(responses={204: None}, description="Revoke the key (it stays listed).")
    def delete(self, request: Request, site_id: int, key_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        key = selectors.site_device_keys(site=site).filter(pk=key_id).first()
        if key is None:
            raise NotFound()
        site_services.device_key_revoke(caller=caller, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SiteProductionListApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        date = serializers.DateField()
        actual = FiniteFloatField(min_value=0, help_text="What the site produced that day.")

    @extend_schema(responses=ProductionOutputSerializer(many=True))
    def get(self, request: Request, site_id: int) -> Response:
        site = selectors.access_site(caller=api_caller(request), id=site_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.site_production(site=site).select_related("site"),
            serializer_class=ProductionOutputSerializer,
        )

    @extend_schema(
        request=InputSerializer,
        responses=ProductionOutputSerializer,
        description="Record what the site produced on a day (again: correct it).",
    )
    def post(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.OPERATE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = site_services.production_record(
            caller=caller,
            site=site,
            on=serializer.validated_data["date"],
            actual=serializer.validated_data["actual"],
        )
        record.site = site
        return Response(ProductionOutputSerializer(record).data)


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
            _duplicate_is_conflict(error)
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
            _duplicate_is_conflict(error)
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


# --- alerts -------------------------------------------------------------------------------------


class AlertListApi(APIView):
    filterset_class = AlertFilter

    @extend_schema(responses=AlertOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        alerts = filter_queryset(
            request=request,
            queryset=selectors.alerts_for_caller(api_caller(request)).order_by(
                "-created_at", "-id"
            ),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request, view=self, queryset=alerts, serializer_class=AlertOutputSerializer
        )


class AlertAcknowledgeApi(APIView):
    @extend_schema(request=None, responses=AlertOutputSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        caller = api_caller(request)
        alert = selectors.access_alert(caller=caller, id=alert_id, action=SiteAction.OPERATE)
        alert = alert_services.alert_acknowledge(caller=caller, alert=alert)
        return Response(AlertOutputSerializer(alert).data)


# --- the readings ingest ------------------------------------------------------------------------


class PersonOrDevice(permissions.BasePermission):
    """A signed-in person or token, or a device key (the one endpoint that takes it)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated) or is_device_request(request)


# Each reading as the ingest reads it. No type or required property is stated: a reading that
# is not what it should be is rejected on its own (with its index and a reason) while the
# request is answered 200 with the others, so the schema cannot refuse it either.
READING_SCHEMA = {
    "description": "A reading: {sensor | device_id, timestamp, value, quality?}.",
    "properties": {
        "sensor": {"description": "The sensor's id (an integer), or:"},
        "device_id": {"description": "the sensor's device id (text)."},
        "timestamp": {"description": "ISO 8601 (without an offset: UTC) or seconds since 1970."},
        "value": {"description": "The raw value, a number."},
        "quality": {"description": "good (default), uncertain or bad."},
    },
    "example": {"sensor": 1, "timestamp": "2026-12-07T10:00:00Z", "value": 21.5},
}


@extend_schema_field(
    {
        "type": "array",
        "items": READING_SCHEMA,
        "maxItems": reading_services.MAX_READINGS_PER_REQUEST,
    }
)
class ReadingsField(serializers.ListField):
    pass


class IngestSchema(AutoSchema):
    """The ingest's body is required (JSON or CSV); drf-spectacular leaves a body documented
    per media type optional."""

    def _get_request_body(self, direction: Any = "request") -> Any:
        body = super()._get_request_body(direction)
        if body is not None:
            body["required"] = True
        return body


class ReadingIngestApi(APIView):
    """Readings from devices, scripts and gateways: JSON, or CSV with a header row."""

    authentication_classes = [
        DeviceKeyAuthentication,
        BearerTokenAuthentication,
        SessionAuthentication,
    ]
    permission_classes = [PersonOrDevice]
    # Not used: post reads the body itself, past DATA_UPLOAD_MAX_MEMORY_SIZE (_read_body).
    parser_classes = [JSONParser]

    schema = IngestSchema()

    class InputSerializer(serializers.Serializer[Any]):
        """Documents the JSON body (the view reads it itself)."""

        batch_id = StrictCharField(
            required=False, max_length=200, help_text="Sending it again changes nothing."
        )
        readings = ReadingsField()

    @extend_schema(
        request={
            "application/json": InputSerializer,
            CSV_MEDIA_TYPE: {
                "type": "string",
                "pattern": CSV_HEADER_PATTERN,
                "description": "A header row naming sensor or device_id, timestamp, value and "
                "optionally quality, then a reading per row; the batch id in ?batch_id=.",
            },
        },
        parameters=[
            OpenApiParameter(
                "batch_id",
                {"type": "string", "maxLength": 200},
                required=False,
                description="The batch id of a CSV body (of a JSON body without its own).",
            )
        ],
        responses={
            200: IngestAnswerSerializer,
            413: OpenApiResponse(
                ErrorSerializer, description="More than 100 000 readings, or a body over 32 MiB."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        caller = api_caller(request)
        body = _read_body(request)
        query_batch_id = request.query_params.get("batch_id") or None
        if query_batch_id is not None and len(query_batch_id) > 200:
            raise ApplicationError(
                _("batch_id is text of 1 to 200 characters."), code="invalid_batch_id"
            )
        if request.content_type.split(";")[0].strip().lower() == CSV_MEDIA_TYPE:
            readings = _csv_readings(body)
            batch_id = query_batch_id
        else:
            readings, batch_id = _json_readings(request, body, query_batch_id)
        answer = reading_services.readings_ingest(
            caller=caller, readings=readings, batch_id=batch_id
        )
        return Response(IngestAnswerSerializer(answer).data)


def _read_body(request: Request) -> bytes:
    """The body, up to MAX_INGEST_BODY_BYTES (413 past it, before reading it when the client
    says its length)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    too_large = PayloadTooLarge(
        _("The request body is larger than %(limit)s MiB; send the readings in several requests.")
        % {"limit": MAX_INGEST_BODY_BYTES // (1024 * 1024)}
    )
    if length > MAX_INGEST_BODY_BYTES:
        raise too_large
    body: bytes = request._request.read(MAX_INGEST_BODY_BYTES + 1)
    if len(body) > MAX_INGEST_BODY_BYTES:
        raise too_large
    return body


def _json_readings(
    request: Request, body: bytes, query_batch_id: str | None
) -> tuple[list[Any], Any]:
    media_type = request.content_type.split(";")[0].strip().lower()
    if media_type not in ("application/json", ""):
        raise UnsupportedMediaType(media_type)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        # The standard parser reads the NaN and Infinity some devices send; the ingest then
        # rejects those readings one by one instead of the whole request.
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            raise ApplicationError(_("The body is not valid JSON."), code="invalid_json") from None
    refuse_nul_in_json(body, parsed)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("readings"), list):
        raise ApplicationError(
            _('The body is a JSON object with a "readings" list.'), code="invalid"
        )
    if "batch_id" not in parsed:
        return parsed["readings"], query_batch_id
    batch_id = parsed["batch_id"]
    if not (isinstance(batch_id, str) and 0 < len(batch_id) <= 200):  # null too
        raise ApplicationError(
            _("batch_id is text of 1 to 200 characters."), code="invalid_batch_id"
        )
    return parsed["readings"], batch_id


CSV_COLUMNS = ("sensor", "device_id", "timestamp", "value", "quality")


def _csv_readings(body: bytes) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApplicationError(_("The CSV body is not UTF-8 text."), code="invalid_csv") from None
    if "\x00" in text:
        raise ApplicationError(_("The CSV body contains a NUL character."), code="invalid_text")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        if not {"timestamp", "value"} <= set(header) or not {"sensor", "device_id"} & set(header):
            raise ApplicationError(
                _(
                    "The first CSV row names the columns: sensor or device_id, timestamp, value "
                    "and optionally quality."
                ),
                code="invalid_csv",
            )
        positions = {name: header.index(name) for name in CSV_COLUMNS if name in header}
        readings = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # a blank line, as at the end of a file
            readings.append(
                {
                    name: (row[position].strip() or None) if position < len(row) else None
                    for name, position in positions.items()
                }
            )
    except csv.Error as error:
        raise ApplicationError(
            _("The CSV body cannot be read: %(error)s") % {"error": error}, code="invalid_csv"
        ) from None
    return readings
