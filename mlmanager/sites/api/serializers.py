"""Fields and output serializers shared by the sites API's views."""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers

from mlmanager.core.errors import Conflict
from mlmanager.sites.models import (
    CalibrationRecord,
    DeviceKey,
    ProductionRecord,
    Sensor,
    Site,
    SiteCommand,
    SiteMembership,
)

# --- fields -------------------------------------------------------------------------------------


def inline_enum(values: list[str]) -> dict[str, Any]:
    """A string enum the schema keeps inline: drf-spectacular turns every enum property into a
    component named after the field, and "StatusEnum" / "RoleEnum" are the jobs' and the team
    memberships' already (a collision it warns about). Inside allOf it stays where it is (with
    a description beside it: an allOf alone is unwrapped again)."""
    return {"allOf": [{"type": "string", "enum": values}], "description": ", ".join(values)}


@extend_schema_field(inline_enum(Site.Status.values))
class SiteStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Site.Status.choices, **kwargs)


@extend_schema_field({"type": "string", "enum": Sensor.Type.values})
class SensorTypeField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Sensor.Type.choices, **kwargs)


@extend_schema_field(inline_enum(SiteMembership.Role.values))
class SiteRoleField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=SiteMembership.Role.choices, **kwargs)


@extend_schema_field({"type": "number", "format": "double", "not": {"enum": [0]}})
class NonZeroFloatField(serializers.FloatField):
    """A finite number other than 0 (a calibration multiplier; the service refuses 0 too)."""

    def to_internal_value(self, data: Any) -> float:
        value = FiniteFloatField().to_internal_value(data)
        if value == 0:
            raise serializers.ValidationError(_("The calibration multiplier cannot be 0."))
        return value


class StrictBooleanField(serializers.BooleanField):
    """true or false as JSON has them: DRF's BooleanField also takes 0, 1, "yes", "on"..."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class FiniteFloatField(serializers.FloatField):
    """A number that is finite: "nan" or "inf" as text would pass DRF's FloatField."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return float(value)


def duplicate_is_conflict(error: DjangoValidationError) -> None:
    """A name or device id already taken is 409 `already_exists`, as when a concurrent request
    takes it first (services' _clean_and_save): the request was valid, the state refused it."""
    errors = getattr(error, "error_dict", {}).values()
    if any(item.code in ("unique", "unique_together") for items in errors for item in items):
        raise Conflict(error.messages[0], code="already_exists") from None


# --- output serializers -------------------------------------------------------------------------


class SiteOutputSerializer(serializers.ModelSerializer[Site]):
    status = SiteStatusField(read_only=True)
    producing = serializers.BooleanField(
        read_only=True, help_text="Whether production runs (start_production, emergency_stop)."
    )

    class Meta:
        model = Site
        fields = [
            "id",
            "team",
            "name",
            "location",
            "latitude",
            "longitude",
            "capacity",
            "capacity_unit",
            "status",
            "description",
            "producing",
            "created_at",
        ]


class SensorOutputSerializer(serializers.ModelSerializer[Sensor]):
    sensor_type = SensorTypeField(read_only=True)

    class Meta:
        model = Sensor
        fields = [
            "id",
            "site",
            "name",
            "sensor_type",
            "unit",
            "device_id",
            "location",
            "is_active",
            "sampling_interval_s",
            "warning_min",
            "warning_max",
            "critical_min",
            "critical_max",
            "calibration_offset",
            "calibration_multiplier",
            "metadata",
        ]


class SiteAlertOutputSerializer(serializers.Serializer[Any]):
    """A firing alert in a site's status (the alerts themselves are the monitoring app's:
    `/api/v1/alerts/`), with the fields of issue 14's alert."""

    id = serializers.IntegerField()
    site = serializers.IntegerField(source="site_id")
    sensor = serializers.IntegerField(source="sensor_id", allow_null=True)
    severity = serializers.ChoiceField(choices=["info", "warning", "critical", "emergency"])
    title = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField(source="started_at")
    acknowledged = serializers.BooleanField()
    acknowledged_by = serializers.IntegerField(source="acknowledged_by_id", allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)


class MemberOutputSerializer(serializers.ModelSerializer[SiteMembership]):
    email = serializers.EmailField(source="user.email", read_only=True)
    role = SiteRoleField(read_only=True)

    class Meta:
        model = SiteMembership
        fields = ["user", "email", "role", "created_at"]


class DeviceKeyOutputSerializer(serializers.ModelSerializer[DeviceKey]):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = DeviceKey
        fields = [
            "id",
            "site",
            "name",
            "prefix",
            "is_active",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]


class ProductionOutputSerializer(serializers.ModelSerializer[ProductionRecord]):
    efficiency = serializers.SerializerMethodField()

    class Meta:
        model = ProductionRecord
        fields = ["date", "actual", "efficiency", "recorded_by", "updated_at"]

    def get_efficiency(self, record: ProductionRecord) -> float | None:
        """actual / the site's capacity per day; null without a capacity."""
        capacity = record.site.capacity
        return record.actual / capacity if capacity else None


class CommandOutputSerializer(serializers.ModelSerializer[SiteCommand]):
    class Meta:
        model = SiteCommand
        fields = [
            "id",
            "site",
            "command",
            "payload",
            "topic",
            "sent_by",
            "created_at",
            "published_at",
            "error",
        ]


class CalibrationOutputSerializer(serializers.ModelSerializer[CalibrationRecord]):
    class Meta:
        model = CalibrationRecord
        fields = [
            "id",
            "sensor",
            "calibrated_by",
            "reference_value",
            "previous_reading",
            "previous_offset",
            "calibration_offset",
            "calibration_multiplier",
            "created_at",
        ]


class IngestAnswerSerializer(serializers.Serializer[Any]):
    class RejectedSerializer(serializers.Serializer[Any]):
        index = serializers.IntegerField(help_text="The reading's position in the request (0..).")
        code = serializers.CharField(help_text="e.g. unknown_sensor, not_finite, invalid_value.")
        message = serializers.CharField()

    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = RejectedSerializer(many=True)
