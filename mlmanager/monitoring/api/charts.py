"""Charts (CRUD and their data over a range) and dashboards (CRUD).

A chart of a site's sensors follows the site's roles (its technicians and admins create and
change it, its viewers see it); a chart of no site (models' signals) the team's roles.
Dashboards likewise by their own site.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.accounts.selectors import team_named_or_current
from mlmanager.core.api import IdField, StrictCharField
from mlmanager.core.filters import filter_queryset, raise_invalid_filter
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.monitoring import selectors
from mlmanager.monitoring.access import MonitorAction
from mlmanager.monitoring.api.serializers import (
    ChartDataSerializer,
    ChartOutputSerializer,
    DashboardOutputSerializer,
    LayoutField,
    SeriesField,
)
from mlmanager.monitoring.chart_data import MAX_POINTS, chart_data
from mlmanager.monitoring.filters import ChartFilter, DashboardFilter
from mlmanager.monitoring.services import charts as chart_services


class TeamField(serializers.IntegerField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            required=False,
            min_value=1,
            help_text="The team's id (default: the current team).",
            **kwargs,
        )


# --- charts --------------------------------------------------------------------------------------


class ChartFieldsSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, max_length=5000)
    series = SeriesField()
    range_s = serializers.IntegerField(
        required=False,
        min_value=chart_services.MIN_RANGE_S,
        max_value=chart_services.MAX_RANGE_S,
        help_text="The range drawn when none is asked for (default a day).",
    )


class ChartListCreateApi(APIView):
    parser_classes = [JSONParser]
    filterset_class = ChartFilter

    class InputSerializer(ChartFieldsSerializer):
        team = TeamField()

    @extend_schema(responses=ChartOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        charts = filter_queryset(
            request=request,
            queryset=selectors.charts_for_caller(api_caller(request)).order_by("name", "pk"),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request, view=self, queryset=charts, serializer_class=ChartOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: ChartOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        caller = api_caller(request)
        team = team_named_or_current(caller=caller, team_id=data.pop("team", None))
        chart = chart_services.chart_create(caller=caller, team=team, **data)
        return Response(ChartOutputSerializer(chart).data, status=status.HTTP_201_CREATED)


class ChartDetailApi(APIView):
    parser_classes = [JSONParser]

    class UpdateSerializer(ChartFieldsSerializer):
        name = StrictCharField(required=False, max_length=200)
        series = SeriesField(required=False)

    @extend_schema(responses=ChartOutputSerializer)
    def get(self, request: Request, chart_id: int) -> Response:
        chart = selectors.access_chart(caller=api_caller(request), id=chart_id)
        return Response(ChartOutputSerializer(chart).data)

    @extend_schema(request=UpdateSerializer, responses=ChartOutputSerializer)
    def patch(self, request: Request, chart_id: int) -> Response:
        caller = api_caller(request)
        # Found (404) before the body is read, so other teams' ids reveal nothing.
        selectors.access_chart(caller=caller, id=chart_id)
        serializer = self.UpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        chart = selectors.access_chart(caller=caller, id=chart_id, action=MonitorAction.CHANGE)
        chart = chart_services.chart_update(caller=caller, chart=chart, **serializer.validated_data)
        return Response(ChartOutputSerializer(chart).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, chart_id: int) -> Response:
        caller = api_caller(request)
        chart = selectors.access_chart(caller=caller, id=chart_id, action=MonitorAction.CHANGE)
        chart_services.chart_delete(caller=caller, chart=chart)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChartDataApi(APIView):
    class QuerySerializer(serializers.Serializer[Any]):
        start = serializers.DateTimeField(
            required=False, help_text="ISO 8601; default: the chart's range before `end`."
        )
        end = serializers.DateTimeField(
            required=False, help_text="ISO 8601, exclusive; default: now."
        )
        max_points = serializers.IntegerField(
            required=False,
            min_value=10,
            max_value=2000,
            help_text=f"Points per series at most (default {MAX_POINTS}): a longer range is "
            "drawn with a coarser period.",
        )

    @extend_schema(parameters=[QuerySerializer], responses=ChartDataSerializer)
    def get(self, request: Request, chart_id: int) -> Response:
        caller = api_caller(request)
        chart = selectors.access_chart(caller=caller, id=chart_id)
        query = self.QuerySerializer(data=request.query_params)
        # DRF reads `?start=` as "not sent"; the filters refuse it (core.filters), so here too.
        empty = [
            name for name in ("start", "end", "max_points") if request.query_params.get(name) == ""
        ]
        if empty:
            raise_invalid_filter({name: [_("This parameter may not be empty.")] for name in empty})
        if not query.is_valid():
            raise_invalid_filter(query.errors)
        end: datetime = query.validated_data.get("end") or timezone.now()
        start: datetime | None = query.validated_data.get("start")
        if start is None:
            try:
                start = end - timedelta(seconds=chart.range_s)
            except OverflowError:  # an end in the first days of year 1
                start = datetime.min.replace(tzinfo=UTC)
        if start >= end:
            raise_invalid_filter({"start": [_("The start must be before the end.")]})
        data = chart_data(
            caller=caller,
            chart=chart,
            start=start,
            end=end,
            max_points=query.validated_data.get("max_points", MAX_POINTS),
        )
        return Response(ChartDataSerializer(data).data)


# --- dashboards ----------------------------------------------------------------------------------


class DashboardFieldsSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, max_length=5000)
    site = IdField(
        required=False,
        allow_null=True,
        help_text="A site of the team: the dashboard holds its charts (and charts of no site).",
    )
    layout = LayoutField(required=False)


class DashboardListCreateApi(APIView):
    parser_classes = [JSONParser]
    filterset_class = DashboardFilter

    class InputSerializer(DashboardFieldsSerializer):
        team = TeamField()

    @extend_schema(responses=DashboardOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        dashboards = filter_queryset(
            request=request,
            queryset=selectors.dashboards_for_caller(api_caller(request)).order_by("name", "pk"),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request,
            view=self,
            queryset=dashboards,
            serializer_class=DashboardOutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: DashboardOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        caller = api_caller(request)
        team = team_named_or_current(caller=caller, team_id=data.pop("team", None))
        dashboard = chart_services.dashboard_create(caller=caller, team=team, **data)
        return Response(DashboardOutputSerializer(dashboard).data, status=status.HTTP_201_CREATED)


class DashboardDetailApi(APIView):
    parser_classes = [JSONParser]

    class UpdateSerializer(DashboardFieldsSerializer):
        name = StrictCharField(required=False, max_length=200)

    @extend_schema(responses=DashboardOutputSerializer)
    def get(self, request: Request, dashboard_id: int) -> Response:
        dashboard = selectors.access_dashboard(caller=api_caller(request), id=dashboard_id)
        return Response(DashboardOutputSerializer(dashboard).data)

    @extend_schema(request=UpdateSerializer, responses=DashboardOutputSerializer)
    def patch(self, request: Request, dashboard_id: int) -> Response:
        caller = api_caller(request)
        selectors.access_dashboard(caller=caller, id=dashboard_id)
        serializer = self.UpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        dashboard = selectors.access_dashboard(
            caller=caller, id=dashboard_id, action=MonitorAction.CHANGE
        )
        dashboard = chart_services.dashboard_update(
            caller=caller, dashboard=dashboard, **serializer.validated_data
        )
        return Response(DashboardOutputSerializer(dashboard).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, dashboard_id: int) -> Response:
        caller = api_caller(request)
        dashboard = selectors.access_dashboard(
            caller=caller, id=dashboard_id, action=MonitorAction.CHANGE
        )
        chart_services.dashboard_delete(caller=caller, dashboard=dashboard)
        return Response(status=status.HTTP_204_NO_CONTENT)
