"""In a real browser: a job's page and a model's page follow their jobs over the live socket,
without reloading and without polling; with no live server a page still follows its job, by its
slow fallback poll. The jobs are driven from the test, as a worker would write them."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
from playwright.sync_api import Page, Request, expect

from mlmanager.core.tests.factories import PASSWORD
from mlmanager.jobs import services
from mlmanager.jobs.models import Job
from mlmanager.live import context_processors
from mlmanager.live.tests.server import LiveSocketServer, live_socket_server
from mlmanager.machines.models import Machine, TrainingRun
from tests.browser.conftest import BrowserErrors

__all__ = ["live_socket_server"]  # a fixture

FALLBACK_POLL_S = 1  # the partials' poll while no socket is open, shortened for the test


@pytest.fixture(autouse=True)
def _short_fallback_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context_processors, "FALLBACK_POLL", f"{FALLBACK_POLL_S}s")


def _log_in(page: Page, user: Any) -> None:
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))


def _queued_job(user: Any) -> Job:
    return services.job_create(
        team=user.current_team,
        created_by=user,
        kind="dataset.process",
        description="Load customers",
    )


BELL = "/monitoring/notifications/bell/"


class PartialRequests:
    """htmx's requests of a page (a partial re-fetching itself): made, and answered."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.made: list[str] = []
        self.answered: list[str] = []
        page.on("request", lambda request: self._note(request, self.made))
        page.on("requestfinished", lambda request: self._note(request, self.answered))

    @staticmethod
    def _note(request: Request, where: list[str]) -> None:
        # The top bar's notification bell loads its count on its own: not the page's partial.
        if request.headers.get("hx-request") == "true" and BELL not in request.url:
            where.append(request.url)

    def wait_answered(self, count: int, timeout_ms: int = 10_000) -> None:
        waited = 0
        while len(self.answered) < count:  # the listeners run while Playwright waits
            assert waited < timeout_ms, f"only {len(self.answered)} of {count} requests answered"
            self.page.wait_for_timeout(50)
            waited += 50


@pytest.mark.browser
def test_job_page_follows_the_job_over_the_socket(
    page: Page,
    owner: Any,
    live_socket_server: LiveSocketServer,
    settings: Any,
    browser_errors: BrowserErrors,
) -> None:
    settings.MLMANAGER_LIVE_URL = live_socket_server.url
    job = _queued_job(owner)
    _log_in(page, owner)
    requests = PartialRequests(page)

    page.goto(f"/jobs/{job.pk}/")
    page.evaluate("window.__noReload = 1")  # a reload or navigation would lose it
    status = page.get_by_test_id("job-status")
    expect(status).to_have_text("Queued")
    # A function, not an expression: Playwright polls an expression with eval() in the page,
    # which the Content-Security-Policy refuses.
    page.wait_for_function("() => window.mlmanagerLiveConnected === true")
    # Connected, the page re-fetches once (the resync for what changed before), then waits
    # for events: over several fallback intervals, it asks nothing.
    requests.wait_answered(1)
    settled = len(requests.made)
    page.wait_for_timeout(2500 * FALLBACK_POLL_S)
    assert len(requests.made) == settled, f"it polled while connected: {requests.made[settled:]}"

    # A worker's progress (here written straight to the database) reaches the page.
    services.job_claim(job_id=job.pk, worker="browser-test:1")
    services.job_report_progress(job_id=job.pk, progress=40, message="Reading the file")
    services.job_append_log(job_id=job.pk, line="1,000 rows read")
    expect(status).to_have_text("Running")
    expect(page.locator("#job progress")).to_have_attribute("value", "40")
    expect(page.get_by_test_id("job-message")).to_have_text("Reading the file")
    expect(page.locator("#job pre.log")).to_contain_text("1,000 rows read")

    services.job_succeed(job_id=job.pk, message="Loaded")
    expect(status).to_have_text("Succeeded")
    expect(page.locator("#job progress")).to_have_count(0)

    assert page.evaluate("window.__noReload") == 1, "the page reloaded"
    assert page.evaluate("window.mlmanagerLiveConnected") is True
    assert all(url.endswith(f"/jobs/{job.pk}/") for url in requests.made)
    assert browser_errors.messages == []


