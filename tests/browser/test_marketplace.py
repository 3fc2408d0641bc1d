"""The marketplace path in a real browser (issue 17): the owner publishes a model's prediction
API from its page; another user, whose team has credit, finds it in the catalogue and predicts
a row with the "try it" form (billing on: charged); the owner sees the usage and the income."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from mlmanager.billing.models import Account, Price
from mlmanager.billing.tests.conftest import fund  # noqa: F401 - a fixture
from mlmanager.core.tests.factories import PASSWORD, member
from mlmanager.machines.tests.conftest import make_dataset  # noqa: F401 - a fixture
from mlmanager.predictions.tests.conftest import (  # noqa: F401 - fixtures
    binary_model,
    make_model,
    trained_binary,
)
from tests.browser.conftest import BrowserErrors

ROW = {"plan": "pro", "monthly_fee": 49.5, "tenure_months": 2, "member": True}


def _log_in(page: Page, user: Any) -> None:
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


@pytest.mark.browser
def test_publish_buy_predict_and_the_owner_is_paid(
    page: Page,
    owner: Any,
    binary_model: Any,  # noqa: F811 - the fixture imported above
    fund: Any,  # noqa: F811
    settings: Any,
    browser_errors: BrowserErrors,
) -> None:
    settings.MLMANAGER_BILLING = True
    from django.utils import timezone

    Price.objects.create(
        key=Price.Key.MARKETPLACE_COMMISSION, amount=Decimal("0.2"), valid_from=timezone.now()
    )
    buyer = member("owner")
    fund(buyer.current_team, "5")

    # The owner publishes from the model's page.
    _log_in(page, owner)
    page.goto(f"/models/{binary_model.pk}/")
    page.get_by_test_id("publish-link").click()
    form = page.get_by_test_id("publish-form")
    form.locator("select[name=kind]").select_option("prediction_api")
    form.locator("input[name=title]").fill("Churn risk API")
    form.locator("select[name=category]").select_option("retail")
    form.locator("input[name=price]").fill("10")
    form.locator("textarea[name=sample_input]").fill(json.dumps(ROW))
    page.get_by_test_id("publish-button").click()
    expect(page.get_by_test_id("listing-title")).to_have_text("Churn risk API")

    # Another team's user finds it and predicts the sample row.
    _log_in(page, buyer)
    page.get_by_test_id("nav-marketplace").click()
    page.get_by_role("link", name="Churn risk API").click()
    expect(page.get_by_test_id("listing-price")).to_contain_text("10.00 USD")
    expect(page.get_by_test_id("listing-schema")).to_contain_text("tenure_months")
    page.get_by_test_id("try-button").click()
    expect(page.get_by_test_id("try-value")).to_have_text(re.compile(r"^(yes|no)$"))
    # 1 row at 10 per 1 000 rows.
    assert Account.objects.get(team=buyer.current_team).available == Decimal("4.99")

    # The owner sees the row, the buyer and the income (0.01 less 20 %).
    _log_in(page, owner)
    page.goto("/marketplace/mine/")
    row = page.get_by_test_id("my-listing-row")
    expect(row.get_by_test_id("rows-predicted")).to_have_text("1")
    expect(row.get_by_test_id("buyers")).to_have_text("1")
    expect(row.get_by_test_id("income")).to_have_text("0.008 USD")
    assert browser_errors.messages == []
