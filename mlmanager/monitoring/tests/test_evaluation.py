"""Evaluating rules: at ingest (walked reading by reading, or by their series' value), on
their schedule (for_s timers, no_data, aggregates), one open alert per rule however the
evaluations interleave, mutes that silence notifications but not the timeline, and the
built-in rules of sensors' bands."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mlmanager.core.tests.factories import member
from mlmanager.monitoring.models import Alert, AlertEvent, AlertRule, Notification
from mlmanager.monitoring.services import evaluation
from mlmanager.monitoring.services import rules as rule_services
from mlmanager.monitoring.services.alerts import alert_raise
from mlmanager.sites.models import Site
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of

# The moment readings start: a minute before the test, so the rules (created at the wall
# clock's now) are in step with them and readings up to a day ahead are accepted.
_start: dict[str, datetime] = {}


@pytest.fixture(autouse=True)
def _moment_zero() -> None:
    _start["t0"] = timezone.now().replace(microsecond=0) - timedelta(minutes=1)


def at(seconds: float) -> datetime:
    return _start["t0"] + timedelta(seconds=seconds)


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    owner = member("owner")
    team = owner.memberships.get().team
    mill = site_of(team, "Mill 1")
    return {
        "owner": owner,
        "caller": caller_of(owner),
        "team": team,
        "mill": mill,
        "heat": sensor_of(mill, "Heat"),
        "pressure": sensor_of(mill, "Pressure", sensor_type="pressure"),
    }


def raw(sensor: Any) -> dict[str, Any]:
    return {"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}


def rule_of(world: dict[str, Any], condition: dict[str, Any], **fields: Any) -> AlertRule:
    fields.setdefault("series", [raw(world["heat"])])
    fields.setdefault("name", "Too hot")
    return rule_services.rule_create(
        caller=world["caller"], team=world["team"], condition=condition, **fields
    )


def store(world: dict[str, Any], sensor: Any, points: list[tuple[datetime, float]]) -> None:
    answer = readings_ingest(
        caller=world["caller"],
        readings=[
            {"sensor": sensor.pk, "timestamp": stamp.isoformat(), "value": value}
            for stamp, value in points
        ],
    )
    assert answer["accepted"] == len(points), answer


def kinds(alert: Alert) -> list[str]:
    return list(alert.events.order_by("created_at", "id").values_list("kind", flat=True))


ABOVE_80 = {"series": 0, "op": "above", "value": 80}


# --- at ingest ----------------------------------------------------------------------------------


def test_a_transient_breach_inside_one_batch_opens_and_resolves_an_alert(world: dict[str, Any]):
    rule = rule_of(world, ABOVE_80)
    assert rule.next_evaluation_at is None  # walked at ingest only
    evaluation.evaluate_sensor_values(
        world["team"].pk, {world["heat"].pk: [(at(0), 70.0), (at(10), 85.0), (at(20), 70.0)]}
    )
    alert = Alert.objects.get(rule=rule)
    assert (alert.state, alert.value, alert.started_at, alert.firing_at, alert.resolved_at) == (
        "resolved",
        85.0,
        at(10),
        at(10),
        at(20),
    )
    assert (alert.site_id, alert.sensor_id, alert.severity) == (
        world["mill"].pk,
        world["heat"].pk,
        "warning",
    )
    assert kinds(alert) == ["firing", "notified", "resolved", "notified"]
    rule.refresh_from_db()
    assert (rule.state, rule.last_value, rule.last_evaluated_at) == ("ok", 70.0, at(20))


def test_a_hovering_value_keeps_one_alert_firing(world: dict[str, Any]):
    rule = rule_of(world, ABOVE_80)
    for batch, values in enumerate(([79.9, 80.1, 79.9], [80.2, 79.5, 80.05], [79.4])):
        evaluation.evaluate_sensor_values(
            world["team"].pk,
            {world["heat"].pk: [(at(batch * 100 + i), v) for i, v in enumerate(values)]},
        )
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "firing"
    assert kinds(alert) == ["firing", "notified"]
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(400), 79.0)]})
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert Alert.objects.filter(rule=rule).count() == 1


def test_a_rule_on_an_aggregate_takes_its_value_at_the_newest_reading(world: dict[str, Any]):
    rule = rule_of(
        world,
        ABOVE_80,
        series=[
            {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "avg", "period_s": 60}
        ],
    )
    assert rule.next_evaluation_at is not None  # also on its schedule
    points = [(at(1), 70.0), (at(20), 100.0), (at(40), 90.0)]
    store(world, world["heat"], points)
    # One high reading among lower ones: the average (86.67) decides, not the walk.
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: points})
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "firing"
    assert alert.value == pytest.approx(260 / 3)
    assert alert.started_at == at(40)


def test_ingest_evaluation_takes_a_constant_number_of_queries(world: dict[str, Any]):
    sensors = [sensor_of(world["mill"], f"Sensor {n}") for n in range(30)]
    for sensor in sensors:
        rule_of(world, ABOVE_80, series=[raw(sensor)], name=f"Rule {sensor.pk}")

    def queries(some: list[Any], second: int = 0) -> int:
        values = {sensor.pk: [(at(second), 50.0), (at(second + 1), 60.0)] for sensor in some}
        with CaptureQueriesContext(connection) as captured:
            evaluation.evaluate_sensor_values(world["team"].pk, values)
        return len(captured)

    # The newest rule change, the sensors' rules (their series and conditions: once, then
    # cached by (id, updated_at)), the rules that may move.
    assert queries(sensors) == 4
    # The newest rule change and the rules that are not ok: none of these values can move
    # one, so none is read and nothing is written.
    assert queries(sensors[:3]) == queries(sensors) == 2
    assert not AlertRule.objects.filter(last_value__isnull=False).exists()
    assert not Alert.objects.exists()
    # Rules reading a rate, rules on an average above a threshold no value reaches (not read:
    # the values are inside their Bounds), and rules on a count (judged at each batch): one
    # query more each, however many.
    for sensor in sensors:
        rule_of(world, {"series": 0, "op": "rate_above", "value": 1e6}, series=[raw(sensor)])
        for aggregation in ("avg", "count"):
            rule_of(
                world,
                ABOVE_80,
                series=[
                    {
                        "kind": "sensor",
                        "sensor": sensor.pk,
                        "aggregation": aggregation,
                        "period_s": 60,
                    }
                ],
            )
    queries(sensors, 5)  # the new rules' definitions read, then cached
    # + the readings before (the ingest hands them over); + the sensors' newest readings
    # (from their rows; the windows of sensors without a reading in them are not read).
    assert queries(sensors[:3], 10) == queries(sensors, 20) == 4
    assert not Alert.objects.exists()


def test_the_ingest_sees_a_rule_changed_by_another_process_at_its_next_batch(
    world: dict[str, Any],
):
    """The ingest's index of rules is cached per process, keyed by the rules' newest change:
    a rule saved elsewhere (here: written behind the services' back, which would have told
    this process) is judged anew at the next batch."""
    rule = rule_of(world, ABOVE_80)
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(0), 50.0)]})
    assert evaluation._INGEST_INDEX  # built, and kept
    AlertRule.objects.filter(pk=rule.pk).update(
        condition={"series": 0, "op": "above", "value": 40}, updated_at=timezone.now()
    )
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(1), 50.0)]})
    alert = Alert.objects.get(rule=rule)
    assert (alert.state, alert.value) == ("firing", 50.0)
    # Disabled elsewhere without a change of updated_at: its row is no longer read.
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    other = rule_of(world, {"series": 0, "op": "below", "value": 0}, name="Frozen")
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(2), -5.0)]})
    assert Alert.objects.get(rule=other).state == "firing"
    assert Alert.objects.get(rule=rule).state == "firing"  # untouched: resolved by nothing


def test_a_rate_at_ingest_starts_from_the_sensors_latest_before_the_request(
    world: dict[str, Any],
):
    """The ingest hands the rules each sensor's latest reading before the request (from the
    sensor's row): a jump between two requests is a rate, as within one."""
    rule = rule_of(world, {"series": 0, "op": "rate_above", "value": 100, "per_s": 60})
    store(world, world["heat"], [(at(0), 20.0)])
    assert not Alert.objects.exists()
    store(world, world["heat"], [(at(6), 40.0)])  # 200 per minute
    assert Alert.objects.get(rule=rule).value == 40.0


