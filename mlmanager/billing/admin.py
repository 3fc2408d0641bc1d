"""Billing in the Django admin (/admin/), for staff.

Prices are versioned by adding rows: a price that is in force or was used by an operation can
no longer be edited or deleted (past operations keep the price they were charged at); add a row
valid from a later moment instead. Plans are editable, and an account's plan is the one field
of an account staff may change. Accounts, operations, entries, reservations and payments are
read-only: money moves only through the ledger's services (an operation is undone by the
"Reverse" action, which writes a refund).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mlmanager.billing.models import (
    Account,
    Coupon,
    CouponRedemption,
    DailyUsage,
    LedgerEntry,
    Operation,
    Payment,
    Plan,
    Price,
    Reservation,
)
from mlmanager.billing.services import ledger
from mlmanager.core.admin import TIMESTAMPS, ReadOnlyAdmin
from mlmanager.core.errors import ApplicationError


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "is_default",
        "max_concurrent_jobs",
        "max_storage_mb",
        "max_predictions_per_day",
        "max_api_requests_per_minute",
    ]
    readonly_fields = TIMESTAMPS


def price_is_fixed(price: Price) -> bool:
    """In force already, or named by an operation's details: charges may have used it."""
    if price.valid_from <= timezone.now():
        return True
    return Operation.objects.filter(details__price_id=price.pk).exists()


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ["key", "amount", "valid_from", "created_by", "created_at"]
    list_filter = ["key"]
    readonly_fields = ["created_by", "created_at"]

    def has_change_permission(self, request: HttpRequest, obj: Price | None = None) -> bool:
        if obj is not None and price_is_fixed(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Price | None = None) -> bool:
        if obj is not None and price_is_fixed(obj):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Price, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "kind",
        "currency",
        "balance",
        "promotional_balance",
        "reserved",
        "available_display",
        "plan",
    ]
    list_filter = ["kind", "plan"]
    search_fields = ["team__name"]
    list_select_related = ["team", "plan"]
    readonly_fields = (
        "kind",
        "team",
        "currency",
        "balance",
        "promotional_balance",
        "reserved",
        *TIMESTAMPS,
    )

    @admin.display(description=_("available"))
    def available_display(self, account: Account) -> Any:
        return account.available

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    fields = ("account", "bucket", "amount")
    readonly_fields = ("account", "bucket", "amount")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description=_("Reverse (refund) the selected operations"))
def reverse_operations(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Operation]
) -> None:
    for operation in queryset:
        try:
            ledger.operation_reverse(
                operation=operation,
                created_by_id=request.user.pk,
                reason=str(_("Reversed by staff in the admin")),
            )
        except ApplicationError as error:
            modeladmin.message_user(
                request, f"#{operation.pk}: {error.message}", level=messages.ERROR
            )


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "team", "description", "created_by", "created_at"]
    list_filter = ["kind"]
    search_fields = ["description", "idempotency_key", "team__name"]
    list_select_related = ["team", "created_by"]
    inlines = [LedgerEntryInline]
    actions = [reverse_operations]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "operation", "account", "bucket", "amount"]
    list_filter = ["bucket", "account__kind"]
    list_select_related = ["operation", "account__team"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["key", "team", "kind", "amount", "status", "operation", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["key"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CouponRedemptionInline(admin.TabularInline):
    model = CouponRedemption
    fields = ("team", "redeemed_by", "operation", "created_at")
    readonly_fields = ("team", "redeemed_by", "operation", "created_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = ["code", "amount", "uses", "max_uses", "expires_at", "created_at"]
    search_fields = ["code"]
    readonly_fields = ("uses", "created_by", *TIMESTAMPS)
    inlines = [CouponRedemptionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Once created, the code and amount are what teams redeemed: fixed.
        fixed = ["code", "amount"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: Coupon, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or not obj.uses


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["provider", "reference", "team", "amount", "recorded_by", "created_at"]
    list_filter = ["provider"]
    search_fields = ["reference", "team__name"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CouponRedemption)
class CouponRedemptionAdmin(ReadOnlyAdmin):
    list_display = ["coupon", "team", "redeemed_by", "operation", "created_at"]
    search_fields = ["coupon__code", "team__name"]
    list_select_related = ["coupon", "team", "redeemed_by", "operation"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyAdmin):
    list_display = ["team", "day", "predictions"]
    list_filter = ["day"]
    search_fields = ["team__name"]
    list_select_related = ["team"]
