"""Webhooks: the API (secret shown once, manage right), signed deliveries a real receiver
checks, retries with back-off then failure, the SSRF rules, and one delivery per row however
many deliverers run."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.monitoring.api.rule_serializers import AlertOutputSerializer
from mlmanager.monitoring.models import AlertEvent, Notification, Webhook
from mlmanager.monitoring.services.delivery import (
    MAX_ATTEMPTS,
    deliver_due,
    retry_delay_s,
)
from mlmanager.monitoring.services.notifications import alert_notify
from mlmanager.monitoring.tests.notify_support import (
    Receiver,
    firing_alert,
    receiver,  # noqa: F401 - a fixture
    rule_of,
    signature_valid,
    webhook_of,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner() -> Any:
    return member("owner")


def test_webhook_api_shows_the_secret_once_and_needs_manage(owner: Any, receiver: Receiver) -> None:  # noqa: F811
    client = api_client_for(owner)
    created = client.post(
        "/api/v1/webhooks/", {"name": "Pager", "url": receiver.url}, format="json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    webhook = Webhook.objects.get(pk=body["id"])
    assert webhook.secret == body["secret"] and webhook.team_id == owner.current_team_id
    shown = client.get(f"/api/v1/webhooks/{webhook.pk}/").json()
    assert "secret" not in shown and shown["url"] == receiver.url
    assert [w["id"] for w in client.get("/api/v1/webhooks/").json()["results"]] == [webhook.pk]
    assert (
        client.post(
            "/api/v1/webhooks/", {"name": "Pager", "url": receiver.url}, format="json"
        ).json()["error"]["code"]
        == "already_exists"
    )
    changed = client.patch(f"/api/v1/webhooks/{webhook.pk}/", {"active": False}, format="json")
    assert changed.json()["active"] is False
    actions = AuditEvent.objects.filter(action__startswith="webhook.")
    assert sorted(actions.values_list("action", flat=True)) == [
        "webhook.changed",
        "webhook.created",
    ]
    # An editor may not see or make webhooks; another team's id is not found.
    editor = member("editor", team=owner.current_team)
    as_editor = api_client_for(editor)
    assert as_editor.get("/api/v1/webhooks/").json()["count"] == 0
    assert as_editor.get(f"/api/v1/webhooks/{webhook.pk}/").status_code == 403
    assert (
        as_editor.post(
            "/api/v1/webhooks/", {"name": "Mine", "url": receiver.url}, format="json"
        ).status_code
        == 403
    )
    stranger = api_client_for(member("owner"))
    assert stranger.get(f"/api/v1/webhooks/{webhook.pk}/").status_code == 404
    assert stranger.delete(f"/api/v1/webhooks/{webhook.pk}/").status_code == 404
    assert client.delete(f"/api/v1/webhooks/{webhook.pk}/").status_code == 204
    assert not Webhook.objects.filter(pk=webhook.pk).exists()


def test_a_delivery_is_signed_and_the_receiver_can_check_it(
    owner: Any,
    receiver: Receiver,  # noqa: F811
) -> None:
    team = owner.current_team
    hook = webhook_of(team, receiver.url, secret="whsec_shared-secret")
    rule = rule_of(team, notify=[{"kind": "webhook", "webhook": hook.pk}], severity="critical")
    alert, event = firing_alert(rule, title="Drift on Churn")
    alert_notify(alert=alert, event=event)
    notification = Notification.objects.get(alert=alert)
    assert notification.channel == "webhook"
    assert deliver_due() == 1
    [delivery] = receiver.received
    assert signature_valid(delivery, "whsec_shared-secret")
    assert not signature_valid(delivery, "whsec_another-secret")
    assert delivery.headers["x-mlmanager-event"] == "firing"
    assert delivery.headers["x-mlmanager-delivery"] == str(notification.pk)
    assert delivery.headers["content-type"] == "application/json"
    body = delivery.json()
    assert set(body) == {"event", "alert", "sent_at"}
    assert body["event"] == "firing"
    assert body["alert"]["id"] == alert.pk
    assert sorted(body["alert"]) == sorted(AlertOutputSerializer.Meta.fields)  # the API shape
    assert body["alert"]["title"] == "Drift on Churn"
    assert body["alert"]["severity"] == "critical"
    assert body["alert"]["state"] == "firing"
    assert body["sent_at"].endswith("Z")
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)
    assert deliver_due() == 0 and len(receiver.received) == 1


def test_a_failing_receiver_is_retried_with_back_off_then_failed(owner: Any, settings: Any) -> None:
    settings.MLMANAGER_WEBHOOK_ALLOW_PRIVATE = True
    team = owner.current_team
    with Receiver(status=500) as failing:
        hook = webhook_of(team, failing.url)
        rule = rule_of(team, notify=[{"kind": "webhook", "webhook": hook.pk}])
        alert, event = firing_alert(rule)
        alert_notify(alert=alert, event=event)
        notification = Notification.objects.get(alert=alert)
        now = timezone.now()
        waits = []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert deliver_due(now) == 1
            notification.refresh_from_db()
            assert notification.attempts == attempt
            assert "HTTP 500" in notification.last_error
            if attempt < MAX_ATTEMPTS:
                assert notification.status == "pending"
                waits.append(notification.next_attempt_at - now)
                # Not a moment before its time.
                assert deliver_due(notification.next_attempt_at - timedelta(seconds=1)) == 0
                now = notification.next_attempt_at
        assert waits == [timedelta(seconds=retry_delay_s(n)) for n in range(1, MAX_ATTEMPTS)]
        assert [wait.total_seconds() for wait in waits] == [30, 60, 120, 240, 480]
        assert notification.status == "failed"
        assert len(failing.received) == MAX_ATTEMPTS
        failed = AlertEvent.objects.get(alert=alert, kind="notification_failed")
        assert failed.data["notification"] == notification.pk
        assert failed.data["attempts"] == MAX_ATTEMPTS
        assert deliver_due(now + timedelta(days=1)) == 0
        assert len(failing.received) == MAX_ATTEMPTS


def test_private_addresses_are_refused_unless_allowed(owner: Any, settings: Any) -> None:
    client = api_client_for(owner)
    settings.MLMANAGER_WEBHOOK_ALLOW_PRIVATE = False
    for url in (
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:192.168.0.1]/hook",
    ):
        answer = client.post("/api/v1/webhooks/", {"name": url, "url": url}, format="json")
        assert answer.status_code == 400, url
        assert answer.json()["error"]["code"] == "webhook_address_refused", url
    not_http = client.post(
        "/api/v1/webhooks/", {"name": "ftp", "url": "ftp://files.example.com/x"}, format="json"
    )
    assert not_http.status_code == 400
    assert not_http.json()["error"]["code"] == "invalid_webhook_url"
    assert Webhook.objects.count() == 0
    # A public address is accepted (no connection is made to save it).
    public = client.post(
        "/api/v1/webhooks/", {"name": "public", "url": "https://93.184.215.14/hook"}, format="json"
    )
    assert public.status_code == 201


def test_a_webhook_turned_private_is_not_sent_to(owner: Any, settings: Any) -> None:
    settings.MLMANAGER_WEBHOOK_ALLOW_PRIVATE = True
    team = owner.current_team
    with Receiver() as listening:
        hook = webhook_of(team, listening.url)
        rule = rule_of(team, notify=[{"kind": "webhook", "webhook": hook.pk}])
        alert, event = firing_alert(rule)
        alert_notify(alert=alert, event=event)
        settings.MLMANAGER_WEBHOOK_ALLOW_PRIVATE = False  # e.g. production settings
        assert deliver_due() == 1
        assert listening.received == []
    notification = Notification.objects.get(alert=alert)
    assert notification.status == "failed" and notification.attempts == 1
    assert AlertEvent.objects.filter(alert=alert, kind="notification_failed").exists()


def test_webhook_test_sends_a_signed_ping(owner: Any, receiver: Receiver) -> None:  # noqa: F811
    client = api_client_for(owner)
    created = client.post(
        "/api/v1/webhooks/", {"name": "Pager", "url": receiver.url}, format="json"
    ).json()
    answer = client.post(f"/api/v1/webhooks/{created['id']}/test/")
    assert answer.json() == {"ok": True, "status_code": 200, "error": ""}
    [ping] = receiver.received
    assert signature_valid(ping, created["secret"])
    assert ping.json()["event"] == "ping" and ping.json()["alert"] is None
    receiver.status = 404
    answer = client.post(f"/api/v1/webhooks/{created['id']}/test/").json()
    assert answer["ok"] is False and answer["status_code"] == 404


@pytest.mark.django_db(transaction=True)
def test_two_deliverers_send_each_row_once(owner: Any, receiver: Receiver) -> None:  # noqa: F811
    team = owner.current_team
    hook = webhook_of(team, receiver.url)
    rule = rule_of(team, notify=[{"kind": "webhook", "webhook": hook.pk}])
    for _ in range(8):
        alert, event = firing_alert(rule)
        alert_notify(alert=alert, event=event)
        alert.state, alert.resolved_at = "resolved", timezone.now()
        alert.save(update_fields=["state", "resolved_at"])
    now = timezone.now()
    if connection.vendor == "postgresql":
        # Concurrently, each thread on its own connection (SKIP LOCKED claims).
        counts: list[int] = []
        start = threading.Barrier(2)

        def deliver() -> None:
            try:
                start.wait()
                counts.append(deliver_due(now))
            finally:
                connection.close()

        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(counts) == 8
    else:
        # SQLite has one writer at a time: the claims interleave, and each row is won once.
        assert deliver_due(now, limit=5) + deliver_due(now, limit=5) + deliver_due(now) == 8
    assert len(receiver.received) == 8
    assert sorted(d.headers["x-mlmanager-delivery"] for d in receiver.received) == sorted(
        str(pk) for pk in Notification.objects.values_list("pk", flat=True)
    )
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_a_name_rebinding_to_a_private_address_after_the_check_is_not_sent_to(
    owner: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name resolves to a public address when checked, then to the
    servers' own network. The POST goes to the address checked, so a second lookup (the one
    an HTTP client would make) is never made and the loopback receiver hears nothing."""
    import ipaddress
    import socket

    from mlmanager.monitoring.services import delivery

    settings.MLMANAGER_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(delivery, "WEBHOOK_TIMEOUT_S", 0.5)  # the public address is not there
    real_lookup = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example":
            return real_lookup(host, port, *args, **kwargs)
        lookups.append(host)
        address = "93.184.215.14" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with Receiver() as listening:
        port = listening.server.server_address[1]
        hook = Webhook.objects.create(
            team=owner.current_team, name="Rebind", url=f"http://rebind.example:{port}/hook"
        )
        with pytest.raises(Exception):  # noqa: B017 - whatever the network answers
            delivery.webhook_post(webhook=hook, event="ping", alert=None, delivery="d-1")
        assert listening.received == []
    assert lookups == ["rebind.example"]
    assert ipaddress.ip_address("93.184.215.14").is_global  # the premise


def test_the_post_to_a_checked_address_keeps_the_host_name(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connected to the address the check returned, the request still names its host (the
    Host header; for https, the TLS server name the certificate is verified against)."""
    import ipaddress

    from mlmanager.monitoring.services import delivery

    with Receiver() as listening:
        port = listening.server.server_address[1]
        monkeypatch.setattr(
            delivery, "webhook_url_check", lambda url: [ipaddress.ip_address("127.0.0.1")]
        )
        hook = Webhook.objects.create(
            team=owner.current_team, name="Named", url=f"http://hooks.example:{port}/in?x=1"
        )
        answer = delivery.webhook_post(webhook=hook, event="ping", alert=None, delivery="d-2")
        assert answer.status_code == 200
        [ping] = listening.received
    assert ping.headers["host"] == f"hooks.example:{port}"
    assert ping.path == "/in?x=1"
    url, headers, extensions = delivery._pinned(
        "https://user:pw@hooks.example/in", ipaddress.ip_address("2606:2800:220:1::1")
    )
    assert url == "https://user:pw@[2606:2800:220:1::1]/in"
    assert headers == {"Host": "hooks.example"}
    assert extensions == {"sni_hostname": "hooks.example"}
