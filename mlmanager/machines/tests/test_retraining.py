"""Scheduled retraining with champion/challenger: the policy API (bad input, other teams,
roles, audit), the schedule's slots in the policy's time zone, one start per slot however many
schedulers run, and two retrainings end to end with the real engine — one promoted, one kept
as challenger — driven by the periodic task under a fixed clock."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.test import Client

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership
from mlmanager.audit.models import AuditEvent
from mlmanager.core.errors import ApplicationError
from mlmanager.core.registries import periodic_tasks
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.datasets.models import Dataset
from mlmanager.jobs.models import Job
from mlmanager.jobs.scheduler import run_due
from mlmanager.machines import services
from mlmanager.machines.models import (
    Machine,
    ModelAlias,
    RetrainingDecision,
    RetrainingPolicy,
    RunPurpose,
    TrainingRun,
)
from mlmanager.machines.services import retraining
from mlmanager.machines.tests.conftest import BUDGET_S, make_version

UTC = datetime.UTC
OLD_ROWS = 120
NEW_ROWS = 400


def frame(rows: int, *, seed: int, inverted: bool = False, newer: bool = False) -> pd.DataFrame:
    """`label` is whether `x` is positive (the opposite when `inverted`). |x| is 0.5 to 0.75 in
    the first rows and 0.75 to 1 in the rows added later (`newer`), so each part is separated
    perfectly by a split on x, and a model of the first rows carries its rule to the new ones."""
    generator = np.random.default_rng(seed)
    low, high = (0.75, 1.0) if newer else (0.5, 0.75)
    x = generator.uniform(low, high, rows) * generator.choice([-1.0, 1.0], rows)
    label = (x > 0) ^ inverted
    return pd.DataFrame(
        {"x": x.round(4), "noise": generator.normal(0, 1, rows).round(4), "label": label}
    )


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime.datetime], None]:
    def set_to(moment: datetime.datetime) -> None:
        monkeypatch.setattr(retraining, "clock", lambda: moment)

    return set_to


def tick(moment: datetime.datetime, scheduler: str) -> int:
    """One scheduler's pass over the retraining task at `moment` (its slot claim included)."""
    return run_due(
        [periodic_tasks.get("machines.retraining")], now=moment.timestamp(), owner=scheduler
    )


def _model(owner: Any, dataset: Dataset) -> Machine:
    return services.machine_create(
        caller=Caller.for_session(owner),
        dataset=dataset,
        outputs=["label"],
        inputs=["x", "noise"],
        time_budget_s=BUDGET_S,
    )


def _grow(
    owner: Any,
    make_dataset: Callable[..., Dataset],
    old: pd.DataFrame,
    parent: Dataset,
) -> Dataset:
    """A version of `parent` with NEW_ROWS rows appended (as datasets.versions makes them: the
    parent's rows, then the new ones), and the model moved to it."""
    grown = make_dataset(
        owner,
        pd.concat([old, frame(NEW_ROWS, seed=7, newer=True)], ignore_index=True),
        name="Grown",
    )
    Dataset.objects.filter(pk=grown.pk).update(
        parent=parent, lineage=parent.pk, version=2, rows_added=NEW_ROWS
    )
    Machine.objects.filter(dataset=parent).update(dataset=grown)
    return grown


