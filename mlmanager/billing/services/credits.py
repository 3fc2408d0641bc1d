"""Staff crediting a team's account (with a reason), retried safely by an idempotency key."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Team
from mlmanager.billing.errors import IdempotencyConflict
from mlmanager.billing.models import Account, LedgerEntry, Operation
from mlmanager.billing.money import ZERO, rounded
from mlmanager.billing.selectors import require_staff
from mlmanager.billing.services import ledger


@dataclass(frozen=True)
class Booked:
    """An operation and whether this call wrote it (False: a replay found the first one)."""

    operation: Operation
    created: bool


def booked_or_replayed(
    *, team_id: int, kind: str, amount: Decimal, idempotency_key: str
) -> Operation | None:
    """The operation an earlier call with this key wrote (the team's row locked first, so a
    concurrent retry waits for the first to commit), or None. 409 when the key was used for a
    different kind or amount. Call inside a transaction."""
    ledger.team_account(team_id)
    Account.objects.select_for_update().get(team_id=team_id)
    if not idempotency_key:
        return None
    earlier = Operation.objects.filter(team_id=team_id, idempotency_key=idempotency_key).first()
    if earlier is None:
        return None
    received = sum(
        (
            entry.amount
            for entry in LedgerEntry.objects.filter(operation=earlier, account__team_id=team_id)
        ),
        ZERO,
    )
    if earlier.kind != kind or received != rounded(amount):
        raise IdempotencyConflict(
            _("This idempotency key was already used for a different operation."),
            details={"operation": earlier.pk},
        )
    return earlier


def account_credit(
    *, caller: Caller, team: Team, amount: Decimal, reason: str, idempotency_key: str
) -> Booked:
    """Staff add credit to a team's account (a goodwill credit, an internal charge-back
    budget): an operation of kind `credit` from the outside world, with the reason as its
    description. Written with billing on or off, so accounts can be funded before it is
    switched on. The same key again answers with the first operation (`created` False)."""
    require_staff(caller=caller)
    with transaction.atomic():
        earlier = booked_or_replayed(
            team_id=team.pk,
            kind=Operation.Kind.CREDIT,
            amount=amount,
            idempotency_key=idempotency_key,
        )
        if earlier is not None:
            return Booked(earlier, created=False)
        operation = ledger.credit(
            team_id=team.pk,
            kind=Operation.Kind.CREDIT,
            amount=amount,
            created_by_id=caller.user_id,
            idempotency_key=idempotency_key,
            description=reason,
            details={"reason": reason},
        )
    return Booked(operation, created=True)
