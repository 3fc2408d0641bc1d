"""Scheduled reports: a chart's or a dashboard's charts and the period's alerts, e-mailed daily
or weekly at a time of day in each recipient's own time zone.

`reports_send_due` (the `monitoring.reports` periodic task, every minute) finds, for each
active report and recipient, the slot that has come within the last hour, and inserts its
`ReportDelivery` before sending: the unique (report, recipient, slot) makes it once per slot
however many schedulers run (the one whose insert fails skips it), and a slot missed by less
than an hour (a restart) is still sent. A failed send (the SMTP server refusing, a chart that
cannot be read) is recorded on the delivery and tried again later (REPORT_RETRY_AFTER), the
period still the slot's, REPORT_MAX_ATTEMPTS times in all; each retry is claimed with a
conditional UPDATE, so it too is sent once however many schedulers run. A `send_now` is not
retried: its caller sees the error in the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.mime.image import MIMEImage
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import User
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.core.schedules import latest_slot, zone_or_utc
from mlmanager.monitoring.access import MonitorAction
from mlmanager.monitoring.models import Alert, AlertRule, Chart, Dashboard, Report, ReportDelivery
from mlmanager.monitoring.rendering import Line, Span, chart_png
from mlmanager.monitoring.selectors import (
    access_chart,
    access_dashboard,
    access_report,
    alerts_for_caller,
    charts_for_caller,
    series_names,
)
from mlmanager.monitoring.series import series_label, series_points
from mlmanager.monitoring.services.notifications import members_who_see

logger = logging.getLogger(__name__)

PERIODS = {
    Report.Frequency.DAILY: timedelta(days=1),
    Report.Frequency.WEEKLY: timedelta(days=7),
}
# A slot is sent when a scheduler looks within this long after it (a restart does not skip it).
SEND_WINDOW = timedelta(hours=1)
MAX_RECIPIENTS = 100
MAX_CHARTS = 12  # a dashboard's first charts (by its layout, row then column)
MAX_ALERTS = 100
POINTS_PER_CHART = 400  # one point per two pixels of the 800-pixel image
# After the first failed send, the next attempts wait this long (then the last error stays).
REPORT_RETRY_AFTER = (timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30))
REPORT_MAX_ATTEMPTS = len(REPORT_RETRY_AFTER) + 1
FIELDS = ("name", "frequency", "weekday", "time_of_day", "active")


def interval_s() -> float:
    return 60.0


def send_due_task() -> None:
    """The `monitoring.reports` periodic task."""
    reports_send_due()


# --- writing reports -----------------------------------------------------------------------------


def _subject_of(
    *, caller: Caller, chart_id: Any, dashboard_id: Any
) -> tuple[Chart | None, Dashboard | None]:
    """The chart or the dashboard (exactly one) the report is of: one the caller may change."""
    if (chart_id is None) == (dashboard_id is None):
        raise ApplicationError(
            _("A report is of a chart or of a dashboard: give exactly one of them."),
            code="invalid_report_subject",
        )
    if chart_id is not None:
        return access_chart(caller=caller, id=chart_id, action=MonitorAction.CHANGE), None
    return None, access_dashboard(caller=caller, id=dashboard_id, action=MonitorAction.CHANGE)


def _recipients(*, team_id: int, site_id: int | None, recipient_ids: Sequence[int]) -> list[int]:
    """The recipients as given, each a member of the team who sees the report's subject."""
    ids = list(dict.fromkeys(recipient_ids))
    if not ids:
        raise ApplicationError(
            _("recipients: a report needs at least one recipient."), code="invalid_recipients"
        )
    if len(ids) > MAX_RECIPIENTS:
        raise ApplicationError(
            _("recipients: at most %(count)s.") % {"count": MAX_RECIPIENTS},
            code="invalid_recipients",
        )
    seeing = members_who_see(team_id=team_id, site_id=site_id, user_ids=ids)
    for index, pk in enumerate(ids):
        if pk not in seeing:
            raise ApplicationError(
                _("recipients[%(index)s]: no member of the team with this id sees the report.")
                % {"index": index},
                code="invalid_recipients",
                details={"field": f"recipients[{index}]"},
            )
    return ids


