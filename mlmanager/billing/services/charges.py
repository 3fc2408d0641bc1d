"""Charging the platform's own work: trainings (a hold at the start, settled by the seconds the
run took) and predictions (a charge per 1 000 rows), and the reaper that settles the holds of
trainings whose worker died before it could.

The machines and predictions services call these in one line each; with billing off
(`MLMANAGER_BILLING`, the default) the prediction helpers return before any query: the
predict path reads the setting three times more (quota, charge, usage count), no query.
With billing on, a charged request adds ~13 statements and 4 savepoint statements (quota's
plan, the price, the account lock, the operation, its entries, two balance updates, the
usage upsert; the idempotency lookup when a key is sent).

Training holds are keyed `job:<job id>` and priced when the run starts: the price id and the
per-minute amount are kept in the hold's details and the settlement charges at that price, so
a price changed during a four-hour run does not change what the run costs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from mlmanager.billing.errors import InsufficientCredits
from mlmanager.billing.models import Account, Operation, Reservation
from mlmanager.billing.money import ZERO, rounded
from mlmanager.billing.services import ledger
from mlmanager.billing.services.prices import prediction_cost, training_cost
from mlmanager.jobs.models import Job
from mlmanager.jobs.selectors import gpu_worker_available
from mlmanager.machines.models import Machine

logger = logging.getLogger(__name__)

Kind = Operation.Kind


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a training of a model would take and cost before it starts: its full time budget
    (the most it can run), that budget's cost, and the team's available credit after it.
    With billing off the cost is zero and `balance_after` the account's available credit
    (zero for a team that never had an account): the answer keeps its shape either way."""

    time_s: int
    cost: Decimal
    balance_after: Decimal


def training_key(job_id: int) -> str:
    """The key of a training's hold (`Reservation.key`)."""
    return f"job:{job_id}"


def training_uses_gpu(*, machine: Machine) -> bool:
    """Whether a training started now would run on a GPU (and be priced per GPU minute): an
    image model's, when a live worker takes the gpu queue (as `training_start` decides)."""
    return machine.is_image_model and gpu_worker_available()


def training_estimate(*, machine: Machine) -> Estimate:
    """The estimate the model page's train button and `GET /models/{id}/estimate/` show."""
    budget_s = int(machine.time_budget_s)
    cost = ZERO
    if ledger.billing_enabled():
        gpu = training_uses_gpu(machine=machine)
        cost = training_cost(level=machine.level, gpu=gpu, seconds=budget_s).amount
    account = Account.objects.filter(team_id=machine.team_id).first()
    available = account.available if account is not None else ZERO
    return Estimate(time_s=budget_s, cost=cost, balance_after=rounded(available - cost))


def training_hold(*, machine: Machine, job: Job, budget_s: float, gpu: bool) -> Reservation | None:
    """Hold the cost of the run's full budget, in the transaction that creates its job (so a
    402 creates and queues nothing). None when billing is off or no training price is set."""
    if not ledger.billing_enabled():
        return None
    cost = training_cost(level=machine.level, gpu=gpu, seconds=budget_s)
    return ledger.reservation_hold(
        team_id=machine.team_id,
        kind=Kind.TRAINING,
        key=training_key(job.pk),
        amount=cost.amount,
        job_id=job.pk,
        description=f"Training of {machine.name}"[:300],
        details={
            "machine_id": machine.pk,
            "level": machine.level,
            "budget_s": int(budget_s),
            "gpu": gpu,
            **cost.details,
        },
    )


def training_settle(*, job_id: int, seconds: float | None) -> Operation | None:
    """End a training's hold: charge `seconds` of training (by the started second, at the
    price the hold was taken at) and release the rest; `seconds` None (the run never started)
    releases it all. Idempotent, and a no-op for a run that holds nothing."""
    key = training_key(job_id)
    reservation = Reservation.objects.filter(key=key, status=Reservation.Status.HELD).first()
    if reservation is None:
        return None
    if seconds is None:
        ledger.reservation_release(key=key)
        return None
    used = _training_amount(reservation, seconds)
    return ledger.reservation_settle(
        key=key, used=used, details={"seconds": math.ceil(max(seconds, 0.0))}
    )


def _training_amount(reservation: Reservation, seconds: float) -> Decimal:
    details = reservation.details or {}
    started_seconds = Decimal(math.ceil(max(seconds, 0.0)))
    if "price" in details:
        return rounded(Decimal(str(details["price"])) * started_seconds / 60)
    # A hold without its price (written by hand): today's price of its level.
    return training_cost(
        level=details.get("level"), gpu=bool(details.get("gpu")), seconds=float(started_seconds)
    ).amount


