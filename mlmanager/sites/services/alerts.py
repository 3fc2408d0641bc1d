"""Threshold alerts: one open alert per sensor and band while the sensor is outside it, and
acknowledging them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.sites.live import site_changed
from mlmanager.sites.models import Alert, Sensor

BAND_SEVERITY = {
    Alert.Band.WARNING: Alert.Severity.WARNING,
    Alert.Band.CRITICAL: Alert.Severity.CRITICAL,
}


def alerts_evaluate(*, sensor: Sensor, values: Sequence[tuple[datetime, float]]) -> None:
    """Walk a sensor's new values in time order: open an alert for each band a value leaves,
    resolve the open ones of the bands it is back inside. Called by the ingest in its
    transaction, with the values newer than the sensor's previous latest."""
    open_alerts = {
        alert.band: alert for alert in Alert.objects.filter(sensor=sensor).open().exclude(band="")
    }
    for moment, value in values:
        broken = sensor.bands_broken(value)
        for band in sorted(broken - set(open_alerts)):
            alert = _open(sensor, band, moment, value)
            if alert is not None:
                open_alerts[band] = alert
        for band in sorted(set(open_alerts) - broken):
            Alert.objects.filter(pk=open_alerts.pop(band).pk, resolved_at__isnull=True).update(
                resolved_at=timezone.now()
            )


def _open(sensor: Sensor, band: str, moment: datetime, value: float) -> Alert | None:
    low, high = (
        (sensor.warning_min, sensor.warning_max)
        if band == Alert.Band.WARNING
        else (sensor.critical_min, sensor.critical_max)
    )
    limits = ", ".join(
        part
        for part in (
            _("min %(low)s") % {"low": low} if low is not None else "",
            _("max %(high)s") % {"high": high} if high is not None else "",
        )
        if part
    )
    alert = Alert(
        team_id=sensor.team_id,
        site_id=sensor.site_id,
        sensor=sensor,
        severity=BAND_SEVERITY[Alert.Band(band)],
        band=band,
        title=_("%(sensor)s outside its %(band)s band") % {"sensor": sensor.name, "band": _(band)},
        message=_("%(value)s %(unit)s at %(moment)s; the %(band)s band is %(limits)s.")
        % {
            "value": round(value, 4),
            "unit": sensor.unit,
            "moment": moment.isoformat(),
            "band": _(band),
            "limits": limits,
        },
        value=value,
    )
    try:
        with transaction.atomic():  # another request opened it first: keep theirs
            alert.save()
    except IntegrityError:
        return Alert.objects.filter(sensor=sensor, band=band).open().first()
    return alert


@transaction.atomic
def alert_acknowledge(*, caller: Caller, alert: Alert) -> Alert:
    """Mark an alert seen (found with `access_alert(action=OPERATE)`); again changes nothing."""
    now = timezone.now()
    changed = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_by=caller.user, acknowledged_at=now
    )
    alert.refresh_from_db()
    if changed:
        audit_record(
            caller=caller,
            team=alert.site.team,
            action=AuditAction.SITE_ALERT_ACKNOWLEDGED,
            target=alert,
            details={"site": alert.site.name, "title": alert.title},
        )
        site_changed(site_ids={alert.site_id})
    return alert


def alert_raise(
    *, site_id: int, team_id: int, severity: str, title: str, message: str = ""
) -> Alert:
    """An alert that is no threshold's (an emergency stop), in the caller's transaction."""
    alert = Alert(team_id=team_id, site_id=site_id, severity=severity, title=title, message=message)
    alert.full_clean()
    alert.save()
    site_changed(site_ids={site_id})
    return alert
