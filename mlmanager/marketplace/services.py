"""Marketplace actions: publishing and editing listings, and the four ways of buying from
them (predict, buy the data, copy the model, the owner's pushed copy updates).

Every sale is one `billing.services.ledger.charge` in the transaction of what it pays for:
the buyer's team is debited the listing's price, the owner's team credited that minus the
platform's commission (`prices.commission_share()`), the platform the commission, and a
`ListingUse` row records the sale for the owner's usage and income. With billing off the
charge writes nothing and everything else works (prices are shown, nothing is charged); a
team buying from its own listing is not charged either (it would only pay the commission).
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.access import require_team_action
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership, Team
from mlmanager.billing.errors import InsufficientCredits
from mlmanager.billing.models import Account, Operation
from mlmanager.billing.money import ZERO, rounded
from mlmanager.billing.services import ledger, prices
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, Conflict
from mlmanager.datasets.selectors import dataset_preview
from mlmanager.machines.models import Machine
from mlmanager.machines.services import copies
from mlmanager.marketplace.models import DataPurchase, Listing, ListingUse, ModelCopy
from mlmanager.predictions import services as predictions
from mlmanager.predictions.models import Prediction

logger = logging.getLogger(__name__)

# Rows of a data source shown free on its listing.
SAMPLE_ROWS = 5


# --- publishing ----------------------------------------------------------------------------------


def _sample_input(machine: Machine, sample_input: Any) -> dict[str, Any]:
    """One row of the model's inputs (names it takes, plain JSON values), or 400."""
    if sample_input in (None, ""):
        return {}
    if not isinstance(sample_input, dict):
        raise ApplicationError(
            _("“sample_input” must be one row: an object of input names and values."),
            details={"field": "sample_input"},
        )
    unknown = sorted(set(sample_input) - set(machine.inputs))
    if unknown:
        raise ApplicationError(
            _("The model has no input %(names)s.") % {"names": ", ".join(unknown)},
            code="unknown_column",
            details={"sample_input": unknown, "inputs": list(machine.inputs)},
        )
    if any(isinstance(value, dict | list) for value in sample_input.values()):
        raise ApplicationError(
            _("“sample_input” values must be numbers, text, true/false or null."),
            details={"field": "sample_input"},
        )
    return dict(sample_input)


def _sample_rows(machine: Machine) -> dict[str, Any]:
    dataset = machine.dataset
    if dataset is None:
        raise Conflict(
            _("This model's dataset was deleted: there is no data to publish."),
            code="no_dataset",
        )
    columns, rows = dataset_preview(dataset=dataset, limit=SAMPLE_ROWS)
    return {"columns": columns, "rows": rows}


def _check_prices(price: Decimal, copy_price: Decimal | None, copy_update_price: Decimal) -> None:
    for name, value in (
        ("price", price),
        ("copy_price", copy_price),
        ("copy_update_price", copy_update_price),
    ):
        if value is not None and (
            Decimal(value) < ZERO or Decimal(value) != rounded(Decimal(value))
        ):
            raise ApplicationError(
                _("“%(field)s” must be a positive amount.") % {"field": name},
                code="invalid_amount",
                details={"field": name},
            )


