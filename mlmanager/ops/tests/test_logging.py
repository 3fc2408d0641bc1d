"""MLMANAGER_LOG_FORMAT, and how `mlmanager web` starts gunicorn (logs, metrics folder)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.util import load_class

from config.env import read_environment
from mlmanager.cli import _web_command, _web_environment
from mlmanager.ops.webserver import JSON_LOGGER_CLASS, JsonLogger

ROOT = Path(__file__).resolve().parents[3]

LOG_THREE_RECORDS = """
import logging
import django

django.setup()
log = logging.getLogger("mlmanager.probe")
log.warning("disk %s is full", "media", extra={"team_id": 7})
logging.getLogger("django.request").warning("Not Found: %s", "/nowhere")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("it failed")
"""


def _log_lines(tmp_path: Path, log_format: str) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLMANAGER_")}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        MLMANAGER_DATA_DIR=str(tmp_path),
        MLMANAGER_LOG_FORMAT=log_format,
    )
    result = subprocess.run(
        [sys.executable, "-c", LOG_THREE_RECORDS],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stderr.splitlines()


def test_json_log_lines(tmp_path: Path) -> None:
    lines = _log_lines(tmp_path, "json")
    # One line per record: the traceback is inside its object, and Django's own console
    # handler (DEBUG) does not add a plain text copy.
    assert len(lines) == 3, lines
    first, django_request, second = (json.loads(line) for line in lines)
    timestamp = first.pop("timestamp")
    assert datetime.fromisoformat(timestamp).utcoffset() == timedelta(0)
    assert first == {
        "level": "WARNING",
        "logger": "mlmanager.probe",
        "message": "disk media is full",
        "team_id": 7,
    }
    assert (django_request["logger"], django_request["message"]) == (
        "django.request",
        "Not Found: /nowhere",
    )
    assert (second["level"], second["message"]) == ("ERROR", "it failed")
    assert "ZeroDivisionError: division by zero" in second["exc_info"]


def test_text_log_lines_are_unchanged(tmp_path: Path) -> None:
    lines = _log_lines(tmp_path, "text")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING mlmanager.probe disk media is full",
        lines[0],
    )
    assert lines[-1] == "ZeroDivisionError: division by zero"


# --- gunicorn -------------------------------------------------------------------------------


@pytest.fixture
def gunicorn_logs() -> Iterator[tuple[JsonLogger, io.StringIO]]:
    """A JsonLogger as gunicorn sets it up, its error and access lines written to one buffer."""
    config = Config()
    config.set("accesslog", "-")
    logger = JsonLogger(config)
    written = io.StringIO()
    for log in (logger.error_log, logger.access_log):
        for handler in log.handlers:
            handler.setStream(written)  # type: ignore[attr-defined]
    yield logger, written
    for log in (logger.error_log, logger.access_log):  # gunicorn's loggers are process-wide
        for handler in list(log.handlers):
            log.removeHandler(handler)


def test_gunicorn_access_lines_are_json_whatever_the_client_sends(gunicorn_logs) -> None:
    logger, written = gunicorn_logs
    # Quotes, a backslash at the end of a value and a control character: what gunicorn's own
    # escaping (the double quote only) would turn into invalid JSON.
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": '/a\\b"c?q="x"',
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": '/a\\b"c',
        "QUERY_STRING": 'q="x"',
        "REMOTE_ADDR": "10.0.0.9",
        "HTTP_USER_AGENT": "probe\x1b\\",
    }
    response = SimpleNamespace(status="200 OK", sent=5, headers=[])
    request = SimpleNamespace(headers=[])
    logger.access(response, request, environ, timedelta(milliseconds=12, microseconds=5))

    line = json.loads(written.getvalue())
    assert datetime.fromisoformat(line.pop("timestamp"))
    assert line == {
        "level": "INFO",
        "logger": "gunicorn.access",
        "message": 'GET /a\\b"c 200',
        "remote_addr": "10.0.0.9",
        "method": "GET",
        "path": '/a\\b"c',
        "query": 'q="x"',
        "protocol": "HTTP/1.1",
        "status": 200,
        "bytes": 5,
        "duration_ms": 12.005,
        "referer": "-",
        "user_agent": "probe\x1b\\",
    }


def test_gunicorn_error_lines_are_json(gunicorn_logs) -> None:
    logger, written = gunicorn_logs
    logger.info("Booting worker with pid: %s", 123)
    line = json.loads(written.getvalue())
    assert (line["level"], line["logger"], line["message"]) == (
        "INFO",
        "gunicorn.error",
        "Booting worker with pid: 123",
    )


def test_web_command_asks_gunicorn_for_json_logs_only_when_configured(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("MLMANAGER_DATA_DIR", str(tmp_path))
    environment = read_environment()
    json_command = _web_command(dataclasses.replace(environment, log_format="json"))
    assert json_command[json_command.index("--logger-class") + 1] == JSON_LOGGER_CLASS
    assert load_class(JSON_LOGGER_CLASS) is JsonLogger  # gunicorn finds it by that name
    assert "--logger-class" not in _web_command(dataclasses.replace(environment, log_format="text"))


def test_web_environment_starts_an_empty_metrics_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLMANAGER_DATA_DIR", str(tmp_path))
    folder = tmp_path / "prometheus" / socket.gethostname()
    stale = folder / "counter_4242.db"  # left by an earlier server on this host
    other_host = tmp_path / "prometheus" / "another-host" / "counter_4242.db"
    for path in (stale, other_host):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"counts")

    environment = _web_environment()

    assert environment["PROMETHEUS_MULTIPROC_DIR"] == str(folder)
    assert list(folder.iterdir()) == []
    assert other_host.read_bytes() == b"counts"  # a web server elsewhere keeps its counts
    assert environment["OMP_NUM_THREADS"] == "1"
