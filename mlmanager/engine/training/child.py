"""Entry point of the search process, and the job description it receives.

Kept free of heavy imports: the parent imports this module to name the process target, and
only the child loads the ML libraries (`search`, preloaded by the fork server).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from mlmanager.engine.training.spec import TrainingError
from mlmanager.engine.training.status import OutputFolder, write_json

# Exit codes the parent tells apart from a crash.
EXIT_REFUSED = 2  # a TrainingError, described in error.json
EXIT_DISK_FULL = 3  # no space left where the run writes its files
EXIT_PAST_DEADLINE = 4
EXIT_ORPHANED = 5
EXIT_STOPPED = 6  # stopped at the parent's request before any model existed
_WATCHDOG_INTERVAL_S = 0.5
# Longer than a SearchStopped takes to leave an interruptible step, shorter than a user waits.
_KNOCK_AGAIN_S = 0.5
# The parent's "stop now, keep what you have" (a cancel); None where the platform has no such
# signal (Windows), and the parent then simply kills the process.
STOP_SIGNAL: signal.Signals | None = getattr(signal, "SIGUSR1", None)


class SearchStopped(BaseException):
    """Raised in the search process when the parent asks it to stop. A BaseException, so that
    no library's `except Exception` swallows it."""


class StopRequest:
    """The parent's stop request, received as STOP_SIGNAL.

    A cancel used to kill the search process at once, which lost every candidate of the chunk
    in flight (the first chunk of a level-2 run lasts about 30 s): the checkpoint is written
    only when a chunk ends. Now the signal interrupts the long steps (a FLAML chunk, the
    ensemble, the final refit, reading the data) by raising SearchStopped in them, so the
    search can save the best model it has before it exits; elsewhere (writing a checkpoint)
    the request waits for the next `interruptible` step or `check`.
    """

    def __init__(self) -> None:
        self.requested = False
        self._interruptible = False
        self._knocking = False
        self._step = 0  # counts interruptible steps, so a knock never reaches a later one

    def install(self) -> None:
        if STOP_SIGNAL is not None:
            signal.signal(STOP_SIGNAL, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True
        if self._interruptible:
            self._knock_again_if_swallowed(signum)
            raise SearchStopped()

    def _knock_again_if_swallowed(self, signum: int) -> None:
        """Raised from a signal handler, the exception can land in a C library's callback into
        Python (xgboost's data iterator), where ctypes reports it as unraisable and drops it:
        the step would go on. Unless that same step has ended (the exception got through)
        after a moment, send the signal again — only to this handler: where it is no longer
        installed (a test restored the default), the signal would end the process."""
        if self._knocking:
            return
        self._knocking = True
        step = self._step

        def still_running() -> bool:
            return (
                self._interruptible
                and self._step == step
                and signal.getsignal(signum) == self._handle
            )

        def knock() -> None:
            try:
                while True:
                    time.sleep(_KNOCK_AGAIN_S)
                    if not still_running():
                        return
                    os.kill(os.getpid(), signum)
            finally:
                self._knocking = False

        threading.Thread(target=knock, name="stop-knock", daemon=True).start()

    def check(self) -> None:
        if self.requested:
            raise SearchStopped()

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        self.check()
        previous, self._interruptible = self._interruptible, True
        self._step += 1
        try:
            yield
        finally:
            self._interruptible = previous


# One per process: a signal handler is process-wide.
STOP = StopRequest()


@dataclasses.dataclass(frozen=True)
class SearchJob:
    """Everything the search process needs; picklable and small (no data)."""

    parquet_path: str
    folder: str
    inputs: list[tuple[str, str]]
    output: str
    task: str
    metric: str
    seed: int
    max_candidates: int | None
    # Wall-clock times (time.time()): the search plans to end by search_deadline; past
    # hard_deadline the process ends itself even if the parent could not kill it.
    search_deadline: float
    hard_deadline: float
    n_jobs: int
    artifact_key: bytes
    parent_pid: int


def run(job: SearchJob) -> None:
    """Run one output's search; report through the files in `job.folder` (see `status`)."""
    folder = OutputFolder(Path(job.folder))
    _redirect_output(folder.log)
    # CatBoost writes scratch folders into the working directory.
    os.chdir(folder.path)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    _start_watchdog(job)
    STOP.install()
    try:
        # Imported here: the ML libraries load in the search process only.
        from mlmanager.engine.training import search

        search.run_search(job, folder)
    except SearchStopped:
        # Stopped before any model existed (a model found before a stop is saved by the search).
        sys.stderr.flush()
        sys.exit(EXIT_STOPPED)
    except TrainingError as exc:
        write_json(folder.error, {"message": exc.message, "code": exc.code})
        sys.stderr.flush()
        sys.exit(EXIT_REFUSED)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        # Reported by the exit code: with the disk full, an error file may not fit either.
        traceback.print_exc()
        sys.exit(EXIT_DISK_FULL)
    except MemoryError:
        write_json(
            folder.error,
            {
                "message": "Training ran out of memory. Use fewer rows or input columns, or a "
                "machine with more memory.",
                "code": "out_of_memory",
            },
        )
        raise
    except BaseException:
        traceback.print_exc()
        raise


def _redirect_output(path: Path) -> None:
    """Send file descriptors 1 and 2 to the log, so native libraries' output lands there too."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115


def _start_watchdog(job: SearchJob) -> None:
    """End this process past the hard deadline or when the parent is gone, whatever the
    libraries are doing: an orphaned search must not hold the CPU for hours."""

    def watch() -> None:
        while True:
            time.sleep(_WATCHDOG_INTERVAL_S)
            if time.time() > job.hard_deadline:
                os._exit(EXIT_PAST_DEADLINE)
            try:
                os.kill(job.parent_pid, 0)
            except ProcessLookupError:
                os._exit(EXIT_ORPHANED)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="search-watchdog", daemon=True).start()
