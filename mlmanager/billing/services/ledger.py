"""The ledger: every charge, credit, hold and settlement, each in the caller's transaction.

The rules money rests on, enforced here and by the database:
- an operation's entries sum to zero (checked before writing; `operation_post`);
- a team account never goes below zero: the team's row is locked (`select_for_update`, a no-op
  on SQLite, whose writers are serialised anyway), the available credit checked, and the
  `billing_account_never_negative` CheckConstraint refuses whatever slipped past;
- a retried request charges once: an operation's `idempotency_key` is unique per team, and is
  looked up *after* the team's row is locked, so a concurrent retry waits for the first attempt
  to commit and then finds its operation;
- nothing is ever edited: a mistake is reversed by a new operation (`operation_reverse`).

With billing off (`MLMANAGER_BILLING`, the default) every function here that charges or holds
returns None at once and writes nothing, so callers need no condition of their own.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from mlmanager.billing.errors import IdempotencyConflict, InsufficientCredits
from mlmanager.billing.models import Account, LedgerEntry, Operation, Reservation
from mlmanager.billing.money import ZERO, rounded

logger = logging.getLogger(__name__)

Kind = Operation.Kind
Bucket = LedgerEntry.Bucket


def billing_enabled() -> bool:
    """True when the platform runs as a paid service (`MLMANAGER_BILLING=on`)."""
    return bool(settings.MLMANAGER_BILLING)


@dataclass(frozen=True, slots=True)
class Entry:
    """One side of an operation: `amount` > 0 credits `account`, < 0 debits it."""

    account: Account
    amount: Decimal
    bucket: str = Bucket.CREDITS


# --- accounts ------------------------------------------------------------------------------------


def team_account(team_id: int) -> Account:
    """The team's account, created (empty) on first use."""
    account = Account.objects.filter(team_id=team_id).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            Account.objects.create(
                kind=Account.Kind.TEAM,
                team_id=team_id,
                currency=settings.MLMANAGER_BILLING_CURRENCY,
            )
    except IntegrityError:  # created by a concurrent first use
        pass
    # Read back, not the created instance: its balances would be the default's int 0, not
    # the Decimals every caller computes with.
    return Account.objects.get(team_id=team_id)


def book_account(kind: str) -> Account:
    """The platform's own account (`Account.Kind.PLATFORM`) or the outside world's."""
    account = Account.objects.filter(kind=kind).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            Account.objects.create(kind=kind, currency=settings.MLMANAGER_BILLING_CURRENCY)
    except IntegrityError:  # created by a concurrent first use
        pass
    return Account.objects.get(kind=kind)


def _locked_team_account(team_id: int) -> Account:
    """The team's account, its row locked until the transaction ends (PostgreSQL)."""
    team_account(team_id)
    return Account.objects.select_for_update().get(team_id=team_id)


# --- posting -------------------------------------------------------------------------------------


def operation_post(
    *,
    kind: str,
    team_id: int | None,
    entries: Sequence[Entry],
    created_by_id: int | None = None,
    idempotency_key: str = "",
    description: str = "",
    details: Mapping[str, Any] | None = None,
    reverses: Operation | None = None,
) -> Operation:
    """Write one operation and its entries, and move the accounts' balances by them.

    The low-level writer every charge and credit goes through: it checks that the entries sum
    to zero and leaves the balance checks to its callers (which lock the paying team's row
    first) and to the database's constraint, whose refusal becomes InsufficientCredits.
    """
    if not entries:
        raise ValueError("an operation needs entries")
    amounts = [rounded(entry.amount) for entry in entries]
    if sum(amounts, ZERO) != ZERO:
        raise ValueError(f"entries of a {kind} operation do not sum to zero: {amounts}")
    moves: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    for entry, amount in zip(entries, amounts, strict=True):
        moves[(entry.account.pk, entry.bucket)] += amount
    try:
        with transaction.atomic():
            operation = Operation.objects.create(
                kind=kind,
                team_id=team_id,
                created_by_id=created_by_id,
                idempotency_key=idempotency_key,
                description=description[:300],
                details=dict(details or {}),
                reverses=reverses,
            )
            LedgerEntry.objects.bulk_create(
                LedgerEntry(
                    operation=operation, account=entry.account, bucket=entry.bucket, amount=amount
                )
                for entry, amount in zip(entries, amounts, strict=True)
                if amount != ZERO
            )
            for (account_id, bucket), delta in sorted(moves.items()):
                if delta == ZERO:
                    continue
                field = "promotional_balance" if bucket == Bucket.PROMOTIONAL else "balance"
                Account.objects.filter(pk=account_id).update(**{field: F(field) + delta})
    except IntegrityError as error:
        if "never_negative" in str(error) or "CHECK constraint failed" in str(error):
            debit = -sum((a for a in amounts if a < ZERO), ZERO)
            raise InsufficientCredits(needed=debit, available=ZERO) from None
        raise
    return operation


