"""The monitoring pages' forms: they check the input's shape and build the JSON the services
take (series specs, a condition, a dashboard's layout); the services check the rest (ids of
the caller's sensors and models, one site per chart, the condition against the series).

The series editor is a plain formset: one row per series and a few empty rows to add more
(empty rows are left out), so it works without a script.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms import formset_factory
from django.utils.translation import gettext_lazy as _

from mlmanager.monitoring.models import Report, Severity

SERIES_KINDS = [("sensor", _("Sensor")), ("model", _("Model"))]
DATASET_KIND = ("dataset", _("Dataset column"))  # charts only: a dataset does not move
AGGREGATIONS = [
    ("avg", _("average")),
    ("min", _("minimum")),
    ("max", _("maximum")),
    ("last", _("last")),
    ("count", _("count")),
]
SIGNALS = [
    ("volume", _("predictions (volume)")),
    ("prediction_mean", _("mean prediction")),
    ("class_share", _("class share")),
    ("latency_p95", _("latency p95 (ms)")),
    ("accuracy", _("accuracy on feedback")),
    ("drift_psi", _("input drift (PSI)")),
]
PERIODS = [
    ("", _("default")),
    ("0", _("raw readings")),
    ("60", _("1 minute")),
    ("300", _("5 minutes")),
    ("900", _("15 minutes")),
    ("3600", _("1 hour")),
    ("86400", _("1 day")),
]
CONDITION_OPS = [
    ("above", _("above")),
    ("below", _("below")),
    ("outside", _("outside a band")),
    ("inside", _("inside a band")),
    ("rate_above", _("changes faster than")),
    ("no_data", _("no data for (seconds)")),
]
MUTE_CHOICES = [
    ("1h", _("for 1 hour")),
    ("8h", _("for 8 hours")),
    ("24h", _("for 24 hours")),
    ("forever", _("until unmuted")),
]
MUTE_SPANS = {"1h": timedelta(hours=1), "8h": timedelta(hours=8), "24h": timedelta(hours=24)}
CELL_WIDTHS = [(3, "3/12"), (4, "4/12"), (6, "6/12"), (8, "8/12"), (12, "12/12")]
CELL_HEIGHTS = [(1, _("small")), (2, _("medium")), (3, _("tall"))]
WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]
DEFAULT_RANGES = [
    (3600, _("1 hour")),
    (24 * 3600, _("24 hours")),
    (7 * 24 * 3600, _("7 days")),
    (30 * 24 * 3600, _("30 days")),
]
EXTRA_ROWS = 2  # empty rows under a series editor or a layout, to add to it
YES_NO_ANY = [("", _("any")), ("true", _("yes")), ("false", _("no"))]


# --- series ----------------------------------------------------------------------------------


class SeriesRowForm(forms.Form):
    """One series: a sensor's aggregation per period, a model's signal, or (on charts) a
    dataset's column per period of one of its time columns."""

    kind = forms.ChoiceField(label=_("Kind"), choices=SERIES_KINDS, required=False)
    sensor = forms.TypedChoiceField(label=_("Sensor"), coerce=int, required=False, empty_value=None)
    aggregation = forms.ChoiceField(label=_("Aggregation"), choices=AGGREGATIONS, required=False)
    model = forms.TypedChoiceField(label=_("Model"), coerce=int, required=False, empty_value=None)
    signal = forms.ChoiceField(label=_("Signal"), choices=SIGNALS, required=False)
    period_s = forms.TypedChoiceField(
        label=_("Period"), choices=PERIODS, coerce=int, required=False, empty_value=None
    )
    dataset = forms.TypedChoiceField(
        label=_("Dataset"), coerce=int, required=False, empty_value=None
    )
    column = forms.CharField(label=_("Column"), max_length=200, required=False)
    time_column = forms.CharField(label=_("Time column"), max_length=200, required=False)
    detail = forms.CharField(
        label=_("Class or input"),
        max_length=200,
        required=False,
        help_text=_("The class of a class share, the input of a drift series."),
    )

    def __init__(
        self,
        *args: Any,
        sensors: list[tuple[Any, Any]] = (),  # type: ignore[assignment]
        models: list[tuple[Any, Any]] = (),  # type: ignore[assignment]
        datasets: list[tuple[Any, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sensor"].choices = [("", "–"), *sensors]  # type: ignore[attr-defined]
        self.fields["model"].choices = [("", "–"), *models]  # type: ignore[attr-defined]
        if datasets is None:  # a rule's editor: no dataset series
            for name in ("dataset", "column", "time_column"):
                del self.fields[name]
        else:
            self.fields["kind"].choices = [*SERIES_KINDS, DATASET_KIND]  # type: ignore[attr-defined]
            self.fields["dataset"].choices = [("", "–"), *datasets]  # type: ignore[attr-defined]

    def spec(self) -> dict[str, Any] | None:
        """The row as a series spec; None for an empty row."""
        data = self.cleaned_data
        kind = data.get("kind")
        if kind == "sensor" and data.get("sensor"):
            spec: dict[str, Any] = {"kind": "sensor", "sensor": data["sensor"]}
            if data.get("aggregation"):
                spec["aggregation"] = data["aggregation"]
        elif kind == "dataset" and data.get("dataset"):
            spec = {
                "kind": "dataset",
                "dataset": data["dataset"],
                "column": (data.get("column") or "").strip(),
                "time_column": (data.get("time_column") or "").strip(),
            }
            if data.get("aggregation"):
                spec["aggregation"] = data["aggregation"]
        elif kind == "model" and data.get("model"):
            spec = {"kind": "model", "model": data["model"], "signal": data.get("signal") or ""}
            detail = (data.get("detail") or "").strip()
            if detail and spec["signal"] == "drift_psi":
                spec["input"] = detail
            elif detail:
                spec["label"] = detail
        else:
            return None
        if data.get("period_s") is not None:
            spec["period_s"] = data["period_s"]
        return spec

    @classmethod
    def initial_of(cls, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "kind": spec.get("kind"),
            "sensor": spec.get("sensor"),
            "aggregation": spec.get("aggregation"),
            "model": spec.get("model"),
            "signal": spec.get("signal"),
            "period_s": spec.get("period_s"),
            "dataset": spec.get("dataset"),
            "column": spec.get("column") or "",
            "time_column": spec.get("time_column") or "",
            "detail": spec.get("input") or spec.get("label") or "",
        }


SeriesFormSet = formset_factory(SeriesRowForm, extra=EXTRA_ROWS, max_num=20, absolute_max=40)


def series_formset(
    data: Any = None,
    *,
    series: list[dict[str, Any]] | None = None,
    sensors: list[tuple[Any, Any]],
    models: list[tuple[Any, Any]],
    datasets: list[tuple[Any, Any]] | None = None,
) -> Any:
    """The series editor; with `datasets` (a chart's), dataset columns may be drawn too."""
    return SeriesFormSet(
        data,
        prefix="series",
        initial=[SeriesRowForm.initial_of(spec) for spec in series or []],
        form_kwargs={"sensors": sensors, "models": models, "datasets": datasets},
    )


def series_of(formset: Any) -> list[dict[str, Any]]:
    """The formset's series specs, in order, without its empty rows."""
    return [spec for form in formset.forms if (spec := form.spec()) is not None]


# --- charts and dashboards ---------------------------------------------------------------------


class ChartForm(forms.Form):
    """A chart's name and default range; its site is its sensors' (monitoring.series)."""

    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    range_s = forms.TypedChoiceField(
        label=_("Shows by default"), coerce=int, choices=DEFAULT_RANGES, initial=24 * 3600
    )


class DashboardForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    site = forms.TypedChoiceField(
        label=_("Site"),
        coerce=int,
        required=False,
        empty_value=None,
        help_text=_("A site's dashboard is seen by who sees the site, and holds its charts."),
    )

    def __init__(self, *args: Any, sites: list[tuple[Any, Any]] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("none (the team)")), *sites]  # type: ignore[attr-defined]


class CellForm(forms.Form):
    chart = forms.TypedChoiceField(label=_("Chart"), coerce=int, required=False, empty_value=None)
    w = forms.TypedChoiceField(label=_("Width"), coerce=int, choices=CELL_WIDTHS, initial=6)
    h = forms.TypedChoiceField(label=_("Height"), coerce=int, choices=CELL_HEIGHTS, initial=1)

    def __init__(self, *args: Any, charts: list[tuple[Any, Any]] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.fields["chart"].choices = [("", "–"), *charts]  # type: ignore[attr-defined]


CellFormSet = formset_factory(CellForm, extra=EXTRA_ROWS, max_num=48, absolute_max=60)


def layout_formset(
    data: Any = None, *, layout: list[dict[str, Any]] | None = None, charts: list[tuple[Any, Any]]
) -> Any:
    return CellFormSet(
        data,
        prefix="cells",
        initial=[
            {"chart": cell.get("chart"), "w": cell.get("w", 6), "h": cell.get("h", 1)}
            for cell in layout or []
        ],
        form_kwargs={"charts": charts},
    )


def layout_of(formset: Any, columns: int = 12) -> list[dict[str, Any]]:
    """The cells in order, placed left to right and top to bottom on the 12-column grid (a
    cell that does not fit on the row starts the next one)."""
    layout = []
    x = y = row_height = 0
    for form in formset.forms:
        chart = form.cleaned_data.get("chart")
        if not chart:
            continue
        w, h = form.cleaned_data.get("w") or 6, form.cleaned_data.get("h") or 1
        if x + w > columns:
            x, y, row_height = 0, y + row_height, 0
        layout.append({"chart": chart, "x": x, "y": y, "w": w, "h": h})
        x += w
        row_height = max(row_height, h)
    return layout


# --- rules -------------------------------------------------------------------------------------


class RuleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    severity = forms.ChoiceField(
        label=_("Severity"), choices=Severity.choices, initial=Severity.WARNING
    )
    for_s = forms.IntegerField(
        label=_("For (seconds)"),
        min_value=0,
        initial=0,
        help_text=_("How long the condition must hold before the rule fires."),
    )
    evaluate_every_s = forms.IntegerField(
        label=_("Evaluate every (seconds)"), min_value=10, initial=60
    )
    hysteresis = forms.FloatField(
        label=_("Hysteresis"),
        min_value=0,
        required=False,
        help_text=_("How far back inside the threshold a value must come to resolve."),
    )
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)
    # The condition builder: one condition on one series…
    op = forms.ChoiceField(label=_("Condition"), choices=CONDITION_OPS, required=False)
    on_series = forms.TypedChoiceField(
        label=_("On series"), coerce=int, choices=[(0, "1")], initial=0, required=False
    )
    value = forms.FloatField(label=_("Value"), required=False)
    low = forms.FloatField(label=_("Low"), required=False)
    high = forms.FloatField(label=_("High"), required=False)
    per_s = forms.FloatField(label=_("Per (seconds)"), required=False, min_value=0)
    # …or all/any of several, as JSON.
    condition_json = forms.CharField(
        label=_("Advanced condition (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=_(
            'Overrides the condition above, e.g. {"all": [{"series": 0, "op": "above", '
            '"value": 80}, {"series": 1, "op": "below", "value": 2}]}.'
        ),
    )

    def __init__(self, *args: Any, series_count: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        count = max(series_count, 1) + EXTRA_ROWS
        self.fields["on_series"].choices = [(index, str(index + 1)) for index in range(count)]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        text = (data.get("condition_json") or "").strip()
        if text:
            try:
                data["condition"] = json.loads(text)
            except ValueError:
                self.add_error("condition_json", _("This is not valid JSON."))
            return data
        if not data.get("op"):
            self.add_error("op", _("Choose a condition, or write one as JSON."))
            return data
        condition: dict[str, Any] = {"series": data.get("on_series") or 0, "op": data["op"]}
        for field in ("value", "low", "high", "per_s"):
            if data.get(field) is not None:
                condition[field] = data[field]
        data["condition"] = condition
        return data

    @classmethod
    def initial_of(cls, rule: Any) -> dict[str, Any]:
        initial = {
            name: getattr(rule, name)
            for name in (
                "name",
                "description",
                "severity",
                "for_s",
                "evaluate_every_s",
                "hysteresis",
                "enabled",
            )
        }
        condition = rule.condition or {}
        if "op" in condition:
            initial.update(
                op=condition["op"],
                on_series=condition.get("series", 0),
                **{
                    field: condition.get(field)
                    for field in ("value", "low", "high", "per_s")
                    if field in condition
                },
            )
        else:
            initial["condition_json"] = json.dumps(condition, indent=1)
        return initial


class MuteForm(forms.Form):
    until = forms.ChoiceField(label=_("Mute"), choices=MUTE_CHOICES, initial="1h")

    def until_from(self, now: Any) -> Any:
        span = MUTE_SPANS.get(self.cleaned_data["until"])
        return now + span if span else None


# --- alerts ------------------------------------------------------------------------------------


class AlertFilterForm(forms.Form):
    """How the alerts list shows its filters (a GET form); the filtering itself is the
    API's AlertFilter (rule_filters), which ignores on a page the values it refuses."""

    state = forms.ChoiceField(
        label=_("State"),
        required=False,
        choices=[
            ("", _("any")),
            ("pending", _("pending")),
            ("firing", _("firing")),
            ("resolved", _("resolved")),
        ],
    )
    severity = forms.ChoiceField(
        label=_("Severity"), required=False, choices=[("", _("any")), *Severity.choices]
    )
    site = forms.TypedChoiceField(label=_("Site"), coerce=int, required=False, empty_value=None)
    acknowledged = forms.ChoiceField(label=_("Acknowledged"), required=False, choices=YES_NO_ANY)
    muted = forms.ChoiceField(label=_("Muted"), required=False, choices=YES_NO_ANY)

    def __init__(self, *args: Any, sites: list[tuple[Any, Any]] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("any")), *sites]  # type: ignore[attr-defined]


class CommentForm(forms.Form):
    text = forms.CharField(
        label=_("Comment"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class AssignForm(forms.Form):
    user = forms.TypedChoiceField(
        label=_("Assign to"), coerce=int, required=False, empty_value=None
    )

    def __init__(self, *args: Any, members: list[tuple[Any, Any]] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [("", _("nobody")), *members]  # type: ignore[attr-defined]


# --- notifications and reports -----------------------------------------------------------------


class PreferenceForm(forms.Form):
    min_severity = forms.ChoiceField(
        label=_("Tell me of alerts from"), choices=Severity.choices, initial=Severity.WARNING
    )
    sites = forms.TypedMultipleChoiceField(
        label=_("Sites"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every site you see."),
    )
    models = forms.TypedMultipleChoiceField(
        label=_("Models"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every model you see."),
    )
    email = forms.BooleanField(label=_("By e-mail"), required=False)
    in_app = forms.BooleanField(label=_("In the app"), required=False)
    quiet_start = forms.TimeField(
        label=_("Quiet from"), required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    quiet_end = forms.TimeField(
        label=_("Quiet until"), required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )

    def __init__(
        self,
        *args: Any,
        sites: list[tuple[Any, Any]] = (),  # type: ignore[assignment]
        models: list[tuple[Any, Any]] = (),  # type: ignore[assignment]
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sites"].choices = sites  # type: ignore[attr-defined]
        self.fields["models"].choices = models  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("quiet_start") is None) != (data.get("quiet_end") is None):
            raise ValidationError(_("Quiet hours need a start and an end (or neither)."))
        return data


class ReportForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    subject = forms.ChoiceField(label=_("Of"))
    frequency = forms.ChoiceField(
        label=_("Frequency"), choices=Report.Frequency.choices, initial=Report.Frequency.DAILY
    )
    weekday = forms.TypedChoiceField(
        label=_("Weekday (weekly)"), coerce=int, choices=WEEKDAYS, initial=0
    )
    time_of_day = forms.TimeField(
        label=_("At"),
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text=_("In each recipient's own time zone."),
    )
    recipients = forms.TypedMultipleChoiceField(
        label=_("Recipients"), coerce=int, widget=forms.CheckboxSelectMultiple
    )
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(
        self,
        *args: Any,
        charts: list[tuple[Any, Any]] = (),  # type: ignore[assignment]
        dashboards: list[tuple[Any, Any]] = (),  # type: ignore[assignment]
        members: list[tuple[Any, Any]] = (),  # type: ignore[assignment]
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subject"].choices = [  # type: ignore[attr-defined]
            (_("Charts"), [(f"chart:{pk}", name) for pk, name in charts]),
            (_("Dashboards"), [(f"dashboard:{pk}", name) for pk, name in dashboards]),
        ]
        self.fields["recipients"].choices = members  # type: ignore[attr-defined]

    def subject_ids(self) -> dict[str, int | None]:
        kind, _sep, pk = self.cleaned_data["subject"].partition(":")
        return {
            "chart_id": int(pk) if kind == "chart" else None,
            "dashboard_id": int(pk) if kind == "dashboard" else None,
        }

    @classmethod
    def initial_of(cls, report: Report) -> dict[str, Any]:
        return {
            "name": report.name,
            "subject": f"chart:{report.chart_id}"
            if report.chart_id
            else f"dashboard:{report.dashboard_id}",
            "frequency": report.frequency,
            "weekday": report.weekday,
            "time_of_day": report.time_of_day,
            "recipients": list(report.recipients.values_list("pk", flat=True)),
            "active": report.active,
        }
