"""Charts, dashboards, alert rules, alerts, notifications and reports — one engine over the
series of sensors (sites) and of models (the prediction log).

A *series* is a JSON spec (validated by `monitoring.series`):
`{"kind": "sensor", "sensor": id, "aggregation": "avg|min|max|last|count", "period_s": 60}` or
`{"kind": "model", "model": id, "signal": "volume|prediction_mean|class_share|latency_p95|
accuracy|drift_psi", "label"?: class, "input"?: name, "output"?: column, "period_s"?: 3600}`.
A *condition* is `{"series": 0, "op": "above|below|outside|inside|rate_above|no_data",
"value"?, "low"?, "high"?, "per_s"?}` or `{"all": [...]}` / `{"any": [...]}`
(`monitoring.conditions`).

An AlertRule's state (ok / pending / firing) lives on its row: a rule watches its series as one
subject, so it has at most one open Alert (a partial unique constraint). A sensor's own warning
and critical bands are *built-in* rules (`builtin` set, kept in step with the sensor's
thresholds by `services.rules.sensor_rules_sync`); the emergency stop's alert has no rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mlmanager.core.models import TeamOwnedModel, TeamScopedQuerySet, TimeStampedModel
from mlmanager.monitoring.conditions import condition_leaves


class Severity(models.TextChoices):
    INFO = "info", _("Info")
    WARNING = "warning", _("Warning")
    CRITICAL = "critical", _("Critical")
    EMERGENCY = "emergency", _("Emergency")


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2, Severity.EMERGENCY: 3}


class MutableQuerySet(TeamScopedQuerySet):  # type: ignore[type-arg]
    def muted(self) -> MutableQuerySet:
        return self.filter(Q(muted_at__isnull=False), _unexpired_mute())

    def unmuted(self) -> MutableQuerySet:
        return self.exclude(Q(muted_at__isnull=False), _unexpired_mute())


def _unexpired_mute() -> Q:
    return Q(muted_until__isnull=True) | Q(muted_until__gt=timezone.now())


class Mutable(models.Model):
    """Muted from `muted_at` until `muted_until` (for ever when empty); unmuting clears both."""

    muted_at = models.DateTimeField(null=True, blank=True)
    muted_until = models.DateTimeField(null=True, blank=True)
    muted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        abstract = True

    @property
    def muted(self) -> bool:
        if self.muted_at is None:
            return False
        return self.muted_until is None or self.muted_until > timezone.now()


class Chart(TeamOwnedModel):
    """A named set of series drawn over time. `site` (optional) files it under a site: only
    people who see that site see it; its series may still name any of the team's sensors and
    models the caller may see."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    series = models.JSONField(default=list)
    site = models.ForeignKey(
        "sites.Site", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    range_s = models.PositiveIntegerField(
        default=24 * 3600, help_text=_("The period shown when no range is asked for.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="chart_name_unique_in_team")
        ]

    def __str__(self) -> str:
        return self.name


class Dashboard(TeamOwnedModel):
    """Charts in a grid, for the team or for one site. `layout` is a list of
    `{"chart": id, "x": col, "y": row, "w": cols, "h": rows}` on a 12-column grid."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    site = models.ForeignKey(
        "sites.Site", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    layout = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="dashboard_name_unique_in_team")
        ]

    def __str__(self) -> str:
        return self.name


class Webhook(TeamOwnedModel):
    """Where a rule's notifications are POSTed, signed with `secret` (HMAC-SHA256 of
    `<timestamp>.<body>`, sent as `X-MLManager-Signature: t=<timestamp>,v1=<hex>`)."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="webhook_name_unique_in_team")
        ]

    def __str__(self) -> str:
        return self.name


# The slot of the `monitoring.evaluate` periodic task: it runs once per slot, however many
# schedulers run (jobs.scheduler), shortly after the slot begins.
EVALUATION_SLOT_S = 10


