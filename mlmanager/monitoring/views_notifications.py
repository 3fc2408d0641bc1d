"""Notifications and reports pages: the bell in the top bar (its unread count, fetched by the
layout and again on each live `mlmanager:notification`), the in-app notifications (mark
read), one's notification preferences, and the scheduled reports (list, form, send now).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.accounts.selectors import team_members
from mlmanager.core.pagination import page_of
from mlmanager.monitoring import selectors
from mlmanager.monitoring.access import MonitorAction
from mlmanager.monitoring.forms import PreferenceForm, ReportForm
from mlmanager.monitoring.models import Report
from mlmanager.monitoring.services import notifications as notification_services
from mlmanager.monitoring.services import reports as report_services
from mlmanager.monitoring.views import (
    abilities,
    act,
    current_team,
    form_error,
    may_create,
    model_choices,
    site_choices,
)

BELL_MAX = 99  # shown as "99+" beyond

# --- notifications ------------------------------------------------------------------------------


@login_required
def bell(request: AuthenticatedHttpRequest) -> HttpResponse:
    unread = (
        selectors.notifications_for_user(request.caller)
        .filter(read_at__isnull=True)
        .order_by()[: BELL_MAX + 1]
        .count()
    )
    return render(
        request,
        "monitoring/partials/_bell.html",
        {"unread": unread, "unread_label": f"{BELL_MAX}+" if unread > BELL_MAX else str(unread)},
    )


@login_required
def notification_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    notifications = (
        selectors.notifications_for_user(request.caller)
        .select_related("alert")
        .order_by("-created_at", "-id")
    )
    return render(
        request,
        "monitoring/notifications.html",
        {"page": page_of(request, notifications), "tab": "notifications"},
    )


@login_required
@require_POST
def notifications_read(request: AuthenticatedHttpRequest) -> HttpResponse:
    raw = request.POST.getlist("id")
    try:
        ids = [int(value) for value in raw] if raw else None
    except ValueError:
        ids = []
    count = notification_services.notifications_mark_read(caller=request.caller, ids=ids)
    if count:
        messages.success(request, _("Marked %(count)s as read.") % {"count": count})
    return redirect("monitoring:notifications")


@login_required
def preferences(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = current_team(request)
    choices = {"sites": site_choices(request), "models": model_choices(request)}
    if request.method == "POST":
        form = PreferenceForm(request.POST, **choices)
        if not form.is_valid():
            form_error(request, form)
        else:
            data = form.cleaned_data
            done = act(
                request,
                lambda: notification_services.notification_preference_set(
                    caller=request.caller,
                    team=team,
                    min_severity=data["min_severity"],
                    site_ids=data["sites"],
                    machine_ids=data["models"],
                    email=data["email"],
                    in_app=data["in_app"],
                    quiet_start=data["quiet_start"],
                    quiet_end=data["quiet_end"],
                ),
                _("Preferences saved."),
            )
            if done is not None:
                return redirect("monitoring:preferences")
        status = 400
    else:
        preference = notification_services.notification_preference_get(
            caller=request.caller, team=team
        )
        form = PreferenceForm(
            initial={
                "min_severity": preference.min_severity,
                "sites": list(preference.sites.values_list("pk", flat=True))
                if preference.pk
                else [],
                "models": list(preference.machines.values_list("pk", flat=True))
                if preference.pk
                else [],
                "email": preference.email,
                "in_app": preference.in_app,
                "quiet_start": preference.quiet_start,
                "quiet_end": preference.quiet_end,
            },
            **choices,
        )
        status = 200
    return render(
        request,
        "monitoring/preferences.html",
        {"form": form, "tab": "notifications"},
        status=status,
    )


# --- reports ------------------------------------------------------------------------------------


@login_required
def report_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    reports = selectors.reports_for_caller(request.caller).select_related("chart", "dashboard")
    if request.team is not None:
        reports = reports.filter(team=request.team)
    return render(
        request,
        "monitoring/reports.html",
        {
            "page": page_of(request, reports.order_by("name", "pk")),
            "may_create": may_create(request),
            "tab": "reports",
        },
    )


def _report_form(
    request: AuthenticatedHttpRequest, report: Report | None, data: Any = None
) -> ReportForm:
    team = current_team(request) if report is None else report.team
    charts = selectors.charts_for_caller(request.caller).filter(team=team).order_by("name")
    dashboards = selectors.dashboards_for_caller(request.caller).filter(team=team).order_by("name")
    members = [
        (membership.user_id, membership.user.display_name)
        for membership in team_members(team=team).select_related("user")
    ]
    initial = (
        ReportForm.initial_of(report)
        if report
        else {"recipients": [request.user.pk], "active": True}
    )
    return ReportForm(
        data,
        initial=initial,
        charts=list(charts.values_list("pk", "name")),
        dashboards=list(dashboards.values_list("pk", "name")),
        members=members,
    )


def _report_save(
    request: AuthenticatedHttpRequest, report: Report | None, form: ReportForm
) -> Report | None:
    if not form.is_valid():
        form_error(request, form)
        return None
    data = form.cleaned_data
    fields = {
        "name": data["name"],
        "frequency": data["frequency"],
        "weekday": data["weekday"],
        "time_of_day": data["time_of_day"],
        "recipient_ids": data["recipients"],
        "active": data["active"],
        **form.subject_ids(),
    }
    if report is None:
        return act(
            request,
            lambda: report_services.report_create(caller=request.caller, **fields),
            _("Report created."),
        )
    return act(
        request,
        lambda: report_services.report_update(caller=request.caller, report=report, **fields),
        _("Report saved."),
    )


@login_required
def report_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = _report_form(request, None, request.POST if request.method == "POST" else None)
    if request.method == "POST":
        report = _report_save(request, None, form)
        if report is not None:
            return redirect("monitoring:report", report_id=report.pk)
    return render(
        request,
        "monitoring/report_form.html",
        {"report": None, "form": form, "tab": "reports"},
        status=400 if request.method == "POST" else 200,
    )


@login_required
def report_detail(request: AuthenticatedHttpRequest, report_id: int) -> HttpResponse:
    """The report and its last deliveries; its form for who may change it (POSTs here)."""
    report = selectors.access_report(caller=request.caller, id=report_id)
    subject = report.chart or report.dashboard
    subject_access = (selectors.access_chart if report.chart_id else selectors.access_dashboard)(
        caller=request.caller,
        id=subject.pk,  # type: ignore[union-attr]
    )
    rights = abilities(subject_access)
    posted = request.method == "POST"
    if posted:
        selectors.access_report(caller=request.caller, id=report_id, action=MonitorAction.CHANGE)
    form = _report_form(request, report, request.POST if posted else None)
    if posted:
        if _report_save(request, report, form) is not None:
            return redirect("monitoring:report", report_id=report.pk)
        report.refresh_from_db()
    context = {
        "report": report,
        "form": form,
        "deliveries": list(report.deliveries.select_related("recipient")[:20]),
        "tab": "reports",
        **rights,
    }
    return render(request, "monitoring/report.html", context, status=400 if posted else 200)


@login_required
@require_POST
def report_send_now(request: AuthenticatedHttpRequest, report_id: int) -> HttpResponse:
    report = selectors.access_report(
        caller=request.caller, id=report_id, action=MonitorAction.CHANGE
    )
    deliveries = act(
        request,
        lambda: report_services.report_send_now(caller=request.caller, report=report),
        "",
    )
    if deliveries is not None:
        sent = sum(1 for delivery in deliveries if delivery.sent_at)
        failed = len(deliveries) - sent
        if failed:
            messages.error(
                request,
                _("Sent to %(sent)s recipients; %(failed)s failed.")
                % {"sent": sent, "failed": failed},
            )
        else:
            messages.success(
                request,
                ngettext("Sent to %(sent)s recipient.", "Sent to %(sent)s recipients.", sent)
                % {"sent": sent},
            )
    return redirect("monitoring:report", report_id=report.pk)


@login_required
@require_POST
def report_delete(request: AuthenticatedHttpRequest, report_id: int) -> HttpResponse:
    report = selectors.access_report(
        caller=request.caller, id=report_id, action=MonitorAction.CHANGE
    )
    act(
        request,
        lambda: report_services.report_delete(caller=request.caller, report=report),
        _("Report %(name)s deleted.") % {"name": report.name},
    )
    return redirect("monitoring:reports")
