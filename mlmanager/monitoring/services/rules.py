"""Alert rules: create, change, delete, mute and unmute; the built-in rules of sensors' bands.

A rule's series are validated (and normalised) by `monitoring.series`, its condition by
`monitoring.conditions`; what the series are about is derived when it is saved: `site` (the
one site of its sensors, for access), `sensors` and `machines` (which ingest evaluates it),
and `next_evaluation_at` (`services.evaluation` says when the scheduler next looks at it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.access import require_team_action
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Team
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, Conflict
from mlmanager.monitoring import conditions
from mlmanager.monitoring.models import Alert, AlertEvent, AlertRule, Severity
from mlmanager.monitoring.services import evaluation, notifications
from mlmanager.sites.access import SiteAction
from mlmanager.sites.live import site_changed
from mlmanager.sites.models import Sensor
from mlmanager.sites.selectors import access_site

MAX_FOR_S = 7 * 24 * 3600
MAX_EVALUATE_EVERY_S = 24 * 3600
MIN_EVALUATE_EVERY_S = 10

# Messages of conditions.ConditionError's codes.
_CONDITION_MESSAGES = {
    "not_an_object": lambda p: _("must be an object"),
    "combinator_alone": lambda p: (
        _("“%(combinator)s” takes no other keys") % {"combinator": p["combinator"]}
    ),
    "too_deep": lambda p: _("all/any may be nested %(limit)s deep at most") % p,
    "empty_list": lambda p: _("must be a non-empty list of conditions"),
    "too_many_leaves": lambda p: _("a rule may test %(limit)s conditions at most") % p,
    "unknown_op": lambda p: _("must be one of %(choices)s") % p,
    "not_for_op": lambda p: _("is not a field of “%(op)s”") % p,
    "not_an_index": lambda p: _("must be the index of one of the rule's series"),
    "no_such_series": lambda p: (
        _("the rule has %(count)s series (0 to %(last)s)")
        % {"count": p["count"], "last": p["count"] - 1}
    ),
    "required": lambda p: _("is required for “%(op)s”") % p,
    "not_a_number": lambda p: _("must be a finite number"),
    "low_above_high": lambda p: _("must not be above high"),
    "negative": lambda p: _("must not be negative"),
    "not_positive": lambda p: _("must be more than 0"),
}

_UPDATABLE = (
    "name",
    "description",
    "series",
    "condition",
    "severity",
    "for_s",
    "hysteresis",
    "evaluate_every_s",
    "notify",
    "escalate_after_s",
    "escalate_to",
    "enabled",
)


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(
        _("%(field)s: %(message)s") % {"field": field, "message": message},
        code="invalid_rule",
        details={field: [message]},
    )


def condition_checked(condition: Any, *, series_count: int) -> dict[str, Any]:
    """The condition normalised, or 400 `invalid_rule` naming the bad field."""
    try:
        return conditions.condition_validate(condition, series_count=series_count)
    except conditions.ConditionError as error:
        raise _invalid(error.field, str(_CONDITION_MESSAGES[error.code](error.params))) from None


def _series_checked(*, caller: Caller, team_id: int, series: Any) -> tuple[list[dict], int | None]:
    from mlmanager.monitoring.series import series_validate

    if not isinstance(series, list) or not series:
        raise _invalid("series", _("must be a non-empty list of series"))
    for index, spec in enumerate(series):
        if isinstance(spec, dict) and spec.get("kind") == "dataset":
            raise _invalid(
                f"series[{index}].kind",
                _("a rule watches sensors and models; a dataset's column is for charts"),
            )
    return series_validate(caller=caller, team_id=team_id, specs=series)


def _require_change(*, caller: Caller, team_id: int, site_id: int | None) -> None:
    """A rule on a site's sensors is changed by whoever maintains the site (its technicians
    and admins); a rule of no site by the team's editors."""
    if site_id is None:
        require_team_action(caller=caller, team_id=team_id, action=Action.CHANGE)
    else:
        access_site(caller=caller, id=site_id, action=SiteAction.MAINTAIN)


