"""The live-update server for browser tests: the ASGI app under uvicorn, in a thread of the test
process (like pytest-django's `live_server` for HTTP), on a free port.

A page opens its socket at `live_socket_server.url` once the test points MLMANAGER_LIVE_URL at
it. Host name `localhost` as the live server's: the session cookie is the page host's, and
browsers send it to any port of that host, never to another host name (127.0.0.1).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from channels.db import database_sync_to_async
from channels.routing import ProtocolTypeRouter
from django.db import connections

from mlmanager.live.routing import websocket_application

START_TIMEOUT_S = 10.0


class LiveSocketServer:
    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        # Built now, not imported from config.asgi: the origin check reads the settings when
        # built, and a test may have just changed them.
        application = ProtocolTypeRouter({"websocket": websocket_application()})
        config = uvicorn.Config(application, lifespan="off", log_level="warning")
        self.server = uvicorn.Server(config)
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="live-socket-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported by stop(), in the test's thread
            self.errors.append(error)

    async def _serve(self) -> None:
        try:
            await self.server.serve(sockets=[self.socket])
        finally:
            # The consumers' database calls ran in asgiref's one sync thread: close the
            # connections it opened, which would otherwise outlive the test.
            await database_sync_to_async(connections.close_all)()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            assert self.thread.is_alive(), f"the live server stopped: {self.errors}"
            assert time.monotonic() < deadline, "the live server did not start within 10 s"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the live server did not stop within 15 s"
        self.socket.close()


@pytest.fixture
def live_socket_server(live_server: Any) -> Iterator[LiveSocketServer]:
    server = LiveSocketServer()
    server.start()
    yield server
    server.stop()
    if server.errors:
        raise server.errors[0]
