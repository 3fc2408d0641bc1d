"""Conditions (plain Python): validation with the bad field named, evaluation, hysteresis and
the rule's state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlmanager.monitoring import conditions
from mlmanager.monitoring.conditions import (
    FIRING,
    OK,
    PENDING,
    ConditionError,
    Observation,
    clears,
    condition_validate,
    holds,
    step,
)

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def seen(value: float | None, **fields: Any) -> list[Observation]:
    return [Observation(value=value, at=T0, latest_at=T0, **fields)]


# --- validation ---------------------------------------------------------------------------------


def test_a_valid_condition_is_normalised() -> None:
    condition = {
        "all": [
            {"series": 0, "op": "above", "value": 80},
            {
                "any": [
                    {"series": 1, "op": "rate_above", "value": 5},
                    {"op": "no_data", "value": 60},
                ]
            },
        ]
    }
    assert condition_validate(condition, series_count=2) == {
        "all": [
            {"series": 0, "op": "above", "value": 80.0},
            {
                "any": [
                    {"series": 1, "op": "rate_above", "value": 5.0, "per_s": 60.0},
                    {"series": 0, "op": "no_data", "value": 60.0},
                ]
            },
        ]
    }


@pytest.mark.parametrize(
    ("condition", "field", "code"),
    [
        ([], "condition", "not_an_object"),
        ({"series": 0, "op": "over", "value": 1}, "condition.op", "unknown_op"),
        ({"series": 2, "op": "above", "value": 1}, "condition.series", "no_such_series"),
        ({"series": True, "op": "above", "value": 1}, "condition.series", "not_an_index"),
        ({"series": 0, "op": "above"}, "condition.value", "required"),
        ({"series": 0, "op": "above", "value": True}, "condition.value", "not_a_number"),
        ({"series": 0, "op": "above", "value": "80"}, "condition.value", "not_a_number"),
        ({"series": 0, "op": "above", "value": 1, "low": 0}, "condition.low", "not_for_op"),
        ({"series": 0, "op": "outside", "low": 5, "high": 1}, "condition.low", "low_above_high"),
        ({"series": 0, "op": "outside", "low": 5}, "condition.high", "required"),
        ({"series": 0, "op": "no_data", "value": 0}, "condition.value", "not_positive"),
        (
            {"series": 0, "op": "rate_above", "value": 1, "per_s": 0},
            "condition.per_s",
            "not_positive",
        ),
        ({"all": []}, "condition.all", "empty_list"),
        ({"all": [{"op": "above", "value": 1}], "any": []}, "condition", "combinator_alone"),
        (
            {"any": [{"op": "above", "value": 1}, {"op": "below"}]},
            "condition.any[1].value",
            "required",
        ),
        (
            {"all": [{"all": [{"all": [{"all": [{"all": [{"op": "above", "value": 1}]}]}]}]}]},
            "condition.all[0].all[0].all[0].all[0]",
            "too_deep",
        ),
    ],
)
def test_an_invalid_condition_names_its_field(condition: Any, field: str, code: str) -> None:
    with pytest.raises(ConditionError) as raised:
        condition_validate(condition, series_count=2)
    assert (raised.value.field, raised.value.code) == (field, code)


def test_too_many_conditions_are_refused() -> None:
    leaves = [{"op": "above", "value": n} for n in range(conditions.MAX_LEAVES + 1)]
    with pytest.raises(ConditionError) as raised:
        condition_validate({"any": leaves}, series_count=1)
    assert raised.value.code == "too_many_leaves"
    assert raised.value.field == f"condition.any[{conditions.MAX_LEAVES}]"


# --- evaluation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leaf", "value", "expected"),
    [
        ({"op": "above", "value": 80.0}, 80.0, False),
        ({"op": "above", "value": 80.0}, 80.5, True),
        ({"op": "below", "value": 10.0}, 9.0, True),
        ({"op": "below", "value": 10.0}, 10.0, False),
        ({"op": "outside", "low": 10.0, "high": 20.0}, 21.0, True),
        ({"op": "outside", "low": 10.0, "high": 20.0}, 9.0, True),
        ({"op": "outside", "low": 10.0, "high": 20.0}, 20.0, False),
        ({"op": "inside", "low": 10.0, "high": 20.0}, 10.0, True),
        ({"op": "inside", "low": 10.0, "high": 20.0}, 25.0, False),
        ({"op": "above", "value": 80.0}, None, False),
    ],
)
def test_thresholds(leaf: dict[str, Any], value: float | None, expected: bool) -> None:
    assert holds({"series": 0, **leaf}, seen(value), now=T0) is expected


def test_a_value_that_is_not_known_neither_holds_nor_clears() -> None:
    condition = {"series": 0, "op": "above", "value": 80.0}
    assert holds(condition, seen(None), now=T0) is False
    assert clears(condition, seen(None), now=T0, hysteresis=None) is False
    assert clears(condition, seen(50.0), now=T0, hysteresis=None) is True


def test_hysteresis_defaults_to_one_percent_of_the_threshold() -> None:
    above = {"series": 0, "op": "above", "value": 80.0}  # clears at 79.2 or below
    assert clears(above, seen(79.3), now=T0, hysteresis=None) is False
    assert clears(above, seen(79.2), now=T0, hysteresis=None) is True
    assert clears(above, seen(79.9), now=T0, hysteresis=0.05) is True
    band = {"series": 0, "op": "outside", "low": 10.0, "high": 100.0}  # 10.1 .. 99
    assert clears(band, seen(99.5), now=T0, hysteresis=None) is False
    assert clears(band, seen(10.05), now=T0, hysteresis=None) is False
    assert clears(band, seen(50.0), now=T0, hysteresis=None) is True
    zero = {"series": 0, "op": "below", "value": 0.0}  # at least 1e-9
    assert clears(zero, seen(0.0), now=T0, hysteresis=None) is False
    assert clears(zero, seen(1e-8), now=T0, hysteresis=None) is True


def test_no_data_holds_after_the_silence() -> None:
    condition = {"series": 0, "op": "no_data", "value": 300.0}
    latest = [Observation(latest_at=T0)]
    assert holds(condition, latest, now=at(300)) is False
    assert holds(condition, latest, now=at(301)) is True
    assert holds(condition, [Observation()], now=T0) is True  # never any data
    # Data a moment ago clears it; 299 s of silence is within the hysteresis (3 s).
    assert clears(condition, latest, now=at(10), hysteresis=None) is True
    assert clears(condition, latest, now=at(299), hysteresis=None) is False


def test_rate_above_compares_the_change_per_period() -> None:
    condition = {"series": 0, "op": "rate_above", "value": 15.0, "per_s": 60.0}
    rising = [Observation(value=20.0, at=at(30), previous_value=10.0, previous_at=T0)]
    falling = [Observation(value=0.0, at=at(30), previous_value=10.0, previous_at=T0)]
    slow = [Observation(value=12.0, at=at(60), previous_value=10.0, previous_at=T0)]
    assert holds(condition, rising, now=at(30)) is True  # 10 in 30 s: 20 per minute
    assert holds(condition, falling, now=at(30)) is True  # either direction
    assert holds(condition, slow, now=at(60)) is False
    assert holds(condition, [Observation(value=20.0, at=T0)], now=T0) is False
    assert clears(condition, slow, now=at(60), hysteresis=None) is True
    assert clears(condition, [Observation(value=20.0, at=T0)], now=T0, hysteresis=None) is False


def test_all_and_any_combine() -> None:
    hot = {"series": 0, "op": "above", "value": 80.0}
    dry = {"series": 1, "op": "below", "value": 20.0}
    both = {"all": [hot, dry]}
    either = {"any": [hot, dry]}

    def two(first: float | None, second: float | None) -> list[Observation]:
        return [Observation(value=first), Observation(value=second)]

    assert holds(both, two(90, 10), now=T0) is True
    assert holds(both, two(90, 30), now=T0) is False
    assert holds(either, two(50, 10), now=T0) is True
    assert holds(either, two(50, 30), now=T0) is False
    # all(...) clears once one part surely clears, even with the other unknown...
    assert clears(both, two(50, None), now=T0, hysteresis=None) is True
    # ...any(...) only when every part clears.
    assert clears(either, two(50, None), now=T0, hysteresis=None) is False
    assert clears(either, two(50, 30), now=T0, hysteresis=None) is True
    assert clears(either, two(79.5, 30), now=T0, hysteresis=None) is False  # hysteresis


# --- the state machine --------------------------------------------------------------------------


def run(
    condition: dict[str, Any], values: list[float], *, for_s: float = 0, every_s: float = 10
) -> list[tuple[str, str]]:
    """(state, transition) after each value, one every `every_s` seconds."""
    state, since = OK, None
    out = []
    for index, value in enumerate(values):
        now = at(index * every_s)
        observation = [Observation(value=value, at=now, latest_at=now)]
        state, since, transition = step(
            state,
            since,
            now,
            holds(condition, observation, now=now),
            clears(condition, observation, now=now, hysteresis=None),
            for_s,
        )
        out.append((state, transition))
    return out


def test_a_value_hovering_at_the_threshold_does_not_flap() -> None:
    above = {"series": 0, "op": "above", "value": 80.0}
    hovering = [79.9, 80.1, 79.9, 80.1, 79.5, 80.2, 79.3, 80.05]
    states = run(above, hovering)
    transitions = [transition for _state, transition in states]
    assert transitions == ["none", "firing"] + ["none"] * 6
    assert states[-1][0] == FIRING
    # Well back inside, it resolves once.
    assert [t for _s, t in run(above, [*hovering, 79.0, 79.5, 80.0])][-3:] == [
        "resolved",
        "none",
        "none",
    ]


def test_for_duration_pends_then_fires() -> None:
    above = {"series": 0, "op": "above", "value": 80.0}
    states = run(above, [85, 85, 85, 85], for_s=30)
    assert states == [
        (PENDING, "pending"),
        (PENDING, "none"),
        (PENDING, "none"),
        (FIRING, "firing"),  # 30 s after it began
    ]


def test_a_pending_rule_that_clears_resolves_without_firing() -> None:
    above = {"series": 0, "op": "above", "value": 80.0}
    assert run(above, [85, 70, 70], for_s=30) == [
        (PENDING, "pending"),
        (OK, "resolved"),
        (OK, "none"),
    ]


def test_pending_within_the_hysteresis_waits_and_fires_when_it_holds_again() -> None:
    above = {"series": 0, "op": "above", "value": 80.0}
    assert [t for _s, t in run(above, [85, 79.5, 79.5, 81], for_s=20)] == [
        "pending",
        "none",
        "none",
        "firing",
    ]


def test_step_from_each_state() -> None:
    assert step(OK, None, T0, False, True, 0) == (OK, None, "none")
    assert step(OK, None, T0, True, False, 0) == (FIRING, T0, "firing")
    assert step(OK, None, T0, True, False, 60) == (PENDING, T0, "pending")
    assert step(PENDING, T0, at(59), True, False, 60) == (PENDING, T0, "none")
    assert step(PENDING, T0, at(60), True, False, 60) == (FIRING, at(60), "firing")
    assert step(PENDING, T0, at(5), False, True, 60) == (OK, at(5), "resolved")
    assert step(FIRING, T0, at(5), False, False, 60) == (FIRING, T0, "none")
    assert step(FIRING, T0, at(5), False, True, 60) == (OK, at(5), "resolved")


def test_bounds_judge_a_span_as_may_hold_of_each_condition() -> None:
    """The ingest's first look at a sensor (`Bounds.may_hold`) never skips a batch that one
    of the sensor's conditions may hold on, and skips the ones none may: checked against
    `may_hold` of each condition on random conditions and spans, thresholds met exactly
    included."""
    import random

    generator = random.Random(7)
    grid = [-5.0, 0.0, 5.0, 10.0, 15.0]

    def leaf() -> dict[str, Any]:
        op = generator.choice(["above", "below", "outside", "inside", "rate_above", "no_data"])
        if op in ("outside", "inside"):
            low, high = sorted(generator.sample(grid, 2))
            return {"series": 0, "op": op, "low": low, "high": high}
        if op == "rate_above":
            return {"series": 0, "op": op, "value": generator.choice(grid), "per_s": 10.0}
        if op == "no_data":
            return {"series": 0, "op": op, "value": generator.choice([-1.0, 60.0])}
        return {"series": 0, "op": op, "value": generator.choice(grid)}

    def condition() -> dict[str, Any]:
        if generator.random() < 0.2:
            return {generator.choice(["all", "any"]): [leaf(), leaf()]}
        return leaf()

    skipped = moved = 0
    for _case in range(3000):
        rules = [condition() for _rule in range(generator.randint(0, 4))]
        lowest, highest = sorted(generator.choice(grid) for _bound in range(2))
        steepest = generator.choice([None, 0.0, 0.5, 1.0, 2.0])
        span = conditions.Span(lowest=lowest, highest=highest, steepest=steepest)
        expected = any(conditions.may_hold(rule, span) for rule in rules)
        assert conditions.bounds_of(rules).may_hold(span) is expected, (rules, span)
        moved += expected
        skipped += not expected
    assert skipped > 500 and moved > 500  # both sides were exercised