@transaction.atomic
def listing_publish(
    *,
    caller: Caller,
    machine: Machine,
    kind: str,
    price: Decimal,
    description: str = "",
    title: str = "",
    category: str = Listing.Category.OTHER,
    sample_input: Any = None,
    copy_price: Decimal | None = None,
    copy_update_price: Decimal | None = ZERO,
) -> Listing:
    """List `machine` (a model of the caller's team, which they may change: editors and up)
    on the marketplace: its prediction API, or its training data as a data source (the first
    rows become the free sample). A model is listed once per kind (409 `already_listed`)."""
    require_team_action(caller=caller, team_id=machine.team_id, action=Action.CHANGE)
    if kind not in Listing.Kind.values:
        raise ApplicationError(_("Unknown listing kind."), details={"field": "kind"})
    copy_update_price = ZERO if copy_update_price is None else Decimal(copy_update_price)
    _check_prices(price, copy_price, copy_update_price)
    if machine.is_image_model and kind == Listing.Kind.PREDICTION_API:
        raise Conflict(
            _("Image models cannot be listed as a prediction API yet; offer copies instead."),
            code="not_a_table",
        )
    if kind == Listing.Kind.PREDICTION_API and machine.active_version_id is None:
        raise Conflict(
            _("This model has no trained version yet; train it first."), code="not_trained"
        )
    if copy_price is not None and machine.active_version_id is None:
        raise Conflict(
            _("This model has no trained version yet; train it first."), code="not_trained"
        )
    listing = Listing(
        team_id=machine.team_id,
        created_by_id=caller.user_id,
        model=machine,
        kind=kind,
        title=(title or machine.name)[:200],
        description=description,
        category=category or Listing.Category.OTHER,
        price=price,
        copy_price=copy_price,
        copy_update_price=copy_update_price,
        sample_input=_sample_input(machine, sample_input),
        sample_rows=_sample_rows(machine) if kind == Listing.Kind.DATA_SOURCE else {},
    )
    if Listing.objects.filter(model=machine, kind=kind).exists():
        raise _already_listed()
    listing.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            listing.save()
    except IntegrityError:  # listed by a concurrent request
        raise _already_listed() from None
    logger.info("model %s listed as %s (listing %s)", machine.pk, kind, listing.pk)
    return listing


def _already_listed() -> Conflict:
    return Conflict(
        _("This model is already listed as this kind; edit that listing instead."),
        code="already_listed",
    )


_EDITABLE = (
    "title",
    "description",
    "category",
    "price",
    "copy_price",
    "copy_update_price",
    "sample_input",
    "is_published",
)


@transaction.atomic
def listing_update(*, caller: Caller, listing: Listing, **changes: Any) -> Listing:
    """Change a listing (owner's editors and up): its text, prices, sample input, and
    `is_published` (unpublishing hides it; purchases and copies already made stay)."""
    require_team_action(caller=caller, team_id=listing.team_id, action=Action.CHANGE)
    unknown = set(changes) - set(_EDITABLE)
    if unknown:  # pragma: no cover - interfaces pass only these
        raise ValueError(f"not editable: {sorted(unknown)}")
    if "sample_input" in changes:
        changes["sample_input"] = _sample_input(listing.model, changes["sample_input"])
    for field, value in changes.items():
        setattr(listing, field, value)
    _check_prices(listing.price, listing.copy_price, listing.copy_update_price)
    if listing.copy_price is not None and listing.model.active_version_id is None:
        raise Conflict(
            _("This model has no trained version yet; train it first."), code="not_trained"
        )
    listing.full_clean(validate_unique=False, validate_constraints=False)
    listing.save(update_fields=[*changes, "updated_at"])
    return listing


# --- money ---------------------------------------------------------------------------------------


def _buyer_team(*, caller: Caller, team: Team, action: Action) -> Team:
    require_team_action(caller=caller, team_id=team.pk, action=action)
    return team


def _payees(owner_team_id: int, amount: Decimal) -> list[tuple[Account, Decimal]]:
    """The owner's share and the platform's commission of `amount` (they add up to it)."""
    commission = rounded(amount * prices.commission_share())
    return [
        (ledger.team_account(owner_team_id), amount - commission),
        (ledger.book_account(Account.Kind.PLATFORM), commission),
    ]


