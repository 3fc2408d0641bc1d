"""The login lockout (django-axes): by account and by client address, on the login page and on
POST /api/v1/auth/token/, counted in the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.test import Client
from rest_framework.test import APIClient

from mlmanager.accounts.models import ApiToken, User
from mlmanager.core.tests.factories import PASSWORD, member

pytestmark = pytest.mark.django_db

LIMIT = 5  # MLMANAGER_LOGIN_FAILURE_LIMIT's default
LOCKOUT_S = "900"  # MLMANAGER_LOGIN_LOCKOUT_MINUTES' default, 15 min
LOCKED_MESSAGE = (
    "Too many failed sign-in attempts for this account or from your address. Try again in 15 min."
)


def login_page(email: str, password: str, address: str = "203.0.113.5", **headers: str) -> Any:
    return Client(REMOTE_ADDR=address, **headers).post(
        "/accounts/login/", {"username": email, "password": password}
    )


def token_api(email: str, password: str, address: str = "203.0.113.5", **headers: str) -> Any:
    return APIClient(REMOTE_ADDR=address, **headers).post(
        "/api/v1/auth/token/", {"email": email, "password": password}, format="json"
    )


@pytest.fixture
def user() -> User:
    return member("owner")


def test_login_page_locks_the_account_after_the_limit(user: User) -> None:
    statuses = [login_page(user.email, "wrong").status_code for _ in range(LIMIT)]
    assert statuses == [200] * (LIMIT - 1) + [429]

    locked = login_page(user.email, PASSWORD)  # the right password, too late
    assert locked.status_code == 429
    assert locked["Retry-After"] == LOCKOUT_S
    assert LOCKED_MESSAGE in locked.content.decode()
    assert "_auth_user_id" not in locked.wsgi_request.session


def test_lockout_ends_after_the_cool_off(user: User) -> None:
    for _ in range(LIMIT):
        login_page(user.email, "wrong")
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )
    response = login_page(user.email, PASSWORD)
    assert response.status_code == 302
    assert response.wsgi_request.session["_auth_user_id"] == str(user.pk)


def test_account_lockout_holds_across_addresses_and_letter_case(settings: Any, user: User) -> None:
    settings.MLMANAGER_TRUSTED_PROXIES = 1  # each attempt through the proxy from another address
    for number in range(LIMIT):
        login_page(user.email.upper(), "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{number}")
    assert login_page(user.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.99").status_code == 429
    assert set(AccessAttempt.objects.values_list("username", flat=True)) == {user.email}


def test_address_lockout_holds_across_accounts(user: User) -> None:
    for number in range(LIMIT):
        login_page(f"nobody{number}@example.com", "wrong")
    assert login_page(user.email, PASSWORD).status_code == 429
    assert login_page(user.email, PASSWORD, address="203.0.113.6").status_code == 302


def test_a_forwarded_header_does_not_escape_the_address_lockout(user: User) -> None:
    """Without a trusted proxy (MLMANAGER_TRUSTED_PROXIES=0) X-Forwarded-For is ignored."""
    for number in range(LIMIT):
        login_page(f"nobody{number}@example.com", "wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{number}")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.5"}
    assert login_page(user.email, PASSWORD, HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429


def test_token_endpoint_locks_out_with_the_json_error_shape(user: User) -> None:
    statuses = [token_api(user.email, "wrong").status_code for _ in range(LIMIT)]
    assert statuses == [401] * (LIMIT - 1) + [429]

    locked = token_api(user.email, PASSWORD)
    assert locked.status_code == 429
    assert locked["Retry-After"] == LOCKOUT_S
    assert locked.json() == {
        "error": {"code": "locked_out", "message": LOCKED_MESSAGE, "details": {}}
    }
    assert not ApiToken.objects.exists()


def test_page_and_api_failures_count_together(user: User) -> None:
    for _ in range(LIMIT - 1):
        login_page(user.email, "wrong", address=f"198.51.100.{_}")
    assert token_api(user.email, "wrong", address="198.51.100.50").status_code == 429
    assert login_page(user.email, PASSWORD, address="198.51.100.51").status_code == 429


def test_successful_logins_below_the_limit_work(user: User) -> None:
    for _ in range(LIMIT - 1):
        login_page(user.email, "wrong")
    assert login_page(user.email, PASSWORD).status_code == 302
    assert token_api(user.email, PASSWORD).status_code == 201
