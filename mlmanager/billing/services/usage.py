"""What a team uses now: rows predicted per day (`DailyUsage`, counted here), unfinished jobs
and stored bytes. Read by the quotas (`services.quotas`), the usage page and API, and the daily
storage charge (`services.storage`)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import caches
from django.core.files.storage import storages
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from mlmanager.billing.models import DailyUsage
from mlmanager.billing.services.ledger import billing_enabled
from mlmanager.core.models import RequestCount
from mlmanager.core.throttling import THROTTLE_CACHE
from mlmanager.datasets.models import Dataset
from mlmanager.jobs.models import Job
from mlmanager.machines.models import ModelVersion

UNFINISHED_JOB_STATUSES = (Job.Status.QUEUED, Job.Status.RUNNING)
API_WINDOW_S = 60  # the API-requests-per-minute quota counts in fixed one-minute windows


def today() -> dt.date:
    """The usage day: the UTC date, as DailyUsage counts it."""
    return timezone.now().astimezone(dt.UTC).date()


def seconds_to_tomorrow() -> int:
    """Seconds until the next UTC day begins (the predictions-per-day quota's Retry-After)."""
    now = timezone.now().astimezone(dt.UTC)
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return max(int((tomorrow - now).total_seconds()) + 1, 1)


def usage_count_predictions(*, team_id: int, rows: int) -> None:
    """Add `rows` to the team's predictions today (UTC) in one upsert, so concurrent requests
    never lose a count and the first request of a day needs no second query. Billing off:
    nothing is counted and no query made (quotas and usage are billing's).

    Raw SQL because the ORM's upsert (`bulk_create(update_conflicts=...)`) can only overwrite
    with the new value, not add to the stored one; `ON CONFLICT ... DO UPDATE` is the same on
    PostgreSQL and SQLite (3.24+)."""
    if not billing_enabled() or rows <= 0:
        return
    table = connection.ops.quote_name(DailyUsage._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (team_id, day, predictions) VALUES (%s, %s, %s) "  # noqa: S608
            f"ON CONFLICT (team_id, day) DO UPDATE SET predictions = "
            f"{table}.predictions + excluded.predictions",
            [team_id, today(), int(rows)],
        )


def predictions_today_count(*, team_id: int) -> int:
    """Rows the team predicted today (UTC)."""
    row = DailyUsage.objects.filter(team_id=team_id, day=today()).values("predictions").first()
    return int(row["predictions"]) if row else 0


def api_request_window(*, team_id: int, now: float | None = None) -> tuple[str, float]:
    """The key counting the team's API requests in the current minute (`billing.throttling`)
    and the seconds left in that minute."""
    now = time.time() if now is None else now
    window = int(now // API_WINDOW_S)
    return f"throttle_team_api_{team_id}:{window}", (window + 1) * API_WINDOW_S - now


def api_requests_this_minute(*, team_id: int) -> int:
    """The team's API requests counted so far this minute (read, not counted). Billing off:
    0, as nothing is counted."""
    if not billing_enabled():
        return 0
    key, _seconds_left = api_request_window(team_id=team_id)
    if settings.REDIS_URL:
        return int(caches[THROTTLE_CACHE].get(key) or 0)
    row = RequestCount.objects.filter(key=key).values("count").first()
    return int(row["count"]) if row else 0


def jobs_running_count(*, team_id: int) -> int:
    """The team's unfinished jobs (queued or running): what the concurrent-jobs quota counts."""
    return Job.objects.filter(team_id=team_id, status__in=UNFINISHED_JOB_STATUSES).count()


# --- storage -------------------------------------------------------------------------------------


def folder_bytes(name: str) -> int:
    """Bytes of every file under the stored folder `name` (local disk or S3, through Django's
    storage API); 0 when it is gone."""
    storage = storages["default"]
    total = 0
    pending = [name.rstrip("/")]
    while pending:
        folder = pending.pop()
        try:
            folders, files = storage.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        total += sum(storage.size(f"{folder}/{file}") for file in files)
        pending.extend(f"{folder}/{sub}" for sub in folders)
    return total


def datasets_bytes(*, team_id: int) -> int:
    """The team's uploaded files (`Dataset.size_bytes`, recorded at upload)."""
    total = Dataset.objects.filter(team_id=team_id).aggregate(total=Sum("size_bytes"))["total"]
    return int(total or 0)


def versions_bytes(*, team_id: int) -> int:
    """The team's model versions' artifacts. A version records no size, so its folder is
    measured: once per upload (the storage quota) and once a day (the storage charge), never
    on a page that lists many things."""
    folders: Iterable[str] = ModelVersion.objects.filter(team_id=team_id).values_list(
        "storage_dir", flat=True
    )
    return sum(folder_bytes(folder) for folder in folders)


def storage_used_bytes(*, team_id: int) -> int:
    """What the team stores: its datasets' files and its model versions' artifacts."""
    return datasets_bytes(team_id=team_id) + versions_bytes(team_id=team_id)
