"""The platform log's handler: every process's warnings and errors, also into the database.

`PlatformLogHandler` sits on the root logger (config.settings LOGGING, level WARNING) beside the
console. The logging call only turns the record into a row's values and puts them on a bounded
in-process queue: when the queue is full the record is dropped and counted, never waited for,
and nothing that goes wrong here is raised into the code that logged. A daemon thread writes
the queue in batches (ops.services.platform_log_write) on its own database connection, closed
after each batch so an idle process holds none. At exit the queue is written, for a bounded
time (EXIT_FLUSH_S).

It never logs into itself: records of its own logger (its failures, which go to the console
only), records made while it is already handling one in that thread, and records made by its
writer thread are not queued. A write that fails because the table does not exist yet (a
process logging before `migrate` ran) drops the batch silently.

Each row says where it came from: the host, the kind of process (`process_kind`), the request
(an id per request and the client's address, bound by ops.middleware.RequestContextMiddleware)
or the job (the job id of the jobs runner's `run_job` this record is logged under).

Imported while Django configures logging, before the apps are loaded: no models at import
time; the writer waits for the app registry before its first write.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import datetime as dt
import logging
import os
import queue
import re
import socket
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# Records waiting for the writer. With the size caps below the worst case holds ~40 MB; a
# storm of errors beyond it is what the counter `dropped` (and the console) reports.
CAPACITY = 2000
BATCH_SIZE = 200
MESSAGE_MAX_CHARS = 4000
TRACEBACK_MAX_CHARS = 16000  # the end is kept: the exception and the innermost frames
# How long exit, or a test's flush, waits for the writer to empty the queue.
EXIT_FLUSH_S = 3.0
FLUSH_TIMEOUT_S = 10.0
# The writer's first batch waits this long at most for Django's app registry.
APPS_READY_WAIT_S = 30.0
# The handler's own trouble goes to the console at most this often.
COMPLAINT_INTERVAL_S = 60.0

WEB_SERVERS = ("gunicorn", "uvicorn", "daphne")
# manage.py (or `mlmanager`) commands that are one of the long-running processes.
COMMAND_PROCESSES = {
    "runserver": "web",
    "worker": "worker",
    "scheduler": "scheduler",
    "mqtt": "bridge",
}
_FIELD_MAX = {"logger": 200, "module": 200, "function": 200, "host": 255, "address": 64}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_formatter = logging.Formatter()


def process_kind(argv: Sequence[str]) -> str:
    """web, worker, scheduler, bridge or cli, from the command line that started the process:
    `mlmanager web` runs gunicorn (`python -m gunicorn …`), `mlmanager live` uvicorn, the
    others `manage.py <command>` (through `mlmanager <command>` or `python -m mlmanager.cli`),
    Celery's workers `celery … worker`. A forked child (a training process) is its parent's."""
    if not argv:
        return "cli"
    program = Path(argv[0])
    name = (program.parent.name if program.name == "__main__.py" else program.name).lower()
    if any(server in name for server in WEB_SERVERS):
        return "web"
    words = [word for word in argv[1:] if not word.startswith("-")]
    if "celery" in name:
        return "worker" if "worker" in words else "cli"
    return COMMAND_PROCESSES.get(words[0] if words else "", "cli")


# --- what a record happened in -----------------------------------------------------------------

# The request being answered in this thread (or task) and its id.
_request: contextvars.ContextVar[tuple[Any, str] | None] = contextvars.ContextVar(
    "platform_log_request", default=None
)


def _request_id_for(request: Any) -> str:
    """The id a trusted proxy gave the request (X-Request-ID), so its log and ours share it;
    else a new one. A client's own header is not taken: anyone could repeat an id to mix
    their requests with someone else's in the log."""
    sent = str(request.META.get("HTTP_X_REQUEST_ID") or "")
    if settings.MLMANAGER_TRUSTED_PROXIES > 0 and _REQUEST_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


@contextmanager
def request_bound(request: Any) -> Iterator[str]:
    """Records logged while answering `request` carry its id and client address; yields the
    id (the middleware returns it as X-Request-ID)."""
    request_id = _request_id_for(request)
    # Also on the request: Django logs a 4xx or 5xx answer after the middleware returned it
    # (django.request, with the request in the record), outside this context.
    request.request_id = request_id
    token = _request.set((request, request_id))
    try:
        yield request_id
    finally:
        _request.reset(token)


def _request_fields(record: logging.LogRecord) -> tuple[str, str]:
    bound = _request.get()
    if bound is None:
        request = getattr(record, "request", None)
        request_id = getattr(request, "request_id", None)
        if not isinstance(request_id, str):
            return "", ""
        bound = request, request_id
    request, request_id = bound
    # The Caller's address (set by accounts' middleware or the API's token authentication)
    # honours MLMANAGER_TRUSTED_PROXIES; before it exists, the same rule read directly.
    caller = getattr(request, "caller", None)
    address = getattr(caller, "address", None)
    if not address:
        from mlmanager.core.throttling import client_address

        address = client_address(request)
    return request_id, str(address or "")


