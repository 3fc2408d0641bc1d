"""`manage.py mqtt` (`mlmanager mqtt`): the MQTT bridge, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mlmanager.sites import mqtt
from mlmanager.sites.bridge import Bridge


class Command(BaseCommand):
    help = (
        "Store readings that devices publish on <prefix>/sites/<site id>/sensors/<device id> "
        "(the broker of MLMANAGER_MQTT_URL)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--client-id",
            default=f"mlmanager-bridge-{socket.gethostname()}",
            help="the MQTT client id; the broker keeps its session (and what arrives while it "
            "is away) under it, so keep it stable (default: mlmanager-bridge-<hostname>)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if mqtt.broker() is None:
            raise CommandError("MLMANAGER_MQTT_URL is not set: there is no broker to bridge.")
        bridge = Bridge(client_id=options["client_id"])

        def stop(signum: int, _frame: object) -> None:
            bridge.stop()

        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, stop)
        bridge.run()
