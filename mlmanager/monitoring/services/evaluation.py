"""Evaluating alert rules: at ingest (`evaluate_sensor_values`) and on their schedule
(`evaluate_due_rules`, the `monitoring.evaluate` periodic task).

A rule whose one series is a sensor's last value (the built-in band rules, and any rule on
`"aggregation": "last"`) is *walked*: the ingest hands it the sensor's new values and each goes
through the state machine (`conditions.step`) in time order, so a transient breach inside one
batch opens an alert, as the threshold alerts of sites did. Every other rule (aggregates,
models, several series) takes each series' value (`series.series_value`) at the newest
reading's time at ingest, and at `now` on its schedule; at ingest, an ok rule comparing one
window of a sensor with thresholds is judged only when a new value is beyond them (an
average crossing with time alone, as older values leave its window, is seen on schedule).

The scheduler (`evaluate_due_rules`, once per 10 s slot) looks at two kinds of rule. The
*periodic* ones (not walked, or watching for no_data: silence is never an ingest) are due by
slot arithmetic: a rule of `evaluate_every_s` E is due in the run whose slot holds a multiple
of E (`models.is_due_in_slot`); which rules are periodic is cached per process
(`_periodic_rules`, refreshed when a rule changes). Their rows are written only when their
state changes: 10 000 rules re-stored every minute cost more than judging them did. The
*one-off* evaluations are `next_evaluation_at` (indexed): the end of `for_s` for a walked
rule that is pending, a retry after a failure, a rule just created or changed (due at once).
The other walked rules are never on the schedule (only their readings move them). What the
pages show as last and next evaluation of a periodic rule follows from the same arithmetic
(`AlertRule.shown_last_evaluated_at`, `shown_next_evaluation_at`). A due periodic rule that
cannot move with time alone is judged so without being loaded (`_quiet_rules`): one on sensor
windows none of which holds a reading (every value unknown: nothing holds or clears), and a
no_data rule that is ok and not silent long enough, or firing and still silent; such a rule
would not have been written either.

A transition moves the rule's row with a conditional UPDATE (from the state it was read in):
of two evaluations at once, one wins, and only the winner opens, fires or resolves the alert
(with the partial unique constraint, one open alert per rule). All the transitions of an
ingest batch or a scheduler run are written together: the rules in one statement, then the
alerts, their AlertEvents and their notifications (`notifications.notifications_plan`, which
tells nobody of a muted rule or alert) in a few; the site's dashboards hear of it after the
commit. Rules are read without the model (`_rules`, and at ingest `_watching`: their state
columns, on PostgreSQL with the times as integers; their series and conditions parsed once
and cached by updated_at). At ingest most are not read at all: each process keeps, per team,
which rules watch each sensor and the `conditions.Bounds` of its walked ones
(`_ingest_index`), and a sensor whose new values stay inside them moves none of those that
are ok; only the others, and the rules that are not ok, are read.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.monitoring import conditions
from mlmanager.monitoring.conditions import Observation
from mlmanager.monitoring.models import (
    EVALUATION_SLOT_S,
    Alert,
    AlertEvent,
    AlertRule,
    evaluation_slot_end,
    is_due_in_slot,
    is_periodic,
)
from mlmanager.monitoring.services import notifications
from mlmanager.sites.live import site_changed
from mlmanager.sites.models import Sensor
from mlmanager.sites.selectors import sensors_readings_before

logger = logging.getLogger(__name__)

EVALUATE_INTERVAL_S = float(EVALUATION_SLOT_S)
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


def is_walked(rule: AlertRule | _Rule) -> bool:
    """Whether the rule's one series is a sensor's last value (evaluated reading by reading)."""
    if isinstance(rule, _Rule):
        return rule.definition.walked_sensor is not None
    series = rule.series
    return (
        len(series) == 1
        and series[0].get("kind") == "sensor"
        and series[0].get("aggregation") == "last"
    )


def next_evaluation(
    rule: AlertRule | _Rule, *, now: datetime, first: bool = False
) -> datetime | None:
    """The rule's one-off evaluation (see the module docstring), None for none. `first`: the
    rule was just created or changed: it is due at once (a periodic rule at the next run,
    before its period comes). A pending walked rule is due when its `for_s` runs out (at once
    when it has already, say readings sent late)."""
    if not rule.enabled:
        return None
    if _is_periodic(rule):
        return now if first else None
    if rule.state == AlertRule.State.PENDING and rule.for_s > 0:
        fire_at = (rule.state_since or now) + timedelta(seconds=rule.for_s)
        return max(fire_at, now)
    return None


def _is_periodic(rule: AlertRule | _Rule) -> bool:
    if isinstance(rule, _Rule):
        return rule.definition.periodic
    return is_periodic(rule.series, rule.condition)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _microseconds(moment: datetime) -> int:
    """A moment as whole microseconds since the epoch (exact, as timestamps are stored)."""
    return (moment - _EPOCH) // _ONE_MICROSECOND


def _moment_of(microseconds: int) -> datetime:
    return _EPOCH + timedelta(microseconds=microseconds)


# --- what evaluation reads of a rule ---------------------------------------------------------


@dataclass(frozen=True)
class _Definition:
    """A rule's series and condition, parsed and judged once (`_definition`): what the
    evaluation asks of them for every batch."""

    series: list[dict[str, Any]]
    condition: dict[str, Any]
    relaxed: dict[str, Any] | None  # None: the condition could not be relaxed (a broken rule)
    walked_sensor: int | None  # the sensor of a walked rule
    reads_rate: bool
    sensors_only: bool
    periodic: bool  # evaluated on its period (models.is_periodic)
    # How the scheduler may judge it without loading it (`_quiet_rules`), None: it may not.
    quiet: _Quiet | None = None
    # What `_observe` reads: (series index, spec, the first rate leaf's per_s or None) of each
    # series a leaf reads, and the index of the series whose value an alert shows.
    reads: tuple[tuple[int, dict[str, Any], float | None], ...] = ()
    shown_series: int = 0
    # The sensor of a rule on one window aggregate (avg, min or max) whose condition only
    # compares it with thresholds (above, below, outside): a batch whose new values are not
    # beyond them does not move it at ingest (`_Watch.window_bounds`).
    bounded_sensor: int | None = None


@dataclass(frozen=True)
class _Quiet:
    """What tells, from its sensors' newest readings alone, that a periodic rule cannot move
    at a moment (`_quiet_rules`):

    - "window": every series it reads aggregates a window (avg, min or max) of a sensor, and
      no leaf is no_data: when no sensor has a reading in any window read (`reach`: the
      seconds before the moment each window of that sensor may start), every value is
      unknown, and an unknown value neither holds nor clears: no state changes.
    - "silence": a walked rule whose condition is one no_data leaf: whether it holds and
      clears follows from the sensor's newest reading and the moment; an ok rule that does
      not hold and a firing one that does not clear stay as they are."""

    kind: str
    reach: tuple[tuple[int, float], ...] = ()  # (sensor, seconds) for "window"
    # For "silence": the seconds of silence the leaf holds after, and its relaxed one's.
    holds_after_s: float = 0.0
    clears_until_s: float = 0.0


# Rule id -> (its updated_at in microseconds since the epoch, its hysteresis, its definition):
# a rule's series, condition and hysteresis change
# only through rule_update and sensor_rules_sync, which save updated_at with them, so an entry
# of the same updated_at is the rule as stored. Parsing the JSON of 10 000 rules for each
# ingest batch was a large share of its evaluation. Bounded: cleared when it grows past this.
_DEFINITIONS: dict[int, tuple[int, float | None, _Definition]] = {}
_DEFINITIONS_MAX = 200_000


def _definition(
    series: list[dict[str, Any]], condition: dict[str, Any], hysteresis: float | None
) -> _Definition:
    walked = (
        len(series) == 1
        and series[0].get("kind") == "sensor"
        and series[0].get("aggregation") == "last"
    )
    try:
        leaves = conditions.condition_leaves(condition)
        relaxed: dict[str, Any] | None = conditions.relaxed(condition, hysteresis)
    except Exception:  # a broken rule: its evaluation fails, alone, where it is judged
        leaves, relaxed = [], None
    return _Definition(
        series=series,
        condition=condition,
        relaxed=relaxed,
        walked_sensor=series[0].get("sensor") if walked else None,
        reads_rate=any(leaf.get("op") == "rate_above" for leaf in leaves),
        sensors_only=bool(series) and all(spec.get("kind") == "sensor" for spec in series),
        periodic=is_periodic(series, condition),
        quiet=(
            _quiet_of(series, condition, leaves, walked=walked, hysteresis=hysteresis)
            if relaxed is not None
            else None
        ),
        reads=_reads_of(series, leaves) if relaxed is not None else (),
        shown_series=leaves[0].get("series", 0) if leaves else 0,
        bounded_sensor=_bounded_sensor(series, leaves) if relaxed is not None else None,
    )


_THRESHOLD_OPS = frozenset({"above", "below", "outside"})


def _bounded_sensor(
    series: list[dict[str, Any]], leaves: Sequence[Mapping[str, Any]]
) -> int | None:
    """`_Definition.bounded_sensor` of a rule of these series and leaves."""
    from mlmanager.monitoring.series import _filled

    if (
        len(series) != 1
        or not leaves
        or any(leaf.get("op") not in _THRESHOLD_OPS for leaf in leaves)
    ):
        return None
    spec = _filled(series[0])
    if (
        spec.get("kind") != "sensor"
        or spec["aggregation"] not in _WINDOW_AGGREGATIONS
        or not spec["period_s"]
    ):
        return None
    sensor = spec.get("sensor")
    return sensor if isinstance(sensor, int) else None


def _reads_of(
    series: list[dict[str, Any]], leaves: Sequence[Mapping[str, Any]]
) -> tuple[tuple[int, dict[str, Any], float | None], ...]:
    reads = []
    for index, spec in enumerate(series):
        mine = [leaf for leaf in leaves if leaf["series"] == index]
        if not mine:
            continue
        rates = [leaf for leaf in mine if leaf["op"] == "rate_above"]
        per_s = rates[0].get("per_s", conditions.DEFAULT_PER_S) if rates else None
        reads.append((index, spec, per_s))
    return tuple(reads)


_WINDOW_AGGREGATIONS = frozenset({"avg", "min", "max"})  # None over an empty window (count: 0)


def _quiet_of(
    series: list[dict[str, Any]],
    condition: dict[str, Any],
    leaves: Sequence[Mapping[str, Any]],
    *,
    walked: bool,
    hysteresis: float | None,
) -> _Quiet | None:
    """The rule's `_Quiet`, None when it has none (see there)."""
    from mlmanager.monitoring.series import _filled

    if walked:
        relaxed = conditions.relaxed(condition, hysteresis)
        if condition.get("op") == "no_data" and relaxed.get("op") == "no_data":
            return _Quiet(
                kind="silence",
                holds_after_s=condition["value"],
                clears_until_s=relaxed["value"],
            )
        return None
    if not leaves or any(leaf.get("op") == "no_data" for leaf in leaves):
        return None
    reach: dict[int, float] = {}
    for index, raw in enumerate(series):
        mine = [leaf for leaf in leaves if leaf.get("series") == index]
        if not mine:
            continue  # not read
        spec = _filled(raw)
        if (
            spec.get("kind") != "sensor"
            or spec["aggregation"] not in _WINDOW_AGGREGATIONS
            or not spec["period_s"]
        ):
            return None
        # `_observe` reads the window ending at the moment, and for a rate the one ending
        # `per_s` earlier (the first rate leaf's: `_rate_moment`).
        rates = [leaf for leaf in mine if leaf.get("op") == "rate_above"]
        back = float(rates[0].get("per_s", conditions.DEFAULT_PER_S)) if rates else 0.0
        sensor = spec["sensor"]
        reach[sensor] = max(reach.get(sensor, 0.0), float(spec["period_s"]) + max(back, 0.0))
    if not reach:
        return None
    return _Quiet(kind="window", reach=tuple(sorted(reach.items())))


