"""Upkeep of the readings: the monthly partitions on PostgreSQL (really a partitioned table,
months created ahead, none refused) and retention per team on both databases."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from mlmanager.core.tests.factories import member
from mlmanager.sites.models import (
    DeadLetter,
    IngestBatch,
    Reading,
    ReadingRollup,
    RetentionPolicy,
    Sensor,
)
from mlmanager.sites.services import maintenance
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of

TABLE = Reading._meta.db_table


def _partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname FROM pg_inherits"
            " JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid"
            " WHERE pg_inherits.inhparent = %s::regclass",
            [TABLE],
        )
        return {name for (name,) in cursor.fetchall()}


def _partition_of(sensor: Sensor, moment: datetime) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {TABLE}"  # noqa: S608 - the model's table
            " WHERE sensor_id = %s AND timestamp = %s",
            [sensor.pk, moment],
        )
        return str(cursor.fetchone()[0])


def _insert(sensor: Sensor, moment: datetime) -> None:
    """A reading written directly: the ingest refuses timestamps more than a day ahead."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (sensor_id, timestamp, raw_value, value, quality)"  # noqa: S608
            " VALUES (%s, %s, 1, 1, 'good')",
            [sensor.pk, moment],
        )


def _sqlite_tables() -> set[str]:
    return {
        name
        for name in connection.introspection.table_names()
        if name == TABLE or name.startswith(f"{TABLE}_")
    }


@pytest.fixture
def sensor() -> Sensor:
    return sensor_of(site_of(member("owner").current_team))


@pytest.mark.django_db
def test_the_readings_table_is_partitioned_by_month(sensor: Sensor):
    today = timezone.now().date()
    now = timezone.now().replace(microsecond=0)
    readings_ingest(
        caller=caller_of(sensor.site.team.memberships.get().user),
        readings=[{"sensor": sensor.pk, "timestamp": now.isoformat(), "value": 1.5}],
    )
    if connection.vendor != "postgresql":
        # SQLite: one plain table (no partitions to look after).
        assert _sqlite_tables() == {TABLE}
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = %s::regclass", [TABLE]
        )
        assert cursor.fetchone() == ("r",)  # by range (of the timestamp)
    expected = {f"{TABLE}_default"} | {
        maintenance.partition_name(maintenance._month_start(today, months))
        for months in range(-1, maintenance.MONTHS_AHEAD + 1)
    }
    assert expected <= _partitions()
    assert _partition_of(sensor, now) == maintenance.partition_name(today.replace(day=1))


@pytest.mark.django_db
def test_partitions_ensure_creates_the_next_months_and_never_refuses_a_reading(
    sensor: Sensor, caplog: Any
):
    if connection.vendor != "postgresql":
        # SQLite: the hourly upkeep only applies retention; no partition is ever made.
        maintenance.run()
        assert _sqlite_tables() == {TABLE}
        return
    # Years ahead, so no partition of these months exists yet.
    today = date(timezone.now().year + 5, 5, 17)
    july = datetime(today.year, 7, 10, 12, tzinfo=UTC)
    _insert(sensor, july)  # before its month's partition: kept in the default one
    assert _partition_of(sensor, july) == f"{TABLE}_default"

    with caplog.at_level(logging.WARNING, logger="mlmanager.sites.services.maintenance"):
        created = maintenance.partitions_ensure(today=today, months_ahead=3)

    months = [f"{TABLE}_p{today.year}{month:02d}" for month in (4, 5, 6, 7, 8)]
    # July's rows are in the default partition: its partition cannot be made, and the rows
    # stay where they are; the other months are made.
    assert created == [name for name in months if not name.endswith("07")]
    assert f"partition {TABLE}_p{today.year}07 could not be created" in caplog.text
    assert set(created) <= _partitions()
    assert f"{TABLE}_p{today.year}07" not in _partitions()
    august = datetime(today.year, 8, 31, 23, 59, 59, tzinfo=UTC)
    _insert(sensor, august)
    assert _partition_of(sensor, august) == f"{TABLE}_p{today.year}08"
    assert _partition_of(sensor, july) == f"{TABLE}_default"
    # Again: nothing changes (the same months, IF NOT EXISTS).
    assert maintenance.partitions_ensure(today=today, months_ahead=3) == created


@pytest.mark.django_db
def test_retention_deletes_only_the_old_rows_of_each_team(settings: Any):
    settings.MLMANAGER_READING_RETENTION_DAYS = 20
    settings.MLMANAGER_ROLLUP_RETENTION_DAYS = 400
    now = timezone.now().replace(second=0, microsecond=0)
    kept_a, kept_b = [], []
    sensors = {}
    for team_name, ages, kept in (("a", (1, 10, 40), kept_a), ("b", (10, 25), kept_b)):
        owner = member("owner")
        sensor = sensors[team_name] = sensor_of(site_of(owner.current_team))
        answer = readings_ingest(
            caller=caller_of(owner),
            readings=[
                {
                    "sensor": sensor.pk,
                    "timestamp": (now - timedelta(days=age)).isoformat(),
                    "value": 2.0,
                }
                for age in ages
            ],
            batch_id="batch",
        )
        assert answer["accepted"] == len(ages)
        kept.extend(ages)
    # Team a keeps raw readings 7 days and rollups 30; team b has no policy: the settings.
    RetentionPolicy.objects.create(team_id=sensors["a"].team_id, raw_days=7, rollup_days=30)
    IngestBatch.objects.filter(caller_key__startswith="user:").update(
        created_at=now - timedelta(days=8)
    )
    fresh_batch = IngestBatch.objects.create(caller_key="device:1", batch_id="new", answer={})
    old_letter = DeadLetter.objects.create(topic="t", payload="x", reason="bad")
    DeadLetter.objects.filter(pk=old_letter.pk).update(received_at=now - timedelta(days=31))
    new_letter = DeadLetter.objects.create(topic="t", payload="y", reason="bad")

    deleted = maintenance.retention_apply(now=now)

    # a: the 10- and 40-day-old readings and the 40-day-old minute and hour rollups;
    # b: the 25-day-old reading (20 days by the setting), no rollup (400 days).
    assert deleted == {"readings": 3, "rollups": 2}
    remaining = {
        (sensor_id, round((now - moment).total_seconds() / 86_400))
        for sensor_id, moment in Reading.objects.values_list("sensor_id", "timestamp")
    }
    assert remaining == {(sensors["a"].pk, 1), (sensors["b"].pk, 10)}
    rollup_ages = {
        (sensor_id, resolution, round((now - bucket).total_seconds() / 86_400))
        for sensor_id, resolution, bucket in ReadingRollup.objects.values_list(
            "sensor_id", "resolution", "bucket"
        )
    }
    assert rollup_ages == {
        (sensors[team].pk, resolution, age)
        for team, ages in (("a", (1, 10)), ("b", (10, 25)))
        for age in ages
        for resolution in ("1m", "1h")
    }
    assert list(IngestBatch.objects.values_list("pk", flat=True)) == [fresh_batch.pk]
    assert list(DeadLetter.objects.values_list("pk", flat=True)) == [new_letter.pk]
