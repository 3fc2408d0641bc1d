"""Fixtures for the browser tests: a real Chromium (Playwright) and a real background worker.

The web side is pytest-django's `live_server` (a threaded WSGI server in this process, with
transactional database access). Jobs the pages enqueue are run by django-tasks-db's own worker
loop in a background thread, exactly as `manage.py worker` runs them. Both fixtures live in
mlmanager/core/tests/live.py, shared with the API client tests.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.mail import EmailMessage
from playwright.sync_api import ConsoleMessage, Error, Page, Response, expect, sync_playwright

from mlmanager.core.tests.live import BackgroundWorker, live_server, worker
from mlmanager.live.tests.server import LiveSocketServer, live_socket_server

# Fixtures, and the types of two of them.
__all__ = ["BackgroundWorker", "LiveSocketServer", "live_server", "live_socket_server", "worker"]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class BrowserErrors:
    """Everything the page reported as going wrong: uncaught exceptions, console errors and
    HTTP error responses (any request of the page, including htmx's and static files)."""

    messages: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("pageerror", self._page_error)
        page.on("console", self._console)
        page.on("response", self._response)

    def _page_error(self, error: Error) -> None:
        self.messages.append(f"page error: {error}")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.messages.append(f"console error: {message.text} ({message.location})")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.messages.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )


@pytest.fixture
def browser_errors() -> BrowserErrors:
    return BrowserErrors()


@pytest.fixture
def page(
    live_server: Any,
    live_socket_server: LiveSocketServer,
    browser_errors: BrowserErrors,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> Iterator[Page]:
    """A fresh Chromium page (Debian's /usr/bin/chromium; Playwright's download is not used).

    Pages open their live-update socket on `live_socket_server` (the ASGI app in a thread), as
    they would on `mlmanager live`.

    Playwright's sync API keeps an asyncio event loop registered as running in this (the main)
    thread, and Django refuses synchronous database calls from such a thread
    (SynchronousOnlyOperation). The test itself and pytest-django's teardown (database flush)
    run here, so the check is switched off for browser tests only; the server and worker
    threads have no event loop and are unaffected.
    """
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "Chromium is not installed: the browser tests need Debian's `chromium` "
            "(run scripts/ensure-chromium.sh, which `make test` does first).",
            pytrace=False,
        )
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.MLMANAGER_LIVE_URL = live_socket_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(base_url=live_server.url, locale="en-US")
            page = context.new_page()
            page.set_default_timeout(10_000)
            browser_errors.watch(page)
            yield page
            context.close()
        finally:
            browser.close()


def sign_up(
    page: Page, site_url: str, outbox: list[EmailMessage], *, name: str, email: str
) -> None:
    """Sign up through the form, open the activation link the e-mail holds and activate: the
    new user is signed in, on the datasets page (`site_url` is MLMANAGER_SITE_URL)."""
    page.goto("/accounts/signup/")
    page.locator("input[name=name]").fill(name)
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill("violet-harbour-lantern-42")
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/sent/$"))
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    [message] = outbox
    assert message.to == [email]
    [link] = re.findall(rf"{re.escape(site_url)}/accounts/activate/\S+", message.body)
    page.goto(link)
    page.get_by_role("button", name="Activate").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))