def _check(report: Report) -> None:
    if report.frequency not in Report.Frequency.values:
        raise ApplicationError(_("frequency must be daily or weekly."), code="invalid_frequency")
    if not 0 <= report.weekday <= 6:
        raise ApplicationError(
            _("weekday must be 0 (Monday) to 6 (Sunday)."), code="invalid_weekday"
        )
    if report.time_of_day.tzinfo is not None:
        report.time_of_day = report.time_of_day.replace(tzinfo=None)
    report.full_clean()


@transaction.atomic
def report_create(
    *,
    caller: Caller,
    name: str,
    chart_id: Any = None,
    dashboard_id: Any = None,
    frequency: str = Report.Frequency.DAILY,
    weekday: int = 0,
    time_of_day: Any,
    recipient_ids: Sequence[int] | None = None,
    active: bool = True,
) -> Report:
    """A report of a chart or dashboard the caller may change, to members of its team who see
    it (the caller alone when no recipients are given)."""
    chart, dashboard = _subject_of(caller=caller, chart_id=chart_id, dashboard_id=dashboard_id)
    subject: Chart | Dashboard = chart or dashboard  # type: ignore[assignment]
    if recipient_ids is None:
        recipient_ids = [caller.user_id] if caller.user_id is not None else []
    recipients = _recipients(
        team_id=subject.team_id, site_id=subject.site_id, recipient_ids=recipient_ids
    )
    report = Report(
        team_id=subject.team_id,
        name=name.strip(),
        chart=chart,
        dashboard=dashboard,
        frequency=frequency,
        weekday=weekday,
        time_of_day=time_of_day,
        active=active,
        created_by=caller.user,
    )
    _check(report)
    report.save()
    report.recipients.set(recipients)
    audit_record(
        caller=caller,
        team=report.team,
        action=AuditAction.REPORT_CREATED,
        target=report,
        details={"name": report.name, "recipients": recipients},
    )
    return report


@transaction.atomic
def report_update(
    *,
    caller: Caller,
    report: Report,
    chart_id: Any = None,
    dashboard_id: Any = None,
    recipient_ids: Sequence[int] | None = None,
    **fields: Any,
) -> Report:
    """Change a report (found with `access_report(action=CHANGE)`): its fields, its subject
    (a chart or a dashboard, exactly one) and its recipients."""
    changes: dict[str, Any] = {}
    if chart_id is not None or dashboard_id is not None:
        chart, dashboard = _subject_of(caller=caller, chart_id=chart_id, dashboard_id=dashboard_id)
        new_subject: Chart | Dashboard = chart or dashboard  # type: ignore[assignment]
        if new_subject.team_id != report.team_id:
            raise NotFound()
        if (report.chart_id, report.dashboard_id) != (
            chart.pk if chart else None,
            dashboard.pk if dashboard else None,
        ):
            changes["subject"] = (
                {"chart": report.chart_id, "dashboard": report.dashboard_id},
                {"chart": chart_id, "dashboard": dashboard_id},
            )
            report.chart, report.dashboard = chart, dashboard
    for name in FIELDS:
        if name in fields and getattr(report, name) != fields[name]:
            changes[name] = (str(getattr(report, name)), str(fields[name]))
            setattr(report, name, fields[name])
    subject: Chart | Dashboard = report.chart or report.dashboard  # type: ignore[assignment]
    before = sorted(report.recipients.values_list("pk", flat=True))
    wanted = recipient_ids if recipient_ids is not None else before
    if recipient_ids is not None or "subject" in changes:
        # A new subject of another site must still be seen by every recipient.
        recipients = _recipients(
            team_id=report.team_id, site_id=subject.site_id, recipient_ids=wanted
        )
        if sorted(recipients) != before:
            changes["recipients"] = (before, sorted(recipients))
            report.recipients.set(recipients)
    if not changes:
        return report
    _check(report)
    report.save()
    audit_record(
        caller=caller,
        team=report.team,
        action=AuditAction.REPORT_CHANGED,
        target=report,
        changes=changes,
    )
    return report