def evaluation_slot_end(now: datetime) -> int:
    """The start of the slot `now` falls in, in Unix seconds: a run of the scheduler at `now`
    evaluates the periodic rules with a multiple of their period in (that − slot, that]."""
    return int(now.timestamp() // EVALUATION_SLOT_S) * EVALUATION_SLOT_S


def is_due_in_slot(evaluate_every_s: int, slot_end: int) -> bool:
    """Whether a multiple of `evaluate_every_s` falls in the slot ending at `slot_end`."""
    return slot_end % evaluate_every_s < EVALUATION_SLOT_S


def is_periodic(series: list[dict[str, Any]], condition: dict[str, Any]) -> bool:
    """Whether a rule is evaluated on its period (`evaluate_every_s`, by slot arithmetic):
    every rule but those walked at ingest (one series, a sensor's last value), and those
    too when they watch for silence (no_data: silence is never an ingest)."""
    walked = (
        len(series) == 1
        and isinstance(series[0], dict)
        and series[0].get("kind") == "sensor"
        and series[0].get("aggregation") == "last"
    )
    if not walked:
        return True
    try:
        return any(leaf.get("op") == "no_data" for leaf in condition_leaves(condition))
    except (AttributeError, KeyError, TypeError):  # a broken condition: judged (and failing) on
        return True  # its period, as other rules


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class AlertRuleQuerySet(MutableQuerySet):
    pass


class AlertRule(TeamOwnedModel, Mutable):
    """Watches its series with its condition. `state`/`state_since` are the evaluation's
    memory: ok → pending (the condition holds, for less than `for_s`) → firing → ok again when
    the condition is false with `hysteresis` applied (a value hovering at the threshold does
    not flap). `notify` lists targets: `{"kind": "team"}` (every member, by their
    preferences), `{"kind": "user", "user": id}`, `{"kind": "webhook", "webhook": id}`;
    `escalate_after_s`/`escalate_to`: notify these too when a firing alert is not
    acknowledged in time."""

    class State(models.TextChoices):
        OK = "ok", _("OK")
        PENDING = "pending", _("Pending")
        FIRING = "firing", _("Firing")

    class Builtin(models.TextChoices):
        NONE = "", _("No")
        SENSOR_WARNING = "sensor_warning_band", _("Sensor warning band")
        SENSOR_CRITICAL = "sensor_critical_band", _("Sensor critical band")

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    series = models.JSONField(default=list)
    condition = models.JSONField(default=dict)
    severity = models.CharField(max_length=20, choices=Severity.choices, default=Severity.WARNING)
    for_s = models.PositiveIntegerField(
        default=0, help_text=_("How long the condition must hold before the rule fires.")
    )
    hysteresis = models.FloatField(
        null=True,
        blank=True,
        help_text=_(
            "How far back inside a threshold a value must come to resolve a firing rule; "
            "empty: 1 % of the threshold's size."
        ),
    )
    evaluate_every_s = models.PositiveIntegerField(default=60)
    notify = models.JSONField(default=list, blank=True)
    escalate_after_s = models.PositiveIntegerField(null=True, blank=True)
    escalate_to = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    builtin = models.CharField(max_length=30, choices=Builtin.choices, blank=True, default="")
    # What the rule is about, derived from its series when saved: for access (a rule on a
    # site's sensors is seen by who sees the site) and for evaluating it at ingest.
    site = models.ForeignKey(
        "sites.Site", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    sensors = models.ManyToManyField("sites.Sensor", blank=True, related_name="+")
    machines = models.ManyToManyField("machines.Machine", blank=True, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OK)
    state_since = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    next_evaluation_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = AlertRuleQuerySet.as_manager()  # type: ignore[misc]

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(severity__in=["info", "warning", "critical", "emergency"]),
                name="alert_rule_severity_known",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["ok", "pending", "firing"]), name="alert_rule_state_known"
            ),
            models.CheckConstraint(
                condition=Q(evaluate_every_s__gte=10), name="alert_rule_evaluate_every_min"
            ),
        ]
        # The scheduler's cache of periodic rules is keyed by the newest updated_at: one
        # index probe per run rather than a scan of every rule.
        # The ingest reads the rules that are not ok at each batch (`evaluation._watching`):
        # few of a team's, found without a scan of all of them.
        indexes = [
            models.Index(fields=["updated_at"], name="alert_rule_updated_at"),
            models.Index(fields=["team"], condition=~Q(state="ok"), name="alert_rule_not_ok"),
        ]

    def __str__(self) -> str:
        return self.name

    # A periodic rule's row is written only when its state changes (or for a one-off
    # evaluation: just created or changed, a retry): when it was last and will next be
    # evaluated follows from its period and the scheduler's slots (`is_due_in_slot`). What
    # pages and the API show as `last_evaluated_at` / `next_evaluation_at`:

    @property
    def shown_last_evaluated_at(self) -> datetime | None:
        stored = self.last_evaluated_at
        if not self.enabled or not is_periodic(self.series, self.condition):
            return stored
        slot_end = evaluation_slot_end(timezone.now())
        multiple = slot_end // self.evaluate_every_s * self.evaluate_every_s
        # The slot that evaluated that multiple began at the next slot boundary.
        ran = _moment(-(-multiple // EVALUATION_SLOT_S) * EVALUATION_SLOT_S)
        since = self.created_at or ran
        if ran < since or (stored is not None and stored >= ran):
            return stored
        return ran

    @property
    def shown_next_evaluation_at(self) -> datetime | None:
        one_off = self.next_evaluation_at
        if not self.enabled or not is_periodic(self.series, self.condition):
            return one_off
        slot_end = evaluation_slot_end(timezone.now())
        multiple = (slot_end // self.evaluate_every_s + 1) * self.evaluate_every_s
        periodic = _moment(-(-multiple // EVALUATION_SLOT_S) * EVALUATION_SLOT_S)
        return min(one_off, periodic) if one_off is not None else periodic


class AlertQuerySet(MutableQuerySet):
    def open(self) -> AlertQuerySet:
        return self.filter(resolved_at__isnull=True)


class Alert(TeamOwnedModel, Mutable):
    """Something needs attention: the episode of a rule's condition holding (pending, then
    firing, then resolved), or an alert raised by an action (an emergency stop, no rule).
    Everything that happens to it is an AlertEvent (its timeline)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        FIRING = "firing", _("Firing")
        RESOLVED = "resolved", _("Resolved")

    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    site = models.ForeignKey(
        "sites.Site", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    sensor = models.ForeignKey(
        "sites.Sensor", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    machine = models.ForeignKey(
        "machines.Machine", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    severity = models.CharField(max_length=20, choices=Severity.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.FIRING)
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    value = models.FloatField(null=True, blank=True, help_text=_("The value that broke the rule"))
    started_at = models.DateTimeField(default=timezone.now)
    firing_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    escalated_at = models.DateTimeField(null=True, blank=True)

    objects = AlertQuerySet.as_manager()  # type: ignore[misc]

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule"],
                condition=Q(resolved_at__isnull=True) & Q(rule__isnull=False),
                name="alert_one_open_per_rule",
            ),
            models.CheckConstraint(
                condition=Q(severity__in=["info", "warning", "critical", "emergency"]),
                name="alert_severity_is_known",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "firing", "resolved"]),
                name="alert_state_known",
            ),
            models.CheckConstraint(
                condition=Q(state="resolved", resolved_at__isnull=False)
                | (~Q(state="resolved") & Q(resolved_at__isnull=True)),
                name="alert_resolved_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["site", "resolved_at"], name="alert_open_by_site"),
            models.Index(fields=["team", "-started_at"], name="alert_team_recent"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None


class AlertEvent(models.Model):
    """One line of an alert's timeline, never edited. A comment is an event with `text`."""

    class Kind(models.TextChoices):
        PENDING = "pending", _("Pending")
        FIRING = "firing", _("Firing")
        RESOLVED = "resolved", _("Resolved")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        ASSIGNED = "assigned", _("Assigned")
        COMMENTED = "commented", _("Comment")
        MUTED = "muted", _("Muted")
        UNMUTED = "unmuted", _("Unmuted")
        NOTIFIED = "notified", _("Notified")
        NOTIFICATION_FAILED = "notification_failed", _("Notification failed")
        ESCALATED = "escalated", _("Escalated")

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} of alert {self.alert_id}"


class NotificationPreference(TimeStampedModel):
    """What one person wants to hear about in one team: severities (at least this one), the
    sites and models (empty: all they see), channels, and quiet hours in their time zone
    (e-mails wait for the end of quiet hours; emergencies are never held back)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    min_severity = models.CharField(
        max_length=20, choices=Severity.choices, default=Severity.WARNING
    )
    sites = models.ManyToManyField("sites.Site", blank=True, related_name="+")
    machines = models.ManyToManyField("machines.Machine", blank=True, related_name="+")
    email = models.BooleanField(default=True)
    in_app = models.BooleanField(default=True)
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "team"], name="notification_preference_one_per_team"
            )
        ]

    def __str__(self) -> str:
        return f"Preferences of {self.user_id} in {self.team_id}"


class Notification(TeamOwnedModel):
    """One message to deliver (an outbox row): written in the transaction of what caused it,
    delivered after by the `monitoring.deliver` periodic task, retried with back-off.
    In-app notifications are delivered when written (they are this row) and read here."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        WEBHOOK = "webhook", _("Webhook")
        IN_APP = "in_app", _("In the app")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    webhook = models.ForeignKey(
        Webhook, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    subject = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notification_due"),
            models.Index(fields=["user", "read_at"], name="notification_user_unread"),
        ]

    def __str__(self) -> str:
        return self.subject


class Report(TeamOwnedModel):
    """A scheduled e-mail of a chart or a dashboard: daily or weekly (`weekday`, 0 = Monday) at
    `time_of_day` in each recipient's own time zone, with the charts drawn as images and the
    period's unmuted alerts. Sent once per recipient and slot (ReportDelivery)."""

    class Frequency(models.TextChoices):
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")

    name = models.CharField(max_length=200)
    chart = models.ForeignKey(
        Chart, null=True, blank=True, on_delete=models.CASCADE, related_name="reports"
    )
    dashboard = models.ForeignKey(
        Dashboard, null=True, blank=True, on_delete=models.CASCADE, related_name="reports"
    )
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.DAILY)
    weekday = models.PositiveSmallIntegerField(default=0)
    time_of_day = models.TimeField()
    recipients = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(chart__isnull=False) & Q(dashboard__isnull=True))
                | (Q(chart__isnull=True) & Q(dashboard__isnull=False)),
                name="report_of_chart_or_dashboard",
            ),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="report_weekday_range"),
        ]

    def __str__(self) -> str:
        return self.name


