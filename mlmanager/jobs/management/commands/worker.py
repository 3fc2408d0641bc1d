"""`manage.py worker`: runs queued jobs on the configured backend.

- MLMANAGER_TASKS=database (the embedded default): django-tasks-db's worker loop; with
  `--concurrency N`, N such processes.
- MLMANAGER_TASKS=celery: a Celery worker on the same task code, with a thread pool (training
  starts processes of its own, which Celery's prefork children, being daemonic, cannot).

Either way the process registers as a Worker (jobs.workers) and heartbeats; `gpu` is dropped
from the queues on a machine without a GPU.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mlmanager.jobs.workers import (
    WorkerPresence,
    detect_gpus,
    run_startup_hooks,
    usable_queues,
)


class Command(BaseCommand):
    help = "Run background jobs (dataset processing, training, batch predictions)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queues", default="default,training", help="Comma-separated queues to take."
        )
        parser.add_argument(
            "--concurrency", type=int, default=1, help="Jobs run at the same time (default 1)."
        )
        parser.add_argument(
            "--interval", type=float, default=0.5, help="Database queue: seconds between polls."
        )
        parser.add_argument(
            "--batch", action="store_true", help="Database queue: exit once the queue is empty."
        )

    def handle(
        self,
        *args: Any,
        queues: str,
        concurrency: int,
        interval: float,
        batch: bool,
        **options: Any,
    ) -> None:
        if concurrency < 1:
            raise CommandError("--concurrency must be 1 or more")
        gpus = detect_gpus()
        try:
            taken = usable_queues([q.strip() for q in queues.split(",") if q.strip()], gpus)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if not taken:
            raise CommandError("no queue left to take (the gpu queue needs a GPU)")
        if settings.MLMANAGER_TASKS == "celery":
            self._celery(taken, concurrency)
        elif concurrency > 1:
            self._several(concurrency, taken, interval, batch)
        else:
            self._database(taken, gpus, interval, batch, options.get("verbosity", 1))

    def _database(
        self, queues: list[str], gpus: list, interval: float, batch: bool, verbosity: int
    ) -> None:
        run_startup_hooks(queues)
        presence = WorkerPresence(backend="database", queues=queues, gpus=gpus).start()
        arguments = ["--queue-name", ",".join(queues), "--interval", str(interval)]
        arguments.append("--no-startup-delay")
        if batch:
            arguments.append("--batch")
        try:
            # reload=False: the autoreloader would kill a job mid-way whenever a file changes.
            call_command("db_worker", *arguments, reload=False, verbosity=verbosity)
        finally:
            presence.stop()

    def _several(self, concurrency: int, queues: list[str], interval: float, batch: bool) -> None:
        """N single-job worker processes (the database queue's loop runs one job at a time)."""
        command = [sys.executable, "-m", "mlmanager.cli", "worker", "--queues", ",".join(queues)]
        command += ["--interval", str(interval), *(["--batch"] if batch else [])]
        children = [subprocess.Popen(command) for _ in range(concurrency)]  # noqa: S603

        def stop(*_: object) -> None:
            for child in children:
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGTERM, stop)
        try:
            for child in children:
                child.wait()
        except KeyboardInterrupt:
            stop()
            for child in children:
                child.wait()

    def _celery(self, queues: list[str], concurrency: int) -> None:
        environment = {**os.environ, "MLMANAGER_CELERY_WORKER": "1"}
        command = [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "mlmanager.jobs.celery_app",
            "worker",
            "--queues",
            ",".join(queues),
            "--concurrency",
            str(concurrency),
            "--pool",
            "threads",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            # A node name of its own (the pid survives execve): two workers on one host named
            # alike share RabbitMQ's exclusive remote-control queue, and the second one fails.
            "--hostname",
            f"mlmanager-{os.getpid()}@{socket.gethostname()}",
        ]
        os.execve(sys.executable, command, environment)  # noqa: S606 - a fixed command
