"""The demo feed: the value generator's shape, the demo site, and `simulate --once` over MQTT
(through the bridge into the database) and over REST."""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from statistics import mean
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from mlmanager.core.tests.factories import member
from mlmanager.sites.bridge import Bridge
from mlmanager.sites.demo import DEMO_SITE_NAME, SIMULATOR_KEY_NAME, demo_site_ensure
from mlmanager.sites.models import DeviceKey, Reading, Sensor
from mlmanager.sites.services.sites import hash_device_key
from mlmanager.sites.simulator import DEMO_SENSORS, SensorProfile, profile_for, simulated_value
from mlmanager.sites.tests.conftest import PrivateBroker
from mlmanager.sites.tests.factories import sensor_of, site_of

BACKFILLED = 24 * 60  # readings per sensor of a new demo site's past day
DAY = datetime(2026, 3, 2, tzinfo=UTC)


def samples(profile: SensorProfile, days: int, step_s: int = 60) -> list[tuple[datetime, float]]:
    moments = (DAY + timedelta(seconds=s) for s in range(0, days * 86_400, step_s))
    return [(moment, simulated_value(profile, moment)) for moment in moments]


def outside(profile: SensorProfile, value: float, band: str) -> bool:
    low = getattr(profile, f"{band}_min")
    high = getattr(profile, f"{band}_max")
    return (low is not None and value < low) or (high is not None and value > high)


@pytest.mark.parametrize("profile", DEMO_SENSORS, ids=lambda profile: profile.sensor_type)
def test_values_follow_the_day_and_leave_the_bands_now_and_then(profile: SensorProfile) -> None:
    values = samples(profile, days=4)
    past_warning = sum(outside(profile, value, "warning") for _moment, value in values)
    past_critical = sum(outside(profile, value, "critical") for _moment, value in values)
    assert past_critical > 0  # a severe excursion in four days
    assert past_warning > past_critical  # every critical value is a warning one too
    assert past_warning < 0.1 * len(values)  # an excursion is the exception
    by_hour: dict[int, list[float]] = defaultdict(list)
    for moment, value in values:
        by_hour[moment.hour].append(value)
    hourly = {hour: mean(found) for hour, found in by_hour.items()}
    peak = round(profile.peak_hour) % 24
    trough = (peak + 12) % 24
    assert hourly[peak] - hourly[trough] > profile.daily_amplitude  # the daily cycle
    assert len({value for _moment, value in values[:60]}) > 30  # noise: values vary


def test_an_excursion_goes_out_and_comes_back() -> None:
    profile = DEMO_SENSORS[0]
    values = samples(profile, days=2, step_s=10)
    states = [outside(profile, value, "warning") for _moment, value in values]
    leaves = sum(1 for before, after in itertools.pairwise(states) if after and not before)
    returns = sum(1 for before, after in itertools.pairwise(states) if before and not after)
    assert leaves >= 2
    assert returns == leaves  # every excursion ends inside the band again
    assert not states[-1]


def test_the_same_moment_gives_the_same_value_and_seeds_differ() -> None:
    profile = DEMO_SENSORS[1]
    moment = DAY + timedelta(hours=7, seconds=13)
    assert simulated_value(profile, moment) == simulated_value(profile, moment)
    seconds = [DAY + timedelta(seconds=s) for s in range(100)]
    assert [simulated_value(profile, m) for m in seconds] != [
        simulated_value(profile, m, seed="other") for m in seconds
    ]


def test_a_profile_for_any_sensor_sits_in_its_warning_band() -> None:
    profile = profile_for(
        name="Flow",
        sensor_type="flow",
        unit="L/min",
        warning_min=100.0,
        warning_max=200.0,
        critical_min=None,
        critical_max=None,
    )
    values = samples(profile, days=2)
    assert profile.base == 150.0
    assert 0 < sum(outside(profile, value, "warning") for _m, value in values) < 0.1 * len(values)


@pytest.fixture
def admin(db: None) -> Any:
    user = member("owner")
    user.email = settings.ENV.admin_email
    user.save(update_fields=["email"])
    return user


