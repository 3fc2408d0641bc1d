"""The batched application of transitions: every rule an ingest batch (or a scheduler run)
moves is moved with one conditional write, and its alerts, events and notifications are
written together; the result is what one transition at a time gave. Also: the rules' cached
definitions follow their changes, a walked rule shows its sensor's latest value, and the
emergency stop's alert is audited."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import api_client_for
from mlmanager.monitoring.models import Alert, AlertEvent, AlertRule, Notification
from mlmanager.monitoring.services import evaluation
from mlmanager.monitoring.services import rules as rule_services
from mlmanager.monitoring.tests.test_evaluation import _moment_zero, at, raw, rule_of, store, world
from mlmanager.sites.services.sites import site_emergency_stop

__all__ = ["_moment_zero", "world"]  # the fixtures, shared with test_evaluation

ABOVE_80 = {"series": 0, "op": "above", "value": 80.0}


def timeline(alert: Alert) -> list[str]:
    return list(alert.events.order_by("created_at", "id").values_list("kind", flat=True))


def test_one_batch_moves_many_rules_with_their_alerts_events_and_notifications(
    world: dict[str, Any],
) -> None:
    fire = rule_of(world, ABOVE_80, name="Above 80")
    pending = rule_of(world, ABOVE_80, name="Above 80 for a minute", for_s=60)
    rate = rule_of(world, {"series": 0, "op": "rate_above", "value": 600.0}, name="Jumps")
    # One batch: up (fires two rules, opens a pending one), back down (resolves them all).
    evaluation.evaluate_sensor_values(
        world["team"].pk, {world["heat"].pk: [(at(0), 20.0), (at(1), 90.0), (at(2), 20.0)]}
    )
    fired = Alert.objects.get(rule=fire)
    assert fired.state == "resolved"
    assert (fired.started_at, fired.firing_at, fired.resolved_at) == (at(1), at(1), at(2))
    assert fired.sensor_id == world["heat"].pk and fired.site_id == world["mill"].pk
    assert "90 " in fired.message and "above 80" in fired.message
    # The timeline in the order things happened: each notification right after its event.
    assert timeline(fired) == ["firing", "notified", "resolved", "notified"]
    told = Notification.objects.filter(alert=fired)
    assert sorted(told.values_list("payload__event", flat=True)) == [
        "firing",
        "firing",
        "resolved",
        "resolved",
    ]
    # The firing notification shows the alert as it was then, not as it ended the batch.
    firing_payload = told.filter(payload__event="firing").first().payload["alert"]
    assert firing_payload["id"] == fired.pk
    assert (firing_payload["state"], firing_payload["resolved_at"]) == ("firing", None)
    # A pending alert that never fired tells nobody.
    never = Alert.objects.get(rule=pending)
    assert timeline(never) == ["pending", "resolved"]
    assert not Notification.objects.filter(alert=never).exists()
    # The rate rule: up by 70 in 1 s, then down by 70: fired, and still firing.
    assert timeline(Alert.objects.get(rule=rate)) == ["firing", "notified"]
    for rule in (fire, pending):
        rule.refresh_from_db()
        assert rule.state == "ok"
        assert rule.last_value == 20.0


def test_a_rule_goes_through_two_alerts_in_one_batch(world: dict[str, Any]) -> None:
    rule = rule_of(world, ABOVE_80)
    evaluation.evaluate_sensor_values(
        world["team"].pk,
        {world["heat"].pk: [(at(0), 90.0), (at(1), 20.0), (at(2), 95.0)]},
    )
    first, second = Alert.objects.filter(rule=rule).order_by("started_at")
    assert (first.state, first.resolved_at) == ("resolved", at(1))
    assert (second.state, second.value, second.started_at) == ("firing", 95.0, at(2))
    assert Alert.objects.filter(rule=rule, resolved_at__isnull=True).count() == 1
    rule.refresh_from_db()
    assert (rule.state, rule.state_since) == ("firing", at(2))


def test_an_open_alert_the_rule_did_not_know_of_goes_on(world: dict[str, Any]) -> None:
    """An open alert while the rule says ok (its state set back meanwhile): the rule's next
    episode goes on in that alert (one open alert per rule), as one at a time did."""
    rule = rule_of(world, ABOVE_80)
    store(world, world["heat"], [(at(0), 90.0)])
    alert = Alert.objects.get(rule=rule)
    AlertRule.objects.filter(pk=rule.pk).update(state="ok", state_since=at(0))
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(5), 91.0)]})
    assert list(Alert.objects.filter(rule=rule).values_list("pk", flat=True)) == [alert.pk]
    assert timeline(alert) == ["firing", "notified", "firing", "notified"]


def test_a_conflicting_insert_is_planned_again_on_the_alerts_as_they_are(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should an open alert appear between reading the open alerts and inserting (nothing in
    the platform does that while the rule's row is locked), the insert conflicts on the
    partial unique constraint, and the batch is planned again on the alert that is there."""
    rule = rule_of(world, ABOVE_80)
    intruder: list[Alert] = []
    original = evaluation._plan

    def plan_then_intrude(*args: Any, **kwargs: Any) -> Any:
        planned = original(*args, **kwargs)
        if not intruder:
            intruder.append(
                Alert.objects.create(
                    team=world["team"], rule=rule, severity="warning", title="Elsewhere"
                )
            )
        return planned

    monkeypatch.setattr(evaluation, "_plan", plan_then_intrude)
    with transaction.atomic():
        evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(0), 90.0)]})
    assert list(Alert.objects.filter(rule=rule).values_list("pk", flat=True)) == [intruder[0].pk]
    assert timeline(intruder[0]) == ["firing", "notified"]


