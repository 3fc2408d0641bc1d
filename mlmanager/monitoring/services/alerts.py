"""What people do with alerts: acknowledge, assign, comment, mute, unmute, resolve; and alerts
raised without a rule (the emergency stop).

Each alert is found by the caller with `selectors.access_alert(action=OPERATE)`; each change
writes an AlertEvent (the alert's timeline) and an audit row, in one transaction, and the
alert's site dashboards hear of it after the commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership, User
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError
from mlmanager.core.parsers import contains_nul, invalid_text
from mlmanager.monitoring.access import MonitorAction, monitor_allows
from mlmanager.monitoring.models import Alert, AlertEvent, AlertRule, Severity
from mlmanager.monitoring.services import notifications
from mlmanager.monitoring.services.evaluation import next_evaluation
from mlmanager.sites.live import site_changed
from mlmanager.sites.models import SiteMembership

MAX_COMMENT = 2000
MAX_TITLE = 200


def _audit(caller: Caller, alert: Alert, action: AuditAction, **details: Any) -> None:
    audit_record(
        caller=caller,
        team=alert.team,
        action=action,
        target=alert,
        details={"title": alert.title, "site": alert.site_id, **details},
    )


def _changed(alert: Alert) -> None:
    if alert.site_id is not None:
        site_changed(site_ids={alert.site_id})


def _event(alert: Alert, kind: str, caller: Caller | None, **fields: Any) -> AlertEvent:
    return AlertEvent.objects.create(
        alert=alert, kind=kind, user=caller.user if caller is not None else None, **fields
    )


@transaction.atomic
def alert_acknowledge(*, caller: Caller, alert: Alert) -> Alert:
    """Mark the alert seen by the caller; acknowledging it again changes nothing."""
    now = timezone.now()
    changed = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_by=caller.user, acknowledged_at=now, updated_at=now
    )
    alert.refresh_from_db()
    if changed:
        _event(alert, AlertEvent.Kind.ACKNOWLEDGED, caller)
        _audit(caller, alert, AuditAction.ALERT_ACKNOWLEDGED)
        _changed(alert)
    return alert


def _may_see(*, user_id: int, alert: Alert) -> bool:
    team_role = (
        Membership.objects.filter(team_id=alert.team_id, user_id=user_id)
        .values_list("role", flat=True)
        .first()
    )
    site_role = (
        SiteMembership.objects.filter(site_id=alert.site_id, user_id=user_id)
        .values_list("role", flat=True)
        .first()
        if alert.site_id is not None
        else None
    )
    return bool(
        monitor_allows(
            team_role=team_role,
            site_role=site_role,
            has_site=alert.site_id is not None,
            action=MonitorAction.VIEW,
        )
    )


@transaction.atomic
def alert_assign(*, caller: Caller, alert: Alert, user_id: int | None) -> Alert:
    """Give the alert to a member of its team who can see it (None: to nobody)."""
    if user_id is not None and (
        isinstance(user_id, bool)
        or not isinstance(user_id, int)
        or not _may_see(user_id=user_id, alert=alert)
    ):
        raise ApplicationError(
            _("user: no member of the team with this id can see this alert."),
            code="invalid_assignee",
            details={"user": [_("No member of the team with this id can see this alert.")]},
        )
    if alert.assigned_to_id == user_id:
        return alert
    before = alert.assigned_to_id
    Alert.objects.filter(pk=alert.pk).update(assigned_to_id=user_id, updated_at=timezone.now())
    alert.refresh_from_db()
    email = (
        User.objects.filter(pk=user_id).values_list("email", flat=True).first()
        if user_id is not None
        else None
    )
    _event(alert, AlertEvent.Kind.ASSIGNED, caller, data={"user": user_id, "email": email})
    audit_record(
        caller=caller,
        team=alert.team,
        action=AuditAction.ALERT_ASSIGNED,
        target=alert,
        changes={"assigned_to": (before, user_id)},
        details={"title": alert.title},
    )
    _changed(alert)
    return alert


@transaction.atomic
def alert_comment(*, caller: Caller, alert: Alert, text: Any) -> AlertEvent:
    """A comment on the alert's timeline (1 to 2000 characters)."""
    if not isinstance(text, str):
        raise ApplicationError(_("text: must be text."), code="invalid_comment")
    if contains_nul(text):
        raise invalid_text()
    text = text.strip()
    if not text or len(text) > MAX_COMMENT:
        raise ApplicationError(
            _("text: a comment has 1 to %(count)s characters.") % {"count": MAX_COMMENT},
            code="invalid_comment",
            details={"text": [_("1 to %(count)s characters.") % {"count": MAX_COMMENT}]},
        )
    event = _event(alert, AlertEvent.Kind.COMMENTED, caller, text=text)
    _audit(caller, alert, AuditAction.ALERT_COMMENTED, length=len(text))
    _changed(alert)
    return event


