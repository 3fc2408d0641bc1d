"""A real server and a real background worker for tests that talk HTTP: pytest-django's
`live_server` (a threaded WSGI server in this process, with transactional database access) and
django-tasks-db's own worker loop in a background thread, exactly as `manage.py worker` runs it.

Used by the browser tests and the API client tests: a conftest imports the fixtures
(`from mlmanager.core.tests.live import live_server, worker`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django.test.utils import override_settings
from django_tasks_db.management.commands.db_worker import Worker
from pytest_django.live_server_helper import LiveServer


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
            worker_id="live-test",
            excluded_queue_names=[],
        )
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="live-test-worker", daemon=True)

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