@transaction.atomic
def report_delete(*, caller: Caller, report: Report) -> None:
    audit_record(
        caller=caller,
        team=report.team,
        action=AuditAction.REPORT_DELETED,
        target=report,
        details={"name": report.name},
    )
    report.delete()


# --- when ----------------------------------------------------------------------------------------


def report_slot(*, report: Report, time_zone: str, now: datetime) -> datetime:
    """The latest moment at or before `now` the report is due for a recipient in
    `time_zone`: its time of day there, on its weekday for a weekly one (UTC)."""
    weekly = report.frequency == Report.Frequency.WEEKLY
    return latest_slot(
        now=now,
        at=report.time_of_day,
        time_zone=time_zone,
        weekday=report.weekday if weekly else None,
    )


def reports_send_due(now: datetime | None = None) -> int:
    """Send every active report to each recipient whose slot came within the last hour and
    was not sent yet; how many e-mails were sent."""
    now = now or timezone.now()
    sent = 0
    cache: dict[Any, bytes] = {}
    reports = (
        Report.objects.filter(active=True)
        .select_related("team", "chart", "dashboard")
        .prefetch_related("recipients")
        .order_by("pk")
    )
    for report in reports:
        for recipient in report.recipients.all():
            if not recipient.is_active or not recipient.email:
                continue
            slot = report_slot(report=report, time_zone=recipient.time_zone, now=now)
            if not timedelta(0) <= now - slot < SEND_WINDOW:
                continue
            delivery = _claim_delivery(report=report, recipient=recipient, slot=slot)
            if delivery is None:
                continue  # another scheduler has it
            sent += _send(
                report=report,
                recipient=recipient,
                delivery=delivery,
                start=slot - PERIODS[Report.Frequency(report.frequency)],
                end=slot,
                cache=cache,
                retry_from=now,
            )
    return sent + _retry_failed(now, cache)


def _retry_failed(now: datetime, cache: dict[Any, bytes]) -> int:
    """Send again the failed scheduled deliveries whose next attempt has come (each claimed
    first: one scheduler sends it); how many were sent."""
    sent = 0
    due = (
        ReportDelivery.objects.filter(
            sent_at__isnull=True, next_attempt_at__lte=now, report__active=True
        )
        .select_related("report__team", "report__chart", "report__dashboard", "recipient")
        .order_by("next_attempt_at", "pk")
    )
    for delivery in due:
        claimed = ReportDelivery.objects.filter(
            pk=delivery.pk,
            sent_at__isnull=True,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
        ).update(attempts=F("attempts") + 1, next_attempt_at=None)
        if not claimed:
            continue  # another scheduler has it
        delivery.attempts += 1
        report, recipient = delivery.report, delivery.recipient
        if not (
            recipient.is_active
            and recipient.email
            and report.recipients.filter(pk=recipient.pk).exists()
        ):
            continue  # no longer theirs to receive: the last error stays
        sent += _send(
            report=report,
            recipient=recipient,
            delivery=delivery,
            start=delivery.slot - PERIODS[Report.Frequency(report.frequency)],
            end=delivery.slot,
            cache=cache,
            retry_from=now,
        )
    return sent


def _claim_delivery(*, report: Report, recipient: User, slot: datetime) -> ReportDelivery | None:
    try:
        with transaction.atomic():
            return ReportDelivery.objects.create(report=report, recipient=recipient, slot=slot)
    except IntegrityError:
        return None


