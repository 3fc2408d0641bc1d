"""Training pays for itself: the full budget held at the start, the seconds used charged when
the run ends (success, cancel, failure), the rest released, a 402 starting nothing, and the
billing reaper settling the hold of a worker killed mid-run."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.billing.errors import InsufficientCredits
from mlmanager.billing.models import Account, Operation, Price, Reservation
from mlmanager.billing.services import charges
from mlmanager.core.tests.factories import api_client_for
from mlmanager.engine.training import TrainingError
from mlmanager.jobs.models import Job
from mlmanager.jobs.services import job_claim, jobs_reap
from mlmanager.machines import services
from mlmanager.machines.models import Machine, TrainingRun
from mlmanager.machines.tests import conftest as machines_fixtures
from mlmanager.machines.tests import test_image_models_training as image_training

# machines' fixtures: datasets made in memory, the fake engine, a small candidate cap.
make_dataset = machines_fixtures.make_dataset
fake_engine = machines_fixtures.fake_engine
_few_candidates = machines_fixtures._few_candidates
make_image_dataset = machines_fixtures.make_image_dataset
vision_engine = image_training.engine  # the scripted image engine

BUDGET_S = 600  # 10 minutes at the general training price
TRAINING_MINUTE = Decimal("0.05")
HELD = Decimal("0.50")


@pytest.fixture
def prices(db: None) -> None:
    """The default prices (migration 0002): a transactional test's flush removes them."""
    since = timezone.now() - timedelta(days=1)
    for key, amount in {"training_minute": "0.05", "gpu_minute": "0.50"}.items():
        if not Price.objects.filter(key=key).exists():
            Price.objects.create(key=key, amount=Decimal(amount), valid_from=since)


def _machine(owner: Any, dataset: Any) -> Machine:
    return services.machine_create(
        caller=Caller.for_session(owner),
        dataset=dataset,
        outputs=["churned"],
        time_budget_s=BUDGET_S,
    )


def _account(team: Any) -> Account:
    return Account.objects.get(team_id=team.pk)


def _charged(seconds: int) -> Decimal:
    return (TRAINING_MINUTE * seconds / 60).quantize(Decimal("0.000001"))


@pytest.mark.django_db
def test_start_holds_the_full_budget_with_the_job(
    owner, make_dataset, billing_on, fund, prices
) -> None:
    fund(owner.current_team, "10")
    machine = _machine(owner, make_dataset(owner))
    assert machine.level is None  # priced at the general per-minute price

    run = services.training_start(caller=Caller.for_session(owner), machine=machine)

    hold = Reservation.objects.get()
    assert (hold.key, hold.job_id, hold.kind) == (f"job:{run.job_id}", run.job_id, "training")
    assert (hold.amount, hold.status) == (HELD, Reservation.Status.HELD)
    price = Price.objects.filter(key="training_minute").latest("valid_from")
    assert hold.details == {
        "machine_id": machine.pk,
        "level": None,
        "budget_s": BUDGET_S,
        "gpu": False,
        "price_id": price.pk,
        "price": "0.050000",
        "key": "training_minute",
    }
    account = _account(owner.current_team)
    assert (account.balance, account.reserved, account.available) == (
        Decimal("10"),
        HELD,
        Decimal("9.50"),
    )
    assert not Operation.objects.filter(kind="training").exists()


