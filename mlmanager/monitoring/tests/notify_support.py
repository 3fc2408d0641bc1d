"""Real components for the notification and report tests: an SMTP server (aiosmtpd) and a
webhook receiver (http.server), both on loopback, plus small builders of rules and alerts.

The fixtures are imported by the test modules that use them (`from ... import mailbox`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from mlmanager.core.tests.smtp import Mailbox, smtp_server
from mlmanager.monitoring.models import Alert, AlertEvent, AlertRule, Webhook

# --- SMTP ----------------------------------------------------------------------------------------


@pytest.fixture
def mailbox(settings: Any) -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1 that Django's SMTP backend sends to."""
    with smtp_server(settings) as received:
        yield received


# --- webhooks ------------------------------------------------------------------------------------


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[Delivery] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append(
                        Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.MLMANAGER_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    with Receiver() as running:
        yield running


def signature_valid(delivery: Delivery, secret: str) -> bool:
    """What a receiver does: recompute the HMAC of "<t>.<body>" and compare."""
    parts = dict(
        item.split("=", 1) for item in delivery.headers["x-mlmanager-signature"].split(",")
    )
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + delivery.body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


# --- rules and alerts ----------------------------------------------------------------------------


def rule_of(team: Any, *, site: Any = None, sensors: tuple[Any, ...] = (), **fields: Any) -> Any:
    series = [
        {"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}
        for sensor in sensors
    ]
    fields.setdefault("name", f"Rule {AlertRule.objects.count() + 1}")
    fields.setdefault("condition", {"series": 0, "op": "above", "value": 80})
    fields.setdefault("notify", [{"kind": "team"}])
    rule = AlertRule.objects.create(team=team, site=site, series=series, **fields)
    rule.sensors.set(sensors)
    return rule


def firing_alert(
    rule: Any, *, severity: str | None = None, firing_at: datetime | None = None, **fields: Any
) -> tuple[Alert, AlertEvent]:
    """A firing alert of the rule (as the engine leaves it) and its firing event."""
    moment = firing_at or timezone.now()
    alert = Alert.objects.create(
        team_id=rule.team_id,
        rule=rule,
        site_id=rule.site_id,
        severity=severity or rule.severity,
        state=Alert.State.FIRING,
        title=fields.pop("title", f"{rule.name} is above 80"),
        value=fields.pop("value", 91.5),
        started_at=fields.pop("started_at", moment),
        firing_at=moment,
        **fields,
    )
    event = AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.FIRING, created_at=moment)
    return alert, event


def webhook_of(team: Any, url: str, *, secret: str = "whsec_test-secret") -> Webhook:  # noqa: S107
    return Webhook.objects.create(team=team, name=f"Hook {url}", url=url, secret=secret)