def test_a_window_rule_is_judged_at_ingest_when_a_new_value_is_beyond_its_threshold(
    world: dict[str, Any],
):
    """An ok rule on an average compared with a threshold is judged at ingest when a new
    value is beyond it (and then on the window's values); one that no new value reaches is
    left to its schedule."""
    rule = rule_of(
        world,
        ABOVE_80,
        series=[
            {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "avg", "period_s": 60}
        ],
    )
    store(world, world["heat"], [(at(1), 70.0), (at(20), 79.0)])
    assert not Alert.objects.filter(rule=rule).exists()  # average 74.5
    store(world, world["heat"], [(at(40), 100.0)])  # beyond 80: judged, average 83
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "firing" and alert.value == pytest.approx(83.0)
    store(world, world["heat"], [(at(50), 60.0)])  # firing: judged whatever the values
    alert.refresh_from_db()
    assert alert.state == "resolved"  # average 77.25, below 80 less the hysteresis


def test_rules_of_other_teams_and_disabled_rules_are_not_evaluated(world: dict[str, Any]):
    rule = rule_of(world, ABOVE_80)
    disabled = rule_of(world, ABOVE_80, name="Disabled", enabled=False)
    evaluation.evaluate_sensor_values(world["team"].pk + 1000, {world["heat"].pk: [(at(0), 90.0)]})
    assert not Alert.objects.exists()
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(0), 90.0)]})
    assert list(Alert.objects.values_list("rule_id", flat=True)) == [rule.pk]
    assert not Alert.objects.filter(rule=disabled).exists()


