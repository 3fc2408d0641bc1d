"""Charts, rules, alerts, notifications and reports in the Django admin (/admin/): staff read
them; changes go through the pages and the API, whose services check roles, keep rules'
state and the alerts' timelines consistent and record the audit."""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from mlmanager.core.admin import ReadOnlyAdmin
from mlmanager.monitoring.models import (
    Alert,
    AlertEvent,
    AlertRule,
    Chart,
    Dashboard,
    ModelAttachment,
    Notification,
    NotificationPreference,
    Report,
    ReportDelivery,
    Webhook,
)


@admin.register(Chart)
class ChartAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "team", "site", "created_at"]
    search_fields = ["name", "team__name"]
    list_select_related = ["team", "site"]


@admin.register(Dashboard)
class DashboardAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "team", "site", "created_at"]
    search_fields = ["name", "team__name"]
    list_select_related = ["team", "site"]


@admin.register(AlertRule)
class AlertRuleAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "team", "severity", "state", "builtin", "enabled", "muted_at"]
    list_filter = ["state", "severity", "builtin", "enabled"]
    search_fields = ["name", "team__name"]
    list_select_related = ["team"]


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "user", "text")
    readonly_fields = ("created_at", "kind", "user", "text")


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["id", "title", "team", "severity", "state", "started_at", "acknowledged_at"]
    list_filter = ["state", "severity"]
    search_fields = ["title", "team__name"]
    list_select_related = ["team"]
    date_hierarchy = "started_at"
    inlines = [AlertEventInline]


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "alert", "kind", "user", "created_at"]
    list_filter = ["kind"]
    search_fields = ["alert__title", "text"]
    list_select_related = ["alert", "user"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "team", "min_severity", "email", "in_app"]
    search_fields = ["user__email", "team__name"]
    list_select_related = ["user", "team"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "channel", "status", "user", "webhook", "attempts", "created_at"]
    list_filter = ["channel", "status"]
    search_fields = ["subject", "user__email"]
    list_select_related = ["user", "webhook"]


@admin.register(Webhook)
class WebhookAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "team", "url", "active"]
    search_fields = ["name", "url", "team__name"]
    exclude = ["secret"]
    # The view-only page still builds the form: its URL field states its scheme.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_select_related = ["team"]


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "team", "frequency", "time_of_day", "active"]
    list_filter = ["frequency", "active"]
    search_fields = ["name", "team__name"]
    list_select_related = ["team"]


@admin.register(ReportDelivery)
class ReportDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "report", "recipient", "slot", "sent_at"]
    search_fields = ["report__name", "recipient__email"]
    list_select_related = ["report", "recipient"]


@admin.register(ModelAttachment)
class ModelAttachmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "site", "machine", "enabled", "last_predicted_at"]
    search_fields = ["site__name", "machine__name"]
    list_select_related = ["site", "machine"]
