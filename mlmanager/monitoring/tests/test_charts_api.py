"""The charts and dashboards API: CRUD with the site derived from the series, who may see and
change what, the data of a chart over a range with its rules' bands and alerts, and dashboards'
layouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.monitoring.models import Alert, AlertRule, Chart, Dashboard
from mlmanager.monitoring.tests.model_log import log_predictions, model_of, training_rows
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of, site_role

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
CHART_FIELDS = {
    "id",
    "team",
    "name",
    "description",
    "series",
    "site",
    "range_s",
    "created_by",
    "created_at",
    "updated_at",
}
DASHBOARD_FIELDS = {
    "id",
    "team",
    "name",
    "description",
    "site",
    "layout",
    "created_by",
    "created_at",
    "updated_at",
}


@pytest.fixture
def world(owner: Any) -> dict[str, Any]:
    team = owner.memberships.get().team
    mill = site_of(team, "Mill 1")
    other_mill = site_of(team, "Mill 2")
    return {
        "owner": owner,
        "team": team,
        "mill": mill,
        "other_mill": other_mill,
        "heat": sensor_of(mill, "Heat"),
        "pressure": sensor_of(mill, "Pressure", sensor_type="pressure"),
        "far": sensor_of(other_mill, "Far heat"),
    }


def sensor_series(sensor: Any, **spec: Any) -> dict[str, Any]:
    return {"kind": "sensor", "sensor": sensor.pk, **spec}


def create_chart(api: APIClient, name: str, series: list[dict[str, Any]], **body: Any) -> Any:
    return api.post(reverse("api:charts"), {"name": name, "series": series, **body}, format="json")


def test_create_read_update_delete_a_chart(api: APIClient, world: dict[str, Any]) -> None:
    answer = create_chart(api, "Heat", [sensor_series(world["heat"])], range_s=3600)
    assert answer.status_code == 201, answer.json()
    chart = answer.json()
    assert set(chart) == CHART_FIELDS
    assert chart["site"] == world["mill"].pk
    assert chart["series"] == [
        {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "avg", "period_s": 60}
    ]
    assert chart["created_by"] == world["owner"].pk
    url = reverse("api:chart", args=[chart["id"]])
    assert api.get(url).json() == chart
    changed = api.patch(
        url,
        {"name": "Heat and pressure", "series": [sensor_series(world["pressure"], period_s=0)]},
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["name"] == "Heat and pressure"
    assert changed.json()["series"][0]["aggregation"] == "last"
    # a chart of models only has no site
    machine = model_of(world["team"])
    moved = api.patch(
        url, {"series": [{"kind": "model", "model": machine.pk, "signal": "volume"}]}, format="json"
    )
    assert moved.json()["site"] is None
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert list(
        AuditEvent.objects.filter(action__startswith="chart.")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["chart.created", "chart.changed", "chart.changed", "chart.deleted"]


def test_list_is_paginated_and_filtered_by_site(api: APIClient, world: dict[str, Any]) -> None:
    create_chart(api, "B heat", [sensor_series(world["heat"])])
    create_chart(api, "A far", [sensor_series(world["far"])])
    page = api.get(reverse("api:charts")).json()
    assert page["count"] == 2
    assert [chart["name"] for chart in page["results"]] == ["A far", "B heat"]
    mill = api.get(reverse("api:charts"), {"site": world["mill"].pk}).json()
    assert [chart["name"] for chart in mill["results"]] == ["B heat"]
    assert api.get(reverse("api:charts"), {"site": "x"}).status_code == 400
    assert api.get(reverse("api:charts"), {"search": "far"}).json()["count"] == 1


def test_bad_series_are_400_naming_the_field(api: APIClient, world: dict[str, Any]) -> None:
    for series, field in [
        ([], "series"),
        (
            [{"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "median"}],
            "series[0].aggregation",
        ),
    ]:
        answer = create_chart(api, "Bad", series)
        assert answer.status_code == 400
        assert list(answer.json()["error"]["details"]) == [field]


def test_two_sites_in_one_chart_are_400(api: APIClient, world: dict[str, Any]) -> None:
    answer = create_chart(api, "Both", [sensor_series(world["heat"]), sensor_series(world["far"])])
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "sensors_of_several_sites"
    assert not Chart.objects.exists()


def test_a_name_is_taken_once_per_team(api: APIClient, world: dict[str, Any]) -> None:
    assert create_chart(api, "Heat", [sensor_series(world["heat"])]).status_code == 201
    again = create_chart(api, "Heat", [sensor_series(world["pressure"])])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_exists"


def test_other_teams_ids_are_404(api: APIClient, world: dict[str, Any]) -> None:
    stranger = member("owner")
    theirs_api = api_client_for(stranger)
    their_team = stranger.memberships.get().team
    their_sensor = sensor_of(site_of(their_team, "Their mill"), "Their heat")
    theirs = create_chart(theirs_api, "Theirs", [sensor_series(their_sensor)]).json()
    their_dashboard = theirs_api.post(
        reverse("api:dashboards"),
        {"name": "Theirs", "layout": [{"chart": theirs["id"]}]},
        format="json",
    ).json()
    for url in (
        reverse("api:chart", args=[theirs["id"]]),
        reverse("api:chart-data", args=[theirs["id"]]),
        reverse("api:dashboard", args=[their_dashboard["id"]]),
    ):
        assert api.get(url).status_code == 404
    assert (
        api.patch(
            reverse("api:chart", args=[theirs["id"]]), {"name": "x"}, format="json"
        ).status_code
        == 404
    )
    assert api.delete(reverse("api:dashboard", args=[their_dashboard["id"]])).status_code == 404
    # their sensor in my chart, their chart on my dashboard
    assert create_chart(api, "Mine", [sensor_series(their_sensor)]).status_code == 404
    answer = api.post(
        reverse("api:dashboards"),
        {"name": "Mine", "layout": [{"chart": theirs["id"]}]},
        format="json",
    )
    assert answer.status_code == 404
    assert list(answer.json()["error"]["details"]) == ["layout[0].chart"]
    assert api.get(reverse("api:charts")).json()["count"] == 0


def test_a_site_the_caller_cannot_see(api: APIClient, world: dict[str, Any]) -> None:
    chart = create_chart(api, "Far", [sensor_series(world["far"])]).json()
    # an editor of the team with a role on Mill 1 only
    editor = member("editor", team=world["team"])
    site_role(world["mill"], editor, "technician")
    editor_api = api_client_for(editor)
    assert editor_api.get(reverse("api:chart", args=[chart["id"]])).status_code == 404
    assert editor_api.get(reverse("api:chart-data", args=[chart["id"]])).status_code == 404
    assert editor_api.get(reverse("api:charts")).json()["count"] == 0
    # nor may they draw its sensor
    answer = create_chart(editor_api, "Far mine", [sensor_series(world["far"])])
    assert answer.status_code == 404
    assert list(answer.json()["error"]["details"]) == ["series[0].sensor"]
    # their own site: a technician maintains it, so may make its charts
    assert create_chart(editor_api, "Near", [sensor_series(world["heat"])]).status_code == 201


def test_site_viewers_see_charts_and_may_not_change_them(
    api: APIClient, world: dict[str, Any]
) -> None:
    chart = create_chart(api, "Heat", [sensor_series(world["heat"])]).json()
    viewer = member("viewer", team=world["team"])
    site_role(world["mill"], viewer, "viewer")
    viewer_api = api_client_for(viewer)
    assert viewer_api.get(reverse("api:chart", args=[chart["id"]])).status_code == 200
    url = reverse("api:chart", args=[chart["id"]])
    assert viewer_api.patch(url, {"name": "Mine"}, format="json").status_code == 403
    assert viewer_api.delete(url).status_code == 403
    assert create_chart(viewer_api, "New", [sensor_series(world["heat"])]).status_code == 403


# --- data ---------------------------------------------------------------------------------------


def send(owner: Any, sensor: Any, points: list[tuple[datetime, float]]) -> None:
    readings_ingest(
        caller=caller_of(owner),
        readings=[
            {"sensor": sensor.pk, "timestamp": stamp.isoformat(), "value": value}
            for stamp, value in points
        ],
    )


def test_chart_data_with_bands_and_alerts(api: APIClient, world: dict[str, Any]) -> None:
    send(world["owner"], world["heat"], [(T0 + timedelta(minutes=m), 10.0 * m) for m in range(5)])
    send(world["owner"], world["pressure"], [(T0 + timedelta(seconds=s), 1.0) for s in (0, 30, 90)])
    chart = create_chart(
        api,
        "Mill",
        [
            sensor_series(world["heat"], aggregation="max", period_s=120),
            sensor_series(world["pressure"], aggregation="count"),
        ],
    ).json()
    team = world["team"]
    rule = AlertRule.objects.create(
        team=team,
        name="Too hot",
        site=world["mill"],
        series=[
            {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "last", "period_s": 0}
        ],
        condition={"series": 0, "op": "above", "value": 25.0},
        severity="critical",
    )
    rule.sensors.set([world["heat"]])
    combined = AlertRule.objects.create(
        team=team,
        name="Heat band and pressure silence",
        site=world["mill"],
        series=[
            {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "avg", "period_s": 60},
            {
                "kind": "sensor",
                "sensor": world["pressure"].pk,
                "aggregation": "last",
                "period_s": 0,
            },
        ],
        condition={
            "any": [
                {"series": 0, "op": "outside", "low": 5.0, "high": 35.0},
                {"series": 1, "op": "no_data", "value": 600},
            ]
        },
    )
    combined.sensors.set([world["heat"], world["pressure"]])
    elsewhere = AlertRule.objects.create(
        team=team,
        name="Far",
        site=world["other_mill"],
        series=[
            {"kind": "sensor", "sensor": world["far"].pk, "aggregation": "last", "period_s": 0}
        ],
        condition={"series": 0, "op": "above", "value": 1.0},
    )
    elsewhere.sensors.set([world["far"]])
    inside = Alert.objects.create(
        team=team,
        rule=rule,
        site=world["mill"],
        severity="critical",
        title="Too hot",
        state="resolved",
        started_at=T0 + timedelta(minutes=3),
        resolved_at=T0 + timedelta(minutes=4),
    )
    Alert.objects.create(  # resolved before the range
        team=team,
        rule=combined,
        site=world["mill"],
        severity="warning",
        title="Old",
        state="resolved",
        started_at=T0 - timedelta(hours=3),
        resolved_at=T0 - timedelta(hours=2),
    )
    still_open = Alert.objects.create(
        team=team,
        rule=combined,
        site=world["mill"],
        severity="warning",
        title="Silent",
        state="firing",
        started_at=T0 - timedelta(hours=1),
    )
    Alert.objects.create(
        team=team,
        rule=elsewhere,
        site=world["other_mill"],
        severity="warning",
        title="Far",
        state="firing",
        started_at=T0,
    )
    answer = api.get(
        reverse("api:chart-data", args=[chart["id"]]),
        {"start": T0.isoformat(), "end": (T0 + timedelta(minutes=5)).isoformat()},
    )
    assert answer.status_code == 200, answer.json()
    data = answer.json()
    assert data["chart"] == chart["id"]
    assert data["start"] == "2025-03-03T10:00:00Z" and data["end"] == "2025-03-03T10:05:00Z"
    heat, pressure = data["series"]
    assert heat["label"] == "Heat · max / 2 min"
    assert heat["spec"] == chart["series"][0]
    assert heat["points"] == [
        ["2025-03-03T10:00:00Z", 10.0],
        ["2025-03-03T10:02:00Z", 30.0],
        ["2025-03-03T10:04:00Z", 40.0],
    ]
    assert pressure["points"][:3] == [
        ["2025-03-03T10:00:00Z", 2.0],
        ["2025-03-03T10:01:00Z", 1.0],
        ["2025-03-03T10:02:00Z", 0.0],
    ]
    # bands of the heat series only (a count of pressure readings is not their scale; a
    # no_data condition is no band)
    assert data["bands"] == [
        {
            "rule": combined.pk,
            "name": "Heat band and pressure silence",
            "severity": "warning",
            "series": 0,
            "op": "outside",
            "low": 5.0,
            "high": 35.0,
        },
        {
            "rule": rule.pk,
            "name": "Too hot",
            "severity": "critical",
            "series": 0,
            "op": "above",
            "value": 25.0,
        },
    ]
    assert [alert["id"] for alert in data["alerts"]] == [inside.pk, still_open.pk]
    assert set(data["alerts"][0]) == {
        "id",
        "rule",
        "started_at",
        "resolved_at",
        "severity",
        "state",
        "title",
    }
    assert data["alerts"][0]["resolved_at"] == "2025-03-03T10:04:00Z"


def test_chart_data_of_a_model_and_default_range(api: APIClient, world: dict[str, Any]) -> None:
    machine = model_of(world["team"])
    chart = create_chart(
        api,
        "Drift",
        [{"kind": "model", "model": machine.pk, "signal": "drift_psi", "input": "temperature"}],
    ).json()
    log_predictions(machine, training_rows(100, shift=25.0), start=T0, step=timedelta(seconds=30))
    answer = api.get(
        reverse("api:chart-data", args=[chart["id"]]),
        {"start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat()},
    ).json()
    ((stamp, psi),) = answer["series"][0]["points"]
    assert stamp == "2025-03-03T10:00:00Z" and psi > 0.2
    assert answer["series"][0]["label"] == "Failure model · drift_psi (temperature) / 1 h"
    # no range: the chart's own range before now, one point per hour
    default = api.get(reverse("api:chart-data", args=[chart["id"]])).json()
    assert len(default["series"][0]["points"]) in (24, 25)


def test_chart_data_refuses_a_bad_range(api: APIClient, world: dict[str, Any]) -> None:
    chart = create_chart(api, "Heat", [sensor_series(world["heat"])]).json()
    url = reverse("api:chart-data", args=[chart["id"]])
    for query, field in [
        ({"start": "yesterday"}, "start"),
        ({"start": T0.isoformat(), "end": T0.isoformat()}, "start"),
        ({"end": ""}, "end"),
        ({"max_points": 5}, "max_points"),
    ]:
        answer = api.get(url, query)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_filter"
        assert list(answer.json()["error"]["details"]) == [field]


# --- dashboards ---------------------------------------------------------------------------------


def test_dashboards_crud_and_layout(api: APIClient, world: dict[str, Any]) -> None:
    heat = create_chart(api, "Heat", [sensor_series(world["heat"])]).json()
    far = create_chart(api, "Far", [sensor_series(world["far"])]).json()
    machine = model_of(world["team"])
    volume = create_chart(
        api, "Volume", [{"kind": "model", "model": machine.pk, "signal": "volume"}]
    ).json()
    answer = api.post(
        reverse("api:dashboards"),
        {
            "name": "Mill 1",
            "site": world["mill"].pk,
            "layout": [{"chart": heat["id"]}, {"chart": volume["id"], "x": 6, "w": 6, "h": 3}],
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    dashboard = answer.json()
    assert set(dashboard) == DASHBOARD_FIELDS
    assert dashboard["layout"] == [
        {"chart": heat["id"], "x": 0, "y": 0, "w": 6, "h": 4},
        {"chart": volume["id"], "x": 6, "y": 0, "w": 6, "h": 3},
    ]
    url = reverse("api:dashboard", args=[dashboard["id"]])
    # a chart of another site on a site's dashboard: 400
    answer = api.patch(url, {"layout": [{"chart": far["id"]}]}, format="json")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "chart_of_another_site"
    # a team dashboard holds any
    answer = api.patch(
        url,
        {"site": None, "layout": [{"chart": far["id"]}, {"chart": heat["id"], "y": 4}]},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["site"] is None
    for layout, field in [
        ([{"chart": heat["id"], "x": 8, "w": 6}], "layout[0].w"),
        ([{"chart": heat["id"], "x": -1}], "layout[0].x"),
        ([{"chart": heat["id"]}, {"chart": heat["id"]}], "layout[1].chart"),
        ([{"chart": heat["id"], "colour": "red"}], "layout[0]"),
        ("grid", "layout"),
    ]:
        answer = api.patch(url, {"layout": layout}, format="json")
        assert answer.status_code == 400, layout
        assert list(answer.json()["error"]["details"]) == [field]
    # deleting a chart takes it off the dashboards
    assert api.delete(reverse("api:chart", args=[far["id"]])).status_code == 204
    assert api.get(url).json()["layout"] == [{"chart": heat["id"], "x": 0, "y": 4, "w": 6, "h": 4}]
    listed = api.get(reverse("api:dashboards"), {"site": world["mill"].pk}).json()
    assert listed["count"] == 0
    assert api.get(reverse("api:dashboards")).json()["count"] == 1
    assert api.delete(url).status_code == 204
    assert not Dashboard.objects.exists()
    assert Chart.objects.filter(pk=heat["id"]).exists()


def test_a_sites_dashboard_is_hidden_from_who_cannot_see_the_site(
    api: APIClient, world: dict[str, Any]
) -> None:
    dashboard = api.post(
        reverse("api:dashboards"), {"name": "Far", "site": world["other_mill"].pk}, format="json"
    ).json()
    assert "id" in dashboard, dashboard
    editor = member("editor", team=world["team"])
    site_role(world["mill"], editor, "admin")
    editor_api = api_client_for(editor)
    assert editor_api.get(reverse("api:dashboard", args=[dashboard["id"]])).status_code == 404
    assert editor_api.get(reverse("api:dashboards")).json()["count"] == 0
    answer = editor_api.post(
        reverse("api:dashboards"), {"name": "Mine", "site": world["other_mill"].pk}, format="json"
    )
    assert answer.status_code == 404


def test_moving_a_chart_off_its_sites_dashboard_is_refused(
    api: APIClient, world: dict[str, Any]
) -> None:
    heat = create_chart(api, "Heat", [sensor_series(world["heat"])]).json()
    api.post(
        reverse("api:dashboards"),
        {"name": "Mill 1", "site": world["mill"].pk, "layout": [{"chart": heat["id"]}]},
        format="json",
    )
    answer = api.patch(
        reverse("api:chart", args=[heat["id"]]),
        {"series": [sensor_series(world["far"])]},
        format="json",
    )
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "chart_on_site_dashboard"


def test_the_index_lists_charts_and_dashboards(api: APIClient) -> None:
    index = api.get("/api/v1/").json()
    assert "charts" in str(index) and "dashboards" in str(index)
