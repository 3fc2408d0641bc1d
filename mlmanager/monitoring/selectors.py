"""Team- and site-scoped reads of charts, dashboards, rules, alerts, reports and webhooks.

`access_<thing>(*, caller, id, action)` is the permission-checked fetch of a client-supplied
id (one query: the object, the caller's team role and their role on its site);
`<things>_for_caller` the lists (objects of no site, and of the sites the caller sees).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from django.db import connection, models
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast

from mlmanager.accounts.caller import Caller
from mlmanager.core.access import parse_id
from mlmanager.core.errors import NotFound, PermissionDenied
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.selectors import datasets_for_caller
from mlmanager.machines.models import Machine
from mlmanager.machines.selectors import machines_for_caller
from mlmanager.monitoring.access import MonitorAction, monitor_allows
from mlmanager.monitoring.models import (
    Alert,
    AlertRule,
    Chart,
    Dashboard,
    ModelAttachment,
    Notification,
    Report,
    Webhook,
)
from mlmanager.predictions.models import Prediction
from mlmanager.sites.models import Sensor
from mlmanager.sites.selectors import PeriodBucket, sites_for_caller, with_site_roles

_ModelT = TypeVar("_ModelT", bound=models.Model)


def _visible(queryset: QuerySet[_ModelT], caller: Caller) -> QuerySet[_ModelT]:
    return queryset.for_caller(caller).filter(  # type: ignore[attr-defined]
        Q(site__isnull=True) | Q(site__in=sites_for_caller(caller))
    )


def _access(
    queryset: QuerySet[_ModelT], *, caller: Caller, id: Any, action: MonitorAction
) -> _ModelT:
    found = list(
        with_site_roles(queryset.for_caller(caller), caller, "site_id")  # type: ignore[attr-defined]
        .filter(pk=parse_id(id))
        .order_by()[:1]
    )
    if not found:
        raise NotFound()
    obj = found[0]
    allowed = monitor_allows(
        team_role=obj.caller_team_role,
        site_role=obj.caller_site_role,
        has_site=obj.site_id is not None,
        action=action,
    )
    if allowed is None:
        raise NotFound()
    if not allowed:
        raise PermissionDenied()
    return obj


def access_chart(*, caller: Caller, id: Any, action: MonitorAction = MonitorAction.VIEW) -> Chart:
    return _access(Chart.objects.all(), caller=caller, id=id, action=action)


def access_dashboard(
    *, caller: Caller, id: Any, action: MonitorAction = MonitorAction.VIEW
) -> Dashboard:
    return _access(Dashboard.objects.all(), caller=caller, id=id, action=action)


def access_rule(
    *, caller: Caller, id: Any, action: MonitorAction = MonitorAction.VIEW
) -> AlertRule:
    return _access(
        with_current_values(AlertRule.objects.all()), caller=caller, id=id, action=action
    )


def with_current_values(rules: QuerySet[AlertRule]) -> QuerySet[AlertRule]:
    """The rules with `current_value`: what the rule sees now. A rule on one sensor's last
    value (walked at ingest) is written only when its state changes, so its `last_value` is
    the value at its last transition: its sensor's latest value is shown instead. Other
    rules: `last_value`, written at each scheduled evaluation."""
    walked = Q(series__0__kind="sensor", series__0__aggregation="last", series__1__isnull=True)
    sensor_id = Cast(
        KeyTextTransform("sensor", KeyTransform("0", "series")), models.BigIntegerField()
    )
    latest = Sensor.objects.filter(pk=OuterRef("walked_sensor_id")).values("last_value")[:1]
    return rules.annotate(
        walked_sensor_id=models.Case(
            models.When(walked, then=sensor_id), output_field=models.BigIntegerField()
        )
    ).annotate(
        current_value=models.Case(
            models.When(walked_sensor_id__isnull=False, then=Subquery(latest)),
            default=F("last_value"),
            output_field=models.FloatField(),
        )
    )


def sensors_newest_readings(*, sensor_ids: Iterable[int]) -> dict[int, tuple[datetime, float]]:
    """Sensor id -> its newest reading (timestamp, calibrated value) as the ingest keeps it on
    the sensor's row, for the sensors that have one: one plain query however many (the
    scheduler's series read this rather than probing each sensor's readings)."""
    ids = sorted(set(sensor_ids))
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        # The ids as an array parameter: the ORM's IN list of 1 000 sensors cost more to
        # build and bind than the query took.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, last_timestamp, last_value FROM {Sensor._meta.db_table} "  # noqa: S608
                "WHERE id = ANY(%s::bigint[])"
                " AND last_timestamp IS NOT NULL AND last_value IS NOT NULL",
                [ids],
            )
            return {pk: (stamp, value) for pk, stamp, value in cursor.fetchall()}
    rows = Sensor.objects.filter(
        pk__in=ids, last_timestamp__isnull=False, last_value__isnull=False
    ).values_list("pk", "last_timestamp", "last_value")
    return {
        pk: (stamp, value)
        for pk, stamp, value in rows.order_by()
        if stamp is not None and value is not None  # filtered above; for the type checker
    }


def access_alert(*, caller: Caller, id: Any, action: MonitorAction = MonitorAction.VIEW) -> Alert:
    return _access(
        Alert.objects.select_related("rule", "site", "sensor", "machine"),
        caller=caller,
        id=id,
        action=action,
    )


def charts_for_caller(caller: Caller) -> QuerySet[Chart]:
    return _visible(Chart.objects.all(), caller)


def dashboards_for_caller(caller: Caller) -> QuerySet[Dashboard]:
    return _visible(Dashboard.objects.all(), caller)


def rules_for_caller(caller: Caller) -> QuerySet[AlertRule]:
    return _visible(with_current_values(AlertRule.objects.all()), caller)


def alerts_for_caller(caller: Caller) -> QuerySet[Alert]:
    return _visible(Alert.objects.select_related("rule", "site", "sensor", "machine"), caller)


def access_report(*, caller: Caller, id: Any, action: MonitorAction = MonitorAction.VIEW) -> Report:
    """A report follows its chart's or dashboard's site."""
    found = list(
        Report.objects.for_caller(caller)
        .filter(pk=parse_id(id))
        .select_related("chart", "dashboard")
        .order_by()[:1]
    )
    if not found:
        raise NotFound()
    report = found[0]
    subject: Chart | Dashboard = report.chart or report.dashboard  # type: ignore[assignment]
    (access_chart if report.chart_id else access_dashboard)(
        caller=caller, id=subject.pk, action=action
    )
    return report


def reports_for_caller(caller: Caller) -> QuerySet[Report]:
    return Report.objects.for_caller(caller).filter(
        Q(chart__in=charts_for_caller(caller)) | Q(dashboard__in=dashboards_for_caller(caller))
    )


def access_webhook(
    *, caller: Caller, id: Any, action: MonitorAction = MonitorAction.VIEW
) -> Webhook:
    """Webhooks belong to the team (no site): seeing one needs the team's MANAGE right, as it
    holds a secret."""
    from mlmanager.accounts.access import access_team_object
    from mlmanager.monitoring.access import TEAM_ACTION

    del action  # every use of a webhook (seeing, editing, naming it in a rule) needs MANAGE
    return access_team_object(
        Webhook.objects.all(), caller=caller, id=id, action=TEAM_ACTION[MonitorAction.MANAGE]
    )


def notifications_for_user(caller: Caller) -> QuerySet[Notification]:
    """The caller's in-app notifications."""
    if caller.user_id is None:
        return Notification.objects.none()
    return Notification.objects.for_caller(caller).filter(
        user_id=caller.user_id, channel=Notification.Channel.IN_APP
    )