@dataclass
class _Rule:
    """What evaluation reads and writes of a rule, loaded without the ORM's model (`_rules`):
    its state columns and its (cached) definition. A rule that moves is loaded whole for its
    alerts (`_whole_rules`)."""

    pk: int
    updated_at: datetime
    team_id: int
    site_id: int | None
    state: str
    state_since: datetime | None
    last_value: float | None
    last_evaluated_at: datetime | None
    for_s: int
    hysteresis: float | None
    evaluate_every_s: int
    definition: _Definition
    enabled: bool = True
    next_evaluation_at: datetime | None = None

    @property
    def series(self) -> list[dict[str, Any]]:
        return self.definition.series

    @property
    def condition(self) -> dict[str, Any]:
        return self.definition.condition


AnyRule = AlertRule | _Rule

_RULE_COLUMNS = (
    "pk",
    "updated_at",
    "team_id",
    "site_id",
    "state",
    "state_since",
    "last_value",
    "last_evaluated_at",
    "for_s",
    "hysteresis",
    "evaluate_every_s",
    "next_evaluation_at",
)


def _rules(queryset: QuerySet[AlertRule]) -> list[_Rule]:
    """The (enabled) rules of `queryset`: one query for their state columns, one more for
    the series and conditions of those not in `_DEFINITIONS` (or changed since)."""
    rows = list(queryset.values_list(*_RULE_COLUMNS))
    return _rules_of_rows(rows)


def _rules_by_id(ids: Sequence[int]) -> list[_Rule]:
    """`_rules` of the enabled rules among `ids`, in id order. On PostgreSQL in plain SQL:
    the scheduler reads its due rules each run, and the ORM's own cost was most of that."""
    if connection.vendor != "postgresql":
        return _rules(AlertRule.objects.filter(pk__in=ids, enabled=True).order_by("pk"))
    columns = ", ".join("id" if name == "pk" else name for name in _RULE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {AlertRule._meta.db_table} "  # noqa: S608 - ours
            "WHERE id = ANY(%s::bigint[]) AND enabled ORDER BY id",
            [list(ids)],
        )
        return _rules_of_rows(cursor.fetchall())


def _rules_of_rows(rows: Sequence[Sequence[Any]]) -> list[_Rule]:
    definitions = _definitions_of({row[0]: (_microseconds(row[1]), row[9]) for row in rows})
    return [
        _Rule(**dict(zip(_RULE_COLUMNS, row, strict=True)), definition=definitions[row[0]])
        for row in rows
        if row[0] in definitions  # else deleted between the two queries
    ]


