"""Evaluating alert rules: at ingest (`evaluate_sensor_values`) and on their schedule
(`evaluate_due_rules`, the `monitoring.evaluate` periodic task).

A rule whose one series is a sensor's last value (the built-in band rules, and any rule on
`"aggregation": "last"`) is *walked*: the ingest hands it the sensor's new values and each goes
through the state machine (`conditions.step`) in time order, so a transient breach inside one
batch opens an alert, as the threshold alerts of sites did. Every other rule (aggregates,
models, several series) takes each series' value (`series.series_value`) at the newest
reading's time at ingest, and at `now` on its schedule.

`next_evaluation_at` says when the scheduler looks at a rule: every `evaluate_every_s` for
rules that are not walked and for no_data conditions (silence is never an ingest), at the end
of `for_s` for a walked rule that is pending, never for the other walked rules (only their
readings move them).

A transition moves the rule's row with one conditional UPDATE (from the state it was read in):
of two evaluations at once, one wins, and only the winner opens, fires or resolves the alert
(with the partial unique constraint, one open alert per rule). Alerts' transitions are
AlertEvents; firing and resolving call `notifications.alert_notify` (which tells nobody of a
muted rule or alert) and the site's dashboards hear of it after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.monitoring import conditions
from mlmanager.monitoring.conditions import Observation
from mlmanager.monitoring.models import Alert, AlertEvent, AlertRule
from mlmanager.monitoring.services import notifications
from mlmanager.sites.live import site_changed
from mlmanager.sites.models import Sensor
from mlmanager.sites.selectors import sensors_readings_before

logger = logging.getLogger(__name__)

EVALUATE_INTERVAL_S = 10.0
# Rules looked at per run of the periodic task: the rest are still due at the next run.
DUE_BATCH = 2000
# A rule whose evaluation failed (a bug, a broken series) is looked at again after this.
RETRY_AFTER_FAILURE = timedelta(minutes=1)

_EVENT_OF = {
    conditions.TRANSITION_PENDING: AlertEvent.Kind.PENDING,
    conditions.TRANSITION_FIRING: AlertEvent.Kind.FIRING,
    conditions.TRANSITION_RESOLVED: AlertEvent.Kind.RESOLVED,
}


def interval_s() -> float:
    return EVALUATE_INTERVAL_S


def is_walked(rule: AlertRule) -> bool:
    """Whether the rule's one series is a sensor's last value (evaluated reading by reading)."""
    series = rule.series
    return (
        len(series) == 1
        and series[0].get("kind") == "sensor"
        and series[0].get("aggregation") == "last"
    )


def _watches_silence(rule: AlertRule) -> bool:
    return any(leaf["op"] == "no_data" for leaf in conditions.condition_leaves(rule.condition))


def next_evaluation(rule: AlertRule, *, now: datetime, first: bool = False) -> datetime | None:
    """When the scheduler next evaluates the rule (see the module docstring). `first`: the
    rule was just created, changed or moved at ingest: it is due at once (a scheduled rule at
    the next tick; a pending one whose `for_s` ran out already, say readings sent late)."""
    if not rule.enabled:
        return None
    every = timedelta(seconds=rule.evaluate_every_s)
    if not is_walked(rule) or _watches_silence(rule):
        return now if first else now + every
    if rule.state == AlertRule.State.PENDING and rule.for_s > 0:
        fire_at = (rule.state_since or now) + timedelta(seconds=rule.for_s)
        if fire_at > now:
            return fire_at
        return now if first else now + every
    return None


# --- one rule's evaluation ----------------------------------------------------------------------


class _Stored:
    """`_walk`'s default previous point: the one stored on the rule."""


STORED = _Stored()


@dataclass
class _Change:
    transition: str
    at: datetime
    value: float | None


@dataclass
class _Result:
    """A rule's evaluation: its new state and the transitions on the way."""

    rule: AlertRule
    state: str
    since: datetime | None
    value: float | None
    value_at: datetime | None
    changes: list[_Change] = field(default_factory=list)