@pytest.mark.django_db
def test_without_enough_credit_nothing_is_created_or_queued(
    owner, make_dataset, billing_on, fund, prices, django_capture_on_commit_callbacks
) -> None:
    fund(owner.current_team, "0.49")
    machine = _machine(owner, make_dataset(owner))
    with django_capture_on_commit_callbacks() as queued, pytest.raises(InsufficientCredits) as no:
        services.training_start(caller=Caller.for_session(owner), machine=machine)
    assert no.value.status_code == 402
    assert no.value.details == {"needed": "0.50", "available": "0.49"}
    assert queued == []
    assert (Job.objects.count(), TrainingRun.objects.count(), Reservation.objects.count()) == (
        0,
        0,
        0,
    )
    assert _account(owner.current_team).reserved == 0

    # The API answers 402 insufficient_credits; the page shows the message on the model page.
    response = api_client_for(owner).post(
        f"/api/v1/models/{machine.pk}/start_training/", {}, format="json"
    )
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert response.json()["error"]["details"] == {"needed": "0.50", "available": "0.49"}
    page = _session(owner).post(f"/models/{machine.pk}/train/", follow=True)
    assert page.status_code == 200
    assert "Not enough credit: this needs 0.50 and your team has 0.49 available." in (
        page.content.decode()
    )
    assert Job.objects.count() == 0


def _session(user: Any) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_a_run_that_succeeds_pays_the_seconds_it_ran_and_the_rest_is_released(
    owner, make_dataset, run_jobs, fake_engine, billing_on, fund, prices
) -> None:
    fund(owner.current_team, "10")
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()

    run.job.refresh_from_db()
    assert run.job.status == Job.Status.SUCCEEDED
    hold = Reservation.objects.get(key=f"job:{run.job_id}")
    assert hold.status == Reservation.Status.SETTLED
    operation = hold.operation
    assert operation is not None and operation.kind == "training"
    seconds = operation.details["seconds"]
    # Billed by the started second, from the claim to the settlement (within the job's span).
    assert 1 <= seconds <= math.ceil(run.job.duration_seconds) + 1
    charged = _charged(seconds)
    assert operation.details["reserved"] == "0.500000"
    assert [
        (e.bucket, e.amount) for e in operation.entries.filter(account__team=owner.current_team)
    ] == [("credits", -charged)]
    account = _account(owner.current_team)
    assert (account.balance, account.reserved) == (Decimal("10") - charged, 0)


def test_a_cancelled_run_pays_the_seconds_it_ran(
    owner, make_dataset, run_jobs, fake_engine, billing_on, fund, prices
) -> None:
    fund(owner.current_team, "10")
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    fake_engine.wait_for_stop = True
    fake_engine.during = lambda: services.training_cancel(run=run)
    run_jobs()

    run.job.refresh_from_db()
    assert run.job.status == Job.Status.CANCELLED
    hold = Reservation.objects.get(key=f"job:{run.job_id}")
    assert hold.status == Reservation.Status.SETTLED
    assert hold.operation is not None
    seconds = hold.operation.details["seconds"]
    assert seconds >= 1
    account = _account(owner.current_team)
    assert (account.balance, account.reserved) == (Decimal("10") - _charged(seconds), 0)


def test_a_failed_run_pays_the_seconds_it_ran(
    owner, make_dataset, run_jobs, fake_engine, billing_on, fund, prices
) -> None:
    fund(owner.current_team, "10")
    machine = _machine(owner, make_dataset(owner))
    fake_engine.error = TrainingError("The data has a problem.", code="bad_data", details="tail")
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()

    run.job.refresh_from_db()
    assert run.job.status == Job.Status.FAILED
    hold = Reservation.objects.get(key=f"job:{run.job_id}")
    assert hold.status == Reservation.Status.SETTLED
    seconds = hold.operation.details["seconds"]
    account = _account(owner.current_team)
    assert (account.balance, account.reserved) == (Decimal("10") - _charged(seconds), 0)


@pytest.mark.django_db
def test_a_run_cancelled_while_queued_is_released_and_charged_nothing(
    owner, make_dataset, billing_on, fund, prices, committing
) -> None:
    fund(owner.current_team, "10")
    machine = _machine(owner, make_dataset(owner))
    with committing():
        run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    services.training_cancel(run=run)

    hold = Reservation.objects.get(key=f"job:{run.job_id}")
    assert (hold.status, hold.operation) == (Reservation.Status.RELEASED, None)
    account = _account(owner.current_team)
    assert (account.balance, account.reserved) == (Decimal("10"), 0)
    assert not Operation.objects.filter(kind="training").exists()


