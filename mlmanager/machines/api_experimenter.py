"""API v1: a model's experimenter rules (machines.services.experimenter): read, set, remove."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.access import Action
from mlmanager.core.api import ErrorSerializer
from mlmanager.core.parsers import JSONParser
from mlmanager.machines import selectors
from mlmanager.machines.models import Machine
from mlmanager.machines.services import experimenter


class ExperimenterOutputSerializer(serializers.Serializer[Any]):
    rules = serializers.DictField(
        child=serializers.CharField(), help_text="Per output, its expression; {} when none."
    )
    inputs = serializers.DictField(
        child=serializers.CharField(),
        help_text="How a rule names each input (rule name -> input name).",
    )
    answering = serializers.BooleanField(
        help_text="Whether the rules answer predictions now (the model has no version)."
    )
    updated_by = serializers.EmailField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


def experimenter_body(machine: Machine) -> dict[str, Any]:
    user = machine.experimenter_updated_by
    return {
        "rules": dict(machine.experimenter_rules),
        "inputs": experimenter.rule_names(list(machine.inputs)),
        "answering": bool(machine.experimenter_rules) and machine.active_version_id is None,
        "updated_by": user.email if user is not None else None,
        "updated_at": machine.experimenter_updated_at,
    }


class MachineExperimenterApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        rules = serializers.JSONField(
            help_text="Per output of the model, an expression over its inputs "
            "(at most 1 000 characters): numbers, texts, + - * / // % **, comparisons, and/or/"
            "not, `a if condition else b`, min, max, abs, round."
        )

    @extend_schema(operation_id="model_experimenter_read", responses=ExperimenterOutputSerializer)
    def get(self, request: Request, machine_id: int) -> Response:
        machine = selectors.access_machine(caller=api_caller(request), id=machine_id)
        return Response(ExperimenterOutputSerializer(experimenter_body(machine)).data)

    @extend_schema(
        operation_id="model_experimenter_set",
        request=InputSerializer,
        responses={
            200: ExperimenterOutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="invalid_rule"),
        },
    )
    def put(self, request: Request, machine_id: int) -> Response:
        caller = api_caller(request)
        machine = selectors.access_machine(caller=caller, id=machine_id, action=Action.CHANGE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        machine = experimenter.experimenter_set(
            caller=caller, machine=machine, rules=serializer.validated_data["rules"]
        )
        return Response(ExperimenterOutputSerializer(experimenter_body(machine)).data)

    @extend_schema(operation_id="model_experimenter_delete", responses={204: None})
    def delete(self, request: Request, machine_id: int) -> Response:
        caller = api_caller(request)
        machine = selectors.access_machine(caller=caller, id=machine_id, action=Action.CHANGE)
        experimenter.experimenter_delete(caller=caller, machine=machine)
        return Response(status=status.HTTP_204_NO_CONTENT)