# --- on schedule --------------------------------------------------------------------------------


def test_a_for_duration_rule_pends_then_fires_through_the_scheduler(world: dict[str, Any]):
    store(world, world["heat"], [(at(0), 90.0)])
    rule = rule_of(world, ABOVE_80, for_s=300)
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(0), 90.0)]})
    rule.refresh_from_db()
    alert = Alert.objects.get(rule=rule)
    assert (rule.state, rule.next_evaluation_at) == ("pending", at(300))
    assert (alert.state, alert.firing_at, kinds(alert)) == ("pending", None, ["pending"])
    assert not Notification.objects.exists()  # pending tells nobody

    assert evaluation.evaluate_due_rules(at(299)) == 0
    assert evaluation.evaluate_due_rules(at(300)) == 1
    rule.refresh_from_db()
    alert.refresh_from_db()
    assert (rule.state, rule.next_evaluation_at) == ("firing", None)
    assert (alert.state, alert.firing_at) == ("firing", at(300))
    assert kinds(alert) == ["pending", "firing", "notified"]
    assert Notification.objects.filter(alert=alert, user=world["owner"]).exists()
    assert evaluation.evaluate_due_rules(at(1000)) == 0


def test_a_pending_rule_that_recovers_resolves_its_alert_without_notifying(world: dict[str, Any]):
    rule = rule_of(world, ABOVE_80, for_s=300)
    evaluation.evaluate_sensor_values(
        world["team"].pk, {world["heat"].pk: [(at(0), 90.0), (at(60), 50.0)]}
    )
    alert = Alert.objects.get(rule=rule)
    assert (alert.state, alert.firing_at, kinds(alert)) == (
        "resolved",
        None,
        ["pending", "resolved"],
    )
    assert not Notification.objects.exists()
    rule.refresh_from_db()
    assert (rule.state, rule.next_evaluation_at) == ("ok", None)


