"""The training estimate beside a model's train button (services.charges.training_estimate)."""

from __future__ import annotations

import math
from typing import Any

from django import template
from django.conf import settings

from mlmanager.billing.money import amount_text
from mlmanager.billing.services.charges import training_estimate
from mlmanager.billing.services.ledger import billing_enabled

register = template.Library()


@register.inclusion_tag("billing/partials/_training_estimate.html")
def training_estimate_note(machine: Any) -> dict[str, Any]:
    """ "About N min, costs X, leaves Y" when billing is on; nothing (and no query) when off."""
    if not billing_enabled():
        return {"estimate": None}
    estimate = training_estimate(machine=machine)
    return {
        "estimate": estimate,
        "minutes": max(1, math.ceil(estimate.time_s / 60)),
        "cost": amount_text(estimate.cost),
        "balance_after": amount_text(estimate.balance_after),
        "currency": settings.MLMANAGER_BILLING_CURRENCY,
        "short": estimate.balance_after < 0,
    }
