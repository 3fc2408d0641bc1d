"""The prediction log, written in bulk off the request path.

A request hands over one `AnsweredRows` (references to what it already has, no copies, no
model instances: building 10 000 Django objects would cost the request ~0.2 s). Answers are
added to an in-process buffer and a background thread writes the buffer every
MLMANAGER_PREDICTION_LOG_FLUSH_S seconds with one bulk INSERT, so logging costs a request
microseconds, and a crash loses at most that last interval of log, never an answer. At exit
(a worker stopped or restarted) the buffer is written. With an interval of 0 each request
writes its own entries (tests do this: the log is then visible at once).
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from mlmanager.predictions.models import Prediction

logger = logging.getLogger(__name__)

BULK_SIZE = 1000


@dataclasses.dataclass(frozen=True)
class AnsweredRows:
    """The rows one request answered, as the log needs them."""

    ids: list[str]  # UUIDs as text
    row: Callable[[int], dict[str, Any]]  # the inputs of row i, as sent
    answers: list[dict[str, Any]]
    team_id: int
    machine_id: int
    version_id: int
    version_number: int
    source: str
    user_id: int | None
    token_id: int | None
    latency_ms: float
    created_at: dt.datetime

    def entries(self) -> list[Prediction]:
        return [
            Prediction(
                id=prediction_id,
                team_id=self.team_id,
                machine_id=self.machine_id,
                version_id=self.version_id,
                version_number=self.version_number,
                source=self.source,
                user_id=self.user_id,
                token_id=self.token_id,
                inputs=self.row(index),
                outputs=answer,
                latency_ms=self.latency_ms,
                created_at=self.created_at,
                updated_at=self.created_at,
            )
            for index, (prediction_id, answer) in enumerate(
                zip(self.ids, self.answers, strict=True)
            )
        ]


class PredictionLog:
    def __init__(self) -> None:
        self._pending: list[AnsweredRows] = []
        self._lock = threading.Lock()
        self._writer_pid: int | None = None

    def record(self, answered: AnsweredRows) -> None:
        if settings.MLMANAGER_PREDICTION_LOG_FLUSH_S <= 0:
            self._write([answered])
            return
        with self._lock:
            self._pending.append(answered)
            if self._writer_pid != os.getpid():  # first use in this (possibly forked) process
                self._writer_pid = os.getpid()
                threading.Thread(target=self._run, name="prediction-log", daemon=True).start()
                atexit.register(self.flush)

    def flush(self) -> int:
        """Write what is buffered now; returns how many entries that was."""
        with self._lock:
            pending, self._pending = self._pending, []
        return self._write(pending)

    def _run(self) -> None:
        # Ends when the interval is set to 0 (tests switch modes); the next record restarts it.
        while (interval := settings.MLMANAGER_PREDICTION_LOG_FLUSH_S) > 0:
            time.sleep(interval)
            close_old_connections()
            self.flush()
        with self._lock:
            self._writer_pid = None
        self.flush()

    def _write(self, batches: list[AnsweredRows]) -> int:
        count = sum(len(answered.ids) for answered in batches)
        if not count:
            return 0
        try:
            entries = [entry for answered in batches for entry in answered.entries()]
            Prediction.objects.bulk_create(entries, batch_size=BULK_SIZE)
        except Exception:
            # The answers were given; losing their log entries is logged, never raised.
            logger.exception("could not write %s prediction log entries", count)
        return count


prediction_log = PredictionLog()