@transaction.atomic
def alert_mute(*, caller: Caller, alert: Alert, until: datetime | None = None) -> Alert:
    """Tell nobody more about this alert (for ever, or until a time); its timeline goes on."""
    now = timezone.now()
    if until is not None and until <= now:
        raise ApplicationError(
            _("until: must be in the future."),
            code="invalid_until",
            details={"until": [_("Must be in the future.")]},
        )
    Alert.objects.filter(pk=alert.pk).update(
        muted_at=now, muted_until=until, muted_by=caller.user, updated_at=now
    )
    alert.refresh_from_db()
    _event(
        alert, AlertEvent.Kind.MUTED, caller, data={"until": until.isoformat() if until else None}
    )
    _audit(caller, alert, AuditAction.ALERT_MUTED, until=until)
    _changed(alert)
    return alert


@transaction.atomic
def alert_unmute(*, caller: Caller, alert: Alert) -> Alert:
    """Unmute the alert; one that is not muted is left as it is."""
    changed = Alert.objects.filter(pk=alert.pk, muted_at__isnull=False).update(
        muted_at=None, muted_until=None, muted_by=None, updated_at=timezone.now()
    )
    alert.refresh_from_db()
    if changed:
        _event(alert, AlertEvent.Kind.UNMUTED, caller)
        _audit(caller, alert, AuditAction.ALERT_UNMUTED)
        _changed(alert)
    return alert


@transaction.atomic
def alert_resolve(*, caller: Caller, alert: Alert) -> Alert:
    """Resolve the alert by hand; its rule goes back to ok (and opens a new alert if its
    condition still holds at its next evaluation). A resolved alert is left as it is."""
    now = timezone.now()
    changed = Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(
        state=Alert.State.RESOLVED, resolved_at=now, resolved_by=caller.user, updated_at=now
    )
    alert.refresh_from_db()
    if not changed:
        return alert
    if alert.rule_id is not None:
        rule = AlertRule.objects.get(pk=alert.rule_id)
        rule.state, rule.state_since = AlertRule.State.OK, now
        rule.next_evaluation_at = next_evaluation(rule, now=now, first=True)
        AlertRule.objects.filter(pk=rule.pk).update(
            state=rule.state, state_since=now, next_evaluation_at=rule.next_evaluation_at
        )
        alert.rule = rule
    event = _event(alert, AlertEvent.Kind.RESOLVED, caller, data={"manual": True})
    notifications.alert_notify(alert=alert, event=event)
    _audit(caller, alert, AuditAction.ALERT_RESOLVED)
    _changed(alert)
    return alert


def alert_raise(
    *,
    site_id: int | None,
    team_id: int,
    severity: str,
    title: str,
    message: str = "",
    caller: Caller | None = None,
) -> Alert:
    """An alert of no rule (an emergency stop), firing at once, in the caller's transaction;
    the people of the team who see the site are told. `caller`, when given, is audited."""
    if severity not in Severity.values:
        raise ApplicationError(_("Unknown severity."), code="invalid_severity")
    now = timezone.now()
    with transaction.atomic():
        alert = Alert(
            team_id=team_id,
            site_id=site_id,
            severity=severity,
            state=Alert.State.FIRING,
            title=title[:MAX_TITLE],
            message=message,
            started_at=now,
            firing_at=now,
        )
        alert.full_clean(exclude=["team", "site", "rule", "sensor", "machine"])
        alert.save()
        event = _event(alert, AlertEvent.Kind.FIRING, caller)
        notifications.alert_notify(alert=alert, event=event)
        if caller is not None:
            _audit(caller, alert, AuditAction.ALERT_RAISED, severity=severity)
        _changed(alert)
    return alert
