"""The marketplace: what a team offers other teams (a model's prediction API, the data it was
trained on), and what buyers got from it (data purchases, copies of the model, each use).

Money moves only through billing's ledger; the rows here say what was sold and point at the
ledger's operation (none with billing off), so the owner's usage and income are read from them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mlmanager.billing.money import MAX_DIGITS, PLACES
from mlmanager.core.models import TeamOwnedModel, TimeStampedModel


class Listing(TeamOwnedModel):
    """A model of the team offered on the marketplace: its prediction API (`price` per 1 000
    rows) or its training data (`price` per download, `sample_rows` free for everyone).

    `team` is always the model's team. `copy_price` set offers copies of the model (its active
    version) into a buyer's team, `copy_update_price` is what each copy's team pays when the
    owner pushes a newer version. `sample_input` is one row of inputs the listing page's "try
    it" form sends; `sample_rows` is `{"columns": [...], "rows": [[...], ...]}`, taken from the
    dataset when the data is published. A model is listed at most once per kind.
    """

    class Kind(models.TextChoices):
        PREDICTION_API = "prediction_api", _("Prediction API")
        DATA_SOURCE = "data_source", _("Data source")

    class Category(models.TextChoices):
        FINANCE = "finance", _("Finance")
        HEALTH = "health", _("Health")
        RETAIL = "retail", _("Retail and marketing")
        INDUSTRY = "industry", _("Industry and energy")
        SCIENCE = "science", _("Science")
        OTHER = "other", _("Other")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.ForeignKey(
        "machines.Machine", on_delete=models.CASCADE, related_name="marketplace_listings"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.OTHER)
    price = models.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    copy_price = models.DecimalField(
        max_digits=MAX_DIGITS, decimal_places=PLACES, null=True, blank=True
    )
    copy_update_price = models.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES, default=0)
    sample_input = models.JSONField(default=dict, blank=True)
    sample_rows = models.JSONField(default=dict, blank=True)
    is_published = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["model", "kind"], name="listing_one_per_model_kind"),
            models.CheckConstraint(condition=Q(price__gte=0), name="listing_price_not_negative"),
            models.CheckConstraint(
                condition=Q(copy_price__isnull=True) | Q(copy_price__gte=0),
                name="listing_copy_price_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(copy_update_price__gte=0),
                name="listing_copy_update_price_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["is_published", "kind", "category"])]

    def __str__(self) -> str:
        return self.title

    @property
    def offers_copies(self) -> bool:
        return self.copy_price is not None


class DataPurchase(TeamOwnedModel):
    """A buyer team's right to download a data source listing's data (`team` is the buyer),
    bought once; `operation` is the ledger's charge (none with billing off or a free listing)."""

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="purchases")
    bought_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    price = models.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    operation = models.ForeignKey(
        "billing.Operation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["listing", "team"], name="data_purchase_once_per_team")
        ]

    def __str__(self) -> str:
        return f"{self.listing_id} bought by team {self.team_id}"


class ModelCopy(TeamOwnedModel):
    """A copy of a listed model in a buyer's team (`team`): `copy` is the buyer's own model,
    `source_version` the owner's version it holds now (updated by the owner's pushes).
    `update_skipped_at` is when a push skipped this copy because its team's credit was short,
    and `update_skipped_version` the version it would have received (the buyer is e-mailed and
    sees it on the marketplace page; the owner's next push tries again)."""

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="copies")
    copy = models.OneToOneField(
        "machines.Machine", on_delete=models.CASCADE, related_name="marketplace_origin"
    )
    source_version = models.ForeignKey(
        "machines.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    copied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    update_skipped_at = models.DateTimeField(null=True, blank=True)
    update_skipped_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"copy {self.copy_id} of listing {self.listing_id}"


class ListingUse(TimeStampedModel):
    """One sale of a listing: a prediction call (`rows`), a data purchase, a copy or a copy
    update, by `buyer` (a team), at `amount` (what the buyer paid; 0 with billing off or for
    the owner's own team). The owner's usage and income pages read these; `operation` is the
    ledger's record of the money (its entries say what the owner was credited)."""

    class Kind(models.TextChoices):
        PREDICTION = "prediction", _("Prediction")
        DATA_PURCHASE = "data_purchase", _("Data purchase")
        MODEL_COPY = "model_copy", _("Model copy")
        MODEL_COPY_UPDATE = "model_copy_update", _("Model copy update")

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="uses")
    buyer = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    rows = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES, default=0)
    operation = models.ForeignKey(
        "billing.Operation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["listing", "kind"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="listing_use_amount_positive")
        ]

    def __str__(self) -> str:
        return f"{self.kind} of listing {self.listing_id} by team {self.buyer_id}"
