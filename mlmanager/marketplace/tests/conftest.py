"""A seller's team with a trained model (the predictions tests' session-trained artifacts),
a buyer's team, and billing's fixtures (`billing_on`, `fund`)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.billing.models import Price
from mlmanager.billing.tests.conftest import billing_on, fund  # noqa: F401 - fixtures
from mlmanager.core.tests.factories import member
from mlmanager.machines.models import Machine
from mlmanager.machines.tests.conftest import make_dataset  # noqa: F401 - a fixture
from mlmanager.marketplace import services
from mlmanager.marketplace.models import Listing
from mlmanager.predictions.tests.conftest import (  # noqa: F401 - fixtures
    make_model,
    trained_binary,
)

ROW = {"plan": "pro", "monthly_fee": 49.5, "tenure_months": 2, "member": True}


@pytest.fixture
def seller(db: None) -> Any:
    return member("owner")


@pytest.fixture
def buyer(db: None) -> Any:
    return member("owner")


@pytest.fixture
def model(seller: Any, make_model: Callable[..., Machine], trained_binary: Any) -> Machine:  # noqa: F811
    return make_model(seller, trained_binary)


@pytest.fixture
def commission(db: None) -> Decimal:
    """The platform's share: 20 % (a price row newer than the default ones)."""
    Price.objects.create(
        key=Price.Key.MARKETPLACE_COMMISSION, amount=Decimal("0.2"), valid_from=timezone.now()
    )
    return Decimal("0.2")


@pytest.fixture
def publish(seller: Any, model: Machine) -> Callable[..., Listing]:
    def make(kind: str = Listing.Kind.PREDICTION_API, **fields: Any) -> Listing:
        fields.setdefault("price", Decimal("10"))
        return services.listing_publish(
            caller=Caller.for_session(seller), machine=model, kind=kind, **fields
        )

    return make