def _run(
    rule: AlertRule, points: Iterable[tuple[datetime, Sequence[Observation], float | None]]
) -> _Result:
    """Step the rule through its observations at each moment, from its stored state."""
    state, since = rule.state, rule.state_since
    result = _Result(rule=rule, state=state, since=since, value=rule.last_value, value_at=None)
    for moment, observations, value in points:
        holds = conditions.holds(rule.condition, observations, now=moment)
        clears = state != conditions.OK and conditions.clears(
            rule.condition, observations, now=moment, hysteresis=rule.hysteresis
        )
        state, since, transition = conditions.step(state, since, moment, holds, clears, rule.for_s)
        if transition != conditions.TRANSITION_NONE:
            result.changes.append(_Change(transition, moment, value))
        result.value, result.value_at = value, moment
    result.state, result.since = state, since
    return result


def _walk(
    rule: AlertRule,
    values: Sequence[tuple[datetime, float]],
    previous: tuple[datetime, float] | _Stored | None = STORED,
) -> _Result:
    """A walked rule over its sensor's new values, oldest first. The point before the first
    one (rate_above's first step) is `previous` (the sensor's reading before them, None for
    none), else the rule's stored last value."""
    if isinstance(previous, _Stored):
        previous_value, previous_at = rule.last_value, rule.last_evaluated_at
    elif previous is None:
        previous_value, previous_at = None, None
    else:
        previous_at, previous_value = previous
    points = []
    for moment, value in sorted(values, key=lambda point: point[0]):
        seen = Observation(
            value=value,
            at=moment,
            previous_value=previous_value,
            previous_at=previous_at,
            latest_at=moment,
        )
        points.append((moment, [seen], value))
        previous_value, previous_at = value, moment
    return _run(rule, points)


SeriesReader = Callable[[dict[str, Any], datetime], tuple[datetime | None, float | None]]


def _observe(
    rule: AlertRule, at: datetime, read: SeriesReader | None = None
) -> tuple[list[Observation], float | None]:
    """Each series' observation at `at` (`read`, by default series.series_value; an earlier
    value `per_s` before for rate_above), and the value the alert shows (that of the first
    condition's series)."""
    from mlmanager.monitoring.series import series_value

    if read is None:

        def read(spec: dict[str, Any], moment: datetime) -> tuple[datetime | None, float | None]:
            return series_value(spec, team_id=rule.team_id, at=moment)

    leaves = conditions.condition_leaves(rule.condition)
    observations = []
    for index, spec in enumerate(rule.series):
        mine = [leaf for leaf in leaves if leaf["series"] == index]
        if not mine:
            observations.append(Observation())
            continue
        latest_at, value = read(spec, at)
        previous_value = previous_at = None
        rates = [leaf for leaf in mine if leaf["op"] == "rate_above"]
        if rates:
            previous_at = _rate_moment(rates[0], at)
            previous_value = read(spec, previous_at)[1]
        observations.append(
            Observation(
                value=value,
                at=at,
                previous_value=previous_value,
                previous_at=previous_at,
                latest_at=latest_at,
            )
        )
    return observations, observations[leaves[0]["series"]].value


def _rate_moment(leaf: Mapping[str, Any], at: datetime) -> datetime:
    return at - timedelta(seconds=leaf.get("per_s", conditions.DEFAULT_PER_S))


def _evaluate_at(rule: AlertRule, at: datetime, read: SeriesReader | None = None) -> _Result:
    observations, value = _observe(rule, at, read)
    return _run(rule, [(at, observations, value)])


# --- applying results ---------------------------------------------------------------------------


