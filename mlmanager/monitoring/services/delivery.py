"""Delivering the outbox, and escalation.

`deliver_due` (the `monitoring.deliver` periodic task) claims due e-mail and webhook rows,
sends them and retries failures with exponential back-off; after MAX_ATTEMPTS a row is failed
and its alert's timeline says so. Webhooks are POSTed signed (`webhook_signature`), only to
http(s) URLs and, unless MLMANAGER_WEBHOOK_ALLOW_PRIVATE, never to private or local addresses
(`webhook_url_check`; the POST connects to the address checked, so a name that resolves
elsewhere a moment later cannot take it inside). `escalate_due` (the `monitoring.escalate`
task) notifies a rule's `escalate_to` once when its firing alert stays unacknowledged too
long.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time as clock
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.core.errors import ApplicationError
from mlmanager.monitoring.models import Alert, AlertEvent, Notification, Webhook
from mlmanager.monitoring.services.notifications import alert_notify

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
FIRST_RETRY_S = 30  # then 60, 120, 240, 480: the 6th failure is final (about 15 minutes)
# A claimed row is someone's for this long: if its deliverer dies, another takes it after.
# Longer than any send (a webhook's timeout, an SMTP conversation).
CLAIM_LEASE = timedelta(minutes=5)
DELIVER_BATCH = 100
WEBHOOK_TIMEOUT_S = 5.0
SIGNATURE_HEADER = "X-MLManager-Signature"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- webhooks: where they may go, and how they are signed ----------------------------------------


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def webhook_url_check(url: str, *, resolve: bool = True) -> list[Address]:
    """Refuse a URL that is not http(s), and — unless MLMANAGER_WEBHOOK_ALLOW_PRIVATE — one
    whose host is (or, with `resolve`, resolves to) a private, loopback, link-local or other
    non-public address: a webhook must not reach the servers' own network (SSRF). Returns the
    addresses checked (none when private ones are allowed, or a name was not resolved): the
    POST connects to one of them (`webhook_post`), not to a second lookup's answer."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApplicationError(
            _("A webhook URL must be an http:// or https:// address."), code="invalid_webhook_url"
        )
    if settings.MLMANAGER_WEBHOOK_ALLOW_PRIVATE:
        return []
    host = parts.hostname
    addresses: list[Address]
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if host.rstrip(".").lower() == "localhost" or host.lower().endswith(".localhost"):
            addresses = [ipaddress.ip_address("127.0.0.1")]
        elif not resolve:
            return []
        else:
            try:
                infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError):
                raise ApplicationError(
                    _("The webhook's host name does not resolve."), code="webhook_unreachable"
                ) from None
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        mapped = getattr(address, "ipv4_mapped", None)
        address = mapped or address
        if not address.is_global or address.is_multicast:
            raise ApplicationError(
                _("A webhook may not be sent to a private or local address."),
                code="webhook_address_refused",
            )
    return addresses


def _pinned(url: str, address: Address) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL with its host replaced by a checked address, the Host header and, for https,
    the TLS server name (the certificate is verified against the host name, not the address):
    a name that resolves to a public address when checked and to a private one when connected
    (DNS rebinding) cannot take the POST inside."""
    parts = urlsplit(url)
    userinfo, _at, host_and_port = parts.netloc.rpartition("@")
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = (f"{userinfo}@" if userinfo else "") + literal
    if parts.port is not None:
        netloc += f":{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return pinned, {"Host": host_and_port}, extensions


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`."""
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_post(
    *, webhook: Webhook, event: str, alert: dict[str, Any] | None, delivery: str
) -> httpx.Response:
    """POST one signed event to the webhook (checked against the SSRF rules first). Redirects
    are not followed, the environment's proxies are not used and the connection goes to the
    address checked (`_pinned`): the address checked is the one connected to."""
    addresses = webhook_url_check(webhook.url)
    sent_at = timezone.now()
    body = json.dumps(
        {"event": event, "alert": alert, "sent_at": _iso(sent_at)}, separators=(",", ":")
    ).encode()
    timestamp = int(clock.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "MLManager-Webhook/1",
        "X-MLManager-Event": event,
        "X-MLManager-Delivery": delivery,
        SIGNATURE_HEADER: webhook_signature(secret=webhook.secret, timestamp=timestamp, body=body),
    }
    url = webhook.url
    extensions: dict[str, Any] = {}
    if addresses:
        url, host, extensions = _pinned(webhook.url, addresses[0])
        headers.update(host)
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False, trust_env=False) as client:
        return client.post(url, content=body, headers=headers, extensions=extensions)


# --- delivering the outbox -----------------------------------------------------------------------


class _Undeliverable(Exception):
    """A failure no retry can mend (no address, a disabled webhook): failed at once."""


def interval_s() -> float:
    return float(settings.MLMANAGER_NOTIFY_INTERVAL_S)


def escalate_interval_s() -> float:
    return 60.0


def deliver_task() -> None:
    """The `monitoring.deliver` periodic task."""
    deliver_due()


def escalate_task() -> None:
    """The `monitoring.escalate` periodic task."""
    escalate_due()


def deliver_due(now: datetime | None = None, *, limit: int = DELIVER_BATCH) -> int:
    """Send the e-mails and webhooks due at `now` (at most `limit`); how many were tried.
    Each row is claimed first, so two deliverers never send one twice."""
    now = now or timezone.now()
    ids = _claim(now, limit)
    claimed = Notification.objects.filter(pk__in=ids).select_related("user", "webhook")
    for notification in claimed.order_by("next_attempt_at", "pk"):
        _deliver(notification, now)
    return len(ids)


def _due(now: datetime) -> Any:
    return Notification.objects.filter(
        status=Notification.Status.PENDING, next_attempt_at__lte=now
    ).exclude(channel=Notification.Channel.IN_APP)