def test_the_demo_site_is_created_once_with_its_sensors(admin: Any) -> None:
    site = demo_site_ensure()
    assert site is not None
    assert (site.name, site.team_id) == (DEMO_SITE_NAME, admin.current_team_id)
    sensors = list(Sensor.objects.filter(site=site).order_by("name"))
    assert sorted(s.sensor_type for s in sensors) == sorted(p.sensor_type for p in DEMO_SENSORS)
    for sensor in sensors:
        profile = next(p for p in DEMO_SENSORS if p.name == sensor.name)
        assert (sensor.warning_max, sensor.critical_max) == (
            profile.warning_max,
            profile.critical_max,
        )
    # The past day is there at one reading a minute, so the 24 h charts are full at once.
    from mlmanager.sites.models import Reading, ReadingRollup

    for sensor in sensors:
        assert Reading.objects.filter(sensor=sensor).count() == BACKFILLED
        assert ReadingRollup.objects.filter(sensor=sensor, resolution="1h").count() in (24, 25)
        assert sensor.last_timestamp is not None
    Sensor.objects.filter(site=site, name=DEMO_SENSORS[0].name).delete()
    again = demo_site_ensure()
    assert again is not None and again.pk == site.pk
    assert Sensor.objects.filter(site=site).count() == len(DEMO_SENSORS)


def test_without_an_admin_there_is_no_demo_site(db: None) -> None:
    assert demo_site_ensure() is None
    with pytest.raises(CommandError, match="no admin account"):
        call_command("simulate", "--once", stdout=io.StringIO())


class _Answer(io.BytesIO):
    def __enter__(self) -> _Answer:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


def test_simulate_once_posts_to_the_rest_ingest_with_a_fresh_key(admin: Any, settings: Any) -> None:
    settings.MLMANAGER_MQTT_URL = ""
    settings.MLMANAGER_SITE_URL = "http://127.0.0.1:8123"
    sent: list[Any] = []

    def urlopen(request: Any, timeout: float) -> _Answer:
        sent.append(request)
        return _Answer(b'{"accepted": 5, "duplicates": 0, "rejected": []}')

    with mock.patch("urllib.request.urlopen", urlopen):
        call_command("simulate", "--once", stdout=io.StringIO())
        call_command("simulate", "--once", stdout=io.StringIO())
    assert [request.full_url for request in sent] == ["http://127.0.0.1:8123/api/v1/readings/"] * 2
    site = demo_site_ensure()
    keys = list(DeviceKey.objects.filter(site=site, name=SIMULATOR_KEY_NAME).order_by("pk"))
    assert [key.revoked_at is None for key in keys] == [False, True]  # the first one revoked
    raw = sent[-1].get_header("Authorization").removeprefix("Bearer ")
    assert hash_device_key(raw) == keys[-1].key_hash
    body = json.loads(sent[-1].data)
    devices = set(Sensor.objects.filter(site=site).values_list("device_id", flat=True))
    assert {reading["device_id"] for reading in body["readings"]} == devices
    assert all(isinstance(reading["value"], float) for reading in body["readings"])


def test_simulate_once_for_a_site_that_does_not_exist(db: None) -> None:
    with pytest.raises(CommandError, match="There is no site 424242"):
        call_command("simulate", "--once", "--site", "424242", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_simulate_once_over_mqtt_reaches_the_database_through_the_bridge(
    mqtt_broker: PrivateBroker, admin: Any
) -> None:
    own_site = site_of(admin.current_team, "Own mill")
    sensor_of(own_site, "Flow", sensor_type="flow", warning_min=10.0, warning_max=20.0)
    bridge = Bridge(client_id="simulator-test")
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not bridge.subscribed.is_set():
            assert time.monotonic() < deadline, "the bridge did not subscribe"
            time.sleep(0.05)
        call_command("simulate", "--once", stdout=io.StringIO())
        call_command("simulate", "--once", "--site", str(own_site.pk), stdout=io.StringIO())
        expected = len(DEMO_SENSORS) * (BACKFILLED + 1) + 1  # the demo's past day, then a round
        while Reading.objects.count() < expected:
            assert time.monotonic() < deadline, "the readings did not arrive"
            time.sleep(0.05)
    finally:
        bridge.stop()
        thread.join(timeout=30)
    demo = demo_site_ensure()
    assert Reading.objects.filter(sensor__site=demo).count() == len(DEMO_SENSORS) * (BACKFILLED + 1)
    assert Reading.objects.filter(sensor__site=own_site).count() == 1


@pytest.mark.django_db(transaction=True)
def test_simulate_once_over_rest_is_stored_by_the_server(admin: Any, live_server: Any) -> None:
    with override_settings(MLMANAGER_MQTT_URL="", MLMANAGER_SITE_URL=live_server.url):
        call_command("simulate", "--once", stdout=io.StringIO())
    demo = demo_site_ensure()
    stored = Reading.objects.filter(sensor__site=demo)
    assert stored.count() == len(DEMO_SENSORS) * (BACKFILLED + 1)
    assert {reading.quality for reading in stored} == {"good"}
