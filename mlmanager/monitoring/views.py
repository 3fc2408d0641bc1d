"""Monitoring pages: charts and dashboards (live, the Grafana way: each chart of a dashboard
re-fetches itself on the chosen interval), and a model's monitoring tab. The alert rules,
alerts, notifications and reports pages are in views_alerts.py and views_notifications.py.

As on the sites pages: buttons a role may not use are not shown (`can_*` in the context, from
monitoring.access), and every POST fetches its object with the action it needs, so a
hand-made request is refused too (403, or 404 for what the caller may not see at all).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.core.pagination import page_of
from mlmanager.datasets.selectors import ready_datasets_for_caller
from mlmanager.machines.selectors import access_machine, machines_for_caller
from mlmanager.monitoring import charts_svg, selectors
from mlmanager.monitoring.access import MonitorAction, monitor_allows
from mlmanager.monitoring.chart_data import chart_data
from mlmanager.monitoring.forms import (
    ChartForm,
    DashboardForm,
    layout_formset,
    layout_of,
    series_formset,
    series_of,
)
from mlmanager.monitoring.model_monitoring import model_monitoring as model_monitoring_of
from mlmanager.monitoring.models import Chart, Dashboard
from mlmanager.monitoring.services import charts as chart_services
from mlmanager.monitoring.services import suggestions
from mlmanager.sites.access import SiteAction
from mlmanager.sites.selectors import sensors_for_caller, site_ids_for_caller, sites_for_caller

# The ranges a chart offers: how far back from now.
RANGES: dict[str, tuple[timedelta, Any]] = {
    "1h": (timedelta(hours=1), gettext_lazy("1 hour")),
    "24h": (timedelta(hours=24), gettext_lazy("24 hours")),
    "7d": (timedelta(days=7), gettext_lazy("7 days")),
    "30d": (timedelta(days=30), gettext_lazy("30 days")),
}
# A dashboard's refresh intervals (kept in the query string), as htmx reads them.
REFRESH: dict[str, Any] = {
    "off": gettext_lazy("off"),
    "5s": gettext_lazy("5 s"),
    "10s": gettext_lazy("10 s"),
    "30s": gettext_lazy("30 s"),
    "1m": gettext_lazy("1 min"),
}
DEFAULT_REFRESH = "10s"
MAX_RANGE = timedelta(days=400)
MIN_RANGE = timedelta(minutes=1)
CHART_ALERTS_SHOWN = 200
# A dashboard cell's drawing size per grid column and row (its SVG scales to the cell; these
# keep its text about the page's size on a wide screen).
CELL_COLUMN_WIDTH = 95
CELL_ROW_HEIGHT = 200
CELL_MIN_WIDTH = 320
MODEL_CHART_HEIGHT = 200


# --- shared by the monitoring pages -------------------------------------------------------------


def is_user_error(error: ApplicationError) -> bool:
    """Errors shown as a message on the page; 403 goes to the error page."""
    return error.status_code != 403


def act(request: AuthenticatedHttpRequest, action: Callable[[], Any], success: str) -> Any:
    """Runs a page action: what it returns, or None after showing why it was refused (a
    refusal the user can fix, including an id of a select they may not use; 403 goes to the
    error page)."""
    try:
        done = action()
    except ApplicationError as error:
        if not is_user_error(error):
            raise
        messages.error(request, error.message)
        return None
    except ValidationError as error:  # the services' full_clean()
        for message in error.messages:
            messages.error(request, message)
        return None
    if success:
        messages.success(request, success)
    return done if done is not None else True


def form_error(request: AuthenticatedHttpRequest, form: Any) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


def formset_errors(request: AuthenticatedHttpRequest, formset: Any) -> None:
    for error in formset.non_form_errors():
        messages.error(request, error)
    for index, form in enumerate(formset.forms):
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"#{index + 1} {form.fields[field].label}: {error}")


def may(obj: Any, action: MonitorAction) -> bool:
    """Whether the caller may do `action` on an object fetched by an access_* selector (which
    annotates the caller's team and site roles)."""
    return bool(
        monitor_allows(
            team_role=getattr(obj, "caller_team_role", None),
            site_role=getattr(obj, "caller_site_role", None),
            has_site=obj.site_id is not None,
            action=action,
        )
    )


def abilities(obj: Any) -> dict[str, bool]:
    return {
        "can_operate": may(obj, MonitorAction.OPERATE),
        "can_edit": may(obj, MonitorAction.CHANGE),
    }


def current_team(request: AuthenticatedHttpRequest) -> Any:
    if request.team is None:
        raise NotFound()
    return request.team


def may_create(request: AuthenticatedHttpRequest) -> bool:
    """Whether the caller may make charts or rules in the current team: an editor of the
    team, or someone who maintains one of its sites."""
    from mlmanager.accounts.access import team_role
    from mlmanager.core.access import ROLE_ACTIONS, Action

    team = request.team
    if team is None:
        return False
    role = team_role(caller=request.caller, team_id=team.pk)
    if role is not None and Action.CHANGE in ROLE_ACTIONS[role]:
        return True
    return bool(site_ids_for_caller(request.caller, action=SiteAction.MAINTAIN))


def site_choices(request: AuthenticatedHttpRequest) -> list[tuple[int, str]]:
    team = request.team
    return [
        (site.pk, site.name)
        for site in sites_for_caller(request.caller).filter(team=team).order_by("name")
    ]


def sensor_choices(request: AuthenticatedHttpRequest) -> list[tuple[str, list[tuple[int, str]]]]:
    """The team's sensors the caller sees, grouped by site."""
    grouped: dict[str, list[tuple[int, str]]] = {}
    sensors = sensors_for_caller(request.caller).filter(team=request.team)
    for sensor in sensors.order_by("site__name", "name"):
        grouped.setdefault(sensor.site.name, []).append((sensor.pk, sensor.name))
    return list(grouped.items())


def model_choices(request: AuthenticatedHttpRequest) -> list[tuple[int, str]]:
    return [
        (machine.pk, machine.name)
        for machine in machines_for_caller(caller=request.caller, team=request.team).order_by(
            "name"
        )
    ]


def dataset_choices(request: AuthenticatedHttpRequest) -> list[tuple[int, str]]:
    """The team's ready datasets the caller sees (a chart may draw their columns)."""
    datasets = ready_datasets_for_caller(caller=request.caller, team=request.team)
    return [(dataset.pk, dataset.name) for dataset in datasets.order_by("name")]


def range_of(request: AuthenticatedHttpRequest, *, default: str = "24h") -> dict[str, Any]:
    """The period a chart shows: `start` and `end` (ISO 8601) when both are given and make a
    range, else the `range` key (1h, 24h, 7d, 30d) back from now."""
    now = timezone.now()
    start = _moment(request.GET.get("start"))
    end = _moment(request.GET.get("end"))
    if start is not None and end is not None and MIN_RANGE <= end - start <= MAX_RANGE:
        return {"start": start, "end": end, "key": "", "zoomed": True}
    key = request.GET.get("range", default)
    if key not in RANGES:
        key = default
    return {"start": now - RANGES[key][0], "end": now, "key": key, "zoomed": False}


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = parse_datetime(text.strip().replace(" ", "T"))
    except ValueError:
        return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)  # typed in the user's time zone
    return moment


