from __future__ import annotations

import pytest
from django.core.files.uploadhandler import StopUpload
from django.test import RequestFactory

from mlmanager.core.errors import PayloadTooLarge
from mlmanager.core.uploads import SizeLimitUploadHandler, raise_if_upload_too_large


def test_declared_length_over_limit_is_refused_before_reading(settings) -> None:
    settings.MLMANAGER_MAX_UPLOAD_BYTES = 1000
    handler = SizeLimitUploadHandler(RequestFactory().post("/"))
    with pytest.raises(PayloadTooLarge):
        handler.handle_raw_input(None, {}, 10_000_000, b"x")


def test_stream_longer_than_limit_is_stopped_midway(settings) -> None:
    settings.MLMANAGER_MAX_UPLOAD_BYTES = 1000
    request = RequestFactory().post("/")
    handler = SizeLimitUploadHandler(request)
    handler.handle_raw_input(None, {}, 0, b"x")  # chunked: no declared length
    assert handler.receive_data_chunk(b"a" * 600, 0) == b"a" * 600
    with pytest.raises(StopUpload) as stop:
        handler.receive_data_chunk(b"a" * 600, 600)
    assert stop.value.connection_reset is False  # the rest is drained, the client gets a 413
    with pytest.raises(PayloadTooLarge):
        raise_if_upload_too_large(request)
