"""Marketplace pages: the catalogue, a listing (schema, sample, price, buy, copy, try it), the
owner's listings with usage and income, and the publish form reached from a model's page."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.billing.services.ledger import billing_enabled
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.core.filters import page_filter
from mlmanager.core.pagination import page_of
from mlmanager.machines.selectors import access_machine
from mlmanager.marketplace import downloads, selectors, services
from mlmanager.marketplace.filters import ListingFilter
from mlmanager.marketplace.forms import ListingPublishForm, ListingTryForm
from mlmanager.marketplace.models import Listing


def _team(request: AuthenticatedHttpRequest) -> Any:
    if request.team is None:
        raise NotFound(_("Join or create a team first."))
    return request.team


def _is_user_error(error: ApplicationError) -> bool:
    return error.status_code not in (403, 404)


def _billing_context() -> dict[str, Any]:
    return {"billing_on": billing_enabled(), "currency": settings.MLMANAGER_BILLING_CURRENCY}


@login_required
def catalogue(request: AuthenticatedHttpRequest) -> HttpResponse:
    listings = selectors.listings_for_caller(caller=request.caller).filter(is_published=True)
    filtered = page_filter(request=request, queryset=listings, filterset_class=ListingFilter)
    return render(
        request,
        "marketplace/catalogue.html",
        {"page": page_of(request, filtered.qs), "filter_form": filtered.form, **_billing_context()},
    )


def _listing_context(request: AuthenticatedHttpRequest, listing: Listing) -> dict[str, Any]:
    team = request.team
    is_own = selectors.listing_is_own(caller=request.caller, listing=listing)
    return {
        "listing": listing,
        "schema": selectors.listing_schema(listing),
        "is_own": is_own,
        "purchase": (
            selectors.data_purchase_of(listing=listing, team_id=team.pk) if team else None
        ),
        "try_form": ListingTryForm(
            initial={"row": json.dumps(listing.sample_input, ensure_ascii=False)}
        ),
        **_billing_context(),
    }


@login_required
def listing_detail(request: AuthenticatedHttpRequest, listing_id: int) -> HttpResponse:
    listing = selectors.access_listing(caller=request.caller, id=listing_id)
    return render(request, "marketplace/listing.html", _listing_context(request, listing))


@login_required
@require_POST
def listing_try(request: AuthenticatedHttpRequest, listing_id: int) -> HttpResponse:
    """The "try it" form: one row predicted and paid like an API call (htmx swaps the
    answer in; without htmx the listing page is shown with it)."""
    listing = selectors.access_listing_to_buy(caller=request.caller, id=listing_id)
    form = ListingTryForm(request.POST)
    context: dict[str, Any] = {"listing": listing, "try_form": form}
    if form.is_valid():
        try:
            context["answer"] = services.listing_predict(
                caller=request.caller,
                listing=listing,
                buyer=_team(request),
                payload={"rows": [form.cleaned_data["row"]]},
            )
        except ApplicationError as error:
            if not _is_user_error(error):
                raise
            context["error"] = error.message
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "marketplace/partials/_try.html", context)
    return render(
        request,
        "marketplace/listing.html",
        {**_listing_context(request, listing), **context},
    )


def _act(request: AuthenticatedHttpRequest, action: Any) -> Any:
    try:
        return action()
    except ApplicationError as error:
        if not _is_user_error(error):
            raise
        messages.error(request, error.message)
        return None


@login_required
@require_POST
def listing_buy_data(request: AuthenticatedHttpRequest, listing_id: int) -> HttpResponse:
    listing = selectors.access_listing_to_buy(caller=request.caller, id=listing_id)
    bought = _act(
        request,
        lambda: services.listing_buy_data(
            caller=request.caller, listing=listing, buyer=_team(request)
        ),
    )
    if bought is not None:
        messages.success(request, _("Bought: the data is yours to download."))
    return redirect("marketplace:listing", listing_id=listing.pk)


@login_required
def listing_data(request: AuthenticatedHttpRequest, listing_id: int) -> StreamingHttpResponse:
    listing = selectors.access_listing_to_buy(caller=request.caller, id=listing_id)
    dataset = services.listing_data_dataset(
        caller=request.caller, listing=listing, buyer=_team(request)
    )
    response = StreamingHttpResponse(downloads.dataset_csv_chunks(dataset), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="listing-{listing.pk}.csv"'
    return response


@login_required
@require_POST
def listing_copy(request: AuthenticatedHttpRequest, listing_id: int) -> HttpResponse:
    listing = selectors.access_listing_to_buy(caller=request.caller, id=listing_id)
    model_copy = _act(
        request,
        lambda: services.listing_copy(caller=request.caller, listing=listing, buyer=_team(request)),
    )
    if model_copy is None:
        return redirect("marketplace:listing", listing_id=listing.pk)
    messages.success(request, _("Copied into your team."))
    return redirect("machines:detail", machine_id=model_copy.copy_id)


@login_required
def mine(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The team's listings with their usage and income, and what the team bought."""
    team = _team(request)
    return render(
        request,
        "marketplace/mine.html",
        {
            "listings": list(selectors.listings_with_usage(team_id=team.pk)),
            "copies": list(selectors.copies_for_team(team_id=team.pk)),
            "purchases": list(selectors.purchases_for_team(team_id=team.pk)),
            **_billing_context(),
        },
    )


@login_required
def publish(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    machine = access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    form = ListingPublishForm(request.POST or None, initial={"title": machine.name})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        listing = _act(
            request,
            lambda: services.listing_publish(
                caller=request.caller,
                machine=machine,
                kind=data["kind"],
                price=data["price"],
                title=data["title"],
                description=data["description"],
                category=data["category"],
                sample_input=data["sample_input"],
                copy_price=data["copy_price"],
                copy_update_price=data["copy_update_price"],
            ),
        )
        if listing is not None:
            messages.success(request, _("Published on the marketplace."))
            return redirect("marketplace:listing", listing_id=listing.pk)
    return render(
        request,
        "marketplace/publish.html",
        {"machine": machine, "form": form, **_billing_context()},
    )


@login_required
@require_POST
def listing_toggle(request: AuthenticatedHttpRequest, listing_id: int) -> HttpResponse:
    """Publish or unpublish the owner's listing."""
    listing = selectors.access_listing(caller=request.caller, id=listing_id, action=Action.CHANGE)
    services.listing_update(
        caller=request.caller, listing=listing, is_published=not listing.is_published
    )
    messages.success(
        request, _("Published.") if listing.is_published else _("Hidden from the catalogue.")
    )
    return redirect("marketplace:mine")


@login_required
@require_POST
def listing_push(request: AuthenticatedHttpRequest, listing_id: int) -> HttpResponse:
    listing = selectors.access_listing(caller=request.caller, id=listing_id, action=Action.CHANGE)
    results = _act(
        request, lambda: services.listing_push_update(caller=request.caller, listing=listing)
    )
    if results is not None:
        counts = {status: 0 for status in ("updated", "current", "skipped_no_credit")}
        for result in results:
            counts[result["status"]] += 1
        messages.success(
            request,
            _(
                "%(updated)s copies updated, %(current)s already current, %(skipped)s skipped "
                "(their teams lacked credit and were told by e-mail)."
            )
            % {
                "updated": counts["updated"],
                "current": counts["current"],
                "skipped": counts["skipped_no_credit"],
            },
        )
    return redirect("marketplace:mine")
