"""Billing: accounts, a double-entry ledger, reservations, versioned prices, coupons and plans.

Every movement of money is an `Operation` whose `LedgerEntry` rows sum to zero across
accounts, written in the transaction of the action it pays for and never edited: a mistake is
undone by a new operation that reverses it. An account's balances are the sums of its entries,
kept on the row so a charge reads and locks one row (`services.ledger`); the database refuses a
team account below zero (CheckConstraint), and on PostgreSQL charges lock the rows first
(`select_for_update`) so concurrent debits queue instead of failing.

Three kinds of account: one per team; the platform's own (what it earns: training,
predictions, commissions); and the outside world's (money coming in: staff credits, payments,
coupons — its balance is minus everything ever brought in, so the books always sum to zero).
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from mlmanager.billing.money import AMOUNT_FIELD
from mlmanager.core.models import TimeStampedModel


class Plan(TimeStampedModel):
    """What a team may use: each limit empty means unlimited. One plan is the default
    (teams without their own plan follow it); without any plan nothing is limited."""

    name = models.CharField(max_length=100, unique=True)
    is_default = models.BooleanField(default=False)
    max_concurrent_jobs = models.PositiveIntegerField(null=True, blank=True)
    max_storage_mb = models.PositiveIntegerField(null=True, blank=True)
    max_predictions_per_day = models.PositiveIntegerField(null=True, blank=True)
    max_api_requests_per_minute = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="plan_one_default"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Account(TimeStampedModel):
    """The money of one team, or the platform's own books (see the module docstring).

    `balance` is bought credit, `promotional_balance` coupon credit (spent first, never paid
    out), `reserved` what running work holds (a training's budget, a consulting contract):
    available = balance + promotional_balance − reserved, never below zero for a team."""

    class Kind(models.TextChoices):
        TEAM = "team", _("Team")
        PLATFORM = "platform", _("Platform")
        OUTSIDE = "outside", _("Outside world")

    kind = models.CharField(max_length=10, choices=Kind.choices)
    team = models.OneToOneField(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="billing_account",
    )
    currency = models.CharField(max_length=3)
    balance = models.DecimalField(default=0, **AMOUNT_FIELD)  # type: ignore[arg-type]
    promotional_balance = models.DecimalField(default=0, **AMOUNT_FIELD)  # type: ignore[arg-type]
    reserved = models.DecimalField(default=0, **AMOUNT_FIELD)  # type: ignore[arg-type]
    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.SET_NULL, related_name="accounts"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="team", team__isnull=False)
                | Q(~Q(kind="team"), team__isnull=True),
                name="billing_account_team_iff_team_kind",
            ),
            models.UniqueConstraint(
                fields=["kind"], condition=~Q(kind="team"), name="billing_account_one_of_each_book"
            ),
            # The invariant money rests on: a team never spends what it does not have.
            models.CheckConstraint(
                condition=Q(kind="outside")
                | Q(
                    balance__gte=0,
                    promotional_balance__gte=0,
                    reserved__gte=0,
                    reserved__lte=F("balance") + F("promotional_balance"),
                ),
                name="billing_account_never_negative",
            ),
        ]

    def __str__(self) -> str:
        return str(self.team) if self.team_id else self.get_kind_display()

    @property
    def available(self) -> Any:
        return self.balance + self.promotional_balance - self.reserved


class Price(models.Model):
    """One price from a moment on. Prices are versioned by adding a row (staff, in the admin):
    an operation keeps the id of the price it used, so past operations keep their price."""

    class Key(models.TextChoices):
        TRAINING_MINUTE = "training_minute", _("Training, per minute")
        TRAINING_MINUTE_LEVEL_1 = "training_minute_level_1", _("Training at level 1, per minute")
        TRAINING_MINUTE_LEVEL_2 = "training_minute_level_2", _("Training at level 2, per minute")
        TRAINING_MINUTE_LEVEL_3 = "training_minute_level_3", _("Training at level 3, per minute")
        TRAINING_MINUTE_LEVEL_4 = "training_minute_level_4", _("Training at level 4, per minute")
        TRAINING_MINUTE_LEVEL_5 = "training_minute_level_5", _("Training at level 5, per minute")
        GPU_MINUTE = "gpu_minute", _("Training on a GPU, per minute")
        PREDICTIONS_1000_ROWS = "predictions_1000_rows", _("Predictions, per 1 000 rows")
        STORAGE_GB_MONTH = "storage_gb_month", _("Storage, per GB and month")
        MARKETPLACE_COMMISSION = "marketplace_commission", _("Marketplace commission (share)")

    key = models.CharField(max_length=40, choices=Key.choices)
    amount = models.DecimalField(**AMOUNT_FIELD)  # type: ignore[arg-type]
    valid_from = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["key", "-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="billing_price_not_negative"),
            models.UniqueConstraint(
                fields=["key", "valid_from"], name="billing_price_one_per_moment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} = {self.amount} from {self.valid_from:%Y-%m-%d %H:%M}"


class OperationQuerySet(models.QuerySet["Operation"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("Ledger operations are never edited; reverse them with a new one.")

    def delete(self) -> NoReturn:
        raise TypeError("Ledger operations are never deleted; reverse them with a new one.")


class Operation(models.Model):
    """One movement of money: its entries sum to zero. Written once, never edited.

    `idempotency_key` (unique per team) makes a retried request charge once: the second
    attempt finds the first's operation and answers with it."""

    class Kind(models.TextChoices):
        TRAINING = "training", _("Training")
        PREDICTION = "prediction", _("Predictions")
        MARKETPLACE_PREDICTION = "marketplace_prediction", _("Marketplace predictions")
        DATA_PURCHASE = "data_purchase", _("Data purchase")
        MODEL_COPY = "model_copy", _("Model copy")
        MODEL_COPY_UPDATE = "model_copy_update", _("Model copy update")
        STORAGE = "storage", _("Storage")
        CONSULTING = "consulting", _("Consulting")
        CREDIT = "credit", _("Credit from a user")
        COUPON = "coupon", _("Coupon")
        BILL_PAYMENT = "bill_payment", _("Bill payment")
        REFUND = "refund", _("Refund")
        ADJUSTMENT = "adjustment", _("Adjustment")

    kind = models.CharField(max_length=30, choices=Kind.choices)
    # The team the operation is about (who pays, or who is credited); empty for the books' own.
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, blank=True)
    description = models.CharField(max_length=300, blank=True)
    # What was paid for: rows, seconds, the job, the listing, the price ids used.
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="billing_operation_idempotency_key_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise TypeError("Ledger operations are never edited; reverse them with a new one.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("Ledger operations are never deleted; reverse them with a new one.")