def _apply(results: Sequence[_Result], *, now: datetime, scheduled: bool) -> None:
    """Store the results: rules with transitions each with a conditional UPDATE from the state
    they were read in, then their alerts; rules without one only on their schedule (each with
    its own conditional UPDATE: its next evaluation moves). At ingest a rule without a
    transition is not written at all (its state did not change; its next evaluation does not
    depend on its readings)."""
    plain = [result for result in results if not result.changes]
    moved = [result for result in results if result.changes]
    if plain and scheduled:
        _store_plain(plain, now=now)
    won: list[_Result] = []
    for result in moved:
        rule = result.rule
        before = {"state": rule.state, "state_since": rule.state_since}
        rule.state, rule.state_since = result.state, result.since
        rule.last_value = result.value
        rule.last_evaluated_at = result.value_at or now
        rule.next_evaluation_at = next_evaluation(rule, now=now, first=not scheduled)
        if AlertRule.objects.filter(pk=rule.pk, **before).update(
            state=rule.state,
            state_since=rule.state_since,
            last_value=rule.last_value,
            last_evaluated_at=rule.last_evaluated_at,
            next_evaluation_at=rule.next_evaluation_at,
        ):
            won.append(result)
        # else another evaluation moved the rule first: its alert is theirs to keep.
    if not won:
        return
    open_alerts = {
        alert.rule_id: alert
        for alert in Alert.objects.filter(
            rule_id__in=[result.rule.pk for result in won], resolved_at__isnull=True
        ).select_related("rule")
    }
    sites: set[int] = set()
    for result in won:
        alert = open_alerts.get(result.rule.pk)
        for change in result.changes:
            alert = _alert_change(result.rule, alert, change)
        if result.rule.site_id is not None:
            sites.add(result.rule.site_id)
    site_changed(site_ids=sites)


def _store_plain(results: Sequence[_Result], *, now: datetime) -> None:
    """Scheduled results without a transition: the value seen, the next evaluation. Each
    UPDATE is conditional on the state the rule was read in: when an ingest moved the rule
    meanwhile, its next time is theirs. PostgreSQL takes them all in one statement."""
    rules = []
    for result in results:
        rule = result.rule
        rule.last_value = result.value
        rule.last_evaluated_at = result.value_at or now
        rule.next_evaluation_at = next_evaluation(rule, now=now)
        rules.append(rule)
    if connection.vendor == "postgresql" and len(rules) > 1:
        table = AlertRule._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table} AS rule SET
                    last_value = seen.value, last_evaluated_at = seen.evaluated_at,
                    next_evaluation_at = seen.next_at
                FROM unnest(
                    %s::bigint[], %s::text[], %s::timestamptz[], %s::float8[],
                    %s::timestamptz[], %s::timestamptz[]
                ) AS seen (id, state, state_since, value, evaluated_at, next_at)
                WHERE rule.id = seen.id AND rule.enabled AND rule.state = seen.state
                  AND rule.state_since IS NOT DISTINCT FROM seen.state_since
                """,  # noqa: S608 - the model's table; the values are parameters
                [
                    [rule.pk for rule in rules],
                    [rule.state for rule in rules],
                    [rule.state_since for rule in rules],
                    [rule.last_value for rule in rules],
                    [rule.last_evaluated_at for rule in rules],
                    [rule.next_evaluation_at for rule in rules],
                ],
            )
        return
    for rule in rules:
        AlertRule.objects.filter(
            pk=rule.pk, enabled=True, state=rule.state, state_since=rule.state_since
        ).update(
            last_value=rule.last_value,
            last_evaluated_at=rule.last_evaluated_at,
            next_evaluation_at=rule.next_evaluation_at,
        )


def _subject(rule: AlertRule) -> dict[str, Any]:
    """The alert's site, and its sensor or model when the rule watches exactly one (and it
    still exists: a rule's series may name a sensor deleted since)."""
    sensors = list(
        AlertRule.sensors.through.objects.filter(alertrule_id=rule.pk).values_list(
            "sensor_id", flat=True
        )
    )
    machines = list(
        AlertRule.machines.through.objects.filter(alertrule_id=rule.pk).values_list(
            "machine_id", flat=True
        )
    )
    return {
        "site_id": rule.site_id,
        "sensor_id": sensors[0] if len(sensors) == 1 else None,
        "machine_id": machines[0] if len(machines) == 1 else None,
    }


