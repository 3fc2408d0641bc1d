"""Alert rule conditions: validation, evaluation with hysteresis, and the rule's state machine.

Plain Python (no Django), so the engine's rules can be read and tested on their own.

A condition is a leaf `{"series": 0, "op": "above|below|outside|inside|rate_above|no_data",
"value"?, "low"?, "high"?, "per_s"?}` or `{"all": [...]}` / `{"any": [...]}`:

- above / below `value`; outside / inside the band `low`..`high` (bounds inside the band);
- rate_above: the change of the series per `per_s` seconds (default 60), in either direction,
  is more than `value`;
- no_data: the series has had no data point for more than `value` seconds.

`holds` says whether a condition is true of the series' current observations. A firing rule
resolves only when its condition *clears*: `clears` is the condition evaluated with each
threshold moved toward the safe side by the rule's hysteresis (None: 1 % of the threshold's
size, at least 1e-9), so a value hovering at a threshold does not flap. A value that is not
known (no data) neither holds nor clears, except for no_data itself.

`step` is the state machine: ok → pending (holds, for less than `for_s`) → firing → ok when
the condition clears; a pending rule whose condition clears goes back to ok (its alert is
resolved without having fired).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

OPS = ("above", "below", "outside", "inside", "rate_above", "no_data")
DEFAULT_PER_S = 60.0
MAX_DEPTH = 4  # nesting of all/any
MAX_LEAVES = 20
MIN_HYSTERESIS = 1e-9
HYSTERESIS_SHARE = 0.01

# The rule's states and the transitions `step` reports.
OK, PENDING, FIRING = "ok", "pending", "firing"
TRANSITION_NONE, TRANSITION_PENDING, TRANSITION_FIRING, TRANSITION_RESOLVED = (
    "none",
    "pending",
    "firing",
    "resolved",
)

_LEAF_KEYS = {
    "above": ("value",),
    "below": ("value",),
    "outside": ("low", "high"),
    "inside": ("low", "high"),
    "rate_above": ("value", "per_s"),
    "no_data": ("value",),
}
_OPTIONAL = {"per_s"}


class ConditionError(ValueError):
    """An invalid condition: `field` names the bad part (`condition.all[1].value`), `code`
    says what is wrong (the service turns it into a translated message), `params` fill it."""

    def __init__(self, field: str, code: str, **params: Any) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Observation:
    """What is known of one series at evaluation time: its current value and the moment it
    stands for, an earlier value and its moment (for rate_above), and the moment of its latest
    data point (for no_data). Any of them may be unknown (None)."""

    value: float | None = None
    at: datetime | None = None
    previous_value: float | None = None
    previous_at: datetime | None = None
    latest_at: datetime | None = None


# --- validation ---------------------------------------------------------------------------------


def _number(raw: Any, field: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConditionError(field, "not_a_number")
    value = float(raw)
    if not math.isfinite(value):
        raise ConditionError(field, "not_a_number")
    return value


def condition_validate(condition: Any, *, series_count: int, field: str = "condition") -> dict:
    """The condition normalised (numbers as floats, `per_s` filled in), or ConditionError
    naming the first bad field."""
    leaves = [0]
    return _validate(condition, series_count=series_count, field=field, depth=0, leaves=leaves)


def _validate(
    condition: Any, *, series_count: int, field: str, depth: int, leaves: list[int]
) -> dict:
    if not isinstance(condition, dict):
        raise ConditionError(field, "not_an_object")
    for combinator in ("all", "any"):
        if combinator in condition:
            if set(condition) != {combinator}:
                raise ConditionError(field, "combinator_alone", combinator=combinator)
            if depth >= MAX_DEPTH:
                raise ConditionError(field, "too_deep", limit=MAX_DEPTH)
            parts = condition[combinator]
            if not isinstance(parts, list) or not parts:
                raise ConditionError(f"{field}.{combinator}", "empty_list")
            return {
                combinator: [
                    _validate(
                        part,
                        series_count=series_count,
                        field=f"{field}.{combinator}[{index}]",
                        depth=depth + 1,
                        leaves=leaves,
                    )
                    for index, part in enumerate(parts)
                ]
            }
    leaves[0] += 1
    if leaves[0] > MAX_LEAVES:
        raise ConditionError(field, "too_many_leaves", limit=MAX_LEAVES)
    return _validate_leaf(condition, series_count=series_count, field=field)


def _validate_leaf(condition: dict, *, series_count: int, field: str) -> dict:
    op = condition.get("op")
    if op not in OPS:
        raise ConditionError(f"{field}.op", "unknown_op", choices=", ".join(OPS))
    allowed = {"series", "op", *_LEAF_KEYS[op]}
    for key in condition:
        if key not in allowed:
            raise ConditionError(f"{field}.{key}", "not_for_op", op=op)
    index = condition.get("series", 0)
    if isinstance(index, bool) or not isinstance(index, int):
        raise ConditionError(f"{field}.series", "not_an_index")
    if not 0 <= index < series_count:
        raise ConditionError(f"{field}.series", "no_such_series", count=series_count)
    leaf: dict[str, Any] = {"series": index, "op": op}
    for key in _LEAF_KEYS[op]:
        if key not in condition:
            if key in _OPTIONAL:
                continue
            raise ConditionError(f"{field}.{key}", "required", op=op)
        leaf[key] = _number(condition[key], f"{field}.{key}")
    if op in ("outside", "inside") and leaf["low"] > leaf["high"]:
        raise ConditionError(f"{field}.low", "low_above_high")
    if op == "rate_above":
        if leaf["value"] < 0:
            raise ConditionError(f"{field}.value", "negative")
        per_s = leaf.setdefault("per_s", DEFAULT_PER_S)
        if per_s <= 0:
            raise ConditionError(f"{field}.per_s", "not_positive")
    if op == "no_data" and leaf["value"] <= 0:
        raise ConditionError(f"{field}.value", "not_positive")
    return leaf


def condition_leaves(condition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The leaves of a (valid) condition, in order."""
    for combinator in ("all", "any"):
        if combinator in condition:
            return [leaf for part in condition[combinator] for leaf in condition_leaves(part)]
    return [condition]


