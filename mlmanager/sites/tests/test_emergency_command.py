"""Emergency stop sends its command over MQTT after commit and records whether the broker
took it; without a broker the stop still happens."""

from __future__ import annotations

import json
import queue
import socket
from typing import Any

import paho.mqtt.client as paho
import pytest

from mlmanager.core.tests.factories import member
from mlmanager.monitoring.models import Alert
from mlmanager.sites import mqtt
from mlmanager.sites.models import Site, SiteCommand
from mlmanager.sites.services.sites import site_emergency_stop
from mlmanager.sites.tests.conftest import PrivateBroker
from mlmanager.sites.tests.factories import caller_of, site_of


@pytest.fixture
def owner_and_site(db: None) -> tuple[Any, Site]:
    user = member("owner")
    return user, site_of(user.current_team, "Mill", status="active", producing=True)


def stop(user: Any, site: Site, capture: Any) -> SiteCommand:
    with capture(execute=True):
        command = site_emergency_stop(caller=caller_of(user), site=site, reason="Smoke in hall 2")
    command.refresh_from_db()
    return command


def assert_stopped(site: Site) -> None:
    site.refresh_from_db()
    assert (site.status, site.producing) == ("offline", False)
    alert = Alert.objects.get(site=site)
    assert (alert.severity, alert.title) == ("emergency", "Emergency stop of Mill")


def test_the_command_reaches_a_subscriber_and_is_marked_published(
    mqtt_broker: PrivateBroker,
    owner_and_site: tuple[Any, Site],
    django_capture_on_commit_callbacks: Any,
) -> None:
    user, site = owner_and_site
    received: queue.Queue[paho.MQTTMessage] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    equipment = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="equipment")
    equipment.on_message = lambda client, userdata, message: received.put(message)
    equipment.on_subscribe = lambda *args: subscribed.put(True)
    equipment.connect("127.0.0.1", mqtt_broker.port)
    equipment.subscribe(mqtt.command_topic(site.pk), qos=1)
    equipment.loop_start()
    try:
        assert subscribed.get(timeout=30)
        command = stop(user, site, django_capture_on_commit_callbacks)
        message = received.get(timeout=30)
    finally:
        equipment.disconnect()
        equipment.loop_stop()
    assert message.topic == f"mlmanager/sites/{site.pk}/commands"
    assert message.qos == 1
    assert json.loads(message.payload) == command.payload
    assert command.payload["command"] == "emergency_stop"
    assert command.payload["reason"] == "Smoke in hall 2"
    assert command.payload["site"] == site.pk
    assert command.published_at is not None
    assert command.error == ""
    assert command.topic == mqtt.command_topic(site.pk)
    assert_stopped(site)


def test_with_the_broker_down_the_error_is_kept_and_the_site_still_stops(
    owner_and_site: tuple[Any, Site], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    user, site = owner_and_site
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.MLMANAGER_MQTT_URL = f"mqtt://127.0.0.1:{port}"
    command = stop(user, site, django_capture_on_commit_callbacks)
    assert command.published_at is None
    assert command.error.startswith(f"The broker at 127.0.0.1:{port} could not be reached:")
    assert_stopped(site)


def test_without_a_broker_configured_the_command_says_so(
    owner_and_site: tuple[Any, Site], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    user, site = owner_and_site
    settings.MLMANAGER_MQTT_URL = ""
    command = stop(user, site, django_capture_on_commit_callbacks)
    assert command.published_at is None
    assert command.error == "MLMANAGER_MQTT_URL is not set: no broker to send the command to."
    assert_stopped(site)
