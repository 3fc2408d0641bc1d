"""The sites, sensors and alerts API: CRUD, filters and search, the status shape, production,
start_production's 409, the emergency stop, members, and alerts with acknowledge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from mlmanager.accounts.models import Membership
from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.monitoring.models import Alert
from mlmanager.sites.models import Sensor, Site, SiteCommand, SiteMembership
from mlmanager.sites.tests.factories import sensor_of, site_of

pytestmark = pytest.mark.django_db

SITE_FIELDS = {
    "id",
    "team",
    "name",
    "location",
    "latitude",
    "longitude",
    "capacity",
    "capacity_unit",
    "status",
    "description",
    "producing",
    "created_at",
}
SENSOR_FIELDS = {
    "id",
    "site",
    "name",
    "sensor_type",
    "unit",
    "device_id",
    "location",
    "is_active",
    "sampling_interval_s",
    "warning_min",
    "warning_max",
    "critical_min",
    "critical_max",
    "calibration_offset",
    "calibration_multiplier",
    "metadata",
}
ALERT_FIELDS = {
    "id",
    "site",
    "sensor",
    "severity",
    "title",
    "message",
    "created_at",
    "acknowledged",
    "acknowledged_by",
    "acknowledged_at",
}


@pytest.fixture
def owner() -> Any:
    return member("owner")


@pytest.fixture
def team(owner: Any) -> Any:
    return owner.current_team


@pytest.fixture
def api(owner: Any) -> Any:
    return api_client_for(owner)


def test_site_crud(api: Any, team: Any) -> None:
    created = api.post(
        "/api/v1/sites/",
        {
            "name": "North mill",
            "location": "Tampere",
            "latitude": 61.5,
            "longitude": 23.8,
            "capacity": 250,
            "capacity_unit": "t",
            "description": "Pulp line 2",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert set(body) == SITE_FIELDS
    assert body["team"] == team.pk
    assert body["status"] == "active"
    assert body["capacity"] == 250.0
    site_id = body["id"]

    assert api.get(f"/api/v1/sites/{site_id}/").json()["name"] == "North mill"
    duplicate = api.post("/api/v1/sites/", {"name": "North mill"}, format="json")
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "already_exists"

    changed = api.patch(
        f"/api/v1/sites/{site_id}/", {"status": "maintenance", "capacity": 300}, format="json"
    )
    assert changed.status_code == 200
    assert (changed.json()["status"], changed.json()["capacity"]) == ("maintenance", 300.0)
    bad = api.patch(f"/api/v1/sites/{site_id}/", {"status": "sleeping"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid"
    assert AuditEvent.objects.filter(action="site.changed", target_id=site_id).count() == 1

    assert api.delete(f"/api/v1/sites/{site_id}/").status_code == 204
    assert not Site.objects.filter(pk=site_id).exists()
    assert api.get(f"/api/v1/sites/{site_id}/").status_code == 404


def test_a_team_editor_creating_a_site_becomes_its_admin(team: Any) -> None:
    editor = member("editor", team)
    created = api_client_for(editor).post("/api/v1/sites/", {"name": "Depot"}, format="json")
    assert created.status_code == 201
    assert SiteMembership.objects.get(site_id=created.json()["id"], user=editor).role == "admin"
    viewer = member("viewer", team)
    refused = api_client_for(viewer).post("/api/v1/sites/", {"name": "Depot 2"}, format="json")
    assert refused.status_code == 403


def test_site_list_filters_and_search(api: Any, team: Any) -> None:
    site_of(team, "North mill", location="Tampere")
    site_of(team, "South plant", status="maintenance", description="Old boiler")
    site_of(team, "East depot", status="offline")
    site_of(member("owner").current_team, "North mill other team")

    def names(query: str) -> list[str]:
        response = api.get(f"/api/v1/sites/{query}")
        assert response.status_code == 200, response.json()
        return [site["name"] for site in response.json()["results"]]

    assert names("") == ["East depot", "North mill", "South plant"]
    assert names("?status=maintenance") == ["South plant"]
    assert names("?search=tampere") == ["North mill"]
    assert names("?search=boiler") == ["South plant"]
    assert names("?search=north") == ["North mill"]
    assert names("?search=t&status=offline") == ["East depot"]
    assert api.get("/api/v1/sites/?status=sleeping").json()["error"]["code"] == "invalid_filter"
    assert api.get("/api/v1/sites/?limit=1").json()["count"] == 3


def test_status_shape(api: Any, team: Any) -> None:
    site = site_of(team, capacity=200.0)
    now = timezone.now()
    ok = sensor_of(site, "Temperature", warning_max=80, critical_max=90)
    hot = sensor_of(site, "Boiler", warning_max=80, critical_max=90)
    silent = sensor_of(site, "Humidity", sensor_type="humidity")
    sensor_of(site, "Switched off", is_active=False)
    Sensor.objects.filter(pk=ok.pk).update(
        last_timestamp=now, last_value=20.5, last_raw_value=20.5, last_quality="good"
    )
    Sensor.objects.filter(pk=hot.pk).update(
        last_timestamp=now - timedelta(seconds=5),
        last_value=85.0,
        last_raw_value=85.0,
        last_quality="uncertain",
    )
    alert = Alert.objects.create(team=team, site=site, sensor=hot, severity="warning", title="Hot")
    assert (
        api.post(
            f"/api/v1/sites/{site.pk}/production/",
            {"date": timezone.localdate().isoformat(), "actual": 150},
            format="json",
        ).status_code
        == 200
    )

    body = api.get(f"/api/v1/sites/{site.pk}/status/").json()
    assert set(body) == {"site", "latest_readings", "open_alerts", "efficiency", "last_updated"}
    assert body["site"]["id"] == site.pk
    assert set(body["latest_readings"]) == {str(ok.pk), str(hot.pk), str(silent.pk)}
    assert body["latest_readings"][str(ok.pk)] == {
        "value": 20.5,
        "unit": "°C",
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "quality": "good",
        "state": "ok",
    }
    assert body["latest_readings"][str(hot.pk)]["state"] == "warning"
    assert body["latest_readings"][str(hot.pk)]["quality"] == "uncertain"
    assert body["latest_readings"][str(silent.pk)] == {
        "value": None,
        "unit": "%",
        "timestamp": None,
        "quality": "",
        "state": "stale",
    }
    assert [a["id"] for a in body["open_alerts"]] == [alert.pk]
    assert set(body["open_alerts"][0]) == ALERT_FIELDS
    assert body["efficiency"] == 0.75
    assert body["last_updated"] == now.isoformat().replace("+00:00", "Z")


def test_start_production_needs_an_active_site(api: Any, team: Any) -> None:
    site = site_of(team, status="maintenance")
    refused = api.post(f"/api/v1/sites/{site.pk}/start_production/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "site_not_active"
    Site.objects.filter(pk=site.pk).update(status="active")
    started = api.post(f"/api/v1/sites/{site.pk}/start_production/")
    assert started.status_code == 200
    assert started.json()["producing"] is True


@pytest.mark.django_db(transaction=True)
def test_emergency_stop_without_a_broker(settings: Any) -> None:
    settings.MLMANAGER_MQTT_URL = ""
    owner = member("owner")
    site = site_of(owner.current_team, producing=True)
    api = api_client_for(owner)

    response = api.post(
        f"/api/v1/sites/{site.pk}/emergency_stop/", {"reason": "Smoke in hall 2"}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    command = SiteCommand.objects.get()
    assert body["id"] == command.pk
    assert body["command"] == "emergency_stop"
    assert body["topic"] == f"mlmanager/sites/{site.pk}/commands"
    assert body["payload"]["reason"] == "Smoke in hall 2"
    assert body["published_at"] is None
    assert body["error"] == "MLMANAGER_MQTT_URL is not set: no broker to send the command to."
    assert body["sent_by"] == owner.pk
    site.refresh_from_db()
    assert (site.status, site.producing) == ("offline", False)
    alert = Alert.objects.get(site=site)
    assert alert.severity == "emergency"
    assert "Smoke in hall 2" in alert.message
    # The body is optional.
    again = api.post(f"/api/v1/sites/{site.pk}/emergency_stop/")
    assert again.status_code == 200
    assert SiteCommand.objects.count() == 2


def test_production_and_efficiency(api: Any, team: Any) -> None:
    site = site_of(team, capacity=400.0)
    today = timezone.localdate()
    first = api.post(
        f"/api/v1/sites/{site.pk}/production/",
        {"date": today.isoformat(), "actual": 100},
        format="json",
    )
    assert first.status_code == 200
    assert first.json()["efficiency"] == 0.25
    corrected = api.post(
        f"/api/v1/sites/{site.pk}/production/",
        {"date": today.isoformat(), "actual": 300},
        format="json",
    )
    assert corrected.json()["actual"] == 300.0
    api.post(
        f"/api/v1/sites/{site.pk}/production/",
        {"date": (today - timedelta(days=1)).isoformat(), "actual": 200},
        format="json",
    )
    listed = api.get(f"/api/v1/sites/{site.pk}/production/").json()
    assert [(row["date"], row["actual"], row["efficiency"]) for row in listed["results"]] == [
        (today.isoformat(), 300.0, 0.75),
        ((today - timedelta(days=1)).isoformat(), 200.0, 0.5),
    ]
    assert api.get(f"/api/v1/sites/{site.pk}/status/").json()["efficiency"] == 0.75
    negative = api.post(
        f"/api/v1/sites/{site.pk}/production/",
        {"date": today.isoformat(), "actual": -1},
        format="json",
    )
    assert negative.status_code == 400


def test_members(api: Any, team: Any) -> None:
    site = site_of(team)
    editor = member("editor", team)
    outsider = member("owner")

    given = api.post(
        f"/api/v1/sites/{site.pk}/members/", {"user": editor.pk, "role": "viewer"}, format="json"
    )
    assert given.status_code == 200
    assert given.json() == {
        "user": editor.pk,
        "email": editor.email,
        "role": "viewer",
        "created_at": given.json()["created_at"],
    }
    changed = api.post(
        f"/api/v1/sites/{site.pk}/members/",
        {"user": editor.pk, "role": "operator"},
        format="json",
    )
    assert changed.json()["role"] == "operator"
    assert SiteMembership.objects.get(site=site, user=editor).role == "operator"
    listed = api.get(f"/api/v1/sites/{site.pk}/members/").json()["results"]
    assert [(row["user"], row["role"]) for row in listed] == [(editor.pk, "operator")]

    not_in_team = api.post(
        f"/api/v1/sites/{site.pk}/members/", {"user": outsider.pk, "role": "viewer"}, format="json"
    )
    assert not_in_team.status_code == 404
    assert not_in_team.json()["error"]["code"] == "not_a_team_member"
    bad_role = api.post(
        f"/api/v1/sites/{site.pk}/members/", {"user": editor.pk, "role": "owner"}, format="json"
    )
    assert bad_role.status_code == 400

    assert api.delete(f"/api/v1/sites/{site.pk}/members/{editor.pk}/").status_code == 204
    assert not SiteMembership.objects.filter(site=site).exists()
    assert api.delete(f"/api/v1/sites/{site.pk}/members/{editor.pk}/").status_code == 404


def test_sensor_crud_and_filters(api: Any, team: Any) -> None:
    site = site_of(team)
    other_site = site_of(team, "Other")
    created = api.post(
        "/api/v1/sensors/",
        {
            "site": site.pk,
            "name": "Boiler temperature",
            "sensor_type": "temperature",
            "device_id": "boiler-1",
            "warning_max": 80,
            "critical_max": 95,
            "metadata": {"vendor": "Vaisala"},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert set(body) == SENSOR_FIELDS
    assert (body["site"], body["unit"], body["metadata"]) == (site.pk, "°C", {"vendor": "Vaisala"})
    sensor_id = body["id"]
    sensor_of(other_site, "Flow", sensor_type="flow")
    sensor_of(site, "Level", sensor_type="level", is_active=False)

    def names(query: str) -> list[str]:
        response = api.get(f"/api/v1/sensors/{query}")
        assert response.status_code == 200, response.json()
        return sorted(sensor["name"] for sensor in response.json()["results"])

    assert names("") == ["Boiler temperature", "Flow", "Level"]
    assert names(f"?site={site.pk}") == ["Boiler temperature", "Level"]
    assert names("?type=flow") == ["Flow"]
    assert names("?active=false") == ["Level"]
    assert names(f"?active=true&site={site.pk}") == ["Boiler temperature"]
    assert api.get("/api/v1/sensors/?active=yes").status_code == 400

    duplicate = api.post(
        "/api/v1/sensors/",
        {"site": other_site.pk, "name": "Another", "device_id": "boiler-1"},
        format="json",
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "already_exists"
    bands = api.patch(
        f"/api/v1/sensors/{sensor_id}/", {"warning_min": 10, "warning_max": 5}, format="json"
    )
    assert bands.status_code == 400
    assert bands.json()["error"]["code"] == "invalid_band"
    not_a_boolean = api.patch(f"/api/v1/sensors/{sensor_id}/", {"is_active": 0}, format="json")
    assert not_a_boolean.status_code == 400
    zero = api.patch(f"/api/v1/sensors/{sensor_id}/", {"calibration_multiplier": 0}, format="json")
    assert zero.status_code == 400
    renamed = api.patch(f"/api/v1/sensors/{sensor_id}/", {"name": "Boiler"}, format="json")
    assert renamed.json()["name"] == "Boiler"
    assert api.delete(f"/api/v1/sensors/{sensor_id}/").status_code == 204
    assert api.get(f"/api/v1/sensors/{sensor_id}/").status_code == 404


def test_alerts_filters_and_acknowledge(api: Any, owner: Any, team: Any) -> None:
    site = site_of(team)
    other = site_of(team, "Other")
    sensor = sensor_of(site)
    warning = Alert.objects.create(
        team=team, site=site, sensor=sensor, severity="warning", title="Warm"
    )
    critical = Alert.objects.create(team=team, site=site, severity="critical", title="Hot")
    elsewhere = Alert.objects.create(team=team, site=other, severity="warning", title="Else")
    foreign_team = member("owner").current_team
    Alert.objects.create(
        team=foreign_team, site=site_of(foreign_team), severity="warning", title="Theirs"
    )

    def ids(query: str) -> set[int]:
        response = api.get(f"/api/v1/alerts/{query}")
        assert response.status_code == 200, response.json()
        return {alert["id"] for alert in response.json()["results"]}

    assert ids("") == {warning.pk, critical.pk, elsewhere.pk}
    assert ids(f"?site={site.pk}") == {warning.pk, critical.pk}
    assert ids("?severity=warning") == {warning.pk, elsewhere.pk}
    assert ids("?acknowledged=false") == {warning.pk, critical.pk, elsewhere.pk}

    acknowledged = api.post(f"/api/v1/alerts/{warning.pk}/acknowledge/")
    assert acknowledged.status_code == 200
    body = acknowledged.json()
    assert set(body) >= ALERT_FIELDS  # issue 14's alert, within the monitoring app's shape
    assert (body["acknowledged"], body["acknowledged_by"]) == (True, owner.pk)
    assert body["acknowledged_at"] is not None
    again = api.post(f"/api/v1/alerts/{warning.pk}/acknowledge/")
    assert again.json()["acknowledged_at"] == body["acknowledged_at"]
    assert ids("?acknowledged=true") == {warning.pk}
    assert ids(f"?acknowledged=false&site={site.pk}") == {critical.pk}
    assert AuditEvent.objects.filter(action="alert.acknowledged").count() == 1


def test_index_lists_the_resources(api: Any) -> None:
    resources = api.get("/api/v1/").json()["resources"]
    for name in ("sites", "sensors", "alerts", "readings"):
        assert resources[name].endswith(f"/api/v1/{name}/")


def test_a_team_member_without_site_role_sees_no_site(team: Any) -> None:
    site = site_of(team)
    editor = member(Membership.Role.EDITOR, team)
    api = api_client_for(editor)
    assert api.get("/api/v1/sites/").json()["count"] == 0
    assert api.get(f"/api/v1/sites/{site.pk}/").status_code == 404
