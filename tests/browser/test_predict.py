"""In a real browser: predict with the generated form (htmx swaps the answer in), then give
feedback in the log and see the live accuracy."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from mlmanager.core.tests.factories import PASSWORD
from mlmanager.machines.tests.conftest import make_dataset  # noqa: F401 - a fixture
from mlmanager.predictions.tests.conftest import (  # noqa: F401 - fixtures
    binary_model,
    make_model,
    trained_binary,
)
from tests.browser.conftest import BrowserErrors


@pytest.mark.browser
def test_predict_from_the_form_and_give_feedback(
    page: Page,
    owner: Any,
    binary_model: Any,  # noqa: F811 - the fixture imported above
    browser_errors: BrowserErrors,
) -> None:
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(owner.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/models/{binary_model.pk}/")
    page.get_by_test_id("predict-link").click()
    expect(page).to_have_url(re.compile(rf"/models/{binary_model.pk}/predict/$"))

    page.locator("select[name=plan]").select_option("pro")
    page.locator("input[name=tenure_months]").fill("2")
    page.locator("select[name=member]").select_option("true")
    page.locator("input[name=signup]").fill("2023-04-01")  # a date picker: dates only
    page.locator("input[name=monthly_fee]").fill("49.5")
    page.get_by_test_id("predict-button").click()
    result = page.get_by_test_id("prediction-result")
    expect(result.get_by_test_id("predicted-value")).to_have_text(re.compile(r"^(yes|no)$"))
    expect(result.get_by_test_id("probabilities").locator("tbody tr")).to_have_count(2)
    expect(result.get_by_test_id("explanation")).to_contain_text("tenure_months")
    predicted = result.get_by_test_id("predicted-value").inner_text()

    # The answer is in the log; tell the model it was right.
    page.get_by_test_id("nav-log").click()
    row = page.get_by_test_id("log-row")
    expect(row).to_have_count(1)
    row.locator("input[name=actual]").fill(predicted)
    row.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("feedback-value")).to_have_text(predicted)
    page.reload()
    expect(page.get_by_test_id("live-accuracy-value")).to_have_text(re.compile(r"^100"))
    assert browser_errors.messages == []