def ranges_context(chosen: dict[str, Any]) -> dict[str, Any]:
    start, end = chosen["start"], chosen["end"]
    span = end - start
    return {
        "range_key": chosen["key"],
        "ranges": [(key, label) for key, (_span, label) in RANGES.items()],
        "range_start": start,
        "range_end": end,
        "zoomed": chosen["zoomed"],
        "zoom_out_start": charts_svg.iso_utc(start - span / 2),
        "zoom_out_end": charts_svg.iso_utc(min(end + span / 2, timezone.now())),
        "start_local": timezone.localtime(start).strftime("%Y-%m-%dT%H:%M"),
        "end_local": timezone.localtime(end).strftime("%Y-%m-%dT%H:%M"),
    }


def draw(
    request: AuthenticatedHttpRequest,
    *,
    chart: Chart,
    start: datetime,
    end: datetime,
    width: int = charts_svg.CHART_WIDTH,
    height: int = charts_svg.CHART_HEIGHT,
) -> charts_svg.TimeChart:
    """The chart's series over [start, end] with the bands of the rules watching them and
    those rules' alerts on the time axis (monitoring.chart_data). `chart` may be unsaved:
    a rule's or an alert's series drawn as a chart."""
    data = chart_data(caller=request.caller, chart=chart, start=start, end=end)
    return drawing_of(data, start=start, end=end, width=width, height=height)


