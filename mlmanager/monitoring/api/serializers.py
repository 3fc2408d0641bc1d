"""Output shapes and input fields of the monitoring API, a section per resource (other
resources keep theirs in rule_serializers and notification_serializers)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mlmanager.core.filters import MAX_ID
from mlmanager.monitoring.models import Chart, Dashboard

# --- charts and dashboards -----------------------------------------------------------------------

SERIES_HELP = (
    'A list of series: {"kind": "sensor", "sensor": id, "aggregation": '
    '"avg|min|max|last|count", "period_s": 60} (period_s 0: the raw readings) or {"kind": '
    '"model", "model": id, "signal": "volume|prediction_mean|class_share|latency_p95|accuracy|'
    'drift_psi", "label"?, "input"?, "output"?, "period_s"?: 3600}, or (charts only) {"kind": '
    '"dataset", "dataset": id, "column", "time_column", "aggregation"?, "period_s"?: 86400}. '
    "Sensors of one site."
)
LAYOUT_HELP = (
    'Charts on a 12-column grid: [{"chart": id, "x": column, "y": row, "w": columns, '
    '"h": rows}, ...].'
)


_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
SENSOR_SERIES_SCHEMA = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": ["sensor"]},
        "sensor": _ID,
        "aggregation": {"type": "string", "enum": ["avg", "min", "max", "last", "count"]},
        "period_s": {"type": "integer", "minimum": 0},
    },
    "required": ["kind", "sensor"],
    "additionalProperties": False,
}
MODEL_SERIES_SCHEMA = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": ["model"]},
        "model": _ID,
        "signal": {
            "type": "string",
            "enum": [
                "volume",
                "prediction_mean",
                "class_share",
                "latency_p95",
                "accuracy",
                "drift_psi",
            ],
        },
        "label": {"type": "string"},
        "input": {"type": "string"},
        "output": {"type": "string"},
        "period_s": {"type": "integer", "minimum": 60},
    },
    "required": ["kind", "model", "signal"],
    "additionalProperties": False,
}
DATASET_SERIES_SCHEMA = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": ["dataset"]},
        "dataset": _ID,
        "column": {"type": "string", "minLength": 1, "maxLength": 1000},
        "time_column": {"type": "string", "minLength": 1, "maxLength": 1000},
        "aggregation": {"type": "string", "enum": ["avg", "min", "max", "last", "count"]},
        "period_s": {"type": "integer", "minimum": 60, "maximum": 366 * 86400},
    },
    "required": ["kind", "dataset", "column", "time_column"],
    "additionalProperties": False,
}
SERIES_SCHEMA = {
    "type": "array",
    "items": {"oneOf": [SENSOR_SERIES_SCHEMA, MODEL_SERIES_SCHEMA, DATASET_SERIES_SCHEMA]},
    "minItems": 1,
    "description": SERIES_HELP,
}
LAYOUT_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "chart": _ID,
            "x": {"type": "integer", "minimum": 0, "maximum": 11, "default": 0},
            "y": {"type": "integer", "minimum": 0, "maximum": 200, "default": 0},
            "w": {"type": "integer", "minimum": 1, "maximum": 12, "default": 6},
            "h": {"type": "integer", "minimum": 1, "maximum": 24, "default": 4},
        },
        "required": ["chart"],
        "additionalProperties": False,
    },
    "maxItems": 48,
    "description": LAYOUT_HELP,
}


@extend_schema_field(SERIES_SCHEMA)
class SeriesField(serializers.JSONField):
    """The series as sent (monitoring.series checks them, naming the bad field)."""


@extend_schema_field(LAYOUT_SCHEMA)
class LayoutField(serializers.JSONField):
    """The layout as sent (services.charts checks it, naming the bad cell)."""


class ChartOutputSerializer(serializers.ModelSerializer[Chart]):
    series = SeriesField(read_only=True)
    site = serializers.IntegerField(
        source="site_id", read_only=True, allow_null=True, help_text="Its sensors' site."
    )
    created_by = serializers.IntegerField(source="created_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Chart
        fields = [
            "id",
            "team",
            "name",
            "description",
            "series",
            "site",
            "range_s",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DashboardOutputSerializer(serializers.ModelSerializer[Dashboard]):
    layout = LayoutField(read_only=True)
    site = serializers.IntegerField(source="site_id", read_only=True, allow_null=True)
    created_by = serializers.IntegerField(source="created_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Dashboard
        fields = [
            "id",
            "team",
            "name",
            "description",
            "site",
            "layout",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PointField(serializers.Field):  # type: ignore[type-arg]
    """A point as [ISO 8601 time, value or null]."""

    def to_representation(self, point: Any) -> list[Any]:
        moment, value = point
        return [serializers.DateTimeField().to_representation(moment), value]


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "array",
            "items": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]},
            "minItems": 2,
            "maxItems": 2,
        },
    }
)
class PointsField(serializers.ListField):
    child = PointField()


class ChartSeriesDataSerializer(serializers.Serializer[Any]):
    label = serializers.CharField()  # type: ignore[assignment]  # the key is "label"
    spec = serializers.JSONField()
    points = PointsField()


class ChartBandSerializer(serializers.Serializer[Any]):
    rule = serializers.IntegerField()
    name = serializers.CharField()
    severity = serializers.CharField()
    series = serializers.IntegerField(help_text="The index of the chart's series it applies to.")
    op = serializers.CharField(help_text="above, below, outside or inside.")
    value = serializers.FloatField(required=False)
    low = serializers.FloatField(required=False)
    high = serializers.FloatField(required=False)


class ChartAlertSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    rule = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    severity = serializers.CharField()
    state = serializers.CharField()
    title = serializers.CharField()


class ChartDataSerializer(serializers.Serializer[Any]):
    chart = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    series = ChartSeriesDataSerializer(many=True)
    bands = ChartBandSerializer(many=True)
    alerts = ChartAlertSerializer(many=True)


# --- alert rules ---------------------------------------------------------------------------------

CONDITION_HELP = (
    '{"series": 0, "op": "above|below|outside|inside|rate_above|no_data", "value"?, "low"?, '
    '"high"?, "per_s"?} or {"all": [...]} / {"any": [...]} (nested at most 4 deep).'
)
TARGETS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": ["team", "user", "webhook"]},
            "user": _ID,
            "webhook": _ID,
        },
        "required": ["kind"],
        "additionalProperties": False,
    },
}


@extend_schema_field({"type": "object", "description": CONDITION_HELP})
class ConditionField(serializers.JSONField):
    """The condition as sent (monitoring.conditions checks it, naming the bad part)."""


@extend_schema_field(TARGETS_SCHEMA)
class TargetsField(serializers.JSONField):
    """Notification targets as sent (services.notifications checks them)."""
