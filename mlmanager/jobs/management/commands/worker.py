"""`manage.py worker`: runs queued jobs. On the embedded default it is django-tasks-db's worker."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from mlmanager.jobs.services import jobs_fail_stale


class Command(BaseCommand):
    help = "Run background jobs (dataset processing, training, batch predictions)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queues", default="default,training", help="Comma-separated queues to take."
        )
        parser.add_argument(
            "--interval", type=float, default=0.5, help="Seconds between polls when idle."
        )
        parser.add_argument(
            "--batch", action="store_true", help="Exit once the queue is empty (tests, cron)."
        )

    def handle(self, *args: Any, queues: str, interval: float, batch: bool, **options: Any) -> None:
        # A worker killed with `kill -9` left its jobs "running"; fail them before taking new work.
        jobs_fail_stale()
        if "training" in queues.split(","):
            # Start the training fork server now (it imports the ML libraries, ~3 s), so the
            # first run does not spend its time budget on that.
            from mlmanager.engine.training.process import warm_up

            warm_up()
        arguments = ["--queue-name", queues, "--interval", str(interval), "--no-startup-delay"]
        if batch:
            arguments.append("--batch")
        # reload=False: the autoreloader would kill a job mid-way whenever a file changes.
        call_command("db_worker", *arguments, reload=False, verbosity=options.get("verbosity", 1))
