"""Applies the signed-in user's time zone to the request, and finds their current team."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from mlmanager.accounts.selectors import current_team_for
from mlmanager.core import formatting


class UserPreferencesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.time_zone))  # type: ignore[union-attr]
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
            formatting.activate(formatting.Preferences.of(user))
            request.team = SimpleLazyObject(lambda: current_team_for(user=user))  # type: ignore[attr-defined,arg-type]
        else:
            timezone.deactivate()
            request.team = None  # type: ignore[attr-defined]
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
            formatting.deactivate()
