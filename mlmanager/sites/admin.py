"""Sites in the Django admin (/admin/): staff read what teams set up and what devices sent;
changes go through the pages and the API, whose services check roles and record the audit."""

from __future__ import annotations

from django.contrib import admin

from mlmanager.core.admin import ReadOnlyAdmin
from mlmanager.sites.models import (
    CalibrationRecord,
    DeadLetter,
    DeviceKey,
    IngestBatch,
    ProductionRecord,
    RetentionPolicy,
    Sensor,
    Site,
    SiteCommand,
    SiteMembership,
)


@admin.register(Site)
class SiteAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "team", "status", "producing", "capacity", "capacity_unit"]
    list_filter = ["status"]
    search_fields = ["name", "team__name", "location"]
    list_select_related = ["team"]


@admin.register(SiteMembership)
class SiteMembershipAdmin(ReadOnlyAdmin):
    list_display = ["id", "site", "user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["site__name", "user__email"]
    list_select_related = ["site", "user"]


@admin.register(Sensor)
class SensorAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "site", "sensor_type", "device_id", "is_active", "last_timestamp"]
    list_filter = ["sensor_type", "is_active"]
    search_fields = ["name", "device_id", "site__name"]
    list_select_related = ["site"]


@admin.register(CalibrationRecord)
class CalibrationRecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "sensor", "reference_value", "previous_reading", "calibration_offset"]
    search_fields = ["sensor__name"]
    list_select_related = ["sensor"]


@admin.register(ProductionRecord)
class ProductionRecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "site", "date", "actual"]
    search_fields = ["site__name"]
    list_select_related = ["site"]


@admin.register(IngestBatch)
class IngestBatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "caller_key", "batch_id", "created_at"]
    search_fields = ["batch_id", "caller_key"]
    show_full_result_count = False


@admin.register(DeviceKey)
class DeviceKeyAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "prefix", "site", "last_used_at", "revoked_at"]
    list_select_related = ["site"]
    search_fields = ["name", "prefix", "site__name"]
    exclude = ["key_hash"]


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ["id", "topic", "reason", "site", "received_at"]
    search_fields = ["topic", "reason"]
    date_hierarchy = "received_at"
    show_full_result_count = False


@admin.register(SiteCommand)
class SiteCommandAdmin(ReadOnlyAdmin):
    list_display = ["id", "command", "site", "topic", "published_at", "error", "created_at"]
    search_fields = ["command", "site__name"]
    list_select_related = ["site"]


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin[RetentionPolicy]):
    """Staff set how long a team keeps readings (the setting's default applies without a row)."""

    list_display = ["team", "raw_days", "rollup_days"]
    search_fields = ["team__name"]
    list_select_related = ["team"]
