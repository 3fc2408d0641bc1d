"""Sites pages: the overview, the live site dashboard, the sensor page, the site settings
(members, sensors, device keys) and the MQTT dead letters.

Buttons a role may not use are not shown (`can_*` in the context, from sites.access), and
every POST fetches its object with the action it needs, so a hand-made request is refused too.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.accounts.selectors import team_members
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.pagination import page_of
from mlmanager.monitoring.access import MonitorAction
from mlmanager.monitoring.selectors import access_alert
from mlmanager.monitoring.services import alerts as alert_services
from mlmanager.sites import charts, selectors
from mlmanager.sites.access import SiteAction, site_role_allows
from mlmanager.sites.forms import (
    CalibrateForm,
    DeviceKeyForm,
    MemberForm,
    ProductionForm,
    SensorForm,
    SiteForm,
    ThresholdsForm,
)
from mlmanager.sites.models import Sensor, Site
from mlmanager.sites.services import sensors as sensor_services
from mlmanager.sites.services import sites as site_services

# The dashboard's ranges: how far back, and which points (sensor_series' resolution).
RANGES: dict[str, tuple[timedelta, str, Any]] = {
    "1h": (timedelta(hours=1), "raw", gettext_lazy("1 hour")),
    "24h": (timedelta(hours=24), "1m", gettext_lazy("24 hours")),
    "7d": (timedelta(days=7), "1h", gettext_lazy("7 days")),
    "30d": (timedelta(days=30), "1h", gettext_lazy("30 days")),
}
DEFAULT_RANGE = "1h"
SERIES_LIMIT = 5000  # 24 h of minute rollups, or an hour of readings every second, fit
SPARK_SPAN = timedelta(hours=1)
SPARK_LIMIT = 240
CALIBRATIONS_SHOWN = 50


def _is_user_error(error: ApplicationError) -> bool:
    """Errors shown as a message on the page; 403 and 404 go to the error page."""
    return error.status_code not in (403, 404)


def _act(request: AuthenticatedHttpRequest, action: Callable[[], Any], success: str) -> Any:
    """Runs a page action: what it returns, or None after showing why it was refused (a
    refusal the user can fix; 403 and 404 go to the error page)."""
    try:
        done = action()
    except ApplicationError as error:
        if not _is_user_error(error):
            raise
        messages.error(request, error.message)
        return None
    except ValidationError as error:  # the services' full_clean()
        for message in error.messages:
            messages.error(request, message)
        return None
    messages.success(request, success)
    return done if done is not None else True


def _form_error(request: AuthenticatedHttpRequest, form: Any) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


def _abilities(role: str | None) -> dict[str, bool]:
    return {
        f"can_{action.value}": site_role_allows(role, action)
        for action in (SiteAction.OPERATE, SiteAction.MAINTAIN, SiteAction.MANAGE)
    }


# --- overview -----------------------------------------------------------------------------------


@login_required
def site_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request,
        "sites/list.html",
        {"rows": selectors.sites_overview(caller=request.caller), "form": SiteForm()},
    )


@login_required
@require_POST
def site_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = request.team
    if team is None:
        raise NotFound()
    form = SiteForm(request.POST)
    if not form.is_valid():
        _form_error(request, form)
        return redirect("sites:list")
    site = _act(
        request,
        lambda: site_services.site_create(caller=request.caller, team=team, **form.cleaned_data),
        _("Site created."),
    )
    if site is None:
        return redirect("sites:list")
    return redirect("sites:dashboard", site_id=site.pk)


# --- the live dashboard -------------------------------------------------------------------------


def _points(sensor: Sensor, *, start: datetime, end: datetime, resolution: str, limit: int) -> list:
    series = selectors.sensor_series(
        sensor=sensor, start=start, end=end, resolution=resolution, limit=limit
    )
    return [(point["timestamp"], point["value"]) for point in series]


def _sensor_chart(sensor: Sensor, *, range_key: str, now: datetime) -> charts.SeriesChart:
    span, resolution, _label = RANGES[range_key]
    start = now - span
    return charts.series_chart(
        _points(sensor, start=start, end=now, resolution=resolution, limit=SERIES_LIMIT),
        start=start,
        end=now,
        warning=(sensor.warning_min, sensor.warning_max),
        critical=(sensor.critical_min, sensor.critical_max),
    )


def _range_of(request: AuthenticatedHttpRequest) -> str:
    chosen = request.GET.get("range", DEFAULT_RANGE)
    return chosen if chosen in RANGES else DEFAULT_RANGE


@login_required
def site_dashboard(request: AuthenticatedHttpRequest, site_id: int) -> HttpResponse:
    """The site now; the live partial re-renders when the site's socket says it changed."""
    site = selectors.access_site(caller=request.caller, id=site_id)
    status = selectors.site_status(site=site)
    range_key = _range_of(request)
    now = timezone.now()
    cards = [
        {
            "sensor": sensor,
            "state": status.states[sensor.pk],
            "sparkline": charts.sparkline(
                _points(
                    sensor, start=now - SPARK_SPAN, end=now, resolution="raw", limit=SPARK_LIMIT
                )
            ),
            "chart": _sensor_chart(sensor, range_key=range_key, now=now),
        }
        for sensor in status.sensors
    ]
    context = {
        "site": site,
        "status": status,
        "cards": cards,
        "range_key": range_key,
        "ranges": [(key, label) for key, (_span, _res, label) in RANGES.items()],
        "production_form": ProductionForm(initial={"date": timezone.localdate()}),
        **_abilities(site.caller_role),  # type: ignore[attr-defined]
    }
    return render_page_or_partial(
        request, page="sites/dashboard.html", partial="sites/partials/_live.html", context=context
    )


