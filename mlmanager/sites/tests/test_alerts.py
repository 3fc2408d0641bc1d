"""Threshold alerts at ingest (a sensor's bands are its built-in alert rules, monitoring's): one
open alert per sensor and band while it is outside, resolved when it is back inside; late
readings keep the state; acknowledging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import member
from mlmanager.monitoring.models import Alert
from mlmanager.monitoring.services.alerts import alert_acknowledge
from mlmanager.sites.models import Sensor
from mlmanager.sites.selectors import sensor_state
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def owner_site(db: None) -> tuple[Any, Any]:
    owner = member("owner")
    return owner, site_of(owner.memberships.get().team)


def send(
    owner: Any, sensor: Sensor, values: list[float], *, start: datetime = T0
) -> dict[str, Any]:
    readings = [
        {"sensor": sensor.pk, "timestamp": (start + timedelta(seconds=i)).isoformat(), "value": v}
        for i, v in enumerate(values)
    ]
    return readings_ingest(caller=caller_of(owner), readings=readings)


BAND_OF_RULE = {"sensor_warning_band": "warning", "sensor_critical_band": "critical"}


def open_bands(sensor: Sensor) -> list[str]:
    rules = Alert.objects.filter(sensor=sensor).open().values_list("rule__builtin", flat=True)
    return sorted(BAND_OF_RULE[builtin] for builtin in rules)


def test_bands_are_checked_each_on_its_own(owner_site: tuple[Any, Any]) -> None:
    _owner, site = owner_site
    only_critical = sensor_of(site, "Pressure", critical_min=900, critical_max=1100)
    both = sensor_of(site, "Heat", warning_min=10, warning_max=50, critical_max=80)
    assert only_critical.bands_broken(1200) == {"critical"}
    assert only_critical.bands_broken(1000) == set()
    assert both.bands_broken(60) == {"warning"}
    assert both.bands_broken(90) == {"critical", "warning"}
    assert both.bands_broken(5) == {"warning"}


def test_one_alert_per_band_however_many_readings_break_it(owner_site: tuple[Any, Any]) -> None:
    owner, site = owner_site
    sensor = sensor_of(site, warning_max=50, critical_max=80)
    send(owner, sensor, [60, 61, 62, 63])
    assert open_bands(sensor) == ["warning"]
    send(owner, sensor, [90, 95, 99], start=T0 + timedelta(minutes=1))
    assert open_bands(sensor) == ["critical", "warning"]
    assert Alert.objects.count() == 2
    alert = Alert.objects.get(rule__builtin="sensor_critical_band")
    assert (alert.severity, alert.site_id, alert.team_id) == ("critical", site.pk, site.team_id)
    assert (alert.state, alert.value) == ("firing", 90)
    assert "90 °C" in alert.message and "above 80" in alert.message


def test_back_inside_resolves_and_a_new_excursion_opens_a_new_alert(
    owner_site: tuple[Any, Any],
) -> None:
    owner, site = owner_site
    sensor = sensor_of(site, warning_max=50, critical_max=80)
    send(owner, sensor, [90])
    send(owner, sensor, [60], start=T0 + timedelta(minutes=1))
    assert open_bands(sensor) == ["warning"]  # inside the critical band, still outside warning
    send(owner, sensor, [20], start=T0 + timedelta(minutes=2))
    assert open_bands(sensor) == []
    send(owner, sensor, [70], start=T0 + timedelta(minutes=3))
    assert open_bands(sensor) == ["warning"]
    assert Alert.objects.filter(rule__builtin="sensor_warning_band").count() == 2


def test_an_excursion_inside_one_request_opens_and_resolves(owner_site: tuple[Any, Any]) -> None:
    owner, site = owner_site
    sensor = sensor_of(site, warning_max=50)
    send(owner, sensor, [10, 70, 20])
    alert = Alert.objects.get(sensor=sensor)
    assert alert.resolved_at is not None and alert.value == 70


def test_late_readings_are_stored_but_do_not_move_the_state(owner_site: tuple[Any, Any]) -> None:
    owner, site = owner_site
    sensor = sensor_of(site, warning_max=50)
    send(owner, sensor, [20], start=T0 + timedelta(hours=1))
    answer = send(owner, sensor, [99, 98], start=T0)  # an hour late, out of order
    assert answer["accepted"] == 2
    assert open_bands(sensor) == []
    sensor.refresh_from_db()
    assert sensor.last_value == 20 and sensor.last_timestamp == T0 + timedelta(hours=1)


def test_state_is_stale_without_recent_readings(owner_site: tuple[Any, Any]) -> None:
    owner, site = owner_site
    sensor = sensor_of(site, warning_max=50, critical_max=80, sampling_interval_s=10)
    assert sensor_state(sensor) == "stale"
    now = datetime.now(UTC)
    send(owner, sensor, [85], start=now - timedelta(seconds=5))
    sensor.refresh_from_db()
    assert sensor_state(sensor, now=now) == "critical"
    assert sensor_state(sensor, now=now + timedelta(minutes=5)) == "stale"


def test_acknowledge_records_who_and_once(owner_site: tuple[Any, Any]) -> None:
    owner, site = owner_site
    sensor = sensor_of(site, warning_max=50)
    send(owner, sensor, [70])
    alert = Alert.objects.get()
    alert_acknowledge(caller=caller_of(owner), alert=alert)
    first = alert.acknowledged_at
    assert alert.acknowledged and alert.acknowledged_by == owner
    alert_acknowledge(caller=caller_of(owner), alert=alert)
    assert alert.acknowledged_at == first
    assert AuditEvent.objects.filter(action="alert.acknowledged").count() == 1
    assert alert.resolved_at is None  # acknowledged is not resolved: the sensor is still out
