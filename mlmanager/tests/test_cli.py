"""`mlmanager run` as a user starts it: web server, live server, worker and scheduler together,
stopped by Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "cli test passphrase 9"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _json(url: str, *, body: dict | None = None, token: str = "") -> dict:
    request = urllib.request.Request(  # noqa: S310 - loopback URL built by the test
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def test_run_serves_processes_demo_data_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port, live_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        MLMANAGER_DATA_DIR=str(tmp_path),
        PORT=str(port),
        MLMANAGER_LIVE_PORT=str(live_port),
        MLMANAGER_ADMIN_EMAIL="boss@example.com",
        MLMANAGER_ADMIN_PASSWORD=ADMIN_PASSWORD,
        # Two web workers, as by default: with the children in the terminal's process group,
        # Ctrl-C left one of them hanging in gunicorn's quit handler (2 runs in 3 here).
        WEB_CONCURRENCY="2",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "mlmanager.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
    )
    banner: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            banner.append(line)
            if "MLManager is running at" in line:
                break
        output = "".join(banner)
        assert f"running at http://127.0.0.1:{port}/" in output, output
        assert "Admin account created: boss@example.com" in output

        base = f"http://127.0.0.1:{port}"
        token = ""
        for _ in range(100):  # gunicorn may still be binding
            try:
                token = _json(
                    f"{base}/api/v1/auth/token/",
                    body={"email": "boss@example.com", "password": ADMIN_PASSWORD},
                )["token"]
                break
            except OSError:
                time.sleep(0.2)
        assert token
        ready: dict[str, dict] = {}
        for _ in range(300):  # the worker processes the two demo datasets
            datasets = _json(f"{base}/api/v1/datasets/", token=token)["results"]
            ready = {found["name"]: found for found in datasets if found["status"] == "ready"}
            if len(ready) == 2:
                break
            time.sleep(0.2)
        assert sorted(ready) == ["Demo: customer churn", "Demo: handwritten digits (images)"]
        assert ready["Demo: customer churn"]["row_count"] == 1000
        digits = ready["Demo: handwritten digits (images)"]
        assert (digits["kind"], digits["images"]["count"]) == ("images", 1797)
        with socket.create_connection(("127.0.0.1", live_port), timeout=10):
            pass  # the live-update server listens too
    finally:
        # Ctrl-C in a terminal: SIGINT to every process of the foreground group.
        os.killpg(process.pid, signal.SIGINT)
        remaining, _ = process.communicate(timeout=30)
    assert process.returncode == 0, remaining
    assert "Stopped." in remaining
    assert _processes_using(tmp_path) == []  # no gunicorn worker, worker or server left over
    for listening in (port, live_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", listening), timeout=5).close()


def _processes_using(data_dir: Path) -> list[int]:
    """Processes whose environment names this data folder (every process `run` started)."""
    marker = f"MLMANAGER_DATA_DIR={data_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker in environment:
            found.append(int(entry.name))
    return found


def test_a_second_web_server_on_a_busy_port_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each gunicorn worker listens with SO_REUSEPORT, which would let a second server share
    the port (and half the connections) silently; `web` and `run` refuse to start instead."""
    from mlmanager import cli

    def never(*args: object) -> None:
        raise AssertionError("the server was started")

    monkeypatch.setattr(cli.os, "execve", never)
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        monkeypatch.setenv("HOST", "127.0.0.1")
        monkeypatch.setenv("PORT", str(other_server.getsockname()[1]))
        for command in ("web", "run"):
            with pytest.raises(SystemExit) as refused:
                cli.main([command])
            assert "is in use" in str(refused.value) and "set PORT" in str(refused.value)