def _definitions_of_rows(rows: Sequence[Sequence[Any]]) -> dict[int, _Definition]:
    """`_definitions_of` the rules of these `_RULE_COLUMNS` rows (updated_at in microseconds),
    without a key tuple per row when the cache knows them all (the usual ingest)."""
    definitions: dict[int, _Definition] = {}
    for row in rows:
        known = _DEFINITIONS.get(row[0])
        if known is None or known[0] != row[1] or known[1] != row[9]:
            return _definitions_of({row[0]: (row[1], row[9]) for row in rows})
        definitions[row[0]] = known[2]
    return definitions


def _definitions_of(keys: Mapping[int, tuple[int, float | None]]) -> dict[int, _Definition]:
    """The definitions of these rules (id -> (updated_at in microseconds, hysteresis) as just
    read), from `_DEFINITIONS`, the others parsed from their rows (one query) and cached; a
    rule deleted meanwhile has none."""
    # Looked up once, into a dict of this call: another thread may clear the cache meanwhile.
    definitions: dict[int, _Definition] = {}
    missing = []
    for pk, key in keys.items():
        known = _DEFINITIONS.get(pk)
        if known is not None and known[:2] == key:
            definitions[pk] = known[2]
        else:
            missing.append(pk)
    if missing:
        if len(_DEFINITIONS) + len(missing) > _DEFINITIONS_MAX:
            _DEFINITIONS.clear()
        for pk, updated_at, hysteresis, series, condition in AlertRule.objects.filter(
            pk__in=missing
        ).values_list("pk", "updated_at", "hysteresis", "series", "condition"):
            definitions[pk] = _definition(series, condition, hysteresis)
            _DEFINITIONS[pk] = (_microseconds(updated_at), hysteresis, definitions[pk])
    return definitions


# `_RULE_COLUMNS` with the times as integers (microseconds since the epoch) on PostgreSQL:
# their text loads in C, where each timestamp went through Django's loader in Python.
_TIME_COLUMNS = frozenset({"updated_at", "state_since", "last_evaluated_at", "next_evaluation_at"})
_TIME_INDEXES = tuple(index for index, name in enumerate(_RULE_COLUMNS) if name in _TIME_COLUMNS)


@dataclass
class _Watch:
    """What the ingest knows of one sensor's rules without reading them (`_ingest_index`):
    its walked rules and the `conditions.Bounds` of their conditions (a batch inside them
    moves none of those that are ok), and the other rules reading it (judged at each batch)."""

    walked: list[int] = field(default_factory=list)
    walked_conditions: list[dict[str, Any]] = field(default_factory=list)
    bounds: conditions.Bounds = field(default_factory=conditions.Bounds)
    reads_rate: bool = False
    # The rules on a window of the sensor compared with thresholds (`bounded_sensor`), and
    # the Bounds of their conditions: an average, minimum or maximum crosses a threshold
    # with a new value beyond it, or with time alone (older values leaving the window),
    # which is the scheduler's to see, on the rule's period.
    windowed: list[int] = field(default_factory=list)
    windowed_conditions: list[dict[str, Any]] = field(default_factory=list)
    window_bounds: conditions.Bounds = field(default_factory=conditions.Bounds)
    others: list[int] = field(default_factory=list)


# Per team, the `_Watch` of each sensor with enabled rules, and what it was read under: the
# rules' newest updated_at (one index probe per batch; creating or changing a rule moves it)
# and when (re-read after INGEST_INDEX_TTL_S whatever it says: a change that commits with an
# older updated_at than one already seen). A rule disabled since is dropped where the rows
# are read (enabled only). Reading 10 000 rules' state at every batch, to skip most of them,
# was the ingest's largest cost of evaluation.
_INGEST_INDEX: dict[tuple[Any, ...], tuple[Any, float, dict[int, _Watch]]] = {}
INGEST_INDEX_TTL_S = 60.0
_INGEST_INDEX_TEAMS_MAX = 1000


def _newest_rule_change() -> Any:
    return AlertRule.objects.order_by("-updated_at").values_list("updated_at", flat=True).first()


def _ingest_index(team_id: int) -> dict[int, _Watch]:
    """The team's sensors' `_Watch`es, cached per process (see `_INGEST_INDEX`)."""
    key = (connection.alias, connection.settings_dict.get("NAME"), team_id)
    newest = _newest_rule_change()
    cached = _INGEST_INDEX.get(key)
    if (
        cached is not None
        and cached[0] == newest
        and time.monotonic() - cached[1] < INGEST_INDEX_TTL_S
    ):
        return cached[2]
    through = AlertRule.sensors.through
    rows = list(
        through.objects.filter(alertrule__team_id=team_id, alertrule__enabled=True)
        .order_by("alertrule_id", "sensor_id")
        .values_list("alertrule_id", "sensor_id", "alertrule__updated_at", "alertrule__hysteresis")
    )
    definitions = _definitions_of(
        {rule: (_microseconds(updated_at), hysteresis) for rule, _s, updated_at, hysteresis in rows}
    )
    watches: dict[int, _Watch] = defaultdict(_Watch)
    for rule, sensor, _updated_at, _hysteresis in rows:
        definition = definitions.get(rule)
        if definition is None:  # deleted meanwhile
            continue
        watch = watches[sensor]
        if definition.walked_sensor == sensor and definition.relaxed is not None:
            watch.walked.append(rule)
            watch.walked_conditions.append(definition.condition)
            watch.reads_rate = watch.reads_rate or definition.reads_rate
        elif definition.bounded_sensor == sensor:
            watch.windowed.append(rule)
            watch.windowed_conditions.append(definition.condition)
        else:  # the others, and broken ones (their evaluation fails where judged, alone)
            watch.others.append(rule)
    for watch in watches.values():
        watch.bounds = conditions.bounds_of(watch.walked_conditions)
        watch.window_bounds = conditions.bounds_of(watch.windowed_conditions)
    if len(_INGEST_INDEX) >= _INGEST_INDEX_TEAMS_MAX:
        _INGEST_INDEX.clear()
    _INGEST_INDEX[key] = (newest, time.monotonic(), dict(watches))
    return _INGEST_INDEX[key][2]