# --- evaluation ---------------------------------------------------------------------------------


def holds(
    condition: Mapping[str, Any], observations: Sequence[Observation], *, now: datetime
) -> bool:
    """Whether the condition is true of the observations (one per series) at `now`."""
    if "all" in condition:
        return all(holds(part, observations, now=now) for part in condition["all"])
    if "any" in condition:
        return any(holds(part, observations, now=now) for part in condition["any"])
    return _leaf_holds(condition, observations[condition["series"]], now=now)


def _leaf_holds(leaf: Mapping[str, Any], seen: Observation, *, now: datetime) -> bool:
    op = leaf["op"]
    if op == "no_data":
        if seen.latest_at is None:
            return True
        return (now - seen.latest_at).total_seconds() > leaf["value"]
    if op == "rate_above":
        change = rate_of_change(seen, per_s=leaf.get("per_s", DEFAULT_PER_S))
        return change is not None and abs(change) > leaf["value"]
    value = seen.value
    if value is None:
        return False
    if op == "above":
        return value > leaf["value"]
    if op == "below":
        return value < leaf["value"]
    if op == "outside":
        return value < leaf["low"] or value > leaf["high"]
    return leaf["low"] <= value <= leaf["high"]  # inside


def rate_of_change(seen: Observation, *, per_s: float) -> float | None:
    """The change per `per_s` seconds between the previous and the current value; None when
    either is unknown or they stand for the same moment."""
    if None in (seen.value, seen.previous_value, seen.at, seen.previous_at):
        return None
    elapsed = (seen.at - seen.previous_at).total_seconds()  # type: ignore[operator]
    if elapsed <= 0:
        return None
    return (seen.value - seen.previous_value) / elapsed * per_s  # type: ignore[operator]


def _known(condition: Mapping[str, Any], observations: Sequence[Observation]) -> bool:
    """Whether the series a leaf reads has what the leaf needs (no_data always has)."""
    op = condition["op"]
    seen = observations[condition["series"]]
    if op == "no_data":
        return True
    if op == "rate_above":
        return rate_of_change(seen, per_s=1.0) is not None
    return seen.value is not None


def hysteresis_for(threshold: float, hysteresis: float | None) -> float:
    if hysteresis is not None:
        return max(float(hysteresis), 0.0)
    return max(abs(threshold) * HYSTERESIS_SHARE, MIN_HYSTERESIS)