# --- the policy -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_policy_api_reads_changes_and_audits(
    api: Any, owner: Any, make_dataset: Any, fixed_clock: Any
) -> None:
    fixed_clock(at("2026-03-10T01:00:00"))
    machine = _model(owner, make_dataset(owner, frame(OLD_ROWS, seed=1)))
    url = f"/api/v1/models/{machine.pk}/retraining/"
    assert api.get(url).json() == {
        "enabled": False,
        "schedule": "off",
        "at_time": "03:00",
        "weekday": 0,
        "time_zone": "UTC",
        "after_new_rows": None,
        "new_rows": OLD_ROWS,
        "last_started_at": None,
        "last_run": None,
        "last_error": "",
        "updated_at": None,
    }
    response = api.put(
        url,
        {
            "enabled": True,
            "schedule": "weekly",
            "weekday": 2,
            "at_time": "04:30",
            "time_zone": "Europe/Paris",
            "after_new_rows": 500,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["enabled"], body["schedule"], body["weekday"], body["at_time"]) == (
        True,
        "weekly",
        2,
        "04:30",
    )
    assert (body["time_zone"], body["after_new_rows"]) == ("Europe/Paris", 500)
    policy = RetrainingPolicy.objects.get(machine=machine)
    # A new schedule starts from its next slot: Wednesday 4 March 04:30 in Paris has passed.
    assert policy.last_slot_at == at("2026-03-04T03:30:00")
    event = AuditEvent.objects.get(action="model.retraining_changed")
    assert event.changes["schedule"] == {"before": "off", "after": "weekly"}
    assert event.changes["at_time"] == {"before": "03:00", "after": "04:30"}
    # Nothing changed: no new event.
    api.put(url, {"schedule": "weekly"}, format="json")
    assert AuditEvent.objects.filter(action="model.retraining_changed").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"schedule": "hourly"}, "invalid"),
        ({"weekday": 7}, "invalid"),
        ({"at_time": "25:00"}, "invalid"),
        ({"at_time": 3}, "invalid"),
        ({"time_zone": "Mars/Olympus"}, "invalid_retraining"),
        ({"after_new_rows": 0}, "invalid"),
        ({"enabled": True}, "invalid_retraining"),  # no schedule and no row count
        ({"enabled": "sometimes"}, "invalid"),
    ],
)
def test_bad_policies_are_refused(
    api: Any, owner: Any, make_dataset: Any, body: dict[str, Any], code: str
) -> None:
    machine = _model(owner, make_dataset(owner, frame(OLD_ROWS, seed=1)))
    response = api.put(f"/api/v1/models/{machine.pk}/retraining/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert not RetrainingPolicy.objects.exists()


@pytest.mark.django_db
def test_other_teams_get_404_and_viewers_cannot_change(owner: Any, make_dataset: Any) -> None:
    machine = _model(owner, make_dataset(owner, frame(OLD_ROWS, seed=1)))
    stranger = api_client_for(member("owner"))
    for method, path in [
        ("get", "retraining/"),
        ("put", "retraining/"),
        ("get", "retraining/decisions/"),
    ]:
        url = f"/api/v1/models/{machine.pk}/{path}"
        response = getattr(stranger, method)(url, {"enabled": False}, format="json")
        assert response.status_code == 404, (method, url)
    viewer = api_client_for(member(Membership.Role.VIEWER, team=machine.team))
    assert viewer.get(f"/api/v1/models/{machine.pk}/retraining/").status_code == 200
    assert viewer.get(f"/api/v1/models/{machine.pk}/retraining/decisions/").json()["count"] == 0
    refused = viewer.put(
        f"/api/v1/models/{machine.pk}/retraining/", {"enabled": False}, format="json"
    )
    assert refused.status_code == 403
    client = Client()
    client.force_login(member("owner"))
    assert (
        client.post(f"/models/{machine.pk}/retraining/", {"schedule": "daily"}).status_code == 404
    )


@pytest.mark.django_db
def test_image_models_cannot_retrain_on_a_schedule(owner: Any, make_image_dataset: Any) -> None:
    machine = services.machine_create(
        caller=Caller.for_session(owner), dataset=make_image_dataset(owner), outputs=["label"]
    )
    with pytest.raises(ApplicationError) as refused:
        retraining.retraining_policy_update(
            caller=Caller.for_session(owner), machine=machine, enabled=True, schedule="daily"
        )
    assert refused.value.code == "retraining_unsupported"


def test_schedule_slots_follow_the_time_zone() -> None:
    policy = RetrainingPolicy(
        schedule="daily", at_time=datetime.time(3, 0), time_zone="Europe/Paris"
    )
    # 03:00 in Paris is 02:00 UTC in winter and 01:00 UTC in summer.
    assert retraining.schedule_slot(policy=policy, now=at("2026-03-10T02:00:00")) == at(
        "2026-03-10T02:00:00"
    )
    assert retraining.schedule_slot(policy=policy, now=at("2026-03-10T01:59:00")) == at(
        "2026-03-09T02:00:00"
    )
    assert retraining.schedule_slot(policy=policy, now=at("2026-07-10T01:30:00")) == at(
        "2026-07-10T01:00:00"
    )
    policy.schedule, policy.weekday = "weekly", 4  # Friday
    assert retraining.schedule_slot(policy=policy, now=at("2026-03-10T12:00:00")) == at(
        "2026-03-06T02:00:00"
    )
    policy.schedule = "off"
    assert retraining.schedule_slot(policy=policy, now=at("2026-03-10T12:00:00")) is None


@pytest.mark.django_db
def test_a_slot_starts_one_run_however_many_schedulers_run(
    owner: Any, make_dataset: Any, fixed_clock: Any
) -> None:
    machine = _model(owner, make_dataset(owner, frame(OLD_ROWS, seed=1)))
    fixed_clock(at("2026-03-10T00:00:00"))
    retraining.retraining_policy_update(
        caller=Caller.for_session(owner),
        machine=machine,
        enabled=True,
        schedule="daily",
        at_time=datetime.time(3, 0),
        time_zone="Europe/Paris",
    )
    before = at("2026-03-10T01:59:00")  # 02:59 in Paris: not yet
    fixed_clock(before)
    assert tick(before, "scheduler-1") == 1
    assert not TrainingRun.objects.exists()

    due = at("2026-03-10T02:00:30")
    fixed_clock(due)
    tick(due, "scheduler-1")
    tick(due, "scheduler-2")  # the same minute: the periodic slot is taken
    run = TrainingRun.objects.get()
    assert run.purpose == RunPurpose.RETRAINING
    assert run.created_by == owner  # who set the policy up
    assert run.job.status == Job.Status.QUEUED
    policy = RetrainingPolicy.objects.get()
    assert (policy.last_run_id, policy.last_started_at, policy.last_error) == (run.pk, due, "")
    assert policy.last_slot_at == at("2026-03-10T02:00:00")

    # The run ends; the next minute, another scheduler finds the slot already started.
    TrainingRun.objects.update(is_active=False)
    Job.objects.update(status=Job.Status.SUCCEEDED)
    later = at("2026-03-10T02:01:30")
    fixed_clock(later)
    assert tick(later, "scheduler-2") == 1
    assert TrainingRun.objects.count() == 1
    # Tomorrow's slot starts the next one.
    tomorrow = at("2026-03-11T02:10:00")
    fixed_clock(tomorrow)
    tick(tomorrow, "scheduler-1")
    assert TrainingRun.objects.count() == 2


@pytest.mark.django_db
def test_a_slot_missed_by_more_than_the_window_and_a_refused_start(
    owner: Any, make_dataset: Any, fixed_clock: Any
) -> None:
    machine = _model(owner, make_dataset(owner, frame(OLD_ROWS, seed=1)))
    fixed_clock(at("2026-03-10T00:00:00"))
    retraining.retraining_policy_update(
        caller=Caller.for_session(owner),
        machine=machine,
        enabled=True,
        schedule="daily",
        at_time=datetime.time(3, 0),
        time_zone="UTC",
    )
    assert retraining.retraining_start_due(now=at("2026-03-10T04:30:00")) == []
    Machine.objects.filter(pk=machine.pk).update(dataset=None)
    assert retraining.retraining_start_due(now=at("2026-03-11T03:00:00")) == []
    policy = RetrainingPolicy.objects.get()
    assert policy.last_error == (
        "The dataset of this model was deleted. Create a new model from another dataset."
    )
    assert policy.last_slot_at == at("2026-03-11T03:00:00")
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_new_rows_start_one_run_per_growth(owner: Any, make_dataset: Any) -> None:
    old = frame(OLD_ROWS, seed=1)
    first = make_dataset(owner, old)
    machine = _model(owner, first)
    version = make_version(machine)
    run = TrainingRun.objects.create(
        team=machine.team,
        machine=machine,
        job=Job.objects.create(team=machine.team, kind="machine.train"),
        spec={"dataset_id": first.pk, "dataset": {"id": first.pk, "rows": OLD_ROWS}},
        time_budget_s=60,
        is_active=False,
    )
    version.run = run
    version.save(update_fields=["run"])
    retraining.retraining_policy_update(
        caller=Caller.for_session(owner), machine=machine, enabled=True, after_new_rows=NEW_ROWS
    )
    now = at("2026-03-10T12:00:00")
    assert retraining.retraining_start_due(now=now) == []  # no new rows yet
    _grow(owner, make_dataset, old, first)
    started = retraining.retraining_start_due(now=now)
    assert [item.purpose for item in started] == [RunPurpose.RETRAINING]
    assert RetrainingPolicy.objects.get().rows_at_last_start == OLD_ROWS + NEW_ROWS
    TrainingRun.objects.filter(pk=started[0].pk).update(is_active=False)
    # The same rows again (its version kept as challenger, say): no second run.
    assert retraining.retraining_start_due(now=now) == []


# --- end to end with the real engine ----------------------------------------------------------


def _train_champion(
    owner: Any, make_dataset: Any, run_jobs: Any, *, inverted: bool
) -> tuple[Machine, Dataset, pd.DataFrame]:
    old = frame(OLD_ROWS, seed=1, inverted=inverted)
    dataset = make_dataset(owner, old, name="Labels")
    machine = _model(owner, dataset)
    services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()
    machine.refresh_from_db()
    assert machine.active_version is not None and machine.active_version.number == 1
    return machine, dataset, old


def _scheduled_retraining(owner: Any, machine: Machine, run_jobs: Any, fixed_clock: Any) -> None:
    fixed_clock(at("2026-03-10T00:00:00"))
    retraining.retraining_policy_update(
        caller=Caller.for_session(owner),
        machine=machine,
        enabled=True,
        schedule="daily",
        at_time=datetime.time(3, 0),
        time_zone="Europe/Paris",
    )
    due = at("2026-03-10T02:05:00")
    fixed_clock(due)
    tick(due, "scheduler-1")
    tick(due, "scheduler-2")
    assert TrainingRun.objects.filter(purpose=RunPurpose.RETRAINING).count() == 1
    run_jobs()


@pytest.mark.django_db(transaction=True)
def test_a_better_candidate_is_promoted(
    owner: Any, make_dataset: Any, run_jobs: Any, fixed_clock: Any
) -> None:
    """The champion learnt the opposite of what the new rows say: on the fresh holdout rows
    the candidate wins and becomes active, under the alias champion."""
    machine, dataset, old = _train_champion(owner, make_dataset, run_jobs, inverted=True)
    _grow(owner, make_dataset, old, dataset)
    _scheduled_retraining(owner, machine, run_jobs, fixed_clock)

    run = TrainingRun.objects.get(purpose=RunPurpose.RETRAINING)
    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    machine.refresh_from_db()
    assert machine.active_version is not None and machine.active_version.number == 2
    decision = RetrainingDecision.objects.get()
    assert (decision.run_id, decision.candidate.number, decision.champion.number) == (run.pk, 2, 1)
    assert (decision.output, decision.metric, decision.promoted) == ("label", "roc_auc", True)
    assert decision.candidate_score == 1.0
    assert decision.champion_score == 0.0
    # The candidate's holdout rows among the appended ones (20 % of them, about 80).
    assert 60 <= decision.holdout_rows <= 100
    assert decision.reason.startswith("v2 is active: roc_auc 1 beats v1's 0 on ")
    assert decision.reason in run.job.log
    alias = ModelAlias.objects.get(machine=machine)
    assert (alias.name, alias.version.number) == ("champion", 2)
    actions = list(
        AuditEvent.objects.filter(team=machine.team, credential="system")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["model_version.activated", "model.alias_set", "model.retraining_decided"]

    api = api_client_for(owner)
    decisions = api.get(f"/api/v1/models/{machine.pk}/retraining/decisions/").json()
    assert decisions["count"] == 1
    assert {
        key: decisions["results"][0][key]
        for key in (
            "run",
            "candidate_version",
            "champion_version",
            "promoted",
            "candidate_score",
            "champion_score",
        )
    } == {
        "run": run.pk,
        "candidate_version": 2,
        "champion_version": 1,
        "promoted": True,
        "candidate_score": 1.0,
        "champion_score": 0.0,
    }
    versions = api.get(f"/api/v1/models/{machine.pk}/versions/").json()["results"]
    assert {item["number"]: (item["is_active"], item["aliases"]) for item in versions} == {
        2: (True, ["champion"]),
        1: (False, []),
    }
    client = Client()
    client.force_login(owner)
    page = client.get(f"/models/{machine.pk}/").content.decode()
    assert 'data-testid="retraining-decisions"' in page
    assert "promoted" in page

    # The next day's run has no rows the champion (v2) did not train on: nothing to compare
    # on, so its version is kept as challenger, with the reason.
    TrainingRun.objects.update(is_active=False)
    tomorrow = at("2026-03-11T02:05:00")
    fixed_clock(tomorrow)
    tick(tomorrow, "scheduler-1")
    run_jobs()
    latest = RetrainingDecision.objects.first()
    assert latest is not None
    assert (latest.candidate.number, latest.champion.number, latest.promoted) == (3, 2, False)
    assert (latest.holdout_rows, latest.champion_score) == (0, None)
    assert "Only 0 of the candidate's holdout rows were added" in latest.reason
    assert ModelAlias.objects.get(machine=machine, name="challenger").version.number == 3
    assert Machine.objects.get(pk=machine.pk).active_version.number == 2


@pytest.mark.django_db(transaction=True)
def test_a_candidate_that_does_not_beat_the_champion_is_kept_as_challenger(
    owner: Any, make_dataset: Any, run_jobs: Any, fixed_clock: Any
) -> None:
    """Old and new rows say the same: both versions are perfect on the fresh holdout rows, so
    the candidate does not beat the champion; it stays inactive, under the alias challenger."""
    machine, dataset, old = _train_champion(owner, make_dataset, run_jobs, inverted=False)
    _grow(owner, make_dataset, old, dataset)
    _scheduled_retraining(owner, machine, run_jobs, fixed_clock)

    run = TrainingRun.objects.get(purpose=RunPurpose.RETRAINING)
    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    machine.refresh_from_db()
    assert machine.active_version is not None and machine.active_version.number == 1
    assert machine.versions.count() == 2
    decision = RetrainingDecision.objects.get()
    assert (decision.candidate.number, decision.champion.number, decision.promoted) == (2, 1, False)
    assert (decision.candidate_score, decision.champion_score) == (1.0, 1.0)
    assert decision.reason.startswith("v2 kept as challenger: roc_auc 1 does not beat v1's 1 on ")
    assert "Version 2 is now active." not in run.job.log
    alias = ModelAlias.objects.get(machine=machine)
    assert (alias.name, alias.version.number) == ("challenger", 2)
    event = AuditEvent.objects.get(action="model.retraining_decided")
    assert event.details["promoted"] is False
    assert event.details["scores"] == {
        "metric": "roc_auc",
        "candidate": "1",
        "champion": "1",
        "rows": decision.holdout_rows,
    }


def test_the_schema_documents_an_unsaved_policys_null_updated_at() -> None:
    # GET answers a model's default policy before anyone saved one: updated_at is null then
    # (found by the API fuzz).
    from mlmanager.core.tests.test_api_schema import _schema

    schema = _schema()["components"]["schemas"]["RetrainingPolicyOutput"]
    assert schema["properties"]["updated_at"]["nullable"] is True