def report_send_now(*, caller: Caller, report: Report) -> list[ReportDelivery]:
    """Send the report to its recipients now (found with `access_report(action=CHANGE)`),
    over the period that ends now; each delivery's `sent_at` or `error` says how it went."""
    now = timezone.now()
    with transaction.atomic():
        recipients = [user for user in report.recipients.all() if user.is_active and user.email]
        deliveries = [
            ReportDelivery.objects.create(report=report, recipient=user, slot=now)
            for user in recipients
        ]
        audit_record(
            caller=caller,
            team=report.team,
            action=AuditAction.REPORT_SENT,
            target=report,
            details={"name": report.name, "recipients": [user.pk for user in recipients]},
        )
    cache: dict[Any, bytes] = {}
    for user, delivery in zip(recipients, deliveries, strict=True):
        _send(
            report=report,
            recipient=user,
            delivery=delivery,
            start=now - PERIODS[Report.Frequency(report.frequency)],
            end=now,
            cache=cache,
        )
    return list(ReportDelivery.objects.filter(pk__in=[d.pk for d in deliveries]).order_by("pk"))


def _send(
    *,
    report: Report,
    recipient: User,
    delivery: ReportDelivery,
    start: datetime,
    end: datetime,
    cache: dict[Any, bytes],
    retry_from: datetime | None = None,
) -> int:
    """Send one delivery; 1 when sent. A failure is recorded on it and, for a scheduled one
    (`retry_from`: the scheduler's now), tried again REPORT_RETRY_AFTER later while attempts
    remain."""
    try:
        message = report_message(
            report=report, recipient=recipient, start=start, end=end, cache=cache
        )
        message.send(fail_silently=False)
    except Exception as error:
        # One recipient's failure (a chart that cannot be read, the SMTP server refusing) is
        # recorded on their delivery; the others are still sent.
        logger.warning("report %s to user %s failed", report.pk, recipient.pk, exc_info=True)
        next_attempt_at = None
        if retry_from is not None and delivery.attempts < REPORT_MAX_ATTEMPTS:
            next_attempt_at = retry_from + REPORT_RETRY_AFTER[delivery.attempts - 1]
        ReportDelivery.objects.filter(pk=delivery.pk).update(
            error=f"{type(error).__name__}: {error}"[:2000], next_attempt_at=next_attempt_at
        )
        return 0
    ReportDelivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now(), error="")
    return 1


# --- what is sent --------------------------------------------------------------------------------


@dataclass
class ChartPart:
    chart: Chart
    cid: str
    png: bytes
    alerts: list[Alert] = field(default_factory=list)


def _charts_of(report: Report, caller: Caller) -> list[Chart]:
    """The report's charts the recipient sees: its chart, or its dashboard's in layout order."""
    if report.chart_id is not None:
        return list(charts_for_caller(caller).filter(pk=report.chart_id))
    assert report.dashboard is not None
    cells = [cell for cell in report.dashboard.layout or [] if isinstance(cell, dict)]
    cells.sort(key=lambda cell: (cell.get("y", 0), cell.get("x", 0)))
    order = [cell.get("chart") for cell in cells if isinstance(cell.get("chart"), int)]
    found = {chart.pk: chart for chart in charts_for_caller(caller).filter(pk__in=order)}
    return [found[pk] for pk in dict.fromkeys(order) if pk in found][:MAX_CHARTS]


def _watched(chart: Chart) -> tuple[set[int], set[int]]:
    sensors = {spec.get("sensor") for spec in chart.series if spec.get("kind") == "sensor"}
    machines = {spec.get("model") for spec in chart.series if spec.get("kind") == "model"}
    return (
        {pk for pk in sensors if isinstance(pk, int)},
        {pk for pk in machines if isinstance(pk, int)},
    )


def _period_alerts(
    *, caller: Caller, team_id: int, q: Q, start: datetime, end: datetime
) -> list[Alert]:
    """The unmuted alerts (of unmuted rules) matching `q` that were open during the period,
    among those the recipient sees."""
    muted_rules = AlertRule.objects.filter(team_id=team_id).muted().values("pk")
    return list(
        alerts_for_caller(caller)
        .filter(q, team_id=team_id, started_at__lt=end)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=start))
        .unmuted()  # type: ignore[attr-defined]
        .exclude(rule__in=muted_rules)
        .distinct()
        .order_by("started_at", "pk")[:MAX_ALERTS]
    )


