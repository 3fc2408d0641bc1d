"""The audit log: who did what to which object of which team, when, from where, with what.

One `AuditEvent` row per change of membership, role, invitation, token, deletion, model
activation, threshold, and (later) every money or permission change, written by the service
that makes the change, in the same transaction (audit.services.audit_record). Rows are never
edited (Zulip's RealmAuditLog, GitLab's audit events, Grafana's audit log all hold to this):
`save()` refuses an existing row and the queryset refuses `update()` and `delete()`; the admin
is read-only. What still removes rows is the database itself: deleting a team cascades to its
events (nobody could read them any more), and deleting a user keeps their events with
`actor` emptied and `actor_email` still naming them.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    """Every action the log records: `<object>.<what happened>`, in the past tense.

    Not the field's `choices` (adding an action then needs no migration); `audit_record`
    refuses a name that is not here, so a typo at a call site fails its tests, and the filter
    offers exactly these, plus each `<object>` prefix for "everything about invitations".
    """

    TEAM_CREATED = "team.created", _("Team created")
    TEAM_RENAMED = "team.renamed", _("Team renamed")
    TEAM_SETTINGS_CHANGED = "team.settings_changed", _("Team settings changed")
    MEMBERSHIP_ADDED = "membership.added", _("Member added")
    MEMBERSHIP_REMOVED = "membership.removed", _("Member removed")
    MEMBERSHIP_ROLE_CHANGED = "membership.role_changed", _("Member's role changed")
    INVITATION_CREATED = "invitation.created", _("Invitation created")
    INVITATION_ACCEPTED = "invitation.accepted", _("Invitation accepted")
    INVITATION_REVOKED = "invitation.revoked", _("Invitation revoked")
    TOKEN_CREATED = "token.created", _("API token created")
    TOKEN_REVOKED = "token.revoked", _("API token revoked")
    DATASET_DELETED = "dataset.deleted", _("Dataset deleted")
    MODEL_DELETED = "model.deleted", _("Model deleted")
    MODEL_ALIAS_SET = "model.alias_set", _("Model alias set")
    MODEL_ALIAS_DELETED = "model.alias_deleted", _("Model alias deleted")
    MODEL_RETRAINING_CHANGED = "model.retraining_changed", _("Retraining policy changed")
    MODEL_RETRAINING_DECIDED = "model.retraining_decided", _("Retraining decision")
    # Target: the model; changes: the rules before and after (machines.services.experimenter).
    MODEL_EXPERIMENTER_SET = "model.experimenter_set", _("Experimenter rules set")
    MODEL_EXPERIMENTER_DELETED = "model.experimenter_deleted", _("Experimenter rules removed")
    # Target: the model; changes: the dataset's id before and after (a new version of its
    # dataset, or another dataset of the same columns).
    MODEL_DATASET_CHANGED = "model.dataset_changed", _("Model's dataset changed")
    # Target: the new version; details: its parent, the rows added and where they came from.
    DATASET_VERSION_CREATED = "dataset.version_created", _("Dataset version created")
    MODEL_VERSION_ACTIVATED = "model_version.activated", _("Model version activated")
    MODEL_VERSION_THRESHOLD_CHANGED = (
        "model_version.threshold_changed",
        _("Decision threshold changed"),
    )
    # Target: the version; details: the MLflow registered model's name and version number.
    MODEL_VERSION_MLFLOW_REGISTERED = (
        "model_version.mlflow_registered",
        _("Model version registered in MLflow"),
    )
    SITE_CREATED = "site.created", _("Site created")
    SITE_CHANGED = "site.changed", _("Site changed")
    SITE_DELETED = "site.deleted", _("Site deleted")
    SITE_PRODUCTION_STARTED = "site.production_started", _("Production started")
    SITE_EMERGENCY_STOPPED = "site.emergency_stopped", _("Emergency stop")
    SITE_MEMBER_SET = "site_member.set", _("Site role given")
    SITE_MEMBER_REMOVED = "site_member.removed", _("Site role removed")
    DEVICE_KEY_CREATED = "device_key.created", _("Device key created")
    DEVICE_KEY_REVOKED = "device_key.revoked", _("Device key revoked")
    SENSOR_CREATED = "sensor.created", _("Sensor created")
    SENSOR_CHANGED = "sensor.changed", _("Sensor changed")
    SENSOR_DELETED = "sensor.deleted", _("Sensor deleted")
    SENSOR_CALIBRATED = "sensor.calibrated", _("Sensor calibrated")
    # Recorded before alerts moved to the monitoring app (alert.acknowledged since): kept so
    # those events still read.
    SITE_ALERT_ACKNOWLEDGED = "site_alert.acknowledged", _("Site alert acknowledged")
    ALERT_RULE_CREATED = "alert_rule.created", _("Alert rule created")
    ALERT_RULE_CHANGED = "alert_rule.changed", _("Alert rule changed")
    ALERT_RULE_DELETED = "alert_rule.deleted", _("Alert rule deleted")
    ALERT_RULE_MUTED = "alert_rule.muted", _("Alert rule muted")
    ALERT_RULE_UNMUTED = "alert_rule.unmuted", _("Alert rule unmuted")
    ALERT_RAISED = "alert.raised", _("Alert raised")
    ALERT_ACKNOWLEDGED = "alert.acknowledged", _("Alert acknowledged")
    ALERT_ASSIGNED = "alert.assigned", _("Alert assigned")
    ALERT_COMMENTED = "alert.commented", _("Alert commented on")
    ALERT_MUTED = "alert.muted", _("Alert muted")
    ALERT_UNMUTED = "alert.unmuted", _("Alert unmuted")
    ALERT_RESOLVED = "alert.resolved", _("Alert resolved")
    REPORT_CREATED = "report.created", _("Report created")
    REPORT_CHANGED = "report.changed", _("Report changed")
    REPORT_DELETED = "report.deleted", _("Report deleted")
    REPORT_SENT = "report.sent", _("Report sent now")
    WEBHOOK_CREATED = "webhook.created", _("Webhook created")
    WEBHOOK_CHANGED = "webhook.changed", _("Webhook changed")
    WEBHOOK_DELETED = "webhook.deleted", _("Webhook deleted")
    CHART_CREATED = "chart.created", _("Chart created")
    CHART_CHANGED = "chart.changed", _("Chart changed")
    CHART_DELETED = "chart.deleted", _("Chart deleted")
    DASHBOARD_CREATED = "dashboard.created", _("Dashboard created")
    DASHBOARD_CHANGED = "dashboard.changed", _("Dashboard changed")
    DASHBOARD_DELETED = "dashboard.deleted", _("Dashboard deleted")
    NOTIFICATION_PREFERENCE_CHANGED = (
        "notification_preference.changed",
        _("Notification preferences changed"),
    )
    MODEL_ATTACHED = "model_attachment.created", _("Model attached to a site")
    MODEL_DETACHED = "model_attachment.deleted", _("Model detached from a site")
    # Target: the model (prediction ids are UUIDs, targets integers); details name the
    # prediction, the status and the label.
    PREDICTION_REVIEWED = "prediction.reviewed", _("Prediction reviewed")


# The `<object>` part of the actions, for filtering a whole family ("every invitation event").
ACTION_GROUPS: dict[str, Any] = {
    "team": _("Team (all)"),
    "membership": _("Members (all)"),
    "invitation": _("Invitations (all)"),
    "token": _("API tokens (all)"),
    "dataset": _("Datasets (all)"),
    "model": _("Models (all)"),
    "model_version": _("Model versions (all)"),
    "site": _("Sites (all)"),
    "site_member": _("Site roles (all)"),
    "device_key": _("Device keys (all)"),
    "sensor": _("Sensors (all)"),
    "site_alert": _("Site alerts (all)"),
    "alert_rule": _("Alert rules (all)"),
    "alert": _("Alerts (all)"),
    "report": _("Reports (all)"),
    "webhook": _("Webhooks (all)"),
    "chart": _("Charts (all)"),
    "dashboard": _("Dashboards (all)"),
    "notification_preference": _("Notification preferences (all)"),
    "model_attachment": _("Models on sites (all)"),
    "prediction": _("Predictions (all)"),
}


# How the actor signed in (accounts.caller.Credential's values), as the page names them.
CREDENTIAL_LABELS: dict[str, Any] = {
    "session": _("web session"),
    "personal_token": _("personal API token"),
    "team_token": _("team API token"),
    "device_key": _("device key"),
    "marketplace_key": _("marketplace key"),
    "system": _("the platform"),
}


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """No bulk path around the log's guarantee: `update()` and `delete()` refuse. The one
    update allowed is Django's collector emptying `actor` when a user is deleted (SET_NULL runs
    `update(actor=None)` on this queryset); a deleted team's events go with it through the
    collector's own delete query."""

    def update(self, **kwargs: Any) -> int:
        if kwargs != {"actor": None}:
            raise TypeError("Audit events are never edited.")
        return super().update(**kwargs)

    def delete(self) -> NoReturn:
        raise TypeError("Audit events are never deleted one by one; they go with their team.")

    def for_team(self, team: Any) -> AuditEventQuerySet:
        return self.filter(team=team)