def _claim(now: datetime, limit: int) -> list[int]:
    """Take due rows by moving their next attempt a lease ahead and counting the attempt.
    PostgreSQL: rows locked by another deliverer are skipped. SQLite (one writer at a time):
    each row is taken by a conditional UPDATE that only one deliverer can win."""
    lease = {"next_attempt_at": now + CLAIM_LEASE, "attempts": F("attempts") + 1}
    if connection.vendor == "postgresql":
        with transaction.atomic():
            ids = list(
                _due(now)
                .select_for_update(skip_locked=True)
                .order_by("next_attempt_at", "pk")
                .values_list("pk", flat=True)[:limit]
            )
            Notification.objects.filter(pk__in=ids).update(**lease)
        return ids
    ids = []
    for pk, due_at in (
        _due(now).order_by("next_attempt_at", "pk").values_list("pk", "next_attempt_at")[:limit]
    ):
        won = Notification.objects.filter(
            pk=pk, status=Notification.Status.PENDING, next_attempt_at=due_at
        ).update(**lease)
        if won:
            ids.append(pk)
    return ids


def _deliver(notification: Notification, now: datetime) -> None:
    try:
        if notification.channel == Notification.Channel.EMAIL:
            _send_email(notification)
        else:
            _send_webhook(notification)
    except _Undeliverable as error:
        _failed(notification, now, str(error), final=True)
    except Exception as error:
        # Whatever the SMTP server or the receiver did (refused, timed out, answered 500):
        # the row is retried later; the next rows are still sent.
        logger.info("notification %s: attempt %s failed", notification.pk, notification.attempts)
        _failed(notification, now, f"{type(error).__name__}: {error}"[:2000], final=False)
    else:
        Notification.objects.filter(pk=notification.pk).update(
            status=Notification.Status.SENT, sent_at=timezone.now(), last_error=""
        )


def _send_email(notification: Notification) -> None:
    user = notification.user
    if user is None or not user.is_active or not user.email:
        raise _Undeliverable(_("The recipient has no active account with an e-mail address."))
    EmailMessage(subject=notification.subject, body=notification.body, to=[user.email]).send(
        fail_silently=False
    )


def _send_webhook(notification: Notification) -> None:
    webhook = notification.webhook
    if webhook is None or not webhook.active:
        raise _Undeliverable(_("The webhook is disabled."))
    try:
        response = webhook_post(
            webhook=webhook,
            event=str(notification.payload.get("event", "")),
            alert=notification.payload.get("alert"),
            delivery=str(notification.pk),
        )
    except ApplicationError as error:  # the URL is refused (SSRF rules)
        raise _Undeliverable(error.message) from None
    if not 200 <= response.status_code < 300:
        raise RuntimeError(
            _("The receiver answered HTTP %(status)s.") % {"status": response.status_code}
        )


def retry_delay_s(attempts: int) -> int:
    """Seconds before the next try after `attempts` failed ones: 30 s × 2^(attempts − 1)."""
    return FIRST_RETRY_S * 2 ** max(attempts - 1, 0)


def _failed(notification: Notification, now: datetime, error: str, *, final: bool) -> None:
    attempts = notification.attempts  # counted when claimed
    if not final and attempts < MAX_ATTEMPTS:
        Notification.objects.filter(pk=notification.pk).update(
            next_attempt_at=now + timedelta(seconds=retry_delay_s(attempts)), last_error=error
        )
        return
    with transaction.atomic():
        Notification.objects.filter(pk=notification.pk).update(
            status=Notification.Status.FAILED, last_error=error
        )
        if notification.alert_id is not None:
            AlertEvent.objects.create(
                alert_id=notification.alert_id,
                kind=AlertEvent.Kind.NOTIFICATION_FAILED,
                data={
                    "notification": notification.pk,
                    "channel": notification.channel,
                    "user": notification.user_id,
                    "webhook": notification.webhook_id,
                    "attempts": attempts,
                    "error": error[:500],
                },
            )
    logger.warning("notification %s failed after %s attempts", notification.pk, attempts)


# --- escalation ----------------------------------------------------------------------------------


def escalate_due(now: datetime | None = None) -> int:
    """Escalate the firing alerts left unacknowledged past their rule's `escalate_after_s`
    (unmuted, rule unmuted): notify its `escalate_to`, once. How many were escalated."""
    now = now or timezone.now()
    candidates = (
        Alert.objects.filter(
            state=Alert.State.FIRING,
            acknowledged_at__isnull=True,
            escalated_at__isnull=True,
            rule__escalate_after_s__isnull=False,
        )
        .unmuted()
        .select_related("rule")
        .order_by("pk")
    )
    escalated = 0
    for alert in candidates:
        rule = alert.rule
        assert rule is not None and rule.escalate_after_s is not None
        since = alert.firing_at or alert.started_at
        if rule.muted or since + timedelta(seconds=rule.escalate_after_s) > now:
            continue
        escalated += _escalate(alert, now)
    return escalated


@transaction.atomic
def _escalate(alert: Alert, now: datetime) -> int:
    # Only the deliverer whose UPDATE finds it still unescalated goes on: once, however many
    # schedulers look.
    won = Alert.objects.filter(
        pk=alert.pk,
        escalated_at__isnull=True,
        acknowledged_at__isnull=True,
        resolved_at__isnull=True,
    ).update(escalated_at=now)
    if not won:
        return 0
    alert.escalated_at = now
    assert alert.rule is not None
    event = AlertEvent.objects.create(
        alert=alert,
        kind=AlertEvent.Kind.ESCALATED,
        created_at=now,
        data={"after_s": alert.rule.escalate_after_s},
    )
    alert_notify(alert=alert, event=event)
    return 1
