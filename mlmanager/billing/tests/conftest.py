"""Billing on, and teams with credit: what every billing test starts from."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from mlmanager.billing.models import Account, Operation
from mlmanager.billing.services import ledger


@pytest.fixture
def billing_on(settings: Any) -> None:
    """The platform as a paid service (`MLMANAGER_BILLING=on`)."""
    settings.MLMANAGER_BILLING = True


@pytest.fixture
def fund(db: None) -> Callable[..., Account]:
    """`fund(team, "10")` credits the team (bought credit; `promotional=True`: coupon credit)
    and returns its account, refreshed."""

    def add(team: Any, amount: str | Decimal, *, promotional: bool = False) -> Account:
        ledger.credit(
            team_id=team.pk,
            kind=Operation.Kind.COUPON if promotional else Operation.Kind.CREDIT,
            amount=Decimal(amount),
            bucket="promotional" if promotional else "credits",
            description="test funds",
        )
        return Account.objects.get(team_id=team.pk)

    return add
