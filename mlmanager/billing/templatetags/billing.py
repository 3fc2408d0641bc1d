"""Billing's template helpers: amounts as the API writes them, and whether the nav shows the
billing page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from mlmanager.billing.money import amount_text
from mlmanager.billing.services.ledger import billing_enabled

register = template.Library()


@register.filter
def money(value: Any) -> str:
    """An amount as "12.50" (at least two places, up to six: a prediction may cost 0.0001)."""
    if value is None or value == "":
        return "–"
    return amount_text(Decimal(value))


@register.simple_tag(takes_context=True)
def billing_in_nav(context: template.Context) -> bool:
    """The nav shows "Billing" when billing is on, and to staff (who fund accounts before
    switching it on). Off, nobody else sees it: billing off changes nothing for users, and
    this costs no query on every page (the page itself still answers at /billing/)."""
    user = context.get("user")
    return billing_enabled() or bool(getattr(user, "is_staff", False))