@pytest.mark.django_db
def test_a_killed_workers_hold_is_settled_by_the_billing_reaper(
    owner, make_dataset, billing_on, fund, prices
) -> None:
    fund(owner.current_team, "10")
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    key = f"job:{run.job_id}"
    # The worker is killed twice mid-run (as the jobs' own reaper tests make a job look dead):
    # requeued once, then failed. No worker ever tells the run.
    long_ago = timezone.now() - timedelta(minutes=5)
    assert job_claim(job_id=run.job_id, worker="dead-host:1")
    Job.objects.filter(pk=run.job_id).update(heartbeat_at=long_ago)
    assert jobs_reap()["requeued"] == [run.job_id]
    assert job_claim(job_id=run.job_id, worker="dead-host:2")
    # The last attempt ran two minutes, then its heartbeats stopped.
    Job.objects.filter(pk=run.job_id).update(
        started_at=long_ago - timedelta(minutes=2), heartbeat_at=long_ago
    )
    assert jobs_reap()["failed"] == [run.job_id]
    assert Reservation.objects.get(key=key).status == Reservation.Status.HELD

    assert charges.reservations_reap() == {"settled": [key], "released": []}

    hold = Reservation.objects.get(key=key)
    assert hold.status == Reservation.Status.SETTLED
    # Two minutes and one heartbeat: the minutes the reaper took to notice are not charged.
    seconds = 120 + math.ceil(settings.MLMANAGER_JOB_HEARTBEAT_S)
    assert hold.operation.details["seconds"] == seconds
    account = _account(owner.current_team)
    assert (account.balance, account.reserved) == (Decimal("10") - _charged(seconds), 0)
    assert charges.reservations_reap() == {"settled": [], "released": []}  # once
    assert Operation.objects.filter(kind="training").count() == 1


@pytest.mark.django_db
def test_the_billing_reaper_releases_a_hold_whose_job_never_started(
    owner, make_dataset, billing_on, fund, prices
) -> None:
    fund(owner.current_team, "10")
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    Job.objects.filter(pk=run.job_id).update(status=Job.Status.FAILED, finished_at=timezone.now())
    assert charges.reservations_reap() == {"settled": [], "released": [f"job:{run.job_id}"]}
    assert Reservation.objects.get().status == Reservation.Status.RELEASED
    assert _account(owner.current_team).reserved == 0


def test_the_billing_reaper_is_a_registered_periodic_task(settings) -> None:
    from mlmanager.core.registries import periodic_tasks

    settings.MLMANAGER_REAPER_INTERVAL_S = 9
    task = periodic_tasks.get("billing.reservations")
    assert (task.run, task.interval_s()) == (charges.reservations_reap_task, 9.0)


def test_billing_off_a_run_writes_no_money(owner, make_dataset, run_jobs, fake_engine) -> None:
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.SUCCEEDED
    assert (Operation.objects.count(), Reservation.objects.count()) == (0, 0)


def test_an_image_run_that_succeeds_pays_the_seconds_it_ran(
    owner, make_image_dataset, run_jobs, vision_engine, billing_on, fund, prices
) -> None:
    fund(owner.current_team, "10")
    machine = services.machine_create(
        caller=Caller.for_session(owner),
        dataset=make_image_dataset(owner),
        outputs=["label"],
        time_budget_s=BUDGET_S,
    )
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    hold = Reservation.objects.get(key=f"job:{run.job_id}")
    assert (hold.amount, hold.details["gpu"]) == (HELD, False)  # no GPU worker: CPU price
    run_jobs()

    run.job.refresh_from_db()
    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    hold.refresh_from_db()
    assert hold.status == Reservation.Status.SETTLED
    seconds = hold.operation.details["seconds"]
    account = _account(owner.current_team)
    assert (account.balance, account.reserved) == (Decimal("10") - _charged(seconds), 0)
