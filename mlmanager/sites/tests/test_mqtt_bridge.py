"""The MQTT bridge against a real (private) Mosquitto: storing, dead letters, no loss across
bridge and broker restarts, and two bridges sharing one subscription."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as paho
import pytest

from mlmanager.core.tests.factories import member
from mlmanager.sites import mqtt
from mlmanager.sites.bridge import Bridge, Message, messages_store, readings_of_payload
from mlmanager.sites.models import DeadLetter, Reading, Sensor, Site
from mlmanager.sites.tests.conftest import PrivateBroker
from mlmanager.sites.tests.factories import sensor_of, site_of

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE_S = 30.0
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def running_bridge(client_id: str = "bridge-test") -> Iterator[Bridge]:
    bridge = Bridge(client_id=client_id)
    thread = threading.Thread(target=bridge.run, name=client_id, daemon=True)
    thread.start()
    try:
        wait_for(bridge.subscribed.is_set, f"{client_id} to subscribe")
        yield bridge
    finally:
        bridge.stop()
        thread.join(timeout=DEADLINE_S)
        assert not thread.is_alive()


class Publisher:
    """A device: publishes with QoS 1 and waits for the broker's acknowledgement, connecting
    again (paho's loop does) when the broker restarts."""

    def __init__(self, broker: PrivateBroker) -> None:
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=f"device-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv311,
        )
        self.client.reconnect_delay_set(1, 2)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        wait_for(self.client.is_connected, "the publisher to connect")

    def publish(self, topic: str, payload: Any) -> None:
        body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        deadline = time.monotonic() + DEADLINE_S
        while True:
            wait_for(self.client.is_connected, "the publisher to connect")
            info = self.client.publish(topic, body, qos=1)
            # The connection dropped before it was sent: send it again (a duplicate at worst).
            with contextlib.suppress(RuntimeError):
                info.wait_for_publish(timeout=5)
            if info.is_published():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the broker did not take a message on {topic}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mqtt_broker: PrivateBroker) -> Iterator[Publisher]:
    device = Publisher(mqtt_broker)
    yield device
    device.close()


@pytest.fixture
def plant() -> tuple[Site, Sensor]:
    team = member("owner").current_team
    site = site_of(team, "Mill")
    sensor = sensor_of(
        site, "Boiler", device_id="boiler-1", calibration_multiplier=2.0, calibration_offset=1.0
    )
    return site, sensor


def reading(minute: int, value: float) -> dict[str, Any]:
    return {"timestamp": (START + timedelta(minutes=minute)).isoformat(), "value": value}


def stored_count(sensor: Sensor) -> int:
    return Reading.objects.filter(sensor=sensor).count()


def test_published_readings_are_stored_calibrated_and_duplicates_once(
    mqtt_broker: PrivateBroker, publisher: Publisher, plant: tuple[Site, Sensor]
) -> None:
    site, sensor = plant
    topic = mqtt.sensor_topic(site.pk, "boiler-1")
    with running_bridge():
        publisher.publish(topic, reading(0, 10.0))
        publisher.publish(topic, [reading(1, 11.0), reading(2, 12.0)])
        # A device names another sensor: ignored, the topic's device is the sensor.
        publisher.publish(topic, {"readings": [dict(reading(3, 13.0), sensor=999_999)]})
        publisher.publish(topic, [reading(1, 11.0), reading(2, 12.0)])  # sent twice
        wait_for(lambda: stored_count(sensor) == 4, "4 readings")
        time.sleep(0.1)
    rows = list(Reading.objects.filter(sensor=sensor).order_by("timestamp"))
    assert [(row.raw_value, row.value, row.quality) for row in rows] == [
        (10.0, 21.0, "good"),
        (11.0, 23.0, "good"),
        (12.0, 25.0, "good"),
        (13.0, 27.0, "good"),
    ]
    assert rows[-1].timestamp == START + timedelta(minutes=3)
    assert DeadLetter.objects.count() == 0
    sensor.refresh_from_db()
    assert sensor.last_value == 27.0


