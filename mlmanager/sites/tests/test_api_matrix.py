"""The per-site role matrix over the API: each kind of caller against each operation, with the
status (or, for lists and the ingest, the count) it gets. Team owners and admins are admins of
every site; a team member reaches only the sites they hold a role on (404 elsewhere, as for
another team's ids); a role that does not allow an operation is refused with 403."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.monitoring.models import Alert
from mlmanager.sites.models import Sensor, Site
from mlmanager.sites.tests.factories import sensor_of, site_of, site_role

pytestmark = pytest.mark.django_db

OPERATIONS = (
    "list",  # how many sites GET /sites/ shows
    "retrieve",
    "status",
    "acknowledge",
    "start_production",
    "emergency_stop",
    "calibrate",
    "threshold_patch",
    "sensor_rename_patch",
    "site_rename_patch",
    "members_post",
    "device_keys_post",
    "production_post",
    "readings_post",  # how many readings were accepted (the others: unknown_sensor)
)

# persona -> one cell per operation, in OPERATIONS' order.
MATRIX: dict[str, tuple[int, ...]] = {
    #              list ret  stat ack  start stop cal  thr  sren siren mem  keys prod read
    "team_owner": (1, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201, 200, 1),
    "team_admin": (1, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201, 200, 1),
    "site_admin": (1, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201, 200, 1),
    "site_operator": (1, 200, 200, 200, 200, 200, 403, 403, 403, 403, 403, 403, 200, 1),
    "site_technician": (1, 200, 200, 403, 403, 403, 200, 200, 403, 403, 403, 403, 403, 1),
    "site_viewer": (1, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 0),
    "no_site_role": (0, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 0),
    "other_team_owner": (0, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 0),
}
CASES = [
    pytest.param(persona, operation, expected, id=f"{persona}-{operation}")
    for persona, cells in MATRIX.items()
    for operation, expected in zip(OPERATIONS, cells, strict=True)
]


@dataclass
class World:
    site: Site
    sensor: Sensor
    alert: Alert
    target_user: Any  # a team member the members POST gives a role


def make_world() -> World:
    owner = member("owner")
    team = owner.current_team
    site = site_of(team, "Mill 1")
    sensor = sensor_of(site, "Temperature", device_id="temp-1")
    Sensor.objects.filter(pk=sensor.pk).update(
        last_timestamp=timezone.now() - timedelta(minutes=1), last_raw_value=20.0, last_value=20.0
    )
    alert = Alert.objects.create(team=team, site=site, sensor=sensor, severity="warning", title="A")
    return World(site=site, sensor=sensor, alert=alert, target_user=member("viewer", team))


def persona_user(persona: str, world: World) -> Any:
    team = world.site.team
    if persona == "team_owner":
        return member("owner", team)
    if persona == "team_admin":
        return member("admin", team)
    if persona == "other_team_owner":
        return member("owner")
    user = member("editor", team)
    if persona.startswith("site_"):
        site_role(world.site, user, persona.removeprefix("site_"))
    return user


def perform(api: Any, operation: str, world: World) -> int:
    site, sensor = world.site.pk, world.sensor.pk
    if operation == "list":
        response = api.get("/api/v1/sites/")
        assert response.status_code == 200
        return int(response.json()["count"])
    if operation == "readings_post":
        moment = (timezone.now() - timedelta(seconds=30)).isoformat()
        response = api.post(
            "/api/v1/readings/",
            {"readings": [{"sensor": sensor, "timestamp": moment, "value": 21.0}]},
            format="json",
        )
        assert response.status_code == 200
        answer = response.json()
        assert [r["code"] for r in answer["rejected"]] == (
            [] if answer["accepted"] else ["unknown_sensor"]
        )
        return int(answer["accepted"])
    requests: dict[str, tuple[str, str, dict[str, Any] | None]] = {
        "retrieve": ("get", f"/api/v1/sites/{site}/", None),
        "status": ("get", f"/api/v1/sites/{site}/status/", None),
        "acknowledge": ("post", f"/api/v1/alerts/{world.alert.pk}/acknowledge/", None),
        "start_production": ("post", f"/api/v1/sites/{site}/start_production/", None),
        "emergency_stop": ("post", f"/api/v1/sites/{site}/emergency_stop/", {"reason": "test"}),
        "calibrate": ("post", f"/api/v1/sensors/{sensor}/calibrate/", {"reference_value": 21}),
        "threshold_patch": ("patch", f"/api/v1/sensors/{sensor}/", {"warning_max": 70}),
        "sensor_rename_patch": ("patch", f"/api/v1/sensors/{sensor}/", {"name": "Renamed"}),
        "site_rename_patch": ("patch", f"/api/v1/sites/{site}/", {"name": "Renamed"}),
        "members_post": (
            "post",
            f"/api/v1/sites/{site}/members/",
            {"user": world.target_user.pk, "role": "operator"},
        ),
        "device_keys_post": ("post", f"/api/v1/sites/{site}/device_keys/", {"name": "gw"}),
        "production_post": (
            "post",
            f"/api/v1/sites/{site}/production/",
            {"date": timezone.localdate().isoformat(), "actual": 10},
        ),
    }
    method, url, body = requests[operation]
    response = getattr(api, method)(url, body, format="json")
    if response.status_code >= 400:
        expected_code = {403: "permission_denied", 404: "not_found"}[response.status_code]
        assert response.json()["error"]["code"] == expected_code
    return int(response.status_code)


@pytest.mark.parametrize(("persona", "operation", "expected"), CASES)
def test_role_matrix(persona: str, operation: str, expected: int) -> None:
    world = make_world()
    api = api_client_for(persona_user(persona, world))
    assert perform(api, operation, world) == expected


def test_refusals_change_nothing() -> None:
    world = make_world()
    viewer_api = api_client_for(persona_user("site_viewer", world))
    for operation in OPERATIONS[3:-1]:
        perform(viewer_api, operation, world)
    world.site.refresh_from_db()
    world.sensor.refresh_from_db()
    world.alert.refresh_from_db()
    assert (world.site.name, world.site.status, world.site.producing) == ("Mill 1", "active", False)
    assert (world.sensor.name, world.sensor.warning_max, world.sensor.calibration_offset) == (
        "Temperature",
        None,
        0.0,
    )
    assert world.alert.acknowledged_at is None
    assert not world.site.production.exists()
    assert not world.site.device_keys.exists()
    assert not world.site.commands.exists()


def test_another_teams_ids_are_404_everywhere() -> None:
    world = make_world()
    api = api_client_for(member("owner"))
    site, sensor = world.site.pk, world.sensor.pk
    key_id = world.site.device_keys.create(
        team=world.site.team, name="k", prefix="mlmd_x", key_hash="0" * 64
    ).pk
    for method, url in [
        ("get", f"/api/v1/sites/{site}/"),
        ("delete", f"/api/v1/sites/{site}/"),
        ("get", f"/api/v1/sites/{site}/members/"),
        ("delete", f"/api/v1/sites/{site}/members/{world.target_user.pk}/"),
        ("get", f"/api/v1/sites/{site}/device_keys/"),
        ("delete", f"/api/v1/sites/{site}/device_keys/{key_id}/"),
        ("get", f"/api/v1/sites/{site}/production/"),
        ("get", f"/api/v1/sensors/{sensor}/"),
        ("delete", f"/api/v1/sensors/{sensor}/"),
        ("get", f"/api/v1/sensors/{sensor}/readings/"),
        ("get", f"/api/v1/sensors/{sensor}/calibrations/"),
        ("post", f"/api/v1/sites/{site}/start_production/"),
    ]:
        response = getattr(api, method)(url)
        assert response.status_code == 404, (method, url)
    created = api.post(
        "/api/v1/sensors/", {"site": site, "name": "Mine", "device_id": "m"}, format="json"
    )
    assert created.status_code == 404
    assert api.get(f"/api/v1/sensors/?site={site}").json()["count"] == 0
    assert api.get(f"/api/v1/alerts/?site={site}").json()["count"] == 0
    assert Site.objects.filter(pk=site).exists()
