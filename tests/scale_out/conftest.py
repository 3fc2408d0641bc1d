"""Real worker processes on real brokers, for the scale-out tests (PostgreSQL only).

Each test runs `mlmanager worker` (and `mlmanager scheduler`) as separate processes against the
test database, with MLMANAGER_TASKS=celery over Redis or RabbitMQ, exactly as on separate
machines; the test process enqueues through the same Celery backend. The tests commit for real
(transactional), so the workers see the rows. Heartbeats and the reaper run on short intervals
here (a second or a few) so failures are detected quickly.

These tests need PostgreSQL, Redis and RabbitMQ (`.ci/run` starts them); `make test-postgres`
runs them and `make test-sqlite` deselects them (marker `scale_out`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from mlmanager.jobs.models import Job, Worker
from mlmanager.machines.tests.conftest import make_dataset  # noqa: F401 - a fixture

REPOSITORY = Path(__file__).resolve().parents[2]
# Brokers of their own (a Redis database number, a RabbitMQ virtual host), so the tests never
# touch the queues of anything else using these servers.
RABBITMQ_VHOST = "mlmanager-tests"
BROKERS = {
    "redis": "redis://127.0.0.1:6379/7",
    "rabbitmq": f"amqp://guest:guest@127.0.0.1:5672/{RABBITMQ_VHOST}",
}
HEARTBEAT_S = 1.0
STALE_S = 4.0
REQUEUE_AFTER_S = 3.0
STARTUP_TIMEOUT_S = 120.0  # two workers importing the ML libraries on two busy cores


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Processes:
    """Worker and scheduler processes of one test; stopped (killed if need be) at teardown."""

    environment: dict[str, str]
    logs: Path
    started: list[subprocess.Popen] = field(default_factory=list)

    def _start(self, name: str, arguments: list[str], **extra: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}-{len(self.started)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "mlmanager.cli", *arguments],
            cwd=REPOSITORY,
            env={**self.environment, **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 reaches its children
        )
        self.started.append(process)
        return process

    def worker(self, queues: str = "default,training", concurrency: int = 1) -> subprocess.Popen:
        before = set(Worker.objects.filter(stopped_at=None).values_list("name", flat=True))
        process = self._start(
            "worker", ["worker", "--queues", queues, "--concurrency", str(concurrency)]
        )
        try:
            wait_for(
                lambda: (
                    Worker.objects.filter(stopped_at=None, pid=process.pid)
                    .exclude(name__in=before)
                    .exists()
                ),
                STARTUP_TIMEOUT_S,
                "the worker to register",
            )
        except AssertionError as error:
            raise AssertionError(f"{error}:\n{self.log_text()}") from None
        return process

    def scheduler(self) -> subprocess.Popen:
        return self._start("scheduler", ["scheduler"])

    def kill_9(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.logs.iterdir()))


def _database_url() -> str:
    database = connection.settings_dict
    assert database["ENGINE"] == "django.db.backends.postgresql", "scale-out tests need PostgreSQL"
    user, host, port = database["USER"] or "postgres", database["HOST"], database["PORT"] or 5432
    return f"postgres://{user}@{host}:{port}/{database['NAME']}"


def purge(broker_url: str) -> None:
    """Empty the project's queues on the broker, so no test sees another's messages."""
    from mlmanager.jobs.celery_app import app

    with app.connection_for_write(broker_url) as broker:
        channel = broker.default_channel
        for queue in django_settings.TASK_QUEUES:
            try:
                channel.queue_purge(queue)
            except Exception:
                channel = broker.channel()


@pytest.fixture(scope="session")
def _rabbitmq_vhost() -> None:
    """The tests' virtual host on the local RabbitMQ (created once; the guest user may use it)."""
    listed = subprocess.run(
        ["rabbitmqctl", "list_vhosts", "--quiet"],
        check=True,
        capture_output=True,
        text=True,
    )
    if RABBITMQ_VHOST not in listed.stdout.split():
        subprocess.run(["rabbitmqctl", "add_vhost", RABBITMQ_VHOST], check=True)
    subprocess.run(
        ["rabbitmqctl", "set_permissions", "-p", RABBITMQ_VHOST, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )


@pytest.fixture(params=sorted(BROKERS))
def broker_url(request: pytest.FixtureRequest, _rabbitmq_vhost: None) -> str:
    return BROKERS[request.param]


@pytest.fixture
def celery(
    broker_url: str, settings: Any, tmp_path: Path, transactional_db: None
) -> Iterator[Processes]:
    """This process enqueues on Celery over `broker_url`; start workers with `.worker()`."""
    settings.MLMANAGER_TASKS = "celery"
    settings.CELERY_BROKER_URL = broker_url
    settings.TASKS = {
        "default": {
            "BACKEND": "mlmanager.jobs.celery_backend.CeleryBackend",
            "QUEUES": settings.TASK_QUEUES,
        }
    }
    settings.MLMANAGER_JOB_HEARTBEAT_S = HEARTBEAT_S
    settings.MLMANAGER_JOB_STALE_S = STALE_S
    settings.MLMANAGER_JOB_REQUEUE_AFTER_S = REQUEUE_AFTER_S
    purge(broker_url)
    logs = tmp_path / "logs"
    logs.mkdir()
    environment = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "MLMANAGER_DATA_DIR": str(tmp_path),  # MEDIA_ROOT is tmp_path/media here too
        "MLMANAGER_SECRET_KEY": settings.SECRET_KEY,
        "MLMANAGER_TASKS": "celery",
        "CELERY_BROKER_URL": broker_url,
        "MLMANAGER_JOB_HEARTBEAT_S": str(HEARTBEAT_S),
        "MLMANAGER_JOB_STALE_S": str(STALE_S),
        "MLMANAGER_JOB_REQUEUE_AFTER_S": str(REQUEUE_AFTER_S),
        "MLMANAGER_REAPER_INTERVAL_S": "1",
        "MLMANAGER_TRAINING_MAX_CANDIDATES": "2",
        "OMP_NUM_THREADS": "1",
    }
    assert Path(settings.MEDIA_ROOT) == tmp_path / "media"
    processes = Processes(environment, logs)
    try:
        yield processes
    finally:
        processes.stop_all()
        purge(broker_url)


def finished(job_ids: list[int]) -> bool:
    return Job.objects.filter(pk__in=job_ids, status__in=Job.FINISHED_STATUSES).count() == len(
        job_ids
    )
