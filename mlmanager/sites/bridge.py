"""The MQTT bridge: readings published by devices become stored readings (`mlmanager mqtt`).

Flow: paho's network thread puts each message of the shared subscription
`$share/mlmanager-bridge/<prefix>/sites/+/sensors/+` in an inbox; the bridge's own thread takes
them in batches, turns each payload into readings (the device id is the topic's), stores each
site's readings with one `readings_ingest` call, records what could not be stored as dead
letters, and only then acknowledges the messages (QoS 1, manual acknowledgements). A message is
therefore acknowledged only once its readings are committed: a bridge or broker that stops in
between makes the broker deliver it again, and the ingest counts the repeat as a duplicate.

The session is persistent (clean session off, a stable client id), so the broker keeps what
arrives while the bridge is away; several bridges with the same subscription group share the
messages between them.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, connections

from mlmanager.accounts.caller import Caller
from mlmanager.core.errors import ApplicationError
from mlmanager.sites import mqtt
from mlmanager.sites.selectors import site_teams
from mlmanager.sites.services.readings import (
    MAX_READINGS_PER_REQUEST,
    DeadLetterInput,
    dead_letters_record,
    readings_ingest,
)

logger = logging.getLogger(__name__)

SUBSCRIPTION_GROUP = "mlmanager-bridge"
BATCH_MESSAGES = 500
BATCH_SECONDS = 0.2
# Mosquitto sends a client at most 20 unacknowledged QoS 1 messages (max_inflight_messages):
# waiting the whole BATCH_SECONDS for more would cap a bridge at 100 messages a second, so a
# batch also ends when the inbox stays empty this long.
BATCH_IDLE_SECONDS = 0.02
RETRY_DELAY_S = 1.0
RECONNECT_MIN_DELAY_S = 1
RECONNECT_MAX_DELAY_S = 30
KEEPALIVE_S = 30


def shared_subscription() -> str:
    return f"$share/{SUBSCRIPTION_GROUP}/{mqtt.sensors_subscription()}"


@dataclass(frozen=True)
class Message:
    """A message received, with the connection it came on: its id means something on that
    connection only, so it is acknowledged only while that connection lasts."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int


@dataclass
class _SiteMessage:
    message: Message
    site_id: int
    readings: list[Any]


@dataclass(frozen=True)
class _Letter:
    message: Message
    site_id: int | None
    reason: str


def readings_of_payload(payload: bytes, device_id: str) -> list[Any] | str:
    """The readings of a message for the topic's device, or why there are none.

    A payload is `{"timestamp", "value", "quality"?}`, a list of them, or `{"readings": [...]}`.
    Each reading gets the topic's device id; its own sensor or device fields are dropped, so a
    device cannot write to another's sensor. A reading that is not an object is passed on as it
    is, for the ingest to reject with its reason.
    """
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as error:
        return f"The payload is not JSON: {error}"
    if isinstance(data, dict) and "readings" in data:
        data = data["readings"]
        if not isinstance(data, list):
            return 'The payload\'s "readings" is not a list.'
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return 'The payload is neither a reading object, a list of them, nor {"readings": [...]}.'
    if not data:
        return "The payload has no readings."
    if len(data) > MAX_READINGS_PER_REQUEST:
        return f"The payload has {len(data)} readings, more than {MAX_READINGS_PER_REQUEST}."
    readings: list[Any] = []
    for item in data:
        if isinstance(item, dict):
            reading = {key: item[key] for key in ("timestamp", "value", "quality") if key in item}
            reading["device_id"] = device_id
            readings.append(reading)
        else:
            readings.append(item)
    return readings


def messages_store(messages: Sequence[Message]) -> None:
    """Store the readings of the messages, one `readings_ingest` per site (in chunks of at
    most MAX_READINGS_PER_REQUEST), and keep what cannot be stored as dead letters. Raises
    when the database fails, before anything of a failed call is committed."""
    letters: list[_Letter] = []
    parsed: list[_SiteMessage] = []
    for message in messages:
        where = mqtt.parse_sensor_topic(message.topic)
        if where is None:
            letters.append(
                _Letter(message, None, f"The topic is not {mqtt.sensors_subscription()}.")
            )
            continue
        site_id, device_id = where
        readings = readings_of_payload(message.payload, device_id)
        if isinstance(readings, str):
            letters.append(_Letter(message, site_id, readings))
            continue
        parsed.append(_SiteMessage(message, site_id, readings))
    site_ids = {item.site_id for item in parsed} | {
        letter.site_id for letter in letters if letter.site_id is not None
    }
    teams = site_teams(site_ids=site_ids)
    by_site: dict[int, list[_SiteMessage]] = defaultdict(list)
    for item in parsed:
        if item.site_id not in teams:
            letters.append(_Letter(item.message, None, f"There is no site {item.site_id}."))
        else:
            by_site[item.site_id].append(item)
    for site_id in sorted(by_site):
        for chunk in _chunks(by_site[site_id]):
            letters.extend(_ingest(site_id, chunk))
    if letters:
        _dead_letters_record(letters, teams=teams)


def _chunks(items: list[_SiteMessage]) -> list[list[_SiteMessage]]:
    chunks: list[list[_SiteMessage]] = [[]]
    size = 0
    for item in items:
        if chunks[-1] and size + len(item.readings) > MAX_READINGS_PER_REQUEST:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += len(item.readings)
    return chunks


