"""What the gunicorn web server (`mlmanager web`, `mlmanager run`) needs from operations: the
folder its worker processes share metrics through, its own control socket, and JSON logs.

Imported by mlmanager.cli and by the gunicorn master, before Django is set up: no Django here.
"""

from __future__ import annotations

import shutil
import socket
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from gunicorn import glogging

from mlmanager.ops.logs import json_formatter

# prometheus_client's multiprocess mode: each worker writes its counters to files in this folder
# and /metrics sums them, whichever worker answers the scrape.
METRICS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
JSON_LOGGER_CLASS = "mlmanager.ops.webserver.JsonLogger"


def metrics_directory(data_dir: Path) -> Path:
    """A folder per host: in scale-out the data folder is shared by every machine, and web
    servers on two hosts must neither empty each other's folder when they start nor write to
    the same file (named by process id, which another host may reuse)."""
    return data_dir / "prometheus" / socket.gethostname()


def control_socket_path(data_dir: Path, port: int) -> Path:
    """Gunicorn's control socket (`gunicornc -s PATH`: show workers, add or remove some, reload)
    for this web server alone: one per host and port in the data folder.

    Gunicorn's default, ~/.gunicorn/gunicorn.ctl, is one path for every gunicorn the user runs:
    each server that starts removes the socket of the one before and takes its place, so
    `gunicornc` talks to whichever started last, and the first to stop removes the socket of
    the other. Named by host as the metrics folder is (a shared data folder in scale-out) and by
    port (two servers of one data folder on one host, which _require_free_port keeps apart).
    A data folder so deep that the path exceeds the 107 bytes of a Unix socket's address only
    costs the control socket: gunicorn logs a warning and serves without one."""
    return data_dir / "gunicorn" / f"{socket.gethostname()}-{port}.ctl"


def metrics_directory_reset(directory: Path) -> Path:
    """Empty the folder as the web server starts. prometheus_client keeps one file per worker
    process id and sums every file it finds: files left by an earlier server would add its
    totals to this one's, and a reused process id would write into a dead worker's file."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


class JsonLogger(glogging.Logger):
    """Gunicorn's error and access logs as one JSON object per line, with the keys of the
    application's own JSON lines (ops.logs) and each request's fields as keys of their own.

    Not an --access-logformat template: gunicorn escapes only the double quote in the values it
    substitutes, so a backslash or a control character in a path or a User-Agent (sent by
    anyone) would make the line invalid JSON. Here the JSON encoder escapes every value.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(json_formatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not getattr(self, "access_log_enabled", True):
            return
        try:
            atoms = self.atoms(resp, req, environ, request_time)
            self.access_log.info(
                "%s %s %s",
                atoms["m"],
                atoms["U"],
                atoms["s"],
                extra={
                    "remote_addr": atoms["h"],
                    "method": atoms["m"],
                    "path": atoms["U"],
                    "query": atoms["q"],
                    "protocol": atoms["H"],
                    "status": int(atoms["s"]),
                    "bytes": atoms["B"],
                    "duration_ms": round(request_time / timedelta(milliseconds=1), 3),
                    "referer": atoms["f"],
                    "user_agent": atoms["a"],
                },
            )
        except Exception:  # as gunicorn's own: a log line must never fail the request
            self.error(traceback.format_exc())