def _replayed(
    team_id: int, idempotency_key: str, *, kind: str, amount: Decimal
) -> Operation | None:
    """The operation an earlier attempt with this key wrote, or None. The same key for a
    different charge is a 409: the client reused a key it meant for something else."""
    if not idempotency_key:
        return None
    earlier = Operation.objects.filter(team_id=team_id, idempotency_key=idempotency_key).first()
    if earlier is None:
        return None
    paid = -sum((e.amount for e in earlier.entries.all() if e.account.team_id == team_id), ZERO)
    if earlier.kind != kind or (amount and paid != rounded(amount)):
        raise IdempotencyConflict(
            _("This idempotency key was already used for a different operation."),
            details={"operation": earlier.pk},
        )
    return earlier


def charge(
    *,
    team_id: int,
    kind: str,
    amount: Decimal,
    payees: Sequence[tuple[Account, Decimal]] = (),
    created_by_id: int | None = None,
    idempotency_key: str = "",
    description: str = "",
    details: Mapping[str, Any] | None = None,
) -> Operation | None:
    """Debit the team `amount` (promotional credit first) and credit the payees (by default
    the platform's account the whole amount). Call it inside the transaction of the action
    it pays for; InsufficientCredits (402) when the team's available credit is short, and
    then the caller's transaction rolls back the action too.

    None when billing is off or the amount rounds to zero (nothing is written)."""
    if not billing_enabled():
        return None
    amount = rounded(amount)
    if amount <= ZERO:
        return None
    with transaction.atomic():
        account = _locked_team_account(team_id)
        replay = _replayed(team_id, idempotency_key, kind=kind, amount=amount)
        if replay is not None:
            return replay
        if amount > account.available:
            raise InsufficientCredits(needed=amount, available=account.available)
        entries = _debits(account, amount)
        payees = payees or [(book_account(Account.Kind.PLATFORM), amount)]
        if sum((share for _payee, share in payees), ZERO) != amount:
            raise ValueError("the payees' shares must add up to the amount charged")
        entries += [Entry(payee, share) for payee, share in payees if share]
        return operation_post(
            kind=kind,
            team_id=team_id,
            entries=entries,
            created_by_id=created_by_id,
            idempotency_key=idempotency_key,
            description=description,
            details=details,
        )


def _debits(account: Account, amount: Decimal) -> list[Entry]:
    """The team's side of paying `amount`: promotional credit first, then bought credit."""
    promotional = min(amount, account.promotional_balance)
    entries = []
    if promotional > ZERO:
        entries.append(Entry(account, -promotional, Bucket.PROMOTIONAL))
    if amount - promotional > ZERO:
        entries.append(Entry(account, -(amount - promotional), Bucket.CREDITS))
    return entries


def credit(
    *,
    team_id: int,
    kind: str,
    amount: Decimal,
    bucket: str = Bucket.CREDITS,
    source: Account | None = None,
    created_by_id: int | None = None,
    idempotency_key: str = "",
    description: str = "",
    details: Mapping[str, Any] | None = None,
) -> Operation:
    """Credit the team `amount` from `source` (by default the outside world: a staff credit, a
    payment, a coupon). Written whether or not billing is on: staff may fund accounts before
    switching it on. A replay with the same idempotency key credits once."""
    amount = rounded(amount)
    if amount <= ZERO:
        raise ValueError("a credit must be positive")
    with transaction.atomic():
        account = _locked_team_account(team_id)
        replay = _replayed(team_id, idempotency_key, kind=kind, amount=ZERO)
        if replay is not None:
            return replay
        source = source or book_account(Account.Kind.OUTSIDE)
        return operation_post(
            kind=kind,
            team_id=team_id,
            entries=[Entry(source, -amount), Entry(account, amount, bucket)],
            created_by_id=created_by_id,
            idempotency_key=idempotency_key,
            description=description,
            details=details,
        )