def _ingest(site_id: int, items: list[_SiteMessage]) -> list[_Letter]:
    """One ingest for the messages of a site; dead letters for the messages with rejections."""
    readings = [reading for item in items for reading in item.readings]
    try:
        answer = readings_ingest(caller=Caller.system(), readings=readings, site_id=site_id)
    except ApplicationError as error:
        return [_Letter(item.message, site_id, str(error.message)) for item in items]
    rejected: dict[int, dict[str, Any]] = {entry["index"]: entry for entry in answer["rejected"]}
    logger.debug(
        "mqtt bridge: site %s, %s messages: %s accepted, %s duplicates, %s rejected",
        site_id,
        len(items),
        answer["accepted"],
        answer["duplicates"],
        len(rejected),
    )
    letters = []
    start = 0
    for item in items:
        count = len(item.readings)
        mine = [rejected[index] for index in range(start, start + count) if index in rejected]
        start += count
        if not mine:
            continue
        reasons = "; ".join(
            f"#{entry['index'] - (start - count)} {entry['code']}: {entry['message']}"
            for entry in mine
        )
        if len(mine) == count:
            reason = f"Every reading was rejected: {reasons}"
        else:
            reason = f"{len(mine)} of {count} readings were rejected: {reasons}"
        letters.append(_Letter(item.message, site_id, reason))
    return letters


def _dead_letters_record(letters: Sequence[_Letter], *, teams: dict[int, int]) -> None:
    for letter in letters:
        logger.warning(
            "mqtt bridge: dead letter on %s: %s", letter.message.topic, letter.reason[:200]
        )
    dead_letters_record(
        letters=[
            DeadLetterInput(
                topic=letter.message.topic,
                payload=letter.message.payload.decode("utf-8", errors="replace"),
                reason=letter.reason,
                site_id=letter.site_id if letter.site_id in teams else None,
                team_id=teams.get(letter.site_id) if letter.site_id is not None else None,
            )
            for letter in letters
        ]
    )


class Bridge:
    """One bridge connection. `run()` blocks until `stop()` (from a signal handler or another
    thread); what was committed is acknowledged before it returns."""

    def __init__(
        self,
        *,
        client_id: str,
        batch_messages: int = BATCH_MESSAGES,
        batch_seconds: float = BATCH_SECONDS,
    ) -> None:
        self.client_id = client_id
        self.batch_messages = batch_messages
        self.batch_seconds = batch_seconds
        self.subscribed = threading.Event()
        self.stopping = threading.Event()
        self.messages_acknowledged = 0
        self._inbox: queue.Queue[Message] = queue.Queue()
        self._connection = 0
        self._lock = threading.Lock()
        self.client = mqtt.new_client(client_id, clean_start=False)
        self.client.manual_ack_set(True)
        self.client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        self.client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        target = mqtt.broker()
        if target is None:
            raise RuntimeError("MLMANAGER_MQTT_URL is not set")
        logger.info("mqtt bridge %s: connecting to %s:%s", self.client_id, target.host, target.port)
        # connect_async + loop_start: the network thread retries the first connection too,
        # and every later one, with the backoff of reconnect_delay_set.
        self.client.connect_async(target.host, target.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()
        try:
            while not self.stopping.is_set():
                batch = self._next_batch()
                if batch and self._store(batch):
                    self._acknowledge(batch)
        finally:
            # Acknowledgements queued above go out before the DISCONNECT packet; messages still
            # in the inbox were not acknowledged and come again on the next connection.
            self.client.disconnect()
            self.client.loop_stop()
            connections.close_all()
            logger.info("mqtt bridge %s: stopped", self.client_id)

    def _next_batch(self) -> list[Message]:
        try:
            batch = [self._inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.batch_seconds
        while len(batch) < self.batch_messages:
            remaining = min(deadline - time.monotonic(), BATCH_IDLE_SECONDS)
            if remaining <= 0:
                break
            try:
                batch.append(self._inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _store(self, batch: list[Message]) -> bool:
        """Store a batch, retrying while the database fails; False when stopping first."""
        while True:
            close_old_connections()
            try:
                messages_store(batch)
            except Exception:
                logger.exception(
                    "mqtt bridge: %s messages not stored; trying again in %s s",
                    len(batch),
                    RETRY_DELAY_S,
                )
                if self.stopping.wait(RETRY_DELAY_S):
                    return False
            else:
                return True

    def _acknowledge(self, batch: list[Message]) -> None:
        with self._lock:
            current = self._connection
        for message in batch:
            if message.connection != current:
                # The connection it came on is gone: the broker sends it again on the new
                # one, where it is stored as a duplicate and acknowledged.
                continue
            self.client.ack(message.mid, message.qos)
            self.messages_acknowledged += 1

    # paho callbacks, on its network thread

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            logger.warning("mqtt bridge %s: connection refused: %s", self.client_id, reason_code)
            return
        with self._lock:
            self._connection += 1
        logger.info(
            "mqtt bridge %s: connected (session kept by the broker: %s)",
            self.client_id,
            flags.session_present,
        )
        client.subscribe(shared_subscription(), qos=1)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self.subscribed.clear()
        if not self.stopping.is_set():
            logger.warning(
                "mqtt bridge %s: disconnected (%s); reconnecting", self.client_id, reason_code
            )

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        if any(code.is_failure for code in reason_codes):
            logger.error(
                "mqtt bridge %s: subscription to %s refused: %s",
                self.client_id,
                shared_subscription(),
                reason_codes,
            )
            return
        logger.info("mqtt bridge %s: subscribed to %s", self.client_id, shared_subscription())
        self.subscribed.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            current = self._connection
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = message._topic.decode("utf-8", errors="replace")
        self._inbox.put(Message(topic, bytes(message.payload), message.mid, message.qos, current))
