"""The fast paths of evaluation: at ingest, the rules that cannot change state on a batch are
neither walked nor written (`conditions.may_hold` on the batch's span); on schedule, the due
rules on sensors are evaluated together and give the same transitions as one by one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from mlmanager.core.tests.factories import member
from mlmanager.monitoring import conditions
from mlmanager.monitoring.conditions import Span, may_hold, span_of
from mlmanager.monitoring.models import (
    Alert,
    AlertRule,
    evaluation_slot_end,
    is_due_in_slot,
    is_periodic,
)
from mlmanager.monitoring.services import evaluation
from mlmanager.monitoring.services import rules as rule_services
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of

T0 = datetime(2026, 1, 1, tzinfo=timezone.get_current_timezone())


# --- the span of a batch and what it rules out (pure) -------------------------------------------


def test_span_of_a_batch_counts_the_step_from_the_value_before_it():
    points = [(T0 + timedelta(seconds=10), 20.0), (T0 + timedelta(seconds=20), 25.0)]
    assert span_of(points) == Span(lowest=20.0, highest=25.0, steepest=0.5)
    # 10 → 20 in the 10 s before the batch: 1 per second, the steepest step.
    assert span_of(points, (T0, 10.0)).steepest == 1.0
    assert span_of(points[:1]).steepest is None  # one value, nothing before: no step


@pytest.mark.parametrize(
    ("condition", "may"),
    [
        ({"series": 0, "op": "above", "value": 30.0}, False),  # highest is 30: not above
        ({"series": 0, "op": "above", "value": 29.9}, True),
        ({"series": 0, "op": "below", "value": 10.0}, False),  # lowest is 10
        ({"series": 0, "op": "below", "value": 10.1}, True),
        ({"series": 0, "op": "outside", "low": 10.0, "high": 30.0}, False),
        ({"series": 0, "op": "outside", "low": 10.0, "high": 29.0}, True),
        ({"series": 0, "op": "outside", "low": 11.0, "high": 30.0}, True),
        ({"series": 0, "op": "inside", "low": 31.0, "high": 40.0}, False),
        ({"series": 0, "op": "inside", "low": 0.0, "high": 9.0}, False),
        ({"series": 0, "op": "inside", "low": 30.0, "high": 40.0}, True),  # bounds inside
        ({"series": 0, "op": "inside", "low": 12.0, "high": 13.0}, True),  # may fall between
        ({"series": 0, "op": "rate_above", "value": 120.0, "per_s": 60.0}, False),  # 2/s
        ({"series": 0, "op": "rate_above", "value": 119.0, "per_s": 60.0}, True),
        ({"series": 0, "op": "no_data", "value": 60.0}, False),  # a new value is no silence
        (
            {
                "all": [
                    {"series": 0, "op": "above", "value": 20.0},
                    {"series": 0, "op": "below", "value": 5.0},
                ]
            },
            False,
        ),
        (
            {
                "any": [
                    {"series": 0, "op": "above", "value": 40.0},
                    {"series": 0, "op": "below", "value": 11.0},
                ]
            },
            True,
        ),
    ],
)
def test_may_hold_rules_out_only_what_no_value_of_the_batch_can_break(
    condition: dict[str, Any], may: bool
):
    span = Span(lowest=10.0, highest=30.0, steepest=2.0)
    assert may_hold(condition, span) is may


def test_may_hold_never_rules_out_a_value_that_holds():
    """Against `holds` itself over many batches: whenever one value of a batch makes a leaf
    hold, may_hold says it may."""
    import random

    generator = random.Random(15)
    leaves = [
        {"series": 0, "op": "above", "value": 25.0},
        {"series": 0, "op": "below", "value": 15.0},
        {"series": 0, "op": "outside", "low": 12.0, "high": 28.0},
        {"series": 0, "op": "inside", "low": 19.5, "high": 20.5},
        {"series": 0, "op": "rate_above", "value": 3.0, "per_s": 7.0},
    ]
    for _ in range(300):
        previous = (T0, round(generator.uniform(10, 30), 2))
        points = [
            (T0 + timedelta(seconds=second), round(generator.uniform(10, 30), 2))
            for second in sorted(generator.sample(range(1, 50), generator.randint(1, 5)))
        ]
        span = span_of(points, previous)
        for leaf in leaves:
            before = previous
            held = False
            for moment, value in points:
                seen = conditions.Observation(
                    value=value, at=moment, previous_value=before[1], previous_at=before[0]
                )
                held = held or conditions.holds(leaf, [seen], now=moment)
                before = (moment, value)
            if held:
                assert may_hold(leaf, span), (leaf, previous, points)


# --- at ingest ----------------------------------------------------------------------------------


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    owner = member("owner")
    team = owner.memberships.get().team
    mill = site_of(team, "Mill 1")
    return {"caller": caller_of(owner), "team": team, "mill": mill, "heat": sensor_of(mill, "Heat")}


def raw(sensor: Any) -> dict[str, Any]:
    return {"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}


def rule_of(
    world: dict[str, Any], name: str, condition: dict[str, Any], **fields: Any
) -> AlertRule:
    fields.setdefault("series", [raw(world["heat"])])
    return rule_services.rule_create(
        caller=world["caller"], team=world["team"], name=name, condition=condition, **fields
    )


def ingest(world: dict[str, Any], start: datetime, values: list[float], step_s: float = 10) -> None:
    answer = readings_ingest(
        caller=world["caller"],
        readings=[
            {
                "sensor": world["heat"].pk,
                "timestamp": (start + timedelta(seconds=index * step_s)).isoformat(),
                "value": value,
            }
            for index, value in enumerate(values)
        ],
    )
    assert answer["accepted"] == len(values), answer


def states(team: Any) -> dict[str, str]:
    return dict(AlertRule.objects.filter(team=team, builtin="").values_list("name", "state"))


def test_ingest_skips_rules_that_cannot_move_and_walks_those_that_may(world: dict[str, Any]):
    start = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    rule_of(world, "above", {"series": 0, "op": "above", "value": 80.0})
    rule_of(world, "below", {"series": 0, "op": "below", "value": 10.0})
    rule_of(world, "outside", {"series": 0, "op": "outside", "low": 10.0, "high": 90.0})
    rule_of(world, "inside", {"series": 0, "op": "inside", "low": 55.0, "high": 56.0})
    rule_of(world, "rate", {"series": 0, "op": "rate_above", "value": 60.0, "per_s": 60})
    rule_of(world, "for 30 s", {"series": 0, "op": "above", "value": 70.0}, for_s=30)
    ingest(world, start, [50.0, 52.0, 54.0])
    untouched = dict(AlertRule.objects.values_list("pk", "updated_at"))
    # A quiet batch: no rule can move, none is written.
    ingest(world, start + timedelta(seconds=30), [53.0, 51.0, 50.0])
    assert dict(AlertRule.objects.values_list("pk", "updated_at")) == untouched
    assert not Alert.objects.exists()

    # The jump is between the last batch's last reading (50 at +50 s) and this batch's first
    # (65 at +60 s): 90 per minute, only seen with the reading before the batch.
    ingest(world, start + timedelta(seconds=60), [65.0])
    assert states(world["team"]) == {
        "above": "ok",
        "below": "ok",
        "outside": "ok",
        "inside": "ok",
        "rate": "firing",
        "for 30 s": "ok",
    }
    # Across the inside band without a value in it: walked, and stays ok.
    ingest(world, start + timedelta(seconds=70), [54.9, 56.1, 54.0])
    assert states(world["team"])["inside"] == "ok"
    # A pending rule: walked on the next batches, fires once its 30 s have passed.
    ingest(world, start + timedelta(seconds=100), [75.0, 76.0])
    assert states(world["team"])["for 30 s"] == "pending"
    ingest(world, start + timedelta(seconds=120), [77.0, 78.0])  # +120, +130: 30 s pending
    assert states(world["team"])["for 30 s"] == "firing"
    assert Alert.objects.filter(rule__name="for 30 s", state="firing").count() == 1


def test_a_firing_rule_hovering_inside_its_hysteresis_stays_firing(world: dict[str, Any]):
    start = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    rule = rule_of(world, "above", {"series": 0, "op": "above", "value": 80.0})
    ingest(world, start, [81.0])
    ingest(world, start + timedelta(seconds=10), [79.5, 80.0, 79.3])  # hysteresis: 0.8
    rule.refresh_from_db()
    assert rule.state == "firing"
    ingest(world, start + timedelta(seconds=40), [79.1])
    rule.refresh_from_db()
    assert rule.state == "ok"
    # Back to ok, hovering at the threshold without passing it: skipped, no new alert.
    ingest(world, start + timedelta(seconds=50), [79.9, 80.0, 79.99])
    rule.refresh_from_db()
    assert rule.state == "ok"
    assert list(Alert.objects.filter(rule=rule).values_list("state", flat=True)) == ["resolved"]


# --- on schedule: together as one by one -------------------------------------------------------


def _fleet(name: str) -> dict[str, Any]:
    owner = member("owner")
    team = owner.memberships.get().team
    mill = site_of(team, name)
    world = {"caller": caller_of(owner), "team": team, "mill": mill}
    world["heat"] = sensor_of(mill, "Heat")
    world["pressure"] = sensor_of(mill, "Pressure", sensor_type="pressure")
    heat, pressure = world["heat"].pk, world["pressure"].pk
    minute_avg = {"kind": "sensor", "sensor": heat, "aggregation": "avg", "period_s": 60}
    rule_of(world, "avg above 50", {"series": 0, "op": "above", "value": 50.0}, series=[minute_avg])
    rule_of(
        world,
        "max over 3 h above 95",
        {"series": 0, "op": "above", "value": 95.0},
        series=[{"kind": "sensor", "sensor": heat, "aggregation": "max", "period_s": 10800}],
    )
    rule_of(
        world,
        "count below 3",
        {"series": 0, "op": "below", "value": 3.0},
        series=[{"kind": "sensor", "sensor": heat, "aggregation": "count", "period_s": 60}],
    )
    rule_of(
        world,
        "last in a minute above 60",
        {"series": 0, "op": "above", "value": 60.0},
        series=[{"kind": "sensor", "sensor": heat, "aggregation": "last", "period_s": 60}],
    )
    rule_of(world, "silent 90 s", {"series": 0, "op": "no_data", "value": 90.0})
    rule_of(
        world,
        "avg rate",
        {"series": 0, "op": "rate_above", "value": 20.0, "per_s": 60},
        series=[minute_avg],
    )
    rule_of(
        world,
        "both",
        {
            "all": [
                {"series": 0, "op": "above", "value": 40.0},
                {"series": 1, "op": "below", "value": 5.0},
            ]
        },
        series=[raw(world["heat"]), raw(world["pressure"])],
    )
    rule_of(world, "pending 60 s", {"series": 0, "op": "above", "value": 70.0}, for_s=60)
    assert pressure
    return world


def _ingest_to(world: dict[str, Any], sensor: str, points: list[tuple[datetime, float]]) -> None:
    answer = readings_ingest(
        caller=world["caller"],
        readings=[
            {"sensor": world[sensor].pk, "timestamp": stamp.isoformat(), "value": value}
            for stamp, value in points
        ],
    )
    assert answer["accepted"] == len(points), answer


def _one_by_one(team: Any, now: datetime) -> int:
    """The scheduler as it was: each due rule alone (its one-off evaluation came, or its
    period's multiple is in the slot), in its own transaction."""
    done = 0
    slot_end = evaluation_slot_end(now)
    for rule in AlertRule.objects.filter(team=team, enabled=True).order_by("pk"):
        one_off = rule.next_evaluation_at is not None and rule.next_evaluation_at <= now
        periodic = is_periodic(rule.series, rule.condition) and is_due_in_slot(
            rule.evaluate_every_s, slot_end
        )
        if one_off or periodic:
            with transaction.atomic():
                evaluation.evaluate_rule(rule, now=now)
                done += 1
    return done


def _picture(team: Any, start: datetime) -> dict[str, Any]:
    """Rules and alerts of the team; a next evaluation an ingest set (the wall clock's now, a
    transition at ingest) as "now"."""
    rules = {
        name: (
            state,
            since,
            value,
            "now" if next_at and next_at > start + timedelta(minutes=20) else next_at,
        )
        for name, state, since, value, next_at in AlertRule.objects.filter(team=team).values_list(
            "name", "state", "state_since", "last_value", "next_evaluation_at"
        )
        if not name.startswith(("Heat", "Pressure"))
    }
    alerts = sorted(
        Alert.objects.filter(team=team).values_list(
            "rule__name", "state", "value", "started_at", "firing_at", "resolved_at"
        )
    )
    return {"rules": rules, "alerts": alerts}


def test_due_rules_evaluated_together_move_as_one_by_one(db: None):
    together, alone = _fleet("Mill A"), _fleet("Mill B")
    # On a whole minute: the moments below are due in the slots of the rules' minute.
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30)
    script = [
        ("heat", [(start + timedelta(seconds=s), 30.0 + s / 10) for s in range(0, 120, 15)]),
        ("pressure", [(start, 3.0)]),
        ("heat", [(start + timedelta(seconds=130), 75.0), (start + timedelta(seconds=150), 99.0)]),
        ("heat", [(start + timedelta(seconds=400), 20.0)]),
    ]
    moments = [start + timedelta(seconds=s) for s in (60, 125, 160, 220, 300, 420, 600)]
    for world in (together, alone):
        # Everything due at the first moment, so both walk the same schedule.
        AlertRule.objects.filter(team=world["team"], next_evaluation_at__isnull=False).update(
            next_evaluation_at=start
        )
    counts: dict[str, list[int]] = {"together": [], "alone": []}
    for index, moment in enumerate(moments):
        if index < len(script):
            sensor, points = script[index]
            _ingest_to(together, sensor, points)
            _ingest_to(alone, sensor, points)
        # Only this team's rules: the other team's are due too (parked: disabled meanwhile).
        others = AlertRule.objects.exclude(team=together["team"]).filter(enabled=True)
        parked = list(others.values_list("pk", flat=True))
        others.update(enabled=False)
        evaluation.rule_caches_forget()
        counts["together"].append(evaluation.evaluate_due_rules(moment))
        AlertRule.objects.filter(pk__in=parked).update(enabled=True)
        evaluation.rule_caches_forget()
        counts["alone"].append(_one_by_one(alone["team"], moment))
    assert counts["together"] == counts["alone"]
    assert sum(counts["together"]) >= 16
    mine, theirs = _picture(together["team"], start), _picture(alone["team"], start)
    assert mine == theirs
    # The mix did move: alerts opened and some resolved on the schedule.
    assert {row[1] for row in mine["alerts"]} >= {"firing", "resolved"}
