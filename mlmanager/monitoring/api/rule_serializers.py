"""Output shapes and fields of the alert rules and alerts API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mlmanager.monitoring.models import Alert, AlertEvent, AlertRule, Severity


def inline_enum(values: list[str]) -> dict[str, Any]:
    """A string enum kept inline in the schema (a component "SeverityEnum" / "StateEnum"
    would collide with other apps' fields of those names)."""
    return {"allOf": [{"type": "string", "enum": values}], "description": ", ".join(values)}


@extend_schema_field(inline_enum(Severity.values))
class SeverityField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Severity.choices, **kwargs)


@extend_schema_field(inline_enum(AlertRule.State.values))
class RuleStateField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=AlertRule.State.choices, **kwargs)


@extend_schema_field(inline_enum(Alert.State.values))
class AlertStateField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Alert.State.choices, **kwargs)


@extend_schema_field(inline_enum(AlertEvent.Kind.values))
class EventKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=AlertEvent.Kind.choices, **kwargs)


@extend_schema_field({"type": "array", "items": {"type": "integer"}})
class SeriesIdsField(serializers.Field):  # type: ignore[type-arg]
    """The ids a rule's series name of one kind (from the series, no query)."""

    def __init__(self, *, kind: str, key: str, **kwargs: Any) -> None:
        self.kind, self.key = kind, key
        kwargs.setdefault("read_only", True)
        kwargs["source"] = "series"
        super().__init__(**kwargs)

    def to_representation(self, series: Any) -> list[int]:
        return sorted({spec[self.key] for spec in series or [] if spec.get("kind") == self.kind})


class RuleOutputSerializer(serializers.ModelSerializer[AlertRule]):
    severity = SeverityField(read_only=True)
    state = RuleStateField(read_only=True)
    series = serializers.JSONField(read_only=True, help_text="The series, defaults filled in.")
    condition = serializers.JSONField(read_only=True)
    notify = serializers.JSONField(read_only=True)
    escalate_to = serializers.JSONField(read_only=True)
    sensors = SeriesIdsField(kind="sensor", key="sensor", help_text="The sensors it watches.")
    models = SeriesIdsField(kind="model", key="model", help_text="The models it watches.")
    builtin = serializers.CharField(
        read_only=True, help_text="sensor_warning_band, sensor_critical_band, or empty."
    )
    muted = serializers.BooleanField(read_only=True)
    last_value = serializers.SerializerMethodField(
        help_text="What the rule sees now: for a rule on a sensor's last value, the sensor's "
        "latest value; else the value at its last evaluation."
    )
    # A periodic rule's row is written only when its state changes: when it was last and is
    # next evaluated follows from its period and the scheduler's slots.
    last_evaluated_at = serializers.DateTimeField(
        source="shown_last_evaluated_at", read_only=True, allow_null=True
    )
    next_evaluation_at = serializers.DateTimeField(
        source="shown_next_evaluation_at", read_only=True, allow_null=True
    )

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "team",
            "name",
            "description",
            "series",
            "condition",
            "severity",
            "for_s",
            "hysteresis",
            "evaluate_every_s",
            "notify",
            "escalate_after_s",
            "escalate_to",
            "enabled",
            "builtin",
            "site",
            "sensors",
            "models",
            "state",
            "state_since",
            "last_value",
            "last_evaluated_at",
            "next_evaluation_at",
            "muted",
            "muted_at",
            "muted_until",
            "created_by",
            "created_at",
            "updated_at",
        ]

    def get_last_value(self, rule: AlertRule) -> float | None:
        # `current_value` comes with the selectors' rules (with_current_values); a rule a
        # service just returned is read again for it.
        if not hasattr(rule, "current_value"):
            from mlmanager.monitoring.selectors import with_current_values

            found = with_current_values(AlertRule.objects.filter(pk=rule.pk)).first()
            return found.current_value if found is not None else rule.last_value  # type: ignore[attr-defined]
        return rule.current_value  # type: ignore[attr-defined, no-any-return]


class CommentOutputSerializer(serializers.ModelSerializer[AlertEvent]):
    email = serializers.EmailField(source="user.email", read_only=True, allow_null=True)

    class Meta:
        model = AlertEvent
        fields = ["id", "user", "email", "text", "created_at"]


class AlertOutputSerializer(serializers.ModelSerializer[Alert]):
    severity = SeverityField(read_only=True)
    state = AlertStateField(read_only=True)
    model = serializers.IntegerField(source="machine_id", read_only=True, allow_null=True)
    acknowledged = serializers.BooleanField(read_only=True)
    muted = serializers.BooleanField(read_only=True)
    comments = CommentOutputSerializer(
        source="comment_list", many=True, read_only=True, help_text="Its comments, oldest first."
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "site",
            "model",
            "sensor",
            "severity",
            "state",
            "title",
            "message",
            "value",
            "acknowledged",
            "acknowledged_by",
            "acknowledged_at",
            "muted",
            "muted_until",
            "assigned_to",
            "started_at",
            "firing_at",
            "resolved_at",
            "resolved_by",
            "comments",
            "created_at",
        ]


class AlertEventOutputSerializer(serializers.ModelSerializer[AlertEvent]):
    kind = EventKindField(read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True, allow_null=True)
    # Declared fields leave the class (DRF's metaclass): `.data` stays the serializer's own.
    data = serializers.JSONField(read_only=True)  # type: ignore[assignment]

    class Meta:
        model = AlertEvent
        fields = ["id", "kind", "user", "email", "text", "data", "created_at"]