RUNNER_MODULE = "mlmanager.jobs.runner"
STACK_DEPTH_MAX = 200


def _job_id(frame: FrameType | None) -> int | None:
    """The job whose work logged this record: the `job_id` of the jobs runner's `run_job`
    frame the call came through (or of its heartbeat thread). Read from the stack rather than
    a context variable, so no code in jobs/ has to know about this log; a test
    (test_platform_log.test_a_record_logged_inside_a_job_carries_its_id) runs the real runner
    so a renamed variable cannot go unnoticed."""
    depth = 0
    while frame is not None and depth < STACK_DEPTH_MAX:
        if frame.f_globals.get("__name__") == RUNNER_MODULE:
            if frame.f_code.co_name == "run_job":
                value = frame.f_locals.get("job_id")
                return value if isinstance(value, int) else None
            if frame.f_code.co_name == "_beat":
                value = getattr(frame.f_locals.get("self"), "job_id", None)
                return value if isinstance(value, int) else None
        frame = frame.f_back
        depth += 1
    return None


def _text(value: str, limit: int, *, keep_end: bool = False) -> str:
    # PostgreSQL refuses NUL in text: one such message would fail its whole batch.
    value = value.replace("\x00", "\ufffd")
    if len(value) <= limit:
        return value
    return "…" + value[-(limit - 1) :] if keep_end else value[: limit - 1] + "…"


# --- the handler ---------------------------------------------------------------------------


