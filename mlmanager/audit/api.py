"""API v1: the audit log (read only)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.audit import selectors
from mlmanager.audit.filters import AuditEventApiFilter
from mlmanager.audit.models import AuditEvent
from mlmanager.core.filters import filter_queryset
from mlmanager.core.pagination import paginated_response


class ActorOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(allow_null=True, help_text="Null once the user was deleted.")
    email = serializers.EmailField()


class TargetOutputSerializer(serializers.Serializer[Any]):
    type = serializers.CharField(help_text="The object's kind: membership, invitation, apitoken...")
    id = serializers.IntegerField(allow_null=True)
    repr = serializers.CharField(help_text="Its name when the event happened.")


class AuditEventOutputSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "team",
            "created_at",
            "action",
            "actor",
            "credential",
            "credential_id",
            "address",
            "target",
            "changes",
            "details",
        ]

    @extend_schema_field(ActorOutputSerializer(allow_null=True))
    def get_actor(self, event: AuditEvent) -> dict[str, object] | None:
        """Null for the platform itself; `id` null once the user was deleted."""
        if not event.actor_email and event.actor_id is None:
            return None
        return {"id": event.actor_id, "email": event.actor_email}

    @extend_schema_field(TargetOutputSerializer(allow_null=True))
    def get_target(self, event: AuditEvent) -> dict[str, object] | None:
        """The object as it was named then (it may be gone since)."""
        if not event.target_type:
            return None
        return {"type": event.target_type, "id": event.target_id, "repr": event.target_repr}


class AuditEventListApi(APIView):
    """The audit log of the teams the caller owns or administers (or of `team`), newest first."""

    filterset_class = AuditEventApiFilter

    @extend_schema(responses=AuditEventOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        caller = api_caller(request)
        # Every parameter is validated before the selector reads `team`, so a malformed one
        # is a 400 like any other (the selector would call it not found); no query runs here.
        filter_queryset(
            request=request,
            queryset=AuditEvent.objects.none(),
            filterset_class=self.filterset_class,
        )
        events = filter_queryset(
            request=request,
            queryset=selectors.audit_events_for_caller(
                caller=caller, team_id=request.query_params.get("team")
            ),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request, view=self, queryset=events, serializer_class=AuditEventOutputSerializer
        )
