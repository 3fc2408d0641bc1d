"""Billing's refusals: each an ApplicationError, so the API and pages map them as every other."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

from mlmanager.billing.money import amount_text
from mlmanager.core.errors import ApplicationError, Conflict


class InsufficientCredits(ApplicationError):
    """The team's available credit (credits + promotional − reserved) does not cover a charge.
    HTTP 402, the one answer to every refused charge; nothing was started or written."""

    status_code = 402
    default_code = "insufficient_credits"

    def __init__(self, *, needed: Decimal, available: Decimal, **kwargs: Any) -> None:
        super().__init__(
            _(
                "Not enough credit: this needs %(needed)s and your team has %(available)s "
                "available. Add credit or redeem a coupon on the billing page."
            )
            % {"needed": amount_text(needed), "available": amount_text(available)},
            details={"needed": amount_text(needed), "available": amount_text(available)},
            **kwargs,
        )


class IdempotencyConflict(Conflict):
    """The idempotency key was used before for a different charge."""

    default_code = "idempotency_conflict"


class QuotaExceeded(ApplicationError):
    """A team reached one of its plan's limits (`billing.services.quotas`); nothing was started.

    429 for what frees itself with time (API requests per minute, predictions per day,
    concurrent jobs: a job ends); 403 for capacity only the team can free or a bigger plan
    raises (storage): `status_code=403` at the raise. `details` names the quota, its limit and
    the current use."""

    status_code = 429
    default_code = "quota_exceeded"

    def __init__(
        self,
        *,
        quota: str,
        limit: int,
        used: int,
        label: Any = None,
        requested: int | None = None,
        **kwargs: Any,
    ) -> None:
        message = _(
            "Quota exceeded: %(quota)s is limited to %(limit)s by your team's plan and "
            "%(used)s are in use."
        ) % {"quota": label or quota, "limit": limit, "used": used}
        if requested is not None:
            message += " " + _("This needs %(requested)s more.") % {"requested": requested}
        if self.status_code == 429 and kwargs.get("status_code") in (None, 429):
            message += " " + _("Try again later, or ask for a bigger plan.")
        else:
            message += " " + _("Free some, or ask for a bigger plan.")
        super().__init__(message, details={"quota": quota, "limit": limit, "used": used}, **kwargs)
