"""`{{ value|amount }}`: an amount as the API writes it ("12.50"), empty for none."""

from __future__ import annotations

from decimal import Decimal

from django import template

from mlmanager.billing.money import amount_text

register = template.Library()


@register.filter(name="amount")
def amount(value: Decimal | None) -> str:
    return "" if value is None else amount_text(value)