def operation_reverse(
    *, operation: Operation, kind: str = Kind.REFUND, created_by_id: int | None, reason: str
) -> Operation:
    """A new operation undoing `operation` entry by entry (a refund or an adjustment); the
    original stays as it was. Refused (409) for an operation already reversed, and 402 when
    a side that received the money has since spent it."""
    with transaction.atomic():
        if operation.team_id is not None:
            _locked_team_account(operation.team_id)
        if Operation.objects.filter(reverses=operation).exists():
            raise IdempotencyConflict(
                _("This operation was already reversed."), code="already_reversed"
            )
        entries = [
            Entry(entry.account, -entry.amount, entry.bucket)
            for entry in operation.entries.select_related("account")
        ]
        return operation_post(
            kind=kind,
            team_id=operation.team_id,
            entries=entries,
            created_by_id=created_by_id,
            description=reason,
            details={"reverses": operation.pk},
            reverses=operation,
        )


# --- reservations --------------------------------------------------------------------------------


def reservation_hold(
    *,
    team_id: int,
    kind: str,
    key: str,
    amount: Decimal,
    job_id: int | None = None,
    description: str = "",
    details: Mapping[str, Any] | None = None,
) -> Reservation | None:
    """Hold `amount` of the team's credit for work that starts now (in the caller's
    transaction, with the work's row). InsufficientCredits (402) when it is not available, and
    nothing starts. Holding again with the same key returns the first hold.

    None when billing is off or the amount is zero."""
    if not billing_enabled():
        return None
    amount = rounded(amount)
    if amount <= ZERO:
        return None
    with transaction.atomic():
        account = _locked_team_account(team_id)
        earlier = Reservation.objects.filter(key=key).first()
        if earlier is not None:
            return earlier
        if amount > account.available:
            raise InsufficientCredits(needed=amount, available=account.available)
        reservation = Reservation.objects.create(
            account=account,
            team_id=team_id,
            kind=kind,
            key=key,
            job_id=job_id,
            amount=amount,
            description=description[:300],
            details=dict(details or {}),
        )
        Account.objects.filter(pk=account.pk).update(reserved=F("reserved") + amount)
    return reservation


def reservation_settle(
    *,
    key: str,
    used: Decimal,
    payees: Sequence[tuple[Account, Decimal]] = (),
    created_by_id: int | None = None,
    description: str = "",
    details: Mapping[str, Any] | None = None,
) -> Operation | None:
    """End a hold by charging what was used (at most the amount held) and releasing the rest.

    Idempotent: a hold already settled or released is left as it is (the job's end and the
    reaper may both come here). Returns the charge, or None when nothing was charged."""
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().filter(key=key).first()
        if reservation is None or reservation.status != Reservation.Status.HELD:
            return reservation.operation if reservation is not None else None
        account = _locked_team_account(reservation.team_id)
        Account.objects.filter(pk=account.pk).update(reserved=F("reserved") - reservation.amount)
        account.refresh_from_db()
        cost = min(rounded(max(used, ZERO)), reservation.amount)
        operation = None
        if cost > ZERO:
            payees = payees or [(book_account(Account.Kind.PLATFORM), cost)]
            operation = operation_post(
                kind=reservation.kind,
                team_id=reservation.team_id,
                entries=_debits(account, cost) + [Entry(p, share) for p, share in payees if share],
                created_by_id=created_by_id,
                description=description or reservation.description,
                details={
                    **reservation.details,
                    **(details or {}),
                    "reserved": str(reservation.amount),
                },
            )
        reservation.status = Reservation.Status.SETTLED
        reservation.operation = operation
        reservation.save(update_fields=["status", "operation", "updated_at"])
    logger.info("reservation %s settled: %s of %s", key, cost, reservation.amount)
    return operation


def reservation_release(*, key: str) -> Reservation | None:
    """End a hold without charging (the work was refused, cancelled before it ran, or failed
    through no use of the platform). Idempotent like `reservation_settle`."""
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().filter(key=key).first()
        if reservation is None or reservation.status != Reservation.Status.HELD:
            return reservation
        _locked_team_account(reservation.team_id)
        Account.objects.filter(pk=reservation.account_id).update(
            reserved=F("reserved") - reservation.amount
        )
        reservation.status = Reservation.Status.RELEASED
        reservation.save(update_fields=["status", "updated_at"])
    logger.info("reservation %s released", key)
    return reservation