def _watching(
    team_id: int, sensor_ids: Sequence[int], candidates: Sequence[int]
) -> list[Sequence[Any]]:
    """The rows (`_RULE_COLUMNS`, times in microseconds since the epoch) of the team's
    enabled rules among `candidates`, and of those on these sensors that are not ok (their
    state is only known here), in id order. On PostgreSQL in plain SQL with the times as
    integers (loading rules' state columns, four timestamps each, through the ORM was a third
    of the evaluation at ingest), in two index scans: the candidates by id, the team's rules
    that are not ok (the partial index `alert_rule_not_ok`)."""
    through = AlertRule.sensors.through
    wanted = set(candidates)
    if connection.vendor != "postgresql":
        watching = through.objects.filter(sensor_id__in=sensor_ids).values("alertrule_id")
        rows: list[Sequence[Any]] = []
        for row in (
            AlertRule.objects.filter(team_id=team_id, enabled=True, pk__in=watching)
            .order_by("pk")
            .values_list(*_RULE_COLUMNS)
        ):
            if row[0] not in wanted and row[4] == AlertRule.State.OK:
                continue
            light = list(row)
            for index in _TIME_INDEXES:
                if light[index] is not None:
                    light[index] = _microseconds(light[index])
            rows.append(light)
        return rows
    columns = ", ".join(
        f"(extract(epoch FROM {name}) * 1000000)::bigint"
        if name in _TIME_COLUMNS
        else ("id" if name == "pk" else name)
        for name in _RULE_COLUMNS
    )
    table = AlertRule._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {columns} FROM {table} WHERE id = ANY(%s::bigint[]) AND team_id = %s AND enabled
            UNION
            SELECT {columns} FROM {table} WHERE team_id = %s AND enabled AND state <> 'ok'
              AND id IN (SELECT alertrule_id FROM {through._meta.db_table}
                         WHERE sensor_id = ANY(%s::bigint[]))
            ORDER BY 1
            """,  # noqa: S608 - the models' tables; the values are parameters
            [sorted(wanted), team_id, team_id, list(sensor_ids)],
        )
        return cursor.fetchall()


def _rule_of_row(row: Sequence[Any], definition: _Definition) -> _Rule:
    """The `_Rule` of a `_watching` row."""
    values = list(row)
    for index in _TIME_INDEXES:
        if values[index] is not None:
            values[index] = _moment_of(values[index])
    return _Rule(**dict(zip(_RULE_COLUMNS, values, strict=True)), definition=definition)


def _readings_before(bounds: Mapping[int, datetime]) -> dict[int, tuple[datetime, float]]:
    """`sites.selectors.sensors_readings_before`; on PostgreSQL one index probe per sensor
    (a LATERAL join), where the selector's two subqueries per sensor cost ~50 ms for 1 000
    sensors at each ingest of rate rules."""
    if connection.vendor != "postgresql":
        return sensors_readings_before(bounds=bounds)
    ids = sorted(bounds)
    from mlmanager.sites.models import Reading

    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT bound.id, reading.timestamp, reading.value
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS bound (id, moment)
            CROSS JOIN LATERAL (
                SELECT timestamp, value FROM {Reading._meta.db_table}
                WHERE sensor_id = bound.id AND timestamp < bound.moment
                ORDER BY timestamp DESC LIMIT 1
            ) AS reading
            """,  # noqa: S608 - the model's table; the values are parameters
            [ids, [bounds[pk] for pk in ids]],
        )
        return {pk: (stamp, value) for pk, stamp, value in cursor.fetchall()}


def _whole_rules(results: Sequence[_Result]) -> None:
    """Replace the light rules of these results by their models (one query), with the state
    the evaluation gave them: the alerts need the rest (name, severity, targets, mutes)."""
    light = {result.rule.pk: result.rule for result in results if isinstance(result.rule, _Rule)}
    if not light:
        return
    whole = AlertRule.objects.in_bulk(list(light))
    for result in results:
        seen = result.rule
        if not isinstance(seen, _Rule):
            continue
        rule = whole[seen.pk]
        rule.state, rule.state_since = seen.state, seen.state_since
        rule.last_value, rule.last_evaluated_at = seen.last_value, seen.last_evaluated_at
        rule.next_evaluation_at = seen.next_evaluation_at
        result.rule = rule


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

    rule: AnyRule
    state: str
    since: datetime | None
    value: float | None
    value_at: datetime | None
    changes: list[_Change] = field(default_factory=list)
    # The rule's state as read: the UPDATE moving it is conditional on it.
    read_state: str = ""
    read_since: datetime | None = None


def _run(
    rule: AnyRule, points: Iterable[tuple[datetime, Sequence[Observation], float | None]]
) -> _Result:
    """Step the rule through its observations at each moment, from its stored state."""
    state, since = rule.state, rule.state_since
    result = _Result(
        rule=rule,
        state=state,
        since=since,
        value=rule.last_value,
        value_at=None,
        read_state=state,
        read_since=since,
    )
    relaxed = rule.definition.relaxed if isinstance(rule, _Rule) else None
    if relaxed is None:
        relaxed = conditions.relaxed(rule.condition, rule.hysteresis)
    for moment, observations, value in points:
        holds = conditions.holds(rule.condition, observations, now=moment)
        clears = state != conditions.OK and conditions.clears_relaxed(
            relaxed, observations, now=moment
        )
        state, since, transition = conditions.step(state, since, moment, holds, clears, rule.for_s)
        if transition != conditions.TRANSITION_NONE:
            result.changes.append(_Change(transition, moment, value))
        result.value, result.value_at = value, moment
    result.state, result.since = state, since
    return result


def _walk(
    rule: AnyRule,
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
    rule: AnyRule, at: datetime, read: SeriesReader | None = None
) -> tuple[list[Observation], float | None]:
    """Each series' observation at `at` (`read`, by default series.series_value; an earlier
    value `per_s` before for rate_above), and the value the alert shows (that of the first
    condition's series)."""
    from mlmanager.monitoring.series import series_value

    if read is None:

        def read(spec: dict[str, Any], moment: datetime) -> tuple[datetime | None, float | None]:
            return series_value(spec, team_id=rule.team_id, at=moment)

    if isinstance(rule, _Rule) and rule.definition.reads:
        return _observe_reads(rule.definition, at, read)
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


def _observe_reads(
    definition: _Definition, at: datetime, read: SeriesReader
) -> tuple[list[Observation], float | None]:
    """`_observe` through the definition's `reads` (what the loop over leaves finds, found
    once per rule rather than at each evaluation)."""
    observations = [_UNREAD] * len(definition.series)
    for index, spec, per_s in definition.reads:
        latest_at, value = read(spec, at)
        previous_value = previous_at = None
        if per_s is not None:
            previous_at = at - timedelta(seconds=per_s)
            previous_value = read(spec, previous_at)[1]
        observations[index] = Observation(
            value=value,
            at=at,
            previous_value=previous_value,
            previous_at=previous_at,
            latest_at=latest_at,
        )
    return observations, observations[definition.shown_series].value


_UNREAD = Observation()


def _rate_moment(leaf: Mapping[str, Any], at: datetime) -> datetime:
    return at - timedelta(seconds=leaf.get("per_s", conditions.DEFAULT_PER_S))


def _evaluate_at(rule: AnyRule, at: datetime, read: SeriesReader | None = None) -> _Result:
    observations, value = _observe(rule, at, read)
    return _run(rule, [(at, observations, value)])


# --- applying results ---------------------------------------------------------------------------


def _apply(results: Sequence[_Result], *, now: datetime, scheduled: bool) -> None:
    """Store the results: the rules with transitions moved together (`_move_rules`: a
    conditional UPDATE from the state they were read in), then the winners' alerts, events
    and notifications in a few statements for the whole batch (`_alerts_change`); the rules
    without one only when a one-off evaluation of theirs came (`_one_off_done`: it is
    cleared, the value seen kept). A rule without a transition is otherwise not written at
    all: its state did not change, and a periodic rule's next evaluation is its period's."""
    plain = [result for result in results if not result.changes]
    moved = [result for result in results if result.changes]
    if plain and scheduled:
        _store_plain(_one_off_done(plain, now=now), now=now)
    if not moved:
        return
    won = _move_rules(moved, now=now, scheduled=scheduled)
    if not won:
        return
    _whole_rules(won)
    _alerts_change(won)
    site_changed(site_ids={result.rule.site_id for result in won if result.rule.site_id})


