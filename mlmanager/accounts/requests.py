"""Typed views of a request whose user is known to be signed in (login_required/IsAuthenticated)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from mlmanager.accounts.caller import Caller
    from mlmanager.accounts.models import Team, User


class AuthenticatedHttpRequest(HttpRequest):
    """For page views behind login_required: `user` is a User, `team` their current team."""

    user: User  # type: ignore[assignment]
    team: Team | None
    caller: Caller  # accounts.middleware: who asks, with what credential
    htmx: HtmxDetails


def api_user(request: Any) -> User:
    """The signed-in user of an API request (the IsAuthenticated default permission holds)."""
    from mlmanager.accounts.models import User

    user = request.user
    if not isinstance(user, User):  # pragma: no cover - permission classes run first
        raise TypeError("API view reached without an authenticated user")
    return user