def relaxed(condition: Mapping[str, Any], hysteresis: float | None) -> dict[str, Any]:
    """The condition with every threshold moved toward the safe side by the hysteresis: it
    holds for values a little inside the original thresholds too."""
    if "all" in condition:
        return {"all": [relaxed(part, hysteresis) for part in condition["all"]]}
    if "any" in condition:
        return {"any": [relaxed(part, hysteresis) for part in condition["any"]]}
    leaf = dict(condition)
    op = leaf["op"]
    if op in ("above", "rate_above", "no_data"):
        leaf["value"] = leaf["value"] - hysteresis_for(leaf["value"], hysteresis)
        if op != "above":
            leaf["value"] = max(leaf["value"], 0.0)
    elif op == "below":
        leaf["value"] = leaf["value"] + hysteresis_for(leaf["value"], hysteresis)
    elif op == "outside":
        low = leaf["low"] + hysteresis_for(leaf["low"], hysteresis)
        high = leaf["high"] - hysteresis_for(leaf["high"], hysteresis)
        if low > high:  # a band narrower than its hysteresis: safe is its middle only
            low = high = (leaf["low"] + leaf["high"]) / 2
        leaf["low"], leaf["high"] = low, high
    else:  # inside: the band widens
        leaf["low"] = leaf["low"] - hysteresis_for(leaf["low"], hysteresis)
        leaf["high"] = leaf["high"] + hysteresis_for(leaf["high"], hysteresis)
    return leaf


def clears(
    condition: Mapping[str, Any],
    observations: Sequence[Observation],
    *,
    now: datetime,
    hysteresis: float | None,
) -> bool:
    """Whether a firing (or pending) rule may resolve: its relaxed condition does not hold,
    judged only on what is known (a leaf whose series has no value neither holds nor clears)."""
    return _clears(relaxed(condition, hysteresis), observations, now=now)


def clears_relaxed(
    relaxed_condition: Mapping[str, Any], observations: Sequence[Observation], *, now: datetime
) -> bool:
    """`clears` of a condition `relaxed` already (an evaluation relaxes a rule's condition
    once, not at each of its values)."""
    return _clears(relaxed_condition, observations, now=now)


def _clears(
    condition: Mapping[str, Any], observations: Sequence[Observation], *, now: datetime
) -> bool:
    if "all" in condition:  # all(...) is false once one part is surely false
        return any(_clears(part, observations, now=now) for part in condition["all"])
    if "any" in condition:
        return all(_clears(part, observations, now=now) for part in condition["any"])
    if not _known(condition, observations):
        return False
    return not _leaf_holds(condition, observations[condition["series"]], now=now)


