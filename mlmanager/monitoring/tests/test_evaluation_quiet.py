"""What the scheduler judges without loading a rule (`evaluation._quiet_rules`): a periodic rule
on sensor windows none of which holds a reading, and a no_data rule that neither holds (ok)
nor clears (firing), stay as they are; judging them so gives what evaluating them gives, and
counts them as evaluated. Also the span of a batch, computed inline, against its definition."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mlmanager.monitoring import conditions
from mlmanager.monitoring.conditions import Observation, Span, span_of
from mlmanager.monitoring.models import Alert, AlertRule
from mlmanager.monitoring.services import evaluation
from mlmanager.monitoring.tests.test_evaluation import _moment_zero, at, raw, rule_of, store, world

__all__ = ["_moment_zero", "world"]  # the fixtures, shared with test_evaluation


def window(sensor: Any, aggregation: str = "avg", period_s: int = 60) -> dict[str, Any]:
    return {"kind": "sensor", "sensor": sensor.pk, "aggregation": aggregation, "period_s": period_s}


def rules_of_world(world: dict[str, Any]) -> dict[str, AlertRule]:
    heat, pressure = world["heat"], world["pressure"]
    above = {"series": 0, "op": "above", "value": 50.0}
    return {
        "heat avg": rule_of(world, above, name="Heat avg", series=[window(heat)]),
        "pressure avg": rule_of(world, above, name="Pressure avg", series=[window(pressure)]),
        "heat max rate": rule_of(
            world,
            {"series": 0, "op": "rate_above", "value": 5.0, "per_s": 120.0},
            name="Heat max jumps",
            series=[window(heat, "max")],
        ),
        "both": rule_of(
            world,
            {
                "any": [
                    {"series": 0, "op": "above", "value": 50.0},
                    {"series": 1, "op": "below", "value": -50.0},
                ]
            },
            name="Either",
            series=[window(heat, "min", 300), window(pressure)],
        ),
        "heat count": rule_of(world, above, name="Heat count", series=[window(heat, "count")]),
        "heat silent": rule_of(
            world, {"series": 0, "op": "no_data", "value": 120.0}, name="Heat silent"
        ),
        "pressure silent": rule_of(
            world,
            {"series": 0, "op": "no_data", "value": 120.0},
            name="Pressure silent",
            series=[raw(pressure)],
        ),
    }


def judged(rules: dict[str, AlertRule], moment: Any) -> tuple[set[str], dict[str, bool]]:
    """The rules `_quiet_rules` judges at `moment` (by name), and for each rule whether its
    full evaluation at `moment` moves it."""
    names = {rule.pk: name for name, rule in rules.items()}
    light = evaluation._rules_by_id(sorted(names))  # also caches their definitions
    quiet = evaluation._quiet_rules(sorted(names), now=moment)
    reader = evaluation._bulk_reader(
        pair for rule in light for pair in evaluation._wanted(rule, moment)
    )
    moves = {
        names[rule.pk]: bool(evaluation._evaluate_at(rule, moment, reader).changes)
        for rule in light
    }
    return {names[pk] for pk in quiet}, moves


def test_the_quiet_rules_are_those_no_evaluation_would_move(world: dict[str, Any]) -> None:
    # Heat reads 60 at 0 s and 70 at 30 s (before the rules: the ingest does not move them);
    # pressure never reads.
    store(world, world["heat"], [(at(0), 60.0), (at(30), 70.0)])
    rules = rules_of_world(world)

    quiet, moves = judged(rules, at(40))
    # Heat's windows hold readings, the count of a window is never unknown, and a sensor
    # that read 10 s ago is not silent but an ok rule is judged on that alone.
    assert quiet == {"pressure avg", "heat silent"}
    assert moves == {
        "heat avg": True,
        "pressure avg": False,
        "heat max rate": False,  # 70 now, nothing 120 s before: no rate
        "both": True,
        "heat count": False,  # 2 readings, not above 50
        "heat silent": False,
        "pressure silent": True,  # never read: silent
    }

    # 200 s later: heat's 60 s windows are empty, also the one 120 s before (the rate's),
    # but not its 300 s one; heat is silent now (not quiet: it fires).
    quiet, moves = judged(rules, at(230))
    assert quiet == {"pressure avg", "heat avg", "heat max rate"}
    assert moves["heat silent"] and moves["pressure silent"]
    assert not moves["heat avg"] and not moves["pressure avg"]

    # Once the silent rules fire, a firing silent rule that does not clear is quiet, and
    # every window of heat is empty 10 minutes on.
    evaluation.evaluate_due_rules(at(230))
    AlertRule.objects.filter(pk=rules["heat avg"].pk).update(state="firing")
    quiet, moves = judged(rules, at(630))
    assert quiet == {
        "heat avg",
        "pressure avg",
        "heat max rate",
        "both",
        "heat silent",
        "pressure silent",
    }
    assert not any(moves.values())


def test_a_rule_of_a_sensor_read_after_the_moment_or_pending_is_left_to_the_evaluation(
    world: dict[str, Any],
) -> None:
    rules = rules_of_world(world)
    store(world, world["heat"], [(at(100), 20.0)])
    quiet, _moves = judged(rules, at(50))  # evaluating the past: heat has read since
    assert "heat silent" not in quiet and "heat avg" not in quiet
    AlertRule.objects.filter(pk=rules["pressure silent"].pk).update(state="pending")
    quiet, _moves = judged(rules, at(130))
    assert "pressure silent" not in quiet
    assert "heat silent" in quiet  # read 30 s ago: an ok silence rule does not hold


def test_a_quiet_minute_loads_no_rule_and_counts_them_evaluated(world: dict[str, Any]) -> None:
    store(world, world["heat"], [(at(0), 60.0)])
    rules = [
        rule_of(
            world,
            {"series": 0, "op": "above", "value": 50.0},
            name=f"Avg {n}",
            series=[window(sensor)],
        )
        for n, sensor in enumerate([world["heat"], world["pressure"]])
    ]
    first = at(600)
    assert evaluation.evaluate_due_rules(first) == 2  # new: one-off, evaluated in full
    minute = first + timedelta(seconds=60 - first.timestamp() % 60)
    with CaptureQueriesContext(connection) as captured:
        assert evaluation.evaluate_due_rules(minute) == 2
    # Their ids and states only: never their series, conditions or state columns.
    rule_reads = [q["sql"] for q in captured if AlertRule._meta.db_table in q["sql"]]
    assert rule_reads and not [sql for sql in rule_reads if "last_evaluated_at" in sql]
    assert not Alert.objects.exists()
    assert set(
        AlertRule.objects.filter(pk__in=[r.pk for r in rules]).values_list("state", flat=True)
    ) == {"ok"}


def test_a_disabled_or_deleted_rule_is_not_counted(world: dict[str, Any]) -> None:
    kept, disabled, deleted = (
        rule_of(
            world,
            {"series": 0, "op": "above", "value": 50.0},
            name=f"Avg {n}",
            series=[window(world["pressure"])],
        )
        for n in range(3)
    )
    evaluation._rules_by_id([kept.pk, disabled.pk, deleted.pk])
    AlertRule.objects.filter(pk=disabled.pk).update(enabled=False)
    AlertRule.objects.filter(pk=deleted.pk).delete()
    assert evaluation._quiet_rules([kept.pk, disabled.pk, deleted.pk], now=at(600)) == {kept.pk}


# --- the span of a batch (pure) -----------------------------------------------------------------


def span_by_definition(points: list[Any], previous: Any = None) -> Span:
    steepest = None
    before = previous
    for moment, value in points:
        if before is not None:
            change = conditions.rate_of_change(
                Observation(
                    value=value, at=moment, previous_value=before[1], previous_at=before[0]
                ),
                per_s=1.0,
            )
            if change is not None and (steepest is None or abs(change) > steepest):
                steepest = abs(change)
        before = (moment, value)
    values = [value for _moment, value in points]
    return Span(lowest=min(values), highest=max(values), steepest=steepest)


@pytest.mark.parametrize("seed", range(5))
def test_the_span_is_its_definition(seed: int) -> None:
    generator = random.Random(seed)
    moment = at(0)
    points = []
    for _step in range(generator.randint(1, 30)):
        moment += timedelta(microseconds=generator.choice([0, 1, 3_600_000, 250_000]))
        points.append((moment, generator.choice([0.0, -1.5, 1e9, generator.gauss(20, 5)])))
    previous = generator.choice([None, (at(-3), 19.0), (at(0), 20.0)])
    assert span_of(points, previous) == span_by_definition(points, previous)