def test_no_data_fires_on_silence_and_resolves_when_data_comes(world: dict[str, Any]):
    store(world, world["heat"], [(at(0), 20.0)])
    rule = rule_of(world, {"series": 0, "op": "no_data", "value": 600}, evaluate_every_s=60)
    assert evaluation.evaluate_due_rules(at(300)) == 1  # new: due at once
    assert not Alert.objects.exists()
    rule.refresh_from_db()
    # From now on due on its period: in the runs whose slot holds a whole minute.
    assert (rule.next_evaluation_at, rule.last_evaluated_at) == (None, at(300))
    minute = at(660) + timedelta(seconds=-at(660).timestamp() % 60)
    assert evaluation.evaluate_due_rules(minute + timedelta(seconds=30)) == 0
    assert evaluation.evaluate_due_rules(minute + timedelta(seconds=3)) == 1
    alert = Alert.objects.get(rule=rule)
    assert (alert.state, alert.value) == ("firing", 20.0)
    back = minute + timedelta(seconds=40)
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(back, 21.0)]})
    alert.refresh_from_db()
    assert (alert.state, alert.resolved_at) == ("resolved", back)


def test_rate_above_fires_on_a_fast_change(world: dict[str, Any]):
    rule = rule_of(world, {"series": 0, "op": "rate_above", "value": 10, "per_s": 60})
    evaluation.evaluate_sensor_values(
        world["team"].pk,
        {world["heat"].pk: [(at(0), 20.0), (at(60), 25.0), (at(120), 31.0), (at(150), 40.0)]},
    )
    alert = Alert.objects.get(rule=rule)
    # +5/min, +6/min, then +9 in 30 s (18/min): fires on the last one.
    assert (alert.state, alert.started_at, alert.value) == ("firing", at(150), 40.0)


def test_a_rule_over_two_series_combines_them(world: dict[str, Any]):
    store(world, world["heat"], [(at(0), 90.0)])
    store(world, world["pressure"], [(at(0), 900.0)])
    rule = rule_of(
        world,
        {"all": [ABOVE_80, {"series": 1, "op": "below", "value": 950}]},
        series=[raw(world["heat"]), raw(world["pressure"])],
    )
    assert evaluation.evaluate_due_rules(at(100)) == 1
    alert = Alert.objects.get(rule=rule)
    assert (alert.state, alert.value, alert.sensor_id) == ("firing", 90.0, None)
    store(world, world["pressure"], [(at(120), 1000.0)])
    evaluation.evaluate_sensor_values(world["team"].pk, {world["pressure"].pk: [(at(120), 1000.0)]})
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_a_broken_rule_does_not_stop_the_others(world: dict[str, Any]):
    good = rule_of(world, {"series": 0, "op": "no_data", "value": 60})
    broken = rule_of(world, {"series": 0, "op": "no_data", "value": 60}, name="Broken")
    AlertRule.objects.filter(pk=broken.pk).update(
        condition={"series": 5, "op": "above", "value": 1}
    )
    assert evaluation.evaluate_due_rules(at(200)) == 1
    assert Alert.objects.filter(rule=good).exists()
    broken.refresh_from_db()
    assert broken.next_evaluation_at == at(200) + evaluation.RETRY_AFTER_FAILURE


# --- one open alert per rule --------------------------------------------------------------------


def test_the_database_keeps_one_open_alert_per_rule(world: dict[str, Any]):
    rule = rule_of(world, ABOVE_80)
    fields = {"team": world["team"], "rule": rule, "severity": "warning", "title": "A"}
    Alert.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(**fields)
    Alert.objects.filter(rule=rule).update(state="resolved", resolved_at=at(0))
    Alert.objects.create(**fields)  # a new episode once the last one is resolved


