"""In a real browser: the top bar fits a 390 px phone (its links fold into a menu a <details>
opens, no script), reaches every section from there, and a destructive button asks first."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Dialog, Page, expect

from mlmanager.core.tests.factories import PASSWORD
from mlmanager.jobs import services as jobs
from mlmanager.jobs.models import Job

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}


def log_in(page: Page, user: Any) -> None:
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))


def overflow_px(page: Page) -> int:
    """How far the page reaches past the window's right edge (0: it fits)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def inside_window(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]  # type: ignore[index]


@pytest.mark.browser
def test_the_top_bar_folds_into_a_menu_on_a_phone(page: Page, owner: Any) -> None:
    page.set_viewport_size(PHONE)
    log_in(page, owner)
    nav = page.locator("nav.top")
    assert overflow_px(page) == 0
    assert inside_window(page, "nav.top")
    # The section links left the bar for the menu.
    expect(nav.get_by_test_id("nav-predictions")).to_be_hidden()
    menu = page.get_by_test_id("user-menu")
    menu.locator("summary").click()
    for name in ("Datasets", "Models", "Predictions", "Jobs", "API tokens", "API documentation"):
        link = menu.get_by_role("link", name=name, exact=True)
        expect(link).to_be_visible()
    expect(menu.get_by_test_id("menu-logout")).to_be_visible()
    assert inside_window(page, "[data-testid=user-menu] > ul")
    assert overflow_px(page) == 0
    menu.get_by_role("link", name="Predictions", exact=True).click()
    expect(page).to_have_url(re.compile(r"/predictions/$"))
    assert overflow_px(page) == 0

    page.set_viewport_size(LAPTOP)
    expect(nav.get_by_test_id("nav-predictions")).to_be_visible()
    expect(menu.locator("summary")).to_contain_text(owner.display_name)


@pytest.mark.browser
def test_cancelling_a_job_asks_first(page: Page, owner: Any) -> None:
    job = jobs.job_create(
        team=owner.current_team, created_by=owner, kind="dataset.process", description="Load"
    )
    log_in(page, owner)
    page.goto(f"/jobs/{job.pk}/")
    asked: list[str] = []

    def answer(accept: bool) -> Any:
        def handle(dialog: Dialog) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    page.get_by_test_id("cancel-job").click()
    expect(page.get_by_test_id("job-status")).to_have_text("Queued")
    assert asked == ["Cancel this job? Work it has not finished is stopped."]
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED

    page.once("dialog", answer(True))
    page.get_by_test_id("cancel-job").click()
    expect(page.get_by_test_id("job-status")).to_have_text("Cancelled")
    expect(page.get_by_role("alert").first).to_contain_text("Cancellation requested.")
    expect(page.get_by_test_id("user-menu")).to_be_visible()  # the whole page, not a partial
    expect(page).to_have_url(re.compile(rf"/jobs/{job.pk}/$"))
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
