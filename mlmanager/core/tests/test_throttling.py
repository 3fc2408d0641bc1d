"""API rate limits and the client address they (and the login lockout) key on."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import RequestFactory

from config.env import ConfigurationError, read_environment
from mlmanager.core.models import RequestCount
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.core.throttling import (
    ApiRateThrottle,
    FixedWindowRateThrottle,
    client_address,
    count_request,
)

# A fixed clock 20 s into a minute window: no test depends on when it runs.
NOW = 60 * 1_000_000 + 20.0


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FixedWindowRateThrottle, "timer", staticmethod(lambda: NOW))


def _request(remote: str = "203.0.113.9", forwarded: str | None = None) -> Any:
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **headers)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "198.51.100.1", "203.0.113.9"),  # no proxy: the header is the client's own text
        (1, None, "203.0.113.9"),
        (1, "198.51.100.66, 198.51.100.1", "198.51.100.1"),  # what our proxy appended
        (2, "198.51.100.66, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        (3, "198.51.100.1", "198.51.100.1"),  # a shorter chain: its leftmost address
        (1, "198.51.100.66, not-an-address", "203.0.113.9"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address_trusts_only_the_configured_proxies(
    settings: Any, proxies: int, forwarded: str | None, expected: str
) -> None:
    settings.MLMANAGER_TRUSTED_PROXIES = proxies
    assert client_address(_request(forwarded=forwarded)) == expected


def test_drf_and_axes_use_the_same_client_address_rule(settings: Any) -> None:
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == settings.MLMANAGER_TRUSTED_PROXIES
    assert settings.AXES_CLIENT_IP_CALLABLE == "mlmanager.core.throttling.client_address"


@pytest.mark.django_db
@pytest.mark.usefixtures("fixed_clock")
def test_api_calls_past_the_rate_get_429_with_retry_after(settings: Any) -> None:
    settings.MLMANAGER_API_RATE = "3/min"
    owner = member("owner")
    api = api_client_for(owner)
    assert [api.get("/api/v1/me/").status_code for _ in range(3)] == [200, 200, 200]

    refused = api.get("/api/v1/me/")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "40"  # the rest of the minute window
    assert refused.json()["error"] == {
        "code": "throttled",
        "message": "Request was throttled. Expected available in 40 seconds.",
        "details": {},
    }
    # Per user, not per token: a second token of the same user shares the count.
    assert api_client_for(owner).get("/api/v1/me/").status_code == 429
    # Another user has a count of their own.
    assert api_client_for(member("owner")).get("/api/v1/me/").status_code == 200


@pytest.mark.django_db
def test_the_next_window_starts_a_new_count(settings: Any, monkeypatch: Any) -> None:
    settings.MLMANAGER_API_RATE = "1/min"
    api = api_client_for(member("owner"))
    monkeypatch.setattr(FixedWindowRateThrottle, "timer", staticmethod(lambda: NOW))
    assert [api.get("/api/v1/me/").status_code for _ in range(2)] == [200, 429]
    monkeypatch.setattr(FixedWindowRateThrottle, "timer", staticmethod(lambda: NOW + 40))
    assert api.get("/api/v1/me/").status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("fixed_clock")
def test_counts_live_in_the_shared_database_table(settings: Any) -> None:
    """Every gunicorn worker (and machine) reads the same count, not one in its own memory."""
    settings.MLMANAGER_API_RATE = "5/min"
    user = member("owner")
    api = api_client_for(user)
    api.get("/api/v1/me/")
    api.get("/api/v1/me/")
    window = int(NOW // 60)
    assert list(RequestCount.objects.values_list("key", "count")) == [
        (f"throttle_api_user-{user.pk}:{window}", 2)
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_each_count_once() -> None:
    """Four threads with their own database connections, as four web processes would be: an
    increment read and then written would lose some of the 200 and let more than a limit in."""

    def hit_50_times() -> None:
        try:
            for _ in range(50):
                count_request("throttle_test:1", 60)
        finally:
            connection.close()

    threads = [threading.Thread(target=hit_50_times) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert RequestCount.objects.get(key="throttle_test:1").count == 200


@pytest.mark.django_db
def test_counts_of_ended_windows_are_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    RequestCount.objects.create(key="throttle_old:1", count=7, expires_at=int(time.time()) - 1)
    RequestCount.objects.create(key="throttle_live:1", count=3, expires_at=int(time.time()) + 60)
    monkeypatch.setattr("mlmanager.core.throttling.random.randrange", lambda n: 0)
    assert count_request("throttle_new:1", 60) == 1
    assert set(RequestCount.objects.values_list("key", flat=True)) == {
        "throttle_live:1",
        "throttle_new:1",
    }


def test_callers_without_a_user_count_by_address(settings: Any) -> None:
    """For views open to everyone that keep the default throttle (others answer 401 first)."""
    settings.MLMANAGER_API_RATE = "2/min"
    request = _request(remote="198.51.100.7")
    request.user = AnonymousUser()
    key = ApiRateThrottle().get_cache_key(request, None)
    assert key == "throttle_api_address-198.51.100.7"


def test_default_rates_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLMANAGER_API_RATE", "MLMANAGER_PREDICT_RATE", "MLMANAGER_TRUSTED_PROXIES"):
        monkeypatch.delenv(name, raising=False)
    environment = read_environment()
    assert (environment.api_rate, environment.predict_rate) == ("1200/min", "6000/min")
    assert (environment.token_rate, environment.account_email_rate) == ("20/min", "5/hour")
    assert environment.account_address_rate == "30/hour"
    assert (environment.login_failure_limit, environment.login_lockout_minutes) == (5, 15)
    assert environment.trusted_proxies == 0
    monkeypatch.setenv("MLMANAGER_API_RATE", "off")
    assert read_environment().api_rate is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MLMANAGER_API_RATE", "1200"),
        ("MLMANAGER_PREDICT_RATE", "fast"),
        ("MLMANAGER_TRUSTED_PROXIES", "-1"),
        ("MLMANAGER_LOGIN_FAILURE_LIMIT", "0"),
    ],
)
def test_invalid_limits_refuse_to_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        read_environment()


def test_with_redis_the_counts_go_to_redis(tmp_path: Any) -> None:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MLMANAGER_") and key != "DATABASE_URL"
    }
    environment.update(
        REDIS_URL="redis://127.0.0.1:6379/3",
        MLMANAGER_DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "cache = settings.CACHES['throttles']; print(cache['BACKEND'], cache['LOCATION'])",
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["django_redis.cache.RedisCache", "redis://127.0.0.1:6379/3"]
