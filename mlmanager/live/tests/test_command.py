"""`mlmanager live`: the ASGI server of the sockets, beside gunicorn."""

from __future__ import annotations

import sys
from dataclasses import replace

from config.env import read_environment
from mlmanager.cli import _live_command


def test_live_is_one_uvicorn_process_on_the_live_port() -> None:
    env = replace(read_environment(), host="0.0.0.0", live_port=9101)  # noqa: S104

    command = _live_command(env)

    assert command[:4] == [sys.executable, "-m", "uvicorn", "config.asgi:application"]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert command[command.index("--port") + 1] == "9101"
    assert "--workers" not in command
