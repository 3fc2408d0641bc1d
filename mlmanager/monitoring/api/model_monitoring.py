"""A model's monitoring signals over a range: `GET /api/v1/models/{id}/monitoring/`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.filters import raise_invalid_filter
from mlmanager.machines.selectors import access_machine
from mlmanager.monitoring.model_monitoring import model_monitoring

DEFAULT_RANGE = timedelta(days=7)


class ModelMonitoringApi(APIView):
    class QuerySerializer(serializers.Serializer[Any]):
        start = serializers.DateTimeField(
            required=False, help_text="ISO 8601; default: 7 days before `end`."
        )
        end = serializers.DateTimeField(
            required=False, help_text="ISO 8601, exclusive; default: now."
        )
        output = serializers.CharField(
            required=False,
            max_length=200,
            help_text="The output whose accuracy (default the first).",
        )

    class OutputSerializer(serializers.Serializer[Any]):
        class LatencySerializer(serializers.Serializer[Any]):
            p50 = serializers.FloatField(allow_null=True)
            p95 = serializers.FloatField(allow_null=True)

        class DriftSerializer(serializers.Serializer[Any]):
            input = serializers.CharField()
            psi = serializers.FloatField(
                allow_null=True,
                help_text="Population stability index against the training data (null: no "
                "training profile of this input, or under 20 values in the range).",
            )
            state = serializers.CharField(
                allow_null=True, help_text="ok (< 0.1), warning (0.1 – 0.2) or drift (> 0.2)."
            )

        class AccuracySerializer(serializers.Serializer[Any]):
            period_start = serializers.DateTimeField()
            accuracy = serializers.FloatField(
                allow_null=True,
                help_text="Share of correct answers among the period's predictions with "
                "feedback (amounts: within 10 % of the true value).",
            )
            count = serializers.IntegerField()

        volume = serializers.IntegerField(help_text="Predictions made in the range.")
        latency_ms = LatencySerializer()
        drift = DriftSerializer(many=True, help_text="Per input, the worst first.")
        accuracy = AccuracySerializer(many=True)

    @extend_schema(parameters=[QuerySerializer], responses=OutputSerializer)
    def get(self, request: Request, machine_id: int) -> Response:
        machine = access_machine(caller=api_caller(request), id=machine_id)
        query = self.QuerySerializer(data=request.query_params)
        empty = [
            name for name in ("start", "end", "output") if request.query_params.get(name) == ""
        ]
        if empty:
            raise_invalid_filter({name: [_("This parameter may not be empty.")] for name in empty})
        if not query.is_valid():
            raise_invalid_filter(query.errors)
        end: datetime = query.validated_data.get("end") or timezone.now()
        start: datetime | None = query.validated_data.get("start")
        if start is None:
            try:
                start = end - DEFAULT_RANGE
            except OverflowError:  # an end in the first days of year 1
                start = datetime.min.replace(tzinfo=UTC)
        if start >= end:
            raise_invalid_filter({"start": [_("The start must be before the end.")]})
        output = query.validated_data.get("output")
        if output is not None and output not in machine.output_names:
            raise_invalid_filter({"output": [_("Not an output of this model.")]})
        data = model_monitoring(machine=machine, start=start, end=end, output=output)
        return Response(self.OutputSerializer(data).data)