def access_attachment(
    *, caller: Caller, id: Any, action: MonitorAction = MonitorAction.VIEW
) -> ModelAttachment:
    return _access(
        ModelAttachment.objects.select_related("site", "machine"),
        caller=caller,
        id=id,
        action=action,
    )


def attachments_for_caller(caller: Caller) -> QuerySet[ModelAttachment]:
    return _visible(ModelAttachment.objects.select_related("site", "machine"), caller)


# --- a model's series: the prediction log (monitoring.series) -----------------------------------


def series_machines(
    *, caller: Caller | None, team_id: int, machine_ids: list[int]
) -> dict[int, dict[str, Any]]:
    """Model id -> {"name", "inputs", "outputs"} of the given models of team `team_id` the
    caller may view (`None`: the platform itself, any model of the team)."""
    machines = (
        Machine.objects.all() if caller is None else machines_for_caller(caller=caller)
    ).filter(team_id=team_id, pk__in=machine_ids)
    return {
        pk: {"name": name, "inputs": list(inputs or []), "outputs": list(outputs or [])}
        for pk, name, inputs, outputs in machines.values_list("pk", "name", "inputs", "outputs")
    }


def series_datasets(
    *, caller: Caller | None, team_id: int, dataset_ids: list[int]
) -> dict[int, dict[str, Any]]:
    """Dataset id -> {"name", "parquet_path", "columns", "ready"} of the given datasets of
    team `team_id` the caller may view (`None`: the platform itself, any of the team's)."""
    datasets = (
        Dataset.objects.all() if caller is None else datasets_for_caller(caller=caller)
    ).filter(team_id=team_id, pk__in=dataset_ids)
    return {
        dataset.pk: {
            "name": dataset.name,
            "parquet_path": dataset.parquet_path,
            "columns": dataset.columns,
            "ready": dataset.status == Dataset.Status.READY,
        }
        for dataset in datasets
    }