def _message(rule: AlertRule, change: _Change, unit: str) -> str:
    """What broke the rule, in words: the value (with its sensor's unit), when, and the
    condition ("91.5 °C at 2026-12-01T10:00:00+00:00; the rule: outside 10 – 80.")."""
    condition = conditions.describe(rule.condition)
    if change.value is None:
        return _("No value at %(moment)s; the rule: %(condition)s.") % {
            "moment": change.at.isoformat(),
            "condition": condition,
        }
    value = f"{round(change.value, 6):g} {unit}".strip()
    return _("%(value)s at %(moment)s; the rule: %(condition)s.") % {
        "value": value,
        "moment": change.at.isoformat(),
        "condition": condition,
    }


def _unit(rule: AlertRule, sensor_id: int | None) -> str:
    """The unit of a rule's one sensor series (its values are that sensor's), else none."""
    if sensor_id is None or len(rule.series) != 1 or rule.series[0].get("aggregation") == "count":
        return ""
    return Sensor.objects.filter(pk=sensor_id).values_list("unit", flat=True).first() or ""


def _alert_open(rule: AlertRule, change: _Change, state: str) -> Alert:
    subject = _subject(rule)
    alert = Alert(
        team_id=rule.team_id,
        rule=rule,
        severity=rule.severity,
        state=state,
        title=rule.name[:200],
        message=_message(rule, change, _unit(rule, subject["sensor_id"])),
        value=change.value,
        started_at=change.at,
        firing_at=change.at if state == Alert.State.FIRING else None,
        **subject,
    )
    try:
        with transaction.atomic():
            alert.save()
    except IntegrityError:
        # An open alert the rule's state did not know of (its state was reset meanwhile):
        # one open alert per rule, so that one goes on.
        found = Alert.objects.filter(rule=rule, resolved_at__isnull=True).first()
        if found is None:
            raise
        return found
    return alert


def _alert_change(rule: AlertRule, alert: Alert | None, change: _Change) -> Alert | None:
    """Open, fire or resolve the rule's alert for one transition; its event; its
    notifications. Returns the rule's open alert after it (None once resolved)."""
    transition = change.transition
    if transition == conditions.TRANSITION_PENDING or (
        transition == conditions.TRANSITION_FIRING and alert is None
    ):
        state = (
            Alert.State.PENDING
            if transition == conditions.TRANSITION_PENDING
            else Alert.State.FIRING
        )
        alert = _alert_open(rule, change, state)
    elif alert is None:  # resolving an alert someone resolved by hand already
        return None
    elif transition == conditions.TRANSITION_FIRING:
        alert.state, alert.firing_at, alert.value = Alert.State.FIRING, change.at, change.value
        alert.message = _message(rule, change, _unit(rule, alert.sensor_id))
        alert.save(update_fields=["state", "firing_at", "value", "message", "updated_at"])
    else:
        alert.state, alert.resolved_at = Alert.State.RESOLVED, max(change.at, alert.started_at)
        alert.save(update_fields=["state", "resolved_at", "updated_at"])
    alert.rule = rule
    event = AlertEvent.objects.create(
        alert=alert,
        kind=_EVENT_OF[transition],
        data={"value": change.value, "at": change.at.isoformat()},
    )
    notifications.alert_notify(alert=alert, event=event)
    return None if alert.state == Alert.State.RESOLVED else alert


def rule_reset(*, rule: AlertRule, now: datetime, reason: str, user: Any = None) -> None:
    """End the rule's open alert (resolved, with `reason` on its timeline) and set the rule
    back to ok, in memory: the caller saves the rule. For a rule changed, disabled, or whose
    alert was resolved by hand."""
    for alert in Alert.objects.filter(rule=rule, resolved_at__isnull=True):
        Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(
            state=Alert.State.RESOLVED, resolved_at=now, resolved_by=user, updated_at=now
        )
        AlertEvent.objects.create(
            alert=alert, kind=AlertEvent.Kind.RESOLVED, user=user, data={"reason": reason}
        )
        if alert.site_id is not None:
            site_changed(site_ids={alert.site_id})
    rule.state, rule.state_since = AlertRule.State.OK, now