def _chart_alerts(*, caller: Caller, chart: Chart, start: datetime, end: datetime) -> list[Alert]:
    sensors, machines = _watched(chart)
    if not sensors and not machines:
        return []
    rules = AlertRule.objects.filter(team_id=chart.team_id).filter(
        Q(sensors__in=sensors) | Q(machines__in=machines)
    )
    return _period_alerts(
        caller=caller,
        team_id=chart.team_id,
        q=Q(rule__in=rules.values("pk")),
        start=start,
        end=end,
    )


def _chart_image(
    *, chart: Chart, start: datetime, end: datetime, time_zone: str, alerts: list[Alert]
) -> bytes:
    specs = list(chart.series or [])
    names = series_names(team_id=chart.team_id, specs=specs)
    lines = [
        Line(
            label=series_label(spec, name=name),
            points=series_points(
                spec, team_id=chart.team_id, start=start, end=end, max_points=POINTS_PER_CHART
            ),
        )
        for spec, name in zip(specs, names, strict=True)
    ]
    return chart_png(
        title=chart.name,
        lines=lines,
        start=start,
        end=end,
        time_zone=zone_or_utc(time_zone),
        spans=[Span(alert.started_at, alert.resolved_at, alert.severity) for alert in alerts],
        no_data_text=_("No data in this period"),
    )


def report_message(
    *,
    report: Report,
    recipient: User,
    start: datetime,
    end: datetime,
    cache: dict[Any, bytes] | None = None,
) -> EmailMultiAlternatives:
    """The report's e-mail to one recipient over [start, end): text and HTML, each chart an
    inline PNG (multipart/related, `cid:`), and the period's alerts. Only what the recipient
    sees today goes in (a recipient who lost the report's site gets an error, not the mail)."""
    cache = cache if cache is not None else {}
    caller = Caller.acting_for(recipient)
    access_report(caller=caller, id=report.pk)  # NotFound when they no longer see it
    zone = zone_or_utc(recipient.time_zone)
    parts = []
    for chart in _charts_of(report, caller):
        marked = _chart_alerts(caller=caller, chart=chart, start=start, end=end)
        key = (chart.pk, start, end, str(zone), tuple(alert.pk for alert in marked))
        if key not in cache:
            cache[key] = _chart_image(
                chart=chart, start=start, end=end, time_zone=recipient.time_zone, alerts=marked
            )
        parts.append(
            ChartPart(chart=chart, cid=f"chart-{chart.pk}@mlmanager", png=cache[key], alerts=marked)
        )
    alerts = {alert.pk: alert for part in parts for alert in part.alerts}
    dashboard = report.dashboard
    if dashboard is not None and dashboard.site_id is not None:
        for alert in _period_alerts(
            caller=caller,
            team_id=report.team_id,
            q=Q(site_id=dashboard.site_id),
            start=start,
            end=end,
        ):
            alerts.setdefault(alert.pk, alert)

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""

    context = {
        "report": report,
        "recipient": recipient,
        "start": local(start),
        "end": local(end),
        "time_zone": str(zone),
        "charts": parts,
        "alerts": [
            {
                "alert": alert,
                "severity": alert.get_severity_display(),
                "started": local(alert.started_at),
                "resolved": local(alert.resolved_at),
                "url": f"{settings.MLMANAGER_SITE_URL}/monitoring/alerts/{alert.pk}/",
            }
            for alert in sorted(alerts.values(), key=lambda alert: (alert.started_at, alert.pk))
        ],
        "site_url": settings.MLMANAGER_SITE_URL,
    }
    subject = _("%(name)s: %(start)s to %(end)s") % {
        "name": report.name,
        "start": context["start"],
        "end": context["end"],
    }
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("monitoring/emails/report.txt", context),
        to=[recipient.email],
    )
    message.attach_alternative(
        render_to_string("monitoring/emails/report.html", context), "text/html"
    )
    message.mixed_subtype = "related"  # the images are parts of the HTML, shown inline
    for part in parts:
        image = MIMEImage(part.png, "png")
        image.add_header("Content-ID", f"<{part.cid}>")
        image.add_header("Content-Disposition", "inline", filename=f"chart-{part.chart.pk}.png")
        message.attach(image)
    return message