# --- what a batch of values can do ---------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """What a batch of one series' values spans: its lowest and highest value, and the
    steepest change per second between consecutive values (the step from the value before
    the batch included when known; None when no step is known)."""

    lowest: float
    highest: float
    steepest: float | None


def span_of(
    points: Sequence[tuple[datetime, float]], previous: tuple[datetime, float] | None = None
) -> Span:
    """The span of `points` ((moment, value), oldest first, at least one) after `previous`.
    The steps are computed as `rate_of_change` computes them, so comparing them is exact."""
    # `rate_of_change` inline (per_s 1: its product is the quotient itself), without an
    # Observation per step: the ingest takes the span of every sensor of every batch.
    steepest: float | None = None
    before_at, before_value = previous if previous is not None else (None, None)
    for moment, value in points:
        if before_at is not None and value is not None and before_value is not None:
            elapsed = (moment - before_at).total_seconds()
            if elapsed > 0:
                change = abs((value - before_value) / elapsed)
                if steepest is None or change > steepest:
                    steepest = change
        before_at, before_value = moment, value
    values = [value for _moment, value in points]
    return Span(lowest=min(values), highest=max(values), steepest=steepest)


def may_hold(condition: Mapping[str, Any], span: Span) -> bool:
    """Whether the condition may hold at some value of a batch of its one series spanning
    `span`, each value being the series' newest when judged (as at ingest). False only when it
    surely holds at none: a rule that is ok then cannot change state on this batch, and the
    ingest does not walk it."""
    if "all" in condition:
        return all(may_hold(part, span) for part in condition["all"])
    if "any" in condition:
        return any(may_hold(part, span) for part in condition["any"])
    op = condition["op"]
    if op == "above":
        return span.highest > condition["value"]
    if op == "below":
        return span.lowest < condition["value"]
    if op == "outside":
        return span.lowest < condition["low"] or span.highest > condition["high"]
    if op == "inside":
        return span.highest >= condition["low"] and span.lowest <= condition["high"]
    if op == "rate_above":
        per_s = condition.get("per_s", DEFAULT_PER_S)
        return span.steepest is not None and span.steepest * per_s > condition["value"]
    # no_data: each new value is the series' latest point when judged, a silence of 0 s.
    return bool(condition["value"] < 0)


@dataclass(frozen=True)
class Bounds:
    """`may_hold` of several conditions on one series at once (`bounds_of`), for the ingest's
    first look at each sensor of a batch: a span inside every box surely holds none of them.
    The leaves above, below and outside are a box of values (`lowest`..`highest`: a span
    going below `lowest` or above `highest` may hold one), rate_above a steepest change
    (`rates`: (value, per_s)); the other conditions (inside, all/any, no_data) are judged one
    by one (`others`)."""

    lowest: float = -math.inf
    highest: float = math.inf
    rates: tuple[tuple[float, float], ...] = ()
    others: tuple[Mapping[str, Any], ...] = ()

    def may_hold(self, span: Span) -> bool:
        """Whether one of the conditions may hold on a batch spanning `span`: `may_hold` of
        each, in one comparison for the box."""
        if span.lowest < self.lowest or span.highest > self.highest:
            return True
        steepest = span.steepest
        if steepest is not None and any(steepest * per_s > value for value, per_s in self.rates):
            return True
        return any(may_hold(condition, span) for condition in self.others)


def bounds_of(conditions: Sequence[Mapping[str, Any]]) -> Bounds:
    """The `Bounds` of these (valid) conditions."""
    lowest, highest = -math.inf, math.inf
    rates: list[tuple[float, float]] = []
    others: list[Mapping[str, Any]] = []
    for condition in conditions:
        op = condition.get("op")
        # The comparisons of `may_hold`, gathered: holds at a value below the highest
        # `lowest` (below, outside), or above the lowest `highest` (above, outside).
        if op == "above":
            highest = min(highest, condition["value"])
        elif op == "below":
            lowest = max(lowest, condition["value"])
        elif op == "outside":
            lowest, highest = max(lowest, condition["low"]), min(highest, condition["high"])
        elif op == "rate_above":
            rates.append((condition["value"], condition.get("per_s", DEFAULT_PER_S)))
        else:
            others.append(condition)
    return Bounds(lowest=lowest, highest=highest, rates=tuple(rates), others=tuple(others))


# --- the state machine --------------------------------------------------------------------------


def step(
    state: str,
    since: datetime | None,
    now: datetime,
    holds: bool,
    clears: bool,
    for_s: float,
) -> tuple[str, datetime | None, str]:
    """The rule's next (state, state_since, transition) at `now`, given whether its condition
    holds and whether it clears there.

    ok: holds → pending (or firing at once when `for_s` is 0).
    pending: clears → ok ("resolved": the alert never fired); holds and pending for `for_s` →
    firing; otherwise (holds for less, or hovering inside the hysteresis) → still pending.
    firing: clears → ok ("resolved"); otherwise still firing.
    """
    if state == OK:
        if not holds:
            return OK, since, TRANSITION_NONE
        if for_s <= 0:
            return FIRING, now, TRANSITION_FIRING
        return PENDING, now, TRANSITION_PENDING
    if state == PENDING:
        if clears:
            return OK, now, TRANSITION_RESOLVED
        started = since or now
        if holds and (now - started).total_seconds() >= for_s:
            return FIRING, now, TRANSITION_FIRING
        return PENDING, started, TRANSITION_NONE
    if clears:
        return OK, now, TRANSITION_RESOLVED
    return FIRING, since, TRANSITION_NONE


# --- words --------------------------------------------------------------------------------------


def _figure(value: Any) -> str:
    number = float(value)
    return f"{number:g}"


def describe(condition: Mapping[str, Any]) -> str:
    """The condition in words, for alert messages: "above 80", "outside 10 – 50", "no data for
    300 s", combined with "and" / "or" (series named by their number when there are several)."""
    if "all" in condition or "any" in condition:
        joiner = " and " if "all" in condition else " or "
        parts = condition.get("all") or condition.get("any") or []
        return joiner.join(f"({describe(part)})" for part in parts)
    op = condition["op"]
    prefix = f"series {condition['series']} " if condition.get("series", 0) else ""
    if op in ("above", "below"):
        return f"{prefix}{op} {_figure(condition['value'])}"
    if op in ("outside", "inside"):
        return f"{prefix}{op} {_figure(condition['low'])} – {_figure(condition['high'])}"
    if op == "rate_above":
        per = _figure(condition.get("per_s", DEFAULT_PER_S))
        return f"{prefix}changing by more than {_figure(condition['value'])} per {per} s"
    return f"{prefix}no data for {_figure(condition['value'])} s"