def test_a_rule_moved_by_another_evaluation_first_is_left_to_it(world: dict[str, Any]) -> None:
    rule = rule_of(world, ABOVE_80)
    stale = evaluation._rules(AlertRule.objects.filter(pk=rule.pk))
    # Another evaluation moves the rule after this one read it.
    store(world, world["heat"], [(at(0), 90.0)])
    assert Alert.objects.filter(rule=rule).count() == 1
    results = [evaluation._walk(stale[0], [(at(1), 95.0)], None)]
    assert results[0].changes  # ok → firing, as read
    evaluation._apply(results, now=timezone.now(), scheduled=False)
    assert Alert.objects.filter(rule=rule).count() == 1  # theirs, no second one
    rule.refresh_from_db()
    assert (rule.state, rule.state_since) == ("firing", at(0))


def test_the_cached_definition_follows_a_changed_rule(world: dict[str, Any]) -> None:
    rule = rule_of(world, ABOVE_80)
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(0), 50.0)]})
    assert not Alert.objects.exists()
    rule_services.rule_update(
        caller=world["caller"], rule=rule, condition={"series": 0, "op": "above", "value": 40.0}
    )
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(1), 50.0)]})
    assert Alert.objects.get(rule=rule).state == "firing"
    # And its hysteresis (the relaxed condition is cached with it).
    rule.refresh_from_db()
    rule_services.rule_update(caller=world["caller"], rule=rule, hysteresis=20.0)
    # 30 clears "above 40" by its default hysteresis (0.4), not by 20 (below 20 to resolve).
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(3), 30.0)]})
    assert Alert.objects.get(rule=rule).state == "firing"