def _predictions(team_id: int, machine_id: int) -> QuerySet[Any]:
    return Prediction.objects.filter(team_id=team_id, machine_id=machine_id)


def prediction_period_counts(
    *,
    team_id: int,
    machine_id: int,
    start: datetime,
    end: datetime,
    period_s: int,
    with_feedback: bool = False,
) -> dict[int, int]:
    """Bucket number (sites' PeriodBucket) -> predictions of the model made in [start, end)
    in it (only those with feedback when asked)."""
    predictions = _predictions(team_id, machine_id).filter(
        created_at__gte=start, created_at__lt=end
    )
    if with_feedback:
        predictions = predictions.filter(feedback__isnull=False)
    return {
        int(period): count
        for period, count in predictions.annotate(period=PeriodBucket("created_at", period_s))
        .values("period")
        .annotate(n=Count("pk"))
        .values_list("period", "n")
        .order_by()
    }


def prediction_count_in(*, team_id: int, machine_id: int, start: datetime, end: datetime) -> int:
    """Predictions of the model made in (start, end]."""
    return (
        _predictions(team_id, machine_id)
        .filter(created_at__gt=start, created_at__lte=end)
        .order_by()
        .count()
    )


def prediction_latest_at(*, team_id: int, machine_id: int, at: datetime) -> datetime | None:
    """When the model last answered, at or before `at`."""
    return (
        _predictions(team_id, machine_id)
        .filter(created_at__lte=at)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def prediction_rows(
    *,
    team_id: int,
    machine_id: int,
    start: datetime,
    end: datetime,
    fields: tuple[str, ...],
    limit: int,
    with_feedback: bool = False,
    end_inclusive: bool = False,
) -> list[tuple[Any, ...]]:
    """(created_at, *fields) of the model's newest `limit` predictions in [start, end)
    ((start, end] with `end_inclusive`), newest first; `fields` among inputs, outputs,
    latency_ms, feedback."""
    allowed = {"inputs", "outputs", "latency_ms", "feedback"}
    if not set(fields) <= allowed:
        raise ValueError(f"unknown prediction fields {set(fields) - allowed}")
    predictions = _predictions(team_id, machine_id)
    if end_inclusive:
        predictions = predictions.filter(created_at__gt=start, created_at__lte=end)
    else:
        predictions = predictions.filter(created_at__gte=start, created_at__lt=end)
    if with_feedback:
        predictions = predictions.filter(feedback__isnull=False)
    return list(predictions.order_by("-created_at").values_list("created_at", *fields)[:limit])


def model_training_profile(*, team_id: int, machine_id: int) -> dict[str, dict[str, Any]]:
    """Column name -> the datasets profile column of the data the model's active version was
    trained on (the run's dataset; the model's dataset when the version has no run); empty
    when neither is left."""
    found = (
        Machine.objects.filter(team_id=team_id, pk=machine_id)
        .values_list("active_version__run__spec", "dataset_id")
        .first()
    )
    if found is None:
        return {}
    spec, dataset_id = found
    trained_on = (spec or {}).get("dataset_id") or dataset_id
    profile = (
        Dataset.objects.filter(team_id=team_id, pk=trained_on)
        .values_list("profile", flat=True)
        .first()
    )
    return {column["name"]: column for column in (profile or {}).get("columns", [])}


def model_holdout_outputs(*, team_id: int, machine_id: int) -> list[dict[str, Any]]:
    """The active version's outputs as recorded (task, holdout metrics with their curves and
    confusion matrix); empty without an active version."""
    outputs = (
        Machine.objects.filter(team_id=team_id, pk=machine_id)
        .values_list("active_version__outputs", flat=True)
        .first()
    )
    return list(outputs or [])


# --- what a chart's data shows besides its points ------------------------------------------------

CHART_ALERTS_LIMIT = 200
_BAND_OPS = ("above", "below", "outside", "inside")


def series_names(*, team_id: int, specs: list[dict[str, Any]]) -> list[str | None]:
    """The name of each series' sensor, model or dataset (None when it is gone): a query
    per kind."""
    sensor_ids = {spec["sensor"] for spec in specs if spec.get("kind") == "sensor"}
    model_ids = {spec["model"] for spec in specs if spec.get("kind") == "model"}
    dataset_ids = {spec["dataset"] for spec in specs if spec.get("kind") == "dataset"}
    sensors = (
        dict(Sensor.objects.filter(team_id=team_id, pk__in=sensor_ids).values_list("pk", "name"))
        if sensor_ids
        else {}
    )
    machines = (
        dict(Machine.objects.filter(team_id=team_id, pk__in=model_ids).values_list("pk", "name"))
        if model_ids
        else {}
    )
    datasets = (
        dict(Dataset.objects.filter(team_id=team_id, pk__in=dataset_ids).values_list("pk", "name"))
        if dataset_ids
        else {}
    )
    by_kind: dict[str, dict[int, str]] = {
        "sensor": sensors,
        "model": machines,
        "dataset": datasets,
    }
    names: list[str | None] = []
    for spec in specs:
        kind = str(spec.get("kind", ""))
        names.append(by_kind.get(kind, {}).get(spec.get(kind, 0)))
    return names


def _same_quantity(rule_spec: dict[str, Any], chart_spec: dict[str, Any]) -> bool:
    """Whether a rule's series measures what a chart's series draws (whatever their periods):
    the same sensor (counts only with counts), or the same model signal of the same output,
    label and input."""
    if rule_spec.get("kind") != chart_spec.get("kind"):
        return False
    if rule_spec.get("kind") == "sensor":
        return rule_spec.get("sensor") == chart_spec.get("sensor") and (
            rule_spec.get("aggregation") == "count"
        ) == (chart_spec.get("aggregation") == "count")
    return all(
        rule_spec.get(key) == chart_spec.get(key)
        for key in ("model", "signal", "output", "label", "input")
    )


def _condition_leaves(condition: Any) -> list[dict[str, Any]]:
    if not isinstance(condition, dict):
        return []
    for combinator in ("all", "any"):
        if isinstance(condition.get(combinator), list):
            return [leaf for part in condition[combinator] for leaf in _condition_leaves(part)]
    return [condition] if "op" in condition else []


def chart_overlays(
    *, caller: Caller, chart: Chart, start: datetime, end: datetime
) -> dict[str, list[dict[str, Any]]]:
    """The thresholds of the rules (that the caller sees) watching what the chart draws, as
    bands on its series, and those rules' alerts open at some time in [start, end) (the
    newest CHART_ALERTS_LIMIT)."""
    series = list(chart.series or [])
    sensor_ids = {spec["sensor"] for spec in series if spec.get("kind") == "sensor"}
    model_ids = {spec["model"] for spec in series if spec.get("kind") == "model"}
    if not sensor_ids and not model_ids:
        return {"bands": [], "alerts": []}
    rules = (
        rules_for_caller(caller)
        .filter(team_id=chart.team_id)
        .filter(Q(sensors__in=sensor_ids) | Q(machines__in=model_ids))
        .distinct()
        .order_by("name", "pk")
    )
    bands: list[dict[str, Any]] = []
    watching: list[int] = []
    for rule in rules:
        overlapping = False
        for leaf in _condition_leaves(rule.condition):
            index = leaf.get("series")
            if not isinstance(index, int) or not 0 <= index < len(rule.series):
                continue
            for chart_index, chart_spec in enumerate(series):
                if not _same_quantity(rule.series[index], chart_spec):
                    continue
                overlapping = True
                if leaf.get("op") not in _BAND_OPS:
                    continue
                bands.append(
                    {
                        "rule": rule.pk,
                        "name": rule.name,
                        "severity": rule.severity,
                        "series": chart_index,
                        "op": leaf["op"],
                        **{key: leaf[key] for key in ("value", "low", "high") if key in leaf},
                    }
                )
        if overlapping:
            watching.append(rule.pk)
    alerts = (
        Alert.objects.filter(team_id=chart.team_id, rule_id__in=watching, started_at__lt=end)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=start))
        .order_by("-started_at", "-pk")
        .values("id", "rule_id", "started_at", "resolved_at", "severity", "title", "state")[
            :CHART_ALERTS_LIMIT
        ]
    )
    return {
        "bands": bands,
        "alerts": [
            {
                "id": alert["id"],
                "rule": alert["rule_id"],
                "started_at": alert["started_at"],
                "resolved_at": alert["resolved_at"],
                "severity": alert["severity"],
                "state": alert["state"],
                "title": alert["title"],
            }
            for alert in alerts
        ],
    }


def prediction_count_between(
    *, team_id: int, machine_id: int, start: datetime, end: datetime
) -> int:
    """Predictions of the model made in [start, end)."""
    return (
        _predictions(team_id, machine_id)
        .filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .count()
    )
