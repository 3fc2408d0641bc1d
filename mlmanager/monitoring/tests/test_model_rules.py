"""Rules on models, evaluated on their schedule: input drift fires on a prediction log shifted
on purpose and stays quiet on an unshifted one; accuracy on feedback below a level; the
suggested rules of the monitoring tab; and what rules watch going away."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.core.tests.factories import member
from mlmanager.monitoring.models import Alert, AlertRule
from mlmanager.monitoring.services.evaluation import evaluate_due_rules
from mlmanager.monitoring.services.rules import rule_create
from mlmanager.monitoring.services.suggestions import rules_suggest_for_model
from mlmanager.monitoring.tests.model_log import log_predictions, model_of, training_rows
from mlmanager.sites.tests.factories import sensor_of, site_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner() -> Any:
    return member("owner")


def drift_rule(owner: Any, machine: Any) -> AlertRule:
    return rule_create(
        caller=Caller.for_session(owner),
        team=machine.team,
        name=f"{machine.name}: temperature drifts",
        series=[
            {
                "kind": "model",
                "model": machine.pk,
                "signal": "drift_psi",
                "input": "temperature",
                "period_s": 3600,
            }
        ],
        condition={"series": 0, "op": "above", "value": 0.2},
        severity="warning",
    )


def evaluate_now() -> None:
    """The scheduler's next tick (the rules are due at once after they are created)."""
    evaluate_due_rules(now=timezone.now() + timedelta(seconds=1))


@pytest.mark.parametrize(("shift", "fires"), [(0.0, False), (25.0, True)])
def test_the_drift_rule_fires_on_a_shifted_log_and_stays_quiet_on_an_unshifted_one(
    owner: Any, shift: float, fires: bool
) -> None:
    machine = model_of(owner.current_team)
    rule = drift_rule(owner, machine)
    start = timezone.now() - timedelta(minutes=50)
    log_predictions(
        machine, training_rows(300, shift=shift, offset=500), start=start, step=timedelta(seconds=9)
    )
    evaluate_now()
    rule.refresh_from_db()
    alerts = list(Alert.objects.filter(rule=rule))
    if fires:
        assert rule.state == "firing" and rule.last_value is not None and rule.last_value > 0.2
        assert [(a.state, a.machine_id, a.site_id) for a in alerts] == [
            ("firing", machine.pk, None)
        ]
    else:
        assert rule.state == "ok" and rule.last_value is not None and rule.last_value < 0.1
        assert alerts == []


def test_accuracy_on_feedback_below_a_level_fires(owner: Any) -> None:
    machine = model_of(owner.current_team)
    rule = rule_create(
        caller=Caller.for_session(owner),
        team=machine.team,
        name="Failure predictions go wrong",
        series=[{"kind": "model", "model": machine.pk, "signal": "accuracy", "output": "failed"}],
        condition={"series": 0, "op": "below", "value": 0.8},
    )
    rows = training_rows(40, offset=100)
    for index, row in enumerate(rows):  # half the answers were wrong
        answer = "yes" if row["temperature"] > 60 else "no"
        wrong = "no" if answer == "yes" else "yes"
        row["truth"] = {"failed": wrong if index % 2 else answer}
    log_predictions(
        machine, rows, start=timezone.now() - timedelta(minutes=30), step=timedelta(seconds=30)
    )
    evaluate_now()
    rule.refresh_from_db()
    assert rule.state == "firing"
    assert rule.last_value == pytest.approx(0.5)
    assert Alert.objects.get(rule=rule).state == "firing"


def test_the_suggested_drift_rule_fires_on_a_shifted_log(owner: Any) -> None:
    machine = model_of(owner.current_team)
    suggested = rules_suggest_for_model(caller=Caller.for_session(owner), machine=machine)
    names = sorted(rule.name for rule in suggested)
    assert any("drift of temperature" in name for name in names), names
    assert any("no predictions for a day" in name for name in names), names
    log_predictions(
        machine,
        training_rows(300, shift=25.0, offset=500),
        start=timezone.now() - timedelta(minutes=50),
        step=timedelta(seconds=9),
    )
    evaluate_now()
    firing = {
        rule.name
        for rule in AlertRule.objects.filter(machines=machine, state=AlertRule.State.FIRING)
    }
    assert any("drift of temperature" in name for name in firing), firing
    assert not any("drift of plan" in name for name in firing), firing  # plan did not move
    assert not any("no predictions" in name for name in firing), firing
    # Suggesting again adds nothing: the rules exist.
    assert rules_suggest_for_model(caller=Caller.for_session(owner), machine=machine) == []


def test_deleting_what_rules_watch_disables_them_and_drops_the_built_in_ones(owner: Any) -> None:
    team = owner.current_team
    site = site_of(team)
    sensor = sensor_of(site, warning_max=50)
    machine = model_of(team)
    assert AlertRule.objects.filter(sensors=sensor, builtin="sensor_warning_band").exists()
    on_sensor = rule_create(
        caller=Caller.for_session(owner),
        team=team,
        name="Hot",
        series=[{"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}],
        condition={"series": 0, "op": "no_data", "value": 300},
    )
    on_model = drift_rule(owner, machine)

    sensor.delete()
    machine.delete()

    assert not AlertRule.objects.exclude(builtin="").exists()
    for rule in (on_sensor, on_model):
        rule.refresh_from_db()
        assert (rule.enabled, rule.state, rule.next_evaluation_at) == (False, "ok", None)
    evaluate_now()  # nothing is due, nothing fails
    assert not Alert.objects.exists()
