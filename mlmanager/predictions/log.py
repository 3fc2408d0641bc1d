"""The prediction log, written in bulk off the request path.

A request hands over one `AnsweredRows` (references to what it already has, no copies, no
model instances: building 10 000 Django objects would cost the request ~0.2 s). Answers are
added to an in-process buffer and a background thread writes the buffer every
MLMANAGER_PREDICTION_LOG_FLUSH_S seconds, so logging costs a request microseconds, and a crash
loses at most that last interval of log, never an answer. At exit (a worker stopped or
restarted) the buffer is written. With an interval of 0 each request writes its own entries
(tests do this: the log is then visible at once).

The writer shares the web process (and its GIL) with the requests, so it writes as plain rows:
one INSERT statement prepared once, run with `executemany`, the JSON columns encoded by orjson.
Measured per 1 000 entries: `bulk_create` spent ~45 ms in Python (a model instance and a
prepared value per field) on top of the database's own work; this spends ~3 ms, so a server
answering 1 000-row requests keeps up with its log.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.db import DataError, IntegrityError, close_old_connections, connection, transaction

from mlmanager.predictions.models import Prediction

logger = logging.getLogger(__name__)

# The fields one log entry sets, in the INSERT's order; feedback fields stay empty.
FIELDS = (
    "id",
    "team",
    "machine",
    "version",
    "version_number",
    "source",
    "user",
    "token",
    "inputs",
    "outputs",
    "latency_ms",
    "by_rules",
    "created_at",
    "updated_at",
)
# Inputs as sent (JSON already; the form's are text) and answers (numbers, labels: a numpy
# scalar label included). NaN becomes null; anything else orjson cannot encode is stored as its
# text rather than losing the whole buffered write.
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


# A buffered write can end a moment after its interval (a large buffer, a busy database).
WRITE_MARGIN_S = 0.5


def seconds_until_written(prediction_id: uuid.UUID) -> float:
    """How long until the entry of this prediction, answered by any web process, is surely in
    the database; 0 when it would be by now, or cannot be told.

    Prediction ids are version-7 UUIDs: they carry the millisecond they were made (see
    services._new_ids). Feedback sent right after an answer may reach another web process than
    the one holding the entry in its buffer; that one writes it within the interval, and the
    feedback is refused until then with this time to retry (selectors.access_prediction).
    """
    interval = settings.MLMANAGER_PREDICTION_LOG_FLUSH_S
    if interval <= 0 or prediction_id.version != 7:
        return 0.0
    window = interval + WRITE_MARGIN_S
    remaining = (prediction_id.int >> 80) / 1000 + window - time.time()
    return remaining if 0 < remaining <= window else 0.0  # never for an id from the future


@dataclasses.dataclass(frozen=True)
class AnsweredRows:
    """The rows one request answered, as the log needs them."""

    ids: list[str]  # UUIDs as text
    row: Callable[[int], dict[str, Any]]  # the inputs of row i, as sent
    answers: list[dict[str, Any]]
    team_id: int
    machine_id: int
    version_id: int | None  # None: answered by the experimenter's rules
    version_number: int
    source: str
    user_id: int | None
    token_id: int | None
    latency_ms: float
    created_at: dt.datetime
    by_rules: bool = False

    def rows(self, *, native_uuid: bool) -> list[tuple[Any, ...]]:
        """One tuple of column values per entry, in the order of FIELDS, ready for the
        database driver (the backend's UUID and date-time forms)."""
        created = connection.ops.adapt_datetimefield_value(self.created_at)
        shared = (self.team_id, self.machine_id, self.version_id, self.version_number)
        caller = (self.source, self.user_id, self.token_id)
        return [
            (
                str(prediction_id) if native_uuid else str(prediction_id).replace("-", ""),
                *shared,
                *caller,
                _json(self.row(index)),
                _json(answer),
                self.latency_ms,
                self.by_rules,
                created,
                created,
            )
            for index, (prediction_id, answer) in enumerate(
                zip(self.ids, self.answers, strict=True)
            )
        ]


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str, option=_JSON_OPTIONS).decode()


def insert_entries(batches: list[AnsweredRows]) -> int:
    """Write the entries of `batches`; returns how many were written.

    All in one transaction with `executemany`; when that fails (one entry the database refuses,
    such as text PostgreSQL cannot store), again entry by entry, each in its own savepoint, so
    one bad entry never loses the others: those that still fail are logged with their ids,
    never raised. A lost connection is raised (nothing could be written).

    JSON goes as text, which PostgreSQL casts to jsonb because Django binds parameters on the
    client (psycopg's default; with `server_side_binding` it would refuse text for a jsonb
    column)."""
    meta = Prediction._meta
    quote = connection.ops.quote_name
    column_of = {field.name: field.column for field in meta.concrete_fields}
    columns = ", ".join(quote(column_of[name]) for name in FIELDS)
    placeholders = ", ".join(["%s"] * len(FIELDS))
    # Names from the model's metadata only; every value is a bound parameter.
    statement = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
    native_uuid = connection.features.has_native_uuid_field
    rows = [row for answered in batches for row in answered.rows(native_uuid=native_uuid)]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(statement, rows)
        return len(rows)
    except (DataError, IntegrityError) as error:
        logger.warning(
            "writing %s prediction log entries at once failed (%s); writing them one by one",
            len(rows),
            error,
        )
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for row in rows:
            try:
                with transaction.atomic():
                    cursor.execute(statement, row)
                written += 1
            except (DataError, IntegrityError) as error:
                logger.error("prediction log entry %s not written: %s", uuid.UUID(row[0]), error)
    return written


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
            insert_entries(batches)
        except Exception:
            # The answers were given; losing their log entries is logged, never raised.
            logger.exception("could not write %s prediction log entries", count)
        return count


prediction_log = PredictionLog()