def drawing_of(
    data: dict[str, Any], *, start: datetime, end: datetime, width: int, height: int
) -> charts_svg.TimeChart:
    """monitoring.chart_data's answer as a TimeChart."""
    return charts_svg.time_chart(
        [charts_svg.SeriesInput(item["label"], item["points"]) for item in data["series"]],
        start=start,
        end=end,
        thresholds=[
            charts_svg.Threshold(
                op=band["op"],
                severity=band["severity"],
                value=band.get("value"),
                low=band.get("low"),
                high=band.get("high"),
                label=band["name"],
            )
            for band in data["bands"]
        ],
        alerts=[
            charts_svg.AlertSpan(
                alert["id"],
                alert["severity"],
                alert["title"],
                alert["started_at"],
                alert["resolved_at"],
            )
            for alert in data["alerts"]
        ],
        width=width,
        height=height,
    )


def series_chart(*, team_id: int, series: list[dict[str, Any]]) -> Chart:
    """A rule's (or an alert's rule's) series as an unsaved chart, to draw with `draw`."""
    return Chart(team_id=team_id, series=series)


# --- charts -------------------------------------------------------------------------------------


@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    return redirect("monitoring:alerts")


@login_required
def chart_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    charts = selectors.charts_for_caller(request.caller).select_related("site").order_by("name")
    if request.team is not None:
        charts = charts.filter(team=request.team)
    return render(
        request,
        "monitoring/charts.html",
        {"page": page_of(request, charts), "may_create": may_create(request), "tab": "charts"},
    )


def _chart_form_page(
    request: AuthenticatedHttpRequest,
    *,
    chart: Chart | None,
    form: ChartForm,
    formset: Any,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "monitoring/chart_form.html",
        {"chart": chart, "form": form, "formset": formset, "tab": "charts"},
        status=status,
    )


def _chart_forms(
    request: AuthenticatedHttpRequest, chart: Chart | None, data: Any = None
) -> tuple[ChartForm, Any]:
    initial = (
        {"name": chart.name, "description": chart.description, "range_s": chart.range_s}
        if chart
        else None
    )
    form = ChartForm(data, initial=initial)
    formset = series_formset(
        data,
        series=chart.series if chart else None,
        sensors=sensor_choices(request),
        models=model_choices(request),
        datasets=dataset_choices(request),
    )
    return form, formset


def _chart_save(
    request: AuthenticatedHttpRequest, chart: Chart | None, form: ChartForm, formset: Any
) -> Chart | None:
    if not (form.is_valid() and formset.is_valid()):
        form_error(request, form)
        formset_errors(request, formset)
        return None
    fields = {
        "name": form.cleaned_data["name"],
        "description": form.cleaned_data["description"],
        "series": series_of(formset),
        "range_s": form.cleaned_data["range_s"],
    }
    if chart is None:
        team = current_team(request)
        return act(
            request,
            lambda: chart_services.chart_create(caller=request.caller, team=team, **fields),
            _("Chart created."),
        )
    return act(
        request,
        lambda: chart_services.chart_update(caller=request.caller, chart=chart, **fields),
        _("Chart saved."),
    )


@login_required
def chart_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    current_team(request)
    if request.method != "POST":
        form, formset = _chart_forms(request, None)
        return _chart_form_page(request, chart=None, form=form, formset=formset)
    form, formset = _chart_forms(request, None, request.POST)
    chart = _chart_save(request, None, form, formset)
    if chart is None:
        return _chart_form_page(request, chart=None, form=form, formset=formset, status=400)
    return redirect("monitoring:chart", chart_id=chart.pk)


@login_required
def chart_edit(request: AuthenticatedHttpRequest, chart_id: int) -> HttpResponse:
    chart = selectors.access_chart(caller=request.caller, id=chart_id, action=MonitorAction.CHANGE)
    if request.method != "POST":
        form, formset = _chart_forms(request, chart)
        return _chart_form_page(request, chart=chart, form=form, formset=formset)
    form, formset = _chart_forms(request, chart, request.POST)
    if _chart_save(request, chart, form, formset) is None:
        return _chart_form_page(request, chart=chart, form=form, formset=formset, status=400)
    return redirect("monitoring:chart", chart_id=chart.pk)


