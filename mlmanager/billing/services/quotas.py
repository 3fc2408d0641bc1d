"""Quotas: what a team's plan lets it use at once or per period, checked where the action starts.

A team follows its account's plan (`Account.plan`), else the default plan (`Plan.is_default`);
without either, or with a limit left empty, nothing is limited. Quotas apply only when billing
is on (`MLMANAGER_BILLING`): with billing off every check returns before any query, so the
predict path costs nothing more than reading a setting.

Status codes (`QuotaExceeded`): 429 for what frees itself with time — concurrent jobs (a job
ends), predictions per day (tomorrow), API requests per minute (`billing.throttling`); 403 for
storage, capacity that only deleting data or a bigger plan frees.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from mlmanager.billing.errors import QuotaExceeded
from mlmanager.billing.models import Account, Plan
from mlmanager.billing.services.ledger import billing_enabled, team_account
from mlmanager.billing.services.usage import (
    api_requests_this_minute,
    jobs_running_count,
    predictions_today_count,
    seconds_to_tomorrow,
    storage_used_bytes,
)

# The quota names of `QuotaExceeded.details["quota"]`, the usage page and API.
CONCURRENT_JOBS = "concurrent_jobs"
STORAGE = "storage_mb"
PREDICTIONS_PER_DAY = "predictions_per_day"
API_REQUESTS_PER_MINUTE = "api_requests_per_minute"

QUOTA_LABELS = {
    CONCURRENT_JOBS: _("concurrent jobs"),
    STORAGE: _("storage (MB)"),
    PREDICTIONS_PER_DAY: _("predictions per day"),
    API_REQUESTS_PER_MINUTE: _("API requests per minute"),
}
# Plan field of each quota.
PLAN_FIELDS = {
    CONCURRENT_JOBS: "max_concurrent_jobs",
    STORAGE: "max_storage_mb",
    PREDICTIONS_PER_DAY: "max_predictions_per_day",
    API_REQUESTS_PER_MINUTE: "max_api_requests_per_minute",
}

MB = 1024 * 1024  # storage limits and figures are in MiB, as Plan.max_storage_mb


def team_plan(*, team_id: int) -> Plan | None:
    """The plan the team follows: its account's, else the default one, else None (unlimited).
    One query (the account's plan sorts first)."""
    own = Exists(Account.objects.filter(team_id=team_id, plan_id=OuterRef("pk")))
    return (
        Plan.objects.annotate(own=own)
        .filter(Q(own=True) | Q(is_default=True))
        .order_by("-own", "pk")
        .first()
    )


def team_limit(*, team_id: int, quota: str) -> int | None:
    """The team's limit for one quota; None: unlimited (billing off, no plan, empty limit)."""
    if not billing_enabled():
        return None
    plan = team_plan(team_id=team_id)
    if plan is None:
        return None
    limit: int | None = getattr(plan, PLAN_FIELDS[quota])
    return limit


# --- checks (each a no-op when the team has no such limit) ----------------------------------


def quota_check_jobs(*, team_id: int) -> None:
    """Refuse (429 `quota_exceeded`) to start a job when the team's unfinished jobs (queued or
    running) reach the plan's `max_concurrent_jobs`. Call in the transaction that creates the
    job, so concurrent starts are counted one after the other."""
    limit = team_limit(team_id=team_id, quota=CONCURRENT_JOBS)
    if limit is None:
        return
    if connection.in_atomic_block:
        # Two starts at once would both count the jobs before either's is written and both
        # pass: the team's account row is locked (PostgreSQL) until the starting transaction
        # ends, so the second counts after the first's job is committed. The same row the
        # training's hold locks (ledger.reservation_hold), so the order of locks is one.
        team_account(team_id)
        list(Account.objects.select_for_update().filter(team_id=team_id).values_list("pk"))
    used = jobs_running_count(team_id=team_id)
    if used >= limit:
        raise QuotaExceeded(
            quota=CONCURRENT_JOBS, limit=limit, used=used, label=QUOTA_LABELS[CONCURRENT_JOBS]
        )


def quota_check_predictions(*, team_id: int, rows: int) -> None:
    """Refuse (429 `quota_exceeded`, Retry-After: the next UTC midnight) predictions that would
    take the team's rows today past the plan's `max_predictions_per_day`. A request is refused
    whole, never cut: the limit is never passed."""
    limit = team_limit(team_id=team_id, quota=PREDICTIONS_PER_DAY)
    if limit is None:
        return
    used = predictions_today_count(team_id=team_id)
    if used + rows > limit:
        raise QuotaExceeded(
            quota=PREDICTIONS_PER_DAY,
            limit=limit,
            used=used,
            label=QUOTA_LABELS[PREDICTIONS_PER_DAY],
            retry_after_s=seconds_to_tomorrow(),
        )


def quota_check_storage(*, team_id: int, adding_bytes: int) -> None:
    """Refuse (403 `quota_exceeded`) to store `adding_bytes` more when the team's stored
    bytes plus them would pass the plan's `max_storage_mb`. 403, not 429: waiting does not help;
    deleting datasets or models, or a bigger plan, does. The stored bytes are measured here,
    once per upload (`usage.storage_used_bytes`)."""
    limit = team_limit(team_id=team_id, quota=STORAGE)
    if limit is None:
        return
    used = storage_used_bytes(team_id=team_id)
    if used + adding_bytes > limit * MB:
        raise QuotaExceeded(
            quota=STORAGE,
            limit=limit,
            used=megabytes(used),
            label=QUOTA_LABELS[STORAGE],
            requested=megabytes(adding_bytes),
            status_code=403,
        )


def megabytes(size_bytes: int) -> int:
    """Bytes as whole MiB, rounded up: 1 byte stored shows as 1 MB used."""
    return -(-size_bytes // MB)


@dataclass(frozen=True, slots=True)
class QuotaUse:
    """One quota on the usage page and API: its limit (None: unlimited) and current use."""

    quota: str
    label: str
    limit: int | None
    used: int

    @property
    def percent(self) -> int | None:
        if not self.limit:
            return None if self.limit is None else 100
        return min(round(100 * self.used / self.limit), 100)

    @property
    def is_reached(self) -> bool:
        return self.limit is not None and self.used >= self.limit


@dataclass(frozen=True, slots=True)
class TeamUsage:
    """What the usage page and `GET /api/v1/billing/usage/` show of one team."""

    billing_enabled: bool
    plan: Plan | None
    quotas: list[QuotaUse]
    predictions_today: int
    storage_used_bytes: int
    running_jobs: int
    api_requests_this_minute: int


def team_usage(*, team_id: int) -> TeamUsage:
    """Every quota's limit (None: unlimited, always with billing off) and current use. Measures
    the team's stored bytes (its model versions' folders): for one page, never for a list."""
    enabled = billing_enabled()
    plan = team_plan(team_id=team_id)
    storage_bytes = storage_used_bytes(team_id=team_id)
    figures = {
        CONCURRENT_JOBS: jobs_running_count(team_id=team_id),
        STORAGE: megabytes(storage_bytes),
        PREDICTIONS_PER_DAY: predictions_today_count(team_id=team_id),
        API_REQUESTS_PER_MINUTE: api_requests_this_minute(team_id=team_id),
    }
    return TeamUsage(
        billing_enabled=enabled,
        plan=plan,
        quotas=[
            QuotaUse(
                quota=quota,
                label=str(QUOTA_LABELS[quota]),
                limit=getattr(plan, PLAN_FIELDS[quota]) if enabled and plan else None,
                used=used,
            )
            for quota, used in figures.items()
        ],
        predictions_today=figures[PREDICTIONS_PER_DAY],
        storage_used_bytes=storage_bytes,
        running_jobs=figures[CONCURRENT_JOBS],
        api_requests_this_minute=figures[API_REQUESTS_PER_MINUTE],
    )
