"""Models attached to sites' sensors: list, attach, detach."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.api import IdField
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.monitoring import selectors
from mlmanager.monitoring.access import MonitorAction
from mlmanager.monitoring.models import ModelAttachment
from mlmanager.monitoring.services import attachments as attachment_services


class AttachmentOutputSerializer(serializers.ModelSerializer[ModelAttachment]):
    model = serializers.IntegerField(source="machine_id", read_only=True)
    inputs = serializers.DictField(
        child=serializers.IntegerField(), help_text="Each model input's sensor id."
    )

    class Meta:
        model = ModelAttachment
        fields = [
            "id",
            "site",
            "model",
            "inputs",
            "min_interval_s",
            "enabled",
            "last_predicted_at",
            "last_error",
            "created_at",
        ]


class AttachmentListCreateApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        site = IdField()
        model = IdField()
        inputs = serializers.DictField(
            child=IdField(),
            allow_empty=False,
            help_text="Each model input's sensor id.",
        )
        min_interval_s = serializers.IntegerField(required=False, min_value=1, max_value=86400)

    @extend_schema(responses=AttachmentOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        attachments = selectors.attachments_for_caller(api_caller(request)).order_by("pk")
        return paginated_response(
            request=request,
            view=self,
            queryset=attachments,
            serializer_class=AttachmentOutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: AttachmentOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        attachment = attachment_services.attachment_create(
            caller=api_caller(request),
            site_id=data["site"],
            machine_id=data["model"],
            inputs=data["inputs"],
            min_interval_s=data.get("min_interval_s", 60),
        )
        return Response(AttachmentOutputSerializer(attachment).data, status=status.HTTP_201_CREATED)


class AttachmentDetailApi(APIView):
    @extend_schema(responses=AttachmentOutputSerializer)
    def get(self, request: Request, attachment_id: int) -> Response:
        attachment = selectors.access_attachment(caller=api_caller(request), id=attachment_id)
        return Response(AttachmentOutputSerializer(attachment).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, attachment_id: int) -> Response:
        caller = api_caller(request)
        attachment = selectors.access_attachment(
            caller=caller, id=attachment_id, action=MonitorAction.CHANGE
        )
        attachment_services.attachment_delete(caller=caller, attachment=attachment)
        return Response(status=status.HTTP_204_NO_CONTENT)
