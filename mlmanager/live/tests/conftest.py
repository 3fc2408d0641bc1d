"""Sockets for the consumer tests: a WebsocketCommunicator with a user's session cookie and an
Origin header, in either transport.

The tests commit for real (transactional_db): the consumer reads the database through
`database_sync_to_async`, and the poll transport must see changes made by other connections.
Each scenario is an `async def` run with `async_to_sync`, as Django runs async tests: the
consumer's database calls then come back to the test's thread and connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import Client

from mlmanager.live import consumers, events
from mlmanager.live.routing import websocket_application
from mlmanager.live.tests.communicator import WebsocketCommunicator

PAGE_ORIGIN = "http://testserver:8000"  # the page's port; the socket is on another one
IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def _publishing_not_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that makes a publication fail must not pause the next tests' publications."""
    monkeypatch.setitem(events._publishing, "paused_until", 0.0)


@pytest.fixture(params=["poll", "push"])
def mode(request: pytest.FixtureRequest, settings: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each transport in turn: `poll` (no channel layer, the embedded default) and `push` (an
    in-memory channel layer standing in for Redis, in this one process)."""
    return _use_transport(str(request.param), settings, monkeypatch)


@pytest.fixture
def poll_mode(settings: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    return _use_transport("poll", settings, monkeypatch)


def _use_transport(name: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(consumers, "POLL_INTERVAL_S", 0.05)  # a look every 50 ms, not 1 s
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER if name == "push" else {}
    return name


def socket(
    user: Any = None, *, origin: str | None = PAGE_ORIGIN, application: Any = None
) -> WebsocketCommunicator:
    """A socket to /ws/events/ as the browser opens it: `user`'s session cookie (none when
    None) and the page's Origin (none when None). Built outside the event loop: logging in
    touches the database. The application is the socket side of config.asgi, built now
    (it reads ALLOWED_HOSTS), unless given."""
    headers = []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(
        application or websocket_application(), "/ws/events/", headers=headers
    )


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()
