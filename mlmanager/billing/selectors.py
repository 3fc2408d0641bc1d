"""Billing's reads, always from a team's point of view: its account, its ledger (its own side of
each operation only), the prices in force, its monthly statements.

A team's ledger lists every operation that moved its account: its own charges and credits, and
the marketplace sales another team paid it for. Of each it sees its own entries; the other
sides are named only as "platform", "outside" or "another team", never which team.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Team
from mlmanager.billing.models import Account, LedgerEntry, Operation
from mlmanager.core.access import parse_id
from mlmanager.core.errors import NotFound, PermissionDenied

OWN = "team"
PLATFORM = "platform"
OUTSIDE = "outside"
ANOTHER_TEAM = "another team"


def team_account_or_empty(*, team: Team) -> Account:
    """The team's account, or an unsaved empty one (a read never creates the row: a team
    that never paid or was credited has nothing to show, billing on or off)."""
    account = Account.objects.filter(team=team).select_related("plan").first()
    if account is not None:
        return account
    return Account(kind=Account.Kind.TEAM, team=team, currency=settings.MLMANAGER_BILLING_CURRENCY)


def team_operations(*, team: Team, account: Account | None = None) -> QuerySet[Operation]:
    """The operations that moved the team's account, newest first, each with `own_entries`
    (the team's entries) and `other_entries` (the other sides, with their accounts) prefetched:
    three queries for a page, whatever its length."""
    account = account or team_account_or_empty(team=team)
    if account.pk is None:
        return Operation.objects.none()
    return (
        Operation.objects.filter(
            pk__in=LedgerEntry.objects.filter(account_id=account.pk).values("operation_id")
        )
        .prefetch_related(
            Prefetch(
                "entries",
                queryset=LedgerEntry.objects.filter(account_id=account.pk).order_by("id"),
                to_attr="own_entries",
            ),
            Prefetch(
                "entries",
                queryset=LedgerEntry.objects.exclude(account_id=account.pk)
                .select_related("account")
                .order_by("id"),
                to_attr="other_entries",
            ),
        )
        .order_by("-created_at", "-id")
    )


def counterparty_label(account: Account) -> str:
    """How a team sees the other side of one of its operations: never which other team."""
    if account.kind == Account.Kind.PLATFORM:
        return PLATFORM
    if account.kind == Account.Kind.OUTSIDE:
        return OUTSIDE
    return ANOTHER_TEAM


def operation_view(operation: Operation, *, team: Team) -> dict[str, Any]:
    """One operation as the team may see it (`team_operations` prefetched its entries): its
    own entries, the net amount for the team, the counterparties by kind only. The details
    and author of an operation another team made (a buyer's purchase) stay that team's."""
    own = list(getattr(operation, "own_entries", []))
    others = list(getattr(operation, "other_entries", []))
    own_operation = operation.team_id == team.pk
    return {
        "id": operation.pk,
        "kind": operation.kind,
        "kind_label": operation.get_kind_display(),
        "created_at": operation.created_at,
        "description": operation.description if own_operation else _("Paid by another team"),
        "details": operation.details if own_operation else {},
        "amount": sum((entry.amount for entry in own), Decimal(0)),
        "reverses": operation.reverses_id if own_operation else None,
        "entries": [
            {"account": OWN, "bucket": entry.bucket, "amount": entry.amount} for entry in own
        ],
        "counterparties": sorted({counterparty_label(entry.account) for entry in others}),
    }


def access_team_for_staff(*, caller: Caller, id: Any) -> Team:
    """Any team, for a staff member acting on the platform's behalf (crediting an account,
    recording a payment); everyone else is refused. A staff token limited to one team
    reaches only that team."""
    user = caller.user
    if user is None or not user.is_staff:
        raise PermissionDenied(_("Only staff may do this."))
    team_id = parse_id(id)
    if not caller.allows_team(team_id):
        raise NotFound()
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise NotFound()
    return team


def require_staff(*, caller: Caller) -> None:
    user = caller.user
    if user is None or not user.is_staff:
        raise PermissionDenied(_("Only staff may do this."))


def statement_months(*, team: Team) -> list[date]:
    """The months (first days, newest first, in the current time zone) in which the team's
    account moved."""
    account = team_account_or_empty(team=team)
    if account.pk is None:
        return []
    months = (
        LedgerEntry.objects.filter(account_id=account.pk)
        .annotate(month=TruncMonth("operation__created_at"))
        .values_list("month", flat=True)
        .distinct()
        .order_by("-month")
    )
    return [month.date() if isinstance(month, datetime) else month for month in months]


def account_balances_before(*, account: Account, moment: Any) -> tuple[Decimal, Decimal]:
    """The account's (credits, promotional) balances just before `moment`: the sums of its
    entries of operations made earlier."""
    if account.pk is None:
        return Decimal(0), Decimal(0)
    sums = dict(
        LedgerEntry.objects.filter(account_id=account.pk, operation__created_at__lt=moment)
        .values("bucket")
        .annotate(total=Sum("amount"))
        .values_list("bucket", "total")
    )
    return (
        sums.get(LedgerEntry.Bucket.CREDITS) or Decimal(0),
        sums.get(LedgerEntry.Bucket.PROMOTIONAL) or Decimal(0),
    )


def teams_for_staff(*, caller: Caller) -> QuerySet[Team]:
    """Every team, for a staff page's choice of which to credit."""
    require_staff(caller=caller)
    return Team.objects.order_by("name", "pk")


def recent_operations(*, team: Team, account: Account, count: int = 10) -> list[dict[str, Any]]:
    """The team's last `count` operations as it may see them (the billing page)."""
    return [
        operation_view(operation, team=team)
        for operation in team_operations(team=team, account=account)[:count]
    ]
