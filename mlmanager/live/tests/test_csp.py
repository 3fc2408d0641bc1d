"""The Content-Security-Policy header: the settings' policy, with the live socket in connect-src
(the page's host on the live port, or MLMANAGER_LIVE_URL), ws: or wss: as the page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

POLICY = (
    "default-src 'self'; script-src 'self'; object-src 'none'; style-src 'self'; "
    "img-src 'self' data:; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; "
    "connect-src 'self' {socket}"
)


@pytest.fixture(autouse=True)
def _live_port(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    settings.MLMANAGER_LIVE_URL = ""
    settings.MLMANAGER_LIVE_PORT = 9101


def _directives(header: str) -> set[str]:
    return {directive.strip() for directive in header.split(";")}


@pytest.mark.parametrize(
    ("host", "secure", "socket"),
    [
        ("ml.example.com", False, "ws://ml.example.com:9101"),
        ("ml.example.com:8000", True, "wss://ml.example.com:9101"),
        ("[::1]:8000", False, "ws://[::1]:9101"),
    ],
)
def test_the_socket_on_the_page_host(host: str, secure: bool, socket: str) -> None:
    response = Client().get("/accounts/login/", HTTP_HOST=host, secure=secure)
    assert _directives(response["Content-Security-Policy"]) == _directives(
        POLICY.format(socket=socket)
    )


def test_the_socket_at_the_live_url(settings: Any) -> None:
    settings.MLMANAGER_LIVE_URL = "https://live.example.com/updates"
    response = Client().get("/accounts/login/", HTTP_HOST="ml.example.com")
    # The origin only: a source with a path would match that one path.
    assert "connect-src 'self' wss://live.example.com;" in response["Content-Security-Policy"] + ";"


def test_api_answers_carry_the_policy_too() -> None:
    response = Client().get("/api/v1/me/")
    assert response.status_code == 401
    assert "default-src 'self'" in response["Content-Security-Policy"]
