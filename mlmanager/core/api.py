"""The API's single error mapping: every error leaves as {"error": {code, message, details}}."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular import openapi
from drf_spectacular.openapi import Direction
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mlmanager.core.errors import ApplicationError

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
    return Response(error.as_dict(), status=error.status_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return error_response(exc)
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"errors": exc.messages}
        return error_response(
            ApplicationError(exc.messages[0], code="invalid", details=details, status_code=400)
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
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


class AutoSchema(openapi.AutoSchema):
    """Names schema components after the view that nests them.

    Views nest their serializers (`SignupApi.InputSerializer`); the default names would all be
    "Input"/"Output" and collide. `SignupApi.InputSerializer` becomes "SignupInput".
    """

    def get_serializer_name(self, serializer: Any, direction: Direction) -> str:
        name = super().get_serializer_name(serializer, direction)
        outer = type(serializer).__qualname__.split(".")[:-1]
        if not outer:
            return name
        return "".join(part.removesuffix("Api") for part in outer) + name