def _sell(
    *,
    listing: Listing,
    buyer: Team,
    kind: str,
    use: str,
    amount: Decimal,
    caller: Caller | None,
    rows: int = 0,
    idempotency_key: str = "",
    description: str = "",
) -> Operation | None:
    """Charge the buyer and pay the owner and the platform (inside the caller's transaction),
    and record the use. Nothing is charged to the owner's own team or with billing off."""
    amount = rounded(amount)
    operation = None
    if _will_charge(listing, buyer, amount):  # nor the accounts' rows with billing off
        operation = ledger.charge(
            team_id=buyer.pk,
            kind=kind,
            amount=amount,
            payees=_payees(listing.team_id, amount),
            created_by_id=caller.user_id if caller is not None else None,
            idempotency_key=idempotency_key,
            description=description or listing.title,
            details={"listing": listing.pk, "rows": rows} if rows else {"listing": listing.pk},
        )
    if operation is not None and ListingUse.objects.filter(operation=operation).exists():
        return operation  # a retried request (same idempotency key): charged and counted once
    ListingUse.objects.create(
        listing=listing,
        buyer=buyer,
        kind=use,
        rows=rows,
        amount=amount if operation is not None else ZERO,
        operation=operation,
    )
    return operation


def _will_charge(listing: Listing, buyer: Team, amount: Decimal) -> bool:
    return ledger.billing_enabled() and buyer.pk != listing.team_id and rounded(amount) > ZERO


def _require_credit(listing: Listing, buyer: Team, amount: Decimal) -> None:
    """402 before doing the work when the buyer cannot pay (the charge checks again under
    the account's lock; this only spares the work of a request that cannot be paid)."""
    if not _will_charge(listing, buyer, amount):
        return
    available = ledger.team_account(buyer.pk).available
    if rounded(amount) > available:
        raise InsufficientCredits(needed=rounded(amount), available=available)


# --- predict -------------------------------------------------------------------------------------


def _rows_sent(payload: Any) -> int:
    """How many rows a predict body holds, to refuse an unpayable request before predicting
    (the parse that answers counts them again; a malformed body fails there with its 400)."""
    if isinstance(payload, dict):
        if isinstance(payload.get("rows"), list):
            return len(payload["rows"])
        columns = payload.get("columns")
        if isinstance(columns, dict) and columns:
            first = next(iter(columns.values()))
            return len(first) if isinstance(first, list) else 0
    return 0


def listing_predict(
    *,
    caller: Caller,
    listing: Listing,
    buyer: Team,
    payload: Any,
    idempotency_key: str = "",
    started: float | None = None,
) -> dict[str, Any]:
    """Answer `payload` with the listed model (the body and answer of the model's own predict
    API) and charge the buyer `price × rows / 1000`, in one transaction: a refused charge
    (402) returns no answer. The platform's own prediction price is not charged on top
    (`charged=False`): the buyer pays the listing's price, nothing more. The owner's
    prediction log holds the rows without the buyer's name (the caller is not passed on)."""
    started = time.perf_counter() if started is None else started
    if listing.kind != Listing.Kind.PREDICTION_API:
        raise Conflict(_("This listing sells data, not predictions."), code="not_a_prediction_api")
    buyer = _buyer_team(caller=caller, team=buyer, action=Action.VIEW)
    machine = listing.model
    if machine.is_image_model:
        raise Conflict(_("This listing's model predicts images."), code="not_a_table")
    version = predictions.version_for_prediction(machine=machine)
    estimate = prices.prediction_cost(rows=_rows_sent(payload), price_per_1000=listing.price)
    _require_credit(listing, buyer, estimate.amount)
    with transaction.atomic():
        body = predictions.predictions_make(
            machine=machine,
            version=version,
            payload=payload,
            caller=Caller.system(),
            source=Prediction.Source.API,
            started=started,
            charged=False,
        )
        rows = len(body["predictions"])
        cost = prices.prediction_cost(rows=rows, price_per_1000=listing.price)
        _sell(
            listing=listing,
            buyer=buyer,
            kind=Operation.Kind.MARKETPLACE_PREDICTION,
            use=ListingUse.Kind.PREDICTION,
            amount=cost.amount,
            caller=caller,
            rows=rows,
            idempotency_key=idempotency_key,
            description=_("%(rows)s rows predicted by “%(title)s”")
            % {"rows": rows, "title": listing.title},
        )
    return body


