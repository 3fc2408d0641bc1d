"""Serializers of the reports, webhooks, notification preferences and notifications API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mlmanager.core.api import IdField, StrictCharField, TimeOfDayField
from mlmanager.monitoring.models import (
    Notification,
    NotificationPreference,
    Report,
    ReportDelivery,
    Severity,
    Webhook,
)


class StrictBooleanField(serializers.BooleanField):
    """true or false as JSON has them (DRF's BooleanField also takes 0, 1, "yes"...)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


# Inline (allOf): a component of its own would be a second name for the alerts' severities.
@extend_schema_field(
    {"allOf": [{"type": "string", "enum": Severity.values}], "description": "and above"}
)
class MinSeverityField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Severity.choices, **kwargs)


@extend_schema_field({"type": "string", "enum": Report.Frequency.values})
class FrequencyField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Report.Frequency.choices, **kwargs)


# --- reports -------------------------------------------------------------------------------------


class ReportInputSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=200)
    chart = IdField(required=False, allow_null=True, help_text="A chart (or give a dashboard).")
    dashboard = IdField(required=False, allow_null=True, help_text="A dashboard (or give a chart).")
    frequency = FrequencyField(required=False)
    weekday = serializers.IntegerField(
        required=False, min_value=0, max_value=6, help_text="Weekly reports: 0 = Monday."
    )
    time_of_day = TimeOfDayField(
        help_text="When it is sent, in each recipient's own time zone (HH:MM)."
    )
    recipients = serializers.ListField(
        child=IdField(),
        required=False,
        max_length=100,
        help_text="User ids: members of the team who see the chart or dashboard (default: you).",
    )
    active = StrictBooleanField(required=False)


class ReportUpdateSerializer(ReportInputSerializer):
    name = StrictCharField(required=False, max_length=200)
    time_of_day = TimeOfDayField(required=False)


class ReportDeliverySerializer(serializers.ModelSerializer[ReportDelivery]):
    class Meta:
        model = ReportDelivery
        fields = ["id", "recipient", "slot", "sent_at", "error"]


class ReportSentSerializer(serializers.Serializer[Any]):
    deliveries = ReportDeliverySerializer(many=True, help_text="One per recipient.")


class ReportOutputSerializer(serializers.ModelSerializer[Report]):
    frequency = FrequencyField(read_only=True)
    recipients = serializers.SerializerMethodField()
    last_sent_at = serializers.SerializerMethodField()
    time_of_day = TimeOfDayField(read_only=True)

    class Meta:
        model = Report
        fields = [
            "id",
            "team",
            "name",
            "chart",
            "dashboard",
            "frequency",
            "weekday",
            "time_of_day",
            "recipients",
            "active",
            "last_sent_at",
            "created_by",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_recipients(self, report: Report) -> list[int]:
        return sorted(user.pk for user in report.recipients.all())

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_sent_at(self, report: Report) -> Any:
        sent = [d.sent_at for d in report.deliveries.all() if d.sent_at is not None]
        return serializers.DateTimeField().to_representation(max(sent)) if sent else None


# --- webhooks ------------------------------------------------------------------------------------


class WebhookOutputSerializer(serializers.ModelSerializer[Webhook]):
    class Meta:
        model = Webhook
        fields = ["id", "team", "name", "url", "active", "created_at", "updated_at"]


class WebhookCreatedSerializer(WebhookOutputSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="Signs every delivery (X-MLManager-Signature); shown in this answer only.",
    )

    class Meta(WebhookOutputSerializer.Meta):
        fields = [*WebhookOutputSerializer.Meta.fields, "secret"]


class WebhookTestOutputSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField(help_text="The receiver answered 2xx.")
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


# --- preferences and notifications ---------------------------------------------------------------


class PreferenceSerializer(serializers.Serializer[Any]):
    """The caller's preferences in one team (the defaults until they save some)."""

    team = serializers.IntegerField(read_only=True, source="team_id")
    min_severity = MinSeverityField(
        required=False, help_text="Notify of alerts of this severity and above."
    )
    sites = serializers.ListField(
        child=IdField(),
        required=False,
        max_length=500,
        help_text="Only alerts of these sites (empty: every site you see).",
    )
    models = serializers.ListField(
        child=IdField(),
        required=False,
        max_length=500,
        help_text="Only alerts of these models (empty: every model).",
    )
    email = StrictBooleanField(required=False)
    in_app = StrictBooleanField(required=False)
    quiet_start = serializers.TimeField(
        required=False, allow_null=True, help_text="Quiet hours start (your time zone)."
    )
    quiet_end = serializers.TimeField(
        required=False,
        allow_null=True,
        help_text="Quiet hours end: e-mails wait until then (emergencies are never held).",
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        preference: NotificationPreference = instance
        saved = preference.pk is not None
        field = serializers.TimeField()
        return {
            "team": preference.team_id,
            "min_severity": preference.min_severity,
            "sites": sorted(site.pk for site in preference.sites.all()) if saved else [],
            "models": sorted(m.pk for m in preference.machines.all()) if saved else [],
            "email": preference.email,
            "in_app": preference.in_app,
            "quiet_start": field.to_representation(preference.quiet_start)
            if preference.quiet_start
            else None,
            "quiet_end": field.to_representation(preference.quiet_end)
            if preference.quiet_end
            else None,
        }


class NotificationOutputSerializer(serializers.ModelSerializer[Notification]):
    severity = serializers.SerializerMethodField()
    event = serializers.SerializerMethodField()
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = [
            "id",
            "team",
            "alert",
            "event",
            "severity",
            "subject",
            "body",
            "created_at",
            "read",
            "read_at",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_severity(self, notification: Notification) -> str | None:
        return (notification.payload.get("alert") or {}).get("severity")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_event(self, notification: Notification) -> str | None:
        return notification.payload.get("event")

    def get_read(self, notification: Notification) -> bool:
        return notification.read_at is not None


class NotificationReadInputSerializer(serializers.Serializer[Any]):
    ids = serializers.ListField(
        child=IdField(),
        required=False,
        max_length=500,
        help_text="The notifications to mark read (default: all of yours).",
    )


class NotificationReadOutputSerializer(serializers.Serializer[Any]):
    marked = serializers.IntegerField(help_text="How many were unread.")
