"""API v1: datasets (upload, read, rename, column types, delete, preview) and the images of an
image dataset (gallery rows, image/thumbnail/mask PNGs, confirmation)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
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
from mlmanager.datasets import images, selectors, services
from mlmanager.datasets.filters import DatasetFilter
from mlmanager.datasets.models import Dataset
from mlmanager.engine.profiling import COLUMN_TYPES


class SkippedFileSerializer(serializers.Serializer[Any]):
    file = serializers.CharField(help_text="The file's path inside the zip (shown only).")
    reason = serializers.CharField()


class ImagesBlockSerializer(serializers.Serializer[Any]):
    """What reading an image archive found (the profile's `images` block)."""

    count = serializers.IntegerField()
    task = serializers.ChoiceField(choices=["classification", "segmentation"])
    layout = serializers.ChoiceField(choices=["folders", "csv", "masks"])
    classes = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Classification: images per class. Segmentation: images showing each mask class.",
    )
    mask_classes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Segmentation: class name of each mask value index (0 = background).",
    )
    skipped = SkippedFileSerializer(many=True, help_text="The first 200 files left out.")
    skipped_count = serializers.IntegerField()
    notes = serializers.ListField(child=serializers.CharField())
    confirmed = serializers.BooleanField(
        help_text="Whether a user confirmed the detected task and classes (POST .../confirm/)."
    )


class DatasetOutputSerializer(serializers.ModelSerializer[Dataset]):
    images = serializers.SerializerMethodField(
        help_text="An image dataset's images block once processed; null for a table."
    )

    class Meta:
        model = Dataset
        fields = [
            "id",
            "team",
            "name",
            "kind",
            "images",
            "original_filename",
            "size_bytes",
            "status",
            "error",
            "row_count",
            "column_count",
            "checksum",
            "job",
            "parent",
            "version",
            "rows_added",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            "checksum": {
                "help_text": "sha256 (hex) of the stored Parquet file, set when it is "
                "processed; empty for a dataset processed before checksums were kept."
            }
        }

    @extend_schema_field(ImagesBlockSerializer(allow_null=True))
    def get_images(self, dataset: Dataset) -> dict[str, Any] | None:
        block = dataset.images
        if block is None:
            return None
        return {key: block[key] for key in _IMAGES_BLOCK_KEYS if key in block}


# What the API shows of the images block: sizes, channels and formats are the page's.
_IMAGES_BLOCK_KEYS = (
    "count",
    "task",
    "layout",
    "classes",
    "mask_classes",
    "skipped",
    "skipped_count",
    "notes",
    "confirmed",
)


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


def _image_links(request: Request, dataset_id: int, row: images.ImageRow) -> dict[str, Any]:
    def url(column: str) -> str:
        return request.build_absolute_uri(
            reverse("api:dataset-image-file", args=[dataset_id, row.index, column])
        )

    return {
        "index": row.index,
        "name": row.name,
        "label": row.label,
        "width": row.width,
        "height": row.height,
        "channels": row.channels,
        "format": row.format,
        "image_url": url("image"),
        "thumbnail_url": url("thumbnail"),
        "mask_url": url("mask") if row.has_mask else None,
    }


class DatasetImageListApi(APIView):
    class FilterSerializer(serializers.Serializer[Any]):
        offset = serializers.IntegerField(min_value=0, default=0)
        limit = serializers.IntegerField(min_value=1, max_value=images.MAX_PAGE, default=50)
        label = serializers.CharField(  # type: ignore[assignment]  # the query parameter
            required=False, max_length=200
        )

    class ImageSerializer(serializers.Serializer[Any]):
        index = serializers.IntegerField(help_text="The image's position, stable (by name).")
        name = serializers.CharField()
        label = serializers.CharField(allow_null=True)  # type: ignore[assignment]
        width = serializers.IntegerField()
        height = serializers.IntegerField()
        channels = serializers.IntegerField()
        format = serializers.CharField(  # type: ignore[assignment]  # the column's name
            help_text="What the uploaded file was: PNG, JPEG, …"
        )
        image_url = serializers.URLField()
        thumbnail_url = serializers.URLField()
        mask_url = serializers.URLField(allow_null=True)

    class OutputSerializer(serializers.Serializer[Any]):
        offset = serializers.IntegerField()
        limit = serializers.IntegerField()
        total = serializers.IntegerField()
        results = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: OutputSerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="Not ready, or a table (`not_images`)."
            ),
        },
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = selectors.access_dataset(caller=api_caller(request), id=dataset_id)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        offset, limit = filters.validated_data["offset"], filters.validated_data["limit"]
        label = filters.validated_data.get("label")
        rows = images.image_rows(dataset, offset=offset, limit=limit, label=label)
        return Response(
            {
                "offset": offset,
                "limit": limit,
                "total": images.image_count(dataset, label),
                "results": [_image_links(request, dataset.pk, row) for row in rows],
            }
        )


# The stored PNGs never change: a browser may keep them for a day, privately (team data).
IMAGE_CACHE_CONTROL = "private, max-age=86400"


def image_response(data: bytes) -> HttpResponse:
    """A PNG this platform encoded, served so no browser takes it for anything else."""
    response = HttpResponse(data, content_type="image/png")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = IMAGE_CACHE_CONTROL
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


class DatasetImageFileApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "column",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                enum=list(images.IMAGE_COLUMNS),
                description="The image, its thumbnail (≤ 128 px) or its mask (segmentation: "
                "pixel value = class index).",
            )
        ],
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="A PNG."),
            404: OpenApiResponse(ErrorSerializer, description="No such image (or no mask)."),
            409: OpenApiResponse(
                ErrorSerializer, description="Not ready, or a table (`not_images`)."
            ),
        },
    )
    def get(self, request: Request, dataset_id: int, index: int, column: str) -> HttpResponse:
        dataset = selectors.access_dataset(caller=api_caller(request), id=dataset_id)
        return image_response(images.image_bytes(dataset, index, column))


class DatasetConfirmApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: DatasetDetailOutputSerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="Not ready, or a table (`not_images`)."
            ),
        },
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = selectors.access_dataset(
            caller=api_caller(request), id=dataset_id, action=Action.CHANGE
        )
        dataset = services.dataset_confirm_images(caller=api_caller(request), dataset=dataset)
        return Response(DatasetDetailOutputSerializer(dataset).data)