def _number_in(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(
            field, _("must be a whole number from %(low)s to %(high)s") % {"low": low, "high": high}
        )
    return value


def _check_fields(
    *, caller: Caller, team_id: int, fields: dict[str, Any], rule: AlertRule | None
) -> dict[str, Any]:
    """The rule's fields validated and normalised (only those given; the series and
    condition together, since the condition names the series by position)."""
    checked = dict(fields)
    if "name" in fields:
        name = fields["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise _invalid("name", _("must be text of 1 to 200 characters"))
        checked["name"] = name.strip()
    if "severity" in fields and fields["severity"] not in Severity.values:
        raise _invalid("severity", _("must be one of %(choices)s") % {"choices": Severity.values})
    if "for_s" in fields:
        _number_in("for_s", fields["for_s"], 0, MAX_FOR_S)
    if "evaluate_every_s" in fields:
        _number_in(
            "evaluate_every_s",
            fields["evaluate_every_s"],
            MIN_EVALUATE_EVERY_S,
            MAX_EVALUATE_EVERY_S,
        )
    if "escalate_after_s" in fields and fields["escalate_after_s"] is not None:
        _number_in("escalate_after_s", fields["escalate_after_s"], 60, MAX_FOR_S)
    if fields.get("hysteresis") is not None:
        value = fields["hysteresis"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise _invalid("hysteresis", _("must be a number, 0 or more"))
        if value == float("inf"):
            raise _invalid("hysteresis", _("must be a number, 0 or more"))
        checked["hysteresis"] = float(value)
    if "enabled" in fields and not isinstance(fields["enabled"], bool):
        raise _invalid("enabled", _("must be true or false"))
    for field in ("notify", "escalate_to"):
        if field in fields:
            checked[field] = notifications.rule_notify_targets_validate(
                caller=caller, team_id=team_id, notify=fields[field], field=field
            )
    if "series" in fields or "condition" in fields:
        if "series" in fields:
            series, site_id = _series_checked(
                caller=caller, team_id=team_id, series=fields["series"]
            )
            checked["series"] = series
            checked["site_id"] = site_id
        else:
            series = rule.series if rule is not None else []
        stored = rule.condition if rule is not None else None
        condition = fields.get("condition", stored)
        checked["condition"] = condition_checked(condition, series_count=len(series))
    return checked


def _related_ids(series: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[int]]:
    sensors = sorted({spec["sensor"] for spec in series if spec.get("kind") == "sensor"})
    machines = sorted({spec["model"] for spec in series if spec.get("kind") == "model"})
    return sensors, machines


def _save_related(rule: AlertRule) -> None:
    sensors, machines = _related_ids(rule.series)
    rule.sensors.set(sensors)
    rule.machines.set(machines)


@transaction.atomic
def rule_create(
    *,
    caller: Caller,
    team: Team,
    name: str,
    series: Any,
    condition: Any,
    severity: str = Severity.WARNING,
    for_s: int = 0,
    evaluate_every_s: int = 60,
    notify: Any = None,
    description: str = "",
    hysteresis: float | None = None,
    escalate_after_s: int | None = None,
    escalate_to: Any = None,
    enabled: bool = True,
) -> AlertRule:
    """A rule of the team's series: the caller must maintain the site of its sensors (or, for
    a rule of no site, be an editor of the team)."""
    fields = _check_fields(
        caller=caller,
        team_id=team.pk,
        rule=None,
        fields={
            "name": name,
            "series": series,
            "condition": condition,
            "severity": severity,
            "for_s": for_s,
            "evaluate_every_s": evaluate_every_s,
            "notify": [{"kind": "team"}] if notify is None else notify,
            "hysteresis": hysteresis,
            "escalate_after_s": escalate_after_s,
            "escalate_to": escalate_to or [],
            "enabled": enabled,
        },
    )
    _require_change(caller=caller, team_id=team.pk, site_id=fields["site_id"])
    now = timezone.now()
    rule = AlertRule(team=team, description=description or "", created_by=caller.user, **fields)
    rule.next_evaluation_at = evaluation.next_evaluation(rule, now=now, first=True)
    evaluation.rule_caches_forget()
    rule.full_clean(exclude=["team"])
    rule.save()
    _save_related(rule)
    audit_record(
        caller=caller,
        team=team,
        action=AuditAction.ALERT_RULE_CREATED,
        target=rule,
        details={"name": rule.name, "severity": rule.severity, "site": rule.site_id},
    )
    return rule


def _refuse_builtin(rule: AlertRule) -> None:
    if rule.builtin:
        raise Conflict(
            _("This rule follows its sensor's limits: edit the sensor's thresholds instead."),
            code="builtin_rule",
        )


@transaction.atomic
def rule_update(*, caller: Caller, rule: AlertRule, **fields: Any) -> AlertRule:
    """Change a rule (found with `access_rule(action=CHANGE)`). New series need the right to
    change rules on their site too. A change of what the rule watches (series, condition) or
    disabling it ends its open alert and starts it again from ok."""
    _refuse_builtin(rule)
    given = {name: value for name, value in fields.items() if name in _UPDATABLE}
    checked = _check_fields(caller=caller, team_id=rule.team_id, fields=given, rule=rule)
    if "site_id" in checked and checked["site_id"] != rule.site_id:
        _require_change(caller=caller, team_id=rule.team_id, site_id=checked["site_id"])
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in checked.items():
        if getattr(rule, name) != value:
            changes[name] = (getattr(rule, name), value)
            setattr(rule, name, value)
    if not changes:
        return rule
    now = timezone.now()
    restart = bool({"series", "condition"} & set(changes)) or not rule.enabled
    if restart:
        evaluation.rule_reset(rule=rule, now=now, reason="rule_changed")
    rule.next_evaluation_at = evaluation.next_evaluation(rule, now=now, first=True)
    evaluation.rule_caches_forget()
    rule.full_clean(exclude=["team"])
    # Only what changed: an evaluation may move the rule's state meanwhile.
    saved = [*changes, "next_evaluation_at", "updated_at"]
    rule.save(update_fields=[*saved, "state", "state_since"] if restart else saved)
    if "series" in changes:
        _save_related(rule)
    audit_record(
        caller=caller,
        team=rule.team,
        action=AuditAction.ALERT_RULE_CHANGED,
        target=rule,
        changes={name: change for name, change in changes.items() if name != "site_id"},
    )
    return rule


@transaction.atomic
def rule_delete(*, caller: Caller, rule: AlertRule) -> None:
    """Delete a rule and its alerts (found with `access_rule(action=CHANGE)`)."""
    _refuse_builtin(rule)
    audit_record(
        caller=caller,
        team=rule.team,
        action=AuditAction.ALERT_RULE_DELETED,
        target=rule,
        details={"name": rule.name, "site": rule.site_id},
    )
    site_id = rule.site_id
    rule.delete()
    if site_id is not None:
        site_changed(site_ids={site_id})


def _until_checked(until: datetime | None) -> datetime | None:
    if until is not None and until <= timezone.now():
        raise _invalid("until", _("must be in the future"))
    return until


@transaction.atomic
def rule_mute(*, caller: Caller, rule: AlertRule, until: datetime | None = None) -> AlertRule:
    """Silence a rule's notifications (for ever, or until a time); it is still evaluated and
    its alerts' timelines still record everything. Found with `access_rule(action=OPERATE)`."""
    until = _until_checked(until)
    now = timezone.now()
    AlertRule.objects.filter(pk=rule.pk).update(
        muted_at=now, muted_until=until, muted_by=caller.user
    )
    rule.refresh_from_db()
    open_alert = Alert.objects.filter(rule=rule).open().first()
    if open_alert is not None:
        AlertEvent.objects.create(
            alert=open_alert,
            kind=AlertEvent.Kind.MUTED,
            user=caller.user,
            data={"rule": True, "until": until.isoformat() if until else None},
        )
    audit_record(
        caller=caller,
        team=rule.team,
        action=AuditAction.ALERT_RULE_MUTED,
        target=rule,
        details={"name": rule.name, "until": until},
    )
    return rule


@transaction.atomic
def rule_unmute(*, caller: Caller, rule: AlertRule) -> AlertRule:
    """Unmute a rule; a rule that is not muted is left as it is."""
    changed = AlertRule.objects.filter(pk=rule.pk, muted_at__isnull=False).update(
        muted_at=None, muted_until=None, muted_by=None
    )
    rule.refresh_from_db()
    if changed:
        open_alert = Alert.objects.filter(rule=rule).open().first()
        if open_alert is not None:
            AlertEvent.objects.create(
                alert=open_alert,
                kind=AlertEvent.Kind.UNMUTED,
                user=caller.user,
                data={"rule": True},
            )
        audit_record(
            caller=caller,
            team=rule.team,
            action=AuditAction.ALERT_RULE_UNMUTED,
            target=rule,
            details={"name": rule.name},
        )
    return rule


# --- built-in rules of sensors ------------------------------------------------------------------

_BANDS = (
    (AlertRule.Builtin.SENSOR_WARNING, Severity.WARNING, "warning_min", "warning_max"),
    (AlertRule.Builtin.SENSOR_CRITICAL, Severity.CRITICAL, "critical_min", "critical_max"),
)


def builtin_condition(low: float | None, high: float | None) -> dict[str, Any] | None:
    """outside low..high, or above high / below low when the band has one limit."""
    if low is not None and high is not None:
        return {"series": 0, "op": "outside", "low": float(low), "high": float(high)}
    if high is not None:
        return {"series": 0, "op": "above", "value": float(high)}
    if low is not None:
        return {"series": 0, "op": "below", "value": float(low)}
    return None


@transaction.atomic
def sensor_rules_sync(sensor: Sensor, *, caller: Caller | None = None) -> list[AlertRule]:
    """Keep a sensor's built-in rules in step with its warning and critical limits: create
    the rule of a band that gained a limit, change it when the limits or the sensor's name
    changed (a new or changed rule is evaluated on the sensor's latest value, so a raised
    limit resolves an alert at once), delete it when the band lost its limits. Returns the
    sensor's built-in rules. Called by the sensor services in their transaction (`caller`:
    who changed the sensor; the platform when not given)."""
    caller = caller or Caller.system()
    existing = {
        rule.builtin: rule
        for rule in AlertRule.objects.filter(
            team_id=sensor.team_id,
            builtin__in=[band for band, *_ in _BANDS],
            sensors=sensor,
        )
    }
    series = [{"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}]
    kept: list[AlertRule] = []
    now = timezone.now()
    for builtin, severity, low_field, high_field in _BANDS:
        condition = builtin_condition(getattr(sensor, low_field), getattr(sensor, high_field))
        rule = existing.get(builtin)
        name = (
            _("%(sensor)s: warning band")
            if builtin == AlertRule.Builtin.SENSOR_WARNING
            else _("%(sensor)s: critical band")
        ) % {"sensor": sensor.name}
        name = name[:200]
        if condition is None:
            if rule is not None:
                audit_record(
                    caller=caller,
                    team=sensor.team,
                    action=AuditAction.ALERT_RULE_DELETED,
                    target=rule,
                    details={"name": rule.name, "builtin": builtin},
                )
                rule.delete()
            continue
        if rule is None:
            rule = AlertRule(
                team_id=sensor.team_id,
                name=name,
                series=series,
                condition=condition,
                severity=severity,
                for_s=0,
                notify=[{"kind": "team"}],
                builtin=builtin,
                site_id=sensor.site_id,
            )
            rule.full_clean(exclude=["team", "site"])
            rule.save()
            rule.sensors.set([sensor.pk])
            audit_record(
                caller=caller,
                team=sensor.team,
                action=AuditAction.ALERT_RULE_CREATED,
                target=rule,
                details={"name": rule.name, "builtin": builtin, "condition": condition},
            )
            walk = True
        elif rule.condition != condition or rule.name != name:
            changes = {
                field: (getattr(rule, field), value)
                for field, value in (("condition", condition), ("name", name))
                if getattr(rule, field) != value
            }
            rule.condition, rule.name = condition, name
            rule.save(update_fields=["condition", "name", "updated_at"])
            audit_record(
                caller=caller,
                team=sensor.team,
                action=AuditAction.ALERT_RULE_CHANGED,
                target=rule,
                changes=changes,
            )
            walk = "condition" in changes
        else:
            walk = False
        # A new or changed band judges the sensor's latest value at once (a limit lowered
        # under it opens an alert; raised above it, resolves one).
        if walk and sensor.last_timestamp is not None and sensor.last_value is not None:
            evaluation.rules_walk(
                rules=[rule], values=[(sensor.last_timestamp, sensor.last_value)], now=now
            )
            rule.refresh_from_db()
        kept.append(rule)
    return kept


# --- what rules watch goes away -----------------------------------------------------------------


def rules_on_watched_deleted(
    *, sensor_ids: Sequence[int] = (), machine_ids: Sequence[int] = ()
) -> int:
    """A sensor or a model is being deleted: its built-in rules go with it (and their
    alerts), and every other rule watching it is disabled — its series no longer has data,
    and silently evaluating it would fire no_data for ever. Their open alerts resolve.
    Returns how many rules were disabled. Connected to the models' pre_delete (apps.py), so
    whatever deletes them (a site with its sensors, a model) leaves no rule pointing at
    nothing."""
    if sensor_ids:
        AlertRule.objects.filter(sensors__in=sensor_ids).exclude(builtin="").delete()
    watching = AlertRule.objects.none()
    if sensor_ids:
        watching |= AlertRule.objects.filter(sensors__in=sensor_ids)
    if machine_ids:
        watching |= AlertRule.objects.filter(machines__in=machine_ids)
    rules = list(watching.filter(enabled=True).distinct())
    now = timezone.now()
    evaluation.rule_caches_forget()
    for rule in rules:
        evaluation.rule_reset(rule=rule, now=now, reason="watched_deleted")
        AlertRule.objects.filter(pk=rule.pk).update(
            enabled=False,
            state=AlertRule.State.OK,
            state_since=now,
            next_evaluation_at=None,
        )
    return len(rules)
