"""Upload size limit enforced while the request body streams in.

Django hands each chunk to the handlers in order; this one sits first, counts bytes and stops the
upload the moment the limit is passed, so nothing past the limit is written to disk. The view
then answers 413 (see `raise_if_upload_too_large`). When the request declares a length over the
limit, nothing is read at all.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from mlmanager.core.errors import PayloadTooLarge

# Multipart framing and ordinary form fields add a little to the raw file size.
_MULTIPART_ALLOWANCE = 64 * 1024


class SizeLimitUploadHandler(FileUploadHandler):
    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit: int = settings.MLMANAGER_MAX_UPLOAD_BYTES
        self.received = 0

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> None:
        # A declared length over the limit is refused before reading any of the body.
        if content_length and content_length > self.limit + _MULTIPART_ALLOWANCE:
            raise upload_too_large_error()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self._refuse()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None

    def _refuse(self) -> None:
        """The body is longer than declared (or undeclared): stop storing it mid-stream."""
        if self.request is not None:
            self.request.upload_too_large = True  # type: ignore[attr-defined]
        # connection_reset=False: Django reads and discards the rest of the body, so the client
        # gets a clean 413 response instead of a reset connection.
        raise StopUpload(connection_reset=False)


def upload_too_large_error() -> PayloadTooLarge:
    limit = settings.MLMANAGER_MAX_UPLOAD_BYTES
    return PayloadTooLarge(
        _("The file is larger than the upload limit of %(limit)s.")
        % {"limit": filesizeformat(limit)},
        code="file_too_large",
        details={"max_bytes": limit},
    )


def raise_if_upload_too_large(request: HttpRequest) -> None:
    """After the body was parsed: answer 413 if the handler stopped the upload mid-stream."""
    if getattr(request, "upload_too_large", False):
        raise upload_too_large_error()
