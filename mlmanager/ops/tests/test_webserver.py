"""The gunicorn command of `mlmanager web` and `mlmanager run`: each web server has a control
socket of its own in its data folder, never gunicorn's per-user default shared by all of them."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gunicorn.ctl.client import ControlClient, ControlClientError

from config.env import read_environment
from mlmanager.cli import _web_command
from mlmanager.ops.webserver import control_socket_path

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 60.0  # two servers loading Django on a busy two-core machine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_control_socket_is_in_the_data_folder_per_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLMANAGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORT", "8040")
    command = _web_command(read_environment())
    assert "--no-control-socket" not in command
    expected = tmp_path / "gunicorn" / f"{socket.gethostname()}-8040.ctl"
    assert _option(command, "--control-socket") == str(expected)
    assert control_socket_path(tmp_path, 8041) != expected


class WebServer:
    """A real `mlmanager web` gunicorn (one worker) on its own data folder and port."""

    def __init__(self, data_dir: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.port = _free_port()
        with monkeypatch.context() as scope:
            scope.setenv("MLMANAGER_DATA_DIR", str(data_dir))
            scope.setenv("PORT", str(self.port))
            scope.setenv("WEB_CONCURRENCY", "1")
            command = _web_command(read_environment())
        self.control_socket = control_socket_path(data_dir, self.port)
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MLMANAGER_", "PROMETHEUS_", "XDG_"))
            and key not in {"DATABASE_URL", "REDIS_URL"}
        }
        # Gunicorn's default socket would be $HOME/.gunicorn/gunicorn.ctl: a home of the test's.
        environment.update(HOME=str(home), MLMANAGER_DATA_DIR=str(data_dir), PORT=str(self.port))
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def control(self, command: str) -> dict[str, Any]:
        with ControlClient(str(self.control_socket), timeout=10) as client:
            return dict(client.send_command(command))

    def wait_until_controllable(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.process.poll() is None, f"gunicorn exited with {self.process.returncode}"
            try:
                self.control("show stats")
                return
            except ControlClientError:
                assert time.monotonic() < deadline, f"no control socket at {self.control_socket}"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def two_web_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[WebServer, WebServer]]:
    home = tmp_path / "home"
    home.mkdir()
    servers: list[WebServer] = []
    try:
        for name in ("first", "second"):
            servers.append(WebServer(tmp_path / name, home, monkeypatch))
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def test_two_web_servers_each_answer_on_their_own_control_socket(
    two_web_servers: tuple[WebServer, WebServer], tmp_path: Path
) -> None:
    first, second = two_web_servers
    for server in (first, second):
        server.wait_until_controllable()

    assert first.control_socket.parent.parent == tmp_path / "first"
    assert second.control_socket.parent.parent == tmp_path / "second"
    assert first.control("show stats")["pid"] == first.process.pid
    assert second.control("show stats")["pid"] == second.process.pid
    assert not (tmp_path / "home" / ".gunicorn").exists()

    # Stopping one leaves the other's socket alone.
    first.stop()
    assert not first.control_socket.exists()
    assert second.control("show stats")["pid"] == second.process.pid
