"""The MQTT side of sites: topic names, the broker's address, and publishing a command.

Topics: `<prefix>/sites/<site id>/sensors/<device id>` carry readings from devices (the
bridge, `sites.bridge`, subscribes to them); `<prefix>/sites/<site id>/commands` carries
commands to a site's equipment (an emergency stop). paho-mqtt is the client.
"""

from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def broker() -> Broker | None:
    """The broker of MLMANAGER_MQTT_URL, or None when it is not set."""
    url = settings.MLMANAGER_MQTT_URL
    if not url:
        return None
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    return Broker(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def prefix() -> str:
    return str(settings.MLMANAGER_MQTT_PREFIX)


def sensor_topic(site_id: int, device_id: str) -> str:
    return f"{prefix()}/sites/{site_id}/sensors/{device_id}"


def sensors_subscription() -> str:
    """Every sensor topic of every site."""
    return f"{prefix()}/sites/+/sensors/+"


def command_topic(site_id: int) -> str:
    return f"{prefix()}/sites/{site_id}/commands"


def parse_sensor_topic(topic: str) -> tuple[int, str] | None:
    """(site id, device id) of a sensor topic, None for any other topic."""
    head = f"{prefix()}/sites/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 3 or parts[1] != "sensors" or not parts[0].isdigit() or not parts[2]:
        return None
    return int(parts[0]), parts[2]


def new_client(client_id: str, *, clean_start: bool = True) -> Any:
    """A paho client for the configured broker (not yet connected). MQTT 3.1.1: Mosquitto and
    every broker the monitoring systems use speak it, shared subscriptions included."""
    import paho.mqtt.client as mqtt

    target = broker()
    if target is None:
        raise RuntimeError("MLMANAGER_MQTT_URL is not set")
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_start,
        protocol=mqtt.MQTTv311,
    )
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    return client


def publish_command(*, site_id: int, payload: dict[str, Any]) -> str | None:
    """Publish a command to the site's command topic with QoS 1 and wait for the broker's
    acknowledgement; the error as text, or None when the broker took it."""
    import paho.mqtt.client as mqtt

    target = broker()
    if target is None:
        return "MLMANAGER_MQTT_URL is not set: no broker to send the command to."
    client = new_client(f"mlmanager-command-{site_id}")
    try:
        client.connect(target.host, target.port, keepalive=30)
        client.loop_start()
        try:
            info = client.publish(command_topic(site_id), json.dumps(payload), qos=1)
            info.wait_for_publish(timeout=PUBLISH_TIMEOUT_S)
            if not info.is_published():
                return f"The broker did not acknowledge the command within {PUBLISH_TIMEOUT_S:g} s."
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return f"The broker refused the command ({mqtt.error_string(info.rc)})."
        finally:
            client.disconnect()
            client.loop_stop()
    except (OSError, ValueError, RuntimeError) as error:
        logger.warning("mqtt: command for site %s not published: %s", site_id, error)
        return f"The broker at {target.host}:{target.port} could not be reached: {error}"
    return None
