"""The ingest reads the usual reading on a fast path and every other through `_parse`: each bad
reading gets the same code whichever way it goes, alone or among good readings, on SQLite and
PostgreSQL (the suite runs on both); and the sensors' latest values set in one statement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from mlmanager.accounts.models import Membership
from mlmanager.core.tests.factories import member
from mlmanager.sites.models import Reading, ReadingRollup, Sensor
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def mill() -> dict[str, Any]:
    owner = member("owner")
    site = site_of(owner.current_team)
    other_team = member("owner").current_team
    Membership.objects.create(team=other_team, user=owner, role=Membership.Role.OWNER)
    return {
        "owner": owner,
        "boiler": sensor_of(site, "Boiler", device_id="boiler-1"),
        "off": sensor_of(site, "Off", device_id="off-1", is_active=False),
        "huge": sensor_of(site, "Huge", device_id="huge-1", calibration_multiplier=1e300),
        # The same device id in two of the owner's teams.
        "twin": sensor_of(site, "Twin", device_id="twin-1"),
        "twin_elsewhere": sensor_of(site_of(other_team), "Twin", device_id="twin-1"),
        "foreign": sensor_of(site_of(member("owner").current_team), "Theirs", device_id="th-1"),
    }


def ingest(mill: dict[str, Any], readings: list[Any]) -> dict[str, Any]:
    return readings_ingest(caller=caller_of(mill["owner"]), readings=readings)


def reading(sensor: Any = None, **fields: Any) -> dict[str, Any]:
    fields.setdefault("timestamp", MOMENT.isoformat())
    fields.setdefault("value", 1.5)
    return {"sensor": sensor, **fields} if sensor is not None else fields


BAD = {
    "not an object": lambda m: [1, 2],
    "text, not an object": lambda m: "sensor 1",
    "no sensor": lambda m: reading(),
    "empty sensor and device": lambda m: reading(sensor="", device_id=""),
    "true as a sensor id": lambda m: reading(True),
    "a float sensor id": lambda m: reading(float(m["boiler"].pk)),
    "a list as sensor id": lambda m: reading([m["boiler"].pk]),
    "a sensor id with a sign": lambda m: reading(f"+{m['boiler'].pk}"),
    "another team's sensor": lambda m: reading(m["foreign"].pk),
    "another team's device": lambda m: reading(device_id="th-1"),
    "no such device": lambda m: reading(device_id="nothing"),
    "a device in two teams": lambda m: reading(device_id="twin-1"),
    "an inactive sensor": lambda m: reading(m["off"].pk),
    "an inactive sensor's device": lambda m: reading(device_id="off-1"),
    "a word as timestamp": lambda m: reading(m["boiler"].pk, timestamp="yesterday"),
    "an empty timestamp": lambda m: reading(m["boiler"].pk, timestamp=""),
    "no timestamp": lambda m: {"sensor": m["boiler"].pk, "value": 1},
    "true as timestamp": lambda m: reading(m["boiler"].pk, timestamp=True),
    "a timestamp past any date": lambda m: reading(m["boiler"].pk, timestamp=10**400),
    "February 30th": lambda m: reading(m["boiler"].pk, timestamp="2026-02-30T10:00:00Z"),
    "a future timestamp": lambda m: reading(
        m["boiler"].pk, timestamp=(timezone.now() + timedelta(days=2)).isoformat()
    ),
    "a future epoch": lambda m: reading(
        m["boiler"].pk, timestamp=(timezone.now() + timedelta(days=2)).timestamp()
    ),
    "a word as value": lambda m: reading(m["boiler"].pk, value="warm"),
    "true as value": lambda m: reading(m["boiler"].pk, value=True),
    "no value": lambda m: {"sensor": m["boiler"].pk, "timestamp": MOMENT.isoformat()},
    "a list as value": lambda m: reading(m["boiler"].pk, value=[1]),
    "NaN": lambda m: reading(m["boiler"].pk, value=float("nan")),
    "NaN as text": lambda m: reading(m["boiler"].pk, value="nan"),
    "infinity": lambda m: reading(m["boiler"].pk, value=float("inf")),
    "an integer past any float": lambda m: reading(m["boiler"].pk, value=10**400),
    "an infinite calibrated value": lambda m: reading(m["huge"].pk, value=1e10),
    "an unknown quality": lambda m: reading(m["boiler"].pk, quality="great"),
    "a quality in capitals": lambda m: reading(m["boiler"].pk, quality="GOOD"),
    "a list as quality": lambda m: reading(m["boiler"].pk, quality=["good"]),
}
EXPECTED = {
    "not an object": "invalid",
    "text, not an object": "invalid",
    "no sensor": "missing_sensor",
    "empty sensor and device": "missing_sensor",
    "true as a sensor id": "unknown_sensor",
    "a float sensor id": "unknown_sensor",
    "a list as sensor id": "unknown_sensor",
    "a sensor id with a sign": "unknown_sensor",
    "another team's sensor": "unknown_sensor",
    "another team's device": "unknown_device",
    "no such device": "unknown_device",
    "a device in two teams": "ambiguous_device",
    "an inactive sensor": "inactive_sensor",
    "an inactive sensor's device": "inactive_sensor",
    "a word as timestamp": "invalid_timestamp",
    "an empty timestamp": "invalid_timestamp",
    "no timestamp": "invalid_timestamp",
    "true as timestamp": "invalid_timestamp",
    "a timestamp past any date": "invalid_timestamp",
    "February 30th": "invalid_timestamp",
    "a future timestamp": "future_timestamp",
    "a future epoch": "future_timestamp",
    "a word as value": "invalid_value",
    "true as value": "invalid_value",
    "no value": "invalid_value",
    "a list as value": "invalid_value",
    "NaN": "not_finite",
    "NaN as text": "not_finite",
    "infinity": "not_finite",
    "an integer past any float": "not_finite",
    "an infinite calibrated value": "not_finite",
    "an unknown quality": "invalid_quality",
    "a quality in capitals": "invalid_quality",
    "a list as quality": "invalid_quality",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_reading_alone_gets_its_code(mill: dict[str, Any], case: str) -> None:
    answer = ingest(mill, [BAD[case](mill)])
    assert (answer["accepted"], answer["duplicates"]) == (0, 0)
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(0, EXPECTED[case])]
    assert answer["rejected"][0]["message"]
    assert not Reading.objects.exists()


def test_bad_readings_among_good_ones_get_the_same_codes(mill: dict[str, Any]) -> None:
    boiler = mill["boiler"]
    cases = sorted(BAD)
    readings: list[Any] = []
    for offset, case in enumerate(cases):
        readings.append(BAD[case](mill))
        stamp = (MOMENT + timedelta(seconds=offset)).isoformat()
        readings.append(reading(boiler.pk, timestamp=stamp, value=float(offset)))
    answer = ingest(mill, readings)
    assert answer["accepted"] == len(cases)
    assert answer["duplicates"] == 0
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [
        (2 * offset, EXPECTED[case]) for offset, case in enumerate(cases)
    ]
    assert Reading.objects.filter(sensor=boiler).count() == len(cases)


def test_every_way_of_naming_a_good_reading_is_stored_alike(mill: dict[str, Any]) -> None:
    boiler = mill["boiler"]
    boiler.calibration_multiplier, boiler.calibration_offset = 2.0, 0.5
    boiler.save()
    naive = MOMENT.replace(tzinfo=None)
    readings = [
        reading(boiler.pk, timestamp=MOMENT.isoformat(), value=1.0),
        reading(str(boiler.pk), timestamp="2026-11-20T10:00:01Z", value=2),
        reading(f"0{boiler.pk}", timestamp="2026-11-20T11:00:02+01:00", value="3.5"),
        reading(device_id="boiler-1", timestamp=(naive + timedelta(seconds=3)).isoformat()),
        reading("", device_id="boiler-1", timestamp=MOMENT.timestamp() + 4, value=-0.0),
        reading(boiler.pk, timestamp=str(MOMENT.timestamp() + 5), quality="uncertain"),
        reading(boiler.pk, timestamp=" 2026-11-20T10:00:06Z ", quality=""),
        reading(boiler.pk, timestamp=MOMENT.isoformat(), value=99.0),  # a duplicate
        reading(boiler.pk, timestamp="2026-11-20T11:00:00+01:00", value=98.0),  # the same time
    ]
    answer = ingest(mill, readings)
    assert answer == {"accepted": 7, "duplicates": 2, "rejected": []}
    stored = list(
        Reading.objects.filter(sensor=boiler)
        .order_by("timestamp")
        .values_list("timestamp", "raw_value", "value", "quality")
    )
    assert stored == [
        (MOMENT, 1.0, 2.5, "good"),
        (MOMENT + timedelta(seconds=1), 2.0, 4.5, "good"),
        (MOMENT + timedelta(seconds=2), 3.5, 7.5, "good"),
        (MOMENT + timedelta(seconds=3), 1.5, 3.5, "good"),
        (MOMENT + timedelta(seconds=4), -0.0, 0.5, "good"),
        (MOMENT + timedelta(seconds=5), 1.5, 3.5, "uncertain"),
        (MOMENT + timedelta(seconds=6), 1.5, 3.5, "good"),
    ]
    minute = ReadingRollup.objects.get(sensor=boiler, resolution="1m")
    hour = ReadingRollup.objects.get(sensor=boiler, resolution="1h")
    for rollup in (minute, hour):
        assert rollup.bucket == MOMENT
        assert (rollup.minimum, rollup.maximum, rollup.count) == (0.5, 7.5, 7)
        assert rollup.total == 2.5 + 4.5 + 7.5 + 3.5 + 0.5 + 3.5 + 3.5


def test_each_sensors_latest_reading_moves_only_forward(mill: dict[str, Any]) -> None:
    boiler, twin = mill["boiler"], mill["twin"]
    first = [
        reading(boiler.pk, timestamp=(MOMENT + timedelta(seconds=s)).isoformat(), value=float(s))
        for s in (5, 9, 7)
    ] + [reading(twin.pk, timestamp=MOMENT.isoformat(), value=40.0, quality="bad")]
    assert ingest(mill, first)["accepted"] == 4
    # Late for the boiler (older than its latest), newer for the twin.
    second = [
        reading(boiler.pk, timestamp=(MOMENT + timedelta(seconds=8)).isoformat(), value=80.0),
        reading(twin.pk, timestamp=(MOMENT + timedelta(minutes=1)).isoformat(), value=41.0),
    ]
    assert ingest(mill, second)["accepted"] == 2
    latest = {
        sensor.pk: (
            sensor.last_timestamp,
            sensor.last_raw_value,
            sensor.last_value,
            sensor.last_quality,
        )
        for sensor in Sensor.objects.filter(pk__in=[boiler.pk, twin.pk])
    }
    assert latest == {
        boiler.pk: (MOMENT + timedelta(seconds=9), 9.0, 9.0, "good"),
        twin.pk: (MOMENT + timedelta(minutes=1), 41.0, 41.0, "good"),
    }
    untouched = Sensor.objects.get(pk=mill["huge"].pk)
    assert untouched.last_timestamp is None


def test_two_ingests_in_one_transaction(mill: dict[str, Any]) -> None:
    """The temporary table is emptied after each ingest, not only at commit."""
    boiler = mill["boiler"]
    first = [reading(boiler.pk, timestamp=MOMENT.isoformat(), value=1.0)]
    second = [
        reading(boiler.pk, timestamp=MOMENT.isoformat(), value=5.0),  # stored by the first
        reading(boiler.pk, timestamp=(MOMENT + timedelta(seconds=1)).isoformat(), value=2.0),
    ]
    assert ingest(mill, first) == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert ingest(mill, second) == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert list(Reading.objects.order_by("timestamp").values_list("value", flat=True)) == [
        1.0,
        2.0,
    ]
    minute = ReadingRollup.objects.get(sensor=boiler, resolution="1m")
    assert (minute.minimum, minute.maximum, minute.total, minute.count) == (1.0, 2.0, 3.0, 2)
