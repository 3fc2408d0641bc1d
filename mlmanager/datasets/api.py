"""API v1: datasets (upload, read, rename, column types, delete, preview)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.access import Action
from mlmanager.core.api import ErrorSerializer, StrictCharField
from mlmanager.core.errors import ApplicationError
from mlmanager.core.filters import filter_queryset
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser, MultiPartParser
from mlmanager.core.uploads import raise_if_upload_too_large
from mlmanager.datasets import selectors, services
from mlmanager.datasets.filters import DatasetFilter
from mlmanager.datasets.models import Dataset
from mlmanager.engine.profiling import COLUMN_TYPES


class DatasetOutputSerializer(serializers.ModelSerializer[Dataset]):
    class Meta:
        model = Dataset
        fields = [
            "id",
            "team",
            "name",
            "original_filename",
            "size_bytes",
            "status",
            "error",
            "row_count",
            "column_count",
            "job",
            "created_at",
            "updated_at",
        ]


class DatasetDetailOutputSerializer(DatasetOutputSerializer):
    columns = serializers.ListField(child=serializers.DictField(), read_only=True)
    notes = serializers.ListField(child=serializers.CharField(), read_only=True)
    type_overrides = serializers.DictField(child=serializers.CharField(), read_only=True)
    # What reading the file found and did: format, encoding, delimiter, decimal and thousands
    # separators, missing-value tokens per column and the text columns stored as numbers.
    reading = serializers.DictField(read_only=True)

    class Meta(DatasetOutputSerializer.Meta):
        fields = [
            *DatasetOutputSerializer.Meta.fields,
            "columns",
            "notes",
            "type_overrides",
            "reading",
        ]


class DatasetListCreateApi(APIView):
    # A file comes in a multipart body only (a url-encoded form cannot carry one).
    parser_classes = [MultiPartParser]

    filterset_class = DatasetFilter

    class InputSerializer(serializers.Serializer[Any]):
        file = serializers.FileField(allow_empty_file=True)
        name = StrictCharField(required=False, allow_blank=True, max_length=200)
        team = serializers.IntegerField(required=False)

    @extend_schema(responses=DatasetOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        datasets = filter_queryset(
            request=request,
            queryset=selectors.datasets_for_caller(caller=api_caller(request)),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request, view=self, queryset=datasets, serializer_class=DatasetOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={202: DatasetDetailOutputSerializer})
    def post(self, request: Request) -> Response:
        data = request.data  # parses the body; the size limit is enforced while it streams
        raise_if_upload_too_large(request._request)
        serializer = self.InputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        dataset = services.dataset_create(
            caller=api_caller(request),
            upload=serializer.validated_data["file"],
            name=serializer.validated_data.get("name", ""),
            team_id=serializer.validated_data.get("team"),
        )
        return Response(
            DatasetDetailOutputSerializer(dataset).data, status=status.HTTP_202_ACCEPTED
        )


class DatasetDetailApi(APIView):
    parser_classes = [JSONParser]

    class UpdateSerializer(serializers.Serializer[Any]):
        name = StrictCharField(required=False, max_length=200)
        column_types = serializers.DictField(
            child=serializers.ChoiceField(choices=[*COLUMN_TYPES, ""]), required=False
        )

    @extend_schema(responses=DatasetDetailOutputSerializer)
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = selectors.access_dataset(caller=api_caller(request), id=dataset_id)
        return Response(DatasetDetailOutputSerializer(dataset).data)

    @extend_schema(request=UpdateSerializer, responses=DatasetDetailOutputSerializer)
    def patch(self, request: Request, dataset_id: int) -> Response:
        dataset = selectors.access_dataset(
            caller=api_caller(request), id=dataset_id, action=Action.CHANGE
        )
        serializer = self.UpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not serializer.validated_data:
            raise ApplicationError("Nothing to change: send name and/or column_types.")
        dataset = services.dataset_update(
            caller=api_caller(request),
            dataset=dataset,
            name=serializer.validated_data.get("name"),
            column_types=serializer.validated_data.get("column_types"),
        )
        return Response(DatasetDetailOutputSerializer(dataset).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, dataset_id: int) -> Response:
        dataset = selectors.access_dataset(
            caller=api_caller(request), id=dataset_id, action=Action.CHANGE
        )
        services.dataset_delete(caller=api_caller(request), dataset=dataset)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DatasetPreviewApi(APIView):
    class FilterSerializer(serializers.Serializer[Any]):
        offset = serializers.IntegerField(min_value=0, default=0)
        limit = serializers.IntegerField(
            min_value=1, max_value=selectors.PREVIEW_MAX_LIMIT, default=50
        )

    class OutputSerializer(serializers.Serializer[Any]):
        offset = serializers.IntegerField()
        limit = serializers.IntegerField()
        total = serializers.IntegerField()
        columns = serializers.ListField(child=serializers.CharField())
        rows = serializers.ListField(child=serializers.ListField())

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: OutputSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The dataset is not ready."),
        },
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = selectors.access_dataset(caller=api_caller(request), id=dataset_id)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        offset, limit = filters.validated_data["offset"], filters.validated_data["limit"]
        columns, rows = selectors.dataset_preview(dataset=dataset, offset=offset, limit=limit)
        return Response(
            {
                "offset": offset,
                "limit": limit,
                "total": dataset.row_count,
                "columns": columns,
                "rows": rows,
            }
        )
