"""API v1: a model's retraining policy (read, change) and its champion/challenger decisions
(services.retraining)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.access import Action
from mlmanager.core.api import StrictCharField, TimeOfDayField
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.machines import selectors
from mlmanager.machines.models import RetrainingDecision, RetrainingPolicy
from mlmanager.machines.services import retraining


class RetrainingPolicyOutputSerializer(serializers.ModelSerializer[RetrainingPolicy]):
    at_time = TimeOfDayField(format="%H:%M", read_only=True)
    last_run = serializers.IntegerField(source="last_run_id", allow_null=True)
    # Null until the policy is first saved: GET answers the defaults of a model without one.
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)
    new_rows = serializers.SerializerMethodField(
        help_text="Rows added to the model's data since the active version's training (or the "
        "last retraining start); null without a dataset."
    )

    class Meta:
        model = RetrainingPolicy
        fields = [
            "enabled",
            "schedule",
            "at_time",
            "weekday",
            "time_zone",
            "after_new_rows",
            "new_rows",
            "last_started_at",
            "last_run",
            "last_error",
            "updated_at",
        ]

    def get_new_rows(self, policy: RetrainingPolicy) -> int | None:
        return retraining.new_rows(machine=policy.machine, policy=policy)


class RetrainingDecisionOutputSerializer(serializers.ModelSerializer[RetrainingDecision]):
    run = serializers.IntegerField(source="run_id", allow_null=True)
    candidate_version = serializers.IntegerField(source="candidate.number")
    champion_version = serializers.IntegerField(
        source="champion.number", allow_null=True, default=None
    )
    at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = RetrainingDecision
        fields = [
            "id",
            "run",
            "candidate_version",
            "champion_version",
            "output",
            "metric",
            "candidate_score",
            "champion_score",
            "holdout_rows",
            "promoted",
            "reason",
            "at",
        ]


class ModelRetrainingApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        enabled = serializers.BooleanField(required=False)
        schedule = serializers.ChoiceField(
            choices=RetrainingPolicy.Schedule.choices, required=False
        )
        at_time = TimeOfDayField(required=False, help_text="HH:MM in `time_zone`.")
        weekday = serializers.IntegerField(
            required=False, min_value=0, max_value=6, help_text="0 Monday … 6 Sunday (weekly)."
        )
        time_zone = StrictCharField(required=False, max_length=64)
        after_new_rows = serializers.IntegerField(required=False, allow_null=True, min_value=1)

    @extend_schema(responses=RetrainingPolicyOutputSerializer)
    def get(self, request: Request, machine_id: int) -> Response:
        machine = selectors.access_machine(caller=api_caller(request), id=machine_id)
        policy = retraining.retraining_policy_of(machine=machine)
        return Response(RetrainingPolicyOutputSerializer(policy).data)

    @extend_schema(request=InputSerializer, responses=RetrainingPolicyOutputSerializer)
    def put(self, request: Request, machine_id: int) -> Response:
        caller = api_caller(request)
        machine = selectors.access_machine(caller=caller, id=machine_id, action=Action.CHANGE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy = retraining.retraining_policy_update(
            caller=caller, machine=machine, **serializer.validated_data
        )
        return Response(RetrainingPolicyOutputSerializer(policy).data)


class ModelRetrainingDecisionListApi(APIView):
    @extend_schema(responses=RetrainingDecisionOutputSerializer(many=True))
    def get(self, request: Request, machine_id: int) -> Response:
        machine = selectors.access_machine(caller=api_caller(request), id=machine_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.retraining_decisions(machine=machine),
            serializer_class=RetrainingDecisionOutputSerializer,
        )
