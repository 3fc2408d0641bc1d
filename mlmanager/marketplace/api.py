"""API v1: the marketplace's listings (catalogue, publish, edit) and buying from them
(predict, buy the data and download it, copy the model; the owner's copy updates)."""

from __future__ import annotations

import re
import time
from typing import Any

from django.http import StreamingHttpResponse
from drf_orjson_renderer.renderers import ORJSONRenderer
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
from mlmanager.accounts.selectors import team_named_or_current
from mlmanager.billing.money import amount_text, parse_amount
from mlmanager.billing.throttling import TeamApiRateThrottle
from mlmanager.core.access import Action
from mlmanager.core.api import ErrorSerializer, IdField, StrictCharField
from mlmanager.core.errors import NotFound
from mlmanager.core.filters import BooleanFilter, filter_queryset
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.core.throttling import PredictRateThrottle
from mlmanager.machines.selectors import access_machine
from mlmanager.marketplace import downloads, selectors, services
from mlmanager.marketplace.filters import ListingFilter
from mlmanager.marketplace.models import DataPurchase, Listing, ModelCopy
from mlmanager.predictions.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    ModelPredictApi,
    PredictJSONParser,
    idempotency_key_of,
)

TEAM_PARAMETER = OpenApiParameter(
    "team",
    int,
    description="The buying team (a team of yours); default: your current team.",
)


# An amount a client sends: a decimal string with up to six decimals ("2.5", "0.0001", "0":
# free). No number, exponent or sign: as billing's API reads amounts.
AMOUNT_INPUT_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?$")


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": AMOUNT_INPUT_PATTERN.pattern,
        "example": "2.50",
    }
)
class AmountField(serializers.Field):  # type: ignore[type-arg]
    """An amount as a decimal string, parsed by billing's `parse_amount` (400
    `invalid_amount`); zero is allowed (a free listing)."""

    def to_internal_value(self, data: Any) -> Any:
        field = self.field_name or "amount"
        if not isinstance(data, str) or not AMOUNT_INPUT_PATTERN.fullmatch(data):
            return parse_amount(None, field=field)  # the 400 invalid_amount
        return parse_amount(data, field=field, allow_zero=True)

    def to_representation(self, value: Any) -> Any:
        return None if value is None else amount_text(value)


