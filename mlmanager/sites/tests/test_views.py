"""The sites pages: what each shows, and that each form does what it says."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mlmanager.accounts.models import Membership
from mlmanager.core.tests.factories import member
from mlmanager.monitoring.models import Alert
from mlmanager.sites.models import (
    CalibrationRecord,
    DeadLetter,
    DeviceKey,
    ProductionRecord,
    Sensor,
    Site,
    SiteCommand,
    SiteMembership,
)
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.services.sites import hash_device_key
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(owner: Any) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def site(owner: Any) -> Site:
    return site_of(owner.current_team, "Mill 1", location="North", capacity=200.0)


@pytest.fixture
def sensor(site: Site) -> Sensor:
    return sensor_of(site, "Kiln", warning_max=80.0, critical_max=95.0, sampling_interval_s=10)


def _send(owner: Any, sensor: Sensor, *values: float, start: Any = None) -> None:
    start = start or timezone.now() - timedelta(seconds=len(values))
    answer = readings_ingest(
        caller=caller_of(owner),
        readings=[
            {
                "sensor": sensor.pk,
                "timestamp": (start + timedelta(seconds=i)).isoformat(),
                "value": v,
            }
            for i, v in enumerate(values)
        ],
    )
    assert answer["accepted"] == len(values), answer


def _messages(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_overview_lists_the_sites_with_their_figures(
    browser: Client, owner: Any, site: Site, sensor: Sensor
) -> None:
    _send(owner, sensor, 70.0, 85.0)  # the latest is in the warning band: one alert opens
    ProductionRecord.objects.create(site=site, date=timezone.localdate(), actual=150.0)
    site_of(member().current_team, "Someone else's")

    page = browser.get("/sites/").content.decode()

    assert page.count('data-testid="site-row"') == 1
    assert f'<a href="/sites/{site.pk}/">Mill 1</a>' in page
    assert '<strong class="state-critical">1</strong>' in page  # one open alert
    assert "75.0 %" in page  # 150 of 200
    assert '<span class="state-warning">1</span> / 1' in page
    assert 'action="/sites/new/"' in page  # the owner may create sites


def test_create_a_site(browser: Client, owner: Any) -> None:
    response = browser.post(
        "/sites/new/",
        {"name": "Plant 2", "capacity": "50", "capacity_unit": "t", "status": "active"},
    )

    created = Site.objects.get(name="Plant 2")
    assert created.team == owner.current_team
    assert created.capacity == 50.0
    assert response.status_code == 302
    assert response["Location"] == f"/sites/{created.pk}/"


def test_create_a_site_with_a_taken_name_says_so(browser: Client, site: Site) -> None:
    response = browser.post("/sites/new/", {"name": "Mill 1", "status": "active"}, follow=True)

    assert _messages(response) == ["Site with this Team and Name already exists."]
    assert Site.objects.filter(name="Mill 1").count() == 1


def test_dashboard_shows_each_sensor_now(
    browser: Client, owner: Any, site: Site, sensor: Sensor
) -> None:
    quiet = sensor_of(site, "Humidity", sensor_type="humidity")
    sensor_of(site, "Retired", is_active=False)
    _send(owner, sensor, 60.0, 70.0, 90.0)

    page = browser.get(f"/sites/{site.pk}/").content.decode()

    card = page.split(f'data-testid="sensor-{sensor.pk}"')[1].split("</article>")[0]
    assert '<strong data-testid="sensor-value">90</strong> °C' in card
    assert 'data-testid="sensor-state">warning<' in card
    assert "quality-good" in card
    assert 'class="chart spark"' in card
    assert card.count('class="band-warning"') == 1 and card.count('class="band-critical"') == 1
    assert 'class="limit-warning"' in card and 'class="limit-critical"' in card
    assert 'class="chart-line"' in card
    quiet_card = page.split(f'data-testid="sensor-{quiet.pk}"')[1].split("</article>")[0]
    assert 'data-testid="sensor-state">stale<' in quiet_card
    assert "No readings in this range." in quiet_card
    assert "Retired" not in page
    assert page.count('data-testid="alert"') == 1  # the warning band's alert
    assert f'data-site-socket="/ws/sites/{site.pk}/"' in page
    assert "sites/dashboard.js" in page


def test_dashboard_ranges_read_rollups(
    browser: Client, owner: Any, site: Site, sensor: Sensor
) -> None:
    """An hour ago is outside the 1 h chart, inside the 24 h one (minute rollups)."""
    # At the start of a minute: two readings seconds apart must not straddle two rollups.
    start = (timezone.now() - timedelta(hours=2)).replace(second=0, microsecond=0)
    _send(owner, sensor, 50.0, 55.0, start=start)

    one_hour = browser.get(f"/sites/{site.pk}/?range=1h").context["cards"][0]["chart"]
    one_day = browser.get(f"/sites/{site.pk}/?range=24h").context["cards"][0]["chart"]
    month = browser.get(f"/sites/{site.pk}/?range=30d").context["cards"][0]["chart"]
    unknown = browser.get(f"/sites/{site.pk}/?range=forever")

    assert (one_hour.points, one_day.points, month.points) == (0, 1, 1)
    assert unknown.context["range_key"] == "1h"


def test_an_htmx_request_gets_the_live_partial_only(browser: Client, site: Site) -> None:
    page = browser.get(f"/sites/{site.pk}/", headers={"HX-Request": "true"}).content.decode()

    assert page.lstrip().startswith('<div id="site-live"')
    assert "<html" not in page


def test_acknowledge_start_and_stop(
    browser: Client, owner: Any, site: Site, sensor: Sensor
) -> None:
    _send(owner, sensor, 99.0)
    alert = Alert.objects.get(sensor=sensor, rule__builtin="sensor_critical_band")

    browser.post(f"/sites/alerts/{alert.pk}/acknowledge/")
    alert.refresh_from_db()
    assert alert.acknowledged_by == owner

    started = browser.post(f"/sites/{site.pk}/start/", follow=True)
    assert _messages(started) == ["Alert acknowledged.", "Production started."]
    site.refresh_from_db()
    assert site.producing is True

    stopped = browser.post(f"/sites/{site.pk}/stop/", {"reason": "smoke"}, follow=True)
    assert _messages(stopped) == ["Emergency stop sent. The site is offline."]
    site.refresh_from_db()
    assert (site.status, site.producing) == ("offline", False)
    assert SiteCommand.objects.filter(site=site, command="emergency_stop").count() == 1

    again = browser.post(f"/sites/{site.pk}/start/", follow=True)
    assert _messages(again) == ["Production can only start on an active site; this one is Offline."]


def test_record_production(browser: Client, site: Site) -> None:
    today = timezone.localdate()
    browser.post(f"/sites/{site.pk}/production/", {"date": today.isoformat(), "actual": "120"})

    assert ProductionRecord.objects.get(site=site, date=today).actual == 120.0
    page = browser.get(f"/sites/{site.pk}/").content.decode()
    assert '<progress value="120.0" max="200.0"></progress>' in page
    assert "60.0 %" in page


def test_sensor_page_thresholds_and_calibration(
    browser: Client, owner: Any, sensor: Sensor
) -> None:
    _send(owner, sensor, 21.5)

    browser.post(
        f"/sites/sensors/{sensor.pk}/thresholds/",
        {"warning_min": "5", "warning_max": "70", "critical_min": "", "critical_max": "90"},
    )
    browser.post(f"/sites/sensors/{sensor.pk}/calibrate/", {"reference_value": "20"})
    bad = browser.post(
        f"/sites/sensors/{sensor.pk}/thresholds/",
        {"warning_min": "80", "warning_max": "70"},
        follow=True,
    )

    sensor.refresh_from_db()
    assert (sensor.warning_min, sensor.warning_max, sensor.critical_min, sensor.critical_max) == (
        5.0,
        70.0,
        None,
        90.0,
    )
    assert sensor.calibration_offset == pytest.approx(-1.5)
    assert _messages(bad) == [
        "Thresholds saved.",
        "Sensor calibrated.",
        "The warning minimum is above its maximum.",
    ]
    record = CalibrationRecord.objects.get(sensor=sensor)
    assert (record.reference_value, record.previous_reading) == (20.0, 21.5)
    page = browser.get(f"/sites/sensors/{sensor.pk}/").content.decode()
    history = page.split('data-testid="calibrations"')[1]
    assert history.count("<tr><td>") == 1
    assert 'data-testid="thresholds-form"' in page and 'data-testid="calibrate-form"' in page


def test_calibrating_a_sensor_without_readings_says_so(browser: Client, sensor: Sensor) -> None:
    response = browser.post(
        f"/sites/sensors/{sensor.pk}/calibrate/", {"reference_value": "20"}, follow=True
    )

    assert _messages(response) == [
        "The sensor has no reading yet; calibrate it once it has sent one."
    ]


def test_settings_edit_sensors_members_and_keys(browser: Client, owner: Any, site: Site) -> None:
    colleague = member(Membership.Role.EDITOR, team=owner.current_team)

    browser.post(
        f"/sites/{site.pk}/settings/",
        {"name": "Mill One", "status": "maintenance", "capacity": "300", "capacity_unit": "t"},
    )
    browser.post(
        f"/sites/{site.pk}/sensors/new/",
        {
            "name": "Press",
            "sensor_type": "pressure",
            "device_id": "press-1",
            "sampling_interval_s": "5",
        },
    )
    browser.post(f"/sites/{site.pk}/members/", {"user": colleague.pk, "role": "operator"})
    created = browser.post(f"/sites/{site.pk}/keys/", {"name": "Gateway"})

    site.refresh_from_db()
    assert (site.name, site.status, site.capacity) == ("Mill One", "maintenance", 300.0)
    press = Sensor.objects.get(site=site, name="Press")
    assert (press.unit, press.sampling_interval_s) == ("hPa", 5)
    assert SiteMembership.objects.get(site=site, user=colleague).role == "operator"
    [raw] = re.findall(r'data-testid="new-key-value">(mlmd_[^<]+)<', created.content.decode())
    key = DeviceKey.objects.get(site=site)
    assert (key.name, key.key_hash) == ("Gateway", hash_device_key(raw))
    assert created["Cache-Control"] == "no-store"
    settings_page = browser.get(f"/sites/{site.pk}/settings/").content.decode()
    assert raw not in settings_page  # shown once
    assert colleague.email in settings_page and key.prefix in settings_page

    browser.post(f"/sites/{site.pk}/keys/{key.pk}/revoke/")
    browser.post(f"/sites/{site.pk}/members/{colleague.pk}/remove/")
    browser.post(f"/sites/sensors/{press.pk}/delete/")
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert not SiteMembership.objects.filter(site=site, user=colleague).exists()
    assert not Sensor.objects.filter(pk=press.pk).exists()


def test_a_role_for_someone_outside_the_team_is_refused(browser: Client, site: Site) -> None:
    stranger = member()

    response = browser.post(
        f"/sites/{site.pk}/members/", {"user": stranger.pk, "role": "viewer"}, follow=True
    )

    assert len(_messages(response)) == 1 and _messages(response)[0].startswith("Team member:")
    assert not SiteMembership.objects.filter(site=site).exists()


def test_another_sites_key_cannot_be_revoked_through_this_one(
    browser: Client, owner: Any, site: Site
) -> None:
    other = site_of(owner.current_team, "Mill 2")
    key = DeviceKey.objects.create(
        team=owner.current_team, site=other, name="k", prefix="mlmd_x", key_hash="h" * 64
    )

    response = browser.post(f"/sites/{site.pk}/keys/{key.pk}/revoke/")

    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_delete_a_site(browser: Client, site: Site, sensor: Sensor) -> None:
    response = browser.post(f"/sites/{site.pk}/delete/")

    assert response["Location"] == "/sites/"
    assert not Site.objects.filter(pk=site.pk).exists()


def test_dead_letters_of_managed_sites(browser: Client, owner: Any, site: Site) -> None:
    DeadLetter.objects.create(
        team=owner.current_team,
        site=site,
        topic="mlmanager/sites/1/sensors/x",
        payload="{",
        reason="Not JSON",
    )
    DeadLetter.objects.create(
        team=member().current_team, topic="t", payload="p", reason="Elsewhere"
    )

    page = browser.get("/sites/dead-letters/").content.decode()

    assert "Not JSON" in page
    assert "Elsewhere" not in page


def test_overview_queries_do_not_grow_with_the_sites(browser: Client, owner: Any) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert browser.get("/sites/").status_code == 200
        return len(captured.captured_queries)

    sensor_of(site_of(owner.current_team, "Mill 1"), "Kiln")
    one = queries()
    for number in range(2, 6):
        sensor_of(site_of(owner.current_team, f"Mill {number}"), "Kiln")

    assert queries() == one


def test_the_readings_export_is_the_range_as_csv_for_those_who_see_the_sensor(db: None) -> None:
    from datetime import timedelta

    from django.test import Client
    from django.utils import timezone

    from mlmanager.core.tests.factories import member
    from mlmanager.sites.services.readings import readings_ingest
    from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of, site_role

    owner = member("owner")
    team = owner.memberships.get().team
    site = site_of(team, "Mill, north")
    sensor = sensor_of(site, "Kiln", calibration_offset=1.5)
    now = timezone.now()
    readings_ingest(
        caller=caller_of(owner),
        readings=[
            {"sensor": sensor.pk, "timestamp": (now - timedelta(minutes=m)).isoformat(), "value": m}
            for m in (90, 30, 10)
        ],
    )
    viewer, stranger, outsider = member("editor", team=team), member("editor", team=team), member()
    site_role(site, viewer, "viewer")
    client = Client()
    client.force_login(viewer)
    response = client.get(f"/sites/sensors/{sensor.pk}/readings.csv?range=1h")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="mill-north-kiln-readings.csv"'
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "timestamp,raw_value,value,quality"
    assert [line.split(",")[1:] for line in lines[1:]] == [
        ["30.0", "31.5", "good"],
        ["10.0", "11.5", "good"],
    ]  # oldest first; the reading 90 minutes old is outside the hour
    for other in (stranger, outsider):  # no role on the site; another team
        client.force_login(other)
        assert client.get(f"/sites/sensors/{sensor.pk}/readings.csv").status_code == 404
