"""Alert rules: CRUD, mute and unmute.

A rule on a site's sensors follows the site's roles (its technicians and admins create and
change it, its operators mute it, its viewers see it); a rule of no site (a model's signals)
the team's roles. Built-in rules (a sensor's bands) follow the sensor's thresholds: they are
only muted and unmuted here (409 `builtin_rule` otherwise).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.accounts.selectors import team_named_or_current
from mlmanager.core.api import IdField, StrictCharField
from mlmanager.core.filters import filter_queryset
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.monitoring import selectors
from mlmanager.monitoring.access import MonitorAction
from mlmanager.monitoring.api.rule_serializers import RuleOutputSerializer, SeverityField
from mlmanager.monitoring.api.serializers import ConditionField, SeriesField, TargetsField
from mlmanager.monitoring.rule_filters import RuleFilter
from mlmanager.monitoring.services import rules as rule_services


class StrictBooleanField(serializers.BooleanField):
    """true or false as JSON has them (DRF's also takes 0, 1, "yes"...)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class RuleFieldsSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, max_length=5000)
    series = SeriesField()
    condition = ConditionField()
    severity = SeverityField(required=False)
    for_s = serializers.IntegerField(
        required=False, min_value=0, help_text="How long the condition holds before it fires."
    )
    hysteresis = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="How far back inside a threshold a value must come to resolve; "
        "null: 1 % of the threshold.",
    )
    evaluate_every_s = serializers.IntegerField(required=False, min_value=10)
    notify = TargetsField(
        required=False,
        help_text='Targets: {"kind": "team"}, {"kind": "user", "user": id}, '
        '{"kind": "webhook", "webhook": id}. Default: the team.',
    )
    escalate_after_s = serializers.IntegerField(required=False, allow_null=True, min_value=60)
    escalate_to = TargetsField(required=False)
    enabled = StrictBooleanField(required=False)


class RuleListCreateApi(APIView):
    parser_classes = [JSONParser]
    filterset_class = RuleFilter

    class InputSerializer(RuleFieldsSerializer):
        team = IdField(required=False, help_text="The team's id (default: the current team).")

    @extend_schema(responses=RuleOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        rules = filter_queryset(
            request=request,
            queryset=selectors.rules_for_caller(api_caller(request)).order_by("name", "pk"),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request, view=self, queryset=rules, serializer_class=RuleOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: RuleOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        caller = api_caller(request)
        team = team_named_or_current(caller=caller, team_id=data.pop("team", None))
        rule = rule_services.rule_create(caller=caller, team=team, **data)
        return Response(RuleOutputSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailApi(APIView):
    parser_classes = [JSONParser]

    class UpdateSerializer(RuleFieldsSerializer):
        name = StrictCharField(required=False, max_length=200)
        series = SeriesField(required=False)
        condition = ConditionField(required=False)

    @extend_schema(responses=RuleOutputSerializer)
    def get(self, request: Request, rule_id: int) -> Response:
        rule = selectors.access_rule(caller=api_caller(request), id=rule_id)
        return Response(RuleOutputSerializer(rule).data)

    @extend_schema(request=UpdateSerializer, responses=RuleOutputSerializer)
    def patch(self, request: Request, rule_id: int) -> Response:
        caller = api_caller(request)
        # Found (404) before the body is read, so other teams' ids reveal nothing.
        selectors.access_rule(caller=caller, id=rule_id)
        serializer = self.UpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        rule = selectors.access_rule(caller=caller, id=rule_id, action=MonitorAction.CHANGE)
        rule = rule_services.rule_update(caller=caller, rule=rule, **serializer.validated_data)
        return Response(RuleOutputSerializer(rule).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, rule_id: int) -> Response:
        caller = api_caller(request)
        rule = selectors.access_rule(caller=caller, id=rule_id, action=MonitorAction.CHANGE)
        rule_services.rule_delete(caller=caller, rule=rule)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MuteInputSerializer(serializers.Serializer[Any]):
    until = serializers.DateTimeField(
        required=False, allow_null=True, help_text="ISO 8601; muted for ever when left out."
    )


class RuleMuteApi(APIView):
    parser_classes = [JSONParser]

    @extend_schema(request=MuteInputSerializer, responses=RuleOutputSerializer)
    def post(self, request: Request, rule_id: int) -> Response:
        caller = api_caller(request)
        rule = selectors.access_rule(caller=caller, id=rule_id, action=MonitorAction.OPERATE)
        serializer = MuteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = rule_services.rule_mute(
            caller=caller, rule=rule, until=serializer.validated_data.get("until")
        )
        return Response(RuleOutputSerializer(rule).data)


class RuleUnmuteApi(APIView):
    @extend_schema(request=None, responses=RuleOutputSerializer)
    def post(self, request: Request, rule_id: int) -> Response:
        caller = api_caller(request)
        rule = selectors.access_rule(caller=caller, id=rule_id, action=MonitorAction.OPERATE)
        rule = rule_services.rule_unmute(caller=caller, rule=rule)
        return Response(RuleOutputSerializer(rule).data)
