"""config.asgi, as `mlmanager live` serves it: sockets to the consumer, plain HTTP to Django."""

from __future__ import annotations

from typing import Any

import pytest

from mlmanager.live.tests.conftest import run, socket

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_entry_point_serves_the_socket_to_a_signed_in_user(owner: Any) -> None:
    from config.asgi import application

    assert set(application.application_mapping) == {"http", "websocket"}
    communicator = socket(owner, application=application)

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.disconnect()

    run(scenario)
