"""Sites (mills, plants), their sensors and the readings devices send, with per-site roles.

The monitoring system MLManager grows from: a team runs sites; each site has sensors with
warning and critical bands and a calibration; readings stream in over REST and MQTT (one
ingest path, `services/readings.py`). A sensor's bands are the built-in alert rules of the
`monitoring` app, which keeps the alerts: a reading outside a band opens one alert per sensor
and band until the sensor is back inside. Members see the sites they hold a role on (team
owners and admins see every site).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mlmanager.core.models import TeamOwnedModel, TeamScopedQuerySet, TimeStampedModel


class Site(TeamOwnedModel):
    """A place with equipment: a mill, a plant, a fleet depot."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        MAINTENANCE = "maintenance", _("Maintenance")
        OFFLINE = "offline", _("Offline")
        ERROR = "error", _("Error")

    name = models.CharField(max_length=120)
    location = models.CharField(max_length=200, blank=True)
    latitude = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    capacity = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0)], help_text=_("Per day.")
    )
    capacity_unit = models.CharField(max_length=30, blank=True, default="t")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    description = models.TextField(blank=True)
    # Whether production runs now (start_production / emergency_stop), apart from the status.
    producing = models.BooleanField(default=False)
    # Counts changes that dashboards show (sites.live): the embedded default's sockets poll it.
    live_version = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="site_name_unique_in_team"),
            models.CheckConstraint(
                condition=Q(status__in=["active", "maintenance", "offline", "error"]),
                name="site_status_known",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SiteMembership(TimeStampedModel):
    """A team member's role on one site (the monitoring system's four roles)."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("Admin")
        OPERATOR = "operator", _("Operator")
        TECHNICIAN = "technician", _("Technician")
        VIEWER = "viewer", _("Viewer")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="site_memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "user"], name="site_membership_unique"),
            models.CheckConstraint(
                condition=Q(role__in=["admin", "operator", "technician", "viewer"]),
                name="site_membership_role_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.site_id}: {self.role}"


class Sensor(TeamOwnedModel):
    """A measuring point of a site. `team` repeats the site's (kept equal by the services) so
    a device id is unique in the team and team-scoped reads need no join."""

    class Type(models.TextChoices):
        TEMPERATURE = "temperature", _("Temperature")
        HUMIDITY = "humidity", _("Humidity")
        PRESSURE = "pressure", _("Pressure")
        VIBRATION = "vibration", _("Vibration")
        FLOW = "flow", _("Flow")
        LEVEL = "level", _("Level")
        CUSTOM = "custom", _("Custom")

    # The unit each type is measured in; a custom sensor names its own.
    UNITS: dict[str, str] = {
        "temperature": "°C",
        "humidity": "%",
        "pressure": "hPa",
        "vibration": "Hz",
        "flow": "L/min",
        "level": "%",
    }

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="sensors")
    name = models.CharField(max_length=120)
    sensor_type = models.CharField(max_length=20, choices=Type.choices, default=Type.CUSTOM)
    unit = models.CharField(max_length=20, blank=True)
    device_id = models.CharField(max_length=120)
    location = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    sampling_interval_s = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)])
    warning_min = models.FloatField(null=True, blank=True)
    warning_max = models.FloatField(null=True, blank=True)
    critical_min = models.FloatField(null=True, blank=True)
    critical_max = models.FloatField(null=True, blank=True)
    calibration_offset = models.FloatField(default=0.0)
    calibration_multiplier = models.FloatField(default=1.0)
    metadata = models.JSONField(default=dict, blank=True)
    # The newest reading (by its timestamp), kept by the ingest: the dashboard and the status
    # endpoint read it without scanning the readings.
    last_timestamp = models.DateTimeField(null=True, blank=True)
    last_raw_value = models.FloatField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_quality = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["site_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="sensor_name_unique_in_site"),
            models.UniqueConstraint(fields=["team", "device_id"], name="sensor_device_unique"),
            models.CheckConstraint(
                condition=Q(
                    sensor_type__in=[
                        "temperature",
                        "humidity",
                        "pressure",
                        "vibration",
                        "flow",
                        "level",
                        "custom",
                    ]
                ),
                name="sensor_type_known",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def calibrated(self, raw: float) -> float:
        return raw * self.calibration_multiplier + self.calibration_offset

    def bands_broken(self, value: float) -> set[str]:
        """The bands ("warning", "critical") the value is outside of, each judged on its own
        (a sensor with only critical limits is never in warning): the sensor's state."""
        broken = set()
        for band, low, high in (
            ("warning", self.warning_min, self.warning_max),
            ("critical", self.critical_min, self.critical_max),
        ):
            if (low is not None and value < low) or (high is not None and value > high):
                broken.add(band)
        return broken


class Reading(models.Model):
    """One value of one sensor at one time: unique per (sensor, timestamp), so a reading sent
    twice is stored once. On PostgreSQL the table is partitioned by month of `timestamp`
    (migration 0001); rows are written by the ingest (COPY there), never one by one."""

    class Quality(models.TextChoices):
        GOOD = "good", _("Good")
        UNCERTAIN = "uncertain", _("Uncertain")
        BAD = "bad", _("Bad")

    pk = models.CompositePrimaryKey("sensor_id", "timestamp")
    sensor = models.ForeignKey(
        Sensor, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False
    )  # the primary key starts with it
    timestamp = models.DateTimeField()
    raw_value = models.FloatField()
    value = models.FloatField(help_text=_("raw × multiplier + offset, at ingest"))
    quality = models.CharField(max_length=10, choices=Quality.choices, default=Quality.GOOD)

    # The readings of a deleted sensor are deleted by its service in one statement, not by
    # Django's collector row by row (DO_NOTHING, and no database foreign key).

    def __str__(self) -> str:
        return f"{self.sensor_id} @ {self.timestamp}: {self.value}"


class ReadingRollup(models.Model):
    """Readings of one sensor summed up per minute or per hour (min, max, sum, count), kept
    up to date by the ingest in the same statement: charts over long ranges read these."""

    class Resolution(models.TextChoices):
        MINUTE = "1m", _("Per minute")
        HOUR = "1h", _("Per hour")

    pk = models.CompositePrimaryKey("sensor_id", "resolution", "bucket")
    sensor = models.ForeignKey(
        Sensor, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False
    )  # the primary key starts with it
    resolution = models.CharField(max_length=2, choices=Resolution.choices)
    bucket = models.DateTimeField()
    minimum = models.FloatField()
    maximum = models.FloatField()
    total = models.FloatField()
    count = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.sensor_id} {self.resolution} @ {self.bucket}"


