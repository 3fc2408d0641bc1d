"""The login lockout (django-axes): which account an attempt names, and the locked-out answer.

Axes counts failed sign-ins in the database, by account and by client address separately
(AXES_LOCKOUT_PARAMETERS), on the login page and on POST /api/v1/auth/token/; past
MLMANAGER_LOGIN_FAILURE_LIMIT failures it refuses even the right password for
MLMANAGER_LOGIN_LOCKOUT_MINUTES after the latest attempt (an attempt while locked out starts
the wait again). Its middleware replaces the view's answer with `lockout_response`.
"""

from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_cool_off
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from mlmanager.core.errors import ApplicationError


def attempted_email(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The account an attempt names, normalised as accounts are stored (lower case), so
    "Ada@Example.com" and "ada@example.com" count as one account."""
    username = (credentials or {}).get("username")
    if username is None:
        username = request.POST.get("username")
    return username.strip().lower() if isinstance(username, str) else None


def lockout_seconds(request: HttpRequest | None = None) -> int:
    cool_off = get_cool_off(request)
    return math.ceil(cool_off.total_seconds()) if cool_off else 0


def lockout_error(request: HttpRequest | None = None) -> ApplicationError:
    seconds = lockout_seconds(request)
    return ApplicationError(
        _(
            "Too many failed sign-in attempts for this account or from your address. "
            "Try again in %(n)s min."
        )
        % {"n": max(1, math.ceil(seconds / 60))},
        code="locked_out",
        status_code=429,
        retry_after_s=seconds,
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any
) -> HttpResponse:
    """429 with Retry-After: the API's JSON error shape under /api/, else the login page with
    the message (and without the password)."""
    error = lockout_error(request)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(error.as_dict(), status=error.status_code)
    else:
        form = AuthenticationForm(request, initial={"username": attempted_email(request, None)})
        response = render(
            request,
            "accounts/login.html",
            {"form": form, "lockout_message": error.message},
            status=error.status_code,
        )
    response["Retry-After"] = str(error.retry_after_s)
    return response