def _move_rules(moved: Sequence[_Result], *, now: datetime, scheduled: bool) -> list[_Result]:
    """Write each moved rule's new state, on condition that its row still holds the state it
    was read in; the results whose rule was moved here (the others were moved by another
    evaluation first: their alerts are theirs to keep). The winners' rows stay locked until
    the commit, so no other evaluation opens or resolves their alerts meanwhile.
    PostgreSQL: one UPDATE (the rows locked first in id order: two batches never lock two
    rules in opposite orders); SQLite, one writer at a time: one UPDATE per rule."""
    befores = []
    for result in moved:
        rule = result.rule
        befores.append((result.read_state, result.read_since))
        rule.state, rule.state_since = result.state, result.since
        rule.last_value = result.value
        rule.last_evaluated_at = result.value_at or now
        rule.next_evaluation_at = next_evaluation(rule, now=now)
    if connection.vendor != "postgresql":
        return [
            result
            for result, (state, since) in zip(moved, befores, strict=True)
            if AlertRule.objects.filter(pk=result.rule.pk, state=state, state_since=since).update(
                state=result.rule.state,
                state_since=result.rule.state_since,
                last_value=result.rule.last_value,
                last_evaluated_at=result.rule.last_evaluated_at,
                next_evaluation_at=result.rule.next_evaluation_at,
            )
        ]
    table = AlertRule._meta.db_table
    rules = [result.rule for result in moved]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE",  # noqa: S608
            [sorted(rule.pk for rule in rules)],
        )
        cursor.execute(
            f"""
            UPDATE {table} AS rule SET
                state = moved.state, state_since = moved.state_since,
                last_value = moved.value, last_evaluated_at = moved.evaluated_at,
                next_evaluation_at = moved.next_at
            FROM unnest(
                %s::bigint[], %s::text[], %s::timestamptz[], %s::text[], %s::timestamptz[],
                %s::float8[], %s::timestamptz[], %s::timestamptz[]
            ) AS moved (id, old_state, old_since, state, state_since, value, evaluated_at, next_at)
            WHERE rule.id = moved.id AND rule.state = moved.old_state
              AND rule.state_since IS NOT DISTINCT FROM moved.old_since
            RETURNING rule.id
            """,  # noqa: S608 - the model's table; the values are parameters
            [
                [rule.pk for rule in rules],
                [state for state, _since in befores],
                [since for _state, since in befores],
                [rule.state for rule in rules],
                [rule.state_since for rule in rules],
                [rule.last_value for rule in rules],
                [rule.last_evaluated_at for rule in rules],
                [rule.next_evaluation_at for rule in rules],
            ],
        )
        winners = {row[0] for row in cursor.fetchall()}
    return [result for result in moved if result.rule.pk in winners]


def _one_off_done(results: Sequence[_Result], *, now: datetime) -> list[_Result]:
    """The results of rules evaluated for a one-off `next_evaluation_at` that has come: that
    must be cleared (or moved). The periodic rules evaluated on their period alone are not
    written (see the module docstring)."""
    return [
        result
        for result in results
        if result.rule.next_evaluation_at is not None and result.rule.next_evaluation_at <= now
    ]


def _store_plain(results: Sequence[_Result], *, now: datetime) -> None:
    """Scheduled results without a transition whose one-off evaluation came: the value
    seen, the next one-off (none for a periodic rule). Each UPDATE is conditional on the
    state the rule was read in: when an ingest moved the rule meanwhile, its next time is
    theirs. PostgreSQL takes them all in one statement."""
    if not results:
        return
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


def _subjects(rules: Sequence[AlertRule]) -> dict[int, dict[str, Any]]:
    """Each rule's alert subject: its site, and its sensor or model when the rule watches
    exactly one (and it still exists: a rule's series may name a sensor deleted since); two
    queries for all the rules."""
    ids = [rule.pk for rule in rules]
    sensors: dict[int, list[int]] = defaultdict(list)
    for rule_id, sensor_id in _targets(AlertRule.sensors.through, "sensor_id", ids):
        sensors[rule_id].append(sensor_id)
    machines: dict[int, list[int]] = defaultdict(list)
    for rule_id, machine_id in _targets(AlertRule.machines.through, "machine_id", ids):
        machines[rule_id].append(machine_id)
    return {
        rule.pk: {
            "site_id": rule.site_id,
            "sensor_id": sensors[rule.pk][0] if len(sensors[rule.pk]) == 1 else None,
            "machine_id": machines[rule.pk][0] if len(machines[rule.pk]) == 1 else None,
        }
        for rule in rules
    }


def _targets(through: Any, column: str, ids: list[int]) -> list[tuple[int, int]]:
    """(rule, target) rows of a rule's many-to-many table for these rules, in its id order.
    On PostgreSQL with an array parameter: the ORM's IN list of 1 000 rules (the silent
    sensors of a site, firing at once) cost more to build than the query took."""
    if connection.vendor != "postgresql":
        return list(
            through.objects.filter(alertrule_id__in=ids)
            .order_by("pk")
            .values_list("alertrule_id", column)
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT alertrule_id, {column} FROM {through._meta.db_table} "  # noqa: S608
            "WHERE alertrule_id = ANY(%s::bigint[]) ORDER BY id",
            [ids],
        )
        return cursor.fetchall()


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


def _unit(rule: AlertRule, sensor_id: int | None, units: Mapping[int, str]) -> str:
    """The unit of a rule's one sensor series (its values are that sensor's), else none."""
    if sensor_id is None or len(rule.series) != 1 or rule.series[0].get("aggregation") == "count":
        return ""
    return units.get(sensor_id, "")


@dataclass
class _Step:
    """One transition of one alert, in order: the alert (as it ends the batch), a copy of it
    as it was right after this transition (what its notifications show), the event."""

    alert: Alert
    shown: Alert
    kind: str
    data: dict[str, Any]


@dataclass
class _Plan:
    new: list[Alert] = field(default_factory=list)
    changed: dict[int, Alert] = field(default_factory=dict)
    steps: list[_Step] = field(default_factory=list)


def _plan(
    won: Sequence[_Result],
    open_alerts: Mapping[int, Alert],
    subjects: Mapping[int, dict[str, Any]],
    units: Mapping[int, str],
) -> _Plan:
    """The winners' transitions on their alerts, in memory: opened (new rows), fired and
    resolved (new or changed rows), each with its event. A rule may go through several
    alerts in one batch (opened, resolved, opened again)."""
    plan = _Plan()
    for result in won:
        rule = result.rule
        assert isinstance(rule, AlertRule)  # `_whole_rules` made it so
        alert = open_alerts.get(rule.pk)
        if alert is not None:
            alert.rule = rule
        for change in result.changes:
            transition = change.transition
            opens = transition == conditions.TRANSITION_PENDING or (
                transition == conditions.TRANSITION_FIRING and alert is None
            )
            if opens and alert is None:
                state = (
                    Alert.State.PENDING
                    if transition == conditions.TRANSITION_PENDING
                    else Alert.State.FIRING
                )
                subject = subjects[rule.pk]
                alert = Alert(
                    team_id=rule.team_id,
                    rule=rule,
                    severity=rule.severity,
                    state=state,
                    title=rule.name[:200],
                    message=_message(rule, change, _unit(rule, subject["sensor_id"], units)),
                    value=change.value,
                    started_at=change.at,
                    firing_at=change.at if state == Alert.State.FIRING else None,
                    **subject,
                )
                plan.new.append(alert)
            elif opens:
                # An open alert the rule's state did not know of (its state was reset
                # meanwhile): one open alert per rule, so that one goes on.
                assert alert is not None
            elif alert is None:  # resolving an alert someone resolved by hand already
                continue
            elif transition == conditions.TRANSITION_FIRING:
                alert.state, alert.firing_at, alert.value = (
                    Alert.State.FIRING,
                    change.at,
                    change.value,
                )
                alert.message = _message(rule, change, _unit(rule, alert.sensor_id, units))
            else:
                alert.state = Alert.State.RESOLVED
                alert.resolved_at = max(change.at, alert.started_at)
            if alert.pk is not None:
                plan.changed[alert.pk] = alert
            plan.steps.append(
                _Step(
                    alert=alert,
                    shown=copy.copy(alert),
                    kind=_EVENT_OF[transition],
                    data={"value": change.value, "at": change.at.isoformat()},
                )
            )
            if alert.state == Alert.State.RESOLVED:
                alert = None
    return plan


