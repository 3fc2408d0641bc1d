"""Alerts: list, detail, and what people do with them (acknowledge, assign, comment, mute,
unmute, resolve), with the timeline of each.

An alert of a site follows the site's roles (its operators and admins act on it, its
viewers see it); an alert of no site (a model's) the team's roles.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.api import IdField, StrictCharField
from mlmanager.core.filters import filter_queryset
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.monitoring import selectors
from mlmanager.monitoring.access import MonitorAction
from mlmanager.monitoring.api.rule_serializers import (
    AlertEventOutputSerializer,
    AlertOutputSerializer,
    CommentOutputSerializer,
)
from mlmanager.monitoring.api.rules import MuteInputSerializer
from mlmanager.monitoring.models import Alert, AlertEvent
from mlmanager.monitoring.rule_filters import AlertFilter
from mlmanager.monitoring.services import alerts as alert_services

_COMMENTED = AlertEvent.Kind.COMMENTED


def _comments() -> QuerySet[AlertEvent]:
    return (
        AlertEvent.objects.filter(kind=_COMMENTED)
        .select_related("user")
        .order_by("created_at", "id")
    )


def _with_comments(alerts: QuerySet[Alert]) -> QuerySet[Alert]:
    """The alerts with their comments (one more query for a page of alerts)."""
    return alerts.prefetch_related(Prefetch("events", queryset=_comments(), to_attr="comment_list"))


def _output(alert: Alert) -> dict[str, Any]:
    alert.comment_list = list(_comments().filter(alert=alert))  # type: ignore[attr-defined]
    return AlertOutputSerializer(alert).data  # type: ignore[return-value]


class AlertListApi(APIView):
    filterset_class = AlertFilter

    @extend_schema(responses=AlertOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        alerts = filter_queryset(
            request=request,
            queryset=selectors.alerts_for_caller(api_caller(request)).order_by(
                "-started_at", "-id"
            ),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request,
            view=self,
            queryset=_with_comments(alerts),
            serializer_class=AlertOutputSerializer,
        )


class AlertDetailApi(APIView):
    @extend_schema(responses=AlertOutputSerializer)
    def get(self, request: Request, alert_id: int) -> Response:
        alert = selectors.access_alert(caller=api_caller(request), id=alert_id)
        return Response(_output(alert))


class AlertAcknowledgeApi(APIView):
    @extend_schema(request=None, responses=AlertOutputSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        caller = api_caller(request)
        alert = selectors.access_alert(caller=caller, id=alert_id, action=MonitorAction.OPERATE)
        alert = alert_services.alert_acknowledge(caller=caller, alert=alert)
        return Response(_output(alert))


class AlertAssignApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        user = IdField(
            allow_null=True,
            help_text="A member of the team who can see the alert; null: nobody.",
        )

    @extend_schema(request=InputSerializer, responses=AlertOutputSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        caller = api_caller(request)
        alert = selectors.access_alert(caller=caller, id=alert_id, action=MonitorAction.OPERATE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alert = alert_services.alert_assign(
            caller=caller, alert=alert, user_id=serializer.validated_data["user"]
        )
        return Response(_output(alert))


class AlertCommentsApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        text = StrictCharField(max_length=alert_services.MAX_COMMENT)

    @extend_schema(responses=CommentOutputSerializer(many=True))
    def get(self, request: Request, alert_id: int) -> Response:
        alert = selectors.access_alert(caller=api_caller(request), id=alert_id)
        comments = alert.events.filter(kind=_COMMENTED).select_related("user")
        return paginated_response(
            request=request, view=self, queryset=comments, serializer_class=CommentOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: CommentOutputSerializer})
    def post(self, request: Request, alert_id: int) -> Response:
        caller = api_caller(request)
        alert = selectors.access_alert(caller=caller, id=alert_id, action=MonitorAction.OPERATE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = alert_services.alert_comment(
            caller=caller, alert=alert, text=serializer.validated_data["text"]
        )
        return Response(CommentOutputSerializer(comment).data, status=status.HTTP_201_CREATED)


class AlertMuteApi(APIView):
    parser_classes = [JSONParser]

    @extend_schema(request=MuteInputSerializer, responses=AlertOutputSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        caller = api_caller(request)
        alert = selectors.access_alert(caller=caller, id=alert_id, action=MonitorAction.OPERATE)
        serializer = MuteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alert = alert_services.alert_mute(
            caller=caller, alert=alert, until=serializer.validated_data.get("until")
        )
        return Response(_output(alert))


class AlertUnmuteApi(APIView):
    @extend_schema(request=None, responses=AlertOutputSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        caller = api_caller(request)
        alert = selectors.access_alert(caller=caller, id=alert_id, action=MonitorAction.OPERATE)
        alert = alert_services.alert_unmute(caller=caller, alert=alert)
        return Response(_output(alert))


class AlertResolveApi(APIView):
    @extend_schema(request=None, responses=AlertOutputSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        caller = api_caller(request)
        alert = selectors.access_alert(caller=caller, id=alert_id, action=MonitorAction.OPERATE)
        alert = alert_services.alert_resolve(caller=caller, alert=alert)
        return Response(_output(alert))


class AlertEventsApi(APIView):
    @extend_schema(responses=AlertEventOutputSerializer(many=True))
    def get(self, request: Request, alert_id: int) -> Response:
        alert = selectors.access_alert(caller=api_caller(request), id=alert_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=alert.events.select_related("user").order_by("created_at", "id"),
            serializer_class=AlertEventOutputSerializer,
        )
