"""The readings ingest: JSON or CSV, from people, their tokens, or devices with a device key."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import orjson
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import permissions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import BearerTokenAuthentication, api_caller
from mlmanager.core.api import AutoSchema, ErrorSerializer, StrictCharField
from mlmanager.core.errors import ApplicationError, PayloadTooLarge
from mlmanager.core.parsers import JSONParser, refuse_nul_in_json
from mlmanager.sites.api.serializers import (
    IngestAnswerSerializer,
)
from mlmanager.sites.authentication import DeviceKeyAuthentication, is_device_request
from mlmanager.sites.services import readings as reading_services

# The largest ingest body: 100 000 readings of about 100 bytes in JSON, with room. Read by the
# view itself, as Django's DATA_UPLOAD_MAX_MEMORY_SIZE (5 MiB) guards request.body only.
MAX_INGEST_BODY_BYTES = 32 * 1024 * 1024
CSV_MEDIA_TYPE = "text/csv"
# What a CSV body starts with, for the schema (other column orders are read too).
CSV_HEADER_PATTERN = "^(sensor|device_id),timestamp,value(,quality)?\r?\n"


class PersonOrDevice(permissions.BasePermission):
    """A signed-in person or token, or a device key (the one endpoint that takes it)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated) or is_device_request(request)


# Each reading as the ingest reads it. No type or required property is stated: a reading that
# is not what it should be is rejected on its own (with its index and a reason) while the
# request is answered 200 with the others, so the schema cannot refuse it either.
READING_SCHEMA = {
    "description": "A reading: {sensor | device_id, timestamp, value, quality?}.",
    "properties": {
        "sensor": {"description": "The sensor's id (an integer), or:"},
        "device_id": {"description": "the sensor's device id (text)."},
        "timestamp": {"description": "ISO 8601 (without an offset: UTC) or seconds since 1970."},
        "value": {"description": "The raw value, a number."},
        "quality": {"description": "good (default), uncertain or bad."},
    },
    "example": {"sensor": 1, "timestamp": "2026-12-07T10:00:00Z", "value": 21.5},
}


@extend_schema_field(
    {
        "type": "array",
        "items": READING_SCHEMA,
        "maxItems": reading_services.MAX_READINGS_PER_REQUEST,
    }
)
class ReadingsField(serializers.ListField):
    pass


class IngestSchema(AutoSchema):
    """The ingest's body is required (JSON or CSV); drf-spectacular leaves a body documented
    per media type optional."""

    def _get_request_body(self, direction: Any = "request") -> Any:
        body = super()._get_request_body(direction)
        if body is not None:
            body["required"] = True
        return body


class ReadingIngestApi(APIView):
    """Readings from devices, scripts and gateways: JSON, or CSV with a header row."""

    authentication_classes = [
        DeviceKeyAuthentication,
        BearerTokenAuthentication,
        SessionAuthentication,
    ]
    permission_classes = [PersonOrDevice]
    # Not used: post reads the body itself, past DATA_UPLOAD_MAX_MEMORY_SIZE (_read_body).
    parser_classes = [JSONParser]

    schema = IngestSchema()

    class InputSerializer(serializers.Serializer[Any]):
        """Documents the JSON body (the view reads it itself)."""

        batch_id = StrictCharField(
            required=False, max_length=200, help_text="Sending it again changes nothing."
        )
        readings = ReadingsField()

    @extend_schema(
        request={
            "application/json": InputSerializer,
            CSV_MEDIA_TYPE: {
                "type": "string",
                "pattern": CSV_HEADER_PATTERN,
                "description": "A header row naming sensor or device_id, timestamp, value and "
                "optionally quality, then a reading per row; the batch id in ?batch_id=.",
            },
        },
        parameters=[
            OpenApiParameter(
                "batch_id",
                {"type": "string", "maxLength": 200},
                required=False,
                description="The batch id of a CSV body (of a JSON body without its own).",
            )
        ],
        responses={
            200: IngestAnswerSerializer,
            413: OpenApiResponse(
                ErrorSerializer, description="More than 100 000 readings, or a body over 32 MiB."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        caller = api_caller(request)
        body = _read_body(request)
        query_batch_id = request.query_params.get("batch_id") or None
        if query_batch_id is not None and len(query_batch_id) > 200:
            raise ApplicationError(
                _("batch_id is text of 1 to 200 characters."), code="invalid_batch_id"
            )
        if request.content_type.split(";")[0].strip().lower() == CSV_MEDIA_TYPE:
            readings = _csv_readings(body)
            batch_id = query_batch_id
        else:
            readings, batch_id = _json_readings(request, body, query_batch_id)
        answer = reading_services.readings_ingest(
            caller=caller, readings=readings, batch_id=batch_id
        )
        return Response(IngestAnswerSerializer(answer).data)


def _read_body(request: Request) -> bytes:
    """The body, up to MAX_INGEST_BODY_BYTES (413 past it, before reading it when the client
    says its length)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    too_large = PayloadTooLarge(
        _("The request body is larger than %(limit)s MiB; send the readings in several requests.")
        % {"limit": MAX_INGEST_BODY_BYTES // (1024 * 1024)}
    )
    if length > MAX_INGEST_BODY_BYTES:
        raise too_large
    body: bytes = request._request.read(MAX_INGEST_BODY_BYTES + 1)
    if len(body) > MAX_INGEST_BODY_BYTES:
        raise too_large
    return body


def _json_readings(
    request: Request, body: bytes, query_batch_id: str | None
) -> tuple[list[Any], Any]:
    media_type = request.content_type.split(";")[0].strip().lower()
    if media_type not in ("application/json", ""):
        raise UnsupportedMediaType(media_type)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        # The standard parser reads the NaN and Infinity some devices send; the ingest then
        # rejects those readings one by one instead of the whole request.
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            raise ApplicationError(_("The body is not valid JSON."), code="invalid_json") from None
    refuse_nul_in_json(body, parsed)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("readings"), list):
        raise ApplicationError(
            _('The body is a JSON object with a "readings" list.'), code="invalid"
        )
    if "batch_id" not in parsed:
        return parsed["readings"], query_batch_id
    batch_id = parsed["batch_id"]
    if not (isinstance(batch_id, str) and 0 < len(batch_id) <= 200):  # null too
        raise ApplicationError(
            _("batch_id is text of 1 to 200 characters."), code="invalid_batch_id"
        )
    return parsed["readings"], batch_id


CSV_COLUMNS = ("sensor", "device_id", "timestamp", "value", "quality")


def _csv_readings(body: bytes) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApplicationError(_("The CSV body is not UTF-8 text."), code="invalid_csv") from None
    if "\x00" in text:
        raise ApplicationError(_("The CSV body contains a NUL character."), code="invalid_text")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        if not {"timestamp", "value"} <= set(header) or not {"sensor", "device_id"} & set(header):
            raise ApplicationError(
                _(
                    "The first CSV row names the columns: sensor or device_id, timestamp, value "
                    "and optionally quality."
                ),
                code="invalid_csv",
            )
        positions = {name: header.index(name) for name in CSV_COLUMNS if name in header}
        readings = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # a blank line, as at the end of a file
            readings.append(
                {
                    name: (row[position].strip() or None) if position < len(row) else None
                    for name, position in positions.items()
                }
            )
    except csv.Error as error:
        raise ApplicationError(
            _("The CSV body cannot be read: %(error)s") % {"error": error}, code="invalid_csv"
        ) from None
    return readings
