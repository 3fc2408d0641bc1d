"""Periodic upkeep of the readings (the `sites.maintenance` periodic task, hourly): monthly
partitions ahead of time on PostgreSQL, and retention per team everywhere."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from mlmanager.sites.models import (
    DeadLetter,
    IngestBatch,
    Reading,
    ReadingRollup,
    RetentionPolicy,
    Sensor,
)

logger = logging.getLogger(__name__)

MONTHS_AHEAD = 3
# A repeated batch_id is recognised for this long; devices retry within minutes, not weeks.
BATCH_MEMORY = timedelta(days=7)
DEAD_LETTER_DAYS = 30


def interval_s() -> float:
    return 3600.0


def run() -> None:
    if connection.vendor == "postgresql":
        partitions_ensure()
    retention_apply()


def _month_start(day: date, months: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _utc_midnight(day: date) -> datetime:
    # A datetime, not a date: a date bound would be read in the session's time zone.
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def partition_name(month: date) -> str:
    return f"{Reading._meta.db_table}_p{month:%Y%m}"


def partitions_ensure(*, today: date | None = None, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the monthly partitions of the readings from last month to `months_ahead` ahead
    (PostgreSQL). Readings outside them go to the default partition, so none is ever refused."""
    today = today or timezone.now().date()
    created = []
    for months in range(-1, months_ahead + 1):
        start = _month_start(today, months)
        name = partition_name(start)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {Reading._meta.db_table}"
                    " FOR VALUES FROM (%s) TO (%s)",
                    [_utc_midnight(start), _utc_midnight(_month_start(start, 1))],
                )
            created.append(name)
        except DatabaseError:
            # The default partition already holds readings of that month: they stay there.
            logger.warning("sites: partition %s could not be created", name, exc_info=True)
    return created


def retention_apply(*, now: datetime | None = None) -> dict[str, int]:
    """Delete readings and rollups older than each team's retention, old batch ids and dead
    letters. Counts of rows deleted."""
    now = now or timezone.now()
    policies = {p.team_id: p for p in RetentionPolicy.objects.all()}
    deleted = {"readings": 0, "rollups": 0}
    teams = Sensor.objects.values_list("team_id", flat=True).distinct()
    for team_id in teams:
        policy = policies.get(team_id)
        raw_days = policy.raw_days if policy else settings.MLMANAGER_READING_RETENTION_DAYS
        rollup_days = policy.rollup_days if policy else settings.MLMANAGER_ROLLUP_RETENTION_DAYS
        sensors = Sensor.objects.filter(team_id=team_id).values("pk")
        deleted["readings"] += Reading.objects.filter(
            sensor_id__in=sensors, timestamp__lt=now - timedelta(days=raw_days)
        )._raw_delete(connection.alias)
        deleted["rollups"] += ReadingRollup.objects.filter(
            sensor_id__in=sensors, bucket__lt=now - timedelta(days=rollup_days)
        )._raw_delete(connection.alias)
    IngestBatch.objects.filter(created_at__lt=now - BATCH_MEMORY).delete()
    DeadLetter.objects.filter(received_at__lt=now - timedelta(days=DEAD_LETTER_DAYS)).delete()
    return deleted
