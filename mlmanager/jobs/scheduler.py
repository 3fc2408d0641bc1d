"""Periodic work, once per time slot however many schedulers run.

The apps register their periodic tasks (core.registries.periodic_tasks, in their
AppConfig.ready(); the jobs app registers the reaper). Each has an interval; time is cut into
slots of that length. Before running a slot, a scheduler inserts a `PeriodicSlot(name, slot)`
row; the unique constraint lets exactly one insert succeed, and only that scheduler runs the
slot. So two schedulers (a second one started for availability, or by mistake) never run a task
twice in a slot, on SQLite or PostgreSQL, with either task backend. A slot whose run fails is
logged, not retried: the next slot runs the task again (periodic work must be idempotent).

The work runs in the scheduler process itself: it is a few queries, and it must not wait behind
long jobs in a worker's queue (the reaper is what rescues those).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from mlmanager.core.registries import PeriodicTask, periodic_tasks
from mlmanager.jobs.models import PeriodicSlot
from mlmanager.jobs.services import worker_name

logger = logging.getLogger(__name__)

# Slot rows older than this are deleted (they only need to outlive clock skew between hosts).
SLOT_RETENTION = timedelta(days=1)


def claim_slot(name: str, slot: int, claimed_by: str) -> bool:
    try:
        with transaction.atomic():
            PeriodicSlot.objects.create(name=name, slot=slot, claimed_by=claimed_by)
    except IntegrityError:
        return False
    return True


def run_due(
    tasks: Iterable[PeriodicTask], *, now: float | None = None, owner: str | None = None
) -> int:
    """Run each task whose current slot nobody has claimed yet; returns how many ran."""
    now = time.time() if now is None else now
    owner = owner or worker_name()
    ran = 0
    for periodic in tasks:
        slot = int(now // periodic.interval_s())
        if not claim_slot(periodic.name, slot, owner):
            continue
        try:
            periodic.run()
            ran += 1
        except Exception:
            logger.exception("periodic task %s failed in slot %s", periodic.name, slot)
    return ran


def run_forever(stop: threading.Event, *, tick_s: float = 1.0) -> None:
    logger.info("scheduler %s started", worker_name())
    last_cleanup = 0.0
    while not stop.is_set():
        try:
            run_due(periodic_tasks)
            if time.monotonic() - last_cleanup > 3600:
                PeriodicSlot.objects.filter(claimed_at__lt=timezone.now() - SLOT_RETENTION).delete()
                last_cleanup = time.monotonic()
        except Exception:  # the database restarting: try again next tick
            logger.exception("scheduler tick failed")
            connections.close_all()
        stop.wait(tick_s)
    connections.close_all()
