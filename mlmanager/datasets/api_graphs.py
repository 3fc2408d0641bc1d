"""API v1: the graph types, and the saved graphs of a dataset with their Plotly figures."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.access import Action
from mlmanager.core.api import ErrorSerializer, StrictCharField
from mlmanager.core.pagination import StandardPagination, paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.datasets import graphs
from mlmanager.datasets.models import DatasetGraph
from mlmanager.datasets.selectors import access_dataset


class GraphTypeSerializer(serializers.Serializer[Any]):
    id = serializers.ChoiceField(choices=DatasetGraph.Type.choices)
    label = serializers.CharField()  # type: ignore[assignment]  # the type's name
    description = serializers.CharField()
    fields = serializers.ListField(  # type: ignore[assignment]  # the type's fields
        child=serializers.ChoiceField(choices=graphs.FIELDS),
        help_text="The fields (column roles) this type takes.",
    )
    required = serializers.ListField(  # type: ignore[assignment]  # the needed fields
        child=serializers.ChoiceField(choices=graphs.FIELDS),
        help_text="The fields it needs.",
    )
    numeric = serializers.ListField(
        child=serializers.ChoiceField(choices=graphs.FIELDS),
        help_text="The fields that must name a numeric column.",
    )
    takes_columns = serializers.BooleanField(
        help_text="Whether it takes `columns`, a list of numeric columns (heatmap, pair grid)."
    )


class GraphTypeListApi(APIView):
    @extend_schema(responses=GraphTypeSerializer(many=True))
    def get(self, request: Request) -> Response:
        paginator = StandardPagination()
        page = paginator.paginate_queryset(graphs.graph_types(), request, view=self)  # type: ignore[arg-type]
        return paginator.get_paginated_response(page)


class DatasetGraphOutputSerializer(serializers.ModelSerializer[DatasetGraph]):
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = DatasetGraph
        fields = [
            "id",
            "dataset",
            "title",
            "type",
            *graphs.FIELDS,
            "columns",
            "created_by",
            "created_at",
        ]

    def get_created_by(self, graph: DatasetGraph) -> str | None:
        return graph.created_by.email if graph.created_by else None


def _column_field() -> serializers.CharField:
    return StrictCharField(required=False, allow_blank=True, max_length=255)


class DatasetGraphListCreateApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        type = serializers.ChoiceField(choices=DatasetGraph.Type.choices)
        title = StrictCharField(required=False, allow_blank=True, max_length=200)
        x = _column_field()
        y = _column_field()
        z = _column_field()
        hue = _column_field()
        size = _column_field()
        style = _column_field()  # type: ignore[assignment]  # the style column
        col = _column_field()
        row = _column_field()
        columns = serializers.ListField(
            child=StrictCharField(max_length=255),
            required=False,
            max_length=graphs.MAX_HEATMAP_COLUMNS,
            help_text="Heatmap and pair grid: the numeric columns drawn (default: the "
            "dataset's numeric columns, at most 30 for a heatmap, the first 4 for a pair grid).",
        )

    @extend_schema(responses=DatasetGraphOutputSerializer(many=True))
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = access_dataset(caller=api_caller(request), id=dataset_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=graphs.graphs_for_dataset(dataset=dataset),
            serializer_class=DatasetGraphOutputSerializer,
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            201: DatasetGraphOutputSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="`invalid_graph` (a field the type does not take or needs, a "
                "column of the wrong type or with too many values) or `unknown_column`.",
            ),
            409: OpenApiResponse(
                ErrorSerializer, description="The dataset is not ready, or not a table."
            ),
        },
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        caller = api_caller(request)
        dataset = access_dataset(caller=caller, id=dataset_id, action=Action.CHANGE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        graph = graphs.dataset_graph_create(
            caller=caller, dataset=dataset, **serializer.validated_data
        )
        return Response(DatasetGraphOutputSerializer(graph).data, status=status.HTTP_201_CREATED)


class DatasetGraphDetailApi(APIView):
    @extend_schema(responses=DatasetGraphOutputSerializer)
    def get(self, request: Request, dataset_id: int, graph_id: int) -> Response:
        graph = graphs.access_dataset_graph(
            caller=api_caller(request), dataset_id=dataset_id, graph_id=graph_id
        )
        return Response(DatasetGraphOutputSerializer(graph).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, dataset_id: int, graph_id: int) -> Response:
        graph = graphs.access_dataset_graph(
            caller=api_caller(request),
            dataset_id=dataset_id,
            graph_id=graph_id,
            action=Action.CHANGE,
        )
        graphs.dataset_graph_delete(graph=graph)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DatasetGraphFigureApi(APIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "DatasetGraphFigure",
                {
                    "data": serializers.ListField(
                        child=serializers.DictField(), help_text="Plotly's traces."
                    ),
                    "layout": serializers.DictField(help_text="Plotly's layout."),
                    "sample": inline_serializer(
                        "DatasetGraphSample",
                        {
                            "rows_used": serializers.IntegerField(
                                help_text="Rows drawn: a seeded sample of at most "
                                "MLMANAGER_GRAPH_SAMPLE_ROWS, less rows missing a drawn value."
                            ),
                            "rows_total": serializers.IntegerField(
                                help_text="Rows in the dataset."
                            ),
                        },
                    ),
                },
            ),
            400: OpenApiResponse(
                ErrorSerializer,
                description="The graph no longer fits the dataset (a column's type changed).",
            ),
            409: OpenApiResponse(ErrorSerializer, description="The dataset is not ready."),
        }
    )
    def get(self, request: Request, dataset_id: int, graph_id: int) -> Response:
        graph = graphs.access_dataset_graph(
            caller=api_caller(request), dataset_id=dataset_id, graph_id=graph_id
        )
        return Response(graphs.graph_figure(graph=graph))
