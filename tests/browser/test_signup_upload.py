"""End to end, in a real browser: sign up, activate by e-mail, upload the demo CSV, watch it
become ready."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.mail import EmailMessage
from playwright.sync_api import Page, expect

from mlmanager.datasets.tests.conftest import DEMO_COLUMNS, DEMO_CSV
from tests.browser.conftest import BackgroundWorker, BrowserErrors, sign_up

SCREENSHOT = Path("/tmp/browser-dataset.png")  # for a human to look at; not a test artifact


@pytest.mark.browser
def test_signup_then_upload_demo_csv_until_ready(
    page: Page,
    worker: BackgroundWorker,
    browser_errors: BrowserErrors,
    live_server: Any,
    settings: Any,
    mailoutbox: list[EmailMessage],
) -> None:
    settings.MLMANAGER_SITE_URL = live_server.url  # links in e-mails point at this server
    sign_up(page, live_server.url, mailoutbox, name="Ada Browser", email="ada.browser@example.com")
    assert page.evaluate("typeof htmx") == "object", "htmx did not load from /static/vendor/"

    # Upload the demo file through the form; the upload redirects to the dataset's page.
    page.locator("input[type=file][name=file]").set_input_files(DEMO_CSV)
    page.locator("input[name=name]").fill("Churn demo")
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/$"))
    status = page.get_by_test_id("dataset-status")
    # No worker runs yet, so the page is certainly showing the queued job (not a lucky race).
    expect(status).to_have_text("Processing")

    # From here on the page must update itself (htmx polls every 1 s): count navigations.
    navigations: list[str] = []
    page.on(
        "framenavigated", lambda frame: frame == page.main_frame and navigations.append(frame.url)
    )
    worker.start()
    expect(status).to_have_text(re.compile(r"^(Ready|Failed)$"), timeout=30_000)
    if status.inner_text() == "Failed":  # say why, instead of waiting for a timeout
        pytest.fail(f"processing failed: {page.get_by_test_id('dataset-error').inner_text()}")
    assert navigations == [], f"the page navigated instead of updating in place: {navigations}"

    expect(page.get_by_test_id("dataset-name")).to_have_text("Churn demo")
    expect(page.get_by_test_id("dataset-shape")).to_have_text("1,000 rows × 9 columns")
    profile = page.get_by_test_id("profile-table")
    names = profile.locator("tbody tr td:first-child strong")
    expect(names).to_have_text(DEMO_COLUMNS)
    charts = profile.locator("svg.chart:has(rect)")
    assert charts.count() >= 7, f"only {charts.count()} columns have a chart with bars"

    # The rows preview is loaded by htmx after the profile appears.
    preview = page.get_by_test_id("preview-table")
    expect(preview).to_contain_text("C100000")
    expect(preview.locator("thead th")).to_have_text(["#", *DEMO_COLUMNS])

    assert page.evaluate("typeof htmx") == "object"
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert browser_errors.messages == []
