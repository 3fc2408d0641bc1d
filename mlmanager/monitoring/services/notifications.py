"""Who hears of an alert, and the outbox that tells them.

`alert_notify` runs in the transaction of the change it announces (an alert fires, resolves or
escalates): it picks the people and webhooks among the rule's targets, applies each person's
preferences, and writes one `Notification` row per message (the outbox). In-app rows are the
notification itself: they are written sent, and the user's open pages hear of them after the
commit. E-mails and webhooks wait for `delivery.deliver_due` (the `monitoring.deliver` periodic
task). Also here: the validation of a rule's targets, and each person's preferences.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership, Team, User
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.core.filters import MAX_ID
from mlmanager.core.schedules import zone_or_utc
from mlmanager.live.events import user_group
from mlmanager.machines.selectors import machines_for_caller
from mlmanager.monitoring.models import (
    SEVERITY_RANK,
    Alert,
    AlertEvent,
    AlertRule,
    Notification,
    NotificationPreference,
    Severity,
    Webhook,
)
from mlmanager.sites.access import TEAM_ROLES_OVER_EVERY_SITE
from mlmanager.sites.models import SiteMembership
from mlmanager.sites.selectors import sites_for_caller

logger = logging.getLogger(__name__)

# Events people are told of; the others (acknowledged, commented...) are on the timeline only.
NOTIFYING_EVENTS = frozenset(
    {AlertEvent.Kind.FIRING, AlertEvent.Kind.RESOLVED, AlertEvent.Kind.ESCALATED}
)
MAX_TARGETS = 50


# --- who may hear of an alert --------------------------------------------------------------------


def members_who_see(
    *, team_id: int, site_id: int | None, user_ids: Iterable[int] | None = None
) -> dict[int, User]:
    """The team's active members (of `user_ids` when given) who see an object of `site_id`
    (every member when it is None; for a site: team owners and admins, and those with a role
    on the site), by id."""
    memberships = Membership.objects.filter(team_id=team_id, user__is_active=True).select_related(
        "user"
    )
    if user_ids is not None:
        memberships = memberships.filter(user_id__in=list(user_ids))
    if site_id is not None:
        granted = SiteMembership.objects.filter(site_id=site_id).values("user_id")
        memberships = memberships.filter(
            Q(role__in=TEAM_ROLES_OVER_EVERY_SITE) | Q(user_id__in=granted)
        )
    return {membership.user_id: membership.user for membership in memberships}


def _members_who_see_each(
    keys: Iterable[tuple[int, int | None, tuple[int, ...] | None]],
) -> dict[tuple[int, int | None, tuple[int, ...] | None], dict[int, User]]:
    """`members_who_see` of each (team, site, user ids or None), two queries per team
    however many sites (an ingest batch's alerts are on up to every site of the team)."""
    by_team: dict[int, list[tuple[int, int | None, tuple[int, ...] | None]]] = defaultdict(list)
    for key in keys:
        by_team[key[0]].append(key)
    people: dict[tuple[int, int | None, tuple[int, ...] | None], dict[int, User]] = {}
    for team_id, team_keys in by_team.items():
        memberships = list(
            Membership.objects.filter(team_id=team_id, user__is_active=True).select_related("user")
        )
        site_ids = {site_id for _team, site_id, _named in team_keys if site_id is not None}
        granted: dict[int, set[int]] = defaultdict(set)
        if site_ids:
            for granted_site, user_id in SiteMembership.objects.filter(
                site_id__in=site_ids
            ).values_list("site_id", "user_id"):
                granted[granted_site].add(user_id)
        over_every_site = set(TEAM_ROLES_OVER_EVERY_SITE)
        for key in team_keys:
            _team, site_id, named = key
            allowed = None if named is None else set(named)
            people[key] = {
                membership.user_id: membership.user
                for membership in memberships
                if (allowed is None or membership.user_id in allowed)
                and (
                    site_id is None
                    or membership.role in over_every_site
                    or membership.user_id in granted[site_id]
                )
            }
    return people


@dataclass(frozen=True)
class Wishes:
    """A person's preferences in one team, or the defaults when they set none."""

    min_severity: str = Severity.WARNING
    site_ids: frozenset[int] = frozenset()
    machine_ids: frozenset[int] = frozenset()
    email: bool = True
    in_app: bool = True
    quiet_start: time | None = None
    quiet_end: time | None = None

    def wants(self, *, severity: str, site_id: int | None, machine_ids: set[int]) -> bool:
        if SEVERITY_RANK[Severity(severity)] < SEVERITY_RANK[Severity(self.min_severity)]:
            return False
        if self.site_ids and site_id is not None and site_id not in self.site_ids:
            return False
        return not (self.machine_ids and machine_ids and not (machine_ids & self.machine_ids))


def _wishes(*, team_id: int, user_ids: Iterable[int]) -> dict[int, Wishes]:
    preferences = NotificationPreference.objects.filter(
        team_id=team_id, user_id__in=list(user_ids)
    ).prefetch_related("sites", "machines")
    return {
        preference.user_id: Wishes(
            min_severity=preference.min_severity,
            site_ids=frozenset(site.pk for site in preference.sites.all()),
            machine_ids=frozenset(machine.pk for machine in preference.machines.all()),
            email=preference.email,
            in_app=preference.in_app,
            quiet_start=preference.quiet_start,
            quiet_end=preference.quiet_end,
        )
        for preference in preferences
    }


def quiet_until(
    *, now: datetime, time_zone: str, start: time | None, end: time | None
) -> datetime | None:
    """When the quiet hours `start`–`end` (local times in `time_zone`; they may span
    midnight) that `now` falls in end, in UTC; None outside quiet hours or without them."""
    if start is None or end is None or start == end:
        return None
    zone = zone_or_utc(time_zone)
    local = now.astimezone(zone)
    moment = local.time().replace(tzinfo=None)
    if start < end:
        quiet = start <= moment < end
        end_day = local.date()
    else:  # 22:00–07:00
        quiet = moment >= start or moment < end
        end_day = local.date() if moment < end else local.date() + timedelta(days=1)
    if not quiet:
        return None
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)