def job_run_seconds(job: Job, *, now: datetime | None = None) -> float | None:
    """How long a job's last attempt ran: from its claim (`started_at`) to its end, or None
    when it never started. The end is the job's `finished_at` (now while it runs), but never
    later than one heartbeat after its last heartbeat: a worker killed mid-run stops beating,
    and the minutes until the jobs' reaper noticed (MLMANAGER_JOB_STALE_S) were no work."""
    if job.started_at is None:
        return None
    end = job.finished_at or now or timezone.now()
    if job.heartbeat_at is not None:
        beat = timedelta(seconds=float(settings.MLMANAGER_JOB_HEARTBEAT_S))
        end = min(end, job.heartbeat_at + beat)
    return max((end - job.started_at).total_seconds(), 0.0)


def training_settle_job(*, job_id: int) -> Operation | None:
    """Settle a training's hold by its job's row (a failure, a cancel, the reaper)."""
    job = Job.objects.filter(pk=job_id).first()
    seconds = job_run_seconds(job) if job is not None else None
    return training_settle(job_id=job_id, seconds=seconds)


def reservations_reap() -> dict[str, list[str]]:
    """The billing reaper (periodic task "billing.reservations"): the holds of trainings whose
    job finished without the run settling them — a worker killed mid-run, whose job the jobs'
    reaper failed — are settled by the job's own times (`job_run_seconds`), or released when
    it never started. A hold whose job row is gone is released: its time is unknown, and an
    unknown time is not charged."""
    reaped: dict[str, list[str]] = {"settled": [], "released": []}
    held = Reservation.objects.filter(status=Reservation.Status.HELD, kind=Kind.TRAINING)
    ended = held.filter(job__status__in=Job.FINISHED_STATUSES).select_related("job")
    for reservation in ended:
        assert reservation.job is not None
        seconds = job_run_seconds(reservation.job)
        try:
            training_settle(job_id=reservation.job.pk, seconds=seconds)
        except Exception:  # one hold that cannot be settled must not stop the others
            logger.exception("billing reaper: could not settle %s", reservation.key)
            continue
        reaped["settled" if seconds is not None else "released"].append(reservation.key)
    for key in held.filter(job__isnull=True, key__startswith="job:").values_list("key", flat=True):
        ledger.reservation_release(key=key)
        reaped["released"].append(key)
    if reaped["settled"] or reaped["released"]:
        logger.warning("billing reaper: %s", reaped)
    return reaped


def reaper_interval_s() -> float:
    """As often as the jobs' reaper: a hold is settled at most one round after its job ended."""
    return float(settings.MLMANAGER_REAPER_INTERVAL_S)


def reservations_reap_task() -> None:
    reservations_reap()


# --- predictions ---------------------------------------------------------------------------------


def prediction_charge(
    *,
    team_id: int,
    rows: int,
    source: str,
    created_by_id: int | None = None,
    idempotency_key: str = "",
) -> Operation | None:
    """Charge `rows` predicted rows (an image is a row) at the platform's price per 1 000
    rows, promotional credit first. InsufficientCredits (402) when the team cannot pay; a
    retry with the same idempotency key charges once. With billing off: None, no query."""
    if not ledger.billing_enabled() or rows <= 0:
        return None
    cost = prediction_cost(rows=rows)
    return ledger.charge(
        team_id=team_id,
        kind=Kind.PREDICTION,
        amount=cost.amount,
        created_by_id=created_by_id,
        idempotency_key=idempotency_key,
        description=f"{rows} rows predicted ({source})",
        details={"rows": rows, "source": source, **cost.details},
    )


def prediction_affordable(*, team_id: int, rows: int) -> None:
    """Refuse (402) at once work whose rows the team's available credit cannot pay for, before
    it is queued (a batch of a dataset: its rows are known). Nothing is held: the batch is
    charged by the rows it predicted when it ends."""
    if not ledger.billing_enabled() or rows <= 0:
        return
    cost = prediction_cost(rows=rows).amount
    account = ledger.team_account(team_id)
    if cost > account.available:
        raise InsufficientCredits(needed=cost, available=account.available)


def batch_key(batch_id: int) -> str:
    """The idempotency key of a batch's charge: a retried batch job charges once."""
    return f"batch:{batch_id}"


__all__ = [
    "Estimate",
    "batch_key",
    "job_run_seconds",
    "prediction_affordable",
    "prediction_charge",
    "reaper_interval_s",
    "reservations_reap",
    "reservations_reap_task",
    "training_estimate",
    "training_hold",
    "training_settle",
    "training_settle_job",
    "training_uses_gpu",
]
