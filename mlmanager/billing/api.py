"""API v1: a team's billing account, its ledger and monthly statements, the prices in force,
coupons (redeem; staff create), and staff's credits and recorded payments.

Reads are for every member of the team (viewer and up); redeeming a coupon is a change (editor
and up); crediting an account, creating a coupon and recording a payment are staff's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.validators import RegexValidator
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.accounts.selectors import team_named_or_current
from mlmanager.billing import selectors
from mlmanager.billing.filters import OperationFilter
from mlmanager.billing.models import Operation
from mlmanager.billing.money import amount_text, parse_amount
from mlmanager.billing.providers import ManualProvider
from mlmanager.billing.services import coupons, credits, prices, statements
from mlmanager.core.api import ErrorSerializer, IdField, StrictCharField
from mlmanager.core.errors import ApplicationError
from mlmanager.core.filters import MAX_ID, filter_queryset, raise_invalid_filter
from mlmanager.core.pagination import StandardPagination
from mlmanager.core.parsers import JSONParser

TEAM_PARAMETER = OpenApiParameter(
    "team",
    {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    description="The team's id (default: your current team).",
)


def _team(request: Request, caller: Any) -> Any:
    """The team named by `?team=` (once, a positive whole number: else 400 invalid_filter),
    or the caller's current team; another team's id is not found."""
    values = request.query_params.getlist("team")
    if not values:
        return team_named_or_current(caller=caller)
    if len(values) > 1 or not values[0].isascii() or not values[0].isdigit():
        raise_invalid_filter({"team": [_("A team's id: one positive whole number.")]})
    if not 1 <= int(values[0]) <= MAX_ID:
        raise_invalid_filter({"team": [_("A team's id: one positive whole number.")]})
    return team_named_or_current(caller=caller, team_id=values[0])


@extend_schema_field({"type": "string", "format": "decimal", "example": "12.50"})
class AmountField(serializers.Field):  # type: ignore[type-arg]
    """An amount as a decimal string ("12.50"): read with `money.parse_amount` (400
    `invalid_amount`), written with `money.amount_text`."""

    def to_internal_value(self, data: Any) -> Any:
        return parse_amount(data, field=self.field_name or "amount")

    def to_representation(self, value: Any) -> str:
        return amount_text(Decimal(value))


# An amount a client sends: digits with up to six decimals ("12.5", "0.0001"). Zero is refused
# (400 invalid_amount) though the pattern lets it through.
AMOUNT_INPUT_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?$")


@extend_schema_field(
    {"type": "string", "pattern": AMOUNT_INPUT_PATTERN.pattern, "example": "12.50"}
)
class AmountInputField(AmountField):
    """An amount in a request: a decimal string exactly as the schema's pattern says (no
    number, exponent or sign: a client's "1e3" is a mistake, not a thousand)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or not AMOUNT_INPUT_PATTERN.fullmatch(data):
            return parse_amount(None, field=self.field_name or "amount")
        return super().to_internal_value(data)


class AccountOutputSerializer(serializers.Serializer[Any]):
    team = serializers.IntegerField(source="team_id")
    currency = serializers.CharField()
    balance = AmountField(help_text="Bought credit.")
    promotional_balance = AmountField(help_text="Coupon credit: spent first, never paid out.")
    reserved = AmountField(help_text="Held by running work (a training's budget, a contract).")
    available = AmountField(help_text="balance + promotional_balance − reserved.")


class BillingAccountApi(APIView):
    """The team's account: what it has, what is held, what it can spend."""

    @extend_schema(parameters=[TEAM_PARAMETER], responses=AccountOutputSerializer)
    def get(self, request: Request) -> Response:
        caller = api_caller(request)
        team = _team(request, caller)
        account = selectors.team_account_or_empty(team=team)
        return Response(AccountOutputSerializer(account).data)


class EntryOutputSerializer(serializers.Serializer[Any]):
    account = serializers.CharField(help_text="Always “team”: the team's own entries only.")
    bucket = serializers.ChoiceField(choices=["credits", "promotional"])
    amount = AmountField(help_text="Positive: credited to the team; negative: debited.")


class OperationOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Operation.Kind.choices)
    created_at = serializers.DateTimeField()
    description = serializers.CharField()
    amount = AmountField(help_text="The operation's net amount for the team.")
    reverses = serializers.IntegerField(
        allow_null=True, help_text="The operation this one reverses (a refund)."
    )
    details = serializers.DictField(help_text="What was paid for (empty for another team's).")
    entries = EntryOutputSerializer(many=True)
    counterparties = serializers.ListField(
        child=serializers.ChoiceField(choices=["platform", "outside", "another team"]),
        help_text="Who the other sides were, by kind only.",
    )


