"""In a real browser with decimal-comma preferences: "49,5" reaches the model as 49.5 (the
number fields are text, so Chromium's locale cannot mangle it), and a value training never saw
is predicted with a warning next to its field (issue 12, item 4)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from mlmanager.core.tests.factories import PASSWORD
from mlmanager.machines.tests.conftest import make_dataset  # noqa: F401 - a fixture
from mlmanager.predictions import serving
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.tests.conftest import (  # noqa: F401 - fixtures
    binary_model,
    make_model,
    trained_binary,
)
from mlmanager.predictions.tests.test_input_warnings import record_training_facts
from tests.browser.conftest import BrowserErrors


@pytest.mark.browser
def test_a_decimal_comma_number_and_a_warning_next_to_its_field(
    page: Page,
    owner: Any,
    binary_model: Any,  # noqa: F811 - the fixture imported above
    browser_errors: BrowserErrors,
) -> None:
    record_training_facts(binary_model)
    # Versions of earlier tests in this process had the same id (the live server's database is
    # emptied between tests), and loaded versions are cached by id.
    serving.cache.clear()
    owner.decimal_separator = ","
    owner.save(update_fields=["decimal_separator"])
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(owner.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/models/{binary_model.pk}/predict/")

    page.locator("input[name=monthly_fee]").fill("49,5")
    page.locator("input[name=tenure_months]").fill("99")
    page.locator("input[name=signup]").fill("2023-04-01")
    page.get_by_test_id("predict-button").click()
    result = page.get_by_test_id("prediction-result")
    expect(result.get_by_test_id("predicted-value")).to_have_text(re.compile(r"^(yes|no)$"))
    expect(page.get_by_test_id("field-warning-tenure_months")).to_have_text(
        "99 is outside the range seen in training (1 to 59); the prediction extrapolates."
    )
    logged = Prediction.objects.get()
    assert logged.inputs["monthly_fee"] == 49.5 and logged.inputs["signup"] == "2023-04-01"
    assert browser_errors.messages == []
