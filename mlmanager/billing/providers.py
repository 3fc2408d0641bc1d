"""Payment providers: where money from outside comes in.

A provider turns a payment it received into a `Payment` and a `bill_payment` credit by calling
`services.payments.payment_record(provider=<its name>, team=…, amount=…, reference=<its own id
for the payment>, recorded_by=…)`; the reference makes a replay (a webhook delivered twice)
credit once. The platform ships one provider, `manual` (staff record a bank transfer or an
invoice paid); a card processor plugs in by registering its own (see README, "Payment
providers"): its webhook view checks the processor's signature, reads the team from the
metadata the checkout put there, and calls its `record`. No provider here talks to a network.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from django.utils.translation import gettext_lazy as _

from mlmanager.billing.services.payments import Recorded, payment_record
from mlmanager.core.errors import NotFound


class PaymentProvider(Protocol):
    """What every provider offers: a stable `name` (kept on each Payment) and `record`
    (`team` a Team, `recorded_by` the User who recorded it, or None for a webhook)."""

    name: str
    label: str

    def record(self, *, team: Any, amount: Decimal, reference: str, recorded_by: Any) -> Recorded:
        """Book a payment the provider received (idempotent on its `reference`)."""
        ...


class ManualProvider:
    """Staff record a payment received outside the platform (a bank transfer, a purchase
    order paid): the reference is the bank's or the invoice's."""

    name = "manual"
    label = str(_("Manual (recorded by staff)"))

    def record(self, *, team: Any, amount: Decimal, reference: str, recorded_by: Any) -> Recorded:
        return payment_record(
            provider=self.name,
            team=team,
            amount=amount,
            reference=reference,
            recorded_by=recorded_by,
        )


_providers: dict[str, PaymentProvider] = {}


def provider_register(provider: PaymentProvider) -> None:
    """Make a provider available (call from an AppConfig.ready(), once per name)."""
    if provider.name in _providers and _providers[provider.name] is not provider:
        raise ValueError(f"payment provider {provider.name!r} is already registered")
    _providers[provider.name] = provider


def provider_get(name: str) -> PaymentProvider:
    try:
        return _providers[name]
    except KeyError:
        raise NotFound(_("No such payment provider.")) from None


def providers_all() -> list[PaymentProvider]:
    return list(_providers.values())


provider_register(ManualProvider())