@login_required
@require_POST
def site_start_production(request: AuthenticatedHttpRequest, site_id: int) -> HttpResponse:
    site = selectors.access_site(caller=request.caller, id=site_id, action=SiteAction.OPERATE)
    _act(
        request,
        lambda: site_services.site_start_production(caller=request.caller, site=site),
        _("Production started."),
    )
    return redirect("sites:dashboard", site_id=site.pk)


@login_required
@require_POST
def site_emergency_stop(request: AuthenticatedHttpRequest, site_id: int) -> HttpResponse:
    site = selectors.access_site(caller=request.caller, id=site_id, action=SiteAction.OPERATE)
    reason = request.POST.get("reason", "").strip()[:500]
    _act(
        request,
        lambda: site_services.site_emergency_stop(caller=request.caller, site=site, reason=reason),
        _("Emergency stop sent. The site is offline."),
    )
    return redirect("sites:dashboard", site_id=site.pk)


@login_required
@require_POST
def site_production(request: AuthenticatedHttpRequest, site_id: int) -> HttpResponse:
    site = selectors.access_site(caller=request.caller, id=site_id, action=SiteAction.OPERATE)
    form = ProductionForm(request.POST)
    if not form.is_valid():
        _form_error(request, form)
    else:
        _act(
            request,
            lambda: site_services.production_record(
                caller=request.caller,
                site=site,
                on=form.cleaned_data["date"],
                actual=form.cleaned_data["actual"],
            ),
            _("Production recorded."),
        )
    return redirect("sites:dashboard", site_id=site.pk)


@login_required
@require_POST
def alert_acknowledge(request: AuthenticatedHttpRequest, alert_id: int) -> HttpResponse:
    """The site dashboard's acknowledge button (the alert's own page is monitoring's)."""
    alert = access_alert(caller=request.caller, id=alert_id, action=MonitorAction.OPERATE)
    if alert.site_id is None:
        raise Http404
    alert_services.alert_acknowledge(caller=request.caller, alert=alert)
    messages.success(request, _("Alert acknowledged."))
    return redirect("sites:dashboard", site_id=alert.site_id)


# --- sensors ------------------------------------------------------------------------------------


@login_required
def sensor_detail(request: AuthenticatedHttpRequest, sensor_id: int) -> HttpResponse:
    sensor = selectors.access_sensor(caller=request.caller, id=sensor_id)
    range_key = _range_of(request)
    now = timezone.now()
    role = sensor.caller_role  # type: ignore[attr-defined]
    context = {
        "sensor": sensor,
        "site": sensor.site,
        "state": selectors.sensor_state(sensor, now=now),
        "chart": _sensor_chart(sensor, range_key=range_key, now=now),
        "range_key": range_key,
        "ranges": [(key, label) for key, (_span, _res, label) in RANGES.items()],
        "calibrations": list(selectors.sensor_calibrations(sensor=sensor)[:CALIBRATIONS_SHOWN]),
        "thresholds_form": ThresholdsForm(initial=ThresholdsForm.initial_of(sensor)),
        "calibrate_form": CalibrateForm(),
        **_abilities(role),
    }
    return render(request, "sites/sensor.html", context)


