"""Who sees and may do what on the sites pages, role by role: team owners and admins are admins
of every site; other members reach the sites they hold a role on; everyone else gets 404.

A button a role may not use is not on the page, and its POST is refused anyway (403 for a role
that sees the site, 404 for someone who does not)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from mlmanager.accounts.models import Membership
from mlmanager.core.tests.factories import member
from mlmanager.monitoring.models import Alert
from mlmanager.sites.models import DeadLetter, DeviceKey, Sensor, Site, SiteMembership
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of, site_role

pytestmark = pytest.mark.django_db

# Who: (team role, site role); None = not in the site's team at all.
WHO: dict[str, tuple[str | None, str | None]] = {
    "team owner": ("owner", None),
    "team admin": ("admin", None),
    "site admin": ("editor", "admin"),
    "operator": ("editor", "operator"),
    "technician": ("viewer", "technician"),
    "viewer": ("viewer", "viewer"),
    "team member without a site role": ("editor", None),
    "another team's owner": (None, None),
}
SEES = {"team owner", "team admin", "site admin", "operator", "technician", "viewer"}
OPERATES = {"team owner", "team admin", "site admin", "operator"}
MAINTAINS = {"team owner", "team admin", "site admin", "technician"}
MANAGES = {"team owner", "team admin", "site admin"}


@pytest.fixture
def world() -> dict[str, Any]:
    owner = member(Membership.Role.OWNER)
    team = owner.current_team
    site = site_of(team, "Mill 1")
    sensor = sensor_of(site, "Kiln", warning_max=80.0)
    readings_ingest(
        caller=caller_of(owner),
        readings=[{"sensor": sensor.pk, "timestamp": timezone.now().isoformat(), "value": 90.0}],
    )
    users = {}
    for name, (team_role, role) in WHO.items():
        if name == "team owner":
            users[name] = owner
            continue
        user = member(team_role, team=team) if team_role else member()
        if role:
            site_role(site, user, role)
        users[name] = user
    return {
        "site": site,
        "sensor": sensor,
        "alert": Alert.objects.get(sensor=sensor),
        "users": users,
    }


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("who", WHO)
def test_pages_and_buttons(world: dict[str, Any], who: str) -> None:
    site, sensor = world["site"], world["sensor"]
    client = _client(world["users"][who])

    overview = client.get("/sites/").content.decode()
    dashboard = client.get(f"/sites/{site.pk}/")
    sensor_page = client.get(f"/sites/sensors/{sensor.pk}/")
    settings_page = client.get(f"/sites/{site.pk}/settings/")

    assert (f'href="/sites/{site.pk}/"' in overview) is (who in SEES)
    expected = 200 if who in SEES else 404
    assert (dashboard.status_code, sensor_page.status_code) == (expected, expected)
    assert settings_page.status_code == (200 if who in MANAGES else 403 if who in SEES else 404)
    if who not in SEES:
        return
    page = dashboard.content.decode()
    for button in (
        'data-testid="start-production"',
        'data-testid="emergency-stop"',
        'data-testid="acknowledge"',
        f'action="/sites/{site.pk}/production/"',
    ):
        assert (button in page) is (who in OPERATES), button
    assert ('data-testid="settings-link"' in page) is (who in MANAGES)
    sensor_html = sensor_page.content.decode()
    assert ('data-testid="thresholds-form"' in sensor_html) is (who in MAINTAINS)
    assert ('data-testid="calibrate-form"' in sensor_html) is (who in MAINTAINS)


def _refused(who: str) -> int:
    """A role that sees the site is refused (403); for anyone else the site is not there."""
    return 403 if who in SEES else 404


@pytest.mark.parametrize("who", WHO)
def test_operator_posts(world: dict[str, Any], who: str) -> None:
    site, alert = world["site"], world["alert"]
    client = _client(world["users"][who])

    acknowledge = client.post(f"/sites/alerts/{alert.pk}/acknowledge/")
    production = client.post(
        f"/sites/{site.pk}/production/", {"date": timezone.localdate().isoformat(), "actual": "5"}
    )
    start = client.post(f"/sites/{site.pk}/start/")
    stop = client.post(f"/sites/{site.pk}/stop/")

    alert.refresh_from_db()
    site.refresh_from_db()
    if who in OPERATES:
        assert {r.status_code for r in (acknowledge, production, start, stop)} == {302}
        assert alert.acknowledged_at is not None
        assert site.status == Site.Status.OFFLINE
    else:
        code = _refused(who)
        assert [r.status_code for r in (acknowledge, production, start, stop)] == [code] * 4
        assert alert.acknowledged_at is None
        assert (site.status, site.producing) == (Site.Status.ACTIVE, False)
        assert not site.production.exists()


@pytest.mark.parametrize("who", WHO)
def test_maintenance_posts(world: dict[str, Any], who: str) -> None:
    sensor = world["sensor"]
    client = _client(world["users"][who])

    thresholds = client.post(f"/sites/sensors/{sensor.pk}/thresholds/", {"warning_max": "70"})
    calibrate = client.post(f"/sites/sensors/{sensor.pk}/calibrate/", {"reference_value": "85"})

    sensor.refresh_from_db()
    if who in MAINTAINS:
        assert (thresholds.status_code, calibrate.status_code) == (302, 302)
        assert (sensor.warning_max, sensor.calibration_offset) == (70.0, -5.0)
    else:
        code = _refused(who)
        assert (thresholds.status_code, calibrate.status_code) == (code, code)
        assert (sensor.warning_max, sensor.calibration_offset) == (80.0, 0.0)
        assert not sensor.calibrations.exists()


@pytest.mark.parametrize("who", WHO)
def test_management_posts(world: dict[str, Any], who: str) -> None:
    site, sensor, users = world["site"], world["sensor"], world["users"]
    newcomer = member(Membership.Role.VIEWER, team=site.team)
    key = DeviceKey.objects.create(
        team=site.team, site=site, name="k", prefix="mlmd_k", key_hash="k" * 64
    )
    client = _client(users[who])

    responses = [
        client.post(f"/sites/{site.pk}/settings/", {"name": "Renamed", "status": "active"}),
        client.post(
            f"/sites/{site.pk}/sensors/new/",
            {
                "name": "Flow",
                "sensor_type": "flow",
                "device_id": "flow-1",
                "sampling_interval_s": "60",
            },
        ),
        client.post(f"/sites/{site.pk}/members/", {"user": newcomer.pk, "role": "viewer"}),
        client.post(f"/sites/{site.pk}/members/{users['viewer'].pk}/remove/"),
        client.post(f"/sites/{site.pk}/keys/", {"name": "gateway"}),
        client.post(f"/sites/{site.pk}/keys/{key.pk}/revoke/"),
        client.post(f"/sites/sensors/{sensor.pk}/delete/"),
    ]

    site.refresh_from_db()
    key.refresh_from_db()
    if who in MANAGES:
        assert [r.status_code for r in responses] == [302, 302, 302, 302, 200, 302, 302]
        assert site.name == "Renamed"
        assert key.revoked_at is not None
        assert list(site.sensors.values_list("name", flat=True)) == ["Flow"]
        assert SiteMembership.objects.filter(site=site, user=newcomer).exists()
        assert site.device_keys.count() == 2
    else:
        code = _refused(who)
        assert [r.status_code for r in responses] == [code] * len(responses)
        assert site.name == "Mill 1"
        assert key.revoked_at is None
        assert Sensor.objects.filter(pk=sensor.pk).exists()
        assert not site.sensors.filter(name="Flow").exists()
        assert not SiteMembership.objects.filter(site=site, user=newcomer).exists()
        assert SiteMembership.objects.filter(site=site, user=users["viewer"]).exists()
        assert site.device_keys.count() == 1
    delete = client.post(f"/sites/{site.pk}/delete/")
    assert delete.status_code == (302 if who in MANAGES else _refused(who))
    assert Site.objects.filter(pk=site.pk).exists() is (who not in MANAGES)


@pytest.mark.parametrize(
    ("team_role", "may_create"),
    [("owner", True), ("admin", True), ("editor", True), ("viewer", False)],
)
def test_who_may_create_a_site(team_role: str, may_create: bool) -> None:
    user = member(team_role)
    client = _client(user)

    form_shown = 'action="/sites/new/"' in client.get("/sites/").content.decode()
    response = client.post("/sites/new/", {"name": "New plant", "status": "active"})

    assert form_shown is may_create
    created = Site.objects.filter(team=user.current_team, name="New plant").first()
    if may_create:
        assert response.status_code == 302 and created is not None
        # An editor becomes the new site's admin; owners and admins are already.
        roles = list(SiteMembership.objects.filter(site=created).values_list("role", flat=True))
        assert roles == (["admin"] if team_role == "editor" else [])
    else:
        assert response.status_code == 403 and created is None


def test_dead_letters_only_of_managed_sites(world: dict[str, Any]) -> None:
    site, users = world["site"], world["users"]
    DeadLetter.objects.create(team=site.team, site=site, topic="t", payload="p", reason="Bad JSON")

    seen = {
        who: "Bad JSON" in _client(users[who]).get("/sites/dead-letters/").content.decode()
        for who in WHO
    }

    assert {who for who, shown in seen.items() if shown} == MANAGES


def test_stale_value_shows_stale(world: dict[str, Any]) -> None:
    sensor = world["sensor"]
    Sensor.objects.filter(pk=sensor.pk).update(last_timestamp=timezone.now() - timedelta(hours=1))

    page = _client(world["users"]["viewer"]).get(f"/sites/{world['site'].pk}/").content.decode()

    assert 'data-testid="sensor-state">stale<' in page