# --- what is said --------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def alert_document(alert: Alert, *, comments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The alert as the API shows it (monitoring.api.rule_serializers.AlertOutputSerializer;
    webhook bodies carry it), written without the API layer: services do not import it.
    `comments`: its comments' documents when read already (else one query)."""
    return {
        "id": alert.pk,
        "rule": alert.rule_id,
        "site": alert.site_id,
        "model": alert.machine_id,
        "sensor": alert.sensor_id,
        "severity": alert.severity,
        "state": alert.state,
        "title": alert.title,
        "message": alert.message,
        "value": alert.value,
        "acknowledged": alert.acknowledged,
        "acknowledged_by": alert.acknowledged_by_id,
        "acknowledged_at": _iso(alert.acknowledged_at),
        "muted": alert.muted,
        "muted_until": _iso(alert.muted_until),
        "assigned_to": alert.assigned_to_id,
        "started_at": _iso(alert.started_at),
        "firing_at": _iso(alert.firing_at),
        "resolved_at": _iso(alert.resolved_at),
        "resolved_by": alert.resolved_by_id,
        "comments": (
            comments
            if comments is not None
            else [
                _comment_document(comment)
                for comment in AlertEvent.objects.filter(
                    alert_id=alert.pk, kind=AlertEvent.Kind.COMMENTED
                )
                .select_related("user")
                .order_by("created_at", "id")
            ]
        ),
        "created_at": _iso(alert.created_at),
    }


def _comment_document(comment: AlertEvent) -> dict[str, Any]:
    return {
        "id": comment.pk,
        "user": comment.user_id,
        "email": comment.user.email if comment.user is not None else None,
        "text": comment.text,
        "created_at": _iso(comment.created_at),
    }


def _subject(alert: Alert, kind: str) -> str:
    severity = Severity(alert.severity).label
    if kind == AlertEvent.Kind.RESOLVED:
        text = _("Resolved: %(title)s") % {"title": alert.title}
    elif kind == AlertEvent.Kind.ESCALATED:
        text = _("Not acknowledged: %(title)s") % {"title": alert.title}
    else:
        text = alert.title
    return f"[{severity}] {text}"[:300]


