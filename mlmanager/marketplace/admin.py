"""The marketplace in the Django admin (/admin/): staff read listings and sales, and may hide
a listing; purchases, copies and uses are records of sales (their money is in the ledger)."""

from __future__ import annotations

from django.contrib import admin

from mlmanager.core.admin import ReadOnlyAdmin
from mlmanager.marketplace.models import DataPurchase, Listing, ListingUse, ModelCopy


@admin.register(Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "team", "category", "price", "copy_price", "is_published"]
    list_filter = ["kind", "category", "is_published"]
    search_fields = ["title", "description", "team__name"]
    list_select_related = ["team"]
    # Staff may hide a listing (or edit its text); what it sells and its team stay as published.
    readonly_fields = [
        field.name
        for field in Listing._meta.fields
        if field.name not in ("title", "description", "category", "is_published")
    ]


@admin.register(DataPurchase)
class DataPurchaseAdmin(ReadOnlyAdmin):
    list_display = ["listing", "team", "price", "operation", "created_at"]
    list_select_related = ["listing", "team"]


@admin.register(ModelCopy)
class ModelCopyAdmin(ReadOnlyAdmin):
    list_display = ["listing", "team", "copy", "source_version", "update_skipped_at"]
    list_select_related = ["listing", "team", "copy", "source_version"]


@admin.register(ListingUse)
class ListingUseAdmin(ReadOnlyAdmin):
    list_display = ["listing", "buyer", "kind", "rows", "amount", "operation", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["listing", "buyer"]
