"""In a real browser: a site's dashboard shows a new reading, its state and the alert it opened
without reloading, over the site's socket on the embedded default (no channel layer: the
socket looks at the site's change counter)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from mlmanager.core.tests.factories import PASSWORD
from mlmanager.live.tests.server import LiveSocketServer, live_socket_server
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of
from tests.browser.conftest import BrowserErrors

__all__ = ["live_socket_server"]  # a fixture


def _log_in(page: Page, user: Any) -> None:
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))


@pytest.mark.browser
def test_a_reading_appears_without_a_reload(
    page: Page,
    owner: Any,
    live_socket_server: LiveSocketServer,
    settings: Any,
    browser_errors: BrowserErrors,
) -> None:
    settings.CHANNEL_LAYERS = {}  # the embedded default
    settings.MLMANAGER_LIVE_URL = live_socket_server.url
    site = site_of(owner.current_team, "Mill 1")
    sensor = sensor_of(site, "Kiln", warning_max=80.0, critical_max=95.0)
    _log_in(page, owner)

    page.get_by_test_id("nav-sites").click()
    page.get_by_role("link", name="Mill 1").click()
    expect(page).to_have_url(re.compile(rf"/sites/{site.pk}/$"))
    page.evaluate("window.__noReload = 1")  # a reload or navigation would lose it
    card = page.get_by_test_id(f"sensor-{sensor.pk}")
    expect(card.get_by_test_id("sensor-value")).to_have_text("–")
    expect(card.get_by_test_id("sensor-state")).to_have_text("stale")
    # A function, not an expression: an expression is eval()ed, which the CSP refuses.
    page.wait_for_function("() => window.sitesLiveConnected === true")

    answer = readings_ingest(
        caller=caller_of(owner),
        readings=[{"sensor": sensor.pk, "timestamp": timezone.now().isoformat(), "value": 88.25}],
    )
    assert answer["accepted"] == 1

    expect(card.get_by_test_id("sensor-value")).to_have_text("88.25")
    expect(card.get_by_test_id("sensor-state")).to_have_text("warning")
    expect(page.get_by_test_id("alert")).to_have_count(1)
    expect(page.get_by_test_id("alert")).to_contain_text("Kiln")
    assert page.evaluate("window.__noReload") == 1, "the page reloaded"
    assert page.evaluate("window.sitesLiveConnected") is True

    # An operator's button, in the re-rendered part, still works.
    page.get_by_test_id("acknowledge").click()
    expect(page.get_by_test_id("alert")).to_contain_text("Acknowledged by")
    assert browser_errors.messages == []