def _body(alert: Alert, kind: str) -> str:
    lines = [alert.title]
    if alert.message:
        lines.append(alert.message)
    lines.append("")
    if alert.value is not None:
        lines.append(_("Value: %(value)s") % {"value": alert.value})
    lines.append(_("Started: %(moment)s") % {"moment": _iso(alert.started_at)})
    if kind == AlertEvent.Kind.RESOLVED and alert.resolved_at is not None:
        lines.append(_("Resolved: %(moment)s") % {"moment": _iso(alert.resolved_at)})
    if kind == AlertEvent.Kind.ESCALATED:
        lines.append(_("Nobody has acknowledged this alert yet."))
    lines.append("")
    lines.append(f"{settings.MLMANAGER_SITE_URL}/monitoring/alerts/{alert.pk}/")
    return "\n".join(lines)


# --- writing the outbox --------------------------------------------------------------------------


def _targets(alert: Alert, kind: str) -> list[dict[str, Any]]:
    rule = alert.rule
    if rule is None:
        return [{"kind": "team"}]  # an alert raised by an action (the emergency stop)
    return list(rule.escalate_to if kind == AlertEvent.Kind.ESCALATED else rule.notify)


def alert_notify(*, alert: Alert, event: AlertEvent) -> list[Notification]:
    """Write the notifications of `event` (the alert's firing, resolution or escalation), in
    the caller's transaction. A muted alert or rule tells nobody (the event stays on its
    timeline); a pending alert that resolves without having fired tells nobody either."""
    rows = notifications_plan([(alert, event.kind)])[0]
    if not rows:
        return []
    notifications_save(rows)
    notified_event(alert, event.kind, rows).save()
    return rows


def notifications_plan(
    announced: Sequence[tuple[Alert, str]], *, now: datetime | None = None
) -> list[list[Notification]]:
    """The notifications (unsaved) of each (alert, event kind), as `alert_notify` writes them:
    one list per item, empty for an event nobody is told of. The people who see each site,
    their preferences, the rules' models, the webhooks and the alerts' comments are read once
    for the whole batch (a few queries however many alerts: the evaluation announces all the
    transitions of an ingest batch or a scheduler run at once). Each alert is shown as it is
    in memory (its state right after its event) and must be saved (it has an id)."""
    now = now or timezone.now()
    wanted: list[tuple[int, Alert, str, list[dict[str, Any]]]] = []
    for index, (alert, kind) in enumerate(announced):
        if kind not in NOTIFYING_EVENTS:
            continue
        if kind == AlertEvent.Kind.RESOLVED and alert.firing_at is None:
            continue
        rule = alert.rule
        if alert.muted or (rule is not None and rule.muted):
            continue
        wanted.append((index, alert, kind, _targets(alert, kind)))
    planned: list[list[Notification]] = [[] for _item in announced]
    if not wanted:
        return planned
    audience = _Audience()
    audience.load(wanted)
    for index, alert, kind, targets in wanted:
        planned[index] = audience.rows(alert, kind, targets, now=now)
    return planned


