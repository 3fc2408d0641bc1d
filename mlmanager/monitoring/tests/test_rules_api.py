"""The alert rules API: create with validation naming the bad field, the role matrix (a rule on
a site's sensors follows the site's roles, a rule on a model the team's), built-in rules that
only mute, filters and the list's query count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.monitoring.models import AlertRule
from mlmanager.monitoring.services import rules as rule_services
from mlmanager.monitoring.tests.model_log import model_of
from mlmanager.sites.models import Sensor, Site
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of, site_role

pytestmark = pytest.mark.django_db

URL = "/api/v1/alert_rules/"


def raw(sensor: Any) -> dict[str, Any]:
    return {"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}


def body(sensor: Any, **fields: Any) -> dict[str, Any]:
    return {
        "name": "Too hot",
        "series": [raw(sensor)],
        "condition": {"series": 0, "op": "above", "value": 80},
        **fields,
    }


@dataclass
class World:
    owner: Any
    team: Any
    mill: Site
    heat: Sensor
    far: Sensor  # a sensor of another site of the team
    rule: AlertRule


def make_world() -> World:
    owner = member("owner")
    team = owner.current_team
    mill = site_of(team, "Mill 1")
    heat = sensor_of(mill, "Heat")
    far = sensor_of(site_of(team, "Mill 2"), "Far heat")
    rule = rule_services.rule_create(
        caller=caller_of(owner),
        team=team,
        name="Existing",
        series=[raw(heat)],
        condition={"series": 0, "op": "above", "value": 80},
    )
    return World(owner=owner, team=team, mill=mill, heat=heat, far=far, rule=rule)


@pytest.fixture
def world() -> World:
    return make_world()


# --- create -------------------------------------------------------------------------------------


def test_create_fills_in_the_rule_and_what_it_watches(world: World):
    api = api_client_for(world.owner)
    response = api.post(
        URL,
        body(
            world.heat,
            series=[{"kind": "sensor", "sensor": world.heat.pk}],
            severity="critical",
            for_s=120,
            evaluate_every_s=30,
        ),
        format="json",
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["series"] == [
        {"kind": "sensor", "sensor": world.heat.pk, "aggregation": "avg", "period_s": 60}
    ]
    assert data["condition"] == {"series": 0, "op": "above", "value": 80.0}
    assert (data["site"], data["sensors"], data["models"]) == (world.mill.pk, [world.heat.pk], [])
    assert (data["severity"], data["for_s"], data["state"], data["muted"]) == (
        "critical",
        120,
        "ok",
        False,
    )
    assert data["notify"] == [{"kind": "team"}]
    assert data["builtin"] == ""
    assert data["next_evaluation_at"] is not None
    rule = AlertRule.objects.get(pk=data["id"])
    assert list(rule.sensors.values_list("pk", flat=True)) == [world.heat.pk]
    assert AuditEvent.objects.filter(action="alert_rule.created", target_id=rule.pk).exists()


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"condition": {"series": 0, "op": "above"}}, "invalid_rule", "condition.value"),
        (
            {"condition": {"series": 1, "op": "above", "value": 1}},
            "invalid_rule",
            "condition.series",
        ),
        (
            {"condition": {"all": [{"op": "below", "value": 1}, {"op": "inside", "low": 2}]}},
            "invalid_rule",
            "condition.all[1].high",
        ),
        ({"series": []}, "invalid_rule", "series"),
        ({"series": [{"kind": "sensor", "sensor": "x"}]}, "invalid_series", "series[0].sensor"),
        ({"severity": "bad"}, "invalid", "severity"),
        ({"notify": [{"kind": "user", "user": 999999}]}, "invalid_notify", "notify[0].user"),
    ],
)
def test_invalid_rules_are_refused_with_the_field_named(
    world: World, change: dict[str, Any], code: str, field: str
):
    response = api_client_for(world.owner).post(URL, {**body(world.heat), **change}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert field in error["message"]


def test_sensors_of_two_sites_are_refused(world: World):
    response = api_client_for(world.owner).post(
        URL,
        body(world.heat, series=[raw(world.heat), raw(world.far)]),
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "sensors_of_several_sites"
    assert AlertRule.objects.count() == 1


def test_a_rule_on_a_model_follows_the_teams_roles(world: World):
    machine = model_of(world.team)
    rule = {
        "name": "Drift",
        "series": [{"kind": "model", "model": machine.pk, "signal": "drift_psi", "input": "plan"}],
        "condition": {"series": 0, "op": "above", "value": 0.2},
    }
    viewer = member("viewer", world.team)
    assert api_client_for(viewer).post(URL, rule, format="json").status_code == 403
    editor = member("editor", world.team)
    response = api_client_for(editor).post(URL, rule, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["site"], data["models"], data["series"][0]["period_s"]) == (
        None,
        [machine.pk],
        3600,
    )
    assert api_client_for(viewer).get(f"{URL}?model={machine.pk}").json()["count"] == 1
    assert api_client_for(member("owner")).post(URL, rule, format="json").status_code == 404


# --- the role matrix ----------------------------------------------------------------------------

OPERATIONS = ("list", "retrieve", "create", "patch", "mute", "delete")
MATRIX: dict[str, tuple[int, ...]] = {
    #                   list ret  crea patc mute dele
    "team_owner": (1, 200, 201, 200, 200, 204),
    "site_admin": (1, 200, 201, 200, 200, 204),
    "site_technician": (1, 200, 201, 200, 403, 204),
    "site_operator": (1, 200, 403, 403, 200, 403),
    "site_viewer": (1, 200, 403, 403, 403, 403),
    "team_viewer": (0, 404, 404, 404, 404, 404),
    "team_editor": (0, 404, 404, 404, 404, 404),
    "other_team_owner": (0, 404, 404, 404, 404, 404),
}
CASES = [
    pytest.param(persona, operation, expected, id=f"{persona}-{operation}")
    for persona, cells in MATRIX.items()
    for operation, expected in zip(OPERATIONS, cells, strict=True)
]


def persona_user(persona: str, world: World) -> Any:
    if persona == "team_owner":
        return member("owner", world.team)
    if persona == "other_team_owner":
        return member("owner")
    if persona in ("team_viewer", "team_editor"):
        return member(persona.removeprefix("team_"), world.team)
    user = member("viewer", world.team)
    site_role(world.mill, user, persona.removeprefix("site_"))
    return user


@pytest.mark.parametrize(("persona", "operation", "expected"), CASES)
def test_rule_role_matrix(persona: str, operation: str, expected: int):
    world = make_world()
    api = api_client_for(persona_user(persona, world))
    rule_url = f"{URL}{world.rule.pk}/"
    if operation == "list":
        response = api.get(URL)
        assert response.status_code == 200
        assert response.json()["count"] == expected
        return
    if operation == "retrieve":
        response = api.get(rule_url)
    elif operation == "create":
        response = api.post(URL, body(world.heat, name="Mine"), format="json")
    elif operation == "patch":
        response = api.patch(rule_url, {"name": "Renamed"}, format="json")
    elif operation == "mute":
        response = api.post(f"{rule_url}mute/", {}, format="json")
    else:
        response = api.delete(rule_url)
    assert response.status_code == expected, response.content
    if operation == "patch" and expected == 200:
        assert AlertRule.objects.get(pk=world.rule.pk).name == "Renamed"
    if operation == "delete":
        assert AlertRule.objects.filter(pk=world.rule.pk).exists() is (expected != 204)


# --- change, mute, built-in ---------------------------------------------------------------------


def test_patch_revalidates_and_a_new_series_needs_the_right_on_its_site(world: World):
    technician = member("viewer", world.team)
    site_role(world.mill, technician, "technician")
    api = api_client_for(technician)
    url = f"{URL}{world.rule.pk}/"
    response = api.patch(url, {"condition": {"series": 0, "op": "below"}}, format="json")
    assert response.status_code == 400
    assert "condition.value" in response.json()["error"]["message"]
    # The far sensor's site is not theirs: not found.
    assert api.patch(url, {"series": [raw(world.far)]}, format="json").status_code == 404
    owner_api = api_client_for(world.owner)
    response = owner_api.patch(url, {"series": [raw(world.far)]}, format="json")
    assert response.status_code == 200
    assert (response.json()["site"], response.json()["sensors"]) == (
        world.far.site_id,
        [world.far.pk],
    )
    assert api.get(url).status_code == 404  # the rule moved to a site they do not see
    event = AuditEvent.objects.get(action="alert_rule.changed", target_id=world.rule.pk)
    assert set(event.changes) == {"series"}


def test_mute_until_and_unmute(world: World):
    api = api_client_for(world.owner)
    url = f"{URL}{world.rule.pk}/"
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = api.post(f"{url}mute/", {"until": past}, format="json")
    assert response.status_code == 400
    until = timezone.now() + timedelta(hours=2)
    response = api.post(f"{url}mute/", {"until": until.isoformat()}, format="json")
    assert response.status_code == 200
    assert response.json()["muted"] is True
    assert response.json()["muted_until"] is not None
    response = api.post(f"{url}unmute/")
    assert (response.status_code, response.json()["muted"]) == (200, False)
    assert api.post(f"{url}unmute/").status_code == 200  # again: nothing changes
    assert list(
        AuditEvent.objects.filter(target_id=world.rule.pk, action__startswith="alert_rule.mu")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["alert_rule.muted"]
    assert (
        AuditEvent.objects.filter(target_id=world.rule.pk, action="alert_rule.unmuted").count() == 1
    )


def test_built_in_rules_are_only_muted_through_the_api(world: World):
    world.heat.warning_max = 80.0
    world.heat.save()
    (builtin,) = rule_services.sensor_rules_sync(world.heat)
    api = api_client_for(world.owner)
    url = f"{URL}{builtin.pk}/"
    for response in (api.patch(url, {"name": "Mine"}, format="json"), api.delete(url)):
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "builtin_rule"
    assert api.post(f"{url}mute/", {}, format="json").status_code == 200
    assert api.get(f"{URL}?builtin=true").json()["results"][0]["id"] == builtin.pk
    assert [r["id"] for r in api.get(f"{URL}?builtin=false").json()["results"]] == [world.rule.pk]


def test_filters(world: World):
    api = api_client_for(world.owner)
    AlertRule.objects.filter(pk=world.rule.pk).update(state="firing")
    assert api.get(f"{URL}?site={world.mill.pk}").json()["count"] == 1
    assert api.get(f"{URL}?site={world.far.site_id}").json()["count"] == 0
    assert api.get(f"{URL}?state=firing").json()["count"] == 1
    assert api.get(f"{URL}?state=ok").json()["count"] == 0
    for bad in ("state=loud", "site=x", "builtin=yes", "site="):
        response = api.get(f"{URL}?{bad}")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_filter"


def test_the_list_takes_a_constant_number_of_queries(world: World):
    api = api_client_for(world.owner)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(URL).status_code == 200
        return len(captured)

    count()  # the first request also notes the token's use
    few = count()
    for n in range(10):
        rule_services.rule_create(
            caller=caller_of(world.owner),
            team=world.team,
            name=f"Rule {n}",
            series=[raw(world.heat)],
            condition={"series": 0, "op": "above", "value": n},
        )
    assert count() == few == 3  # the token, the count, the page


def test_the_index_lists_alert_rules(world: World):
    response = api_client_for(world.owner).get("/api/v1/")
    assert response.status_code == 200
    assert response.json()["resources"]["alert_rules"] == "http://testserver/api/v1/alert_rules/"
