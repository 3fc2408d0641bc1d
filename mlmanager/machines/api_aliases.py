"""API v1: aliases of a model's versions — list them with their history, set or move one,
delete one (services.aliases)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.access import Action
from mlmanager.core.api import StrictCharField
from mlmanager.core.parsers import JSONParser
from mlmanager.machines import selectors
from mlmanager.machines.models import ModelAlias, ModelAliasEvent
from mlmanager.machines.services import aliases

# The history the list shows: the newest moves, however many there were.
HISTORY_SHOWN = 100


class AliasOutputSerializer(serializers.ModelSerializer[ModelAlias]):
    version = serializers.IntegerField(source="version.number")
    updated_by = serializers.EmailField(source="updated_by.email", allow_null=True, default=None)

    class Meta:
        model = ModelAlias
        fields = ["name", "version", "updated_by", "created_at", "updated_at"]


class AliasEventOutputSerializer(serializers.ModelSerializer[ModelAliasEvent]):
    version = serializers.IntegerField(
        source="version_number",
        allow_null=True,
        help_text="The version the alias named after the move; null: the alias was deleted.",
    )
    previous_version = serializers.IntegerField(
        source="previous_version_number",
        allow_null=True,
        help_text="The version it named before; null: the alias was new.",
    )
    actor = serializers.EmailField(
        source="actor.email",
        allow_null=True,
        default=None,
        help_text="Who moved it; null: the platform (a retraining decision).",
    )
    at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = ModelAliasEvent
        fields = ["alias", "version", "previous_version", "actor", "reason", "at"]


class ModelAliasesOutputSerializer(serializers.Serializer[Any]):
    aliases = AliasOutputSerializer(many=True)
    history = AliasEventOutputSerializer(
        many=True, help_text=f"The newest {HISTORY_SHOWN} moves, newest first."
    )


class ModelAliasListApi(APIView):
    @extend_schema(responses=ModelAliasesOutputSerializer)
    def get(self, request: Request, machine_id: int) -> Response:
        machine = selectors.access_machine(caller=api_caller(request), id=machine_id)
        data = {
            "aliases": selectors.aliases_for_machine(machine=machine),
            "history": selectors.alias_history(machine=machine)[:HISTORY_SHOWN],
        }
        return Response(ModelAliasesOutputSerializer(data).data)


class ModelAliasDetailApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        version = serializers.IntegerField(min_value=1, help_text="A version of this model.")
        reason = StrictCharField(required=False, allow_blank=True, max_length=200)

    @extend_schema(request=InputSerializer, responses=AliasOutputSerializer)
    def put(self, request: Request, machine_id: int, alias: str) -> Response:
        caller = api_caller(request)
        machine = selectors.access_machine(caller=caller, id=machine_id, action=Action.CHANGE)
        aliases.alias_name_check(alias)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        version = selectors.access_version(machine=machine, number=values["version"])
        row = aliases.alias_set(
            caller=caller,
            machine=machine,
            alias=alias,
            version=version,
            reason=values.get("reason", ""),
        )
        row = selectors.aliases_for_machine(machine=machine).get(pk=row.pk)
        return Response(AliasOutputSerializer(row).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, machine_id: int, alias: str) -> Response:
        caller = api_caller(request)
        machine = selectors.access_machine(caller=caller, id=machine_id, action=Action.CHANGE)
        aliases.alias_delete(caller=caller, machine=machine, alias=alias)
        return Response(status=status.HTTP_204_NO_CONTENT)
