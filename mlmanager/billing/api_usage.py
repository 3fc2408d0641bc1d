"""API v1: `GET /api/v1/billing/usage/`, the figures of the usage page: each quota's limit
(null: unlimited; always null with billing off) and current use, today's predictions, storage
used and running jobs. For every member of the team (viewer and up)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.accounts.selectors import team_named_or_current
from mlmanager.billing.services import quotas


class BillingUsageQuotaSerializer(serializers.Serializer[Any]):
    quota = serializers.ChoiceField(
        choices=list(quotas.QUOTA_LABELS),
        help_text="concurrent_jobs, storage_mb (MiB), predictions_per_day (rows, UTC day), "
        "api_requests_per_minute.",
    )
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label
    limit = serializers.IntegerField(
        allow_null=True, help_text="The plan's limit; null: unlimited (or billing off)."
    )
    used = serializers.IntegerField(help_text="The current use, in the limit's unit.")


class BillingUsageApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        team = serializers.IntegerField()
        billing_enabled = serializers.BooleanField(
            help_text="False: nothing is limited or charged (limits are null)."
        )
        plan = serializers.CharField(allow_null=True, help_text="The plan the team follows.")
        quotas = BillingUsageQuotaSerializer(many=True)
        predictions_today = serializers.IntegerField(help_text="Rows predicted today (UTC).")
        storage_used_bytes = serializers.IntegerField(
            help_text="Datasets' files and model versions' artifacts."
        )
        running_jobs = serializers.IntegerField(help_text="Queued or running jobs.")

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "team", OpenApiTypes.INT, description="The team's id (default: your current team)."
            )
        ],
        responses=OutputSerializer,
    )
    def get(self, request: Request) -> Response:
        caller = api_caller(request)
        team = team_named_or_current(caller=caller, team_id=request.query_params.get("team"))
        usage = quotas.team_usage(team_id=team.pk)
        return Response(
            {
                "team": team.pk,
                "billing_enabled": usage.billing_enabled,
                "plan": usage.plan.name if usage.plan else None,
                "quotas": [
                    {"quota": q.quota, "label": q.label, "limit": q.limit, "used": q.used}
                    for q in usage.quotas
                ],
                "predictions_today": usage.predictions_today,
                "storage_used_bytes": usage.storage_used_bytes,
                "running_jobs": usage.running_jobs,
            }
        )