def test_bad_messages_become_dead_letters_and_are_not_redelivered(
    mqtt_broker: PrivateBroker, publisher: Publisher, plant: tuple[Site, Sensor]
) -> None:
    site, sensor = plant
    other_team_site = site_of(member("owner").current_team, "Elsewhere")
    sensor_of(other_team_site, "Theirs", device_id="theirs-1")
    good = mqtt.sensor_topic(site.pk, "boiler-1")
    bad = [
        (good, b"not json {"),
        (good, json.dumps("a string")),
        (good, json.dumps({"readings": 5})),
        (good, json.dumps([])),
        (mqtt.sensor_topic(site.pk, "no-such-device"), json.dumps(reading(0, 1.0))),
        # Another site's device through this site's topic: unknown here.
        (mqtt.sensor_topic(site.pk, "theirs-1"), json.dumps(reading(0, 1.0))),
        (mqtt.sensor_topic(987_654, "boiler-1"), json.dumps(reading(0, 1.0))),
        (f"{mqtt.prefix()}/sites/abc/sensors/boiler-1", json.dumps(reading(0, 1.0))),
        (good, json.dumps([{"timestamp": "yesterday", "value": 1}, {"value": "x"}])),
        (good, json.dumps([reading(5, 5.0), {"timestamp": START.isoformat(), "value": "NaN"}])),
    ]
    with running_bridge() as bridge:
        for topic, payload in bad:
            publisher.publish(topic, payload)
        wait_for(lambda: DeadLetter.objects.count() == len(bad), f"{len(bad)} dead letters")
        wait_for(lambda: bridge.messages_acknowledged == len(bad), "every message acknowledged")
    letters = {letter.payload: letter for letter in DeadLetter.objects.all()}
    assert letters["not json {"].reason.startswith("The payload is not JSON")
    assert letters["not json {"].site_id == site.pk
    assert letters["not json {"].team_id == site.team_id
    assert letters['"a string"'].reason.startswith("The payload is neither")
    assert letters['{"readings": 5}'].reason == 'The payload\'s "readings" is not a list.'
    assert letters["[]"].reason == "The payload has no readings."
    by_topic = {letter.topic: letter for letter in DeadLetter.objects.all()}
    unknown = by_topic[mqtt.sensor_topic(site.pk, "no-such-device")]
    assert unknown.reason.startswith("Every reading was rejected: #0 unknown_device:")
    assert by_topic[mqtt.sensor_topic(site.pk, "theirs-1")].reason.startswith(
        "Every reading was rejected: #0 unknown_device:"
    )
    no_site = by_topic[mqtt.sensor_topic(987_654, "boiler-1")]
    assert (no_site.reason, no_site.site_id, no_site.team_id) == (
        "There is no site 987654.",
        None,
        None,
    )
    assert by_topic[f"{mqtt.prefix()}/sites/abc/sensors/boiler-1"].reason.startswith(
        "The topic is not"
    )
    both_bad = next(letter for letter in letters.values() if "yesterday" in letter.payload)
    assert both_bad.reason.startswith("Every reading was rejected: #0 invalid_timestamp:")
    assert "#1 invalid_timestamp" in both_bad.reason
    half_bad = next(letter for letter in letters.values() if "NaN" in letter.payload)
    assert half_bad.reason.startswith("1 of 2 readings were rejected: #1 not_finite:")
    assert stored_count(sensor) == 1  # the good half of the last message
    # Acknowledged: a new session of the same client id gets none of them again.
    with running_bridge() as again:
        publisher.publish(good, reading(6, 6.0))
        wait_for(lambda: stored_count(sensor) == 2, "the next reading")
        wait_for(lambda: again.messages_acknowledged == 1, "its acknowledgement")
    assert DeadLetter.objects.count() == len(bad)


def test_a_long_payload_is_cut_in_its_dead_letter(plant: tuple[Site, Sensor]) -> None:
    site, _sensor = plant
    topic = mqtt.sensor_topic(site.pk, "boiler-1")
    messages_store([Message(topic, b"x" * 20_000, 1, 1, 1)])
    letter = DeadLetter.objects.get()
    assert len(letter.payload) == 10_000


def test_readings_take_the_topics_device() -> None:
    payload = json.dumps(
        [{"timestamp": 1, "value": 2, "quality": "bad", "sensor": 7, "device_id": "x"}, 3]
    ).encode()
    assert readings_of_payload(payload, "d-1") == [
        {"timestamp": 1, "value": 2, "quality": "bad", "device_id": "d-1"},
        3,
    ]


def test_messages_queued_while_the_bridge_is_away_survive_a_broker_restart(
    mqtt_broker: PrivateBroker, plant: tuple[Site, Sensor]
) -> None:
    site, sensor = plant
    topic = mqtt.sensor_topic(site.pk, "boiler-1")
    with running_bridge():
        pass  # the broker now keeps a persistent session with the shared subscription
    count = 200
    device = Publisher(mqtt_broker)
    for minute in range(count):
        device.publish(topic, reading(minute, float(minute)))
    device.close()
    mqtt_broker.restart()  # SIGTERM saves the queued messages with the session
    with running_bridge() as bridge:
        wait_for(lambda: stored_count(sensor) == count, f"{count} readings")
        wait_for(lambda: bridge.messages_acknowledged == count, "every acknowledgement")
    assert sorted(Reading.objects.filter(sensor=sensor).values_list("raw_value", flat=True)) == [
        float(minute) for minute in range(count)
    ]
    assert DeadLetter.objects.count() == 0


def test_a_broker_restart_mid_stream_loses_nothing(
    mqtt_broker: PrivateBroker, publisher: Publisher, plant: tuple[Site, Sensor]
) -> None:
    site, sensor = plant
    topic = mqtt.sensor_topic(site.pk, "boiler-1")
    count = 150
    with running_bridge() as bridge:
        for minute in range(count // 2):
            publisher.publish(topic, reading(minute, float(minute)))
        mqtt_broker.restart()
        wait_for(bridge.subscribed.is_set, "the bridge to subscribe again")
        for minute in range(count // 2, count):
            publisher.publish(topic, reading(minute, float(minute)))
        wait_for(lambda: stored_count(sensor) == count, f"{count} readings")
    assert DeadLetter.objects.count() == 0


def test_two_bridges_share_the_messages(
    mqtt_broker: PrivateBroker, publisher: Publisher, plant: tuple[Site, Sensor]
) -> None:
    site, sensor = plant
    topic = mqtt.sensor_topic(site.pk, "boiler-1")
    count = 200
    with running_bridge("bridge-a") as first, running_bridge("bridge-b") as second:
        for minute in range(count):
            publisher.publish(topic, reading(minute, float(minute)))
        wait_for(lambda: stored_count(sensor) == count, f"{count} readings")
        wait_for(
            lambda: first.messages_acknowledged + second.messages_acknowledged == count,
            "every acknowledgement",
        )
        assert first.messages_acknowledged > 0
        assert second.messages_acknowledged > 0
    assert DeadLetter.objects.count() == 0