def _training(user: Any, name: str) -> tuple[Machine, Job]:
    machine = Machine.objects.create(
        team=user.current_team,
        created_by=user,
        name=name,
        time_budget_s=60,
        storage_dir=f"machines/browser-live-{name}",
    )
    job = services.job_create(team=user.current_team, created_by=user, kind="machine.train")
    run = TrainingRun.objects.create(
        team=user.current_team, machine=machine, job=job, time_budget_s=60
    )
    # As training_start does: the job's subject is how its live events find the model's page.
    services.job_set_subject(job=job, subject=run)
    return machine, job


@pytest.mark.browser
def test_model_page_follows_its_own_training_only(
    page: Page,
    owner: Any,
    live_socket_server: LiveSocketServer,
    settings: Any,
    browser_errors: BrowserErrors,
) -> None:
    settings.MLMANAGER_LIVE_URL = live_socket_server.url
    machine, job = _training(owner, "churn")
    _other_machine, other_job = _training(owner, "spend")
    _log_in(page, owner)
    requests = PartialRequests(page)

    page.goto(f"/models/{machine.pk}/")
    page.evaluate("window.__noReload = 1")
    page.evaluate(
        "window.__jobEvents = []; document.body.addEventListener("
        "'mlmanager:job', (event) => window.__jobEvents.push(event.detail.id))"
    )
    page.wait_for_function("() => window.mlmanagerLiveConnected === true")
    requests.wait_answered(1)  # the resync
    settled = len(requests.made)

    # The other model's training: its events reach the page, whose filter ignores them.
    services.job_claim(job_id=other_job.pk, worker="browser-test:1")
    services.job_report_progress(job_id=other_job.pk, progress=70)
    page.wait_for_function(f"() => window.__jobEvents.includes({other_job.pk})")
    page.wait_for_timeout(300)
    assert len(requests.made) == settled, f"re-fetched for another model: {requests.made}"

    services.job_claim(job_id=job.pk, worker="browser-test:1")
    services.job_report_progress(job_id=job.pk, progress=40, message="Trying lightgbm")
    expect(page.get_by_test_id("run-progress")).to_have_text("40 % of the time budget used")
    expect(page.get_by_test_id("active-run")).to_contain_text("Trying lightgbm")
    services.job_fail(job_id=job.pk, error="Out of candidates")
    expect(page.get_by_test_id("run-error")).to_have_text("Out of candidates")
    expect(page.get_by_test_id("active-run")).to_have_count(0)

    assert page.evaluate("window.__noReload") == 1, "the page reloaded"
    assert browser_errors.messages == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # free again once closed: nothing listens there


@pytest.mark.browser
def test_without_a_live_server_the_page_falls_back_to_polling(
    page: Page, owner: Any, settings: Any, browser_errors: BrowserErrors
) -> None:
    settings.MLMANAGER_LIVE_URL = f"http://localhost:{_closed_port()}"
    job = _queued_job(owner)
    _log_in(page, owner)

    page.goto(f"/jobs/{job.pk}/")
    page.evaluate("window.__noReload = 1")
    services.job_claim(job_id=job.pk, worker="browser-test:1")
    services.job_report_progress(job_id=job.pk, progress=60, message="Profiling")

    expect(page.get_by_test_id("job-status")).to_have_text("Running")
    expect(page.get_by_test_id("job-message")).to_have_text("Profiling")
    assert page.evaluate("window.__noReload") == 1, "the page reloaded"
    assert page.evaluate("window.mlmanagerLiveConnected") is False
    # The browser reports each failed socket attempt; nothing else may go wrong.
    assert [m for m in browser_errors.messages if "WebSocket connection" not in m] == []
