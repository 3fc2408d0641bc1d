"""`{{ value|amount }}`: an amount as the API writes it ("2.50")."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from mlmanager.billing.money import amount_text

register = template.Library()


@register.filter
def amount(value: Any) -> str:
    if value is None or value == "":
        return ""
    return amount_text(Decimal(value))
