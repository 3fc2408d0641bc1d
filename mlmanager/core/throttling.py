"""Request rate limits, and the client address every limit and the login lockout key on.

The client address is read in one place, `client_address`: REMOTE_ADDR, or with
MLMANAGER_TRUSTED_PROXIES = N the Nth address from the right of X-Forwarded-For (the one the
outermost trusted proxy saw). It is the same rule as DRF's NUM_PROXIES, which settings set to
the same number; django-axes reads it through AXES_CLIENT_IP_CALLABLE.

Counts live where every process sees them: in Redis (the "throttles" cache alias) with
REDIS_URL, else in the database (`RequestCount`), each request adding one with a single atomic
statement. Each limit is a setting read when the request arrives, so tests change it with
`settings`; None turns a limit off.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import random
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils.translation import gettext as _
from rest_framework.throttling import SimpleRateThrottle

from mlmanager.core.errors import ApplicationError
from mlmanager.core.models import RequestCount

THROTTLE_CACHE = "throttles"
# One request in this many that opens a window also deletes the counts of windows that ended:
# the table stays about as small as the number of callers active in the longest window.
PURGE_ONE_IN = 100


def client_address(request: Any) -> str:
    """The caller's IP address, never taken from a header the client alone controls."""
    remote_address = str(request.META.get("REMOTE_ADDR") or "")
    proxies = settings.MLMANAGER_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote_address
    addresses = [address.strip() for address in str(forwarded).split(",")]
    candidate = addresses[-min(proxies, len(addresses))]
    try:
        # Axes stores it in an IP address column (inet on PostgreSQL): a malformed value
        # (possible when fewer proxies than configured sit in front) must not fail the login.
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_address


def count_request(key: str, expires_in_s: int) -> int:
    """Add one request to the window `key` (which ends in `expires_in_s`); the window's count."""
    if settings.REDIS_URL:
        cache = caches[THROTTLE_CACHE]
        if cache.add(key, 1, expires_in_s):
            return 1
        try:
            return int(cache.incr(key))  # atomic in Redis
        except ValueError:  # expired between add and incr: a new window began
            cache.set(key, 1, expires_in_s)
            return 1
    return _count_request_in_database(key, expires_in_s)


def _count_request_in_database(key: str, expires_in_s: int) -> int:
    # One statement, atomic on SQLite (3.35+) and PostgreSQL: concurrent requests of one caller
    # in several processes each add their one (a read-then-write, as Django's cache backends
    # increment, would lose some and let more than the limit through).
    now = int(time.time())
    table = RequestCount._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key, count, expires_at) VALUES (%s, 1, %s) "  # noqa: S608
            f"ON CONFLICT (key) DO UPDATE SET count = {table}.count + 1 RETURNING count",
            [key, now + expires_in_s],
        )
        count = int(cursor.fetchone()[0])
    if count == 1 and random.randrange(PURGE_ONE_IN) == 0:
        RequestCount.objects.filter(expires_at__lt=now).delete()
    return count


class FixedWindowRateThrottle(SimpleRateThrottle):
    """DRF's rate throttle counting in fixed windows where every process sees the count
    (`count_request`).

    DRF's own keeps the timestamp of every request in the window: at 1 200/min a list of 1 200
    floats, 10.8 KB pickled, read and rewritten on every request, and not atomically. Here a
    request costs one atomic counter update; a window boundary may let through up to twice the
    rate over a short span, which these limits tolerate.

    Subclasses set `scope` and `rate_setting` (the Django setting holding "N/period") and
    implement `get_cache_key`.
    """

    rate_setting = ""

    def __init__(self) -> None:
        # The rate is read per request (not once per class, as DRF does) so settings apply.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.seconds_left = 0.0

    def get_rate(self) -> str | None:
        return getattr(settings, self.rate_setting)  # type: ignore[no-any-return]

    def get_ident(self, request: Any) -> str:
        return client_address(request)

    def allow_request(self, request: Any, view: Any) -> bool:
        limit, duration = self.num_requests, self.duration
        if limit is None or duration is None:  # no rate: no limit
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        window = int(now // duration)
        self.seconds_left = (window + 1) * duration - now
        count = count_request(f"{key}:{window}", math.ceil(self.seconds_left) + 1)
        return count <= limit

    def wait(self) -> float:
        return self.seconds_left


class ApiRateThrottle(FixedWindowRateThrottle):
    """Every API call of one user (all their tokens and their session together), so making more
    tokens does not raise the limit; callers without a user count by address."""

    scope = "api"
    rate_setting = "MLMANAGER_API_RATE"

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ident = f"user-{user.pk}"
        else:
            ident = f"address-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PredictRateThrottle(ApiRateThrottle):
    """Predictions, counted apart from (and higher than) the rest of the API."""

    scope = "predict"
    rate_setting = "MLMANAGER_PREDICT_RATE"


class ClientAddressThrottle(FixedWindowRateThrottle):
    """Counts by client address; subclasses name the scope and the rate setting."""

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TargetEmailThrottle(FixedWindowRateThrottle):
    """Counts by the e-mail address the request names (field `email`), so one address gets a
    bounded number of mails whichever addresses the requests come from. The address is hashed:
    the cache holds no e-mail addresses."""

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        data = getattr(request, "data", None)
        if data is None:  # a Django HttpRequest (pages), not a DRF Request
            data = request.POST
        email = data.get("email") if hasattr(data, "get") else None
        if not isinstance(email, str) or not email.strip():
            return None  # nothing to send to: the form or serializer refuses the request
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}


class TokenCreateAddressThrottle(ClientAddressThrottle):
    scope = "token_address"
    rate_setting = "MLMANAGER_TOKEN_RATE"


class SignupAddressThrottle(ClientAddressThrottle):
    scope = "signup_address"
    rate_setting = "MLMANAGER_ACCOUNT_ADDRESS_RATE"


class SignupEmailThrottle(TargetEmailThrottle):
    scope = "signup_email"
    rate_setting = "MLMANAGER_ACCOUNT_EMAIL_RATE"


class PasswordResetAddressThrottle(ClientAddressThrottle):
    scope = "password_reset_address"
    rate_setting = "MLMANAGER_ACCOUNT_ADDRESS_RATE"


class PasswordResetEmailThrottle(TargetEmailThrottle):
    scope = "password_reset_email"
    rate_setting = "MLMANAGER_ACCOUNT_EMAIL_RATE"


def throttle_posts(
    view: Callable[..., HttpResponseBase], *throttle_classes: type[FixedWindowRateThrottle]
) -> Callable[..., HttpResponseBase]:
    """A page view whose POSTs count against the throttles; past a limit it answers 429 with
    Retry-After and a page saying when to try again, and the view does not run."""

    @wraps(view)
    def throttled_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "POST":
            throttles = [throttle_class() for throttle_class in throttle_classes]
            refused = [t for t in throttles if not t.allow_request(request, None)]
            if refused:
                return too_many_requests_page(request, max(t.wait() for t in refused))
        return view(request, *args, **kwargs)

    return throttled_view


def too_many_requests_page(request: HttpRequest, wait_s: float) -> HttpResponse:
    error = ApplicationError(
        _("Too many requests from your address or for this e-mail address. Try again in %(n)s min.")
        % {"n": max(1, math.ceil(wait_s / 60))},
        code="throttled",
        status_code=429,
    )
    response = render(request, "core/error.html", {"error": error}, status=error.status_code)
    response["Retry-After"] = str(math.ceil(wait_s))
    return response
