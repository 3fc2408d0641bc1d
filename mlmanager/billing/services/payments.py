"""Payments received through a provider (`billing.providers`), each crediting the team once.

A provider (the manual one: staff recording a bank transfer; a card processor's webhook) calls
`payment_record` with its own reference for the payment; the same (provider, reference) again
answers with the first payment, so a webhook delivered twice credits once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from mlmanager.accounts.models import Team, User
from mlmanager.billing.errors import IdempotencyConflict
from mlmanager.billing.models import Account, Operation, Payment
from mlmanager.billing.money import rounded
from mlmanager.billing.services import ledger


@dataclass(frozen=True)
class Recorded:
    payment: Payment
    created: bool


def payment_record(
    *,
    provider: str,
    team: Team,
    amount: Decimal,
    reference: str,
    recorded_by: User | None,
) -> Recorded:
    """Credit the team `amount` for a payment the provider received (an operation of kind
    `bill_payment`) and keep the payment. Idempotent on (provider, reference): a replay for
    the same team and amount answers with the first payment; a different one is a 409."""
    amount = rounded(amount)
    with transaction.atomic():
        # The team's row first: two deliveries of one payment queue here, and the second
        # finds the first's row below.
        ledger.team_account(team.pk)
        Account.objects.select_for_update().get(team_id=team.pk)
        earlier = Payment.objects.filter(provider=provider, reference=reference).first()
        if earlier is not None:
            return Recorded(_same_payment(earlier, team=team, amount=amount), created=False)
        try:
            with transaction.atomic():
                operation = ledger.credit(
                    team_id=team.pk,
                    kind=Operation.Kind.BILL_PAYMENT,
                    amount=amount,
                    created_by_id=recorded_by.pk if recorded_by is not None else None,
                    # Hashed: a reference may be as long as the key's column, and two long
                    # references sharing a prefix must not share a key.
                    idempotency_key=f"payment:{provider}:"
                    + hashlib.sha256(reference.encode()).hexdigest(),
                    description=_("Payment %(reference)s (%(provider)s)")
                    % {"reference": reference, "provider": provider},
                    details={"provider": provider, "reference": reference},
                )
                payment = Payment.objects.create(
                    team=team,
                    provider=provider,
                    reference=reference,
                    amount=amount,
                    operation=operation,
                    recorded_by=recorded_by,
                )
        except IntegrityError:
            # The same reference recorded for another team in the meantime (its row lock is
            # not ours): the unique constraint refused this one.
            earlier = Payment.objects.get(provider=provider, reference=reference)
            return Recorded(_same_payment(earlier, team=team, amount=amount), created=False)
    return Recorded(payment, created=True)


def _same_payment(payment: Payment, *, team: Team, amount: Decimal) -> Payment:
    if payment.team_id != team.pk or payment.amount != amount:
        raise IdempotencyConflict(
            _("This payment reference was already recorded for a different payment."),
            code="payment_reference_used",
            details={"reference": payment.reference},
        )
    return payment