@login_required
@require_POST
def chart_delete(request: AuthenticatedHttpRequest, chart_id: int) -> HttpResponse:
    chart = selectors.access_chart(caller=request.caller, id=chart_id, action=MonitorAction.CHANGE)
    act(
        request,
        lambda: chart_services.chart_delete(caller=request.caller, chart=chart),
        _("Chart %(name)s deleted.") % {"name": chart.name},
    )
    return redirect("monitoring:charts")


@login_required
def chart_detail(request: AuthenticatedHttpRequest, chart_id: int) -> HttpResponse:
    chart = selectors.access_chart(caller=request.caller, id=chart_id)
    chosen = range_of(request, default=_default_range(chart))
    start, end = chosen["start"], chosen["end"]
    data = chart_data(caller=request.caller, chart=chart, start=start, end=end)
    watching = {band["rule"] for band in data["bands"]} | {
        alert["rule"] for alert in data["alerts"]
    }
    context = {
        "chart": chart,
        "drawn": drawing_of(
            data,
            start=start,
            end=end,
            width=charts_svg.CHART_WIDTH,
            height=charts_svg.CHART_HEIGHT,
        ),
        "rules": list(
            selectors.rules_for_caller(request.caller).filter(pk__in=watching).order_by("name")
        ),
        "tab": "charts",
        **ranges_context(chosen),
        **abilities(chart),
    }
    return render(request, "monitoring/chart.html", context)


def _default_range(chart: Chart) -> str:
    """The range key nearest the chart's own default range."""
    return min(RANGES, key=lambda key: abs(RANGES[key][0].total_seconds() - chart.range_s))


def _cell_numbers(w: Any, h: Any) -> tuple[int, int]:
    """A cell's columns (1 to 12) and height (1 to 3: the API's taller cells are drawn 3
    high), from a layout or a query string; 6 × 1 when unreadable."""
    try:
        return min(max(int(w), 1), 12), min(max(int(h), 1), 3)
    except (TypeError, ValueError):
        return 6, 1


def _cell_size(request: AuthenticatedHttpRequest) -> tuple[int, int]:
    return _cell_numbers(request.GET.get("w", 6), request.GET.get("h", 1))


def _panel_context(
    request: AuthenticatedHttpRequest, chart: Chart, *, w: int, h: int, refresh: str, key: str
) -> dict[str, Any]:
    chosen = range_of(request, default=key)
    # Wide cells are drawn no wider than a chart page's chart: a phone stacks every cell at
    # its full width, where a wider drawing would shrink its text below reading size.
    width = min(max(w * CELL_COLUMN_WIDTH, CELL_MIN_WIDTH), charts_svg.CHART_WIDTH)
    height = max(h * CELL_ROW_HEIGHT, 160)
    return {
        "chart": chart,
        "drawn": draw(
            request,
            chart=chart,
            start=chosen["start"],
            end=chosen["end"],
            width=width,
            height=height,
        ),
        "w": w,
        "h": h,
        "refresh": refresh,
        "range_key": chosen["key"],
        "range_query": _range_query(chosen),
    }


@login_required
def chart_panel(request: AuthenticatedHttpRequest, chart_id: int) -> HttpResponse:
    """One chart of a dashboard, re-fetched by the dashboard on its refresh interval."""
    chart = selectors.access_chart(caller=request.caller, id=chart_id)
    refresh = request.GET.get("refresh", DEFAULT_REFRESH)
    if refresh not in REFRESH:
        refresh = DEFAULT_REFRESH
    w, h = _cell_size(request)
    context = _panel_context(request, chart, w=w, h=h, refresh=refresh, key="24h")
    return render(request, "monitoring/partials/_panel.html", context)


# --- dashboards ---------------------------------------------------------------------------------


@login_required
def dashboard_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    dashboards = (
        selectors.dashboards_for_caller(request.caller).select_related("site").order_by("name")
    )
    if request.team is not None:
        dashboards = dashboards.filter(team=request.team)
    return render(
        request,
        "monitoring/dashboards.html",
        {
            "page": page_of(request, dashboards),
            "may_create": may_create(request),
            "tab": "dashboards",
        },
    )