def _alerts_change(won: Sequence[_Result]) -> None:
    """Open, fire and resolve the alerts of the rules `_move_rules` moved, with their events
    and notifications, in a few statements for the whole batch (what one transition used to
    cost, ~10 ms, mostly went to its own dozen queries).

    The new alerts are inserted together, in a savepoint. The partial unique constraint (one
    open alert per rule) still holds under concurrency: the winners' rule rows are locked,
    and the open alerts are read after that, so another evaluation can neither open one for
    these rules meanwhile nor have one we did not see. Should an insert still conflict (an
    open alert written by anything else), the open alerts are read again and the batch
    planned again on them, once."""
    rules = [result.rule for result in won if isinstance(result.rule, AlertRule)]
    subjects = _subjects(rules)
    for attempt in range(2):
        open_alerts = {
            alert.rule_id: alert
            for alert in Alert.objects.filter(
                rule_id__in=[rule.pk for rule in rules], resolved_at__isnull=True
            )
        }
        sensor_ids = {subject["sensor_id"] for subject in subjects.values()} | {
            alert.sensor_id for alert in open_alerts.values()
        }
        units = dict(
            Sensor.objects.filter(pk__in=[pk for pk in sensor_ids if pk is not None]).values_list(
                "pk", "unit"
            )
        )
        plan = _plan(won, open_alerts, subjects, units)
        try:
            with transaction.atomic():
                Alert.objects.bulk_create(plan.new)
            break
        except IntegrityError:
            if attempt:
                raise
    now = timezone.now()
    for alert in plan.changed.values():
        alert.updated_at = now
    if plan.changed:
        _alerts_update(list(plan.changed.values()))
    for step in plan.steps:  # the copies were taken before the new alerts had their ids
        step.shown.pk, step.shown.created_at = step.alert.pk, step.alert.created_at
        step.shown.updated_at = step.alert.updated_at
    planned = notifications.notifications_plan(
        [(step.shown, step.kind) for step in plan.steps], now=now
    )
    events: list[AlertEvent] = []
    rows: list[Any] = []
    for step, told in zip(plan.steps, planned, strict=True):
        events.append(AlertEvent(alert=step.alert, kind=step.kind, data=step.data))
        if told:
            events.append(notifications.notified_event(step.alert, step.kind, told))
            rows.extend(told)
    AlertEvent.objects.bulk_create(events)
    notifications.notifications_save(rows)


