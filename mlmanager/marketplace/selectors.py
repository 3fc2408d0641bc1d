"""Marketplace reads: the public catalogue, one listing, and the owner's usage and income.

The catalogue is readable by every signed-in user, so what it shows is chosen here and nowhere
else: a listing's own fields, its model's name, inputs (name and type) and outputs (name and
task), and the seller's team name. Nothing else of the owner's team (no dataset, no members, no
other models, no metrics) leaves through a listing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    DecimalField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from mlmanager.accounts.access import access_team_object
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership
from mlmanager.billing.models import LedgerEntry
from mlmanager.billing.money import MAX_DIGITS, PLACES
from mlmanager.core.access import Action, parse_id
from mlmanager.core.errors import NotFound
from mlmanager.marketplace.models import DataPurchase, Listing, ListingUse, ModelCopy


def caller_team_ids(caller: Caller) -> QuerySet[Membership, Any]:
    """The teams the caller works in (one, for a team token), as a subquery."""
    if caller.user_id is None:
        return Membership.objects.none().values("team_id")
    memberships = Membership.objects.filter(user_id=caller.user_id)
    if caller.team_limit is not None:
        memberships = memberships.filter(team_id=caller.team_limit)
    return memberships.values("team_id")


def _listings() -> QuerySet[Listing]:
    return Listing.objects.select_related("team", "model__active_version")


def listings_for_caller(
    *,
    caller: Caller,
    search: str = "",
    category: str = "",
    kind: str = "",
    mine: bool = False,
) -> QuerySet[Listing]:
    """The catalogue: published listings, and the caller's teams' own unpublished ones.
    `mine`: only the caller's teams' listings. `search` matches title and description."""
    if caller.user_id is None:
        return Listing.objects.none()
    own = Q(team_id__in=caller_team_ids(caller))
    listings = _listings().filter(own if mine else Q(is_published=True) | own)
    if search:
        listings = listings.filter(Q(title__icontains=search) | Q(description__icontains=search))
    if category:
        listings = listings.filter(category=category)
    if kind:
        listings = listings.filter(kind=kind)
    return listings.order_by("-created_at", "-pk")


def access_listing(*, caller: Caller, id: Any, action: Action = Action.VIEW) -> Listing:
    """A listing the caller may see (published, or of one of their teams) or, for CHANGE, one
    of a team where their role allows it (the owner's editors and up). "Not found" for an
    unpublished listing of another team."""
    if action == Action.VIEW and caller.user_id is not None:
        found = _listings().filter(pk=parse_id(id), is_published=True).first()
        if found is not None:
            return found
    return access_team_object(_listings(), caller=caller, id=id, action=action)


def access_listing_to_buy(*, caller: Caller, id: Any) -> Listing:
    """A listing the caller may buy from: a published one, or their own team's (its owners
    may use their own listing, free)."""
    listing = access_listing(caller=caller, id=id)
    if not listing.is_published and listing.team_id not in set(
        caller_team_ids(caller).values_list("team_id", flat=True)
    ):  # pragma: no cover - access_listing found it through the membership
        raise NotFound()
    return listing


def listing_schema(listing: Listing) -> dict[str, list[dict[str, Any]]]:
    """What the listed model takes and answers: inputs (name, type) and outputs (name,
    task), from its active version (the model's own names before it is trained). Ranges and
    categories training saw are left out: they are the owner's data."""
    model = listing.model
    version = model.active_version
    if version is not None:
        inputs = [{"name": item["name"], "type": item.get("type", "")} for item in version.inputs]
        outputs = [{"name": item["name"], "task": item.get("task", "")} for item in version.outputs]
    else:
        inputs = [{"name": name, "type": ""} for name in model.inputs]
        outputs = [{"name": item["name"], "task": item.get("task", "")} for item in model.outputs]
    return {"inputs": inputs, "outputs": outputs}


def listing_is_own(*, caller: Caller, listing: Listing) -> bool:
    """Whether the caller works in the listing's team (the owner's side of the pages)."""
    return caller_team_ids(caller).filter(team_id=listing.team_id).exists()


def data_purchase_of(*, listing: Listing, team_id: int) -> DataPurchase | None:
    return DataPurchase.objects.filter(listing=listing, team_id=team_id).first()


def copies_of_listing(*, listing: Listing) -> QuerySet[ModelCopy]:
    return ModelCopy.objects.filter(listing=listing).select_related("copy", "source_version")


def copies_for_team(*, team_id: int) -> QuerySet[ModelCopy]:
    """The copies a team bought, with their listings (its "bought" list)."""
    return ModelCopy.objects.filter(team_id=team_id).select_related("listing", "copy")


def purchases_for_team(*, team_id: int) -> QuerySet[DataPurchase]:
    return DataPurchase.objects.filter(team_id=team_id).select_related("listing")


def _income() -> Subquery:
    """What the owner's account was credited by a listing's sales (the owner's entries of
    the operations its uses point at)."""
    return Subquery(
        LedgerEntry.objects.filter(
            operation__in=ListingUse.objects.filter(
                listing=OuterRef(OuterRef("pk")), operation__isnull=False
            ).values("operation"),
            account__team_id=OuterRef("team_id"),
        )
        .order_by()
        .values("account__team_id")
        .annotate(total=Sum("amount"))
        .values("total")[:1],
        output_field=DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES),
    )


def listings_with_usage(*, team_id: int) -> QuerySet[Listing]:
    """The team's listings with their usage (`rows_predicted`, `buyers`: distinct buyer
    teams, `sales`) and `income` (the credits to the owner's account), in one query."""
    zero = Value(
        Decimal(0), output_field=DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    )
    return (
        _listings()
        .filter(team_id=team_id)
        .annotate(
            rows_predicted=Coalesce(
                Sum("uses__rows", filter=Q(uses__kind=ListingUse.Kind.PREDICTION)), 0
            ),
            buyers=Count("uses__buyer", distinct=True, filter=~Q(uses__buyer_id=team_id)),
            sales=Count("uses"),
            income=Coalesce(_income(), zero),
        )
        .order_by("-created_at", "-pk")
    )
