"""A private Mosquitto per test: a free port, persistence in tmp_path, and a restart that keeps
the queued messages of persistent sessions (the bridge's no-loss tests need one of their own;
the system broker on 1883 is shared with whatever else runs)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The project's live server (MEDIA_URL handled), for the tests that talk HTTP to it.
from mlmanager.core.tests.live import live_server  # noqa: F401 - a fixture

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
START_TIMEOUT_S = 15.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class PrivateBroker:
    """A Mosquitto process on 127.0.0.1:<port>; `restart()` stops it with SIGTERM (which saves
    its persistence file) and starts it again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.config = folder / "mosquitto.conf"
        (folder / "data").mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # Run as root, Mosquitto would switch to its own user, who cannot write in tmp_path.
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {folder / 'data'}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 100000\n"
            f"log_dest file {folder / 'mosquitto.log'}\n"
            "log_type all\n"
        )

    def start(self) -> None:
        assert self.process is None
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not start listening")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def mqtt_broker(tmp_path: Path, settings: Any) -> Iterator[PrivateBroker]:
    """A private broker, and the settings pointing at it."""
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.fail(f"mosquitto is not installed at {MOSQUITTO}")
    broker = PrivateBroker(tmp_path / "mosquitto")
    broker.start()
    settings.MLMANAGER_MQTT_URL = broker.url
    settings.MLMANAGER_MQTT_PREFIX = "mlmanager"
    try:
        yield broker
    finally:
        broker.stop()
