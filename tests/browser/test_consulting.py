"""In a real browser, with billing on: a team asks for help with an attachment, a consultant
approves it from the queue and proposes a contract, the team accepts (the amount is held),
the consultant finishes (the amount is paid out) — each side signed in in turn."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from mlmanager.accounts.models import Membership
from mlmanager.billing.models import Account, Operation, Reservation
from mlmanager.billing.services import ledger
from mlmanager.consulting.models import Consultant, ConsultingRequest
from mlmanager.core.tests.factories import PASSWORD, TeamFactory, member
from tests.browser.conftest import BrowserErrors


def log_in_as(page: Page, user: Any) -> None:
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("nav.top")).to_contain_text(user.display_name)


@pytest.mark.browser
def test_request_approve_contract_accept_finish(
    page: Page, browser_errors: BrowserErrors, settings: Any, tmp_path: Path
) -> None:
    settings.MLMANAGER_BILLING = True
    team = TeamFactory(name="Acme")
    editor = member(Membership.Role.EDITOR, team)
    # The consultant works in the platform's own team (a user of no team has no live socket).
    consultant = member(Membership.Role.OWNER, TeamFactory(name="Platform"))
    consultant.is_staff = True
    consultant.save(update_fields=["is_staff"])
    Consultant.objects.create(user=consultant)
    ledger.credit(team_id=team.pk, kind=Operation.Kind.CREDIT, amount=Decimal("100"))
    brief = tmp_path / "brief.pdf"
    brief.write_bytes(b"%PDF-1.7\n%%EOF\n")

    # The team asks.
    log_in_as(page, editor)
    page.goto("/consulting/")
    page.get_by_test_id("consulting-new").click()
    page.locator("select[name=category]").select_option("data_engineering")
    page.locator("textarea[name=description]").fill("Our nightly import takes four hours.")
    page.locator("input[type=file][name=attachment]").set_input_files(str(brief))
    page.get_by_role("button", name="Send the request").click()
    expect(page).to_have_url(re.compile(r"/consulting/\d+/$"))
    expect(page.get_by_test_id("consulting-state")).to_have_text(
        "Open: waiting for a consultant's approval"
    )
    expect(page.get_by_test_id("consulting-attachment")).to_have_text("brief.pdf")
    request = ConsultingRequest.objects.get()

    # A consultant takes it from the queue and proposes a contract.
    log_in_as(page, consultant)
    page.goto("/consulting/queue/")
    page.get_by_test_id("consulting-table").get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/consulting/{request.pk}/$"))
    page.get_by_test_id("consulting-approve").click()
    expect(page.get_by_test_id("consulting-state")).to_have_text(
        "Approved: waiting for the consultant's contract"
    )
    with page.expect_download() as download:
        page.get_by_test_id("consulting-attachment").click()
    assert download.value.suggested_filename == "brief.pdf"
    page.locator("input[name=amount]").fill("60")
    page.locator("input[name=budget_estimate]").fill("75")
    page.locator("input[name=delay_days]").fill("10")
    page.get_by_test_id("consulting-propose").click()
    expect(page.get_by_test_id("consulting-contract")).to_contain_text("60.00 USD")

    # The team accepts: the amount is held.
    log_in_as(page, editor)
    page.goto(f"/consulting/{request.pk}/")
    page.get_by_test_id("consulting-accept").click()
    expect(page.get_by_test_id("consulting-state")).to_have_text("Accepted: work in progress")
    assert Account.objects.get(team_id=team.pk).reserved == Decimal("60")

    # The consultant finishes: the hold is paid out.
    log_in_as(page, consultant)
    page.goto(f"/consulting/{request.pk}/")
    page.get_by_test_id("consulting-finish").click()
    expect(page.get_by_test_id("consulting-state")).to_have_text("Finished")
    expect(page.get_by_test_id("consulting-timeline").locator("li")).to_have_count(5)
    account = Account.objects.get(team_id=team.pk)
    assert (account.balance, account.reserved) == (Decimal("40"), Decimal("0"))
    assert Reservation.objects.get(key=f"consulting:{request.pk}").status == "settled"
    assert browser_errors.messages == []