def test_an_evaluation_of_a_stale_rule_loses_to_the_one_that_moved_it(world: dict[str, Any]):
    rule = rule_of(world, ABOVE_80)
    stale = AlertRule.objects.get(pk=rule.pk)
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(0), 90.0)]})
    # The other evaluation read the rule before the first moved it: its transition is dropped.
    result = evaluation._walk(stale, [(at(0), 91.0)])
    assert [change.transition for change in result.changes] == ["firing"]
    evaluation._apply([result], now=at(1), scheduled=False)
    assert list(Alert.objects.values_list("value", flat=True)) == [90.0]
    assert AlertEvent.objects.filter(kind="firing").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_evaluations_open_one_alert() -> None:
    owner = member("owner")
    team = owner.memberships.get().team
    mill = site_of(team, "Mill 1")
    heat = sensor_of(mill, "Heat")
    rule = rule_services_create(owner, team, heat)
    values = {heat.pk: [(at(0), 90.0)]}
    if connection.vendor != "postgresql":
        # SQLite runs one writer at a time: the second evaluation sees the first's commit.
        for _ in range(2):
            with transaction.atomic():
                evaluation.evaluate_sensor_values(team.pk, values)
    else:
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def evaluate() -> None:
            try:
                with transaction.atomic():
                    # Both read the rule as ok before either writes.
                    list(AlertRule.objects.filter(pk=rule.pk))
                    start.wait(timeout=30)
                    evaluation.evaluate_sensor_values(team.pk, values)
            except BaseException as error:  # reported below
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=evaluate) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
    assert Alert.objects.filter(rule=rule).count() == 1
    assert AlertEvent.objects.filter(alert__rule=rule, kind="firing").count() == 1


def rule_services_create(owner: Any, team: Any, sensor: Any) -> AlertRule:
    with transaction.atomic():
        return rule_services.rule_create(
            caller=caller_of(owner),
            team=team,
            name="Too hot",
            series=[raw(sensor)],
            condition=ABOVE_80,
        )


# --- mutes ----------------------------------------------------------------------------------------


def test_a_muted_rule_notifies_nobody_but_keeps_its_timeline(world: dict[str, Any]):
    rule = rule_of(world, ABOVE_80)
    rule_services.rule_mute(caller=world["caller"], rule=rule)
    evaluation.evaluate_sensor_values(
        world["team"].pk, {world["heat"].pk: [(at(0), 90.0), (at(10), 50.0)]}
    )
    alert = Alert.objects.get(rule=rule)
    assert kinds(alert) == ["firing", "resolved"]
    assert not Notification.objects.exists()

    rule_services.rule_unmute(caller=world["caller"], rule=rule)
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(20), 90.0)]})
    second = Alert.objects.get(rule=rule, state="firing")
    assert kinds(second) == ["firing", "notified"]
    assert Notification.objects.filter(alert=second).exists()


def test_a_mute_until_a_time_ends_by_itself(world: dict[str, Any]):
    rule = rule_of(world, ABOVE_80)
    rule_services.rule_mute(
        caller=world["caller"], rule=rule, until=timezone.now() + timedelta(hours=1)
    )
    assert AlertRule.objects.muted().filter(pk=rule.pk).exists()
    AlertRule.objects.filter(pk=rule.pk).update(muted_until=timezone.now() - timedelta(seconds=1))
    assert AlertRule.objects.unmuted().filter(pk=rule.pk).exists()
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(0), 90.0)]})
    assert Notification.objects.filter(alert__rule=rule).exists()


# --- live ---------------------------------------------------------------------------------------


def test_the_site_dashboard_hears_of_a_transition(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any
):
    rule_of(world, ABOVE_80)
    before = Site.objects.get(pk=world["mill"].pk).live_version
    with django_capture_on_commit_callbacks(execute=True):
        evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(0), 50.0)]})
    assert Site.objects.get(pk=world["mill"].pk).live_version == before
    with django_capture_on_commit_callbacks(execute=True):
        evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(1), 90.0)]})
    assert Site.objects.get(pk=world["mill"].pk).live_version == before + 1


