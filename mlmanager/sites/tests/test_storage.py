"""Readings storage: each reading stored once, and the minute and hour rollups always equal a
GROUP BY of the stored readings, after duplicates, late and out-of-order readings, and (on
PostgreSQL) concurrent ingests of overlapping readings."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.core.tests.factories import member
from mlmanager.sites.models import Reading, ReadingRollup, Sensor
from mlmanager.sites.selectors import sensor_series, sensor_statistics
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of

Rollups = dict[tuple[int, str, datetime], tuple[float, float, float, int]]


def _group_by_of_readings() -> Rollups:
    """What the rollups must hold: the stored readings summed up per minute and per hour."""
    groups: dict[tuple[int, str, datetime], list[float]] = {}
    for sensor_id, moment, value in Reading.objects.values_list("sensor_id", "timestamp", "value"):
        for resolution, bucket in (
            ("1m", moment.replace(second=0, microsecond=0)),
            ("1h", moment.replace(minute=0, second=0, microsecond=0)),
        ):
            groups.setdefault((sensor_id, resolution, bucket), []).append(value)
    return {
        key: (min(values), max(values), sum(values), len(values)) for key, values in groups.items()
    }


def _rollups() -> Rollups:
    return {
        (row.sensor_id, row.resolution, row.bucket): (
            row.minimum,
            row.maximum,
            row.total,
            row.count,
        )
        for row in ReadingRollup.objects.all()
    }


def _reading(sensor: Sensor, moment: datetime, value: float) -> dict[str, Any]:
    return {"sensor": sensor.pk, "timestamp": moment.isoformat(), "value": value}


@pytest.fixture
def mill() -> tuple[Caller, Sensor, Sensor]:
    owner = member("owner")
    site = site_of(owner.current_team)
    return caller_of(owner), sensor_of(site, "Temperature"), sensor_of(site, "Pressure")


@pytest.mark.django_db
def test_rollups_equal_a_group_by_after_duplicates_late_and_out_of_order_readings(
    mill: tuple[Caller, Sensor, Sensor],
):
    caller, temperature, pressure = mill
    # Values in quarters: their sums are exact in binary floating point, so totals compare
    # exactly whatever order the database adds them in.
    base = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    first = [_reading(temperature, base + timedelta(seconds=15 * i), 20 + i / 4) for i in range(8)]
    first += [_reading(pressure, base + timedelta(seconds=40 * i), 1000 - i / 4) for i in range(4)]
    assert readings_ingest(caller=caller, readings=first) == {
        "accepted": 12,
        "duplicates": 0,
        "rejected": [],
    }

    second = [
        # Stored already, with another value: a duplicate, the first value stays.
        _reading(temperature, base + timedelta(seconds=15), 99.0),
        _reading(temperature, base + timedelta(seconds=30), 98.0),
        # New, in minutes and hours that have rollups already, newest first.
        _reading(temperature, base + timedelta(minutes=1, seconds=59), 30.5),
        _reading(temperature, base + timedelta(seconds=59), 10.25),
        # Late: two hours before anything stored, and out of order.
        _reading(pressure, base - timedelta(hours=2, seconds=-5), 990.75),
        _reading(pressure, base - timedelta(hours=2), 991.5),
        # The same new reading twice in one request: stored once.
        _reading(pressure, base + timedelta(minutes=5), 1001.0),
        _reading(pressure, base + timedelta(minutes=5), 1001.0),
    ]
    assert readings_ingest(caller=caller, readings=second) == {
        "accepted": 5,
        "duplicates": 3,
        "rejected": [],
    }

    # Only duplicates: nothing changes.
    assert readings_ingest(caller=caller, readings=first[:3] + second[:2]) == {
        "accepted": 0,
        "duplicates": 5,
        "rejected": [],
    }
    # By device id, between readings already stored.
    third = [
        {
            "device_id": pressure.device_id,
            "timestamp": (base + timedelta(seconds=20)).isoformat(),
            "value": 1003.25,
        },
        _reading(temperature, base + timedelta(seconds=7), 19.75),
    ]
    assert readings_ingest(caller=caller, readings=third)["accepted"] == 2

    assert Reading.objects.count() == 19
    assert Reading.objects.get(
        sensor=temperature, timestamp=base + timedelta(seconds=15)
    ).value == (20.25)
    stored = _rollups()
    assert stored == _group_by_of_readings()
    minute = (temperature.pk, "1m", base)
    hour = (temperature.pk, "1h", base)
    assert stored[minute] == (10.25, 20.75, 20 + 20.25 + 20.5 + 20.75 + 10.25 + 19.75, 6)
    assert stored[hour][3] == 11
    assert stored[(pressure.pk, "1h", base - timedelta(hours=2))] == (990.75, 991.5, 1982.25, 2)
    # Temperature: minutes 0 and 1 of one hour; pressure: minutes 0, 1, 2 and 5 of that hour
    # and one minute of the hour two hours before.
    assert len(stored) == (2 + 1) + (5 + 2)


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_ingests_store_each_reading_once_and_rollups_stay_exact(
    mill: tuple[Caller, Sensor, Sensor],
):
    """Two requests that share half their readings, sent at the same moment from two
    threads (PostgreSQL: two connections, the second waits on the first's rows and then
    skips them). SQLite has one writer at a time: the same requests one after the other."""
    caller, temperature, pressure = mill
    base = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    rounds = 4
    per_request = 120  # per sensor; the two requests overlap in the middle 60

    def request(round_index: int, offset: int, reverse: bool) -> list[dict[str, Any]]:
        start = base + timedelta(hours=round_index)
        readings = [
            _reading(sensor, start + timedelta(seconds=10 * (offset + i)), (offset + i) / 4)
            for i in range(per_request)
            for sensor in (temperature, pressure)
        ]
        return readings[::-1] if reverse else readings

    answers: list[dict[str, Any]] = []
    failures: list[BaseException] = []

    def send(readings: list[dict[str, Any]], barrier: threading.Barrier) -> None:
        try:
            barrier.wait(timeout=30)
            answers.append(readings_ingest(caller=caller, readings=readings))
        except BaseException as error:  # reported by the test below
            failures.append(error)
        finally:
            connection.close()

    for round_index in range(rounds):
        first, second = request(round_index, 0, False), request(round_index, 60, True)
        if connection.vendor == "postgresql":
            barrier = threading.Barrier(2)
            threads = [
                threading.Thread(target=send, args=(readings, barrier))
                for readings in (first, second)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert not any(thread.is_alive() for thread in threads)
        else:
            answers.append(readings_ingest(caller=caller, readings=first))
            answers.append(readings_ingest(caller=caller, readings=second))

    assert failures == []
    distinct = rounds * 2 * 180  # 180 timestamps per sensor and round
    overlap = rounds * 2 * 60
    assert sum(answer["accepted"] for answer in answers) == distinct
    assert sum(answer["duplicates"] for answer in answers) == overlap
    assert all(answer["rejected"] == [] for answer in answers)
    assert Reading.objects.count() == distinct
    stored = _rollups()
    assert stored == _group_by_of_readings()
    assert sum(
        count for (_s, resolution, _b), (*_v, count) in stored.items() if resolution == "1h"
    ) == (distinct)


@pytest.mark.django_db
def test_statistics_and_hourly_series_match_the_readings_for_ranges_inside_minutes(
    mill: tuple[Caller, Sensor, Sensor],
):
    caller, temperature, _pressure = mill
    base = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    readings_ingest(
        caller=caller,
        readings=[
            _reading(temperature, base + timedelta(seconds=20 * i), (i % 13) / 4)
            for i in range(3 * 180)  # three hours, three readings a minute
        ],
    )
    for start, end in (
        (base + timedelta(seconds=30), base + timedelta(hours=2, seconds=50)),  # both inside
        (base, base + timedelta(hours=3)),  # whole minutes
        (base + timedelta(seconds=10), base + timedelta(seconds=45)),  # inside one minute
        (base + timedelta(minutes=7, seconds=5), base + timedelta(minutes=8, seconds=30)),
    ):
        values = list(
            Reading.objects.filter(
                sensor=temperature, timestamp__gte=start, timestamp__lt=end
            ).values_list("value", flat=True)
        )
        statistics = sensor_statistics(sensor=temperature, start=start, end=end)
        assert statistics["count"] == len(values)
        assert statistics["average"] == sum(values) / len(values)
        assert (statistics["minimum"], statistics["maximum"]) == (min(values), max(values))
        latest = Reading.objects.filter(sensor=temperature, timestamp__lt=end).latest("timestamp")
        assert statistics["latest"]["timestamp"] == latest.timestamp
    hourly = sensor_series(
        sensor=temperature, start=base, end=base + timedelta(hours=3), resolution="1h"
    )
    assert [point["timestamp"] for point in hourly] == [
        base + timedelta(hours=hour) for hour in range(3)
    ]
    assert [point["count"] for point in hourly] == [180, 180, 180]