# --- entry points -------------------------------------------------------------------------------


def _reads_rate(rule: AlertRule) -> bool:
    return any(leaf["op"] == "rate_above" for leaf in conditions.condition_leaves(rule.condition))


def _reads_sensors_only(rule: AlertRule) -> bool:
    return bool(rule.series) and all(spec.get("kind") == "sensor" for spec in rule.series)


def _wanted(rule: AlertRule, at: datetime) -> list[tuple[dict[str, Any], datetime]]:
    """The (series, moment) pairs `_observe` reads for the rule at `at`."""
    leaves = conditions.condition_leaves(rule.condition)
    wanted = []
    for index, spec in enumerate(rule.series):
        mine = [leaf for leaf in leaves if leaf["series"] == index]
        if not mine:
            continue
        wanted.append((spec, at))
        rates = [leaf for leaf in mine if leaf["op"] == "rate_above"]
        if rates:
            wanted.append((spec, _rate_moment(rates[0], at)))
    return wanted


def _bulk_reader(wanted: Iterable[tuple[dict[str, Any], datetime]]) -> SeriesReader:
    """What `_observe` reads for sensor-only rules, read at once (series.sensor_series_values:
    a few queries however many rules)."""
    from mlmanager.monitoring.series import sensor_series_values, series_key

    found = sensor_series_values(wanted)

    def read(spec: dict[str, Any], at: datetime) -> tuple[datetime | None, float | None]:
        return found[(series_key(spec), at)]

    return read


def evaluate_sensor_values(
    team_id: int, values: Mapping[int, Sequence[tuple[datetime, float]]]
) -> None:
    """Evaluate the team's enabled rules on these sensors with their new values (sensor id →
    [(timestamp, calibrated value)], newer than the sensor's previous latest). Called by the
    ingest in its transaction.

    One query finds the rules. A walked rule that is ok and whose condition holds at none of
    the new values (`conditions.may_hold` on the batch's span: lowest, highest, steepest
    change from the sensor's reading before them) cannot change state: it is neither walked
    nor written. The others are walked; the rules on aggregates read their series at once
    (a few queries); only transitions are written."""
    sensor_ids = sorted(pk for pk, points in values.items() if points)
    if not sensor_ids:
        return
    watching = AlertRule.sensors.through.objects.filter(sensor_id__in=sensor_ids).values(
        "alertrule_id"
    )
    rules = list(
        AlertRule.objects.filter(team_id=team_id, enabled=True, pk__in=watching).order_by("pk")
    )
    if not rules:
        return
    walked: list[tuple[AlertRule, int]] = []
    others: list[tuple[AlertRule, datetime]] = []
    for rule in rules:
        if is_walked(rule):
            sensor = rule.series[0]["sensor"]
            if values.get(sensor):
                walked.append((rule, sensor))
            continue
        moments = [
            moment
            for spec in rule.series
            if spec.get("kind") == "sensor"
            for moment, _value in values.get(spec["sensor"], ())
        ]
        if moments:
            others.append((rule, max(moments)))
    # The reading before each batch, for the sensors whose rules read a rate (one query).
    rate_sensors = {sensor for rule, sensor in walked if _reads_rate(rule)}
    previous = (
        sensors_readings_before(bounds={pk: min(values[pk])[0] for pk in rate_sensors})
        if rate_sensors
        else {}
    )
    spans: dict[int, conditions.Span] = {}
    results = []
    for rule, sensor in walked:
        points = values[sensor]
        before = previous.get(sensor) if sensor in rate_sensors else None
        if rule.state == AlertRule.State.OK:
            span = spans.get(sensor)
            if span is None:
                span = spans[sensor] = conditions.span_of(sorted(points), before)
            if not conditions.may_hold(rule.condition, span):
                continue
        results.append(_walk(rule, points, before))
    bulk = [(rule, at) for rule, at in others if _reads_sensors_only(rule)]
    read = _bulk_reader(pair for rule, at in bulk for pair in _wanted(rule, at)) if bulk else None
    for rule, at in others:
        results.append(_evaluate_at(rule, at, read if _reads_sensors_only(rule) else None))
    _apply(results, now=timezone.now(), scheduled=False)


