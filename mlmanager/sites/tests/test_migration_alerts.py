"""Migration sites/0002: issue 14's threshold alerts become alerts of the sensors' built-in rules
(monitoring), and back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("sites", "0001_initial"), ("monitoring", "0001_initial")]
AFTER = [("sites", "0002_alerts_move_to_monitoring")]
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_old_alerts_move_to_built_in_rules_and_back() -> None:
    apps = migrate(BEFORE)
    team = apps.get_model("accounts", "Team").objects.create(name="Mill team")
    user = apps.get_model("accounts", "User").objects.create(email="op@example.com")
    site = apps.get_model("sites", "Site").objects.create(team=team, name="Mill", capacity=1)
    Sensor = apps.get_model("sites", "Sensor")
    kiln = Sensor.objects.create(
        team=team, site=site, name="Kiln", device_id="kiln", warning_max=50, critical_max=80
    )
    Sensor.objects.create(team=team, site=site, name="Plain", device_id="plain")  # no limits
    OldAlert = apps.get_model("sites", "Alert")
    open_critical = OldAlert.objects.create(
        team=team, site=site, sensor=kiln, severity="critical", band="critical", title="Hot",
        value=90, acknowledged_by=user,
    )  # fmt: skip
    OldAlert.objects.filter(pk=open_critical.pk).update(acknowledged_at=datetime.now(UTC))
    OldAlert.objects.create(
        team=team, site=site, sensor=kiln, severity="warning", band="warning", title="Warm",
        value=60, resolved_at=T0,
    )  # fmt: skip
    OldAlert.objects.create(team=team, site=site, severity="emergency", title="Emergency stop")

    apps = migrate(AFTER)
    AlertRule = apps.get_model("monitoring", "AlertRule")
    Alert = apps.get_model("monitoring", "Alert")
    rules = {rule.builtin: rule for rule in AlertRule.objects.all()}
    assert set(rules) == {"sensor_warning_band", "sensor_critical_band"}  # Plain has none
    critical = rules["sensor_critical_band"]
    assert critical.condition == {"series": 0, "op": "above", "value": 80.0}
    assert critical.series == [
        {"kind": "sensor", "sensor": kiln.pk, "aggregation": "last", "period_s": 0}
    ]
    assert list(critical.sensors.values_list("pk", flat=True)) == [kiln.pk]
    assert (critical.state, critical.site_id) == ("firing", site.pk)  # its alert is open
    assert rules["sensor_warning_band"].state == "ok"
    moved = {alert.title: alert for alert in Alert.objects.all()}
    assert set(moved) == {"Hot", "Warm", "Emergency stop"}
    hot = moved["Hot"]
    assert (hot.rule_id, hot.state, hot.value, hot.acknowledged_by_id) == (
        critical.pk,
        "firing",
        90,
        user.pk,
    )
    assert hot.created_at == open_critical.created_at
    assert [event.kind for event in hot.events.order_by("created_at")] == [
        "firing",
        "acknowledged",
    ]
    assert (moved["Warm"].state, moved["Warm"].resolved_at) == ("resolved", T0)
    assert (moved["Emergency stop"].rule_id, moved["Emergency stop"].state) == (None, "firing")

    apps = migrate(BEFORE)  # and back
    OldAlert = apps.get_model("sites", "Alert")
    assert sorted(OldAlert.objects.values_list("title", "band")) == [
        ("Emergency stop", ""),
        ("Hot", "critical"),
        ("Warm", "warning"),
    ]
    assert not apps.get_model("monitoring", "AlertRule").objects.exists()
    migrate(AFTER)  # the database as the other tests expect it