def _alerts_update(alerts: Sequence[Alert]) -> None:
    """Write the fields a transition changes of these alerts; on PostgreSQL in one UPDATE
    from arrays (the ORM's bulk_update builds a CASE per field and row)."""
    fields = ["state", "firing_at", "value", "message", "resolved_at", "updated_at"]
    if connection.vendor != "postgresql":
        Alert.objects.bulk_update(alerts, fields)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Alert._meta.db_table} AS alert SET
                state = changed.state, firing_at = changed.firing_at, value = changed.value,
                message = changed.message, resolved_at = changed.resolved_at,
                updated_at = changed.updated_at
            FROM unnest(
                %s::bigint[], %s::text[], %s::timestamptz[], %s::float8[], %s::text[],
                %s::timestamptz[], %s::timestamptz[]
            ) AS changed (id, state, firing_at, value, message, resolved_at, updated_at)
            WHERE alert.id = changed.id
            """,  # noqa: S608 - the model's table; the values are parameters
            [
                [alert.pk for alert in alerts],
                [str(alert.state) for alert in alerts],
                [alert.firing_at for alert in alerts],
                [alert.value for alert in alerts],
                [alert.message for alert in alerts],
                [alert.resolved_at for alert in alerts],
                [alert.updated_at for alert in alerts],
            ],
        )


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


def _reads_rate(rule: AnyRule) -> bool:
    if isinstance(rule, _Rule):
        return rule.definition.reads_rate
    return any(leaf["op"] == "rate_above" for leaf in conditions.condition_leaves(rule.condition))


def _reads_sensors_only(rule: AnyRule) -> bool:
    if isinstance(rule, _Rule):
        return rule.definition.sensors_only
    return bool(rule.series) and all(spec.get("kind") == "sensor" for spec in rule.series)


def _wanted(rule: AnyRule, at: datetime) -> list[tuple[dict[str, Any], datetime]]:
    """The (series, moment) pairs `_observe` reads for the rule at `at`."""
    if isinstance(rule, _Rule) and rule.definition.reads:
        wanted_now = []
        for _index, spec, per_s in rule.definition.reads:
            wanted_now.append((spec, at))
            if per_s is not None:
                wanted_now.append((spec, at - timedelta(seconds=per_s)))
        return wanted_now
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


def _bulk_reader(
    wanted: Iterable[tuple[dict[str, Any], datetime]],
    known_latest: dict[int, tuple[datetime, float]] | None = None,
) -> SeriesReader:
    """What `_observe` reads for sensor-only rules, read at once (series.sensor_series_values:
    a few queries however many rules; `known_latest` as there)."""
    from mlmanager.monitoring.series import _keyed, sensor_series_values

    found = sensor_series_values(wanted, known_latest=known_latest)

    def read(spec: dict[str, Any], at: datetime) -> tuple[datetime | None, float | None]:
        return found[(_keyed(spec)[1], at)]

    return read


def evaluate_sensor_values(
    team_id: int,
    values: Mapping[int, Sequence[tuple[datetime, float]]],
    previous: Mapping[int, tuple[datetime, float]] | None = None,
) -> None:
    """Evaluate the team's enabled rules on these sensors with their new values (sensor id →
    [(timestamp, calibrated value)], newer than the sensor's previous latest). Called by the
    ingest in its transaction, with `previous`: each sensor's latest reading before these
    (none: it had none), the first step of a rate; read here when not given.

    First without reading a rule (`_ingest_index`, cached per process): a sensor whose new
    values stay inside the `Bounds` of its walked rules (lowest, highest, steepest change
    from the reading before them) moves none of those that are ok, nor, inside the Bounds of
    its rules comparing a window (avg, min, max) with thresholds, any of those (a window
    crossing a threshold with time alone is the scheduler's to see). Then one query reads the
    rules that may move: those of the other sensors, the other rules on aggregates (judged at
    each batch), and whatever is not ok. An ok walked rule whose condition holds
    at none of the new values (`conditions.may_hold`) is neither walked nor written; the
    others are walked; the rules on aggregates read their series at once (a few queries);
    only transitions are written."""
    sensor_ids = sorted(pk for pk, points in values.items() if points)
    if not sensor_ids:
        return
    index = _ingest_index(team_id)
    watches = {pk: watch for pk in sensor_ids if (watch := index.get(pk)) is not None}
    if not watches:
        return
    if previous is None:
        rate_sensors = [pk for pk, watch in watches.items() if watch.reads_rate]
        previous = (
            _readings_before({pk: min(values[pk])[0] for pk in rate_sensors})
            if rate_sensors
            else {}
        )
    ordered = {pk: sorted(values[pk]) for pk in watches}
    spans: dict[int, conditions.Span] = {}
    candidates: list[int] = []
    for pk, watch in watches.items():
        candidates.extend(watch.others)
        if watch.walked or watch.windowed:
            span = spans[pk] = conditions.span_of(ordered[pk], previous.get(pk))
            if watch.walked and watch.bounds.may_hold(span):
                candidates.extend(watch.walked)
            if watch.windowed and watch.window_bounds.may_hold(span):
                candidates.extend(watch.windowed)
    watching = _watching(team_id, sorted(watches), candidates)
    if not watching:
        return
    definitions = _definitions_of_rows(watching)
    latest = {pk: ordered[pk][-1] for pk in ordered}  # each sensor's newest new value
    newest = {pk: found[0] for pk, found in latest.items()}
    # Rows and sets rather than a tuple per rule: this runs for every rule of every batch,
    # and the allocations' share of the collector's passes showed in the profiles.
    walked: list[Sequence[Any]] = []  # the walked rules' rows
    others: list[tuple[Sequence[Any], datetime]] = []  # (row, the moment it is judged at)
    for row in watching:
        definition = definitions.get(row[0])
        if definition is None:  # deleted meanwhile
            continue
        sensor = definition.walked_sensor
        if sensor is not None:
            if sensor in newest:
                walked.append(row)
            continue
        moments = [
            newest[spec["sensor"]]
            for spec in definition.series
            if spec.get("kind") == "sensor" and spec["sensor"] in newest
        ]
        if moments:
            others.append((row, max(moments)))
    results = []
    ok = AlertRule.State.OK
    for row in walked:
        definition = definitions[row[0]]
        sensor = definition.walked_sensor
        assert sensor is not None
        before = previous.get(sensor)
        if row[4] == ok:  # its state
            known = spans.get(sensor)
            if known is None:
                known = spans[sensor] = conditions.span_of(ordered[sensor], before)
            if not conditions.may_hold(definition.condition, known):
                continue
        results.append(_walk(_rule_of_row(row, definition), ordered[sensor], before))
    judged = [(_rule_of_row(row, definitions[row[0]]), at) for row, at in others]
    bulk = [(rule, at) for rule, at in judged if _reads_sensors_only(rule)]
    # The rules are judged at their sensors' newest new values: those are what the sensors'
    # latest readings are then (the ingest just stored them), read from here.
    read = (
        _bulk_reader((pair for rule, at in bulk for pair in _wanted(rule, at)), latest)
        if bulk
        else None
    )
    for rule, at in judged:
        if read is not None and rule.definition.sensors_only and rule.definition.reads:
            observations, value = _observe_reads(rule.definition, at, read)
            # An ok rule whose condition does not hold stays ok: no transition, and at
            # ingest a rule without one is not written (`_apply`), so it is not stepped.
            if rule.state == ok and not conditions.holds(
                rule.definition.condition, observations, now=at
            ):
                continue
            results.append(_run(rule, [(at, observations, value)]))
            continue
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
    """The `monitoring.evaluate` periodic task: evaluate every enabled rule due in the slot
    `now` falls in: the periodic rules with a multiple of their period in it, and the one-off
    evaluations whose `next_evaluation_at` has come (for_s timers, retries, new rules).
    Returns how many were evaluated.

    The due rules on sensors only are evaluated together, DUE_BATCH at a time: loaded
    without the model (their definitions cached), their series read at once (a few queries
    for all of them), the conditions judged here, only transitions and one-offs written, the
    transitions applied together (should that fail, each in its own transaction: a broken
    rule does not stop the others). The other rules (models) are evaluated one by one, each
    in its own transaction.

    Once per slot however many schedulers run: the periodic-task registry runs this once per
    slot (jobs.scheduler), and the periodic rules due are those of that slot; should two
    runs still overlap, each write is conditional on the state the rule was read in, so a
    transition is applied once."""
    now = now or timezone.now()
    one_off, newest = _one_offs_due(now)
    slot_end = evaluation_slot_end(now)
    chosen = set(one_off)
    due_ids = one_off + [
        pk for pk in _periodic_due(_periodic_rules(newest), slot_end) if pk not in chosen
    ]
    # The periodic rules that cannot move now are judged so without being loaded (they
    # would not be written either: no transition, no one-off). A quiet hour of 2 000 such
    # rules a minute cost the scheduler 11 s with them loaded and judged one by one.
    quiet = _quiet_rules(due_ids[len(one_off) :], now=now)
    if quiet:
        due_ids = [pk for pk in due_ids if pk not in quiet]
    done = len(quiet)
    for offset in range(0, len(due_ids), DUE_BATCH):
        chunk = due_ids[offset : offset + DUE_BATCH]
        done += _evaluate_batch(_rules_by_id(chunk), now=now)
    return done


def _quiet_rules(periodic_ids: Sequence[int], *, now: datetime) -> set[int]:
    """The enabled rules among these periodic ones that surely stay as they are at `now`
    (`_Quiet`): their definitions as cached, their sensors' newest readings as the ingest
    keeps them on the sensors' rows (what `series.sensor_series_values` reads too), their
    states: two queries for all of them. A rule whose sensor has a reading after `now`
    (evaluating the past), or that is pending, is left to the evaluation."""
    candidates: dict[int, _Definition] = {}
    for pk in periodic_ids:
        known = _DEFINITIONS.get(pk)
        if known is not None and known[2].quiet is not None:
            candidates[pk] = known[2]
    if not candidates:
        return set()
    sensors: set[int] = set()
    for definition in candidates.values():
        quiet = definition.quiet
        assert quiet is not None
        if quiet.kind == "window":
            sensors.update(sensor for sensor, _reach in quiet.reach)
        elif definition.walked_sensor is not None:
            sensors.add(definition.walked_sensor)
    newest, states = _newest_and_states(sensors, list(candidates))
    now_us = _microseconds(now)
    bounds: dict[float, int] = {}  # reach -> the newest reading a quiet window allows
    found = set()
    for pk, state in states:
        definition = candidates[pk]
        quiet = definition.quiet
        assert quiet is not None
        if quiet.kind == "window":
            for sensor, reach in quiet.reach:
                bound = bounds.get(reach)
                if bound is None:
                    bound = bounds[reach] = _microseconds(now - timedelta(seconds=reach))
                latest_us = newest.get(sensor)
                if latest_us is not None and latest_us > bound:
                    break
            else:
                found.add(pk)
            continue
        latest = newest.get(definition.walked_sensor)  # type: ignore[arg-type]
        if latest is not None and latest > now_us:
            continue
        # no_data as `conditions` judges it, on integers: the silence in seconds is the
        # microseconds' quotient, as timedelta.total_seconds() gives it.
        silence = None if latest is None else (now_us - latest) / 1_000_000
        holds = silence is None or silence > quiet.holds_after_s
        clears = silence is not None and not silence > quiet.clears_until_s
        if (state == AlertRule.State.OK and not holds) or (
            state == AlertRule.State.FIRING and not clears
        ):
            found.add(pk)
    return found


def _newest_and_states(
    sensor_ids: Iterable[int], rule_ids: list[int]
) -> tuple[dict[int, int], list[tuple[int, str]]]:
    """The times of the sensors' newest readings as kept on their rows (sensor ->
    microseconds since the epoch), and the (id, state) of the enabled rules among
    `rule_ids`. On PostgreSQL
    in plain SQL with array parameters and the times as integers: 60 runs an hour of 2 000
    rules, where building the ORM's IN lists and loading its timestamps cost most."""
    ids = sorted(set(sensor_ids))
    if connection.vendor != "postgresql":
        newest = {
            pk: _microseconds(stamp)
            for pk, stamp in Sensor.objects.filter(
                pk__in=ids, last_timestamp__isnull=False, last_value__isnull=False
            )
            .order_by()
            .values_list("pk", "last_timestamp")
            if stamp is not None  # filtered above; for the type checker
        }
        states: list[tuple[int, str]] = list(
            AlertRule.objects.filter(pk__in=rule_ids, enabled=True)
            .order_by()
            .values_list("pk", "state")
        )
        return newest, states
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT id, (extract(epoch FROM last_timestamp) * 1000000)::bigint
            FROM {Sensor._meta.db_table}
            WHERE id = ANY(%s::bigint[]) AND last_timestamp IS NOT NULL AND last_value IS NOT NULL
            """,  # noqa: S608 - the model's table; the values are parameters
            [ids],
        )
        newest = dict(cursor.fetchall())
        cursor.execute(
            f"SELECT id, state FROM {AlertRule._meta.db_table} "  # noqa: S608 - ours
            "WHERE id = ANY(%s::bigint[]) AND enabled",
            [rule_ids],
        )
        states = cursor.fetchall()
    return newest, states


def _evaluate_batch(due: Sequence[_Rule], *, now: datetime) -> int:
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
                rule = AlertRule.objects.filter(pk=pk, enabled=True).first()
                if rule is None:  # deleted or disabled since
                    continue
                evaluate_rule(rule, now=now)
                done += 1
        except Exception:
            logger.exception("alert rule %s could not be evaluated", pk)
            AlertRule.objects.filter(pk=pk).update(next_evaluation_at=now + RETRY_AFTER_FAILURE)
    return done


# The periodic rules (id, evaluate_every_s) of this process, and what they were read under:
# the newest `updated_at` of the rules (an index probe each run; creating or changing a rule
# moves it) and when (re-read after PERIODIC_CACHE_TTL whatever it says, for changes that
# commit with an older updated_at than one already seen). A rule deleted or disabled since
# is dropped where the due ones are loaded (enabled only); a new or changed one is also a
# one-off evaluation, due at once, so a stale cache delays only its following periods.
_PERIODIC: dict[str, Any] = {}
PERIODIC_CACHE_TTL_S = 300.0


def _one_offs_due(now: datetime) -> tuple[list[int], Any]:
    """The ids of the rules whose one-off evaluation has come (DUE_BATCH at most, the
    oldest first), and the rules' newest updated_at (`_periodic_rules`' key): one statement,
    two index probes (what every run pays, most of them with nothing due)."""
    table = AlertRule._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT due.id, NULL FROM (
                SELECT id FROM {table} WHERE enabled AND next_evaluation_at <= %s
                ORDER BY next_evaluation_at, id LIMIT %s
            ) AS due
            UNION ALL
            SELECT NULL, (SELECT updated_at FROM {table} ORDER BY updated_at DESC LIMIT 1)
            """,  # noqa: S608 - the model's table; the values are parameters
            [now, DUE_BATCH],
        )
        rows = cursor.fetchall()
    return [pk for pk, _newest in rows if pk is not None], rows[-1][1]


