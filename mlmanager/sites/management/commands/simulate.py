"""`manage.py simulate` (`mlmanager simulate`): feed the demo site (or `--site`) realistic
readings, over MQTT when MLMANAGER_MQTT_URL is set, else through the REST ingest."""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from mlmanager.sites import mqtt
from mlmanager.sites.demo import (
    SimulatedSensor,
    demo_caller,
    demo_site_ensure,
    simulated_sensors,
    simulator_key_rotate,
    site_for_simulation,
)
from mlmanager.sites.simulator import simulated_value

if TYPE_CHECKING:
    from mlmanager.sites.models import Site

logger = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0


class Command(BaseCommand):
    help = "Send simulated readings to the demo site (or --site) every --interval seconds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
        parser.add_argument("--once", action="store_true", help="send one round and exit")
        parser.add_argument("--site", type=int, help="a site id instead of the demo site")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["interval"] <= 0:
            raise CommandError("--interval must be above 0.")
        site = (
            site_for_simulation(options["site"])
            if options["site"] is not None
            else demo_site_ensure()
        )
        if site is None:
            raise CommandError(
                f"There is no site {options['site']}."
                if options["site"] is not None
                else "There is no admin account with a team: run `mlmanager bootstrap` first."
            )
        sensors = simulated_sensors(site)
        if not sensors:
            raise CommandError(f"The site {site.name} has no active sensor to simulate.")
        sender: _Sender = _MqttSender(site.pk) if mqtt.broker() else _RestSender(site)
        stopping = threading.Event()
        if not options["once"]:
            for stop_signal in (signal.SIGINT, signal.SIGTERM):
                signal.signal(stop_signal, lambda _signum, _frame: stopping.set())
        self.stdout.write(
            f"Simulating {len(sensors)} sensors of {site.name} (site {site.pk}) "
            f"{sender.description}, every {options['interval']:g} s."
        )
        try:
            while True:
                sent = sender.send(sensors, _round(sensors))
                if options["once"]:
                    if not sent:
                        raise CommandError("The readings could not be sent (see the log).")
                    self.stdout.write(f"Sent {len(sensors)} readings.")
                    return
                if stopping.wait(options["interval"]):
                    return
        finally:
            sender.close()


def _round(sensors: list[SimulatedSensor]) -> list[dict[str, Any]]:
    now = timezone.now().replace(microsecond=0)
    return [
        {
            "timestamp": now.isoformat(),
            "value": simulated_value(sensor.profile, now),
            "quality": "good",
        }
        for sensor in sensors
    ]


class _Sender:
    description = ""

    def send(self, sensors: list[SimulatedSensor], readings: list[dict[str, Any]]) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        return None


class _MqttSender(_Sender):
    """Publishes each reading with QoS 1 on its sensor's topic (the bridge stores them)."""

    def __init__(self, site_id: int) -> None:
        target = mqtt.broker()
        assert target is not None
        self.site_id = site_id
        self.description = f"over MQTT ({target.host}:{target.port})"
        self.client = mqtt.new_client(f"mlmanager-simulator-{socket.gethostname()}-{site_id}")
        self.client.reconnect_delay_set(1, 30)
        # While the broker is away paho keeps what is published for when it is back; a bound
        # keeps an outage of days from filling the memory.
        self.client.max_queued_messages_set(1000)
        self.client.connect_async(target.host, target.port, keepalive=30)
        self.client.loop_start()

    def send(self, sensors: list[SimulatedSensor], readings: list[dict[str, Any]]) -> bool:
        # The first round comes right after connect_async; later ones find the broker gone.
        deadline = time.monotonic() + SEND_TIMEOUT_S
        while not self.client.is_connected():
            if time.monotonic() > deadline:
                logger.warning("simulate: not connected to the broker; round skipped")
                return False
            time.sleep(0.05)
        infos = [
            self.client.publish(
                mqtt.sensor_topic(self.site_id, sensor.device_id), json.dumps(reading), qos=1
            )
            for sensor, reading in zip(sensors, readings, strict=True)
        ]
        try:
            for info in infos:
                info.wait_for_publish(timeout=SEND_TIMEOUT_S)
        except (RuntimeError, ValueError) as error:
            logger.warning("simulate: readings not published: %s", error)
            return False
        published = all(info.is_published() for info in infos)
        if not published:
            logger.warning("simulate: the broker did not take every reading in time")
        return published

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class _RestSender(_Sender):
    """Posts each round to the REST ingest with a device key made for this process."""

    def __init__(self, site: Site) -> None:
        caller = demo_caller()
        if caller is None:
            raise CommandError("There is no admin account to make the simulator's key for.")
        self.key = simulator_key_rotate(caller=caller, site=site)
        self.url = f"{settings.MLMANAGER_SITE_URL}/api/v1/readings/"
        self.description = f"through {self.url}"

    def send(self, sensors: list[SimulatedSensor], readings: list[dict[str, Any]]) -> bool:
        body = {
            "readings": [
                {**reading, "device_id": sensor.device_id}
                for sensor, reading in zip(sensors, readings, strict=True)
            ]
        }
        request = urllib.request.Request(  # noqa: S310 - the configured site URL, http(s)
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as response:  # noqa: S310
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            logger.warning("simulate: %s answered %s: %s", self.url, error.code, error.read()[:300])
            return False
        except (OSError, ValueError) as error:  # not up yet (`mlmanager run` starts both)
            logger.warning("simulate: %s could not be reached: %s", self.url, error)
            return False
        if answer.get("rejected"):
            logger.warning("simulate: readings rejected: %s", answer["rejected"])
        return True
