"""Charts and dashboards: create, change, delete.

A chart's series are checked and normalised by `monitoring.series`; its `site` is derived from
them (the one site of its sensors, None for a chart of models only), and decides who may see
and change it: a chart of a site's sensors is changed by whoever maintains the site, a chart of
no site by the team's editors. A dashboard's `layout` places charts of its team the caller
sees on a 12-column grid; a dashboard of a site holds that site's charts and charts of no site.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from mlmanager.accounts.access import require_team_action
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Team
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, Conflict, NotFound
from mlmanager.monitoring.models import Chart, Dashboard
from mlmanager.monitoring.selectors import charts_for_caller
from mlmanager.monitoring.series import series_validate
from mlmanager.sites.access import SiteAction
from mlmanager.sites.selectors import access_site

GRID_COLUMNS = 12
MAX_ROWS = 200
MAX_HEIGHT = 24
MAX_LAYOUT_ITEMS = 48
MIN_RANGE_S = 60
MAX_RANGE_S = 366 * 24 * 3600
CHART_FIELDS = ("name", "description", "series", "range_s")
DASHBOARD_FIELDS = ("name", "description", "site", "layout")


def _invalid(field: str, message: str, *, code: str) -> ApplicationError:
    return ApplicationError(
        _("%(field)s: %(message)s") % {"field": field, "message": message},
        code=code,
        details={field: [message]},
    )


def _require_change(*, caller: Caller, team_id: int, site_id: int | None) -> None:
    """Charts and dashboards of a site are changed by who maintains it (its technicians and
    admins); those of no site by the team's editors."""
    if site_id is None:
        require_team_action(caller=caller, team_id=team_id, action=Action.CHANGE)
    else:
        access_site(caller=caller, id=site_id, action=SiteAction.MAINTAIN)


