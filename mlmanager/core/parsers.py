"""The API's request parsers: DRF's, refusing text with a NUL character.

PostgreSQL cannot store U+0000 in a text or jsonb column: one such character in a value fails
the whole statement (`UntranslatableCharacter`), after the request was answered when the value
goes through a buffered write such as the prediction log. So every text a client sends is
refused at the door with 400 `invalid_text`, whichever database runs, and no serializer field or
service has to remember it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import parsers

from mlmanager.core.errors import ApplicationError

NUL = "\x00"
# JSON can only carry U+0000 as this escape (a raw control character is invalid JSON), so a
# body without it holds no NUL and is not walked: the check costs one scan of the bytes.
JSON_NUL_ESCAPE = b"\\u0000"


def contains_nul(value: Any) -> bool:
    """Whether any text in `value` (JSON-like: keys included) holds a NUL character."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, Mapping):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False


def refuse_nul_in_json(body: bytes, parsed: Any) -> None:
    """Raise `invalid_text` when the decoded `body` holds a NUL anywhere."""
    if JSON_NUL_ESCAPE in body and contains_nul(parsed):
        raise invalid_text()


def invalid_text() -> ApplicationError:
    return ApplicationError(
        _("Text may not contain the NUL character (\\u0000); remove it and send again."),
        code="invalid_text",
    )


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (strict: NaN and Infinity refused) without NUL characters."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        body = stream.read() if stream is not None else b""
        parsed = super().parse(io.BytesIO(body), media_type, parser_context)
        refuse_nul_in_json(body, parsed)
        return parsed


class FormParser(parsers.FormParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        _refuse_nul_in_form(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """The fields; Django already drops non-printable characters from file names, and a
    file's content is checked by whatever reads it."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        parsed = super().parse(stream, media_type, parser_context)
        _refuse_nul_in_form(parsed.data)
        return parsed


def _refuse_nul_in_form(data: Any) -> None:
    if any(contains_nul(key) or contains_nul(data.getlist(key)) for key in data):
        raise invalid_text()
