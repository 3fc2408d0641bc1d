"""Alert rules and alerts pages: the rules list, a rule's page (its chart, its alerts, mute and
unmute, its form), the alerts list (firing first, polled every 10 s) and an alert's page (its
timeline; acknowledge, assign, comment, mute, unmute and resolve, each an htmx POST that
re-renders the alert's part of the page, or a plain POST and redirect without a script).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.errors import ApplicationError
from mlmanager.core.filters import page_filter
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.pagination import page_of
from mlmanager.monitoring import selectors
from mlmanager.monitoring.access import MonitorAction
from mlmanager.monitoring.forms import (
    AlertFilterForm,
    AssignForm,
    CommentForm,
    MuteForm,
    RuleForm,
    series_formset,
    series_of,
)
from mlmanager.monitoring.models import Alert, AlertRule
from mlmanager.monitoring.rule_filters import AlertFilter, RuleFilter
from mlmanager.monitoring.services import alerts as alert_services
from mlmanager.monitoring.services import rules as rule_services
from mlmanager.monitoring.services.notifications import members_who_see
from mlmanager.monitoring.views import (
    abilities,
    act,
    current_team,
    draw,
    form_error,
    formset_errors,
    may_create,
    model_choices,
    sensor_choices,
    series_chart,
    site_choices,
)

RULE_ALERTS_SHOWN = 20
ALERT_CHART_BEFORE = timedelta(hours=1)

# --- rules --------------------------------------------------------------------------------------


@login_required
def rule_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    rules = selectors.rules_for_caller(request.caller).select_related("site")
    if request.team is not None:
        rules = rules.filter(team=request.team)
    rules = page_filter(request=request, queryset=rules, filterset_class=RuleFilter).qs
    rows = page_of(request, rules.prefetch_related("machines").order_by("builtin", "name", "pk"))
    return render(
        request,
        "monitoring/rules.html",
        {
            "page": rows,
            "may_create": may_create(request),
            "tab": "rules",
            "state": request.GET.get("state", ""),
            "builtin": request.GET.get("builtin", ""),
            "states": AlertRule.State.choices,
        },
    )


def _rule_forms(
    request: AuthenticatedHttpRequest, rule: AlertRule | None, data: Any = None
) -> tuple[RuleForm, Any]:
    series = rule.series if rule else None
    form = RuleForm(
        data,
        initial=RuleForm.initial_of(rule) if rule else None,
        series_count=len(series or []),
    )
    formset = series_formset(
        data, series=series, sensors=sensor_choices(request), models=model_choices(request)
    )
    return form, formset


def _rule_fields(form: RuleForm, formset: Any) -> dict[str, Any]:
    data = form.cleaned_data
    return {
        "name": data["name"],
        "description": data["description"],
        "severity": data["severity"],
        "for_s": data["for_s"],
        "evaluate_every_s": data["evaluate_every_s"],
        "hysteresis": data["hysteresis"],
        "enabled": data["enabled"],
        "series": series_of(formset),
        "condition": data["condition"],
    }


def _rule_save(
    request: AuthenticatedHttpRequest, rule: AlertRule | None, form: RuleForm, formset: Any
) -> AlertRule | None:
    if not (form.is_valid() and formset.is_valid()):
        form_error(request, form)
        formset_errors(request, formset)
        return None
    fields = _rule_fields(form, formset)
    if rule is None:
        team = current_team(request)
        return act(
            request,
            lambda: rule_services.rule_create(caller=request.caller, team=team, **fields),
            _("Rule created."),
        )
    return act(
        request,
        lambda: rule_services.rule_update(caller=request.caller, rule=rule, **fields),
        _("Rule saved."),
    )


@login_required
def rule_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    current_team(request)
    form, formset = _rule_forms(request, None, request.POST if request.method == "POST" else None)
    if request.method == "POST":
        rule = _rule_save(request, None, form, formset)
        if rule is not None:
            return redirect("monitoring:rule", rule_id=rule.pk)
    return render(
        request,
        "monitoring/rule_form.html",
        {"rule": None, "form": form, "formset": formset, "tab": "rules"},
        status=400 if request.method == "POST" else 200,
    )


@login_required
def rule_detail(request: AuthenticatedHttpRequest, rule_id: int) -> HttpResponse:
    """The rule: its state and chart, its recent alerts, mute/unmute and (for who may change
    it, when it is not a sensor's built-in rule) its form, which POSTs here."""
    rule = selectors.access_rule(caller=request.caller, id=rule_id)
    rights = abilities(rule)
    posted = request.method == "POST"
    if posted:
        selectors.access_rule(caller=request.caller, id=rule_id, action=MonitorAction.CHANGE)
    form, formset = _rule_forms(request, rule, request.POST if posted else None)
    if posted:
        if rule.builtin:
            messages.error(
                request,
                _("This rule follows its sensor's limits: edit the sensor's thresholds instead."),
            )
        elif _rule_save(request, rule, form, formset) is not None:
            return redirect("monitoring:rule", rule_id=rule.pk)
        else:
            rule.refresh_from_db()
    now = timezone.now()
    context = {
        "rule": rule,
        "form": form,
        "formset": formset,
        "mute_form": MuteForm(),
        "drawn": draw(
            request,
            chart=series_chart(team_id=rule.team_id, series=rule.series),
            start=now - timedelta(hours=24),
            end=now,
        )
        if rule.series
        else None,
        "alerts": list(
            selectors.alerts_for_caller(request.caller).filter(rule=rule)[:RULE_ALERTS_SHOWN]
        ),
        "tab": "rules",
        **rights,
    }
    return render(request, "monitoring/rule.html", context, status=400 if posted else 200)


@login_required
@require_POST
def rule_mute(request: AuthenticatedHttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.access_rule(caller=request.caller, id=rule_id, action=MonitorAction.OPERATE)
    form = MuteForm(request.POST)
    if not form.is_valid():
        form_error(request, form)
    else:
        until = form.until_from(timezone.now())
        act(
            request,
            lambda: rule_services.rule_mute(caller=request.caller, rule=rule, until=until),
            _("Rule muted."),
        )
    return redirect("monitoring:rule", rule_id=rule.pk)


@login_required
@require_POST
def rule_unmute(request: AuthenticatedHttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.access_rule(caller=request.caller, id=rule_id, action=MonitorAction.OPERATE)
    act(
        request,
        lambda: rule_services.rule_unmute(caller=request.caller, rule=rule),
        _("Rule unmuted."),
    )
    return redirect("monitoring:rule", rule_id=rule.pk)


@login_required
@require_POST
def rule_delete(request: AuthenticatedHttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.access_rule(caller=request.caller, id=rule_id, action=MonitorAction.CHANGE)
    if act(
        request,
        lambda: rule_services.rule_delete(caller=request.caller, rule=rule),
        _("Rule %(name)s deleted.") % {"name": rule.name},
    ):
        return redirect("monitoring:rules")
    return redirect("monitoring:rule", rule_id=rule.pk)


# --- alerts -------------------------------------------------------------------------------------

_FIRING_FIRST = Case(
    When(state=Alert.State.FIRING, then=Value(0)),
    When(state=Alert.State.PENDING, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


@login_required
def alert_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Firing alerts first, then pending, then resolved, newest first in each; the table
    re-fetches itself every 10 s with the same filters."""
    alerts = selectors.alerts_for_caller(request.caller)
    if request.team is not None:
        alerts = alerts.filter(team=request.team)
    alerts = page_filter(request=request, queryset=alerts, filterset_class=AlertFilter).qs
    alerts = alerts.select_related("acknowledged_by", "assigned_to").order_by(
        _FIRING_FIRST, "-started_at", "-id"
    )
    context = {
        "page": page_of(request, alerts),
        "filter_form": AlertFilterForm(request.GET or None, sites=site_choices(request)),
        "tab": "alerts",
    }
    return render_page_or_partial(
        request,
        page="monitoring/alerts.html",
        partial="monitoring/partials/_alerts_table.html",
        context=context,
    )


def _alert_context(request: AuthenticatedHttpRequest, alert: Alert) -> dict[str, Any]:
    members = members_who_see(team_id=alert.team_id, site_id=alert.site_id)
    now = timezone.now()
    drawn = None
    if alert.rule is not None and alert.rule.series:
        end = min((alert.resolved_at or now) + ALERT_CHART_BEFORE, now)
        drawn = draw(
            request,
            chart=series_chart(team_id=alert.team_id, series=alert.rule.series),
            start=alert.started_at - ALERT_CHART_BEFORE,
            end=max(end, alert.started_at + ALERT_CHART_BEFORE),
        )
    return {
        "alert": alert,
        "events": list(alert.events.select_related("user").order_by("created_at", "id")),
        "comment_form": CommentForm(),
        "assign_form": AssignForm(
            initial={"user": alert.assigned_to_id},
            members=sorted(
                ((pk, user.display_name) for pk, user in members.items()),
                key=lambda item: str(item[1]).lower(),
            ),
        ),
        "mute_form": MuteForm(),
        "drawn": drawn,
        "tab": "alerts",
        **abilities(alert),
    }


@login_required
def alert_detail(request: AuthenticatedHttpRequest, alert_id: int) -> HttpResponse:
    alert = selectors.access_alert(caller=request.caller, id=alert_id)
    return render_page_or_partial(
        request,
        page="monitoring/alert.html",
        partial="monitoring/partials/_alert.html",
        context=_alert_context(request, alert),
    )


def _alert_action(
    request: AuthenticatedHttpRequest, alert_id: int, run: Any, success: str
) -> HttpResponse:
    """Fetch the alert for OPERATE (403 for a viewer), run the action, and answer with the
    alert's part of the page (htmx) or a redirect to it."""
    alert = selectors.access_alert(caller=request.caller, id=alert_id, action=MonitorAction.OPERATE)
    act(request, lambda: run(alert), success)
    if request.htmx:
        fresh = selectors.access_alert(caller=request.caller, id=alert_id)
        return render(request, "monitoring/partials/_alert.html", _alert_context(request, fresh))
    return redirect("monitoring:alert", alert_id=alert_id)


@login_required
@require_POST
def alert_acknowledge(request: AuthenticatedHttpRequest, alert_id: int) -> HttpResponse:
    return _alert_action(
        request,
        alert_id,
        lambda alert: alert_services.alert_acknowledge(caller=request.caller, alert=alert),
        _("Alert acknowledged."),
    )


@login_required
@require_POST
def alert_resolve(request: AuthenticatedHttpRequest, alert_id: int) -> HttpResponse:
    return _alert_action(
        request,
        alert_id,
        lambda alert: alert_services.alert_resolve(caller=request.caller, alert=alert),
        _("Alert resolved."),
    )


@login_required
@require_POST
def alert_unmute(request: AuthenticatedHttpRequest, alert_id: int) -> HttpResponse:
    return _alert_action(
        request,
        alert_id,
        lambda alert: alert_services.alert_unmute(caller=request.caller, alert=alert),
        _("Alert unmuted."),
    )


def _refused(message: str) -> Any:
    def run(_alert: Alert) -> None:
        raise ApplicationError(message, code="invalid")

    return run


@login_required
@require_POST
def alert_mute(request: AuthenticatedHttpRequest, alert_id: int) -> HttpResponse:
    form = MuteForm(request.POST)
    if not form.is_valid():
        return _alert_action(request, alert_id, _refused(_("Choose how long to mute.")), "")
    until = form.until_from(timezone.now())
    return _alert_action(
        request,
        alert_id,
        lambda alert: alert_services.alert_mute(caller=request.caller, alert=alert, until=until),
        _("Alert muted."),
    )


@login_required
@require_POST
def alert_comment(request: AuthenticatedHttpRequest, alert_id: int) -> HttpResponse:
    form = CommentForm(request.POST)
    if not form.is_valid():
        return _alert_action(
            request, alert_id, _refused(_("A comment has 1 to 2000 characters.")), ""
        )
    return _alert_action(
        request,
        alert_id,
        lambda alert: alert_services.alert_comment(
            caller=request.caller, alert=alert, text=form.cleaned_data["text"]
        ),
        _("Comment added."),
    )


@login_required
@require_POST
def alert_assign(request: AuthenticatedHttpRequest, alert_id: int) -> HttpResponse:
    raw = request.POST.get("user", "")
    try:
        user_id = int(raw) if raw else None
    except ValueError:
        return _alert_action(request, alert_id, _refused(_("Choose a team member.")), "")
    return _alert_action(
        request,
        alert_id,
        lambda alert: alert_services.alert_assign(
            caller=request.caller, alert=alert, user_id=user_id
        ),
        _("Alert assigned.") if user_id else _("Alert unassigned."),
    )