def _name(value: Any, *, code: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 200:
        raise _invalid("name", _("must be text of 1 to 200 characters"), code=code)
    return value.strip()


def _description(value: Any, *, code: str) -> str:
    if not isinstance(value, str) or len(value) > 5000:
        raise _invalid("description", _("must be text of at most 5000 characters"), code=code)
    return value


def _save(obj: Chart | Dashboard, *, update_fields: list[str] | None = None) -> None:
    """Save, a name already taken in the team (now, or by a concurrent request) being 409
    `already_exists`."""
    model = type(obj)
    taken = model.objects.filter(team_id=obj.team_id, name=obj.name).exclude(pk=obj.pk)
    message = (
        _("This team already has a chart with that name.")
        if model is Chart
        else _("This team already has a dashboard with that name.")
    )
    if taken.exists():
        raise Conflict(message, code="already_exists")
    # The series and layout are checked above (an empty layout is fine; "blank" to Django).
    obj.full_clean(
        exclude=["team", "site", "created_by", "series", "layout"], validate_constraints=False
    )
    try:
        with transaction.atomic():
            obj.save(update_fields=update_fields)
    except IntegrityError:
        raise Conflict(message, code="already_exists") from None


# --- charts --------------------------------------------------------------------------------------


def _chart_fields(*, caller: Caller, team_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    if "name" in fields:
        checked["name"] = _name(fields["name"], code="invalid_chart")
    if "description" in fields:
        checked["description"] = _description(fields["description"], code="invalid_chart")
    if "range_s" in fields:
        value = fields["range_s"]
        if isinstance(value, bool) or not isinstance(value, int):
            value = None
        if value is None or not MIN_RANGE_S <= value <= MAX_RANGE_S:
            raise _invalid(
                "range_s",
                _("must be a whole number of seconds from %(low)s to %(high)s")
                % {"low": MIN_RANGE_S, "high": MAX_RANGE_S},
                code="invalid_chart",
            )
        checked["range_s"] = value
    if "series" in fields:
        if not isinstance(fields["series"], list) or not fields["series"]:
            raise _invalid("series", _("must be a non-empty list of series"), code="invalid_series")
        checked["series"], checked["site_id"] = series_validate(
            caller=caller, team_id=team_id, specs=fields["series"]
        )
    return checked


@transaction.atomic
def chart_create(
    *,
    caller: Caller,
    team: Team,
    name: str,
    series: Any,
    description: str = "",
    range_s: int = 24 * 3600,
) -> Chart:
    """A chart of the team's series (sensors of one site, models): the caller must maintain
    the site of its sensors, or for a chart of no site be an editor of the team."""
    checked = _chart_fields(
        caller=caller,
        team_id=team.pk,
        fields={"name": name, "series": series, "description": description, "range_s": range_s},
    )
    _require_change(caller=caller, team_id=team.pk, site_id=checked["site_id"])
    chart = Chart(team=team, created_by=caller.user, **checked)
    _save(chart)
    audit_record(
        caller=caller,
        team=team,
        action=AuditAction.CHART_CREATED,
        target=chart,
        details={"name": chart.name, "site": chart.site_id, "series": len(chart.series)},
    )
    return chart


@transaction.atomic
def chart_update(*, caller: Caller, chart: Chart, **fields: Any) -> Chart:
    """Change a chart (found with `access_chart(action=CHANGE)`). Series of another site need
    the right to change charts there too, and the chart must not sit on a dashboard of its
    old site (409 `chart_on_site_dashboard`)."""
    given = {name: value for name, value in fields.items() if name in CHART_FIELDS}
    checked = _chart_fields(caller=caller, team_id=chart.team_id, fields=given)
    if "site_id" in checked and checked["site_id"] != chart.site_id:
        _require_change(caller=caller, team_id=chart.team_id, site_id=checked["site_id"])
        if checked["site_id"] is not None:
            elsewhere = [
                dashboard.name
                for dashboard in Dashboard.objects.filter(team_id=chart.team_id)
                .filter(site__isnull=False)
                .exclude(site_id=checked["site_id"])
                if chart.pk in _layout_chart_ids(dashboard.layout)
            ]
            if elsewhere:
                raise Conflict(
                    _("The chart is on the dashboard “%(name)s” of another site.")
                    % {"name": elsewhere[0]},
                    code="chart_on_site_dashboard",
                )
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in checked.items():
        if getattr(chart, name) != value:
            changes[name] = (getattr(chart, name), value)
            setattr(chart, name, value)
    if not changes:
        return chart
    _save(chart)
    audit_record(
        caller=caller,
        team=chart.team,
        action=AuditAction.CHART_CHANGED,
        target=chart,
        changes={
            name: change if name != "series" else (len(change[0]), len(change[1]))
            for name, change in changes.items()
        },
    )
    return chart


@transaction.atomic
def chart_delete(*, caller: Caller, chart: Chart) -> None:
    """Delete a chart (found with `access_chart(action=CHANGE)`), its reports, and its places
    on the team's dashboards."""
    for dashboard in Dashboard.objects.select_for_update().filter(team_id=chart.team_id):
        kept = [item for item in dashboard.layout if item.get("chart") != chart.pk]
        if len(kept) != len(dashboard.layout):
            dashboard.layout = kept
            dashboard.save(update_fields=["layout", "updated_at"])
    audit_record(
        caller=caller,
        team=chart.team,
        action=AuditAction.CHART_DELETED,
        target=chart,
        details={"name": chart.name, "site": chart.site_id},
    )
    chart.delete()


# --- dashboards ----------------------------------------------------------------------------------


def _layout_chart_ids(layout: Any) -> list[int]:
    return [item["chart"] for item in layout or [] if isinstance(item, dict) and "chart" in item]


def _whole(value: Any, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _layout_checked(
    *, caller: Caller, team_id: int, layout: Any, site_id: int | None
) -> list[dict[str, int]]:
    """The layout's items as {"chart", "x", "y", "w", "h"}: each a chart of the team the
    caller sees (404 otherwise, as for any id), at most once, inside the 12 columns; on a
    site's dashboard, charts of that site or of none."""
    if not isinstance(layout, list) or len(layout) > MAX_LAYOUT_ITEMS:
        raise _invalid(
            "layout",
            _("must be a list of at most %(count)s charts") % {"count": MAX_LAYOUT_ITEMS},
            code="invalid_layout",
        )
    items: list[dict[str, int]] = []
    for index, item in enumerate(layout):
        field = f"layout[{index}]"
        if not isinstance(item, dict) or set(item) - {"chart", "x", "y", "w", "h"}:
            raise _invalid(
                field, _("must be an object of chart, x, y, w and h"), code="invalid_layout"
            )
        placed = {"x": 0, "y": 0, "w": 6, "h": 4, **item}
        bounds = {
            "chart": (1, 2**63 - 1),
            "x": (0, GRID_COLUMNS - 1),
            "y": (0, MAX_ROWS),
            "w": (1, GRID_COLUMNS),
            "h": (1, MAX_HEIGHT),
        }
        for key, (low, high) in bounds.items():
            if not _whole(placed.get(key), low, high):
                raise _invalid(
                    f"{field}.{key}",
                    _("must be a whole number from %(low)s to %(high)s")
                    % {"low": low, "high": high},
                    code="invalid_layout",
                )
        if placed["x"] + placed["w"] > GRID_COLUMNS:
            raise _invalid(
                f"{field}.w",
                _("the chart passes the grid's %(count)s columns") % {"count": GRID_COLUMNS},
                code="invalid_layout",
            )
        if any(other["chart"] == placed["chart"] for other in items):
            raise _invalid(
                f"{field}.chart", _("the chart is on the dashboard already"), code="invalid_layout"
            )
        items.append({key: placed[key] for key in ("chart", "x", "y", "w", "h")})
    ids = [item["chart"] for item in items]
    sites = dict(
        charts_for_caller(caller)
        .filter(team_id=team_id, pk__in=ids)
        .values_list("pk", "site_id")
        .order_by()
    )
    for index, item in enumerate(items):
        if item["chart"] not in sites:
            message = _("no such chart")
            raise NotFound(
                f"layout[{index}].chart: {message}", details={f"layout[{index}].chart": [message]}
            )
        if site_id is not None and sites[item["chart"]] not in (None, site_id):
            raise _invalid(
                f"layout[{index}].chart",
                _("a site's dashboard holds charts of that site (or of no site)"),
                code="chart_of_another_site",
            )
    return items


def _dashboard_fields(
    *, caller: Caller, team_id: int, fields: dict[str, Any], dashboard: Dashboard | None
) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    if "name" in fields:
        checked["name"] = _name(fields["name"], code="invalid_dashboard")
    if "description" in fields:
        checked["description"] = _description(fields["description"], code="invalid_dashboard")
    site_id = dashboard.site_id if dashboard is not None else None
    if "site" in fields:
        site_id = fields["site"]
        if site_id is not None:
            # A site of the team the caller sees, or 404 as for any id.
            site = access_site(caller=caller, id=site_id)
            if site.team_id != team_id:
                raise NotFound()
            site_id = site.pk
        checked["site_id"] = site_id
    if "layout" in fields or "site" in fields:
        layout = fields.get("layout", dashboard.layout if dashboard else [])
        checked["layout"] = _layout_checked(
            caller=caller, team_id=team_id, layout=layout, site_id=site_id
        )
    return checked


@transaction.atomic
def dashboard_create(
    *,
    caller: Caller,
    team: Team,
    name: str,
    layout: Any = None,
    site: int | None = None,
    description: str = "",
) -> Dashboard:
    """A dashboard of the team (or of one of its sites: who maintains the site makes it)."""
    checked = _dashboard_fields(
        caller=caller,
        team_id=team.pk,
        dashboard=None,
        fields={
            "name": name,
            "description": description,
            "site": site,
            "layout": [] if layout is None else layout,
        },
    )
    _require_change(caller=caller, team_id=team.pk, site_id=checked["site_id"])
    dashboard = Dashboard(team=team, created_by=caller.user, **checked)
    _save(dashboard)
    audit_record(
        caller=caller,
        team=team,
        action=AuditAction.DASHBOARD_CREATED,
        target=dashboard,
        details={
            "name": dashboard.name,
            "site": dashboard.site_id,
            "charts": len(dashboard.layout),
        },
    )
    return dashboard


@transaction.atomic
def dashboard_update(*, caller: Caller, dashboard: Dashboard, **fields: Any) -> Dashboard:
    """Change a dashboard (found with `access_dashboard(action=CHANGE)`); moving it to another
    site needs the right to change dashboards there."""
    given = {name: value for name, value in fields.items() if name in DASHBOARD_FIELDS}
    checked = _dashboard_fields(
        caller=caller, team_id=dashboard.team_id, fields=given, dashboard=dashboard
    )
    if "site_id" in checked and checked["site_id"] != dashboard.site_id:
        _require_change(caller=caller, team_id=dashboard.team_id, site_id=checked["site_id"])
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in checked.items():
        if getattr(dashboard, name) != value:
            changes[name] = (getattr(dashboard, name), value)
            setattr(dashboard, name, value)
    if not changes:
        return dashboard
    _save(dashboard)
    audit_record(
        caller=caller,
        team=dashboard.team,
        action=AuditAction.DASHBOARD_CHANGED,
        target=dashboard,
        changes={
            name: change
            if name != "layout"
            else (_layout_chart_ids(change[0]), _layout_chart_ids(change[1]))
            for name, change in changes.items()
        },
    )
    return dashboard


@transaction.atomic
def dashboard_delete(*, caller: Caller, dashboard: Dashboard) -> None:
    """Delete a dashboard (found with `access_dashboard(action=CHANGE)`) and its reports; its
    charts stay."""
    audit_record(
        caller=caller,
        team=dashboard.team,
        action=AuditAction.DASHBOARD_DELETED,
        target=dashboard,
        details={"name": dashboard.name, "site": dashboard.site_id},
    )
    dashboard.delete()