class PlatformLogHandler(logging.Handler):
    """Queues WARNING and above for the database; see the module docstring.

    `background=False` (tests) starts no writer thread: `flush()` then writes in the caller's
    thread and on its connection, so a test sees the rows in its own transaction.
    """

    def __init__(
        self,
        level: int = logging.WARNING,
        *,
        capacity: int = CAPACITY,
        batch_size: int = BATCH_SIZE,
        background: bool = True,
    ) -> None:
        super().__init__(level)
        self.capacity = capacity
        self.batch_size = batch_size
        self.background = background
        self.host = _text(socket.gethostname(), _FIELD_MAX["host"])
        self.process = process_kind(sys.argv)
        self.dropped = 0  # queue full, or a batch the database did not take
        self.overflowed = 0  # of which: queue full
        self.written = 0
        self._closed = False
        self._guard = threading.local()
        self._reset_state()
        # A forked child (gunicorn's workers, the training fork server) has no writer thread,
        # and a queue lock another thread may have held at the fork: it starts afresh.
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(reference))
        atexit.register(_at_exit, reference)

    def _reset_state(self) -> None:
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=self.capacity)
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._stop = threading.Event()
        # Entries accepted onto the queue, and handled (written or dropped) by the writer:
        # flush() waits for the second to reach the first.
        self._progress = threading.Condition()
        self._accepted = 0
        self._handled = 0
        self._overflow_reported = 0
        self._complained_at = -COMPLAINT_INTERVAL_S

    # Called by logging.Handler.handle for records at or above the handler's level.
    def emit(self, record: logging.LogRecord) -> None:
        guard = self._guard
        if getattr(guard, "active", False):
            return  # logged while this thread was already in here (formatting, a write)
        guard.active = True
        try:
            if not self._accepts(record):
                return
            if self._queue.full():  # before making the entry: a storm costs no formatting
                self.dropped += 1
                self.overflowed += 1
                return
            entry = self._entry(record)
            try:
                self._queue.put_nowait(entry)
            except queue.Full:
                self.dropped += 1
                self.overflowed += 1
                return
            with self._progress:
                self._accepted += 1
            if self.background:
                self._ensure_writer()
        except Exception:  # a log call must never fail the code that made it
            self.dropped += 1
        finally:
            guard.active = False

    def _accepts(self, record: logging.LogRecord) -> bool:
        if self._closed or record.levelno < logging.WARNING:
            return False
        if record.name == logger.name or record.name.startswith(logger.name + "."):
            return False  # this handler's own trouble: the console's
        if threading.current_thread() is self._writer:
            return False  # the database layer, while writing a batch
        return bool(getattr(settings, "MLMANAGER_PLATFORM_LOG_ENABLED", True))

    def _entry(self, record: logging.LogRecord) -> dict[str, Any]:
        """The row's values, made now: the record's arguments and traceback are not kept."""
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: the format as it is
            message = str(record.msg)
        traceback = ""
        if record.exc_info:
            traceback = _formatter.formatException(record.exc_info)
        elif record.exc_text:
            traceback = record.exc_text
        if record.stack_info:
            traceback = f"{traceback}\n{record.stack_info}" if traceback else record.stack_info
        request_id, address = _request_fields(record)
        return {
            "created_at": dt.datetime.fromtimestamp(record.created, tz=dt.UTC),
            "level": record.levelno,
            "logger": _text(record.name, _FIELD_MAX["logger"]),
            "module": _text(record.module or "", _FIELD_MAX["module"]),
            "function": _text(record.funcName or "", _FIELD_MAX["function"]),
            "line": max(0, record.lineno or 0),
            "message": _text(message, MESSAGE_MAX_CHARS),
            "traceback": _text(traceback, TRACEBACK_MAX_CHARS, keep_end=True),
            "host": self.host,
            "process": self.process,
            "pid": record.process or os.getpid(),
            "address": _text(address, _FIELD_MAX["address"]),
            "request_id": request_id,
            "job_id": _job_id(sys._getframe(1)),
        }

    # --- writing ---------------------------------------------------------------------------

    def _ensure_writer(self) -> None:
        if self._writer is not None:
            return
        with self._writer_lock:
            if self._writer is None and not self._closed:
                self._writer = threading.Thread(
                    target=self._run, name="platform-log-writer", daemon=True
                )
                self._writer.start()

    def _run(self) -> None:
        if not self._wait_for_apps():
            return
        while True:
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            self._write_batch(self._batch_from(first))

    def _wait_for_apps(self) -> bool:
        from django.apps import apps

        deadline = time.monotonic() + APPS_READY_WAIT_S
        while not apps.ready:
            if time.monotonic() > deadline or self._stop.wait(0.1):
                return False
        return True

    def _batch_from(self, first: dict[str, Any]) -> list[dict[str, Any]]:
        batch = [first]
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write_batch(self, batch: list[dict[str, Any]]) -> None:
        from django.db import connection

        guard = self._guard
        guard.active = True  # what the database layer logs meanwhile is not queued
        try:
            from mlmanager.ops.services import platform_log_write

            # Switched off since these were queued (the tests switch it off once their
            # settings apply, after a few records of the session's start were queued).
            enabled = getattr(settings, "MLMANAGER_PLATFORM_LOG_ENABLED", True)
            written = platform_log_write(entries=batch) if enabled else 0
            self.written += written
            self.dropped += len(batch) - written
        except Exception as error:
            self.dropped += len(batch)
            if not _table_missing():
                self._complain("platform log: %s entries not written: %r", len(batch), error)
        finally:
            guard.active = False
            if threading.current_thread() is self._writer:
                # Its own connection, closed after each batch: an idle process holds none,
                # and a connection the database dropped meanwhile is never reused.
                with contextlib.suppress(Exception):  # a broken one is closed anyway
                    connection.close()
            with self._progress:
                self._handled += len(batch)
                self._progress.notify_all()
        if self.overflowed > self._overflow_reported:
            self._complain(
                "platform log: its queue was full; %s records dropped so far", self.overflowed
            )
            self._overflow_reported = self.overflowed

    def _complain(self, message: str, *args: Any) -> None:
        """To the console only (this handler skips its own logger), at most once a minute."""
        now = time.monotonic()
        if now - self._complained_at >= COMPLAINT_INTERVAL_S:
            self._complained_at = now
            logger.warning(message, *args)

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        """Write what was queued before this call. With a writer thread, wait for it (at
        most `timeout` seconds); without one, write here, on this thread's connection."""
        if self._closed:
            return
        writer = self._writer
        if writer is None or not writer.is_alive():
            while not self._queue.empty():
                try:
                    first = self._queue.get_nowait()
                except queue.Empty:
                    break
                self._write_batch(self._batch_from(first))
            return
        with self._progress:
            target = self._accepted
            self._progress.wait_for(lambda: self._handled >= target, timeout=timeout)

    def close(self) -> None:
        """At exit (atexit, then logging's own shutdown) or when logging is configured
        again: write what is queued, for a bounded time, and stop the writer."""
        if not self._closed:
            if self._writer is not None:
                self.flush(timeout=EXIT_FLUSH_S)
            self._closed = True
            self._stop.set()
        super().close()


def _table_missing() -> bool:
    """Whether the platform log's table is absent (migrations not run yet): such a batch is
    dropped without a word. Any doubt (the database unreachable) counts as present, so the
    failure is reported."""
    try:
        from mlmanager.ops.services import platform_log_table_exists

        return not platform_log_table_exists()
    except Exception:
        return False


def _after_fork(reference: weakref.ref[PlatformLogHandler]) -> None:
    handler = reference()
    if handler is not None:
        handler._reset_state()


def _at_exit(reference: weakref.ref[PlatformLogHandler]) -> None:
    handler = reference()
    if handler is not None:
        handler.close()
