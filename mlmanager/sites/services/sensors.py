"""Sensors: create, change thresholds, calibrate, delete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError
from mlmanager.monitoring.services.rules import sensor_rules_sync
from mlmanager.sites.live import site_changed
from mlmanager.sites.models import CalibrationRecord, Reading, ReadingRollup, Sensor, Site
from mlmanager.sites.services.sites import _clean_and_save

SENSOR_FIELDS = (
    "name",
    "sensor_type",
    "unit",
    "device_id",
    "location",
    "is_active",
    "sampling_interval_s",
    "warning_min",
    "warning_max",
    "critical_min",
    "critical_max",
    "calibration_offset",
    "calibration_multiplier",
    "metadata",
)
# What a technician may change (thresholds and calibration); the rest needs the site's admin.
MAINTENANCE_FIELDS = frozenset(
    {
        "warning_min",
        "warning_max",
        "critical_min",
        "critical_max",
        "calibration_offset",
        "calibration_multiplier",
    }
)
# What the sensor's built-in alert rules are made of (their names and conditions).
RULE_FIELDS = frozenset({"name", "warning_min", "warning_max", "critical_min", "critical_max"})
_UNIQUE = _(
    "A sensor with that name is on this site already, or that device id is in use in the team."
)


def _check_bands(sensor: Sensor) -> None:
    for low, high, label in (
        (sensor.warning_min, sensor.warning_max, _("warning")),
        (sensor.critical_min, sensor.critical_max, _("critical")),
    ):
        if low is not None and high is not None and low > high:
            raise ApplicationError(
                _("The %(band)s minimum is above its maximum.") % {"band": label},
                code="invalid_band",
            )
    if sensor.calibration_multiplier == 0:
        raise ApplicationError(
            _("The calibration multiplier cannot be 0."), code="invalid_calibration"
        )
    if not sensor.unit and sensor.sensor_type in Sensor.UNITS:
        sensor.unit = Sensor.UNITS[sensor.sensor_type]
    if not isinstance(sensor.metadata, dict):
        raise ApplicationError(_("metadata must be a JSON object."), code="invalid_metadata")


@transaction.atomic
def sensor_create(*, caller: Caller, site: Site, **fields: Any) -> Sensor:
    sensor = Sensor(
        team_id=site.team_id, site=site, **{k: v for k, v in fields.items() if k in SENSOR_FIELDS}
    )
    _check_bands(sensor)
    _clean_and_save(sensor, unique_message=_UNIQUE)
    sensor_rules_sync(sensor, caller=caller)  # its bands are built-in alert rules
    audit_record(
        caller=caller,
        team=site.team,
        action=AuditAction.SENSOR_CREATED,
        target=sensor,
        details={"name": sensor.name, "site": site.name, "device_id": sensor.device_id},
    )
    site_changed(site_ids={site.pk})
    return sensor


@transaction.atomic
def sensor_update(*, caller: Caller, sensor: Sensor, **fields: Any) -> Sensor:
    """Change a sensor (found with `access_sensor` for MAINTAIN when only thresholds and
    calibration change, MANAGE otherwise: `sensor_update_action` says which)."""
    changes = {}
    for name, value in fields.items():
        if name in SENSOR_FIELDS and getattr(sensor, name) != value:
            changes[name] = (getattr(sensor, name), value)
            setattr(sensor, name, value)
    if not changes:
        return sensor
    _check_bands(sensor)
    _clean_and_save(sensor, unique_message=_UNIQUE)
    if changes.keys() & RULE_FIELDS:
        sensor_rules_sync(sensor, caller=caller)
    audit_record(
        caller=caller,
        team=sensor.site.team,
        action=AuditAction.SENSOR_CHANGED,
        target=sensor,
        changes=changes,
    )
    site_changed(site_ids={sensor.site_id})
    return sensor


def sensor_update_needs_manage(fields: Sequence[str]) -> bool:
    """True when the change touches more than thresholds and calibration."""
    return bool(set(fields) - MAINTENANCE_FIELDS)


@transaction.atomic
def sensor_calibrate(
    *, caller: Caller, sensor: Sensor, reference_value: float
) -> CalibrationRecord:
    """Set the offset so the latest raw reading reads as the reference value
    (offset = reference − latest raw × multiplier; with the multiplier 1, reference − raw).
    Readings already stored keep their values; the history is kept."""
    latest = Sensor.objects.filter(pk=sensor.pk).values_list("last_raw_value", flat=True).first()
    if latest is None:
        raise ApplicationError(
            _("The sensor has no reading yet; calibrate it once it has sent one."),
            code="no_reading",
            status_code=409,  # the request is valid; the sensor's state does not allow it yet
        )
    previous_offset = sensor.calibration_offset
    offset = float(reference_value) - latest * sensor.calibration_multiplier
    Sensor.objects.filter(pk=sensor.pk).update(calibration_offset=offset)
    sensor.calibration_offset = offset
    record = CalibrationRecord.objects.create(
        sensor=sensor,
        calibrated_by=caller.user,
        reference_value=reference_value,
        previous_reading=latest,
        previous_offset=previous_offset,
        calibration_offset=offset,
        calibration_multiplier=sensor.calibration_multiplier,
    )
    audit_record(
        caller=caller,
        team=sensor.site.team,
        action=AuditAction.SENSOR_CALIBRATED,
        target=sensor,
        changes={"calibration_offset": (previous_offset, offset)},
        details={"reference_value": reference_value, "previous_reading": latest},
    )
    site_changed(site_ids={sensor.site_id})
    return record


@transaction.atomic
def sensor_delete(*, caller: Caller, sensor: Sensor) -> None:
    delete_readings_of(sensor_ids=[sensor.pk])
    audit_record(
        caller=caller,
        team=sensor.site.team,
        action=AuditAction.SENSOR_DELETED,
        target=sensor,
        details={"name": sensor.name, "site": sensor.site.name},
    )
    site_id = sensor.site_id
    sensor.delete()
    site_changed(site_ids={site_id})


def delete_readings_of(*, sensor_ids: list[int]) -> None:
    """The readings and rollups of sensors about to go: one statement each (the readings have
    no foreign key, so the collector does not walk them row by row)."""
    if not sensor_ids:
        return
    with connection.cursor() as cursor:
        for table in (Reading._meta.db_table, ReadingRollup._meta.db_table):
            marks = ", ".join(["%s"] * len(sensor_ids))
            cursor.execute(f"DELETE FROM {table} WHERE sensor_id IN ({marks})", sensor_ids)  # noqa: S608
