"""API v1: how each column of a dataset goes with a chosen output (datasets.relations)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.api import ErrorSerializer
from mlmanager.datasets import relations, selectors


class ColumnRelationSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    correlation = serializers.FloatField(
        allow_null=True,
        help_text="Pearson's r (number with number), the correlation ratio η (category with "
        "number) or Cramér's V (category with category); null for text and the like.",
    )
    method = serializers.ChoiceField(
        choices=["pearson", "correlation_ratio", "cramers_v"], allow_null=True
    )
    mutual_information = serializers.FloatField(
        allow_null=True, help_text="scikit-learn's estimate, in nats."
    )


class DatasetRelationsApi(APIView):
    class FilterSerializer(serializers.Serializer[Any]):
        output = serializers.CharField()

    class OutputSerializer(serializers.Serializer[Any]):
        output = serializers.CharField()
        sampled_rows = serializers.IntegerField()
        columns = ColumnRelationSerializer(many=True)

    @extend_schema(
        operation_id="dataset_relations",
        parameters=[FilterSerializer],
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Not an output column."),
            409: OpenApiResponse(ErrorSerializer, description="Not ready, or not a table."),
        },
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = selectors.access_dataset(caller=api_caller(request), id=dataset_id)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response(
            relations.dataset_relations(dataset=dataset, output=filters.validated_data["output"])
        )