# --- data ----------------------------------------------------------------------------------------


def listing_buy_data(*, caller: Caller, listing: Listing, buyer: Team) -> tuple[DataPurchase, bool]:
    """Buy a data source listing's data for the buyer's team (editors and up): charged once;
    buying again returns the first purchase, uncharged (`created` False)."""
    if listing.kind != Listing.Kind.DATA_SOURCE:
        raise Conflict(_("This listing sells predictions, not data."), code="not_a_data_source")
    buyer = _buyer_team(caller=caller, team=buyer, action=Action.CHANGE)
    existing = DataPurchase.objects.filter(listing=listing, team=buyer).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            # The purchase row first: a concurrent second buy fails on its unique constraint
            # before it charges, and the first one's charge commits with its row.
            purchase = DataPurchase.objects.create(
                listing=listing,
                team=buyer,
                bought_by_id=caller.user_id,
                price=listing.price,
            )
            operation = _sell(
                listing=listing,
                buyer=buyer,
                kind=Operation.Kind.DATA_PURCHASE,
                use=ListingUse.Kind.DATA_PURCHASE,
                amount=listing.price,
                caller=caller,
                idempotency_key=f"marketplace:data:{listing.pk}",
                description=_("Data of “%(title)s”") % {"title": listing.title},
            )
            if operation is not None:
                purchase.operation = operation
                purchase.save(update_fields=["operation", "updated_at"])
    except IntegrityError:
        existing = DataPurchase.objects.filter(listing=listing, team=buyer).first()
        if existing is None:
            raise
        return existing, False
    logger.info("listing %s: data bought by team %s", listing.pk, buyer.pk)
    return purchase, True


def listing_data_dataset(*, caller: Caller, listing: Listing, buyer: Team) -> Any:
    """The dataset a buyer may download: its team bought it (or owns the listing)."""
    if listing.kind != Listing.Kind.DATA_SOURCE:
        raise Conflict(_("This listing sells predictions, not data."), code="not_a_data_source")
    buyer = _buyer_team(caller=caller, team=buyer, action=Action.VIEW)
    if buyer.pk != listing.team_id and not (
        DataPurchase.objects.filter(listing=listing, team=buyer).exists()
    ):
        raise ApplicationError(
            _("Your team has not bought this data yet."),
            code="not_purchased",
            status_code=403,
        )
    dataset = listing.model.dataset
    if dataset is None:
        raise Conflict(_("The seller deleted this data."), code="no_dataset")
    return dataset


# --- copies --------------------------------------------------------------------------------------


def listing_copy(*, caller: Caller, listing: Listing, buyer: Team) -> ModelCopy:
    """Copy the listed model (its active version) into the buyer's team for `copy_price`
    (editors and up). Each call is a new copy and a new charge."""
    if listing.copy_price is None:
        raise Conflict(_("This listing does not offer copies."), code="copies_not_offered")
    buyer = _buyer_team(caller=caller, team=buyer, action=Action.CHANGE)
    source = listing.model
    _require_credit(listing, buyer, listing.copy_price)
    copy: Machine | None = None
    try:
        with transaction.atomic():
            copy = copies.machine_copy(
                source=source,
                team_id=buyer.pk,
                created_by_id=caller.user_id,
                origin={"marketplace_listing": listing.pk, "title": listing.title},
            )
            model_copy = ModelCopy.objects.create(
                team=buyer,
                listing=listing,
                copy=copy,
                source_version=source.active_version,
                copied_by_id=caller.user_id,
            )
            _sell(
                listing=listing,
                buyer=buyer,
                kind=Operation.Kind.MODEL_COPY,
                use=ListingUse.Kind.MODEL_COPY,
                amount=listing.copy_price,
                caller=caller,
                description=_("Copy of “%(title)s”") % {"title": listing.title},
            )
    except BaseException:
        if copy is not None:
            copies.copy_files_remove(storage_dir=copy.storage_dir)
        raise
    logger.info("listing %s copied into team %s (model %s)", listing.pk, buyer.pk, copy.pk)
    return model_copy


