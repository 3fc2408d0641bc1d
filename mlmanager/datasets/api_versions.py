"""API v1: rows appended to a dataset (a new version), and a dataset's versions."""

from __future__ import annotations

from typing import Any

import pandas as pd
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.access import Action
from mlmanager.core.api import ErrorSerializer
from mlmanager.core.errors import ApplicationError
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser, MultiPartParser
from mlmanager.core.uploads import raise_if_upload_too_large
from mlmanager.datasets import selectors, versions
from mlmanager.datasets.api import DatasetDetailOutputSerializer
from mlmanager.datasets.models import Dataset


class DatasetRowsAppendApi(APIView):
    """Append rows to a table: JSON `{"rows": [{column: value, …}, …]}` or a multipart `file`.
    The answer is the new version (processing: its job profiles it, as an upload)."""

    parser_classes = [JSONParser, MultiPartParser]

    class InputSerializer(serializers.Serializer[Any]):
        rows = serializers.ListField(
            child=serializers.DictField(),
            required=False,
            allow_empty=True,
            max_length=versions.APPEND_MAX_ROWS,
            help_text="One object per row, every column of the dataset named (a value may be "
            f"null). At most {versions.APPEND_MAX_ROWS:,} rows.",
        )
        file = serializers.FileField(
            required=False,
            allow_empty_file=True,
            help_text="A CSV, TSV, Parquet, Excel or JSON Lines file of rows (multipart).",
        )

    @extend_schema(
        request={
            "application/json": InputSerializer,
            "multipart/form-data": InputSerializer,
        },
        responses={
            201: DatasetDetailOutputSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="`incompatible_rows` (details: `missing_columns`, "
                "`unknown_columns`, `mistyped` per column with `expected`, `count` and "
                "`examples` of {row, value}), `too_many_rows`, `no_rows`, or the upload's "
                "own errors.",
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="`dataset_not_ready`, or `not_a_table` for an image dataset.",
            ),
        },
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        caller = api_caller(request)
        dataset = selectors.access_dataset(caller=caller, id=dataset_id, action=Action.CHANGE)
        data = request.data  # parses the body; the size limit is enforced while it streams
        raise_if_upload_too_large(request._request)
        serializer = self.InputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        rows = serializer.validated_data.get("rows")
        upload = serializer.validated_data.get("file")
        if (rows is None) == (upload is None):
            raise ApplicationError(
                "Send “rows” (JSON) or a “file” (multipart), one of them.",
                code="invalid",
                details={"rows": ["Send rows or a file."]},
            )
        version = versions.dataset_rows_append(
            caller=caller,
            dataset=dataset,
            rows=None if rows is None else pd.DataFrame(rows, dtype=object),
            upload=upload,
            source="api" if upload is None else "file",
        )
        version = selectors.access_dataset(caller=caller, id=version.pk)
        return Response(DatasetDetailOutputSerializer(version).data, status=status.HTTP_201_CREATED)


class DatasetVersionSerializer(serializers.ModelSerializer[Dataset]):
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "version",
            "parent",
            "rows_added",
            "rows_origin",
            "status",
            "row_count",
            "created_by",
            "created_at",
        ]


class DatasetVersionListApi(APIView):
    @extend_schema(responses=DatasetVersionSerializer(many=True))
    def get(self, request: Request, dataset_id: int) -> Response:
        """Every version of the dataset's family (the first upload and each append), oldest
        first, with its parent, the rows added, where they came from, and by whom."""
        dataset = selectors.access_dataset(caller=api_caller(request), id=dataset_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=versions.dataset_family(dataset=dataset),
            serializer_class=DatasetVersionSerializer,
        )
