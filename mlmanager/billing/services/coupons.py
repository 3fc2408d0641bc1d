"""Coupons: staff create codes worth promotional credit; a team's editor redeems one.

A coupon is redeemed once per team and by at most `max_uses` teams: the use is counted with one
conditional UPDATE (`uses = uses + 1 WHERE uses < max_uses`), so two teams redeeming the last
use at once cannot both get it, on PostgreSQL or SQLite, without reading the count first.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.access import require_team_action
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Team
from mlmanager.billing.models import Coupon, CouponRedemption, Operation
from mlmanager.billing.selectors import require_staff
from mlmanager.billing.services import ledger
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, Conflict

CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{3,40}$")


class CouponRefused(ApplicationError):
    """A code that cannot be redeemed: its `code` says why (unknown, expired, used up,
    already redeemed by this team)."""

    status_code = 400


def coupon_create(
    *,
    caller: Caller,
    code: str,
    amount: Decimal,
    expires_at: datetime | None = None,
    max_uses: int = 1,
) -> Coupon:
    """A new coupon (staff only). Codes are letters, digits, "-" and "_"; one per code."""
    require_staff(caller=caller)
    code = code.strip()
    if not CODE_PATTERN.match(code):
        raise ApplicationError(
            _("A coupon code is 3 to 40 letters, digits, “-” or “_”."),
            code="invalid_coupon_code",
            details={"field": "code"},
        )
    if max_uses < 1:
        raise ApplicationError(
            _("A coupon must allow at least one use."), details={"field": "max_uses"}
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError(
            _("The expiry must be in the future."),
            code="invalid_expiry",
            details={"field": "expires_at"},
        )
    coupon = Coupon(
        code=code,
        amount=amount,
        expires_at=expires_at,
        max_uses=max_uses,
        created_by_id=caller.user_id,
    )
    try:
        with transaction.atomic():
            coupon.save()
    except IntegrityError:
        raise Conflict(_("A coupon with this code exists already."), code="coupon_exists") from None
    return coupon


def coupon_redeem(*, caller: Caller, team: Team, code: str) -> CouponRedemption:
    """Redeem `code` for the team (an editor or more of it): its amount becomes promotional
    credit (spent before bought credit, never paid out). Refused with a clear code when the
    coupon is unknown, expired, used up, or already redeemed by this team."""
    require_team_action(caller=caller, team_id=team.pk, action=Action.CHANGE)
    code = code.strip()
    coupon = Coupon.objects.filter(code=code).first() if code else None
    if coupon is None:
        raise CouponRefused(_("There is no coupon with this code."), code="coupon_unknown")
    if coupon.expires_at is not None and coupon.expires_at <= timezone.now():
        raise CouponRefused(_("This coupon has expired."), code="coupon_expired")
    if CouponRedemption.objects.filter(coupon=coupon, team=team).exists():
        raise _already_redeemed()
    try:
        with transaction.atomic():
            counted = Coupon.objects.filter(pk=coupon.pk, uses__lt=F("max_uses")).update(
                uses=F("uses") + 1
            )
            if not counted:
                raise CouponRefused(
                    _("This coupon has been used as many times as it may be."),
                    code="coupon_used_up",
                )
            operation = ledger.credit(
                team_id=team.pk,
                kind=Operation.Kind.COUPON,
                amount=coupon.amount,
                bucket="promotional",
                created_by_id=caller.user_id,
                # A second redemption racing this one for the same team finds this operation
                # and then fails on the redemption's unique constraint below.
                idempotency_key=f"coupon:{coupon.pk}",
                description=_("Coupon %(code)s") % {"code": coupon.code},
                details={"coupon": coupon.pk, "code": coupon.code},
            )
            return CouponRedemption.objects.create(
                coupon=coupon, team=team, operation=operation, redeemed_by_id=caller.user_id
            )
    except IntegrityError:
        raise _already_redeemed() from None


def _already_redeemed() -> CouponRefused:
    return CouponRefused(
        _("Your team has already redeemed this coupon."), code="coupon_already_redeemed"
    )