class ReportDelivery(models.Model):
    """A report sent to one recipient for one slot: the unique key makes it once per slot
    however many schedulers run (or `send_now`, whose slot is its own moment)."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    slot = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # A scheduled send that failed is tried again at `next_attempt_at` (null: not to be
    # tried again), `attempts` times in all at most (`reports.REPORT_MAX_ATTEMPTS`).
    attempts = models.PositiveSmallIntegerField(default=1)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-slot", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "recipient", "slot"], name="report_delivery_once_per_slot"
            )
        ]

    def __str__(self) -> str:
        return f"Report {self.report_id} to {self.recipient_id} at {self.slot}"


class ModelAttachment(TeamOwnedModel):
    """A model fed by a site's sensors: when new readings arrive it predicts on the sensors'
    latest values (`inputs` maps each model input to a sensor of `site`), at most once per
    `min_interval_s`, and logs the answer like any prediction (source "site"), so rules on
    the model's signals watch it (a failure predictor on a mill's vibration and temperature)."""

    site = models.ForeignKey("sites.Site", on_delete=models.CASCADE, related_name="+")
    machine = models.ForeignKey("machines.Machine", on_delete=models.CASCADE, related_name="+")
    inputs = models.JSONField(default=dict)
    sensors = models.ManyToManyField("sites.Sensor", related_name="+")
    min_interval_s = models.PositiveIntegerField(default=60)
    enabled = models.BooleanField(default=True)
    last_predicted_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "machine"], name="model_attachment_one_per_site_model"
            ),
            models.CheckConstraint(
                condition=Q(min_interval_s__gte=1), name="model_attachment_interval_min"
            ),
        ]

    def __str__(self) -> str:
        return f"Model {self.machine_id} on site {self.site_id}"