class _Audience:
    """What `notifications_plan` reads once per batch: who sees what, their wishes, the
    rules' models, the webhooks and the alerts' comments."""

    def __init__(self) -> None:
        self.people: dict[tuple[int, int | None, tuple[int, ...] | None], dict[int, User]] = {}
        self.wishes: dict[int, dict[int, Wishes]] = {}
        self.rule_machines: dict[int, set[int]] = defaultdict(set)
        self.webhooks: dict[int, dict[int, Webhook]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = defaultdict(list)

    def load(self, wanted: Sequence[tuple[int, Alert, str, list[dict[str, Any]]]]) -> None:
        users_by_team: dict[int, set[int]] = defaultdict(set)
        webhook_ids: dict[int, set[int]] = defaultdict(set)
        self.people = _members_who_see_each(
            {
                key
                for _index, alert, _kind, targets in wanted
                if (key := self._people_key(alert, targets)) is not None
            }
        )
        for _index, alert, _kind, targets in wanted:
            key = self._people_key(alert, targets)
            if key is not None:
                users_by_team[alert.team_id].update(self.people[key])
            webhook_ids[alert.team_id].update(
                pk
                for target in targets
                if target.get("kind") == "webhook" and isinstance(pk := target.get("webhook"), int)
            )
        for team_id, user_ids in users_by_team.items():
            self.wishes[team_id] = _wishes(team_id=team_id, user_ids=user_ids)
        for team_id, ids in webhook_ids.items():
            self.webhooks[team_id] = {
                webhook.pk: webhook
                for webhook in Webhook.objects.filter(team_id=team_id, active=True, pk__in=ids)
            }
        rule_ids = {
            alert.rule_id
            for _index, alert, _kind, _targets in wanted
            if alert.machine_id is None and alert.rule_id is not None
        }
        if rule_ids:
            through = AlertRule.machines.through.objects.filter(alertrule_id__in=rule_ids)
            for rule_id, machine_id in through.values_list("alertrule_id", "machine_id"):
                self.rule_machines[rule_id].add(machine_id)
        alert_ids = {alert.pk for _index, alert, _kind, _targets in wanted}
        for comment in (
            AlertEvent.objects.filter(alert_id__in=alert_ids, kind=AlertEvent.Kind.COMMENTED)
            .select_related("user")
            .order_by("created_at", "id")
        ):
            self.comments[comment.alert_id].append(_comment_document(comment))

    @staticmethod
    def _people_key(
        alert: Alert, targets: list[dict[str, Any]]
    ) -> tuple[int, int | None, tuple[int, ...] | None] | None:
        everyone = any(target.get("kind") == "team" for target in targets)
        named = [target.get("user") for target in targets if target.get("kind") == "user"]
        if not (everyone or named):
            return None
        if everyone:
            return alert.team_id, alert.site_id, None
        return alert.team_id, alert.site_id, tuple(pk for pk in named if isinstance(pk, int))

    def rows(
        self, alert: Alert, kind: str, targets: list[dict[str, Any]], *, now: datetime
    ) -> list[Notification]:
        key = self._people_key(alert, targets)
        people = self.people[key] if key is not None else {}
        wishes = self.wishes.get(alert.team_id, {})
        if alert.machine_id is not None:
            machine_ids = {alert.machine_id}
        elif alert.rule_id is not None:
            machine_ids = self.rule_machines.get(alert.rule_id, set())
        else:
            machine_ids = set()
        subject, body = _subject(alert, kind), _body(alert, kind)
        payload = {
            "event": kind,
            "alert": alert_document(alert, comments=self.comments.get(alert.pk, [])),
        }
        rows: list[Notification] = []
        for user_id, user in sorted(people.items()):
            wish = wishes.get(user_id, Wishes())
            if not wish.wants(
                severity=alert.severity, site_id=alert.site_id, machine_ids=machine_ids
            ):
                continue
            common = {
                "team_id": alert.team_id,
                "alert": alert,
                "user": user,
                "subject": subject,
                "body": body,
                "payload": payload,
            }
            if wish.in_app:
                rows.append(
                    Notification(
                        channel=Notification.Channel.IN_APP,
                        status=Notification.Status.SENT,
                        sent_at=now,
                        next_attempt_at=now,
                        **common,
                    )
                )
            if wish.email and user.email:
                held = (
                    None
                    if alert.severity == Severity.EMERGENCY
                    else quiet_until(
                        now=now,
                        time_zone=user.time_zone,
                        start=wish.quiet_start,
                        end=wish.quiet_end,
                    )
                )
                rows.append(
                    Notification(
                        channel=Notification.Channel.EMAIL, next_attempt_at=held or now, **common
                    )
                )
        webhooks = self.webhooks.get(alert.team_id, {})
        named_webhooks = {
            target.get("webhook") for target in targets if target.get("kind") == "webhook"
        }
        rows.extend(
            Notification(
                team_id=alert.team_id,
                alert=alert,
                channel=Notification.Channel.WEBHOOK,
                webhook=webhook,
                subject=subject,
                body="",
                payload=payload,
                next_attempt_at=now,
            )
            for pk, webhook in sorted(webhooks.items())
            if pk in named_webhooks
        )
        return rows


def notifications_save(rows: Sequence[Notification]) -> None:
    """Write planned notifications (one statement), in the caller's transaction; the in-app
    ones are published to their users' pages after the commit."""
    if not rows:
        return
    Notification.objects.bulk_create(rows)
    in_app = [_live_event(row) for row in rows if row.channel == Notification.Channel.IN_APP]
    if in_app:
        transaction.on_commit(lambda: publish_notifications(in_app))


def notified_event(alert: Alert, kind: str, rows: Sequence[Notification]) -> AlertEvent:
    """The (unsaved) timeline line saying who was told of the alert's `kind` event."""
    return AlertEvent(
        alert=alert,
        kind=AlertEvent.Kind.NOTIFIED,
        data={
            "event": kind,
            "users": sorted({row.user_id for row in rows if row.user_id is not None}),
            "webhooks": sorted({row.webhook_id for row in rows if row.webhook_id is not None}),
            "channels": {
                channel: sum(1 for row in rows if row.channel == channel)
                for channel in Notification.Channel.values
            },
        },
    )


def _live_event(row: Notification) -> tuple[int, dict[str, Any]]:
    assert row.user_id is not None
    return row.user_id, {
        "type": "notification",
        "id": row.pk,
        "team_id": row.team_id,
        "alert": row.alert_id,
        "severity": row.payload["alert"]["severity"],
        "event": row.payload["event"],
        "subject": row.subject,
        "created_at": _iso(row.created_at),
    }


def publish_notifications(events: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Tell each user's open pages (their own group) of their new in-app notifications.
    Without a channel layer (the embedded default) the pages see them on their next look."""
    layer = get_channel_layer()
    if layer is None:
        return
    for user_id, event in events:
        try:
            async_to_sync(layer.group_send)(
                user_group(user_id), {"type": "notification.event", "event": event}
            )
        except Exception:
            # A live toast is a convenience: the notification is in the database already.
            logger.warning("live: notification %s could not be published", event["id"])


# --- rules' targets ------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(f"{field}: {message}", code="invalid_notify", details={"field": field})


def rule_notify_targets_validate(
    *, caller: Caller, team_id: int, notify: Any, field: str = "notify"
) -> list[dict[str, Any]]:
    """A rule's `notify` (or `escalate_to`, with `field`) normalised: a list of
    `{"kind": "team"}`, `{"kind": "user", "user": id}` (a member of the team) and
    `{"kind": "webhook", "webhook": id}` (the team's; naming one needs the team's MANAGE
    right, as webhooks hold secrets). Duplicates are dropped; 400 names the bad entry."""
    if not isinstance(notify, list):
        raise _invalid(field, _("must be a list of targets."))
    if len(notify) > MAX_TARGETS:
        raise _invalid(field, _("at most %(count)s targets.") % {"count": MAX_TARGETS})
    normalised: list[dict[str, Any]] = []
    for index, target in enumerate(notify):
        where = f"{field}[{index}]"
        if not isinstance(target, dict):
            raise _invalid(where, _("must be an object with a kind."))
        kind = target.get("kind")
        expected = {"team": {"kind"}, "user": {"kind", "user"}, "webhook": {"kind", "webhook"}}
        if not isinstance(kind, str) or kind not in expected:
            raise _invalid(f"{where}.kind", _("must be team, user or webhook."))
        extra = set(target) - expected[kind]
        if extra:
            raise _invalid(f"{where}.{sorted(extra)[0]}", _("is not a field of this target."))
        if kind == "team":
            entry: dict[str, Any] = {"kind": "team"}
        else:
            value = target.get(kind)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
                raise _invalid(f"{where}.{kind}", _("must be an id."))
            if kind == "user":
                if not Membership.objects.filter(team_id=team_id, user_id=value).exists():
                    raise _invalid(f"{where}.user", _("the team has no member with this id."))
            else:
                _require_webhook(caller=caller, team_id=team_id, webhook_id=value, where=where)
            entry = {"kind": kind, kind: value}
        if entry not in normalised:
            normalised.append(entry)
    return normalised


def _require_webhook(*, caller: Caller, team_id: int, webhook_id: int, where: str) -> None:
    from mlmanager.monitoring.selectors import access_webhook

    try:
        webhook = access_webhook(caller=caller, id=webhook_id)
    except NotFound:
        raise _invalid(f"{where}.webhook", _("the team has no webhook with this id.")) from None
    if webhook.team_id != team_id:
        raise _invalid(f"{where}.webhook", _("the team has no webhook with this id."))


# --- preferences ---------------------------------------------------------------------------------


def notification_preference_get(*, caller: Caller, team: Team) -> NotificationPreference:
    """The caller's preferences in the team; the defaults (unsaved) when they set none."""
    if caller.user is None:
        raise NotFound()
    found = (
        NotificationPreference.objects.filter(user=caller.user, team=team)
        .prefetch_related("sites", "machines")
        .first()
    )
    return found or NotificationPreference(user=caller.user, team=team)


@transaction.atomic
def notification_preference_set(
    *,
    caller: Caller,
    team: Team,
    min_severity: str = Severity.WARNING,
    site_ids: Sequence[int] = (),
    machine_ids: Sequence[int] = (),
    email: bool = True,
    in_app: bool = True,
    quiet_start: time | None = None,
    quiet_end: time | None = None,
) -> NotificationPreference:
    """Replace the caller's preferences in the team (a member's own, any role). Sites and
    models must be the team's ones the caller sees; quiet hours need both ends."""
    if caller.user is None:
        raise NotFound()
    if min_severity not in Severity.values:
        raise ApplicationError(
            _("min_severity must be one of info, warning, critical, emergency."),
            code="invalid_severity",
        )
    if (quiet_start is None) != (quiet_end is None):
        raise ApplicationError(
            _("Quiet hours need both quiet_start and quiet_end (or neither)."),
            code="invalid_quiet_hours",
        )
    site_ids, machine_ids = list(dict.fromkeys(site_ids)), list(dict.fromkeys(machine_ids))
    seen_sites = set(
        sites_for_caller(caller).filter(team=team, pk__in=site_ids).values_list("pk", flat=True)
    )
    for index, pk in enumerate(site_ids):
        if pk not in seen_sites:
            raise NotFound(
                _("sites[%(index)s]: the team has no site with this id.") % {"index": index}
            )
    seen_machines = set(
        machines_for_caller(caller=caller, team=team)
        .filter(pk__in=machine_ids)
        .values_list("pk", flat=True)
    )
    for index, pk in enumerate(machine_ids):
        if pk not in seen_machines:
            raise NotFound(
                _("models[%(index)s]: the team has no model with this id.") % {"index": index}
            )
    preference, _created = NotificationPreference.objects.get_or_create(user=caller.user, team=team)
    before = _preference_values(preference)
    preference.min_severity = min_severity
    preference.email, preference.in_app = email, in_app
    preference.quiet_start, preference.quiet_end = quiet_start, quiet_end
    preference.full_clean()
    preference.save()
    preference.sites.set(site_ids)
    preference.machines.set(machine_ids)
    after = _preference_values(preference)
    changes = {name: (before[name], after[name]) for name in after if before[name] != after[name]}
    if changes:
        audit_record(
            caller=caller,
            team=team,
            action=AuditAction.NOTIFICATION_PREFERENCE_CHANGED,
            target=preference,
            changes=changes,
        )
    return notification_preference_get(caller=caller, team=team)


def _preference_values(preference: NotificationPreference) -> dict[str, Any]:
    return {
        "min_severity": preference.min_severity,
        "sites": sorted(preference.sites.values_list("pk", flat=True)),
        "models": sorted(preference.machines.values_list("pk", flat=True)),
        "email": preference.email,
        "in_app": preference.in_app,
        "quiet_start": preference.quiet_start.isoformat() if preference.quiet_start else None,
        "quiet_end": preference.quiet_end.isoformat() if preference.quiet_end else None,
    }


def notifications_mark_read(*, caller: Caller, ids: Sequence[int] | None = None) -> int:
    """Mark the caller's in-app notifications read (those of `ids`, or all); how many were
    unread. A person's own reading state: not audited."""
    from mlmanager.monitoring.selectors import notifications_for_user

    unread = Notification.objects.filter(
        pk__in=notifications_for_user(caller).filter(read_at__isnull=True).values("pk")
    )
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())
