"""Sites, sensors and readings for tests."""

from __future__ import annotations

from typing import Any

from mlmanager.accounts.caller import Caller
from mlmanager.monitoring.services.rules import sensor_rules_sync
from mlmanager.sites.models import Sensor, Site, SiteMembership


def site_of(team: Any, name: str = "Mill 1", **fields: Any) -> Site:
    fields.setdefault("capacity", 100.0)
    return Site.objects.create(team=team, name=name, **fields)


def sensor_of(site: Site, name: str = "Temperature", **fields: Any) -> Sensor:
    """A sensor with its built-in alert rules (of its warning and critical limits), as the
    sensor services make them."""
    fields.setdefault("device_id", f"{site.pk}-{name.lower().replace(' ', '-')}")
    fields.setdefault("sensor_type", "temperature")
    fields.setdefault("unit", Sensor.UNITS.get(fields["sensor_type"], ""))
    sensor = Sensor.objects.create(team_id=site.team_id, site=site, name=name, **fields)
    sensor_rules_sync(sensor)
    return sensor


def site_role(site: Site, user: Any, role: str) -> SiteMembership:
    return SiteMembership.objects.create(site=site, user=user, role=role)


def caller_of(user: Any) -> Caller:
    return Caller.for_session(user)
