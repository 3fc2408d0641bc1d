"""The alerts API (`/api/v1/alerts/`): list with
filters, the alert's shape, acknowledge, assign, comment, mute, unmute, resolve, the timeline,
and the role matrix (an alert of a site follows the site's roles)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.monitoring.models import Alert, AlertEvent, AlertRule, Notification
from mlmanager.monitoring.services import evaluation
from mlmanager.monitoring.services import rules as rule_services
from mlmanager.sites.models import Sensor, Site
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of, site_role

pytestmark = pytest.mark.django_db

URL = "/api/v1/alerts/"


@dataclass
class World:
    owner: Any
    team: Any
    mill: Site
    heat: Sensor
    rule: AlertRule
    alert: Alert


def make_world() -> World:
    owner = member("owner")
    team = owner.current_team
    mill = site_of(team, "Mill 1")
    heat = sensor_of(mill, "Heat")
    rule = rule_services.rule_create(
        caller=caller_of(owner),
        team=team,
        name="Too hot",
        series=[{"kind": "sensor", "sensor": heat.pk, "aggregation": "last", "period_s": 0}],
        condition={"series": 0, "op": "above", "value": 80},
    )
    evaluation.evaluate_sensor_values(team.pk, {heat.pk: [(timezone.now(), 90.0)]})
    alert = Alert.objects.get(rule=rule)
    return World(owner=owner, team=team, mill=mill, heat=heat, rule=rule, alert=alert)


@pytest.fixture
def world() -> World:
    return make_world()


def url_of(world: World, action: str = "") -> str:
    return f"{URL}{world.alert.pk}/" + (f"{action}/" if action else "")


def test_the_alert_shape(world: World):
    response = api_client_for(world.owner).get(url_of(world))
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {
        "id",
        "rule",
        "site",
        "model",
        "sensor",
        "severity",
        "state",
        "title",
        "message",
        "value",
        "acknowledged",
        "acknowledged_by",
        "acknowledged_at",
        "muted",
        "muted_until",
        "assigned_to",
        "started_at",
        "firing_at",
        "resolved_at",
        "resolved_by",
        "comments",
        "created_at",
    }
    assert (data["rule"], data["site"], data["sensor"], data["model"]) == (
        world.rule.pk,
        world.mill.pk,
        world.heat.pk,
        None,
    )
    assert (data["state"], data["severity"], data["value"], data["title"]) == (
        "firing",
        "warning",
        90.0,
        "Too hot",
    )
    assert (data["acknowledged"], data["muted"], data["comments"]) == (False, False, [])
    assert reverse("api:alert", args=[world.alert.pk]) == url_of(world)


def test_acknowledge_once(world: World):
    api = api_client_for(world.owner)
    first = api.post(url_of(world, "acknowledge"))
    assert first.status_code == 200
    assert first.json()["acknowledged"] is True
    assert first.json()["acknowledged_by"] == world.owner.pk
    second = api.post(url_of(world, "acknowledge"))
    assert second.json()["acknowledged_at"] == first.json()["acknowledged_at"]
    assert world.alert.events.filter(kind="acknowledged").count() == 1
    assert AuditEvent.objects.filter(action="alert.acknowledged").count() == 1


def test_assign_to_a_member_who_sees_the_alert(world: World):
    api = api_client_for(world.owner)
    operator = member("viewer", world.team)
    site_role(world.mill, operator, "operator")
    response = api.post(url_of(world, "assign"), {"user": operator.pk}, format="json")
    assert (response.status_code, response.json()["assigned_to"]) == (200, operator.pk)
    for stranger in (member("viewer", world.team), member("owner")):  # no site role; no team
        response = api.post(url_of(world, "assign"), {"user": stranger.pk}, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_assignee"
    response = api.post(url_of(world, "assign"), {"user": None}, format="json")
    assert (response.status_code, response.json()["assigned_to"]) == (200, None)
    assert list(world.alert.events.filter(kind="assigned").values_list("data", flat=True)) == [
        {"user": operator.pk, "email": operator.email},
        {"user": None, "email": None},
    ]


def test_comments(world: World):
    api = api_client_for(world.owner)
    url = url_of(world, "comments")
    response = api.post(url, {"text": "  Checking the fan.  "}, format="json")
    assert response.status_code == 201
    assert (response.json()["text"], response.json()["user"]) == (
        "Checking the fan.",
        world.owner.pk,
    )
    for bad in ("", "   ", "x" * 2001, "a\x00b", 5):
        assert api.post(url, {"text": bad}, format="json").status_code == 400
    listed = api.get(url).json()
    assert [c["text"] for c in listed["results"]] == ["Checking the fan."]
    detail = api.get(url_of(world)).json()["comments"]
    assert [(c["text"], c["user"]) for c in detail] == [("Checking the fan.", world.owner.pk)]
    assert api.get(URL).json()["results"][0]["comments"] == detail


def test_mute_unmute_and_the_mute_filter(world: World):
    api = api_client_for(world.owner)
    past = (timezone.now() - timedelta(seconds=5)).isoformat()
    assert api.post(url_of(world, "mute"), {"until": past}, format="json").status_code == 400
    response = api.post(url_of(world, "mute"), {}, format="json")
    assert (response.status_code, response.json()["muted"]) == (200, True)
    assert api.get(f"{URL}?muted=true").json()["count"] == 1
    assert api.get(f"{URL}?muted=false").json()["count"] == 0
    response = api.post(url_of(world, "unmute"))
    assert (response.status_code, response.json()["muted"]) == (200, False)
    assert api.get(f"{URL}?muted=false").json()["count"] == 1


def test_a_muted_alert_tells_nobody_it_resolved(world: World):
    api = api_client_for(world.owner)
    api.post(url_of(world, "mute"), {}, format="json")
    told = Notification.objects.count()
    evaluation.evaluate_sensor_values(world.team.pk, {world.heat.pk: [(timezone.now(), 50.0)]})
    world.alert.refresh_from_db()
    assert world.alert.state == "resolved"
    assert Notification.objects.count() == told
    assert world.alert.events.filter(kind="resolved").exists()


def test_resolve_by_hand_sets_the_rule_back_to_ok(world: World):
    api = api_client_for(world.owner)
    response = api.post(url_of(world, "resolve"))
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["resolved_by"]) == (
        "resolved",
        world.owner.pk,
    )
    world.rule.refresh_from_db()
    assert world.rule.state == "ok"
    # Still too hot at the next reading: a new alert.
    evaluation.evaluate_sensor_values(world.team.pk, {world.heat.pk: [(timezone.now(), 91.0)]})
    assert Alert.objects.filter(rule=world.rule).count() == 2
    assert Alert.objects.filter(rule=world.rule).open().get().pk != world.alert.pk
    assert api.post(url_of(world, "resolve")).status_code == 200  # again: nothing changes
    assert world.alert.events.filter(kind="resolved").count() == 1


def test_the_timeline(world: World):
    api = api_client_for(world.owner)
    api.post(url_of(world, "acknowledge"))
    api.post(url_of(world, "comments"), {"text": "On it"}, format="json")
    api.post(url_of(world, "mute"), {}, format="json")
    api.post(url_of(world, "resolve"))
    events = api.get(url_of(world, "events")).json()["results"]
    assert [event["kind"] for event in events] == [
        "firing",
        "notified",
        "acknowledged",
        "commented",
        "muted",
        "resolved",
    ]
    assert events[3]["text"] == "On it"
    assert events[2]["email"] == world.owner.email


def test_filters(world: World):
    api = api_client_for(world.owner)
    assert api.get(f"{URL}?state=firing&severity=warning").json()["count"] == 1
    assert api.get(f"{URL}?state=resolved").json()["count"] == 0
    assert api.get(f"{URL}?severity=critical").json()["count"] == 0
    assert api.get(f"{URL}?site={world.mill.pk}&rule={world.rule.pk}").json()["count"] == 1
    assert api.get(f"{URL}?rule={world.rule.pk + 1}").json()["count"] == 0
    assert api.get(f"{URL}?acknowledged=false").json()["count"] == 1
    assert api.get(f"{URL}?model=1").json()["count"] == 0
    for bad in ("state=ok", "severity=loud", "acknowledged=1", "rule=0"):
        assert api.get(f"{URL}?{bad}").status_code == 400


def test_the_list_takes_a_constant_number_of_queries(world: World):
    api = api_client_for(world.owner)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(URL).status_code == 200
        return len(captured)

    count()  # the first request also notes the token's use
    few = count()
    for n in range(5):
        Alert.objects.create(
            team=world.team, site=world.mill, severity="critical", title=f"Stop {n}"
        )
    assert count() == few == 4  # the token, the count, the page, its comments


# --- the role matrix ----------------------------------------------------------------------------

OPERATIONS = ("list", "retrieve", "events", "acknowledge", "comment", "mute", "resolve")
MATRIX: dict[str, tuple[int, ...]] = {
    #                   list ret  evts ack  comm mute reso
    "team_owner": (1, 200, 200, 200, 201, 200, 200),
    "site_admin": (1, 200, 200, 200, 201, 200, 200),
    "site_operator": (1, 200, 200, 200, 201, 200, 200),
    "site_technician": (1, 200, 200, 403, 403, 403, 403),
    "site_viewer": (1, 200, 200, 403, 403, 403, 403),
    "team_editor": (0, 404, 404, 404, 404, 404, 404),
    "other_team_owner": (0, 404, 404, 404, 404, 404, 404),
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
    if persona == "team_editor":
        return member("editor", world.team)
    user = member("viewer", world.team)
    site_role(world.mill, user, persona.removeprefix("site_"))
    return user


@pytest.mark.parametrize(("persona", "operation", "expected"), CASES)
def test_alert_role_matrix(persona: str, operation: str, expected: int):
    world = make_world()
    api = api_client_for(persona_user(persona, world))
    if operation == "list":
        response = api.get(URL)
        assert response.status_code == 200
        assert response.json()["count"] == expected
        return
    if operation == "retrieve":
        response = api.get(url_of(world))
    elif operation == "events":
        response = api.get(url_of(world, "events"))
    elif operation == "comment":
        response = api.post(url_of(world, "comments"), {"text": "Hi"}, format="json")
    elif operation == "mute":
        response = api.post(url_of(world, "mute"), {}, format="json")
    else:
        response = api.post(url_of(world, operation))
    assert response.status_code == expected, response.content
    changed = AlertEvent.objects.filter(
        alert=world.alert, kind__in=["acknowledged", "commented", "muted", "resolved"]
    ).exists()
    assert changed is (expected in (200, 201) and operation not in ("retrieve", "events"))


def test_an_alert_of_no_site_follows_the_teams_roles(world: World):
    alert = Alert.objects.create(team=world.team, severity="critical", title="Model drift")
    viewer, editor = member("viewer", world.team), member("editor", world.team)
    assert api_client_for(viewer).get(f"{URL}{alert.pk}/").status_code == 200
    assert api_client_for(viewer).post(f"{URL}{alert.pk}/acknowledge/").status_code == 403
    assert api_client_for(editor).post(f"{URL}{alert.pk}/acknowledge/").status_code == 200
