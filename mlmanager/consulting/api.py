"""API v1: consulting requests (list, submit, read, the attachment) and one action per step
(approve, contract, accept, finish, cancel). Who may take which step is the services' rule;
a step in the wrong state answers 409 `wrong_state`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.billing.money import amount_text, parse_amount
from mlmanager.consulting import attachments, selectors, services
from mlmanager.consulting.models import ConsultingRequest
from mlmanager.core.api import ErrorSerializer, IdField, StrictCharField
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser, MultiPartParser
from mlmanager.core.uploads import raise_if_upload_too_large

INSUFFICIENT_CREDITS = {
    402: OpenApiResponse(
        ErrorSerializer,
        description="insufficient_credits: the team's available credit does not cover the "
        "contract's amount; the request stays in `contract`.",
    )
}


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        # At most 6 decimal places and below money.LARGEST: what parse_amount accepts.
        "pattern": r"^[0-9]{1,9}(\.[0-9]{1,6})?$",
        "example": "120.50",
    }
)
class AmountField(serializers.Field):  # type: ignore[type-arg]
    """An amount sent as a decimal string (or a number that is exactly one), e.g. "120.50";
    read with `money.parse_amount` (400 `invalid_amount`), zero allowed (a free contract)."""

    def to_internal_value(self, data: Any) -> Decimal:
        return parse_amount(data, field=self.field_name or "amount", allow_zero=True)

    def to_representation(self, value: Decimal) -> str:
        return amount_text(value)


class ConsultingRequestOutputSerializer(serializers.ModelSerializer[ConsultingRequest]):
    amount = serializers.SerializerMethodField()
    budget_estimate = serializers.SerializerMethodField()
    attachment = serializers.SerializerMethodField(
        help_text="The attached file's name (sanitised), or null."
    )
    state = serializers.CharField(
        help_text="open, approved, contract, accepted, finished or cancelled"
    )

    class Meta:
        model = ConsultingRequest
        fields = [
            "id",
            "team",
            "created_by",
            "category",
            "description",
            "model",
            "attachment",
            "attachment_size",
            "state",
            "consultant",
            "amount",
            "budget_estimate",
            "delay_days",
            "created_at",
            "approved_at",
            "contract_at",
            "accepted_at",
            "finished_at",
            "cancelled_at",
            "cancelled_by",
            "updated_at",
        ]

    def get_amount(self, obj: ConsultingRequest) -> str | None:
        return amount_text(obj.amount) if obj.amount is not None else None

    def get_budget_estimate(self, obj: ConsultingRequest) -> str | None:
        return amount_text(obj.budget_estimate) if obj.budget_estimate is not None else None

    def get_attachment(self, obj: ConsultingRequest) -> str | None:
        return obj.attachment_filename or None


def _answer(consulting_request: ConsultingRequest, code: int = status.HTTP_200_OK) -> Response:
    return Response(ConsultingRequestOutputSerializer(consulting_request).data, status=code)


class ConsultingListCreateApi(APIView):
    # Multipart to send an attachment; JSON for a request without one.
    parser_classes = [MultiPartParser, JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        category = serializers.ChoiceField(choices=ConsultingRequest.Category.choices)
        description = StrictCharField(max_length=5000)
        model = IdField(required=False, allow_null=True)
        team = IdField(required=False)
        attachment = serializers.FileField(required=False, allow_empty_file=True)

    @extend_schema(responses=ConsultingRequestOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        """The caller's teams' requests; for a consultant also the open ones and their own."""
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.requests_for_caller(caller=api_caller(request)),
            serializer_class=ConsultingRequestOutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: ConsultingRequestOutputSerializer})
    def post(self, request: Request) -> Response:
        data = request.data  # parses the body; the size limit is enforced while it streams
        raise_if_upload_too_large(request._request)
        serializer = self.InputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        consulting_request = services.consulting_request_create(
            caller=api_caller(request),
            category=values["category"],
            description=values["description"],
            team_id=values.get("team"),
            model_id=values.get("model"),
            attachment=values.get("attachment"),
        )
        return _answer(consulting_request, status.HTTP_201_CREATED)


class ConsultingDetailApi(APIView):
    @extend_schema(responses=ConsultingRequestOutputSerializer)
    def get(self, request: Request, request_id: int) -> Response:
        return _answer(
            selectors.access_consulting_request(caller=api_caller(request), id=request_id)
        )


class ConsultingAttachmentApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, request_id: int) -> FileResponse:
        """The attached file, for the request's team and its consultant."""
        consulting_request = selectors.access_consulting_attachment(
            caller=api_caller(request), id=request_id
        )
        return attachments.attachment_response(
            name=consulting_request.attachment_name,
            filename=consulting_request.attachment_filename,
        )


class ConsultingApproveApi(APIView):
    @extend_schema(request=None, responses=ConsultingRequestOutputSerializer)
    def post(self, request: Request, request_id: int) -> Response:
        """A consultant takes an open request."""
        caller = api_caller(request)
        consulting_request = selectors.access_consulting_request(caller=caller, id=request_id)
        return _answer(
            services.consulting_request_approve(
                caller=caller, consulting_request=consulting_request
            )
        )


class ConsultingContractApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        amount = AmountField(help_text="What the team pays, held at acceptance.")
        budget_estimate = AmountField()
        delay_days = serializers.IntegerField(min_value=0, max_value=services.MAX_DELAY_DAYS)

    @extend_schema(request=InputSerializer, responses=ConsultingRequestOutputSerializer)
    def post(self, request: Request, request_id: int) -> Response:
        """The request's consultant proposes the contract."""
        caller = api_caller(request)
        consulting_request = selectors.access_consulting_request(caller=caller, id=request_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _answer(
            services.consulting_request_contract(
                caller=caller, consulting_request=consulting_request, **serializer.validated_data
            )
        )


class ConsultingAcceptApi(APIView):
    @extend_schema(
        request=None,
        responses={200: ConsultingRequestOutputSerializer, **INSUFFICIENT_CREDITS},
    )
    def post(self, request: Request, request_id: int) -> Response:
        """The team accepts the contract: its amount is held from the team's balance."""
        caller = api_caller(request)
        consulting_request = selectors.access_consulting_request(caller=caller, id=request_id)
        return _answer(
            services.consulting_request_accept(caller=caller, consulting_request=consulting_request)
        )


class ConsultingFinishApi(APIView):
    @extend_schema(request=None, responses=ConsultingRequestOutputSerializer)
    def post(self, request: Request, request_id: int) -> Response:
        """The consultant finished: the held amount is paid out."""
        caller = api_caller(request)
        consulting_request = selectors.access_consulting_request(caller=caller, id=request_id)
        return _answer(
            services.consulting_request_finish(caller=caller, consulting_request=consulting_request)
        )


class ConsultingCancelApi(APIView):
    @extend_schema(request=None, responses=ConsultingRequestOutputSerializer)
    def post(self, request: Request, request_id: int) -> Response:
        """Either side cancels before the work is finished; a hold is released."""
        caller = api_caller(request)
        consulting_request = selectors.access_consulting_request(caller=caller, id=request_id)
        return _answer(
            services.consulting_request_cancel(caller=caller, consulting_request=consulting_request)
        )
