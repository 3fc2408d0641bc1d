"""Threshold alerts become alerts of built-in sensor rules (issue 15).

Each sensor with a warning or critical limit gets its built-in rule (as
`monitoring.services.rules.sensor_rules_sync` makes them), each alert of `sites_alert` is copied
to `monitoring_alert` (a band's alert to its sensor's rule, an emergency alert without one), a
rule with an open alert is left firing, and the sites table is dropped. Going back copies
the alerts the other way and deletes the built-in rules.
"""

from django.db import migrations, models
import django.db.models.deletion
from django.conf import settings
from django.db.models import Q

BANDS = (
    ("warning", "sensor_warning_band", "warning_min", "warning_max", "%s: warning band"),
    ("critical", "sensor_critical_band", "critical_min", "critical_max", "%s: critical band"),
)


def _condition(low, high):
    if low is not None and high is not None:
        return {"series": 0, "op": "outside", "low": float(low), "high": float(high)}
    if high is not None:
        return {"series": 0, "op": "above", "value": float(high)}
    if low is not None:
        return {"series": 0, "op": "below", "value": float(low)}
    return None


def forward(apps, schema_editor):
    Sensor = apps.get_model("sites", "Sensor")
    OldAlert = apps.get_model("sites", "Alert")
    AlertRule = apps.get_model("monitoring", "AlertRule")
    Alert = apps.get_model("monitoring", "Alert")
    AlertEvent = apps.get_model("monitoring", "AlertEvent")
    rules = {}
    for sensor in Sensor.objects.all().iterator():
        for band, builtin, low_field, high_field, name in BANDS:
            condition = _condition(getattr(sensor, low_field), getattr(sensor, high_field))
            if condition is None:
                continue
            rule = AlertRule.objects.create(
                team_id=sensor.team_id,
                name=(name % sensor.name)[:200],
                series=[
                    {"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}
                ],
                condition=condition,
                severity=band,
                for_s=0,
                evaluate_every_s=60,
                builtin=builtin,
                site_id=sensor.site_id,
                state="ok",
            )
            rule.sensors.add(sensor.pk)
            rules[(sensor.pk, band)] = rule
    for old in OldAlert.objects.order_by("pk").iterator():
        rule = rules.get((old.sensor_id, old.band)) if old.band else None
        resolved = old.resolved_at is not None
        alert = Alert.objects.create(
            team_id=old.team_id,
            rule=rule,
            site_id=old.site_id,
            sensor_id=old.sensor_id,
            severity=old.severity,
            state="resolved" if resolved else "firing",
            title=old.title,
            message=old.message,
            value=old.value,
            started_at=old.created_at,
            firing_at=old.created_at,
            resolved_at=old.resolved_at,
            acknowledged_by_id=old.acknowledged_by_id,
            acknowledged_at=old.acknowledged_at,
        )
        Alert.objects.filter(pk=alert.pk).update(created_at=old.created_at)
        AlertEvent.objects.create(alert=alert, kind="firing", created_at=old.created_at)
        if old.acknowledged_at is not None:
            AlertEvent.objects.create(
                alert=alert,
                kind="acknowledged",
                user_id=old.acknowledged_by_id,
                created_at=old.acknowledged_at,
            )
        if resolved:
            AlertEvent.objects.create(alert=alert, kind="resolved", created_at=old.resolved_at)
        elif rule is not None:
            AlertRule.objects.filter(pk=rule.pk).update(
                state="firing", state_since=old.created_at, last_value=old.value
            )


def backward(apps, schema_editor):
    OldAlert = apps.get_model("sites", "Alert")
    AlertRule = apps.get_model("monitoring", "AlertRule")
    Alert = apps.get_model("monitoring", "Alert")
    band_of = {builtin: band for band, builtin, *_ in BANDS}
    for alert in Alert.objects.filter(site__isnull=False).select_related("rule").iterator():
        OldAlert.objects.create(
            team_id=alert.team_id,
            site_id=alert.site_id,
            sensor_id=alert.sensor_id,
            severity=alert.severity,
            band=band_of.get(alert.rule.builtin, "") if alert.rule_id else "",
            title=alert.title,
            message=alert.message,
            value=alert.value,
            acknowledged_by_id=alert.acknowledged_by_id,
            acknowledged_at=alert.acknowledged_at,
            resolved_at=alert.resolved_at,
        )
    AlertRule.objects.exclude(builtin="").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sites", "0001_initial"),
        ("monitoring", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(forward, backward),
        migrations.DeleteModel(name="Alert"),
    ]
