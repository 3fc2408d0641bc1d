"""Storage charged per GB-month, once a day per team by a periodic task (`billing.storage`,
registered in `billing.apps`, run hourly so a missed hour still charges the day).

Each run charges every team that stores something the day's share of a month of its stored
bytes: bytes / GiB × price per GB-month / days in the month, so a month of daily charges adds up
to one month's price. The idempotency key `storage:<team>:<date>` makes a second scheduler, a
rerun or a retry charge once per team and day.

A team without enough credit is charged what it has, never more: the balance can never go below
zero (the ledger's rule and the database's constraint), and the bytes are already stored — unlike
a training there is nothing to refuse. What could not be charged is kept in the operation's
details (`unpaid`) and logged, so an operator sees it on the statement; a team with nothing
available gets no operation, only the log line. A debt would be a negative balance by another
name, and the storage quota (refused uploads), not the charge, is what stops a team growing.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

from mlmanager.billing.errors import IdempotencyConflict
from mlmanager.billing.models import Account, Operation
from mlmanager.billing.money import ZERO, amount_text, rounded
from mlmanager.billing.services import ledger
from mlmanager.billing.services.prices import storage_cost
from mlmanager.billing.services.usage import storage_used_bytes, today
from mlmanager.datasets.models import Dataset
from mlmanager.machines.models import ModelVersion

logger = logging.getLogger(__name__)

GB = 1024**3  # a GB-month is of GiB, as the quota's MB are MiB
# The task runs every hour and charges each team once a day (the key): a scheduler that was
# down at midnight, or an hour whose run failed, still charges the day when it next runs.
CHECK_EVERY_S = 60 * 60


def storage_idempotency_key(*, team_id: int, day: dt.date) -> str:
    return f"storage:{team_id}:{day.isoformat()}"


def teams_storing() -> list[int]:
    """Teams that have a dataset or a model version (the only ones with stored bytes)."""
    teams = set(Dataset.objects.values_list("team_id", flat=True).distinct())
    teams |= set(ModelVersion.objects.values_list("team_id", flat=True).distinct())
    return sorted(teams)


def storage_charge_team(*, team_id: int, day: dt.date, stored_bytes: int) -> Operation | None:
    """Charge one team the share of `day` of a month of `stored_bytes` (at most what it has
    available). Once per team and day: a second call finds the first's operation and charges
    nothing. None when nothing was charged (billing off, nothing stored, no price, no credit)."""
    if not ledger.billing_enabled() or stored_bytes <= 0:
        return None
    key = storage_idempotency_key(team_id=team_id, day=day)
    months = Decimal(1) / calendar.monthrange(day.year, day.month)[1]
    cost = storage_cost(gigabytes=Decimal(stored_bytes) / GB, months=months)
    if cost.amount <= ZERO:
        return None
    with transaction.atomic():
        ledger.team_account(team_id)
        # Locked first, so the available credit read here is what the charge finds.
        account = Account.objects.select_for_update().get(team_id=team_id)
        earlier = Operation.objects.filter(team_id=team_id, idempotency_key=key).first()
        if earlier is not None:
            return earlier
        amount = rounded(min(cost.amount, max(account.available, ZERO)))
        unpaid = cost.amount - amount
        if unpaid > ZERO:
            logger.warning(
                "team %s storage of %s: %s of %s not charged (not enough credit)",
                team_id,
                day,
                amount_text(unpaid),
                amount_text(cost.amount),
            )
        if amount <= ZERO:
            return None
        try:
            return ledger.charge(
                team_id=team_id,
                kind=Operation.Kind.STORAGE,
                amount=amount,
                idempotency_key=key,
                description=_("Storage on %(day)s: %(size)s GB")
                % {"day": day.isoformat(), "size": f"{Decimal(stored_bytes) / GB:.3f}"},
                details={
                    **cost.details,
                    "day": day.isoformat(),
                    "bytes": stored_bytes,
                    "months": str(rounded(months)),
                    "cost": amount_text(cost.amount),
                    "unpaid": amount_text(unpaid),
                },
            )
        except IdempotencyConflict:  # a concurrent run charged the day first
            return Operation.objects.filter(team_id=team_id, idempotency_key=key).first()


def storage_charge_all(*, day: dt.date | None = None) -> int:
    """The periodic task: charge every storing team for `day` (today, UTC). Returns how many
    teams were charged. One team's failure is logged and does not stop the others."""
    if not ledger.billing_enabled():
        return 0
    day = day or today()
    charged = 0
    for team_id in teams_storing():
        key = storage_idempotency_key(team_id=team_id, day=day)
        if Operation.objects.filter(team_id=team_id, idempotency_key=key).exists():
            continue  # charged already: not even its folders are measured again
        try:
            operation = storage_charge_team(
                team_id=team_id, day=day, stored_bytes=storage_used_bytes(team_id=team_id)
            )
        except Exception:
            logger.exception("storage charge of team %s for %s failed", team_id, day)
            continue
        if operation is not None:
            charged += 1
    return charged


def storage_interval_s() -> float:
    return float(CHECK_EVERY_S)
