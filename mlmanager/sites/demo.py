"""The demo site that `mlmanager run` shows a new user: "Demo mill" in the bootstrap admin's
first team, with the simulator's sensors (`sites.simulator.DEMO_SENSORS`) and the simulator's
device key."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.selectors import teams_for_caller
from mlmanager.sites.models import Site
from mlmanager.sites.selectors import site_device_keys
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.services.sensors import sensor_create
from mlmanager.sites.services.sites import device_key_create, device_key_revoke, site_create
from mlmanager.sites.simulator import DEMO_SENSORS, SensorProfile, profile_for, simulated_value

logger = logging.getLogger(__name__)

DEMO_SITE_NAME = "Demo mill"
SIMULATOR_KEY_NAME = "Demo simulator"


@dataclass(frozen=True)
class SimulatedSensor:
    sensor_id: int
    device_id: str
    profile: SensorProfile


def demo_device_id(profile: SensorProfile) -> str:
    return f"demo-mill-{profile.sensor_type}"


def demo_caller() -> Caller | None:
    """The platform acting for the bootstrap admin (`mlmanager bootstrap` creates them), who
    owns the demo site and its simulator key; None before there is one."""
    admin = get_user_model().objects.filter(email__iexact=settings.ENV.admin_email).first()
    return Caller.acting_for(admin) if admin is not None else None


def demo_site_ensure() -> Site | None:
    """The demo site, created (with any of its sensors missing) when needed; None when there
    is no bootstrap admin or the admin has no team."""
    caller = demo_caller()
    if caller is None:
        return None
    team = teams_for_caller(caller=caller).order_by("pk").first()
    if team is None:
        return None
    with transaction.atomic():
        site = Site.objects.filter(team=team, name=DEMO_SITE_NAME).first()
        created = site is None
        if site is None:
            site = site_create(
                caller=caller,
                team=team,
                name=DEMO_SITE_NAME,
                location="Demo",
                capacity=1200.0,
                capacity_unit="t",
                description="Simulated readings from `mlmanager simulate`.",
            )
            logger.info("demo site %s created in team %s", site.pk, team.pk)
        existing = set(site.sensors.values_list("name", flat=True))
        for profile in DEMO_SENSORS:
            if profile.name in existing:
                continue
            sensor_create(
                caller=caller,
                site=site,
                name=profile.name,
                sensor_type=profile.sensor_type,
                unit=profile.unit,
                device_id=demo_device_id(profile),
                sampling_interval_s=5,
                warning_min=profile.warning_min,
                warning_max=profile.warning_max,
                critical_min=profile.critical_min,
                critical_max=profile.critical_max,
            )
        if created:
            _backfill(site)
    return site


# A new demo site gets the past day's history at one reading a minute (5 sensors: 7 200
# readings, well under a second to ingest), so its 24 h charts are full on first sight.
BACKFILL = timedelta(hours=24)
BACKFILL_STEP = timedelta(minutes=1)


def _backfill(site: Site) -> None:
    now = timezone.now().replace(second=0, microsecond=0)
    steps = int(BACKFILL / BACKFILL_STEP)
    readings = [
        {
            "sensor": sensor.sensor_id,
            "timestamp": moment.isoformat(),
            "value": simulated_value(sensor.profile, moment),
        }
        for sensor in simulated_sensors(site)
        for moment in (now - BACKFILL + step * BACKFILL_STEP for step in range(steps))
    ]
    answer = readings_ingest(caller=Caller.system(), readings=readings, site_id=site.pk)
    logger.info("demo site %s: %s readings of the past day added", site.pk, answer["accepted"])


def site_for_simulation(site_id: int) -> Site | None:
    """A site named on the command line (`simulate --site`): the operator's choice, any team."""
    return Site.objects.filter(pk=site_id).first()


def simulated_sensors(site: Site) -> list[SimulatedSensor]:
    """The site's active sensors with the profile each is simulated with: the demo's own for
    the demo sensors, one made from the sensor's type and bands for any other."""
    demo = {profile.name: profile for profile in DEMO_SENSORS}
    sensors = []
    for sensor in site.sensors.filter(is_active=True).order_by("pk"):
        profile = demo.get(sensor.name) or profile_for(
            name=sensor.name,
            sensor_type=sensor.sensor_type,
            unit=sensor.unit,
            warning_min=sensor.warning_min,
            warning_max=sensor.warning_max,
            critical_min=sensor.critical_min,
            critical_max=sensor.critical_max,
        )
        sensors.append(SimulatedSensor(sensor.pk, sensor.device_id, profile))
    return sensors


@transaction.atomic
def simulator_key_rotate(*, caller: Caller, site: Site) -> str:
    """A fresh device key for the simulator (kept only by its process); the earlier simulator
    keys of the site are revoked."""
    for key in site_device_keys(site=site).filter(name=SIMULATOR_KEY_NAME, revoked_at__isnull=True):
        device_key_revoke(caller=caller, key=key)
    _key, raw = device_key_create(caller=caller, site=site, name=SIMULATOR_KEY_NAME)
    return raw