def test_the_scheduler_applies_its_transitions_together(world: dict[str, Any]) -> None:
    silent = [
        rule_of(
            world,
            {"series": 0, "op": "no_data", "value": 60.0},
            name=f"Silent {n}",
            series=[raw(sensor)],
        )
        for n, sensor in enumerate([world["heat"], world["pressure"]])
    ]
    now = timezone.now() + timedelta(minutes=5)
    assert evaluation.evaluate_due_rules(now=now) == 2
    for rule in silent:
        alert = Alert.objects.get(rule=rule)
        assert (alert.state, alert.firing_at) == ("firing", now)
        assert timeline(alert) == ["firing", "notified"]
        rule.refresh_from_db()
        assert rule.next_evaluation_at is None  # from now on, on its period
    # The run whose slot holds the next whole minute: still silent, nothing new, nothing
    # written.
    later = now + timedelta(seconds=60 - now.timestamp() % 60)
    with CaptureQueriesContext(connection) as captured:
        assert evaluation.evaluate_due_rules(now=later) == 2
    assert not [query for query in captured if query["sql"].lstrip().upper().startswith("UPDATE")]
    assert Alert.objects.count() == 2
    assert AlertEvent.objects.count() == 4


def test_a_failing_batch_of_transitions_is_applied_one_by_one(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = [
        rule_of(
            world,
            {"series": 0, "op": "no_data", "value": 60.0},
            name=f"Silent {n}",
            series=[raw(sensor)],
        )
        for n, sensor in enumerate([world["heat"], world["pressure"]])
    ]
    original = evaluation._alerts_change

    def fails_for_many(won: Any) -> None:
        if len(won) > 1:
            raise RuntimeError("a batch that cannot be written")
        original(won)

    monkeypatch.setattr(evaluation, "_alerts_change", fails_for_many)
    now = timezone.now() + timedelta(minutes=5)
    assert evaluation.evaluate_due_rules(now=now) == 2
    assert sorted(Alert.objects.values_list("rule_id", flat=True)) == sorted(r.pk for r in rules)


def test_a_walked_rule_shows_its_sensors_latest_value(world: dict[str, Any]) -> None:
    walked = rule_of(world, ABOVE_80)
    average = rule_of(
        world,
        ABOVE_80,
        name="Average",
        series=[{"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "avg"}],
    )
    store(world, world["heat"], [(at(0), 90.0), (at(1), 70.0)])
    store(world, world["heat"], [(at(2), 75.0)])  # no transition: the rule is not written
    walked.refresh_from_db()
    assert walked.last_value == 70.0  # stored at its last transition (resolved)
    AlertRule.objects.filter(pk=average.pk).update(last_value=12.5)
    api = api_client_for(world["owner"])
    shown = {
        item["id"]: item["last_value"] for item in api.get("/api/v1/alert_rules/").json()["results"]
    }
    assert shown == {walked.pk: 75.0, average.pk: 12.5}
    assert api.get(f"/api/v1/alert_rules/{walked.pk}/").json()["last_value"] == 75.0


def test_the_emergency_stops_alert_is_audited(world: dict[str, Any], settings: Any) -> None:
    settings.MLMANAGER_MQTT_URL = ""
    site_emergency_stop(caller=world["caller"], site=world["mill"], reason="Smoke")
    alert = Alert.objects.get(severity="emergency")
    raised = AuditEvent.objects.get(action="alert.raised")
    assert raised.target_id == alert.pk
    assert raised.details["severity"] == "emergency"


def test_the_alerts_of_a_batch_take_a_constant_number_of_queries(world: dict[str, Any]) -> None:
    """Whatever the number of rules a batch moves (SQLite moves each rule with its own
    conditional UPDATE, one writer at a time; PostgreSQL all in one: those are not counted)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def moved(count: int, second: int) -> int:
        AlertRule.objects.all().delete()
        for n in range(count):
            rule_of(world, ABOVE_80, name=f"Rule {n}")
        values = {world["heat"].pk: [(at(second), 90.0), (at(second + 1), 20.0)]}
        with CaptureQueriesContext(connection) as captured:
            evaluation.evaluate_sensor_values(world["team"].pk, values)
        assert Alert.objects.filter(rule__isnull=False, state="resolved").count() == count
        return sum(
            1
            for query in captured.captured_queries
            if not query["sql"].startswith('UPDATE "monitoring_alertrule"')
        )

    assert moved(2, 0) == moved(8, 10)


def test_the_definitions_cache_is_bounded(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluation, "_DEFINITIONS_MAX", 1)
    rules = [rule_of(world, ABOVE_80, name=f"Rule {n}") for n in range(3)]
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(0), 90.0)]})
    assert Alert.objects.filter(rule__in=rules).count() == 3
    assert len(evaluation._DEFINITIONS) <= 3


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_evaluate_each_periodic_rule_once_per_slot(monkeypatch: Any) -> None:
    """The periodic path: rules due by their period in the slot (no next_evaluation_at), two
    schedulers running the same slot at once: one claims it, each rule is evaluated once, and
    the rule whose state did not change is not written."""
    from mlmanager.core.registries import periodic_tasks
    from mlmanager.core.tests.factories import member
    from mlmanager.jobs.scheduler import run_due
    from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of

    owner = member("owner")
    team = owner.memberships.get().team
    mill = site_of(team, "Mill 1")
    heat, pressure = sensor_of(mill, "Heat"), sensor_of(mill, "Pressure")
    world = {"caller": caller_of(owner), "team": team, "heat": heat}
    minute = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    store(world, heat, [(minute - timedelta(seconds=10), 20.0)])
    with transaction.atomic():
        quiet = rule_of(
            world,
            {"series": 0, "op": "above", "value": 50.0},
            name="Average above 50",
            series=[{"kind": "sensor", "sensor": heat.pk, "aggregation": "avg", "period_s": 60}],
        )
        silent = rule_of(
            world,
            {"series": 0, "op": "no_data", "value": 60.0},
            name="Silent",
            series=[raw(pressure)],
        )
    # Past their first (one-off) evaluation: from now on due on their period only.
    AlertRule.objects.filter(pk__in=[quiet.pk, silent.pk]).update(next_evaluation_at=None)
    evaluation.rule_caches_forget()
    evaluated: list[int] = []
    original = evaluation.evaluate_due_rules

    def in_the_slot(now: Any = None) -> int:
        done = original(minute + timedelta(seconds=1))
        evaluated.append(done)
        return done

    monkeypatch.setattr(evaluation, "evaluate_due_rules", in_the_slot)
    task = periodic_tasks.get("monitoring.evaluate")
    slot_time = minute.timestamp() + 1
    if connection.vendor != "postgresql":
        # SQLite runs one writer at a time: the second scheduler finds the slot claimed.
        ran = [run_due([task], now=slot_time, owner=f"scheduler {n}") for n in range(2)]
    else:
        start = threading.Barrier(2)
        ran, errors = [], []

        def scheduler(name: str) -> None:
            try:
                start.wait(timeout=30)
                ran.append(run_due([task], now=slot_time, owner=name))
            except BaseException as error:  # reported below
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=scheduler, args=(f"s{n}",)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
    assert sorted(ran) == [0, 1]
    assert evaluated == [2]
    quiet.refresh_from_db()
    assert (quiet.state, quiet.last_evaluated_at, quiet.next_evaluation_at) == ("ok", None, None)
    alert = Alert.objects.get(rule=silent)
    assert timeline(alert) == ["firing", "notified"]


def test_the_periodic_rules_are_read_again_when_a_rule_changes(world: dict[str, Any]) -> None:
    """The cache of periodic rules follows rules written by another process (nothing told
    this one): a new rule, a rule no longer periodic."""
    minute = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert evaluation.evaluate_due_rules(minute) == 0  # the cache is read: no rule
    average = {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "avg", "period_s": 60}
    rule = AlertRule.objects.create(
        team=world["team"],
        name="Average above 50",
        series=[average],
        condition={"series": 0, "op": "above", "value": 50.0},
    )
    assert evaluation.evaluate_due_rules(minute) == 1
    rule.series = [raw(world["heat"])]  # walked at ingest from now on
    rule.save()
    assert evaluation.evaluate_due_rules(minute) == 0