@login_required
def dashboard_detail(request: AuthenticatedHttpRequest, dashboard_id: int) -> HttpResponse:
    dashboard = selectors.access_dashboard(caller=request.caller, id=dashboard_id)
    refresh = request.GET.get("refresh", DEFAULT_REFRESH)
    if refresh not in REFRESH:
        refresh = DEFAULT_REFRESH
    chosen = range_of(request, default="24h")
    layout = [cell for cell in dashboard.layout or [] if isinstance(cell, dict)]
    visible = {
        chart.pk: chart
        for chart in selectors.charts_for_caller(request.caller).filter(
            team_id=dashboard.team_id, pk__in=[cell.get("chart") for cell in layout]
        )
    }
    cells = []
    for cell in sorted(layout, key=lambda item: (item.get("y", 0), item.get("x", 0))):
        chart = visible.get(cell.get("chart"))  # type: ignore[arg-type]
        if chart is None:
            continue  # deleted, or on a site the caller does not see
        w, h = _cell_numbers(cell.get("w"), cell.get("h"))
        cells.append(_panel_context(request, chart, w=w, h=h, refresh=refresh, key="24h"))
    context = {
        "dashboard": dashboard,
        "cells": cells,
        "refresh": refresh,
        "refreshes": list(REFRESH.items()),
        "tab": "dashboards",
        "range_query": _range_query(chosen),
        "extra_query": f"refresh={refresh}&",
        "keep": [("refresh", refresh)],
        **ranges_context(chosen),
        **abilities(dashboard),
    }
    return render(request, "monitoring/dashboard.html", context)


def _range_query(chosen: dict[str, Any]) -> str:
    if chosen["zoomed"]:
        return (
            f"start={charts_svg.iso_utc(chosen['start'])}&end={charts_svg.iso_utc(chosen['end'])}"
        )
    return f"range={chosen['key']}"


def _chart_choices(request: AuthenticatedHttpRequest) -> list[tuple[int, str]]:
    charts = selectors.charts_for_caller(request.caller).filter(team=request.team)
    return list(charts.order_by("name").values_list("pk", "name"))


def _dashboard_forms(
    request: AuthenticatedHttpRequest, dashboard: Dashboard | None, data: Any = None
) -> tuple[DashboardForm, Any]:
    initial = (
        {"name": dashboard.name, "description": dashboard.description, "site": dashboard.site_id}
        if dashboard
        else None
    )
    form = DashboardForm(data, initial=initial, sites=site_choices(request))
    formset = layout_formset(
        data, layout=dashboard.layout if dashboard else None, charts=_chart_choices(request)
    )
    return form, formset


def _dashboard_page(
    request: AuthenticatedHttpRequest,
    dashboard: Dashboard | None,
    form: Any,
    formset: Any,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "monitoring/dashboard_form.html",
        {"dashboard": dashboard, "form": form, "formset": formset, "tab": "dashboards"},
        status=status,
    )


def _dashboard_save(
    request: AuthenticatedHttpRequest, dashboard: Dashboard | None, form: Any, formset: Any
) -> Dashboard | None:
    if not (form.is_valid() and formset.is_valid()):
        form_error(request, form)
        formset_errors(request, formset)
        return None
    fields = {
        "name": form.cleaned_data["name"],
        "description": form.cleaned_data["description"],
        "site": form.cleaned_data["site"],
        "layout": layout_of(formset),
    }
    if dashboard is None:
        team = current_team(request)
        return act(
            request,
            lambda: chart_services.dashboard_create(caller=request.caller, team=team, **fields),
            _("Dashboard created."),
        )
    return act(
        request,
        lambda: chart_services.dashboard_update(
            caller=request.caller, dashboard=dashboard, **fields
        ),
        _("Dashboard saved."),
    )


@login_required
def dashboard_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    current_team(request)
    form, formset = _dashboard_forms(
        request, None, request.POST if request.method == "POST" else None
    )
    if request.method != "POST":
        return _dashboard_page(request, None, form, formset)
    dashboard = _dashboard_save(request, None, form, formset)
    if dashboard is None:
        return _dashboard_page(request, None, form, formset, status=400)
    return redirect("monitoring:dashboard", dashboard_id=dashboard.pk)


@login_required
def dashboard_edit(request: AuthenticatedHttpRequest, dashboard_id: int) -> HttpResponse:
    dashboard = selectors.access_dashboard(
        caller=request.caller, id=dashboard_id, action=MonitorAction.CHANGE
    )
    form, formset = _dashboard_forms(
        request, dashboard, request.POST if request.method == "POST" else None
    )
    if request.method != "POST":
        return _dashboard_page(request, dashboard, form, formset)
    if _dashboard_save(request, dashboard, form, formset) is None:
        return _dashboard_page(request, dashboard, form, formset, status=400)
    return redirect("monitoring:dashboard", dashboard_id=dashboard.pk)


