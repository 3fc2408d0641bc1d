"""`manage.py scheduler`: runs periodic work (the job reaper) once per slot, until stopped."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from mlmanager.jobs.scheduler import run_forever


class Command(BaseCommand):
    help = "Run periodic work (the job reaper). Safe to run on several machines at once."

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        run_forever(stop)
