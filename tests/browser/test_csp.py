"""In a real browser: every page carries a Content-Security-Policy and breaks none of it.

One signed-in owner (staff, for the admin) with real objects behind every page — a trained
classifier and a regression model whose versions show every chart, a prediction in the log, a
finished batch, a job, an invitation, an API token — visits each page, uses the parts that swap
content in with htmx (the rows preview, predicting, feedback, a batch), and the browser reports
no violation: neither a `securitypolicyviolation` event in the page nor a console message about
the policy (Chromium logs each refused inline script or style, `eval` and connection there).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import ConsoleMessage, Page, expect

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.services import api_token_create, invitation_create
from mlmanager.core.tests.factories import PASSWORD
from mlmanager.jobs import services as jobs
from mlmanager.jobs.models import Job
from mlmanager.machines.models import Machine
from mlmanager.machines.tests.conftest import make_dataset  # noqa: F401 - fixture
from mlmanager.machines.tests.showcase import regression_model, show_every_chart
from mlmanager.predictions.tests.conftest import (  # noqa: F401 - fixtures
    binary_model,
    make_model,
    trained_binary,
)
from tests.browser.conftest import BackgroundWorker, BrowserErrors

NOT_FOUND = "/datasets/999999999/"

# Collects the page's own reports from its first script on; read before each navigation.
VIOLATION_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} ` +
    `at ${event.sourceFile}:${event.lineNumber}`
  );
});
"""


@dataclass
class PolicyWatch:
    """Violations per page path: the page's events, and the console's words about the policy."""

    page: Page
    found: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.page.add_init_script(VIOLATION_LISTENER)
        self.page.on("console", self._console)

    def _path(self) -> str:
        return re.sub(r"^https?://[^/]+", "", self.page.url)

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.found.setdefault(self._path(), []).append(f"console: {message.text}")

    def visit(self, path: str, then: Callable[[], None] | None = None) -> None:
        """Open the page, let its htmx requests settle, use it (`then`), and note violations."""
        response = self.page.goto(path)
        assert response is not None
        self.headers[path] = response.headers.get("content-security-policy", "")
        self.page.wait_for_load_state("networkidle")
        if then is not None:
            then()
            self.page.wait_for_load_state("networkidle")
        self.collect()

    def collect(self) -> None:
        reported = self.page.evaluate("window.__cspViolations || []")
        if reported:
            self.found.setdefault(self._path(), []).extend(reported)


def _finished_job(owner: Any) -> Job:
    job = jobs.job_create(
        team=owner.current_team, created_by=owner, kind="dataset.process", description="Load"
    )
    jobs.job_claim(job_id=job.pk, worker="browser-test:1")
    jobs.job_append_log(job_id=job.pk, line="1,000 rows read")
    jobs.job_succeed(job_id=job.pk, message="Loaded")
    return job


def _predict(page: Page) -> None:
    page.locator("select[name=plan]").select_option("pro")
    page.locator("input[name=tenure_months]").fill("2")
    page.get_by_test_id("predict-button").click()
    expect(page.get_by_test_id("prediction-result")).to_be_visible()


def _give_feedback(page: Page) -> None:
    row = page.get_by_test_id("log-row")
    expect(row).to_have_count(1)
    row.locator("input[name=actual]").fill("yes")
    row.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("feedback-value")).to_have_text("yes")