class AuditEvent(models.Model):
    """One recorded change: the actor as they were then (their e-mail is kept as text so the
    events of a deleted user stay readable), the credential and address they used, the action,
    the object it touched (type, id and its name at the time, since the object may be gone),
    and what changed (`changes`: {field: {"before": ..., "after": ...}}; `details`: any other
    context, never a secret)."""

    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.CASCADE,
        related_name="+",
        # Null for events of an account rather than a team (a personal API token, which acts
        # in every team of its user): staff see those in the admin.
        null=True,
        blank=True,
        db_index=False,  # the indexes below start with the team
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        related_name="+",
        null=True,
        blank=True,
    )
    actor_email = models.EmailField(blank=True)  # empty for the platform itself (system)
    credential = models.CharField(max_length=20)  # accounts.caller.Credential
    credential_id = models.BigIntegerField(null=True, blank=True)  # the token's or key's id
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=60)  # an AuditAction
    target_type = models.CharField(max_length=60, blank=True)  # the model's name: "membership"
    target_id = models.BigIntegerField(null=True, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The page and the API: one team's events, newest first, optionally of one action.
            models.Index(fields=["team", "-created_at"], name="audit_team_created"),
            models.Index(fields=["team", "action", "-created_at"], name="audit_team_action"),
            models.Index(fields=["team", "target_type", "target_id"], name="audit_team_target"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_email or self.credential} at {self.created_at}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A guard, not a side effect: the log is append-only, so a row is saved exactly once.
        if not self._state.adding:
            raise TypeError("Audit events are never edited.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("Audit events are never deleted one by one; they go with their team.")

    @property
    def credential_label(self) -> str:
        return str(CREDENTIAL_LABELS.get(self.credential, self.credential))

    @property
    def action_label(self) -> str:
        try:
            return str(AuditAction(self.action).label)
        except ValueError:  # an action since renamed: its name is still meaningful
            return self.action