class CalibrationRecord(TimeStampedModel):
    """One calibration of a sensor: what it read, what it should have read, and the result."""

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="calibrations")
    calibrated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reference_value = models.FloatField()
    previous_reading = models.FloatField(help_text=_("The latest raw reading"))
    previous_offset = models.FloatField()
    calibration_offset = models.FloatField()
    calibration_multiplier = models.FloatField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.sensor_id}: offset {self.calibration_offset}"


class ProductionRecord(TimeStampedModel):
    """What a site produced on one day; efficiency = actual / the site's capacity."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="production")
    date = models.DateField()
    actual = models.FloatField(validators=[MinValueValidator(0)])
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-date"]
        constraints = [
            models.UniqueConstraint(fields=["site", "date"], name="production_one_per_day"),
            models.CheckConstraint(condition=Q(actual__gte=0), name="production_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.site_id} {self.date}: {self.actual}"


class DeviceKey(TeamOwnedModel):
    """A key a device or gateway sends readings with, for one site's sensors only. Only its
    SHA-256 is stored; the raw key is shown once."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="device_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IngestBatch(models.Model):
    """A `batch_id` a caller already sent, with the answer it got: sending it again changes
    nothing and gets the same answer. `caller_key` names the sender ("user:7", "device:3")."""

    caller_key = models.CharField(max_length=40)
    batch_id = models.CharField(max_length=200)
    answer = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caller_key", "batch_id"], name="ingest_batch_once")
        ]

    def __str__(self) -> str:
        return f"{self.caller_key} {self.batch_id}"


class DeadLetter(models.Model):
    """An MQTT message the bridge could not turn into readings, kept with the reason."""

    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.SET_NULL)
    topic = models.CharField(max_length=500)
    payload = models.TextField(help_text=_("The first 10 000 characters"))
    reason = models.CharField(max_length=500)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = TeamScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.topic}: {self.reason}"


class SiteCommand(TimeStampedModel):
    """A command sent to a site's equipment over MQTT (an emergency stop), and whether the
    broker took it."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="commands")
    command = models.CharField(max_length=50)
    payload = models.JSONField(default=dict)
    topic = models.CharField(max_length=500)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.command} → {self.topic}"


class RetentionPolicy(models.Model):
    """How long a team keeps raw readings and rollups (days); without a row the setting
    MLMANAGER_READING_RETENTION_DAYS applies."""

    team = models.OneToOneField("accounts.Team", on_delete=models.CASCADE, related_name="+")
    raw_days = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    rollup_days = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    def __str__(self) -> str:
        return f"{self.team_id}: {self.raw_days} d raw, {self.rollup_days} d rollups"