def rules_walk(
    *, rules: Sequence[AlertRule], values: Sequence[tuple[datetime, float]], now: datetime
) -> None:
    """Walk walked rules over values of their sensor (e.g. its latest after its limits
    changed), in the caller's transaction."""
    _apply([_walk(rule, values) for rule in rules if is_walked(rule)], now=now, scheduled=False)


def evaluate_rule(rule: AlertRule, *, now: datetime | None = None) -> None:
    """Evaluate one rule at `now` as the scheduler does, in the caller's transaction."""
    now = now or timezone.now()
    _apply([_evaluate_at(rule, now)], now=now, scheduled=True)


def evaluate_due_rules(now: datetime | None = None) -> int:
    """The `monitoring.evaluate` periodic task: evaluate every enabled rule whose
    `next_evaluation_at` has come (for_s timers, no_data, rules on aggregates and models).
    Returns how many were evaluated.

    The due rules on sensors only are evaluated together: their series are read at once (a
    few queries for all of them), the conditions judged here, the rules without a transition
    stored in one UPDATE, each transition in its own transaction (a broken rule does not stop
    the others). The other rules (models) are evaluated one by one, each in its own
    transaction."""
    now = now or timezone.now()
    due = list(
        AlertRule.objects.filter(enabled=True, next_evaluation_at__lte=now).order_by(
            "next_evaluation_at", "pk"
        )[:DUE_BATCH]
    )
    together = [rule for rule in due if _reads_sensors_only(rule)]
    alone = [rule.pk for rule in due if not _reads_sensors_only(rule)]
    done = 0
    if together:
        try:
            done += _evaluate_together(together, now=now)
        except Exception:
            logger.exception("due alert rules could not be evaluated together; one by one")
            alone = [rule.pk for rule in together] + alone
    for pk in alone:
        try:
            with transaction.atomic():
                rule = AlertRule.objects.filter(
                    pk=pk, enabled=True, next_evaluation_at__lte=now
                ).first()
                if rule is None:  # changed or disabled since
                    continue
                evaluate_rule(rule, now=now)
                done += 1
        except Exception:
            logger.exception("alert rule %s could not be evaluated", pk)
            AlertRule.objects.filter(pk=pk).update(next_evaluation_at=now + RETRY_AFTER_FAILURE)
    return done


def _evaluate_together(rules: Sequence[AlertRule], *, now: datetime) -> int:
    """`evaluate_due_rules` of rules on sensors only (see there)."""
    readable, wanted, failed = [], [], []
    for rule in rules:
        try:
            wanted.extend(_wanted(rule, now))
        except Exception:  # a broken rule (its condition names no series of it)
            logger.exception("alert rule %s could not be evaluated", rule.pk)
            failed.append(rule.pk)
        else:
            readable.append(rule)
    read = _bulk_reader(wanted)
    results = []
    for rule in readable:
        try:
            results.append(_evaluate_at(rule, now, read))
        except Exception:
            logger.exception("alert rule %s could not be evaluated", rule.pk)
            failed.append(rule.pk)
    plain = [result for result in results if not result.changes]
    if plain:
        _store_plain(plain, now=now)
    done = len(plain)
    for result in results:
        if not result.changes:
            continue
        try:
            with transaction.atomic():
                _apply([result], now=now, scheduled=True)
            done += 1
        except Exception:
            logger.exception("alert rule %s could not be evaluated", result.rule.pk)
            failed.append(result.rule.pk)
    if failed:
        AlertRule.objects.filter(pk__in=failed).update(next_evaluation_at=now + RETRY_AFTER_FAILURE)
    return done


def evaluate_task() -> None:
    evaluate_due_rules()
