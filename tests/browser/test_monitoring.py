"""In a real browser: a user opens an alert from the monitoring section and mutes it (the
alert's part of the page is re-rendered by htmx, no reload), and a dashboard updates live the
Grafana way: a reading ingested while the page is open shows up in its chart on the next
refresh (the panel re-fetches itself every 5 s; the test waits for the chart's data, not for
a time)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from mlmanager.core.tests.factories import PASSWORD
from mlmanager.live.tests.server import LiveSocketServer, live_socket_server
from mlmanager.monitoring.models import Alert
from mlmanager.monitoring.services.alerts import alert_raise
from mlmanager.monitoring.services.charts import chart_create, dashboard_create
from mlmanager.monitoring.services.rules import rule_create
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of
from tests.browser.conftest import BrowserErrors

__all__ = ["live_socket_server"]  # a fixture

# The panel's refresh plus the page's own work; Playwright polls the attribute meanwhile.
LIVE_UPDATE_TIMEOUT_MS = 20_000


def _log_in(page: Page, user: Any) -> None:
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))


@pytest.mark.browser
def test_open_an_alert_and_mute_it(
    page: Page, owner: Any, live_socket_server: LiveSocketServer, browser_errors: BrowserErrors
) -> None:
    site = site_of(owner.current_team, "Mill 1")
    sensor = sensor_of(site, "Kiln")
    rule = rule_create(
        caller=caller_of(owner),
        team=owner.current_team,
        name="Kiln too hot",
        series=[{"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}],
        condition={"series": 0, "op": "above", "value": 80.0},
        severity="critical",
    )
    alert = alert_raise(
        site_id=site.pk, team_id=owner.current_team.pk, severity="critical", title="Kiln 91 °C"
    )
    Alert.objects.filter(pk=alert.pk).update(rule=rule)
    _log_in(page, owner)

    page.get_by_test_id("nav-monitoring").click()
    expect(page).to_have_url(re.compile(r"/monitoring/alerts/$"))
    page.get_by_role("link", name="Kiln 91 °C").click()
    expect(page).to_have_url(re.compile(rf"/monitoring/alerts/{alert.pk}/$"))
    expect(page.get_by_test_id("alert-state")).to_have_text("Firing")
    expect(page.get_by_test_id("alert-muted")).to_have_count(0)
    page.evaluate("window.__noReload = 1")  # a reload or navigation would lose it

    page.get_by_test_id("mute-until").select_option("8h")
    page.get_by_test_id("mute").click()

    expect(page.get_by_test_id("alert-muted")).to_contain_text("muted until")
    expect(page.get_by_test_id("alert-message")).to_have_text("Alert muted.")
    expect(page.get_by_test_id("unmute")).to_be_visible()
    expect(page.get_by_test_id("timeline")).to_contain_text("Muted")
    assert page.evaluate("window.__noReload") == 1, "the page reloaded"
    alert.refresh_from_db()
    assert alert.muted and alert.muted_until is not None
    assert alert.muted_until > timezone.now() + timedelta(hours=7)

    # The re-rendered part's buttons work too: unmute.
    page.get_by_test_id("unmute").click()
    expect(page.get_by_test_id("alert-muted")).to_have_count(0)
    expect(page.get_by_test_id("mute")).to_be_visible()
    alert.refresh_from_db()
    assert not alert.muted
    assert browser_errors.messages == []


@pytest.mark.browser
def test_a_dashboard_shows_a_new_reading_without_a_reload(
    page: Page, owner: Any, live_socket_server: LiveSocketServer, browser_errors: BrowserErrors
) -> None:
    site = site_of(owner.current_team, "Mill 1")
    sensor = sensor_of(site, "Kiln")
    chart = chart_create(
        caller=caller_of(owner),
        team=owner.current_team,
        name="Kiln readings",
        series=[{"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}],
    )
    dashboard = dashboard_create(
        caller=caller_of(owner),
        team=owner.current_team,
        name="Mill board",
        site=site.pk,
        layout=[{"chart": chart.pk, "x": 0, "y": 0, "w": 12, "h": 1}],
    )
    _log_in(page, owner)

    page.get_by_test_id("nav-monitoring").click()
    page.get_by_test_id("tab-dashboards").click()
    page.get_by_role("link", name="Mill board").click()
    expect(page).to_have_url(re.compile(rf"/monitoring/dashboards/{dashboard.pk}/$"))
    page.get_by_test_id("refresh-5s").click()
    expect(page).to_have_url(re.compile(r"\?refresh=5s"))
    panel = page.get_by_test_id(f"panel-{chart.pk}")
    expect(panel).to_have_attribute("data-points", "0")
    expect(panel).to_contain_text("No data in this range.")
    page.evaluate("window.__noReload = 1")

    answer = readings_ingest(
        caller=caller_of(owner),
        readings=[
            {
                "sensor": sensor.pk,
                "timestamp": (timezone.now() - timedelta(seconds=1)).isoformat(),
                "value": 42.5,
            }
        ],
    )
    assert answer["accepted"] == 1

    expect(panel).to_have_attribute("data-points", "1", timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(panel.locator("g[data-series='0']")).to_have_attribute("data-last", "42.5")
    expect(panel.locator("circle.series-dot")).to_have_count(1)  # one reading: a dot
    assert page.evaluate("window.__noReload") == 1, "the page reloaded"
    assert browser_errors.messages == []
