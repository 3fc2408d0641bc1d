"""API v1: a version as a file to take elsewhere (an ONNX model, or a zip of an MLflow model
directory), and registering a version in MLflow's model registry."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError
from mlmanager.machines import selectors
from mlmanager.machines.models import Machine, ModelVersion

EXPORT_FORMATS = ("onnx", "mlflow")


def export_filename(machine: Machine, version: ModelVersion, extension: str) -> str:
    """`<model>-v<n>.<extension>`, the model's name reduced to safe characters."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", machine.name).strip("-.") or "model"
    return f"{name[:80]}-v{version.number}.{extension}"


def _attachment(content: bytes, *, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Content-Length"] = str(len(content))
    return response


class _FormatIsTheExportsNegotiation(DefaultContentNegotiation):
    """`?format=` names the export here, not DRF's renderer (its URL format override would
    answer 404 to `?format=onnx`): errors are rendered by the first renderer (JSON)."""

    def select_renderer(
        self, request: Any, renderers: Any, format_suffix: str | None = None
    ) -> tuple[Any, str]:
        return renderers[0], renderers[0].media_type


class ModelVersionExportApi(APIView):
    content_negotiation_class = _FormatIsTheExportsNegotiation

    @extend_schema(
        operation_id="models_versions_export",
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=list(EXPORT_FORMATS),
                required=True,
                description="onnx: an .onnx file (tabular versions whose model family "
                "converts); mlflow: a zip of an MLflow model directory (pyfunc flavour).",
            )
        ],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="format=onnx"
            ),
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="format=mlflow"
            ),
        },
    )
    def get(self, request: Request, machine_id: int, number: int) -> HttpResponse:
        machine = selectors.access_machine(caller=api_caller(request), id=machine_id)
        version = selectors.access_version(machine=machine, number=number)
        export_format = request.query_params.get("format", "")
        if export_format == "onnx":
            from mlmanager.machines.services.onnx_export import onnx_model_bytes

            return _attachment(
                onnx_model_bytes(version=version),
                content_type="application/octet-stream",
                filename=export_filename(machine, version, "onnx"),
            )
        if export_format == "mlflow":
            from mlmanager.machines.services.mlflow_export import mlflow_model_zip

            return _attachment(
                mlflow_model_zip(version=version),
                content_type="application/zip",
                filename=export_filename(machine, version, "zip"),
            )
        raise ApplicationError(
            _("Choose the export format: %(formats)s.") % {"formats": ", ".join(EXPORT_FORMATS)},
            code="invalid_format",
        )


class ModelVersionMlflowRegisterApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField(help_text="The MLflow registered model's name.")
        version = serializers.IntegerField(help_text="The MLflow model version's number.")
        run_id = serializers.CharField(help_text="The MLflow run the version was logged as.")
        # A declared field named like Field.source: DRF's metaclass takes it out of the
        # class attributes, so only the type checker minds.
        source = serializers.CharField(  # type: ignore[assignment]
            help_text="Where MLflow reads the model from."
        )

    @extend_schema(
        operation_id="models_versions_mlflow_register",
        request=None,
        responses={200: OutputSerializer},
    )
    def post(self, request: Request, machine_id: int, number: int) -> Response:
        from mlmanager.machines.services.mlflow_tracking import version_register

        caller = api_caller(request)
        machine = selectors.access_machine(caller=caller, id=machine_id, action=Action.CHANGE)
        version = selectors.access_version(machine=machine, number=number)
        registered = version_register(caller=caller, version=version)
        return Response(self.OutputSerializer(registered).data, status=status.HTTP_200_OK)