class BillingLedgerApi(APIView):
    """The team's operations, newest first, each with the team's own entries; the other
    sides are named by kind only (platform, outside, another team)."""

    filterset_class = OperationFilter

    @extend_schema(parameters=[TEAM_PARAMETER], responses=OperationOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        caller = api_caller(request)
        team = _team(request, caller)
        operations = filter_queryset(
            request=request,
            queryset=selectors.team_operations(team=team),
            filterset_class=self.filterset_class,
        )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(operations, request, view=self) or []
        data = OperationOutputSerializer(
            [selectors.operation_view(operation, team=team) for operation in page], many=True
        ).data
        return paginator.get_paginated_response(data)


class PriceOutputSerializer(serializers.Serializer[Any]):
    key = serializers.ChoiceField(choices=prices.Key.choices)
    label = serializers.CharField(source="get_key_display")  # type: ignore[assignment]
    amount = AmountField(help_text="In the currency; the commission is a share (0.2 = 20 %).")
    valid_from = serializers.DateTimeField()


class BillingPricesApi(APIView):
    """The prices in force now, one per key that has one."""

    @extend_schema(responses=PriceOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        paginator = StandardPagination()
        page = paginator.paginate_queryset(prices.prices_current(), request, view=self) or []
        return paginator.get_paginated_response(PriceOutputSerializer(page, many=True).data)


class BookedOperationSerializer(serializers.Serializer[Any]):
    operation = serializers.IntegerField(source="pk")
    team = serializers.IntegerField(source="team_id")
    kind = serializers.CharField()
    created_at = serializers.DateTimeField()
    description = serializers.CharField()


class BillingCreditCreateApi(APIView):
    """Staff: credit a team's account, with a reason. The same idempotency key again answers
    200 with the first operation (201 the first time)."""

    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        team = IdField()
        amount = AmountInputField()
        reason = StrictCharField(max_length=300)
        idempotency_key = StrictCharField(max_length=200)

    @extend_schema(
        request=InputSerializer,
        responses={201: BookedOperationSerializer, 200: BookedOperationSerializer},
    )
    def post(self, request: Request) -> Response:
        caller = api_caller(request)
        selectors.require_staff(caller=caller)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        team = selectors.access_team_for_staff(caller=caller, id=values["team"])
        booked = credits.account_credit(
            caller=caller,
            team=team,
            amount=values["amount"],
            reason=values["reason"],
            idempotency_key=values["idempotency_key"],
        )
        return Response(
            BookedOperationSerializer(booked.operation).data,
            status=status.HTTP_201_CREATED if booked.created else status.HTTP_200_OK,
        )


class CouponOutputSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    amount = AmountField()
    expires_at = serializers.DateTimeField(allow_null=True)
    max_uses = serializers.IntegerField()
    uses = serializers.IntegerField()


class BillingCouponCreateApi(APIView):
    """Staff: a coupon worth `amount` of promotional credit, redeemable once per team by at
    most `max_uses` teams until `expires_at` (none: no expiry)."""

    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        code = StrictCharField(
            max_length=40, validators=[RegexValidator(coupons.CODE_PATTERN.pattern)]
        )
        amount = AmountInputField()
        expires_at = serializers.DateTimeField(required=False, allow_null=True)
        max_uses = serializers.IntegerField(required=False, min_value=1, max_value=10**9)

    @extend_schema(request=InputSerializer, responses={201: CouponOutputSerializer})
    def post(self, request: Request) -> Response:
        caller = api_caller(request)
        selectors.require_staff(caller=caller)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        coupon = coupons.coupon_create(
            caller=caller,
            code=values["code"],
            amount=values["amount"],
            expires_at=values.get("expires_at"),
            max_uses=values.get("max_uses") or 1,
        )
        return Response(CouponOutputSerializer(coupon).data, status=status.HTTP_201_CREATED)


class RedemptionOutputSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(source="coupon.code")
    amount = AmountField(source="coupon.amount")
    team = serializers.IntegerField(source="team_id")
    operation = serializers.IntegerField(source="operation_id")


class BillingCouponRedeemApi(APIView):
    """Redeem a coupon for the team (editor and up): its amount becomes promotional credit.
    400 `coupon_unknown`, `coupon_expired`, `coupon_used_up` or `coupon_already_redeemed`."""

    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        code = StrictCharField(max_length=40)

    @extend_schema(
        parameters=[TEAM_PARAMETER],
        request=InputSerializer,
        responses={201: RedemptionOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        caller = api_caller(request)
        team = _team(request, caller)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        redemption = coupons.coupon_redeem(
            caller=caller, team=team, code=serializer.validated_data["code"]
        )
        return Response(RedemptionOutputSerializer(redemption).data, status=status.HTTP_201_CREATED)


class PaymentOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    team = serializers.IntegerField(source="team_id")
    provider = serializers.CharField()
    reference = serializers.CharField()
    amount = AmountField()
    operation = serializers.IntegerField(source="operation_id")
    created_at = serializers.DateTimeField()


class BillingPaymentCreateApi(APIView):
    """Staff: record a payment received outside the platform (the manual provider): the team
    is credited once per reference (the same reference again answers 200 with the first)."""

    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        team = IdField()
        amount = AmountInputField()
        reference = StrictCharField(max_length=200)

    @extend_schema(
        request=InputSerializer,
        responses={201: PaymentOutputSerializer, 200: PaymentOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        caller = api_caller(request)
        selectors.require_staff(caller=caller)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        team = selectors.access_team_for_staff(caller=caller, id=values["team"])
        recorded = ManualProvider().record(
            team=team,
            amount=values["amount"],
            reference=values["reference"].strip() or values["reference"],
            recorded_by=caller.user,
        )
        return Response(
            PaymentOutputSerializer(recorded.payment).data,
            status=status.HTTP_201_CREATED if recorded.created else status.HTTP_200_OK,
        )


class StatementLineSerializer(serializers.Serializer[Any]):
    operation = serializers.IntegerField(source="operation_id")
    created_at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=Operation.Kind.choices)
    description = serializers.CharField()
    credits = AmountField()
    promotional = AmountField()
    amount = AmountField()
    balance = AmountField()
    promotional_balance = AmountField()


class StatementOutputSerializer(serializers.Serializer[Any]):
    team = serializers.IntegerField(source="team.pk")
    month = serializers.CharField(source="month_text")
    currency = serializers.CharField()
    opening_balance = AmountField()
    opening_promotional = AmountField()
    closing_balance = AmountField()
    closing_promotional = AmountField()
    lines = StatementLineSerializer(many=True)


class _JsonFirst(DefaultContentNegotiation):
    """`?format=` is this view's own (json, csv or pdf): DRF's renderer selection, which reads
    the same parameter, always picks JSON, so errors keep the API's JSON shape."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))
        return first, first.media_type


FORMATS = ("json", "csv", "pdf")


class BillingStatementApi(APIView):
    """The team's statement for a month (YYYY-MM): opening and closing balances and each
    operation with the running balance; `?format=csv` or `pdf` for a file."""

    content_negotiation_class = _JsonFirst

    @extend_schema(
        parameters=[
            TEAM_PARAMETER,
            OpenApiParameter(
                "month",
                {"type": "string", "pattern": statements.MONTH_PATTERN.pattern},
                OpenApiParameter.PATH,
                description="YYYY-MM (1970-01 to 2999-12)",
            ),
            OpenApiParameter("format", str, enum=FORMATS, description="json (default), csv, pdf"),
        ],
        responses={
            (200, "application/json"): StatementOutputSerializer,
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/pdf"): OpenApiTypes.BINARY,
            400: OpenApiResponse(ErrorSerializer, description="Not a month, or not a format."),
        },
    )
    def get(self, request: Request, month: str) -> Response | HttpResponse:
        caller = api_caller(request)
        team = _team(request, caller)
        wanted = request.query_params.get("format", "json")
        if wanted not in FORMATS:
            raise ApplicationError(
                "format: json, csv or pdf.", code="invalid_filter", details={"format": wanted[:20]}
            )
        statement = statements.statement_build(team=team, month=statements.statement_month(month))
        if wanted == "csv":
            return _download(
                statements.statement_csv(statement).encode(),
                "text/csv; charset=utf-8",
                statements.statement_file_name(statement, "csv"),
            )
        if wanted == "pdf":
            return _download(
                statements.statement_pdf(statement),
                "application/pdf",
                statements.statement_file_name(statement, "pdf"),
            )
        return Response(StatementOutputSerializer(statement).data)


def _download(content: bytes, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
