"""Fixtures for the browser tests: a real Chromium (Playwright) and a real background worker.

The web side is pytest-django's `live_server` (a threaded WSGI server in this process, with
transactional database access). Jobs the pages enqueue are run by django-tasks-db's own worker
loop in a background thread, exactly as `manage.py worker` runs them.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connections
from django.test.utils import override_settings
from django_tasks_db.management.commands.db_worker import Worker
from playwright.sync_api import ConsoleMessage, Error, Page, Response, sync_playwright
from pytest_django.live_server_helper import LiveServer

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


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """pytest-django's `live_server`, started with a MEDIA_URL Django's server thread can use.

    The app sets MEDIA_URL = None (media is served only through views that check access).
    Django's LiveServerThread wraps the app in a `_MediaFilesHandler` that does
    `urlparse(settings.MEDIA_URL)`; with None every request fails with a TypeError (500).
    While the server builds its handlers, MEDIA_URL is a URL on another host: the handler
    then serves nothing (it ignores requests when its base URL names a host), so media stays
    reachable only through the app's views, as in production. The setting is restored as soon
    as the server is up. Same address logic and helper class as pytest-django's own fixture.
    """
    address = (
        request.config.getvalue("liveserver")
        or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    with override_settings(MEDIA_URL="http://media.invalid/"):
        server = LiveServer(address)
    yield server
    server.stop()


class BackgroundWorker:
    """The real job worker, polling the queues in a thread until the test ends.

    It is started explicitly (`start()`) so a test can first look at a page while its job is
    still queued; teardown stops it gracefully (the loop checks `running` between jobs) and
    re-raises anything that escaped the loop.
    """

    def __init__(self) -> None:
        self.worker = Worker(
            queue_names=["default", "training"],
            interval=0.2,
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id="browser-test",
            excluded_queue_names=[],
        )
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="browser-test-worker", daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as error:  # reported by stop(), in the test's thread
            self.errors.append(error)
        finally:
            # This thread's own connections: left open they would block the database
            # flush/teardown (PostgreSQL) or leak into the next test.
            connections.close_all()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        self.worker.running = False
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the background worker did not stop within 60 s"


@pytest.fixture
def worker(live_server: Any, transactional_db: None) -> Iterator[BackgroundWorker]:
    background = BackgroundWorker()
    yield background
    background.stop()
    if background.errors:
        raise background.errors[0]


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
    live_server: Any, browser_errors: BrowserErrors, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Page]:
    """A fresh Chromium page (Debian's /usr/bin/chromium; Playwright's download is not used).

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
