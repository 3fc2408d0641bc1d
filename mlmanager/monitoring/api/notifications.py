"""Webhooks, the caller's notification preferences and their in-app notifications."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.accounts.selectors import team_named_or_current
from mlmanager.core.api import IdField, StrictCharField
from mlmanager.core.filters import BooleanFilter, FilterSet, filter_queryset
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.monitoring import selectors
from mlmanager.monitoring.api.notification_serializers import (
    NotificationOutputSerializer,
    NotificationReadInputSerializer,
    NotificationReadOutputSerializer,
    PreferenceSerializer,
    StrictBooleanField,
    WebhookCreatedSerializer,
    WebhookOutputSerializer,
    WebhookTestOutputSerializer,
)
from mlmanager.monitoring.models import Notification
from mlmanager.monitoring.services import notifications as notification_services
from mlmanager.monitoring.services import webhooks as webhook_services

# --- webhooks ------------------------------------------------------------------------------------


class WebhookInputSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=100)
    url = serializers.URLField(max_length=500, help_text="An http:// or https:// address.")
    active = StrictBooleanField(required=False)


class WebhookListCreateApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(WebhookInputSerializer):
        team = IdField(required=False, help_text="The team's id (default: the current team).")

    @extend_schema(responses=WebhookOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        webhooks = webhook_services.webhooks_for_caller(api_caller(request)).order_by("name", "pk")
        return paginated_response(
            request=request, view=self, queryset=webhooks, serializer_class=WebhookOutputSerializer
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: WebhookCreatedSerializer},
        description="Needs the team's manage right. The answer shows the signing secret, once.",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        caller = api_caller(request)
        team = team_named_or_current(caller=caller, team_id=data.pop("team", None))
        webhook, secret = webhook_services.webhook_create(caller=caller, team=team, **data)
        answer = WebhookOutputSerializer(webhook).data
        return Response({**answer, "secret": secret}, status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    parser_classes = [JSONParser]

    class UpdateSerializer(WebhookInputSerializer):
        name = StrictCharField(required=False, max_length=100)
        url = serializers.URLField(required=False, max_length=500)

    @extend_schema(responses=WebhookOutputSerializer)
    def get(self, request: Request, webhook_id: int) -> Response:
        webhook = selectors.access_webhook(caller=api_caller(request), id=webhook_id)
        return Response(WebhookOutputSerializer(webhook).data)

    @extend_schema(request=UpdateSerializer, responses=WebhookOutputSerializer)
    def patch(self, request: Request, webhook_id: int) -> Response:
        caller = api_caller(request)
        webhook = selectors.access_webhook(caller=caller, id=webhook_id)
        serializer = self.UpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        webhook = webhook_services.webhook_update(
            caller=caller, webhook=webhook, **serializer.validated_data
        )
        return Response(WebhookOutputSerializer(webhook).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, webhook_id: int) -> Response:
        caller = api_caller(request)
        webhook = selectors.access_webhook(caller=caller, id=webhook_id)
        webhook_services.webhook_delete(caller=caller, webhook=webhook)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTestApi(APIView):
    @extend_schema(
        request=None,
        responses=WebhookTestOutputSerializer,
        description='POST a signed {"event": "ping", "alert": null, "sent_at"} to the webhook '
        "now and say how the receiver answered.",
    )
    def post(self, request: Request, webhook_id: int) -> Response:
        caller = api_caller(request)
        webhook = selectors.access_webhook(caller=caller, id=webhook_id)
        result = webhook_services.webhook_test(caller=caller, webhook=webhook)
        return Response(WebhookTestOutputSerializer(result).data)


# --- preferences ---------------------------------------------------------------------------------

TEAM_PARAMETER = OpenApiParameter(
    "team", OpenApiTypes.INT, description="The team's id (default: the current team)."
)


class NotificationPreferenceApi(APIView):
    parser_classes = [JSONParser]

    @extend_schema(parameters=[TEAM_PARAMETER], responses=PreferenceSerializer)
    def get(self, request: Request) -> Response:
        caller = api_caller(request)
        team = team_named_or_current(caller=caller, team_id=request.query_params.get("team"))
        preference = notification_services.notification_preference_get(caller=caller, team=team)
        return Response(PreferenceSerializer(preference).data)

    @extend_schema(
        parameters=[TEAM_PARAMETER],
        request=PreferenceSerializer,
        responses=PreferenceSerializer,
        description="Replace your preferences in the team; a field left out takes its default.",
    )
    def put(self, request: Request) -> Response:
        caller = api_caller(request)
        team = team_named_or_current(caller=caller, team_id=request.query_params.get("team"))
        serializer = PreferenceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "sites" in data:
            data["site_ids"] = data.pop("sites")
        if "models" in data:
            data["machine_ids"] = data.pop("models")
        preference = notification_services.notification_preference_set(
            caller=caller, team=team, **data
        )
        return Response(PreferenceSerializer(preference).data)


# --- in-app notifications ------------------------------------------------------------------------


class NotificationFilter(FilterSet):
    unread = BooleanFilter(method="filter_unread", help_text="Only unread (true) or read (false).")

    class Meta(FilterSet.Meta):
        model = Notification
        fields: list[str] = []

    def filter_unread(self, queryset: Any, name: str, value: bool | None) -> Any:
        if value is None:
            return queryset
        return queryset.filter(read_at__isnull=value)


class NotificationListApi(APIView):
    filterset_class = NotificationFilter

    @extend_schema(responses=NotificationOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        notifications = filter_queryset(
            request=request,
            queryset=selectors.notifications_for_user(api_caller(request)).order_by(
                "-created_at", "-pk"
            ),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request,
            view=self,
            queryset=notifications,
            serializer_class=NotificationOutputSerializer,
        )


class NotificationReadApi(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        request=NotificationReadInputSerializer, responses=NotificationReadOutputSerializer
    )
    def post(self, request: Request) -> Response:
        serializer = NotificationReadInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        marked = notification_services.notifications_mark_read(
            caller=api_caller(request), ids=serializer.validated_data.get("ids")
        )
        return Response({"marked": marked})
