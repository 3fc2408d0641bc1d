"""The monitoring pages: each renders for its owner and is 404 for another team, forbidden
actions are 403 (a site viewer sees no acknowledge button and may not post one), forms turn
bad input into a message (never a 500), and each action does what it says."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from mlmanager.core.tests.factories import member
from mlmanager.machines.models import Machine
from mlmanager.monitoring.models import (
    Alert,
    AlertEvent,
    AlertRule,
    Chart,
    Dashboard,
    Notification,
    NotificationPreference,
    Report,
)
from mlmanager.monitoring.services.alerts import alert_raise
from mlmanager.monitoring.services.charts import chart_create, dashboard_create
from mlmanager.monitoring.services.reports import report_create
from mlmanager.monitoring.services.rules import rule_create
from mlmanager.monitoring.tests.model_log import log_predictions, model_of, training_rows
from mlmanager.sites.models import Sensor, Site
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of, site_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(owner: Any) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def site(owner: Any) -> Site:
    return site_of(owner.current_team, "Mill 1")


@pytest.fixture
def sensor(site: Site) -> Sensor:
    return sensor_of(site, "Kiln")


@pytest.fixture
def chart(owner: Any, sensor: Sensor) -> Chart:
    return chart_create(
        caller=caller_of(owner),
        team=owner.current_team,
        name="Kiln heat",
        series=[{"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}],
    )


@pytest.fixture
def dashboard(owner: Any, chart: Chart, site: Site) -> Dashboard:
    return dashboard_create(
        caller=caller_of(owner),
        team=owner.current_team,
        name="Mill board",
        site=site.pk,
        layout=[{"chart": chart.pk, "x": 0, "y": 0, "w": 6, "h": 1}],
    )


@pytest.fixture
def rule(owner: Any, sensor: Sensor) -> AlertRule:
    return rule_create(
        caller=caller_of(owner),
        team=owner.current_team,
        name="Kiln too hot",
        series=[{"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}],
        condition={"series": 0, "op": "above", "value": 80.0},
        severity="critical",
    )


@pytest.fixture
def alert(owner: Any, site: Site, rule: AlertRule) -> Alert:
    raised = alert_raise(
        site_id=site.pk, team_id=owner.current_team.pk, severity="critical", title="Kiln 91 °C"
    )
    Alert.objects.filter(pk=raised.pk).update(rule=rule)
    raised.refresh_from_db()
    return raised


@pytest.fixture
def report(owner: Any, chart: Chart) -> Report:
    return report_create(
        caller=caller_of(owner),
        name="Daily kiln",
        chart_id=chart.pk,
        time_of_day=timezone.now().time().replace(microsecond=0),
    )


@pytest.fixture
def machine(owner: Any) -> Machine:
    machine = model_of(owner.current_team)
    log_predictions(
        machine,
        training_rows(60, shift=25.0),
        start=timezone.now() - timedelta(hours=2),
        step=timedelta(seconds=30),
    )
    return machine


def _messages(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _send(owner: Any, sensor: Sensor, *values: float) -> None:
    start = timezone.now() - timedelta(seconds=len(values))
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


PAGES: dict[str, Callable[[dict[str, Any]], str]] = {
    "alerts": lambda o: "/monitoring/alerts/",
    "alert": lambda o: f"/monitoring/alerts/{o['alert'].pk}/",
    "rules": lambda o: "/monitoring/rules/",
    "rule": lambda o: f"/monitoring/rules/{o['rule'].pk}/",
    "rule_new": lambda o: "/monitoring/rules/new/",
    "charts": lambda o: "/monitoring/charts/",
    "chart": lambda o: f"/monitoring/charts/{o['chart'].pk}/",
    "chart_edit": lambda o: f"/monitoring/charts/{o['chart'].pk}/edit/",
    "chart_panel": lambda o: f"/monitoring/charts/{o['chart'].pk}/panel/?w=6&h=1&refresh=10s",
    "chart_new": lambda o: "/monitoring/charts/new/",
    "dashboards": lambda o: "/monitoring/dashboards/",
    "dashboard": lambda o: f"/monitoring/dashboards/{o['dashboard'].pk}/",
    "dashboard_edit": lambda o: f"/monitoring/dashboards/{o['dashboard'].pk}/edit/",
    "dashboard_new": lambda o: "/monitoring/dashboards/new/",
    "model": lambda o: f"/monitoring/models/{o['machine'].pk}/",
    "notifications": lambda o: "/monitoring/notifications/",
    "preferences": lambda o: "/monitoring/notifications/preferences/",
    "bell": lambda o: "/monitoring/notifications/bell/",
    "reports": lambda o: "/monitoring/reports/",
    "report": lambda o: f"/monitoring/reports/{o['report'].pk}/",
    "report_new": lambda o: "/monitoring/reports/new/",
}
OWN_OBJECTS = {
    "alert": "alert",
    "rule": "rule",
    "chart": "chart",
    "chart_edit": "chart",
    "chart_panel": "chart",
    "dashboard": "dashboard",
    "dashboard_edit": "dashboard",
    "model": "machine",
    "report": "report",
}


@pytest.fixture
def objects(
    alert: Alert, rule: AlertRule, chart: Chart, dashboard: Dashboard, report: Report, machine: Any
) -> dict[str, Any]:
    return {
        "alert": alert,
        "rule": rule,
        "chart": chart,
        "dashboard": dashboard,
        "report": report,
        "machine": machine,
    }


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_renders_for_its_owner(
    browser: Client, objects: dict[str, Any], name: str
) -> None:
    response = browser.get(PAGES[name](objects))

    assert response.status_code == 200, response.content[:500]


@pytest.mark.parametrize("name", list(OWN_OBJECTS))
def test_another_teams_objects_are_not_found(objects: dict[str, Any], name: str) -> None:
    stranger = Client()
    stranger.force_login(member("owner"))

    response = stranger.get(PAGES[name](objects))

    assert response.status_code == 404


@pytest.mark.parametrize(
    "action",
    [
        "alerts/{alert}/acknowledge/",
        "alerts/{alert}/mute/",
        "alerts/{alert}/resolve/",
        "alerts/{alert}/comment/",
        "charts/{chart}/delete/",
        "rules/{rule}/mute/",
        "dashboards/{dashboard}/delete/",
    ],
)
def test_another_team_may_not_post_either(objects: dict[str, Any], action: str) -> None:
    stranger = Client()
    stranger.force_login(member("owner"))
    url = "/monitoring/" + action.format(**{key: obj.pk for key, obj in objects.items()})

    assert stranger.post(url, {"until": "1h", "text": "hi"}).status_code == 404


def test_a_site_viewer_sees_the_alert_without_its_buttons_and_may_not_act(
    owner: Any, site: Site, alert: Alert, rule: AlertRule
) -> None:
    viewer = member("viewer", team=owner.current_team)
    site_role(site, viewer, "viewer")
    client = Client()
    client.force_login(viewer)

    page = client.get(f"/monitoring/alerts/{alert.pk}/").content.decode()

    assert 'data-testid="alert-title">Kiln 91 °C<' in page
    assert 'data-testid="acknowledge"' not in page
    assert 'data-testid="mute"' not in page
    assert 'data-testid="comment-form"' not in page
    for action in ("acknowledge", "mute", "resolve", "comment", "assign"):
        response = client.post(
            f"/monitoring/alerts/{alert.pk}/{action}/", {"until": "1h", "text": "x"}
        )
        assert response.status_code == 403, action
    assert client.post(f"/monitoring/rules/{rule.pk}/mute/", {"until": "1h"}).status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None and alert.muted_at is None and alert.resolved_at is None
    assert not AlertEvent.objects.filter(alert=alert, kind="commented").exists()


def test_an_operator_of_the_site_may_acknowledge(owner: Any, site: Site, alert: Alert) -> None:
    operator = member("viewer", team=owner.current_team)
    site_role(site, operator, "operator")
    client = Client()
    client.force_login(operator)

    assert (
        'data-testid="acknowledge"'
        in client.get(f"/monitoring/alerts/{alert.pk}/").content.decode()
    )
    response = client.post(f"/monitoring/alerts/{alert.pk}/acknowledge/")

    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == operator


def test_someone_without_a_role_on_the_site_does_not_see_its_alerts(
    owner: Any, site: Site, alert: Alert
) -> None:
    outsider = member("viewer", team=owner.current_team)
    client = Client()
    client.force_login(outsider)

    assert client.get(f"/monitoring/alerts/{alert.pk}/").status_code == 404
    assert 'data-testid="alert-row"' not in client.get("/monitoring/alerts/").content.decode()


# --- alerts ---------------------------------------------------------------------------------------


def test_alerts_list_shows_firing_first_and_filters(
    browser: Client, owner: Any, site: Site, alert: Alert
) -> None:
    older = alert_raise(
        site_id=site.pk, team_id=owner.current_team.pk, severity="warning", title="Old one"
    )
    Alert.objects.filter(pk=older.pk).update(
        state="resolved",
        resolved_at=timezone.now(),
        started_at=timezone.now() + timedelta(minutes=1),
    )

    page = browser.get("/monitoring/alerts/").content.decode()
    only_warnings = browser.get("/monitoring/alerts/?severity=warning").content.decode()
    nonsense = browser.get("/monitoring/alerts/?severity=loud&acknowledged=maybe")

    # The resolved alert started later, yet the firing one comes first.
    assert page.index("Kiln 91 °C") < page.index("Old one")
    assert 'hx-trigger="every 10s"' in page
    assert "Kiln 91 °C" not in only_warnings and "Old one" in only_warnings
    assert nonsense.status_code == 200  # a value the API refuses is ignored on the page


def test_mute_an_alert_with_htmx_rerenders_it(browser: Client, alert: Alert) -> None:
    response = browser.post(
        f"/monitoring/alerts/{alert.pk}/mute/", {"until": "8h"}, HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert body.startswith('<div id="alert-detail"')
    assert 'data-testid="alert-muted"' in body and "muted until" in body
    assert 'data-testid="unmute"' in body
    alert.refresh_from_db()
    assert alert.muted_until is not None
    assert timedelta(hours=7, minutes=59) < alert.muted_until - timezone.now() <= timedelta(hours=8)

    browser.post(f"/monitoring/alerts/{alert.pk}/unmute/", HTTP_HX_REQUEST="true")
    alert.refresh_from_db()
    assert alert.muted_at is None


def test_mute_for_ever_comment_assign_and_resolve(
    browser: Client, owner: Any, alert: Alert
) -> None:
    # Team owners and admins see every site; an editor needs a role on the site.
    colleague = member("editor", team=owner.current_team)
    admin = member("admin", team=owner.current_team)

    browser.post(f"/monitoring/alerts/{alert.pk}/mute/", {"until": "forever"})
    browser.post(f"/monitoring/alerts/{alert.pk}/comment/", {"text": "Checking the burner"})
    browser.post(f"/monitoring/alerts/{alert.pk}/assign/", {"user": admin.pk})
    refused = browser.post(
        f"/monitoring/alerts/{alert.pk}/assign/", {"user": colleague.pk}, follow=True
    )
    browser.post(f"/monitoring/alerts/{alert.pk}/resolve/")

    alert.refresh_from_db()
    assert alert.muted and alert.muted_until is None
    assert alert.assigned_to == admin
    assert alert.state == "resolved"
    assert _messages(refused)[-1] == "user: no member of the team with this id can see this alert."
    kinds = list(alert.events.exclude(kind="notified").values_list("kind", flat=True))
    assert kinds == ["firing", "muted", "commented", "assigned", "resolved"]
    page = browser.get(f"/monitoring/alerts/{alert.pk}/").content.decode()
    assert "Checking the burner" in page
    assert page.count('data-testid="event"') == alert.events.count()


def test_bad_alert_input_is_a_message(browser: Client, alert: Alert) -> None:
    empty = browser.post(f"/monitoring/alerts/{alert.pk}/comment/", {"text": "  "}, follow=True)
    long = browser.post(
        f"/monitoring/alerts/{alert.pk}/comment/", {"text": "x" * 2001}, follow=True
    )
    mute = browser.post(f"/monitoring/alerts/{alert.pk}/mute/", {"until": "1y"}, follow=True)
    assign = browser.post(f"/monitoring/alerts/{alert.pk}/assign/", {"user": "me"}, follow=True)

    assert _messages(empty) == ["A comment has 1 to 2000 characters."]
    assert _messages(long) == ["A comment has 1 to 2000 characters."]
    assert _messages(mute) == ["Choose how long to mute."]
    assert _messages(assign) == ["Choose a team member."]
    assert list(alert.events.exclude(kind="notified").values_list("kind", flat=True)) == ["firing"]


# --- rules ----------------------------------------------------------------------------------------


def _rule_post(sensor: Sensor, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Kiln cold",
        "severity": "warning",
        "for_s": "300",
        "evaluate_every_s": "60",
        "enabled": "on",
        "op": "below",
        "on_series": "0",
        "value": "20",
        "series-TOTAL_FORMS": "3",
        "series-INITIAL_FORMS": "0",
        "series-0-kind": "sensor",
        "series-0-sensor": str(sensor.pk),
        "series-0-aggregation": "avg",
        "series-0-period_s": "60",
    }
    data.update(overrides)
    return data


def test_create_a_rule_with_the_condition_builder(browser: Client, sensor: Sensor) -> None:
    response = browser.post("/monitoring/rules/new/", _rule_post(sensor))

    created = AlertRule.objects.get(name="Kiln cold")
    assert (
        response.status_code == 302 and response["Location"] == f"/monitoring/rules/{created.pk}/"
    )
    assert created.series == [
        {"kind": "sensor", "sensor": sensor.pk, "aggregation": "avg", "period_s": 60}
    ]
    assert created.condition == {"series": 0, "op": "below", "value": 20.0}
    assert (created.for_s, created.site_id) == (300, sensor.site_id)


def test_create_a_rule_with_an_advanced_condition(browser: Client, sensor: Sensor) -> None:
    condition = (
        '{"any": [{"series": 0, "op": "above", "value": 90},'
        ' {"series": 0, "op": "no_data", "value": 600}]}'
    )

    browser.post("/monitoring/rules/new/", _rule_post(sensor, condition_json=condition))

    created = AlertRule.objects.get(name="Kiln cold")
    assert created.condition["any"][1] == {"series": 0, "op": "no_data", "value": 600.0}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"condition_json": "{not json"}, "Advanced condition (JSON): This is not valid JSON."),
        ({"op": "", "value": ""}, "Condition: Choose a condition, or write one as JSON."),
        ({"op": "outside", "value": ""}, "condition.low: is required for “outside”"),
        (
            {"series-0-sensor": "", "series-0-kind": ""},
            "series: must be a non-empty list of series",
        ),
        ({"series-0-sensor": "999999"}, "#1 Sensor: Select a valid choice."),
        ({"for_s": "-1"}, "For (seconds): Ensure this value is greater than or equal to 0."),
        ({"on_series": "1"}, "condition.series: the rule has 1 series (0 to 0)"),
    ],
)
def test_bad_rule_input_is_a_message(
    browser: Client, sensor: Sensor, overrides: dict[str, str], message: str
) -> None:
    response = browser.post("/monitoring/rules/new/", _rule_post(sensor, **overrides))

    assert response.status_code == 400
    assert any(message in text for text in _messages(response)), _messages(response)
    assert not AlertRule.objects.filter(name="Kiln cold").exists()


def test_another_teams_sensor_cannot_be_watched(browser: Client, sensor: Sensor) -> None:
    elsewhere = sensor_of(site_of(member().current_team, "Their mill"), "Their kiln")

    response = browser.post(
        "/monitoring/rules/new/", _rule_post(sensor, **{"series-0-sensor": str(elsewhere.pk)})
    )

    assert response.status_code == 400
    assert _messages(response) == [
        f"#1 Sensor: Select a valid choice. {elsewhere.pk} is not one of the available choices."
    ]


def test_edit_mute_and_unmute_a_rule(browser: Client, rule: AlertRule, sensor: Sensor) -> None:
    page = browser.get(f"/monitoring/rules/{rule.pk}/").content.decode()
    assert 'data-testid="rule-chart"' in page and 'data-testid="rule-mute"' in page

    data = _rule_post(sensor, name="Kiln hotter", op="above", value="85")
    data.update({"series-INITIAL_FORMS": "1"})
    browser.post(f"/monitoring/rules/{rule.pk}/", data)
    browser.post(f"/monitoring/rules/{rule.pk}/mute/", {"until": "24h"})

    rule.refresh_from_db()
    assert (rule.name, rule.condition["value"]) == ("Kiln hotter", 85.0)
    assert rule.muted and rule.muted_until is not None
    assert 'data-testid="rule-muted"' in browser.get("/monitoring/rules/").content.decode()
    browser.post(f"/monitoring/rules/{rule.pk}/unmute/")
    rule.refresh_from_db()
    assert not rule.muted


def test_a_builtin_rule_is_not_edited_here(browser: Client, sensor: Sensor) -> None:
    from mlmanager.monitoring.services.rules import sensor_rules_sync

    Sensor.objects.filter(pk=sensor.pk).update(warning_max=80.0)
    sensor.refresh_from_db()
    [builtin] = sensor_rules_sync(sensor)

    page = browser.get(f"/monitoring/rules/{builtin.pk}/").content.decode()
    response = browser.post(f"/monitoring/rules/{builtin.pk}/", _rule_post(sensor, name="Hack"))

    assert 'data-testid="rule-form"' not in page
    assert "change them on the sensor's page" in page
    assert response.status_code == 400
    builtin.refresh_from_db()
    assert builtin.name != "Hack"


# --- charts and dashboards ------------------------------------------------------------------------


def test_create_a_chart_with_the_series_editor(browser: Client, sensor: Sensor) -> None:
    response = browser.post(
        "/monitoring/charts/new/",
        {
            "name": "Kiln minute",
            "range_s": "3600",
            "series-TOTAL_FORMS": "3",
            "series-INITIAL_FORMS": "0",
            "series-0-kind": "sensor",
            "series-0-sensor": str(sensor.pk),
            "series-0-aggregation": "max",
            "series-0-period_s": "60",
            "series-1-kind": "sensor",  # a kind alone: an empty row
        },
    )

    created = Chart.objects.get(name="Kiln minute")
    assert response["Location"] == f"/monitoring/charts/{created.pk}/"
    assert created.series == [
        {"kind": "sensor", "sensor": sensor.pk, "aggregation": "max", "period_s": 60}
    ]
    assert (created.site_id, created.range_s) == (sensor.site_id, 3600)


def test_a_chart_without_series_or_with_a_taken_name_says_so(browser: Client, chart: Chart) -> None:
    empty = browser.post(
        "/monitoring/charts/new/",
        {
            "name": "Empty",
            "range_s": "3600",
            "series-TOTAL_FORMS": "2",
            "series-INITIAL_FORMS": "0",
        },
    )
    taken = browser.post(
        "/monitoring/charts/new/",
        {
            "name": "Kiln heat",
            "range_s": "3600",
            "series-TOTAL_FORMS": "1",
            "series-INITIAL_FORMS": "0",
            "series-0-kind": "model",
            "series-0-model": "",
        },
    )
    broken = browser.post("/monitoring/charts/new/", {"name": "No management form"})

    assert empty.status_code == 400
    assert _messages(empty) == ["series: must be a non-empty list of series"]
    assert taken.status_code == 400
    assert _messages(taken) == ["series: must be a non-empty list of series"]
    assert broken.status_code == 400
    assert Chart.objects.count() == 1


def test_a_chart_draws_its_readings_bands_and_alerts(
    browser: Client, owner: Any, chart: Chart, sensor: Sensor, rule: AlertRule, alert: Alert
) -> None:
    _send(owner, sensor, 70.0, 85.0, 90.0)

    page = browser.get(f"/monitoring/charts/{chart.pk}/?range=1h").content.decode()

    svg = page.split('data-testid="chart-svg"')[1].split("</svg>")[0]
    assert 'data-points="3"' in svg
    assert 'data-last="90.0"' in svg
    assert 'class="band-critical"' in svg  # the rule: above 80
    assert f'href="/monitoring/alerts/{alert.pk}/"' in svg
    assert svg.count('class="zoom-slice"') == 6
    assert "Kiln too hot" in page  # the rules on its series


def test_zoom_narrows_the_range_and_nonsense_is_ignored(browser: Client, chart: Chart) -> None:
    now = timezone.now()
    start = (now - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = now.strftime("%Y-%m-%dT%H:%M:%SZ")

    zoomed = browser.get(f"/monitoring/charts/{chart.pk}/?start={start}&end={end}")
    nonsense = browser.get(f"/monitoring/charts/{chart.pk}/?start=yesterday&end=2&range=9y")
    backwards = browser.get(f"/monitoring/charts/{chart.pk}/?start={end}&end={start}")

    assert zoomed.context["range_start"].strftime("%Y-%m-%dT%H:%M:%SZ") == start
    assert zoomed.context["zoomed"] is True
    assert nonsense.status_code == 200 and nonsense.context["range_key"] == "24h"
    assert backwards.status_code == 200 and backwards.context["zoomed"] is False


def test_a_dashboard_places_its_charts_and_polls_them(
    browser: Client, owner: Any, dashboard: Dashboard, chart: Chart, sensor: Sensor
) -> None:
    _send(owner, sensor, 42.5)

    page = browser.get(f"/monitoring/dashboards/{dashboard.pk}/?refresh=5s").content.decode()
    off = browser.get(f"/monitoring/dashboards/{dashboard.pk}/?refresh=off").content.decode()
    panel = browser.get(
        f"/monitoring/charts/{chart.pk}/panel/?w=6&h=1&refresh=5s&range=1h"
    ).content.decode()

    assert 'class="dash-cell w-6 h-1"' in page
    assert 'hx-trigger="every 5s"' in page
    assert (
        f'hx-get="/monitoring/charts/{chart.pk}/panel/?w=6&amp;h=1&amp;refresh=5s&amp;range=24h"'
        in page
    )
    assert "hx-trigger" not in off.split('data-testid="dashboard-grid"')[1]
    assert panel.startswith('<article class="dash-cell w-6 h-1"')
    assert 'data-last="42.5"' in panel and 'hx-trigger="every 5s"' in panel


def test_edit_a_dashboards_layout(
    browser: Client, owner: Any, dashboard: Dashboard, chart: Chart, sensor: Sensor
) -> None:
    other = chart_create(
        caller=caller_of(owner),
        team=owner.current_team,
        name="Kiln count",
        series=[{"kind": "sensor", "sensor": sensor.pk, "aggregation": "count", "period_s": 60}],
    )

    browser.post(
        f"/monitoring/dashboards/{dashboard.pk}/edit/",
        {
            "name": "Mill board",
            "site": str(dashboard.site_id),
            "cells-TOTAL_FORMS": "3",
            "cells-INITIAL_FORMS": "1",
            "cells-0-chart": str(chart.pk),
            "cells-0-w": "8",
            "cells-0-h": "2",
            "cells-1-chart": str(other.pk),
            "cells-1-w": "6",
            "cells-1-h": "1",
            "cells-2-chart": "",
            "cells-2-w": "6",
            "cells-2-h": "1",
        },
    )

    dashboard.refresh_from_db()
    assert dashboard.layout == [
        {"chart": chart.pk, "x": 0, "y": 0, "w": 8, "h": 2},
        {"chart": other.pk, "x": 0, "y": 2, "w": 6, "h": 1},  # 8 + 6 > 12: next row
    ]


def test_a_dashboard_twice_the_same_chart_is_a_message(
    browser: Client, owner: Any, chart: Chart
) -> None:
    response = browser.post(
        "/monitoring/dashboards/new/",
        {
            "name": "Twice",
            "site": "",
            "cells-TOTAL_FORMS": "2",
            "cells-INITIAL_FORMS": "0",
            "cells-0-chart": str(chart.pk),
            "cells-0-w": "6",
            "cells-0-h": "1",
            "cells-1-chart": str(chart.pk),
            "cells-1-w": "6",
            "cells-1-h": "1",
        },
    )

    assert response.status_code == 400
    assert _messages(response) == ["layout[1].chart: the chart is on the dashboard already"]


def test_delete_a_chart_and_a_dashboard(
    browser: Client, chart: Chart, dashboard: Dashboard
) -> None:
    browser.post(f"/monitoring/dashboards/{dashboard.pk}/delete/")
    browser.post(f"/monitoring/charts/{chart.pk}/delete/")

    assert not Dashboard.objects.exists() and not Chart.objects.exists()


# --- the model's tab ------------------------------------------------------------------------------


def test_the_model_tab_shows_volume_drift_and_adds_the_suggested_rules(
    browser: Client, machine: Machine
) -> None:
    page = browser.get(f"/monitoring/models/{machine.pk}/").content.decode()

    assert 'data-testid="model-volume">60<' in page
    # The temperature was shifted by 25: it drifts and comes first.
    assert page.index('data-testid="drift-temperature"') < page.index('data-testid="drift-plan"')
    assert 'data-testid="drift-histogram"' in page
    assert 'data-testid="prediction-histogram"' in page

    response = browser.post(f"/monitoring/models/{machine.pk}/suggest/", follow=True)
    again = browser.post(f"/monitoring/models/{machine.pk}/suggest/", follow=True)

    names = sorted(AlertRule.objects.filter(machines=machine).values_list("name", flat=True))
    assert names == sorted(
        [
            "Failure model: drift of temperature",
            "Failure model: drift of plan",
            "Failure model: accuracy of failed below the holdout's",
            "Failure model: accuracy of energy below the holdout's",
            "Failure model: no predictions for a day",
        ]
    )
    accuracy = AlertRule.objects.get(name="Failure model: accuracy of failed below the holdout's")
    assert accuracy.condition == {"series": 0, "op": "below", "value": 0.85}
    assert _messages(response)[0].startswith("Added 5 rules")
    assert _messages(again) == ["The suggested rules are there already."]


def test_a_model_viewer_sees_the_tab_but_may_not_add_rules(owner: Any, machine: Machine) -> None:
    viewer = member("viewer", team=owner.current_team)
    client = Client()
    client.force_login(viewer)

    page = client.get(f"/monitoring/models/{machine.pk}/").content.decode()

    assert 'data-testid="suggest-rules"' not in page
    assert client.post(f"/monitoring/models/{machine.pk}/suggest/").status_code == 403
    assert not AlertRule.objects.filter(machines=machine).exists()


def test_the_model_page_links_to_its_tab(browser: Client, machine: Machine) -> None:
    page = browser.get(f"/models/{machine.pk}/").content.decode()

    assert f'href="/monitoring/models/{machine.pk}/" data-testid="monitoring-link"' in page


# --- notifications and reports --------------------------------------------------------------------


def _notification(owner: Any, alert: Alert | None, subject: str) -> Notification:
    return Notification.objects.create(
        team=owner.current_team,
        user=owner,
        alert=alert,
        channel="in_app",
        subject=subject,
        status="sent",
    )


def test_the_bell_counts_unread_and_the_list_marks_them_read(
    browser: Client, owner: Any, alert: Alert
) -> None:
    # The alert told the owner already: start from nothing unread.
    Notification.objects.filter(user=owner).update(read_at=timezone.now())
    first = _notification(owner, alert, "Kiln firing")
    _notification(owner, alert, "Kiln escalated")
    _notification(member(), None, "Someone else's")

    bell = browser.get("/monitoring/notifications/bell/").content.decode()
    page = browser.get("/monitoring/notifications/").content.decode()
    browser.post("/monitoring/notifications/read/", {"id": str(first.pk)})
    after_one = browser.get("/monitoring/notifications/bell/").content.decode()
    browser.post("/monitoring/notifications/read/")
    after_all = browser.get("/monitoring/notifications/bell/").content.decode()

    assert 'data-testid="bell-count">2<' in bell
    assert page.count('class="unread" data-testid="notification-row"') == 2
    assert "Someone else's" not in page
    assert 'data-testid="bell-count">1<' in after_one
    assert "bell-count" not in after_all


def test_the_top_bar_has_the_bell_and_the_section(browser: Client) -> None:
    page = browser.get("/monitoring/alerts/").content.decode()

    assert 'hx-get="/monitoring/notifications/bell/" hx-trigger="load"' in page
    assert 'data-testid="nav-monitoring"' in page


def test_save_preferences_and_refuse_half_quiet_hours(
    browser: Client, owner: Any, site: Site
) -> None:
    saved = browser.post(
        "/monitoring/notifications/preferences/",
        {
            "min_severity": "critical",
            "sites": [str(site.pk)],
            "in_app": "on",
            "quiet_start": "22:00",
            "quiet_end": "06:00",
        },
    )
    half = browser.post(
        "/monitoring/notifications/preferences/",
        {"min_severity": "info", "quiet_start": "22:00"},
    )
    stranger_site = site_of(member().current_team, "Theirs")
    tampered = browser.post(
        "/monitoring/notifications/preferences/",
        {"min_severity": "info", "sites": [str(stranger_site.pk)]},
    )

    preference = NotificationPreference.objects.get(user=owner)
    assert saved.status_code == 302
    assert (preference.min_severity, preference.email, preference.in_app) == (
        "critical",
        False,
        True,
    )
    assert list(preference.sites.all()) == [site]
    assert half.status_code == 400
    assert _messages(half)[-1] == "Quiet hours need a start and an end (or neither)."
    assert tampered.status_code == 400
    assert preference.quiet_start.hour == 22


def test_create_a_report_and_send_it_now(
    browser: Client, owner: Any, chart: Chart, settings: Any
) -> None:
    response = browser.post(
        "/monitoring/reports/new/",
        {
            "name": "Morning kiln",
            "subject": f"chart:{chart.pk}",
            "frequency": "weekly",
            "weekday": "2",
            "time_of_day": "07:30",
            "recipients": [str(owner.pk)],
            "active": "on",
        },
    )
    report = Report.objects.get(name="Morning kiln")
    sent = browser.post(f"/monitoring/reports/{report.pk}/send/", follow=True)

    assert response["Location"] == f"/monitoring/reports/{report.pk}/"
    assert (report.frequency, report.weekday, report.chart_id) == ("weekly", 2, chart.pk)
    assert _messages(sent)[-1] == "Sent to 1 recipient."
    assert [message.to for message in mail.outbox] == [[owner.email]]


def test_bad_report_input_is_a_message(browser: Client, chart: Chart) -> None:
    nobody = browser.post(
        "/monitoring/reports/new/",
        {
            "name": "R",
            "subject": f"chart:{chart.pk}",
            "frequency": "daily",
            "weekday": "0",
            "time_of_day": "07:30",
        },
    )
    unknown = browser.post(
        "/monitoring/reports/new/",
        {
            "name": "R",
            "subject": "chart:999999",
            "frequency": "daily",
            "weekday": "0",
            "time_of_day": "25:00",
            "recipients": ["1"],
        },
    )

    assert nobody.status_code == 400
    assert _messages(nobody) == ["Recipients: This field is required."]
    assert unknown.status_code == 400
    assert len(_messages(unknown)) >= 2
    assert not Report.objects.filter(name="R").exists()


def test_a_site_viewer_may_not_send_or_delete_a_report(
    owner: Any, site: Site, report: Report
) -> None:
    viewer = member("viewer", team=owner.current_team)
    site_role(site, viewer, "viewer")
    client = Client()
    client.force_login(viewer)

    page = client.get(f"/monitoring/reports/{report.pk}/").content.decode()

    assert 'data-testid="send-now"' not in page
    assert client.post(f"/monitoring/reports/{report.pk}/send/").status_code == 403
    assert client.post(f"/monitoring/reports/{report.pk}/delete/").status_code == 403
    assert re.search(r"Daily kiln", page)


def _queries(client: Client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_list_pages_read_a_fixed_number_of_queries(
    browser: Client, owner: Any, site: Site, sensor: Sensor, rule: AlertRule
) -> None:
    def add(count: int) -> None:
        for _index in range(count):
            raised = alert_raise(
                site_id=site.pk, team_id=owner.current_team.pk, severity="warning", title="A"
            )
            raised.acknowledged_by, raised.assigned_to = owner, owner
            raised.save()
            rule_create(
                caller=caller_of(owner),
                team=owner.current_team,
                name=f"Rule {Alert.objects.count()}",
                series=rule.series,
                condition=rule.condition,
            )

    add(2)
    few = {url: _queries(browser, url) for url in ("/monitoring/alerts/", "/monitoring/rules/")}
    add(6)
    many = {url: _queries(browser, url) for url in ("/monitoring/alerts/", "/monitoring/rules/")}

    assert many == few