@pytest.mark.browser
def test_no_page_breaks_its_content_security_policy(
    page: Page,
    owner: Any,
    binary_model: Machine,  # noqa: F811 - the fixture imported above
    worker: BackgroundWorker,
    browser_errors: BrowserErrors,
) -> None:
    owner.is_staff = owner.is_superuser = True
    owner.save(update_fields=["is_staff", "is_superuser"])
    machine = binary_model
    show_every_chart(machine)
    dataset_id, team_id = machine.dataset_id, owner.current_team_id
    regression = regression_model(owner, dataset_id)
    job = _finished_job(owner)
    invitation = invitation_create(caller=Caller.for_session(owner), team_id=team_id)
    api_token_create(caller=Caller.for_session(owner), name="CI")
    worker.start()
    watch = PolicyWatch(page)

    # Signed out.
    watch.visit("/accounts/signup/")
    watch.visit("/accounts/password/reset/")
    watch.visit("/accounts/login/")
    page.locator("input[name=username]").fill(owner.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))
    watch.collect()

    def preview_loaded() -> None:
        expect(page.get_by_test_id("preview-table")).to_be_visible()

    def swap_a_styled_element() -> None:
        """An element that holds a `style` attribute (set through the CSSOM, which the policy
        allows, as browsers and extensions do) is swapped by htmx: settling the swap must not
        copy that attribute across, an inline style the policy refuses."""
        with page.expect_response(re.compile(r"/datasets/\?page=1$")):
            page.evaluate(
                """() => {
                  const table = document.getElementById("dataset-table");
                  table.style.color = "red";
                  table.style.color = "";
                  const job = { kind: "dataset.process", status: "succeeded" };
                  document.body.dispatchEvent(new CustomEvent("mlmanager:job", { detail: job }));
                }"""
            )

    def open_leaderboard() -> None:
        page.locator("summary", has_text="Leaderboard").click()
        expect(page.get_by_test_id("leaderboard")).to_be_visible()

    def open_leaderboard_and_set_a_threshold() -> None:
        open_leaderboard()
        expect(page.get_by_test_id("roc-curve")).to_be_visible()
        page.get_by_test_id("threshold-input").fill("0.3")
        page.get_by_test_id("threshold-save").click()  # an htmx swap of the model page's body
        expect(page.get_by_test_id("threshold-value")).to_be_visible()

    def predict_a_batch() -> None:
        page.locator("select[name=dataset]").select_option(str(dataset_id))
        page.get_by_test_id("batch-button").click()
        # Finished either way: the page's policy is what is checked here, not the batch.
        finished = re.compile(r"^(Succeeded|Failed)$")
        expect(page.get_by_test_id("batch-status")).to_have_text(finished, timeout=30_000)

    def open_an_operation() -> None:
        """Swagger UI draws an operation's parameters and example answers when it is opened."""
        # One near the top: Swagger UI draws a long list in chunks as the page scrolls.
        operation = page.locator(".opblock-summary-path", has_text="/api/v1/alert_rules/").first
        operation.click()
        page.get_by_role("button", name="Try it out").first.click()
        expect(page.locator(".opblock-body .responses-wrapper").first).to_be_visible()

    watch.visit("/datasets/", swap_a_styled_element)
    watch.visit(f"/datasets/{dataset_id}/", preview_loaded)
    watch.visit("/models/")
    watch.visit(f"/models/new/?dataset={dataset_id}")
    watch.visit(f"/models/new/?dataset={dataset_id}&outputs=churned")
    watch.visit(f"/models/{machine.pk}/", open_leaderboard_and_set_a_threshold)
    expect(page.get_by_test_id("confusion-matrix")).to_be_visible()
    expect(page.get_by_test_id("baseline-warning")).to_be_visible()
    watch.visit(f"/models/{regression.pk}/")
    expect(page.get_by_test_id("scatter")).to_be_visible()
    expect(page.get_by_test_id("residuals")).to_be_visible()
    watch.visit(f"/models/{machine.pk}/predict/", lambda: _predict(page))
    watch.visit(f"/models/{machine.pk}/predictions/", lambda: _give_feedback(page))
    watch.visit(f"/models/{machine.pk}/batches/", predict_a_batch)
    watch.visit("/jobs/")
    watch.visit(f"/jobs/{job.pk}/")
    watch.visit(f"/accounts/teams/{team_id}/")
    watch.visit("/accounts/teams/new/")
    watch.visit("/accounts/tokens/")
    watch.visit("/accounts/profile/")
    watch.visit("/accounts/password/change/")
    watch.visit(reverse("accounts:invitation_accept", kwargs={"token": invitation.token}))
    watch.visit("/api/docs/", open_an_operation)
    watch.visit("/admin/")
    watch.visit("/admin/jobs/job/")
    watch.visit(f"/admin/jobs/job/{job.pk}/change/")
    watch.visit("/ops/platform-log/")  # the staff's platform log
    # Billing, the marketplace and consulting (issue 17), with billing off as `make run` has it.
    watch.visit("/billing/")
    watch.visit("/billing/ledger/")
    watch.visit("/billing/statements/")
    watch.visit(f"/billing/statements/{timezone.now():%Y-%m}/")
    watch.visit("/billing/usage/")
    watch.visit("/billing/staff/")
    watch.visit("/marketplace/")
    watch.visit("/marketplace/mine/")
    watch.visit(f"/marketplace/publish/{machine.pk}/")
    watch.visit("/consulting/")
    watch.visit("/consulting/new/")
    watch.visit(NOT_FOUND)

    assert watch.found == {}
    missing = [path for path, header in watch.headers.items() if "default-src 'self'" not in header]
    assert missing == []
    # Expected: the not-found page's own status, and the browser asking for /favicon.ico on the
    # admin's pages, which name no icon.
    expected = (NOT_FOUND, "/favicon.ico")
    assert [m for m in browser_errors.messages if not any(path in m for path in expected)] == []