# --- built-in rules of sensors ------------------------------------------------------------------


def test_sensor_rules_follow_the_sensors_limits(world: dict[str, Any]):
    heat = world["heat"]
    assert rule_services.sensor_rules_sync(heat) == []
    heat.warning_max, heat.critical_min, heat.critical_max = 80.0, 0.0, 100.0
    heat.save()
    warning, critical = rule_services.sensor_rules_sync(heat)
    assert (warning.builtin, warning.severity, warning.condition) == (
        "sensor_warning_band",
        "warning",
        {"series": 0, "op": "above", "value": 80.0},
    )
    assert (critical.builtin, critical.severity, critical.condition) == (
        "sensor_critical_band",
        "critical",
        {"series": 0, "op": "outside", "low": 0.0, "high": 100.0},
    )
    assert warning.series == [raw(heat)]
    assert (warning.site_id, list(warning.sensors.values_list("pk", flat=True))) == (
        world["mill"].pk,
        [heat.pk],
    )

    # Readings like issue 14's threshold alerts: one alert per band left, resolved inside.
    evaluation.evaluate_sensor_values(
        world["team"].pk, {heat.pk: [(at(0), 90.0), (at(10), 110.0), (at(20), 90.0)]}
    )
    assert dict(Alert.objects.values_list("rule__builtin", "state")) == {
        "sensor_warning_band": "firing",
        "sensor_critical_band": "resolved",
    }

    # Raising the limit above the latest value resolves the open alert at once.
    heat.warning_max = 95.0
    heat.last_timestamp, heat.last_value = at(20), 90.0
    heat.save()
    rule_services.sensor_rules_sync(heat)
    assert not Alert.objects.filter(resolved_at__isnull=True).exists()

    heat.warning_max = None
    heat.save()
    (kept,) = rule_services.sensor_rules_sync(heat)
    assert kept.pk == critical.pk
    assert not AlertRule.objects.filter(pk=warning.pk).exists()


def test_an_alert_without_a_rule_is_raised_firing(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any
):
    with django_capture_on_commit_callbacks(execute=True):
        alert = alert_raise(
            site_id=world["mill"].pk,
            team_id=world["team"].pk,
            severity="emergency",
            title="Emergency stop",
            message="Pressed on the panel",
        )
    assert (alert.rule_id, alert.state, alert.firing_at is not None) == (None, "firing", True)
    assert kinds(alert) == ["firing", "notified"]
    assert Notification.objects.filter(alert=alert, user=world["owner"]).exists()
    assert Site.objects.filter(pk=world["mill"].pk, live_version__gte=1).exists()


def test_a_new_band_judges_the_sensors_latest_value_at_once(world: dict[str, Any]):
    heat = world["heat"]
    heat.last_timestamp, heat.last_value = at(0), 120.0
    heat.critical_max = 100.0
    heat.save()
    (critical,) = rule_services.sensor_rules_sync(heat)
    alert = Alert.objects.get(rule=critical)
    assert (alert.state, alert.severity, alert.value, alert.started_at) == (
        "firing",
        "critical",
        120.0,
        at(0),
    )


def test_changing_what_a_rule_watches_ends_its_alert(world: dict[str, Any]):
    rule = rule_of(world, ABOVE_80)
    evaluation.evaluate_sensor_values(world["team"].pk, {world["heat"].pk: [(at(0), 90.0)]})
    alert = Alert.objects.get(rule=rule)
    rule_services.rule_update(caller=world["caller"], rule=rule, name="Renamed")
    alert.refresh_from_db()
    assert alert.state == "firing"  # a new name changes nothing of what it watches
    rule_services.rule_update(
        caller=world["caller"], rule=rule, condition={"series": 0, "op": "above", "value": 95}
    )
    alert.refresh_from_db()
    rule.refresh_from_db()
    assert (alert.state, rule.state, rule.name) == ("resolved", "ok", "Renamed")
    assert alert.events.get(kind="resolved").data == {"reason": "rule_changed"}
