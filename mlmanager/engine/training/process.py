"""Starting, watching and stopping the search process.

The search runs in a child process so that the budget is a wall the parent enforces with a
kill, whatever FLAML or a native library is doing. Children come from a fork server that has
preloaded the ML libraries: the first start pays for their import (about 2 s), later starts
take milliseconds, and no child inherits the threads or state of the parent (a Django
worker). Where there is no fork server (Windows), children are spawned.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
from multiprocessing.context import BaseContext

from mlmanager.engine.training import child

logger = logging.getLogger(__name__)

# Modules the fork server imports once, so each search starts with them loaded (FLAML
# imports the learners' libraries only when it first fits one).
PRELOAD = [
    "mlmanager.engine.training.search",
    "lightgbm",
    "xgboost",
    "catboost",
    "sklearn.ensemble",
    "sklearn.linear_model",
]
_REAP_TIMEOUT_S = 3.0


def _context() -> BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def cpu_count() -> int:
    """The CPUs this process may run on (a container's or taskset's limit included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def warm_up() -> None:
    """Start the fork server now (it imports the ML libraries), so a first training run does
    not spend its budget on that. Optional; a worker may call it once at start."""
    context = _context()
    if hasattr(context, "Process"):
        process = context.Process(target=_nothing, name="mlmanager-warm-up")
        process.start()
        process.join(_REAP_TIMEOUT_S * 10)


def _nothing() -> None:
    pass


class SearchProcess:
    """One search process; `stop` kills and reaps it and is safe to call more than once."""

    def __init__(self, job: child.SearchJob):
        self._process = _context().Process(  # type: ignore[attr-defined]
            target=child.run, args=(job,), name=f"mlmanager-search-{job.output}"[:60]
        )
        self._final_exitcode: int | None = None

    def start(self) -> None:
        self._process.start()
        logger.info("search process %s started", self._process.pid)

    @property
    def exitcode(self) -> int | None:
        if self._final_exitcode is not None:
            return self._final_exitcode
        return self._process.exitcode

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the process to end; True if it has."""
        if self.exitcode is not None:
            return True
        multiprocessing.connection.wait([self._process.sentinel], timeout=max(0.0, timeout))
        return self._process.exitcode is not None

    def request_stop(self, timeout: float) -> bool:
        """Ask the search to stop and save the best model it has (see `child.StopRequest`),
        and wait up to `timeout` seconds for it to end; True if it has. The caller still
        calls `stop`, which kills a search that did not end in time."""
        if self.exitcode is not None:
            return True
        if child.STOP_SIGNAL is None or self._process.pid is None:
            return False
        with contextlib.suppress(OSError):
            os.kill(self._process.pid, child.STOP_SIGNAL)
        return self.wait(timeout)

    def stop(self) -> None:
        if self._final_exitcode is not None or self._process.pid is None:
            return
        if self._process.exitcode is None:
            with contextlib.suppress(OSError):
                self._process.kill()
        self._process.join(_REAP_TIMEOUT_S)
        if self._process.exitcode is None:
            logger.error("search process %s did not end after SIGKILL", self._process.pid)
            return
        self._final_exitcode = self._process.exitcode
        self._process.close()