@login_required
@require_POST
def dashboard_delete(request: AuthenticatedHttpRequest, dashboard_id: int) -> HttpResponse:
    dashboard = selectors.access_dashboard(
        caller=request.caller, id=dashboard_id, action=MonitorAction.CHANGE
    )
    act(
        request,
        lambda: chart_services.dashboard_delete(caller=request.caller, dashboard=dashboard),
        _("Dashboard %(name)s deleted.") % {"name": dashboard.name},
    )
    return redirect("monitoring:dashboards")


# --- a model's monitoring tab -------------------------------------------------------------------


@login_required
def model_monitoring(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    """A model's tab: volume and latency over time, its predictions against the holdout's,
    drift per input (worst first, each with its histogram against training), accuracy on
    feedback over time, and the suggested rules (monitoring.model_monitoring)."""
    from mlmanager.core.access import ROLE_ACTIONS, Action

    machine = access_machine(caller=request.caller, id=machine_id)
    chosen = range_of(request, default="7d")
    start, end = chosen["start"], chosen["end"]
    found = model_monitoring_of(
        machine=machine, start=start, end=end, output=request.GET.get("output")
    )
    size = {"start": start, "end": end, "height": MODEL_CHART_HEIGHT}
    accuracy_points = [(item["period_start"], item["accuracy"]) for item in found["accuracy"]]
    predictions = found["predictions"]
    context = {
        "machine": machine,
        "found": found,
        "volume_chart": charts_svg.time_chart(
            [charts_svg.SeriesInput(_("Predictions"), found["volume_series"])], **size
        ),
        "latency_chart": charts_svg.time_chart(
            [charts_svg.SeriesInput(_("Latency p95 (ms)"), found["latency_series"])], **size
        ),
        "accuracy_chart": charts_svg.time_chart(
            [charts_svg.SeriesInput(_("Accuracy on feedback"), accuracy_points)], **size
        )
        if accuracy_points
        else None,
        "prediction_histogram": _prediction_histogram(predictions),
        "drift": [
            {
                **item,
                "chart": charts_svg.histogram(
                    _bin_labels(item["histogram"]),
                    item["histogram"]["expected"],
                    item["histogram"]["actual"],
                )
                if item["histogram"]
                else None,
            }
            for item in found["drift"]
        ],
        "outputs": [output["name"] for output in machine.outputs or []],
        "can_change_model": Action.CHANGE in ROLE_ACTIONS[machine.caller_role],  # type: ignore[attr-defined]
        "suggested": suggestions.suggested_rules(machine),
        "rules": list(
            selectors.rules_for_caller(request.caller).filter(machines=machine).order_by("name")
        ),
        "tab": "",
        **ranges_context(chosen),
        "extra_query": f"output={found['output']}&" if found["output"] else "",
        "keep": [("output", found["output"])] if found["output"] else [],
    }
    return render(request, "monitoring/model.html", context)


def _prediction_histogram(predictions: dict[str, Any] | None) -> charts_svg.Histogram | None:
    if not predictions:
        return None
    labels = predictions["labels"] if predictions["kind"] == "classes" else _bin_labels(predictions)
    return charts_svg.histogram(labels, predictions["holdout"], predictions["window"])


def _bin_labels(histogram: dict[str, Any]) -> list[str]:
    """Categories as they are; numeric bins by their lower edge (a range does not fit under
    a bar)."""
    edges = histogram.get("edges") or []
    if len(edges) < 2:
        return list(histogram.get("labels") or [])
    return [f"{low:.3g}" for low in edges[:-1]]


@login_required
@require_POST
def model_suggest_rules(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    from mlmanager.core.access import Action

    machine = access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    created = act(
        request,
        lambda: suggestions.rules_suggest_for_model(caller=request.caller, machine=machine),
        "",
    )
    if created is not None:
        if created is True or not created:
            messages.info(request, _("The suggested rules are there already."))
        else:
            messages.success(
                request,
                _("Added %(count)s rules: %(names)s.")
                % {"count": len(created), "names": ", ".join(rule.name for rule in created)},
            )
    return redirect("monitoring:model", machine_id=machine.pk)