def listing_push_update(*, caller: Caller, listing: Listing) -> list[dict[str, Any]]:
    """The owner (editors and up) updates every copy to the model's active version; each
    copy's team pays `copy_update_price`. A copy already holding that version is left alone;
    a team whose credit is short is skipped: its copy keeps its version, is marked
    (`update_skipped_at`), and the team's owners and admins are e-mailed; the next push tries
    again. One result per copy: {"copy", "status": updated | current | skipped_no_credit}."""
    require_team_action(caller=caller, team_id=listing.team_id, action=Action.CHANGE)
    source = listing.model
    version = source.active_version
    if version is None:
        raise Conflict(
            _("This model has no trained version yet; train it first."), code="not_trained"
        )
    results = []
    for model_copy in listing.copies.select_related("team", "copy"):
        if model_copy.source_version_id == version.pk:
            results.append({"copy": model_copy.pk, "status": "current"})
            continue
        try:
            _update_copy(caller=caller, listing=listing, model_copy=model_copy, version=version)
        except InsufficientCredits:
            ModelCopy.objects.filter(pk=model_copy.pk).update(
                update_skipped_at=timezone.now(), update_skipped_version=version.number
            )
            _tell_skipped(listing=listing, model_copy=model_copy)
            results.append({"copy": model_copy.pk, "status": "skipped_no_credit"})
        else:
            results.append({"copy": model_copy.pk, "status": "updated"})
    logger.info("listing %s: copies updated to v%s: %s", listing.pk, version.number, results)
    return results


def _update_copy(*, caller: Caller, listing: Listing, model_copy: ModelCopy, version: Any) -> None:
    buyer = model_copy.team
    _require_credit(listing, buyer, listing.copy_update_price)
    copied = None
    try:
        with transaction.atomic():
            copied = copies.machine_copy_update(
                source=listing.model,
                copy=model_copy.copy,
                created_by_id=caller.user_id,
                origin={"marketplace_listing": listing.pk, "title": listing.title},
            )
            ModelCopy.objects.filter(pk=model_copy.pk).update(
                source_version=version, update_skipped_at=None, update_skipped_version=None
            )
            _sell(
                listing=listing,
                buyer=buyer,
                kind=Operation.Kind.MODEL_COPY_UPDATE,
                use=ListingUse.Kind.MODEL_COPY_UPDATE,
                amount=listing.copy_update_price,
                caller=caller,
                # One charge per copy and version, however often the owner pushes.
                idempotency_key=f"marketplace:copy-update:{model_copy.pk}:{version.pk}",
                description=_("Update of “%(title)s” to v%(number)s")
                % {"title": listing.title, "number": version.number},
            )
    except BaseException:
        if copied is not None:
            copies.copy_files_remove(storage_dir=copied.storage_dir)
        raise


def _tell_skipped(*, listing: Listing, model_copy: ModelCopy) -> None:
    """E-mail the copy team's owners and admins that an update waits for credit."""
    recipients = list(
        Membership.objects.filter(
            team_id=model_copy.team_id,
            role__in=[Membership.Role.OWNER, Membership.Role.ADMIN],
        ).values_list("user__email", flat=True)
    )
    if not recipients:
        return
    subject = _("An update of “%(title)s” waits for credit") % {"title": listing.title}
    body = _(
        "The seller of “%(title)s” published a new version, but your team “%(team)s” did not "
        "have the %(price)s %(currency)s the update costs, so your copy “%(model)s” keeps its "
        "version. Add credit on the billing page: the seller's next update will reach you."
    ) % {
        "title": listing.title,
        "team": model_copy.team.name,
        "price": listing.copy_update_price,
        "currency": settings.MLMANAGER_BILLING_CURRENCY,
        "model": model_copy.copy.name,
    }
    transaction.on_commit(lambda: send_mail(subject, body, None, recipients, fail_silently=True))
