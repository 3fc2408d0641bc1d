"""Who hears of an alert (targets, site roles, preferences, quiet hours, mutes), the e-mails
delivered over a real SMTP server, the in-app notifications (live event, API) and escalation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.core.errors import ApplicationError, PermissionDenied
from mlmanager.core.tests.factories import TeamFactory, api_client_for, member
from mlmanager.live.events import user_group
from mlmanager.live.tests.conftest import run, socket
from mlmanager.monitoring.models import (
    Alert,
    AlertEvent,
    Notification,
    NotificationPreference,
)
from mlmanager.monitoring.services.delivery import deliver_due, escalate_due
from mlmanager.monitoring.services.notifications import (
    alert_notify,
    quiet_until,
    rule_notify_targets_validate,
)
from mlmanager.monitoring.tests.notify_support import (
    Mailbox,
    firing_alert,
    mailbox,  # noqa: F401 - a fixture
    rule_of,
    webhook_of,
)
from mlmanager.sites.tests.factories import sensor_of, site_of, site_role

pytestmark = pytest.mark.django_db
IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def mill() -> dict[str, Any]:
    """A team with a site: its owner, an operator of the site, an editor with no role on it,
    and a member of another team."""
    owner = member("owner")
    team = owner.current_team
    site = site_of(team)
    operator = member("viewer", team=team)
    site_role(site, operator, "operator")
    editor = member("editor", team=team)
    stranger = member("owner")
    sensor = sensor_of(site)
    return {
        "team": team,
        "site": site,
        "sensor": sensor,
        "owner": owner,
        "operator": operator,
        "editor": editor,
        "stranger": stranger,
    }


def rows(alert: Alert, channel: str) -> dict[int | None, Notification]:
    return {n.user_id: n for n in Notification.objects.filter(alert=alert, channel=channel)}


def test_team_target_reaches_the_members_who_see_the_site(mill: dict[str, Any]) -> None:
    rule = rule_of(mill["team"], site=mill["site"], sensors=(mill["sensor"],))
    alert, event = firing_alert(rule)
    written = alert_notify(alert=alert, event=event)
    expected = {mill["owner"].pk, mill["operator"].pk}  # not the editor, who cannot see the site
    assert set(rows(alert, "in_app")) == expected
    assert set(rows(alert, "email")) == expected
    assert len(written) == 4
    in_app = rows(alert, "in_app")[mill["owner"].pk]
    assert in_app.status == "sent" and in_app.sent_at is not None
    email = rows(alert, "email")[mill["owner"].pk]
    assert email.status == "pending" and email.attempts == 0
    assert email.subject == f"[Warning] {alert.title}"
    assert email.payload["alert"]["id"] == alert.pk
    assert email.payload["event"] == "firing"
    notified = AlertEvent.objects.get(alert=alert, kind="notified")
    assert notified.data["users"] == sorted(expected)
    assert notified.data["channels"] == {"email": 2, "webhook": 0, "in_app": 2}


def test_a_named_user_who_cannot_see_the_alert_is_not_told(mill: dict[str, Any]) -> None:
    rule = rule_of(
        mill["team"],
        site=mill["site"],
        sensors=(mill["sensor"],),
        notify=[
            {"kind": "user", "user": mill["editor"].pk},
            {"kind": "user", "user": mill["operator"].pk},
            {"kind": "user", "user": mill["stranger"].pk},
        ],
    )
    alert, event = firing_alert(rule)
    alert_notify(alert=alert, event=event)
    assert set(rows(alert, "email")) == {mill["operator"].pk}


def test_preferences_narrow_severity_sites_and_channels(mill: dict[str, Any]) -> None:
    team = mill["team"]
    other_site = site_of(team, name="Mill 2")
    NotificationPreference.objects.create(
        user=mill["owner"], team=team, min_severity="critical", email=True, in_app=True
    )
    narrowed = NotificationPreference.objects.create(user=mill["operator"], team=team, in_app=False)
    narrowed.sites.set([mill["site"]])
    rule = rule_of(team, site=mill["site"], sensors=(mill["sensor"],))
    alert, event = firing_alert(rule, severity="warning")
    alert_notify(alert=alert, event=event)
    # The owner wants critical and above; the operator e-mail only.
    assert set(rows(alert, "email")) == {mill["operator"].pk}
    assert rows(alert, "in_app") == {}
    # The operator's narrowing to Mill 1 keeps out Mill 2's alerts (the owner sees every site).
    site_role(other_site, mill["operator"], "operator")
    rule_2 = rule_of(team, site=other_site, severity="critical")
    alert_2, event_2 = firing_alert(rule_2)
    alert_notify(alert=alert_2, event=event_2)
    assert set(rows(alert_2, "email")) == {mill["owner"].pk}


def test_info_alerts_are_below_the_default_preferences(mill: dict[str, Any]) -> None:
    rule = rule_of(mill["team"], site=mill["site"], severity="info")
    alert, event = firing_alert(rule)
    assert alert_notify(alert=alert, event=event) == []
    assert not AlertEvent.objects.filter(alert=alert, kind="notified").exists()


def test_muted_rule_or_alert_notifies_nobody_and_keeps_its_events(mill: dict[str, Any]) -> None:
    muted_rule = rule_of(mill["team"], site=mill["site"], muted_at=timezone.now())
    alert, event = firing_alert(muted_rule)
    assert alert_notify(alert=alert, event=event) == []
    assert list(AlertEvent.objects.filter(alert=alert).values_list("kind", flat=True)) == ["firing"]
    rule = rule_of(mill["team"], site=mill["site"])
    muted_alert, event = firing_alert(rule, muted_at=timezone.now())
    assert alert_notify(alert=muted_alert, event=event) == []
    # A mute that has ended mutes nothing.
    muted_alert.muted_until = timezone.now() - timedelta(seconds=1)
    muted_alert.save(update_fields=["muted_until"])
    assert len(alert_notify(alert=muted_alert, event=event)) == 4
    assert Notification.objects.filter(alert__in=[alert]).count() == 0


def test_pending_that_never_fired_resolves_without_telling_anyone(mill: dict[str, Any]) -> None:
    rule = rule_of(mill["team"], site=mill["site"])
    now = timezone.now()
    alert = Alert.objects.create(
        team=mill["team"],
        rule=rule,
        site=mill["site"],
        severity="warning",
        state="resolved",
        title="Brief blip",
        resolved_at=now,
    )
    resolved = AlertEvent.objects.create(alert=alert, kind="resolved")
    pending = AlertEvent.objects.create(alert=alert, kind="pending")
    assert alert_notify(alert=alert, event=resolved) == []
    assert alert_notify(alert=alert, event=pending) == []
    # One that fired is resolved aloud.
    alert.firing_at = now - timedelta(minutes=3)
    assert {n.subject for n in alert_notify(alert=alert, event=resolved)} == {
        "[Warning] Resolved: Brief blip"
    }


def test_an_alert_without_rule_tells_the_team(mill: dict[str, Any]) -> None:
    alert = Alert.objects.create(
        team=mill["team"], site=mill["site"], severity="emergency", title="Emergency stop"
    )
    event = AlertEvent.objects.create(alert=alert, kind="firing")
    alert_notify(alert=alert, event=event)
    assert set(rows(alert, "email")) == {mill["owner"].pk, mill["operator"].pk}


# --- quiet hours ---------------------------------------------------------------------------------


def test_quiet_hours_span_midnight_in_the_users_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    evening = datetime(2026, 1, 15, 23, 30, tzinfo=paris)
    morning = datetime(2026, 1, 16, 6, 59, tzinfo=paris)
    noon = datetime(2026, 1, 16, 12, 0, tzinfo=paris)
    quiet = {"time_zone": "Europe/Paris", "start": time(22, 0), "end": time(7, 0)}
    expected = datetime(2026, 1, 16, 6, 0, tzinfo=UTC)  # 07:00 in Paris in winter
    assert quiet_until(now=evening.astimezone(UTC), **quiet) == expected
    assert quiet_until(now=morning.astimezone(UTC), **quiet) == expected
    assert quiet_until(now=noon.astimezone(UTC), **quiet) is None
    day = {"time_zone": "Asia/Tokyo", "start": time(12, 0), "end": time(13, 0)}
    tokyo_noon = datetime(2026, 1, 16, 12, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert quiet_until(now=tokyo_noon, **day) == datetime(2026, 1, 16, 4, 0, tzinfo=UTC)
    assert quiet_until(now=noon, time_zone="UTC", start=None, end=None) is None


def test_quiet_hours_hold_the_email_until_they_end(
    mill: dict[str, Any],
    mailbox: Mailbox,  # noqa: F811 - the fixture
) -> None:
    owner = mill["owner"]
    owner.time_zone = "America/New_York"
    owner.save(update_fields=["time_zone"])
    local = timezone.now().astimezone(ZoneInfo("America/New_York"))
    ends = (local + timedelta(hours=2)).replace(second=0, microsecond=0)
    NotificationPreference.objects.create(
        user=owner,
        team=mill["team"],
        quiet_start=(local - timedelta(hours=1)).time().replace(second=0, microsecond=0),
        quiet_end=ends.time(),
    )
    rule = rule_of(mill["team"], site=mill["site"], notify=[{"kind": "user", "user": owner.pk}])
    alert, event = firing_alert(rule)
    alert_notify(alert=alert, event=event)
    held = rows(alert, "email")[owner.pk]
    assert held.next_attempt_at == ends.astimezone(UTC)
    assert rows(alert, "in_app")[owner.pk].status == "sent"  # the app is not held back
    assert deliver_due() == 0
    assert mailbox.messages == []
    assert deliver_due(ends + timedelta(seconds=1)) == 1
    assert [message["Subject"] for message in mailbox.to(owner.email)] == [held.subject]
    # An emergency is never held.
    emergency = rule_of(
        mill["team"],
        site=mill["site"],
        severity="emergency",
        notify=[{"kind": "user", "user": owner.pk}],
    )
    alert, event = firing_alert(emergency)
    alert_notify(alert=alert, event=event)
    assert rows(alert, "email")[owner.pk].next_attempt_at <= timezone.now()


# --- delivery over SMTP --------------------------------------------------------------------------


def test_emails_are_delivered_over_smtp_once(
    mill: dict[str, Any],
    mailbox: Mailbox,  # noqa: F811 - the fixture
) -> None:
    rule = rule_of(mill["team"], site=mill["site"], severity="critical")
    alert, event = firing_alert(rule, title="Temperature above 80")
    alert_notify(alert=alert, event=event)
    assert deliver_due() == 2
    assert deliver_due() == 0
    message = mailbox.to(mill["operator"].email)[0]
    assert message["Subject"] == "[Critical] Temperature above 80"
    body = message.get_content()
    assert "Temperature above 80" in body and "91.5" in body
    assert f"/monitoring/alerts/{alert.pk}/" in body
    assert len(mailbox.messages) == 2
    sent = Notification.objects.filter(alert=alert, channel="email")
    assert {(n.status, n.attempts) for n in sent} == {("sent", 1)}


def test_an_email_to_an_inactive_account_fails_at_once(mill: dict[str, Any]) -> None:
    rule = rule_of(mill["team"], notify=[{"kind": "user", "user": mill["owner"].pk}])
    alert, event = firing_alert(rule)
    alert_notify(alert=alert, event=event)
    mill["owner"].is_active = False
    mill["owner"].save(update_fields=["is_active"])
    deliver_due()
    email = Notification.objects.get(alert=alert, channel="email")
    assert (email.status, email.attempts) == ("failed", 1)
    failed = AlertEvent.objects.get(alert=alert, kind="notification_failed")
    assert failed.data["notification"] == email.pk


# --- in the app ----------------------------------------------------------------------------------


def test_in_app_notifications_reach_the_users_live_group(
    mill: dict[str, Any], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(mill["owner"].pk), channel)
    rule = rule_of(mill["team"], site=mill["site"])
    alert, event = firing_alert(rule)
    with django_capture_on_commit_callbacks(execute=True):
        alert_notify(alert=alert, event=event)
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "notification.event"
    assert message["event"]["type"] == "notification"
    assert message["event"]["alert"] == alert.pk
    assert message["event"]["id"] == rows(alert, "in_app")[mill["owner"].pk].pk
    assert message["event"]["severity"] == "warning"


@pytest.mark.django_db(transaction=True)
def test_the_pages_socket_passes_the_users_notifications_on(
    mill: dict[str, Any], settings: Any
) -> None:
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER
    rule = rule_of(
        mill["team"], site=mill["site"], notify=[{"kind": "user", "user": mill["operator"].pk}]
    )
    alert, event = firing_alert(rule, title="Oven above 80")
    operator_socket, owner_socket = socket(mill["operator"]), socket(mill["owner"])

    def notify() -> None:
        with transaction.atomic():  # published once committed
            alert_notify(alert=alert, event=event)

    async def scenario() -> None:
        for communicator in (operator_socket, owner_socket):
            connected, _ = await communicator.connect(timeout=5)
            assert connected
        await database_sync_to_async(notify)()
        message = await operator_socket.receive_json_from(timeout=5)
        assert message["type"] == "notification"
        assert message["alert"] == alert.pk
        assert message["subject"] == "[Warning] Oven above 80"
        # Only the named user's pages hear of it.
        assert await owner_socket.receive_nothing(timeout=0.3)
        for communicator in (operator_socket, owner_socket):
            await communicator.disconnect()

    run(scenario)


def test_notifications_api_lists_the_callers_own_and_marks_them_read(
    mill: dict[str, Any],
) -> None:
    rule = rule_of(mill["team"], site=mill["site"])
    for _ in range(3):
        alert, event = firing_alert(rule)
        alert_notify(alert=alert, event=event)
        Alert.objects.filter(pk=alert.pk).update(state="resolved", resolved_at=timezone.now())
    client = api_client_for(mill["operator"])
    listed = client.get("/api/v1/notifications/").json()
    assert listed["count"] == 3
    first = listed["results"][0]
    assert first["read"] is False and first["severity"] == "warning" and first["event"] == "firing"
    mine = {n["id"] for n in listed["results"]}
    assert mine == set(
        Notification.objects.filter(user=mill["operator"], channel="in_app").values_list(
            "pk", flat=True
        )
    )
    # Someone else's ids are not marked.
    owners = list(
        Notification.objects.filter(user=mill["owner"], channel="in_app").values_list(
            "pk", flat=True
        )
    )
    answer = client.post(
        "/api/v1/notifications/read/", {"ids": [first["id"], *owners]}, format="json"
    )
    assert answer.json() == {"marked": 1}
    assert client.get("/api/v1/notifications/?unread=true").json()["count"] == 2
    assert client.get("/api/v1/notifications/?unread=false").json()["count"] == 1
    assert client.post("/api/v1/notifications/read/", {}, format="json").json() == {"marked": 2}
    assert client.get("/api/v1/notifications/?unread=true").json()["count"] == 0
    assert client.get("/api/v1/notifications/?unread=maybe").status_code == 400
    assert Notification.objects.filter(user=mill["owner"], read_at__isnull=False).count() == 0


def test_preferences_api(mill: dict[str, Any]) -> None:
    team = mill["team"]
    client = api_client_for(mill["operator"])
    assert client.get(f"/api/v1/notification_preferences/?team={team.pk}").json() == {
        "team": team.pk,
        "min_severity": "warning",
        "sites": [],
        "models": [],
        "email": True,
        "in_app": True,
        "quiet_start": None,
        "quiet_end": None,
    }
    wanted = {
        "min_severity": "critical",
        "sites": [mill["site"].pk],
        "email": False,
        "quiet_start": "22:00",
        "quiet_end": "07:00",
    }
    answer = client.put("/api/v1/notification_preferences/", wanted, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["sites"] == [mill["site"].pk]
    assert answer.json()["quiet_start"] == "22:00:00"
    saved = NotificationPreference.objects.get(user=mill["operator"], team=team)
    assert (saved.min_severity, saved.email, saved.in_app) == ("critical", False, True)
    # A site the operator does not see, another team's: not found.
    hidden = site_of(team, name="Hidden mill")
    refused = client.put("/api/v1/notification_preferences/", {"sites": [hidden.pk]}, format="json")
    assert refused.status_code == 404
    half = client.put("/api/v1/notification_preferences/", {"quiet_start": "22:00"}, format="json")
    assert half.status_code == 400
    assert half.json()["error"]["code"] == "invalid_quiet_hours"
    other = TeamFactory()
    assert client.get(f"/api/v1/notification_preferences/?team={other.pk}").status_code == 404


# --- rules' targets ------------------------------------------------------------------------------


def test_rule_targets_are_validated_with_the_bad_field_named(mill: dict[str, Any]) -> None:
    team = mill["team"]
    owner = Caller.for_session(mill["owner"])
    hook = webhook_of(team, "https://hooks.example.com/a")
    other_hook = webhook_of(mill["stranger"].current_team, "https://hooks.example.com/b")
    targets = [
        {"kind": "team"},
        {"kind": "user", "user": mill["editor"].pk},
        {"kind": "webhook", "webhook": hook.pk},
        {"kind": "team"},
    ]
    assert rule_notify_targets_validate(caller=owner, team_id=team.pk, notify=targets) == [
        {"kind": "team"},
        {"kind": "user", "user": mill["editor"].pk},
        {"kind": "webhook", "webhook": hook.pk},
    ]
    cases = [
        ([{"kind": "user", "user": mill["stranger"].pk}], "notify[0].user"),
        ([{"kind": "team"}, {"kind": "webhook", "webhook": other_hook.pk}], "notify[1].webhook"),
        ([{"kind": "pager"}], "notify[0].kind"),
        ([{"kind": "user", "user": "7"}], "notify[0].user"),
        ([{"kind": "team", "user": 3}], "notify[0].user"),
        (["team"], "notify[0]"),
    ]
    for notify, field in cases:
        with pytest.raises(ApplicationError) as error:
            rule_notify_targets_validate(caller=owner, team_id=team.pk, notify=notify)
        assert error.value.status_code == 400
        assert error.value.details == {"field": field}
        assert error.value.message.startswith(f"{field}:")
    # Naming a webhook needs the team's manage right (it holds a secret).
    with pytest.raises(PermissionDenied):
        rule_notify_targets_validate(
            caller=Caller.for_session(mill["editor"]),
            team_id=team.pk,
            notify=[{"kind": "webhook", "webhook": hook.pk}],
        )


# --- escalation ----------------------------------------------------------------------------------


def test_an_unacknowledged_alert_escalates_once(mill: dict[str, Any]) -> None:
    team = mill["team"]
    rule = rule_of(
        team,
        site=mill["site"],
        notify=[{"kind": "user", "user": mill["operator"].pk}],
        escalate_after_s=600,
        escalate_to=[{"kind": "user", "user": mill["owner"].pk}],
    )
    now = timezone.now()
    late, _event = firing_alert(rule, firing_at=now - timedelta(minutes=11))
    rule_2 = rule_of(team, site=mill["site"], escalate_after_s=600, escalate_to=[{"kind": "team"}])
    recent, _event = firing_alert(rule_2, firing_at=now - timedelta(minutes=9))
    rule_3 = rule_of(team, site=mill["site"], escalate_after_s=60, escalate_to=[{"kind": "team"}])
    seen, _event = firing_alert(
        rule_3,
        firing_at=now - timedelta(hours=1),
        acknowledged_at=now,
        acknowledged_by=mill["owner"],
    )
    assert escalate_due(now) == 1
    late.refresh_from_db()
    assert late.escalated_at == now
    assert AlertEvent.objects.filter(alert=late, kind="escalated").count() == 1
    told = Notification.objects.filter(alert=late)
    assert {(n.user_id, n.channel) for n in told} == {
        (mill["owner"].pk, "email"),
        (mill["owner"].pk, "in_app"),
    }
    assert told.first().subject.startswith("[Warning] Not acknowledged: ")  # type: ignore[union-attr]
    # Once only, however many times (or schedulers) look.
    assert escalate_due(now + timedelta(minutes=5)) == 1  # `recent` is due now, `late` is not again
    assert escalate_due(now + timedelta(hours=2)) == 0
    assert AlertEvent.objects.filter(alert=late, kind="escalated").count() == 1
    recent.refresh_from_db()
    seen.refresh_from_db()
    assert recent.escalated_at is not None and seen.escalated_at is None
    assert Notification.objects.filter(alert=seen).count() == 0