class LedgerEntryQuerySet(models.QuerySet["LedgerEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("Ledger entries are never edited.")

    def delete(self) -> NoReturn:
        raise TypeError("Ledger entries are never deleted.")


class LedgerEntry(models.Model):
    """One account's side of an operation: positive credits it, negative debits it. `bucket`
    says which balance moved (bought credit or promotional)."""

    class Bucket(models.TextChoices):
        CREDITS = "credits", _("Credits")
        PROMOTIONAL = "promotional", _("Promotional credits")

    operation = models.ForeignKey(Operation, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    bucket = models.CharField(max_length=12, choices=Bucket.choices, default=Bucket.CREDITS)
    amount = models.DecimalField(**AMOUNT_FIELD)  # type: ignore[arg-type]

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="billing_entry_not_zero"),
        ]
        indexes = [models.Index(fields=["account", "operation"], name="billing_entry_account")]

    def __str__(self) -> str:
        return f"{self.account}: {self.amount} ({self.bucket})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise TypeError("Ledger entries are never edited.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("Ledger entries are never deleted.")


class Reservation(TimeStampedModel):
    """Credit held for work that has started and will be charged when it ends: a training
    holds its full budget's cost, a consulting contract its amount. Settling charges what was
    used (never more than held) and releases the rest; a release charges nothing. A
    reservation is not money moving, so it is a hold on the account (`Account.reserved`), not
    ledger entries; its settlement is an operation."""

    class Status(models.TextChoices):
        HELD = "held", _("Held")
        SETTLED = "settled", _("Settled")
        RELEASED = "released", _("Released")

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="reservations")
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=30, choices=Operation.Kind.choices)
    # Names what holds it, unique: "job:<id>" for a training, "consulting:<id>" for a contract.
    key = models.CharField(max_length=100, unique=True)
    # The job whose end settles or releases it (the reaper's way to find work that died).
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount = models.DecimalField(**AMOUNT_FIELD)  # type: ignore[arg-type]
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.HELD)
    operation = models.OneToOneField(
        Operation, null=True, blank=True, on_delete=models.PROTECT, related_name="reservation"
    )
    description = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_reservation_positive")
        ]
        indexes = [
            models.Index(
                fields=["status"], condition=Q(status="held"), name="billing_reservation_held"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.amount} ({self.status})"


class Coupon(TimeStampedModel):
    """Promotional credit a user redeems with a code: once per team, `max_uses` teams in all,
    until `expires_at`."""

    code = models.CharField(max_length=40, unique=True)
    amount = models.DecimalField(**AMOUNT_FIELD)  # type: ignore[arg-type]
    expires_at = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(default=1)
    uses = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_coupon_positive"),
            models.CheckConstraint(
                condition=Q(uses__lte=F("max_uses")), name="billing_coupon_uses"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class CouponRedemption(models.Model):
    """A team redeemed a coupon (once), with the operation that credited it."""

    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="redemptions")
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="+")
    operation = models.OneToOneField(Operation, on_delete=models.PROTECT, related_name="+")
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["coupon", "team"], name="billing_coupon_once_per_team")
        ]

    def __str__(self) -> str:
        return f"{self.coupon} by {self.team}"


class Payment(models.Model):
    """A payment received through a provider (`billing.providers`): the manual provider is a
    staff member recording a bank transfer; a card provider would record its charge id."""

    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(max_length=30)
    reference = models.CharField(max_length=200)
    amount = models.DecimalField(**AMOUNT_FIELD)  # type: ignore[arg-type]
    operation = models.OneToOneField(Operation, on_delete=models.PROTECT, related_name="payment")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "reference"], name="billing_payment_once"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_payment_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.reference}: {self.amount}"


class DailyUsage(models.Model):
    """Rows predicted by a team on one day (UTC), for the predictions-per-day quota and the
    usage page; counted with one upsert per request."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    predictions = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "day"], name="billing_daily_usage_once")
        ]

    def __str__(self) -> str:
        return f"{self.team_id} {self.day}: {self.predictions}"
