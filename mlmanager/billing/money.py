"""Amounts: Decimal only, six places stored, shown with at least two.

Six places because a prediction is priced per 1 000 rows: one row at 0.10 per 1 000 costs
0.0001, and rounding each request to cents would charge a one-row caller 100× the price.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from mlmanager.core.errors import ApplicationError

PLACES = 6
QUANTUM = Decimal(1).scaleb(-PLACES)  # 0.000001
MAX_DIGITS = 18
ZERO = Decimal(0)
AMOUNT_FIELD: dict[str, int] = {"max_digits": MAX_DIGITS, "decimal_places": PLACES}
# The largest amount one operation may move: well inside the column, so sums of many fit.
LARGEST = Decimal(10) ** 9


def rounded(value: Decimal) -> Decimal:
    """`value` at the stored precision (half up, as invoices round)."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def amount_text(value: Decimal) -> str:
    """The API's and pages' form: a decimal string, two places at least ("12.50", "0.0001")."""
    value = rounded(value)
    text = format(value.normalize(), "f")
    whole, _dot, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def parse_amount(raw: Any, *, field: str = "amount", allow_zero: bool = False) -> Decimal:
    """A client's amount (a decimal string or number) as a Decimal, or a 400 naming `field`.

    Floats are refused in favour of strings only when they lose precision: 12.5 is fine,
    0.1 + 0.2 is not what anyone meant to send."""
    if isinstance(raw, bool) or raw is None or raw == "":
        raise _invalid(field)
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise _invalid(field) from None
    if not value.is_finite() or value != rounded(value):
        raise _invalid(field)
    if value < 0 or (value == 0 and not allow_zero) or value > LARGEST:
        raise _invalid(field)
    return value


def _invalid(field: str) -> ApplicationError:
    return ApplicationError(
        _("“%(field)s” must be a positive amount with at most %(places)s decimal places.")
        % {"field": field, "places": PLACES},
        code="invalid_amount",
        details={"field": field},
    )
