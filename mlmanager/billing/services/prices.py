"""What things cost: the price in force for each key, and the estimates built from them.

Prices are rows valid from a moment (`billing.Price`); the one in force is the newest whose
`valid_from` has passed. Operations keep the id of the price they used in their details.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from mlmanager.billing.models import Price
from mlmanager.billing.money import ZERO, rounded

Key = Price.Key


def price_current(key: str, *, at: datetime | None = None) -> Price | None:
    """The price of `key` in force at `at` (now), or None when none was ever set."""
    return (
        Price.objects.filter(key=key, valid_from__lte=at or timezone.now())
        .order_by("-valid_from", "-id")
        .first()
    )


def prices_current() -> list[Price]:
    """Every key's price in force now, in the order of `Price.Key`."""
    found = (price_current(key) for key in Key.values)
    return [price for price in found if price is not None]


@dataclass(frozen=True, slots=True)
class Cost:
    """An amount and the price it came from (kept in the operation's details)."""

    amount: Decimal
    price: Price | None

    @property
    def details(self) -> dict[str, object]:
        if self.price is None:
            return {}
        return {"price_id": self.price.pk, "price": str(self.price.amount), "key": self.price.key}


def training_price(*, level: int | None, gpu: bool) -> Price | None:
    """The per-minute price of a training: on a GPU, or at its level, or the general one."""
    if gpu:
        return price_current(Key.GPU_MINUTE) or price_current(Key.TRAINING_MINUTE)
    if level is not None:
        found = price_current(f"training_minute_level_{level}")
        if found is not None:
            return found
    return price_current(Key.TRAINING_MINUTE)


def training_cost(*, level: int | None, gpu: bool, seconds: float) -> Cost:
    """What `seconds` of training cost, billed by the started second (a minute's price)."""
    price = training_price(level=level, gpu=gpu)
    if price is None:
        return Cost(ZERO, None)
    return Cost(rounded(price.amount * Decimal(math.ceil(seconds)) / 60), price)


def prediction_cost(*, rows: int, price_per_1000: Decimal | None = None) -> Cost:
    """What predicting `rows` rows costs: at the platform's price, or at a marketplace
    listing's own price (`price_per_1000`)."""
    if price_per_1000 is not None:
        return Cost(rounded(price_per_1000 * rows / 1000), None)
    price = price_current(Key.PREDICTIONS_1000_ROWS)
    if price is None:
        return Cost(ZERO, None)
    return Cost(rounded(price.amount * rows / 1000), price)


def storage_cost(*, gigabytes: Decimal, months: Decimal) -> Cost:
    price = price_current(Key.STORAGE_GB_MONTH)
    if price is None:
        return Cost(ZERO, None)
    return Cost(rounded(price.amount * gigabytes * months), price)


def commission_share() -> Decimal:
    """The platform's share of a marketplace sale (0.2 = 20 %)."""
    price = price_current(Key.MARKETPLACE_COMMISSION)
    return price.amount if price is not None else ZERO
