"""Who may open a socket, over a real connection to the live server (uvicorn on a TCP port): pages
of this run's own address and of localhost, in every mode; never another site's page, not even
in development, whose ALLOWED_HOSTS is `*`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from mlmanager.core.tests.factories import member
from mlmanager.live.routing import allowed_origins
from mlmanager.live.tests.server import LiveSocketServer

pytestmark = pytest.mark.django_db(transaction=True)

# What a browser sends from the pages of each address (the page's port, not the socket's).
LOCAL_PAGES = ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"]
OTHER_SITES = [
    "https://evil.example.net",
    "http://localhost.evil.example.net:8000",
    "http://127.0.0.1.nip.io:8000",
    "null",  # a sandboxed frame or a file:// page
]

MODES = {
    # The embedded default: every host name allowed for HTTP, the site on 127.0.0.1.
    "development": {
        "DEBUG": True,
        "ALLOWED_HOSTS": ["*"],
        "MLMANAGER_SITE_URL": "http://127.0.0.1:8000",
        "MLMANAGER_HOST": "0.0.0.0",  # noqa: S104 - every interface: no page is served from it
    },
    "production": {
        "DEBUG": False,
        "ALLOWED_HOSTS": ["ml.example.com", ".corp.example"],
        "MLMANAGER_SITE_URL": "https://ml.example.com",
        "MLMANAGER_HOST": "10.1.2.3",
    },
}
OWN_PAGES = {
    "development": [],
    "production": [
        "https://ml.example.com",
        "https://team.corp.example",
        "http://10.1.2.3:8000",
    ],
}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest, settings: Any) -> str:
    for name, value in MODES[request.param].items():
        setattr(settings, name, value)
    return str(request.param)


@pytest.fixture
def socket_server(mode: str) -> Iterator[LiveSocketServer]:
    server = LiveSocketServer()  # built after `mode`: it reads the settings
    server.start()
    yield server
    server.stop()


def _opens(server: LiveSocketServer, origin: str | None, cookie: str) -> bool:
    """Whether the live server accepts a socket with that Origin (and a signed-in session)."""
    try:
        with connect(
            f"ws://127.0.0.1:{server.port}/ws/events/",
            origin=None if origin is None else Origin(origin),
            additional_headers={"Cookie": cookie},
            proxy=None,
            open_timeout=10,
        ):
            return True
    except InvalidStatus as refused:
        assert refused.response.status_code == 403
        return False


def test_pages_of_this_run_and_of_localhost_only(
    mode: str, socket_server: LiveSocketServer
) -> None:
    client = Client()
    client.force_login(member())
    name = django_settings.SESSION_COOKIE_NAME
    cookie = f"{name}={client.cookies[name].value}"
    accepted = [*LOCAL_PAGES, *OWN_PAGES[mode]]
    outcomes = {origin: _opens(socket_server, origin, cookie) for origin in accepted}
    outcomes |= {origin: _opens(socket_server, origin, cookie) for origin in OTHER_SITES}
    outcomes["no Origin"] = _opens(socket_server, None, cookie)

    assert outcomes == {
        **dict.fromkeys(accepted, True),
        **dict.fromkeys(OTHER_SITES, False),
        "no Origin": False,
    }


def test_an_ipv6_address_is_matched_in_brackets(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    settings.MLMANAGER_SITE_URL = "http://[fd00::5]:8000"
    settings.MLMANAGER_HOST = "fd00::6"
    assert allowed_origins() == ["localhost", "127.0.0.1", "[::1]", "[fd00::5]", "[fd00::6]"]
