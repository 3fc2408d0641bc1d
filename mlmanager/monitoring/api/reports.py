"""Scheduled reports: CRUD and send now."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.monitoring import selectors
from mlmanager.monitoring.access import MonitorAction
from mlmanager.monitoring.api.notification_serializers import (
    ReportInputSerializer,
    ReportOutputSerializer,
    ReportSentSerializer,
    ReportUpdateSerializer,
)
from mlmanager.monitoring.models import Report
from mlmanager.monitoring.services import reports as report_services


def _with_relations(reports: QuerySet[Report]) -> QuerySet[Report]:
    return reports.prefetch_related("recipients", "deliveries")


def _service_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields = dict(data)
    if "recipients" in fields:
        fields["recipient_ids"] = fields.pop("recipients")
    fields["chart_id"] = fields.pop("chart", None)
    fields["dashboard_id"] = fields.pop("dashboard", None)
    return fields


def _answer(report: Report) -> dict[str, Any]:
    fresh = _with_relations(Report.objects.filter(pk=report.pk)).get()
    return ReportOutputSerializer(fresh).data  # type: ignore[no-any-return]


class ReportListCreateApi(APIView):
    parser_classes = [JSONParser]

    @extend_schema(responses=ReportOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        reports = selectors.reports_for_caller(api_caller(request)).order_by("name", "pk")
        return paginated_response(
            request=request,
            view=self,
            queryset=_with_relations(reports),
            serializer_class=ReportOutputSerializer,
        )

    @extend_schema(request=ReportInputSerializer, responses={201: ReportOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = ReportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = report_services.report_create(
            caller=api_caller(request), **_service_fields(serializer.validated_data)
        )
        return Response(_answer(report), status=status.HTTP_201_CREATED)


class ReportDetailApi(APIView):
    parser_classes = [JSONParser]

    @extend_schema(responses=ReportOutputSerializer)
    def get(self, request: Request, report_id: int) -> Response:
        report = selectors.access_report(caller=api_caller(request), id=report_id)
        return Response(_answer(report))

    @extend_schema(request=ReportUpdateSerializer, responses=ReportOutputSerializer)
    def patch(self, request: Request, report_id: int) -> Response:
        caller = api_caller(request)
        report = selectors.access_report(caller=caller, id=report_id, action=MonitorAction.CHANGE)
        serializer = ReportUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        report = report_services.report_update(
            caller=caller, report=report, **_service_fields(serializer.validated_data)
        )
        return Response(_answer(report))

    @extend_schema(request=ReportInputSerializer, responses=ReportOutputSerializer)
    def put(self, request: Request, report_id: int) -> Response:
        caller = api_caller(request)
        report = selectors.access_report(caller=caller, id=report_id, action=MonitorAction.CHANGE)
        serializer = ReportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = _service_fields(serializer.validated_data)
        if fields["chart_id"] is None and fields["dashboard_id"] is None:
            fields.pop("chart_id"), fields.pop("dashboard_id")  # keep its subject
        report = report_services.report_update(caller=caller, report=report, **fields)
        return Response(_answer(report))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, report_id: int) -> Response:
        caller = api_caller(request)
        report = selectors.access_report(caller=caller, id=report_id, action=MonitorAction.CHANGE)
        report_services.report_delete(caller=caller, report=report)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReportSendNowApi(APIView):
    @extend_schema(
        request=None,
        responses=ReportSentSerializer,
        description="E-mail the report to its recipients now, over the period ending now. "
        "Each delivery's sent_at or error says how it went.",
    )
    def post(self, request: Request, report_id: int) -> Response:
        caller = api_caller(request)
        report = selectors.access_report(caller=caller, id=report_id, action=MonitorAction.CHANGE)
        deliveries = report_services.report_send_now(caller=caller, report=report)
        return Response(ReportSentSerializer({"deliveries": deliveries}).data)