@login_required
def sensor_export(request: AuthenticatedHttpRequest, sensor_id: int) -> StreamingHttpResponse:
    """The sensor's readings over the chosen range (1 h … 30 d) as CSV, for whoever may see
    the sensor: timestamp (UTC, ISO 8601), raw value, calibrated value, quality."""
    sensor = selectors.access_sensor(caller=request.caller, id=sensor_id)
    span, _resolution, _label = RANGES[_range_of(request)]
    end = timezone.now()
    rows = selectors.sensor_readings_export(sensor=sensor, start=end - span, end=end)
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    filename = slugify(f"{sensor.site.name}-{sensor.name}") or "sensor"
    response["Content-Disposition"] = f'attachment; filename="{filename}-readings.csv"'
    return response


def _csv_lines(rows: Iterable[tuple[datetime, float, float, str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(["timestamp", "raw_value", "value", "quality"])
    for moment, raw, value, quality in rows:
        yield writer.writerow([moment.isoformat(), repr(raw), repr(value), quality])


class _Echo:
    """A file that hands back what is written: csv.writer's rows, one by one, to stream."""

    def write(self, value: str) -> str:
        return value


@login_required
@require_POST
def sensor_thresholds(request: AuthenticatedHttpRequest, sensor_id: int) -> HttpResponse:
    sensor = selectors.access_sensor(
        caller=request.caller, id=sensor_id, action=SiteAction.MAINTAIN
    )
    form = ThresholdsForm(request.POST)
    if not form.is_valid():
        _form_error(request, form)
    else:
        _act(
            request,
            lambda: sensor_services.sensor_update(
                caller=request.caller, sensor=sensor, **form.cleaned_data
            ),
            _("Thresholds saved."),
        )
    return redirect("sites:sensor", sensor_id=sensor.pk)


@login_required
@require_POST
def sensor_calibrate(request: AuthenticatedHttpRequest, sensor_id: int) -> HttpResponse:
    sensor = selectors.access_sensor(
        caller=request.caller, id=sensor_id, action=SiteAction.MAINTAIN
    )
    form = CalibrateForm(request.POST)
    if not form.is_valid():
        _form_error(request, form)
    else:
        _act(
            request,
            lambda: sensor_services.sensor_calibrate(
                caller=request.caller,
                sensor=sensor,
                reference_value=form.cleaned_data["reference_value"],
            ),
            _("Sensor calibrated."),
        )
    return redirect("sites:sensor", sensor_id=sensor.pk)


@login_required
@require_POST
def sensor_add(request: AuthenticatedHttpRequest, site_id: int) -> HttpResponse:
    site = selectors.access_site(caller=request.caller, id=site_id, action=SiteAction.MANAGE)
    form = SensorForm(request.POST)
    if not form.is_valid():
        _form_error(request, form)
    else:
        _act(
            request,
            lambda: sensor_services.sensor_create(
                caller=request.caller, site=site, **form.cleaned_data
            ),
            _("Sensor added."),
        )
    return redirect("sites:settings", site_id=site.pk)


@login_required
@require_POST
def sensor_remove(request: AuthenticatedHttpRequest, sensor_id: int) -> HttpResponse:
    sensor = selectors.access_sensor(caller=request.caller, id=sensor_id, action=SiteAction.MANAGE)
    sensor_services.sensor_delete(caller=request.caller, sensor=sensor)
    messages.success(request, _("Sensor %(name)s removed.") % {"name": sensor.name})
    return redirect("sites:settings", site_id=sensor.site_id)


# --- settings -----------------------------------------------------------------------------------


def _settings_page(
    request: AuthenticatedHttpRequest,
    site: Site,
    *,
    site_form: SiteForm | None = None,
    new_key: str | None = None,
) -> HttpResponse:
    members = [
        (membership.user_id, membership.user.display_name)
        for membership in team_members(team=site.team)
    ]
    context = {
        "site": site,
        "site_form": site_form or SiteForm(initial=SiteForm.initial_of(site)),
        "sensors": list(site.sensors.order_by("name")),
        "sensor_form": SensorForm(),
        "members": list(selectors.site_members(site=site)),
        "member_form": MemberForm(members=members),
        "keys": list(selectors.site_device_keys(site=site)),
        "key_form": DeviceKeyForm(),
        "new_key": new_key,
    }
    return render(request, "sites/settings.html", context)


@login_required
def site_settings(request: AuthenticatedHttpRequest, site_id: int) -> HttpResponse:
    site = selectors.access_site(caller=request.caller, id=site_id, action=SiteAction.MANAGE)
    if request.method != "POST":
        return _settings_page(request, site)
    form = SiteForm(request.POST)
    if form.is_valid():
        if _act(
            request,
            lambda: site_services.site_update(
                caller=request.caller, site=site, **form.cleaned_data
            ),
            _("Saved."),
        ):
            return redirect("sites:settings", site_id=site.pk)
        site.refresh_from_db()
    return _settings_page(request, site, site_form=form)


@login_required
@require_POST
def site_delete(request: AuthenticatedHttpRequest, site_id: int) -> HttpResponse:
    site = selectors.access_site(caller=request.caller, id=site_id, action=SiteAction.MANAGE)
    site_services.site_delete(caller=request.caller, site=site)
    messages.success(request, _("%(name)s was deleted.") % {"name": site.name})
    return redirect("sites:list")


@login_required
@require_POST
def member_set(request: AuthenticatedHttpRequest, site_id: int) -> HttpResponse:
    site = selectors.access_site(caller=request.caller, id=site_id, action=SiteAction.MANAGE)
    members = [(membership.user_id, "") for membership in team_members(team=site.team)]
    form = MemberForm(request.POST, members=members)
    if not form.is_valid():
        _form_error(request, form)
    else:
        _act(
            request,
            lambda: site_services.site_member_set(
                caller=request.caller,
                site=site,
                user_id=form.cleaned_data["user"],
                role=form.cleaned_data["role"],
            ),
            _("Role saved."),
        )
    return redirect("sites:settings", site_id=site.pk)


@login_required
@require_POST
def member_remove(request: AuthenticatedHttpRequest, site_id: int, user_id: int) -> HttpResponse:
    site = selectors.access_site(caller=request.caller, id=site_id, action=SiteAction.MANAGE)
    site_services.site_member_remove(caller=request.caller, site=site, user_id=user_id)
    messages.success(request, _("Role removed."))
    return redirect("sites:settings", site_id=site.pk)


@login_required
@require_POST
def device_key_create(request: AuthenticatedHttpRequest, site_id: int) -> HttpResponse:
    """Shows the new key once, on the settings page itself (never stored, never redirected)."""
    site = selectors.access_site(caller=request.caller, id=site_id, action=SiteAction.MANAGE)
    form = DeviceKeyForm(request.POST)
    name = form.cleaned_data["name"] if form.is_valid() else ""
    _key, raw = site_services.device_key_create(caller=request.caller, site=site, name=name)
    response = _settings_page(request, site, new_key=raw)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def device_key_revoke(request: AuthenticatedHttpRequest, site_id: int, key_id: int) -> HttpResponse:
    site = selectors.access_site(caller=request.caller, id=site_id, action=SiteAction.MANAGE)
    key = selectors.site_device_keys(site=site).filter(pk=key_id).first()
    if key is None:
        raise NotFound()
    site_services.device_key_revoke(caller=request.caller, key=key)
    messages.success(request, _("Key %(name)s revoked.") % {"name": key.name})
    return redirect("sites:settings", site_id=site.pk)


# --- dead letters -------------------------------------------------------------------------------


@login_required
def dead_letters(request: AuthenticatedHttpRequest) -> HttpResponse:
    letters = selectors.dead_letters_for_caller(request.caller).select_related("site")
    return render(request, "sites/dead_letters.html", {"page": page_of(request, letters)})
