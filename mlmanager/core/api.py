"""The API's conventions, in one place.

- The single error mapping: every error leaves as {"error": {code, message, details}}, bugs
  (500) and Django's own refusals included, in development as in production; paths under
  /api/ that no operation answers get the same shape (`api_not_found`, `server_error`).
- The schema (`AutoSchema`): pages for lists, FilterSets for query parameters, the errors
  every operation may answer.
- `GET /api/v1/` (`ApiIndexApi`) and the strict text field of input serializers.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.core import signals
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve, reverse
from django.utils.log import log_response
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular import openapi
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.openapi import Direction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from mlmanager.core.errors import ApplicationError, NotFound, PayloadTooLarge
from mlmanager.core.filters import MAX_ID
from mlmanager.core.pagination import StandardPagination

logger = logging.getLogger(__name__)

_CODES_BY_STATUS = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def _first_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        message = _first_message(value)
        return message if key in ("non_field_errors", "detail") else f"{key}: {message}"
    return str(detail)


def error_response(error: ApplicationError) -> Response:
    response = Response(error.as_dict(), status=error.status_code)
    if error.retry_after_s is not None:
        response["Retry-After"] = str(error.retry_after_s)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return error_response(exc)
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"errors": exc.messages}
        return error_response(
            ApplicationError(exc.messages[0], code="invalid", details=details, status_code=400)
        )
    if isinstance(exc, SuspiciousOperation):
        return _suspicious_operation_response(exc, context)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return _server_error_response(exc, context)
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        message = _first_message(detail)
        details = detail if isinstance(detail, dict) else {"errors": detail}
    else:
        code = getattr(exc, "default_code", None) or _CODES_BY_STATUS.get(
            response.status_code, "error"
        )
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        if isinstance(codes, str):
            code = codes
        message = _first_message(detail)
        details = {}
    if response.status_code == status.HTTP_401_UNAUTHORIZED and code == "authentication_failed":
        code = "not_authenticated" if "not provided" in message else code
    response.data = {"error": {"code": code, "message": message, "details": details}}
    return response


def _suspicious_operation_response(exc: SuspiciousOperation, context: dict[str, Any]) -> Response:
    """What Django answers with its 400 page (a body past DATA_UPLOAD_MAX_MEMORY_SIZE, too many
    fields), in the API's shape; logged to django.security as Django does."""
    error = (
        PayloadTooLarge(_("The request body is too large."))
        if isinstance(exc, RequestDataTooBig)
        else ApplicationError(_("The request is malformed."), code="bad_request")
    )
    response = error_response(error)
    log_response(
        str(exc),
        exception=exc,
        request=context["request"]._request,
        response=response,
        level="error",
        logger=logging.getLogger(f"django.security.{exc.__class__.__name__}"),
    )
    return response


def _server_error_response(exc: Exception, context: dict[str, Any]) -> Response:
    """A bug: logged and signalled as Django does for an uncaught exception (so error reporting
    and the test client see it), answered in the API's shape in every mode; DEBUG's HTML page
    would not be read by an API client."""
    request = context["request"]._request
    signals.got_request_exception.send(sender=None, request=request)
    response = error_response(
        ApplicationError(_("Internal server error."), code="server_error", status_code=500)
    )
    log_response(
        "%s: %s",
        "Internal Server Error",
        request.path,
        response=response,
        request=request,
        exception=exc,
    )
    return response


API_PREFIX = "/api/"


API_NOT_FOUND_URL_NAME = "api-not-found"


def _not_found_message(request: HttpRequest) -> str:
    if not request.path.endswith("/"):
        try:
            with_slash = resolve(f"{request.path}/").url_name
        except Resolver404:
            with_slash = None
        if with_slash not in (None, API_NOT_FOUND_URL_NAME):
            return _("Not found: API paths end with a slash (%(path)s/).") % {"path": request.path}
    return _("Not found: no API operation has this path. GET %(index)s lists them.") % {
        "index": reverse("api:index")
    }


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Every path under /api/ no operation answers (unknown, or an id that is not a number):
    404 in the API's shape, for every method, in development too (where Django would show its
    debug page listing the URL patterns). Routed as API_NOT_FOUND_URL_NAME, after every API
    route."""
    error = NotFound(_not_found_message(request))
    return JsonResponse(error.as_dict(), status=error.status_code)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an error outside any API view (e.g. in a middleware) in the API's shape under
    /api/, Django's page elsewhere. DRF views answer their own (exception_handler)."""
    if request.path.startswith(API_PREFIX):
        error = ApplicationError(_("Internal server error."), code="server_error", status_code=500)
        return JsonResponse(error.as_dict(), status=error.status_code)
    return defaults.server_error(request)


class IdField(serializers.IntegerField):
    """An object's id in a request body: a whole number from 1 to the largest the database
    stores (a bigger one would overflow the query: a 500, not a 400)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class StrictCharField(serializers.CharField):
    """Text that must be sent as a JSON string: DRF's CharField turns 0 or 1.5 into "0" or
    "1.5", so a client sending the wrong type would be answered as if it had not."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        # The length as sent, as the schema's maxLength counts it (DRF measures after
        # trimming the ends' whitespace).
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)  # type: ignore[no-any-return]


TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


@extend_schema_field({"type": "string", "pattern": TIME_OF_DAY})
class TimeOfDayField(serializers.TimeField):
    """A wall-clock time without a zone, "07:30" or "07:30:00": each recipient's own zone
    applies, so an offset means nothing and is refused. (The schema's `format: time` would
    ask for one: RFC 3339's full-time.) DRF's TimeField alone takes "0730" or "7:3" too."""

    def to_internal_value(self, value: Any) -> Any:
        if not isinstance(value, str) or not re.match(TIME_OF_DAY, value):
            self.fail("invalid", format="HH:MM")
        return super().to_internal_value(value)


class ErrorBodySerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="Stable, for programs: e.g. not_found, invalid_filter.")
    message = serializers.CharField(help_text="A sentence for people.")
    details = serializers.DictField(help_text="More about the error, e.g. messages by field.")


class ErrorSerializer(serializers.Serializer[Any]):
    """The one shape of every error the API answers."""

    error = ErrorBodySerializer()


# What any operation may answer besides its success: the caller's mistakes, missing or refused
# credentials, ids that are not (or not the caller's) objects, and rate limits.
ERROR_STATUSES = {
    "400": "The request is invalid (see error.details).",
    "401": "No valid credentials were sent.",
    "403": "The caller's role or token does not allow this.",
    "404": "No such object for this caller (another team's objects are not found either).",
    "429": "Too many requests: try again after Retry-After seconds.",
}
STATE_CHANGE_ERROR_STATUSES = {
    "409": "The object's state does not allow this now (e.g. a job already finished).",
}
REQUEST_BODY_ERROR_STATUSES = {
    "413": "The request body is too large.",
    "415": "The request body's content type is not one this operation reads.",
}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}


class AutoSchema(openapi.AutoSchema):
    """The API's schema conventions, applied once for every operation.

    - Components are named after the view that nests them: views nest their serializers
      (`SignupApi.InputSerializer`); the default names would all be "Input"/"Output" and
      collide. `SignupApi.InputSerializer` becomes "SignupInput".
    - A GET answering a list (`responses=...(many=True)`) is documented as the page
      `paginated_response` sends, with its limit and offset parameters.
    - A view's `filterset_class` (core.filters) documents its query parameters.
    - Every operation documents the errors it may answer, in the shape of `ErrorSerializer`.
    - An input serializer's `required_one_of` (field names) documents that exactly one of
      them must be sent (its view or service refuses none or several).
    """

    def get_serializer_name(self, serializer: Any, direction: Direction) -> str:
        name = super().get_serializer_name(serializer, direction)
        outer = type(serializer).__qualname__.split(".")[:-1]
        if not outer:
            return name
        return "".join(part.removesuffix("Api") for part in outer) + name

    def _map_basic_serializer(self, serializer: Any, direction: Direction) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        alternatives = getattr(serializer, "required_one_of", ())
        if direction == "request" and alternatives:
            schema["oneOf"] = [{"required": [name]} for name in alternatives]
        return schema

    def _get_paginator(self) -> StandardPagination | None:
        # Every list is paginated (core.pagination.paginated_response): the views do not
        # declare a paginator, so the schema uses the one they all answer with.
        return StandardPagination()

    def _get_filter_parameters(self) -> list[dict[str, Any]]:
        filterset_class = getattr(self.view, "filterset_class", None)
        if filterset_class is None or not self._is_list_view():
            return []
        extension = DjangoFilterExtension(None)
        return [
            parameter
            for name, filter_field in filterset_class.base_filters.items()
            for parameter in extension.resolve_filter_field(
                self, filterset_class._meta.model, filterset_class, name, filter_field
            )
        ]

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        statuses = dict(ERROR_STATUSES)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            statuses.update(STATE_CHANGE_ERROR_STATUSES)
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            statuses.update(REQUEST_BODY_ERROR_STATUSES)
        for status_code, description in statuses.items():
            if status_code in responses:
                continue
            response = self._get_response_for_code(
                OpenApiResponse(ErrorSerializer, description=description),
                status_code,
                media_types=["application/json"],
                direction=direction,
            )
            if status_code == "429":
                response["headers"] = RETRY_AFTER_HEADER
            responses[status_code] = response
        return responses


class ApiIndexApi(APIView):
    """GET /api/v1/: where each resource of the API is, and the schema and its docs."""

    permission_classes = [AllowAny]
    # URL names of the resources, by the name the index shows (set by the URLconf).
    resources: dict[str, str] = {}

    class OutputSerializer(serializers.Serializer[Any]):
        resources = serializers.DictField(child=serializers.URLField())
        schema = serializers.URLField()
        docs = serializers.URLField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "resources": {
                    name: request.build_absolute_uri(reverse(url_name))
                    for name, url_name in self.resources.items()
                },
                "schema": request.build_absolute_uri(reverse("schema")),
                "docs": request.build_absolute_uri(reverse("api-docs")),
            }
        )
