"""Password reset and sign-up (pages and API) are limited per target e-mail address and per
client address, counted in the shared "throttles" cache."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from mlmanager.core.tests.factories import PASSWORD, member
from mlmanager.core.throttling import FixedWindowRateThrottle

pytestmark = pytest.mark.django_db

# 20 minutes into an hour window: Retry-After is the 40 minutes left.
NOW = 3600 * 500_000 + 1200.0


@pytest.fixture(autouse=True)
def _limits(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FixedWindowRateThrottle, "timer", staticmethod(lambda: NOW))
    settings.MLMANAGER_ACCOUNT_EMAIL_RATE = "2/hour"
    settings.MLMANAGER_ACCOUNT_ADDRESS_RATE = "3/hour"


def reset(email: str, address: str = "203.0.113.5") -> Any:
    return Client(REMOTE_ADDR=address).post("/accounts/password/reset/", {"email": email})


def test_password_reset_mails_to_one_address_are_limited() -> None:
    user = member("owner")
    statuses = [reset(user.email, address=f"198.51.100.{n}").status_code for n in range(4)]
    assert statuses == [302, 302, 429, 429]  # from any address: the count is the target's
    assert len(mail.outbox) == 2

    refused = reset(user.email.upper(), address="198.51.100.77")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "2400"
    assert "Try again in 40 min." in refused.content.decode()
    assert len(mail.outbox) == 2


def test_password_reset_requests_from_one_address_are_limited() -> None:
    statuses = [reset(f"someone{n}@example.com").status_code for n in range(4)]
    assert statuses == [302, 302, 302, 429]
    assert reset("someone9@example.com", address="203.0.113.6").status_code == 302


def test_password_reset_form_still_opens_when_limited() -> None:
    for n in range(3):
        reset(f"someone{n}@example.com")
    assert Client(REMOTE_ADDR="203.0.113.5").get("/accounts/password/reset/").status_code == 200


def signup_api(email: str, address: str = "203.0.113.5") -> Any:
    return APIClient(REMOTE_ADDR=address).post(
        "/api/v1/auth/signup/", {"email": email, "password": PASSWORD}, format="json"
    )


def test_signup_api_is_limited_per_email_address() -> None:
    first, second = (signup_api("ada@example.com", address=f"198.51.100.{n}") for n in range(2))
    assert first.status_code != 429 and second.status_code != 429
    refused = signup_api("Ada@Example.com", address="198.51.100.9")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "2400"
    assert refused.json()["error"]["code"] == "throttled"


def test_signup_api_is_limited_per_client_address() -> None:
    statuses = [signup_api(f"someone{n}@example.com").status_code for n in range(4)]
    assert 429 not in statuses[:3] and statuses[3] == 429
    assert signup_api("someone9@example.com", address="203.0.113.6").status_code != 429


def test_signup_page_is_limited() -> None:
    def signup_page(email: str, address: str) -> Any:
        return Client(REMOTE_ADDR=address).post(
            "/accounts/signup/", {"email": email, "password": PASSWORD, "name": "Ada"}
        )

    allowed = [signup_page("ada@example.com", f"198.51.100.{n}").status_code for n in range(2)]
    assert 429 not in allowed
    refused = signup_page("ada@example.com", "198.51.100.9")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "2400"
    # The page and the API count the same sign-ups.
    assert signup_api("ada@example.com", address="198.51.100.10").status_code == 429


def test_token_endpoint_is_limited_per_client_address(settings: Any) -> None:
    settings.MLMANAGER_TOKEN_RATE = "2/min"
    user = member("owner")
    client = APIClient(REMOTE_ADDR="203.0.113.5")
    statuses = [
        client.post(
            "/api/v1/auth/token/", {"email": user.email, "password": PASSWORD}, format="json"
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [201, 201, 429]
