"""The API-requests-per-minute quota: a DRF throttle keyed by team, counting where every process
sees the count (`core.throttling.count_request`: Redis, else the database).

The team is the one the credential is limited to (a team token), else the user's current team:
the one their calls act in when they name none. With billing off, without a signed-in user, or
without a limit in the team's plan nothing is counted: billing off reads one setting and makes no
query. Past the limit the request is refused with 429 `quota_exceeded` in the API's JSON shape,
`Retry-After` the seconds left in the minute.
"""

from __future__ import annotations

import math
import time
from typing import Any

from rest_framework.throttling import BaseThrottle

from mlmanager.accounts.authentication import api_caller
from mlmanager.billing.errors import QuotaExceeded
from mlmanager.billing.services import quotas, usage
from mlmanager.billing.services.ledger import billing_enabled
from mlmanager.core.throttling import count_request


def request_team_id(request: Any) -> int | None:
    """The team an API request acts in, without a query (see the module docstring)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    team_limit = api_caller(request).team_limit
    if team_limit is not None:
        return team_limit
    current: int | None = getattr(user, "current_team_id", None)
    return current


class TeamApiRateThrottle(BaseThrottle):
    """A team's API requests per minute (`Plan.max_api_requests_per_minute`), all its members'
    tokens and sessions together, in fixed one-minute windows (as `core.throttling`)."""

    scope = "team_api"

    def __init__(self) -> None:
        self.seconds_left = 0.0

    def allow_request(self, request: Any, view: Any) -> bool:
        if not billing_enabled():
            return True
        team_id = request_team_id(request)
        if team_id is None:
            return True
        limit = quotas.team_limit(team_id=team_id, quota=quotas.API_REQUESTS_PER_MINUTE)
        if limit is None:
            return True
        key, self.seconds_left = usage.api_request_window(team_id=team_id, now=self.timer())
        count = count_request(key, math.ceil(self.seconds_left) + 1)
        if count <= limit:
            return True
        # Raised rather than returning False, so the answer names the quota, its limit and the
        # use in the JSON shape every quota refusal has (DRF's own says only "throttled").
        raise QuotaExceeded(
            quota=quotas.API_REQUESTS_PER_MINUTE,
            limit=limit,
            used=count - 1,
            label=quotas.QUOTA_LABELS[quotas.API_REQUESTS_PER_MINUTE],
            retry_after_s=max(1, math.ceil(self.seconds_left)),
        )

    def timer(self) -> float:
        return time.time()

    def wait(self) -> float:
        return self.seconds_left