class StrictBooleanField(serializers.BooleanField):
    """true or false as JSON has them (DRF's BooleanField also takes 0, 1, "yes"...)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


NOT_ENOUGH_CREDIT = {
    402: OpenApiResponse(
        ErrorSerializer,
        description="insufficient_credits: your team's available credit does not cover the "
        "price; nothing was done.",
    )
}


class SchemaItemSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    type = serializers.CharField(required=False, help_text="An input's type.")
    task = serializers.CharField(required=False, help_text="An output's task.")


class ListingSchemaSerializer(serializers.Serializer[Any]):
    inputs = SchemaItemSerializer(many=True)
    outputs = SchemaItemSerializer(many=True)


class SampleRowsSerializer(serializers.Serializer[Any]):
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.ListField())


class ListingOutputSerializer(serializers.ModelSerializer[Listing]):
    """A listing as every signed-in user sees it: nothing else of the seller's team."""

    price = AmountField(help_text="Per 1 000 rows (prediction API) or per download (data).")
    copy_price = AmountField(allow_null=True, help_text="null: copies are not offered.")
    copy_update_price = AmountField()
    seller = serializers.CharField(source="team.name", help_text="The selling team's name.")
    model_version = serializers.IntegerField(
        source="model.active_version.number", allow_null=True, default=None
    )
    schema = serializers.SerializerMethodField()
    sample_rows = serializers.SerializerMethodField()
    is_own = serializers.SerializerMethodField()

    class Meta:
        model = Listing
        fields = [
            "id",
            "kind",
            "model",
            "title",
            "description",
            "category",
            "price",
            "copy_price",
            "copy_update_price",
            "seller",
            "model_version",
            "schema",
            "sample_input",
            "sample_rows",
            "is_published",
            "is_own",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(ListingSchemaSerializer)
    def get_schema(self, listing: Listing) -> dict[str, Any]:
        return selectors.listing_schema(listing)

    @extend_schema_field(SampleRowsSerializer(allow_null=True))
    def get_sample_rows(self, listing: Listing) -> dict[str, Any] | None:
        """The free sample of a data source (its first rows); null for a prediction API."""
        return listing.sample_rows or None

    def get_is_own(self, listing: Listing) -> bool:
        """Whether the listing is of one of your teams."""
        return listing.team_id in self.context.get("own_team_ids", ())


def _own_team_ids(request: Request) -> set[int]:
    caller = api_caller(request)
    return set(selectors.caller_team_ids(caller).values_list("team_id", flat=True))


class ListingFilterWithMine(ListingFilter):
    mine = BooleanFilter(method="filter_mine", help_text="true: only your teams' listings.")

    def filter_mine(self, queryset: Any, name: str, value: Any) -> Any:
        if value:
            return queryset.filter(team_id__in=selectors.caller_team_ids(api_caller(self.request)))
        return queryset


class ListingListCreateApi(APIView):
    parser_classes = [JSONParser]
    filterset_class = ListingFilterWithMine

    class InputSerializer(serializers.Serializer[Any]):
        model = IdField(help_text="A model of your team (editors and up).")
        kind = serializers.ChoiceField(choices=Listing.Kind.choices)
        price = AmountField(
            help_text="Per 1 000 rows for a prediction API, per download for a data source."
        )
        description = StrictCharField(required=False, allow_blank=True, max_length=5000)
        title = StrictCharField(required=False, allow_blank=True, max_length=200)
        category = serializers.ChoiceField(choices=Listing.Category.choices, required=False)
        sample_input = serializers.DictField(
            required=False, help_text="One row of the model's inputs, for the “try it” form."
        )
        copy_price = AmountField(required=False, allow_null=True)
        copy_update_price = AmountField(required=False)
        team = IdField(required=False, help_text="The listing's team: it must be the model's.")

    @extend_schema(responses=ListingOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        caller = api_caller(request)
        own = _own_team_ids(request)
        listings = filter_queryset(
            request=request,
            queryset=selectors.listings_for_caller(caller=caller),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request,
            view=self,
            queryset=listings,
            serializer_class=ListingOutputSerializer,
            context={"own_team_ids": own},
        )

    @extend_schema(request=InputSerializer, responses={201: ListingOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        caller = api_caller(request)
        machine = access_machine(caller=caller, id=data["model"], action=Action.CHANGE)
        if "team" in data and data["team"] != machine.team_id:
            raise NotFound()  # a model is listed by its own team, never another's
        listing = services.listing_publish(
            caller=caller,
            machine=machine,
            kind=data["kind"],
            price=data["price"],
            description=data.get("description", ""),
            title=data.get("title", ""),
            category=data.get("category", Listing.Category.OTHER),
            sample_input=data.get("sample_input"),
            copy_price=data.get("copy_price"),
            copy_update_price=data.get("copy_update_price"),
        )
        listing = selectors.access_listing(caller=caller, id=listing.pk)
        output = ListingOutputSerializer(listing, context={"own_team_ids": {listing.team_id}})
        return Response(output.data, status=status.HTTP_201_CREATED)


class ListingDetailApi(APIView):
    parser_classes = [JSONParser]

    class UpdateSerializer(serializers.Serializer[Any]):
        title = StrictCharField(required=False, max_length=200)
        description = StrictCharField(required=False, allow_blank=True, max_length=5000)
        category = serializers.ChoiceField(choices=Listing.Category.choices, required=False)
        price = AmountField(required=False)
        copy_price = AmountField(required=False, allow_null=True)
        copy_update_price = AmountField(required=False)
        sample_input = serializers.DictField(required=False)
        is_published = StrictBooleanField(required=False)

    @extend_schema(responses=ListingOutputSerializer)
    def get(self, request: Request, listing_id: int) -> Response:
        listing = selectors.access_listing(caller=api_caller(request), id=listing_id)
        output = ListingOutputSerializer(listing, context={"own_team_ids": _own_team_ids(request)})
        return Response(output.data)

    @extend_schema(request=UpdateSerializer, responses=ListingOutputSerializer)
    def patch(self, request: Request, listing_id: int) -> Response:
        caller = api_caller(request)
        listing = selectors.access_listing(caller=caller, id=listing_id, action=Action.CHANGE)
        serializer = self.UpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        listing = services.listing_update(
            caller=caller, listing=listing, **serializer.validated_data
        )
        output = ListingOutputSerializer(listing, context={"own_team_ids": {listing.team_id}})
        return Response(output.data)


class ListingPredictApi(APIView):
    """The listed model's predict API: the same body and answer as
    `POST /api/v1/models/{id}/predict/`, paid by the buying team at the listing's price."""

    parser_classes = [PredictJSONParser]
    throttle_classes = [PredictRateThrottle, TeamApiRateThrottle]
    renderer_classes = [ORJSONRenderer]

    @extend_schema(
        parameters=[
            TEAM_PARAMETER,
            IDEMPOTENCY_KEY_PARAMETER,
        ],
        request=ModelPredictApi.InputSerializer,
        responses={200: ModelPredictApi.OutputSerializer, **NOT_ENOUGH_CREDIT},
    )
    def post(self, request: Request, listing_id: int) -> Response:
        started = time.perf_counter()
        caller = api_caller(request)
        listing = selectors.access_listing_to_buy(caller=caller, id=listing_id)
        buyer = team_named_or_current(caller=caller, team_id=request.query_params.get("team"))
        body = services.listing_predict(
            caller=caller,
            listing=listing,
            buyer=buyer,
            payload=request.data,
            idempotency_key=idempotency_key_of(request),
            started=started,
        )
        return Response(body)


class DataPurchaseOutputSerializer(serializers.ModelSerializer[DataPurchase]):
    price = AmountField()

    class Meta:
        model = DataPurchase
        fields = ["id", "listing", "team", "price", "created_at"]


class ListingBuyDataApi(APIView):
    @extend_schema(
        parameters=[TEAM_PARAMETER],
        request=None,
        responses={
            201: DataPurchaseOutputSerializer,
            200: DataPurchaseOutputSerializer,
            **NOT_ENOUGH_CREDIT,
        },
        description="Buy a data source for your team (charged once; buying again answers "
        "200 with the first purchase and charges nothing).",
    )
    def post(self, request: Request, listing_id: int) -> Response:
        caller = api_caller(request)
        listing = selectors.access_listing_to_buy(caller=caller, id=listing_id)
        buyer = team_named_or_current(caller=caller, team_id=request.query_params.get("team"))
        purchase, created = services.listing_buy_data(caller=caller, listing=listing, buyer=buyer)
        return Response(
            DataPurchaseOutputSerializer(purchase).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ListingDataApi(APIView):
    @extend_schema(
        parameters=[TEAM_PARAMETER],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            409: OpenApiResponse(
                ErrorSerializer,
                description="No data to download: the listing sells predictions "
                "(not_a_data_source) or the seller deleted the data (no_dataset).",
            ),
        },
        description="The bought data source as CSV (streamed).",
    )
    def get(self, request: Request, listing_id: int) -> StreamingHttpResponse:
        caller = api_caller(request)
        listing = selectors.access_listing_to_buy(caller=caller, id=listing_id)
        buyer = team_named_or_current(caller=caller, team_id=request.query_params.get("team"))
        dataset = services.listing_data_dataset(caller=caller, listing=listing, buyer=buyer)
        response = StreamingHttpResponse(
            downloads.dataset_csv_chunks(dataset), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="listing-{listing.pk}.csv"'
        return response


class ModelCopyOutputSerializer(serializers.ModelSerializer[ModelCopy]):
    model = serializers.IntegerField(source="copy_id", help_text="Your team's copy.")
    version = serializers.IntegerField(source="copy.active_version.number", allow_null=True)

    class Meta:
        model = ModelCopy
        fields = ["id", "listing", "team", "model", "version", "created_at"]


class ListingCopyApi(APIView):
    @extend_schema(
        parameters=[TEAM_PARAMETER],
        request=None,
        responses={201: ModelCopyOutputSerializer, **NOT_ENOUGH_CREDIT},
        description="Copy the listed model into your team (paid with the listing's "
        "copy_price; each call is a new copy).",
    )
    def post(self, request: Request, listing_id: int) -> Response:
        caller = api_caller(request)
        listing = selectors.access_listing_to_buy(caller=caller, id=listing_id)
        buyer = team_named_or_current(caller=caller, team_id=request.query_params.get("team"))
        model_copy = services.listing_copy(caller=caller, listing=listing, buyer=buyer)
        return Response(ModelCopyOutputSerializer(model_copy).data, status=status.HTTP_201_CREATED)


class ListingPushUpdateApi(APIView):
    class ResultSerializer(serializers.Serializer[Any]):
        copy = serializers.IntegerField()
        status = serializers.ChoiceField(choices=["updated", "current", "skipped_no_credit"])

    class OutputSerializer(serializers.Serializer[Any]):
        results = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        request=None,
        responses=OutputSerializer,
        description="Update every copy of the listed model to its active version; each "
        "copy's team pays copy_update_price. A team short of credit is skipped "
        "(`skipped_no_credit`), e-mailed, and tried again by the next push.",
    )
    def post(self, request: Request, listing_id: int) -> Response:
        caller = api_caller(request)
        listing = selectors.access_listing(caller=caller, id=listing_id, action=Action.CHANGE)
        results = services.listing_push_update(caller=caller, listing=listing)
        return Response({"results": results})