def _periodic_rules(newest: Any) -> list[tuple[int, int]]:
    key = (connection.alias, connection.settings_dict.get("NAME"), newest)
    cached = _PERIODIC.get("rules")
    if (
        cached is not None
        and _PERIODIC.get("key") == key
        and time.monotonic() - _PERIODIC.get("read_at", 0.0) < PERIODIC_CACHE_TTL_S
    ):
        return cached  # type: ignore[no-any-return]
    # Four columns of every enabled rule (their definitions mostly cached already).
    rows = list(
        AlertRule.objects.filter(enabled=True)
        .order_by("pk")
        .values_list("pk", "updated_at", "hysteresis", "evaluate_every_s")
    )
    missing = [
        pk
        for pk, updated_at, hysteresis, _every in rows
        if (_DEFINITIONS.get(pk) or (None, None))[:2] != (_microseconds(updated_at), hysteresis)
    ]
    if missing:
        _rules(AlertRule.objects.filter(pk__in=missing))  # parses and caches them
    rules = []
    for pk, _updated_at, _hysteresis, every in rows:
        known = _DEFINITIONS.get(pk)
        if known is None or known[2].periodic:  # unknown: deleted meanwhile, or cache cleared
            rules.append((pk, every))
    _PERIODIC.update(rules=rules, key=key, read_at=time.monotonic())
    return rules


def _periodic_due(rules: list[tuple[int, int]], slot_end: int) -> list[int]:
    """The ids of these periodic rules (id, evaluate_every_s) due in the slot ending at
    `slot_end`, in id order: judged once per distinct period, not per rule (the 2 000
    periodic rules of 10 000 were judged one by one in each of an hour's 360 runs)."""
    groups = _PERIODIC.get("groups")
    if groups is None or groups[0] is not rules:
        by_every: dict[int, list[int]] = defaultdict(list)
        for pk, every in rules:
            by_every[every].append(pk)
        groups = (rules, dict(by_every))
        _PERIODIC["groups"] = groups
    due = [ids for every, ids in groups[1].items() if is_due_in_slot(every, slot_end)]
    if not due:
        return []
    if len(due) == len(groups[1]):
        return [pk for pk, _every in rules]
    if len(due) == 1:
        return list(due[0])
    return sorted(pk for ids in due for pk in ids)


def rule_caches_forget() -> None:
    """Drop this process's caches of rules, the scheduler's periodic ones and the ingest's
    index (tests, and services of this process that just changed a rule: they are read
    again when next needed)."""
    _PERIODIC.clear()
    _INGEST_INDEX.clear()


def _evaluate_together(rules: Sequence[_Rule], *, now: datetime) -> int:
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
    _store_plain(_one_off_done(plain, now=now), now=now)
    done = len(plain)
    moved = [result for result in results if result.changes]
    try:
        with transaction.atomic():
            _apply(moved, now=now, scheduled=True)
        done += len(moved)
    except Exception:
        logger.exception("due alert rules' transitions could not be applied together; one by one")
        for result in moved:  # `_move_rules` conditions on the state read: a retry is safe
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
