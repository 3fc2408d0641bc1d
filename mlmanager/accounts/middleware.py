"""Applies the signed-in user's time zone to the request, finds their current team, and sets
`request.caller`: the session's `Caller` (the API's token authentication replaces it)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.selectors import current_team_for
from mlmanager.core import formatting
from mlmanager.core.throttling import client_address


def session_caller(request: HttpRequest) -> Caller:
    """The caller of a request signed in through its session (or anonymous)."""
    address = client_address(request)
    if not request.user.is_authenticated:
        return Caller.anonymous(address=address)
    return Caller.for_session(request.user, address=address)  # type: ignore[arg-type]


class UserPreferencesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        caller = request.caller = session_caller(request)  # type: ignore[attr-defined]
        if user.is_authenticated:
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.time_zone))  # type: ignore[union-attr]
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
            formatting.activate(formatting.Preferences.of(user))
            request.team = SimpleLazyObject(lambda: current_team_for(caller=caller))  # type: ignore[attr-defined,arg-type]
        else:
            timezone.deactivate()
            request.team = None  # type: ignore[attr-defined]
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
            formatting.deactivate()
