"""Team- and site-scoped reads of sites, sensors and readings (and of the alerts the
`monitoring` app keeps about a site, for its status).

`access_site` and `access_sensor` are the permission-checked fetches of a client-supplied id:
one query finds the object among the caller's teams and reads the caller's team role and site
role with it (sites.access decides what the pair allows).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import connection, models
from django.db.models import (
    Case,
    Count,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from mlmanager.accounts.caller import Caller, Credential
from mlmanager.accounts.models import Membership
from mlmanager.core.access import parse_id
from mlmanager.core.errors import NotFound
from mlmanager.monitoring.models import Alert
from mlmanager.sites.access import (
    TEAM_ROLES_OVER_EVERY_SITE,
    SiteAction,
    effective_site_role,
    require_site_action,
    site_role_allows,
)
from mlmanager.sites.models import (
    CalibrationRecord,
    DeadLetter,
    DeviceKey,
    ProductionRecord,
    Reading,
    ReadingRollup,
    Sensor,
    Site,
    SiteCommand,
    SiteMembership,
)

_ModelT = TypeVar("_ModelT", bound=models.Model)


# --- who sees which site ------------------------------------------------------------------------


def sites_for_caller(caller: Caller) -> QuerySet[Site]:
    """The sites the caller sees: every site of the teams they own or administer, and the
    sites they hold a role on in their other teams (within their credential's team limit)."""
    if caller.user_id is None:
        return Site.objects.none()
    over_every_site = Membership.objects.filter(
        user_id=caller.user_id, role__in=TEAM_ROLES_OVER_EVERY_SITE
    ).values("team_id")
    granted = SiteMembership.objects.filter(user_id=caller.user_id).values("site_id")
    return Site.objects.for_caller(caller).filter(
        Q(team_id__in=over_every_site) | Q(pk__in=granted)
    )


def site_ids_for_caller(caller: Caller, *, action: SiteAction = SiteAction.VIEW) -> list[int]:
    """Ids of the sites on which the caller may do `action`."""
    return [
        site.pk
        for site in with_site_roles(sites_for_caller(caller), caller, "pk")
        if _allows(site, action)
    ]


def with_site_roles(
    queryset: QuerySet[_ModelT], caller: Caller, site_field: str
) -> QuerySet[_ModelT]:
    """Annotate the caller's team role (joined through for_caller's membership join, which
    `queryset` must already have) and the role granted on the object's site (`site_field`;
    null for an object of no site). Other apps whose objects belong to a site use it too."""
    granted = SiteMembership.objects.filter(
        site_id=OuterRef(site_field), user_id=caller.user_id or 0
    )
    return queryset.annotate(
        caller_team_role=F("team__memberships__role"),
        caller_site_role=Subquery(granted.values("role")[:1]),
    )


def _allows(obj: Any, action: SiteAction) -> bool:
    role = effective_site_role(team_role=obj.caller_team_role, site_role=obj.caller_site_role)
    return site_role_allows(role, action)


def _access(
    queryset: QuerySet[_ModelT], *, caller: Caller, id: Any, action: SiteAction, site_field: str
) -> _ModelT:
    found = list(
        with_site_roles(queryset.for_caller(caller), caller, site_field)  # type: ignore[attr-defined]
        .filter(pk=parse_id(id))
        .order_by()[:1]
    )
    if not found:
        raise NotFound()
    obj = found[0]
    obj.caller_role = effective_site_role(  # type: ignore[attr-defined]
        team_role=obj.caller_team_role, site_role=obj.caller_site_role
    )
    require_site_action(obj.caller_role, action)  # type: ignore[attr-defined]
    return obj


def access_site(*, caller: Caller, id: Any, action: SiteAction = SiteAction.VIEW) -> Site:
    """The site, when the caller may do `action` on it; `site.caller_role` is their role."""
    return _access(Site.objects.all(), caller=caller, id=id, action=action, site_field="pk")


def access_sensor(*, caller: Caller, id: Any, action: SiteAction = SiteAction.VIEW) -> Sensor:
    return _access(
        Sensor.objects.select_related("site"),
        caller=caller,
        id=id,
        action=action,
        site_field="site_id",
    )


# --- lists ---------------------------------------------------------------------------------------


def sensors_for_caller(caller: Caller) -> QuerySet[Sensor]:
    return Sensor.objects.filter(site__in=sites_for_caller(caller)).select_related("site")


def sensors_of_site(*, site_id: int) -> QuerySet[Sensor]:
    """A site's sensors, for an app that already checked the caller's right on the site."""
    return Sensor.objects.filter(site_id=site_id)


def site_members(*, site: Site) -> QuerySet[SiteMembership]:
    return site.memberships.select_related("user").order_by("user__email")


def site_device_keys(*, site: Site) -> QuerySet[DeviceKey]:
    return site.device_keys.order_by("-created_at")


def site_production(*, site: Site) -> QuerySet[ProductionRecord]:
    return site.production.order_by("-date")


def site_commands(*, site: Site) -> QuerySet[SiteCommand]:
    return site.commands.select_related("sent_by")


def sensor_calibrations(*, sensor: Sensor) -> QuerySet[CalibrationRecord]:
    return sensor.calibrations.select_related("calibrated_by")


def dead_letters_for_caller(caller: Caller) -> QuerySet[DeadLetter]:
    """Dead letters of the sites the caller may manage (and of their teams' unknown sites,
    for team owners and admins)."""
    if caller.user_id is None:
        return DeadLetter.objects.none()
    managed = [pk for pk in site_ids_for_caller(caller, action=SiteAction.MANAGE)]
    over_every_site = Membership.objects.filter(
        user_id=caller.user_id, role__in=TEAM_ROLES_OVER_EVERY_SITE
    ).values("team_id")
    if caller.team_limit is not None:
        over_every_site = over_every_site.filter(team_id=caller.team_limit)
    return DeadLetter.objects.filter(Q(site_id__in=managed) | Q(team_id__in=over_every_site))


# --- a site's state now -------------------------------------------------------------------------


def site_open_alerts(*, site_ids: list[int]) -> QuerySet[Alert]:
    """The firing alerts of these sites (a sensor's band, a rule on its sensors, an emergency
    stop), newest first; a rule's alert that is only pending is not one yet."""
    return Alert.objects.filter(
        site_id__in=site_ids, resolved_at__isnull=True, state=Alert.State.FIRING
    ).order_by("-started_at", "-pk")


def sensor_state(sensor: Sensor, *, now: datetime | None = None) -> str:
    """ok / warning / critical by the latest value against the bands; stale when no reading
    came for three sampling intervals (at least a minute) or none ever came."""
    now = now or timezone.now()
    if sensor.last_timestamp is None or sensor.last_value is None:
        return "stale"
    patience = timedelta(seconds=max(60, 3 * sensor.sampling_interval_s))
    if now - sensor.last_timestamp > patience:
        return "stale"
    broken = sensor.bands_broken(sensor.last_value)
    return "critical" if "critical" in broken else "warning" if broken else "ok"


@dataclass(frozen=True)
class SiteStatus:
    site: Site
    sensors: list[Sensor]
    states: dict[int, str]
    open_alerts: list[Alert]
    efficiency: float | None
    today_production: float | None
    last_updated: datetime | None


def site_status(*, site: Site) -> SiteStatus:
    now = timezone.now()
    sensors = list(site.sensors.filter(is_active=True).order_by("name"))
    alerts = list(site_open_alerts(site_ids=[site.pk]).select_related("sensor", "acknowledged_by"))
    today = (
        site.production.filter(date=timezone.localdate()).values_list("actual", flat=True).first()
    )
    stamps = [sensor.last_timestamp for sensor in sensors if sensor.last_timestamp is not None]
    return SiteStatus(
        site=site,
        sensors=sensors,
        states={sensor.pk: sensor_state(sensor, now=now) for sensor in sensors},
        open_alerts=alerts,
        efficiency=(today / site.capacity) if today is not None and site.capacity else None,
        today_production=today,
        last_updated=max(stamps) if stamps else None,
    )


def sites_overview(*, caller: Caller) -> list[dict[str, Any]]:
    """Each visible site with its open alerts, sensors in warning or worse, and efficiency:
    three queries whatever the number of sites."""
    sites = list(sites_for_caller(caller).order_by("name"))
    ids = [site.pk for site in sites]
    alerts = dict(
        site_open_alerts(site_ids=ids)
        .order_by()
        .values("site_id")
        .annotate(n=Count("id"))
        .values_list("site_id", "n")
    )
    today = dict(
        ProductionRecord.objects.filter(site_id__in=ids, date=timezone.localdate()).values_list(
            "site_id", "actual"
        )
    )
    now = timezone.now()
    in_warning: dict[int, int] = {}
    counts: dict[int, int] = {}
    for sensor in Sensor.objects.filter(site_id__in=ids, is_active=True):
        counts[sensor.site_id] = counts.get(sensor.site_id, 0) + 1
        if sensor_state(sensor, now=now) in ("warning", "critical"):
            in_warning[sensor.site_id] = in_warning.get(sensor.site_id, 0) + 1
    return [
        {
            "site": site,
            "open_alerts": alerts.get(site.pk, 0),
            "sensors": counts.get(site.pk, 0),
            "sensors_in_warning": in_warning.get(site.pk, 0),
            "efficiency": (today[site.pk] / site.capacity)
            if site.pk in today and site.capacity
            else None,
        }
        for site in sites
    ]


# --- readings over time --------------------------------------------------------------------------

RESOLUTIONS = ("raw", "1m", "1h")


def sensor_series(
    *,
    sensor: Sensor,
    start: datetime,
    end: datetime,
    resolution: str = "raw",
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Points of one sensor in [start, end), oldest first. Raw: the readings; 1m / 1h: the
    rollups, each point with its average, minimum, maximum and count."""
    if resolution == "raw":
        rows = (
            Reading.objects.filter(sensor_id=sensor.pk, timestamp__gte=start, timestamp__lt=end)
            .order_by("-timestamp")
            .values("timestamp", "raw_value", "value", "quality")[:limit]
        )
        return [{"sensor": sensor.pk, **row} for row in reversed(list(rows))]
    rollups = (
        ReadingRollup.objects.filter(
            sensor_id=sensor.pk, resolution=resolution, bucket__gte=start, bucket__lt=end
        )
        .order_by("-bucket")
        .values("bucket", "minimum", "maximum", "total", "count")[:limit]
    )
    return [
        {
            "sensor": sensor.pk,
            "timestamp": row["bucket"],
            "value": row["total"] / row["count"],
            "minimum": row["minimum"],
            "maximum": row["maximum"],
            "count": row["count"],
        }
        for row in reversed(list(rollups))
    ]


MINUTE = timedelta(minutes=1)


def sensor_statistics(*, sensor: Sensor, start: datetime, end: datetime) -> dict[str, Any]:
    """count, average, minimum, maximum over [start, end) and the latest reading in the range:
    the whole minutes inside the range from the minute rollups (every stored reading is in
    one), the partial minutes at its two ends from the readings themselves, so the figures
    are exact for any range (an `end` of now is inside a minute) and a 30-day range reads
    about 43 000 rollups, not millions of readings."""
    first_whole = _minute(start) if start == _minute(start) else _minute(start) + MINUTE
    last_whole = _minute(end)
    readings = Reading.objects.filter(sensor_id=sensor.pk)
    parts: list[dict[str, Any]] = []
    if first_whole >= last_whole:  # less than a whole minute: the readings alone
        edges = [(start, end)]
    else:
        edges = [(start, first_whole), (last_whole, end)]
        parts.append(
            ReadingRollup.objects.filter(
                sensor_id=sensor.pk,
                resolution=ReadingRollup.Resolution.MINUTE,
                bucket__gte=first_whole,
                bucket__lt=last_whole,
            ).aggregate(
                count=Sum("count"),
                total=Sum("total"),
                minimum=Min("minimum"),
                maximum=Max("maximum"),
            )
        )
    for low, high in edges:
        if low < high:
            parts.append(
                readings.filter(timestamp__gte=low, timestamp__lt=high).aggregate(
                    count=Count("timestamp"),
                    total=Sum("value"),
                    minimum=Min("value"),
                    maximum=Max("value"),
                )
            )
    parts = [part for part in parts if part["count"]]
    latest = (
        readings.filter(timestamp__gte=start, timestamp__lt=end)
        .order_by("-timestamp")
        .values("timestamp", "value", "quality")
        .first()
    )
    count = sum(part["count"] for part in parts)
    return {
        "count": count,
        "average": sum(part["total"] for part in parts) / count if count else None,
        "minimum": min((part["minimum"] for part in parts), default=None),
        "maximum": max((part["maximum"] for part in parts), default=None),
        "latest": latest,
    }


def sensor_readings_export(
    *, sensor: Sensor, start: datetime, end: datetime
) -> Iterator[tuple[datetime, float, float, str]]:
    """Every reading of a sensor in [start, end), oldest first, streamed from the database
    (a month of one-second readings is 2.6 M rows)."""
    return (
        Reading.objects.filter(sensor_id=sensor.pk, timestamp__gte=start, timestamp__lt=end)
        .order_by("timestamp")
        .values_list("timestamp", "raw_value", "value", "quality")
        .iterator(chunk_size=5000)
    )


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def site_teams(*, site_ids: Iterable[int]) -> dict[int, int]:
    """Site id -> team id of the sites that exist (the MQTT bridge trusts its broker's topics:
    any team's site)."""
    return dict(Site.objects.filter(pk__in=list(site_ids)).values_list("pk", "team_id"))


def device_key_by_hash(*, key_hash: str) -> DeviceKey | None:
    """The active key with this hash, with its site (the device-key authentication)."""
    found = list(
        DeviceKey.objects.select_related("site").filter(key_hash=key_hash, revoked_at__isnull=True)[
            :1
        ]
    )
    return found[0] if found else None


def device_key_site_id(caller: Caller) -> int | None:
    """The one site a device-key caller may send readings for."""
    if caller.credential != Credential.DEVICE_KEY or caller.credential_id is None:
        return None
    return (
        DeviceKey.objects.filter(pk=caller.credential_id, revoked_at__isnull=True)
        .values_list("site_id", flat=True)
        .first()
    )


# --- series for charts and rules (monitoring) ---------------------------------------------------


class PeriodBucket(models.Func):
    """The number of the `period_s`-long period since the Unix epoch a datetime falls in
    (⌊epoch seconds / period_s⌋): aligned the same way on both databases, so 60-second buckets
    are the minute rollups' and 3600-second ones the hour rollups'."""

    output_field = models.BigIntegerField()

    def __init__(self, expression: Any, period_s: int) -> None:
        super().__init__(expression)
        self.period_s = int(period_s)  # an int: safe to write into the SQL
        if self.period_s < 1:
            raise ValueError("period_s must be positive")

    def as_sql(  # type: ignore[override]  # always this one template
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {sql}) / {self.period_s}) AS BIGINT)", list(params)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(unixepoch({sql}) / {self.period_s})", list(params)


SENSOR_AGGREGATIONS = ("avg", "min", "max", "last", "count")


def series_sensor_sites(
    *, caller: Caller | None, team_id: int, sensor_ids: Iterable[int]
) -> dict[int, int]:
    """Sensor id -> site id of the given sensors that belong to team `team_id` and that the
    caller sees (`None`: the platform itself, every sensor of the team)."""
    sensors = Sensor.objects.filter(team_id=team_id, pk__in=list(sensor_ids))
    if caller is not None:
        sensors = sensors.filter(site__in=sites_for_caller(caller))
    return dict(sensors.values_list("pk", "site_id"))


def sensor_readings_between(
    *, sensor_id: int, start: datetime, end: datetime, limit: int
) -> list[tuple[datetime, float]]:
    """(timestamp, value) of a sensor's readings in [start, end), oldest first, at most
    `limit` of them (the oldest ones: the caller asks for one more to know there are more)."""
    return list(
        Reading.objects.filter(sensor_id=sensor_id, timestamp__gte=start, timestamp__lt=end)
        .order_by("timestamp")
        .values_list("timestamp", "value")[:limit]
    )


def sensor_period_values(
    *, sensor_id: int, start: datetime, end: datetime, period_s: int, aggregation: str
) -> dict[int, float]:
    """Bucket number (PeriodBucket) -> the aggregate of a sensor's readings in that bucket,
    for buckets with readings in [start, end). `start` and `end` should be bucket bounds:
    the minute (period a multiple of 60) or hour (of 3600) rollups then answer avg, min, max
    and count exactly, and far faster than the readings; `last` reads the readings (the
    rollups keep no order)."""
    if aggregation not in SENSOR_AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation}")
    if aggregation == "last":
        newest = dict(
            Reading.objects.filter(sensor_id=sensor_id, timestamp__gte=start, timestamp__lt=end)
            .annotate(period=PeriodBucket("timestamp", period_s))
            .values("period")
            .annotate(newest=Max("timestamp"))
            .values_list("period", "newest")
            .order_by()
        )
        values = dict(
            Reading.objects.filter(sensor_id=sensor_id, timestamp__in=list(newest.values()))
            .values_list("timestamp", "value")
            .order_by()
        )
        return {period: values[stamp] for period, stamp in newest.items() if stamp in values}
    resolution = (
        ReadingRollup.Resolution.HOUR
        if period_s % 3600 == 0
        else ReadingRollup.Resolution.MINUTE
        if period_s % 60 == 0
        else None
    )
    rows: Any
    if resolution is not None:
        rows = (
            ReadingRollup.objects.filter(
                sensor_id=sensor_id, resolution=resolution, bucket__gte=start, bucket__lt=end
            )
            .annotate(period=PeriodBucket("bucket", period_s))
            .values("period")
            .annotate(n=Sum("count"), total=Sum("total"), low=Min("minimum"), high=Max("maximum"))
            .values_list("period", "n", "total", "low", "high")
            .order_by()
        )
    else:
        rows = (
            Reading.objects.filter(sensor_id=sensor_id, timestamp__gte=start, timestamp__lt=end)
            .annotate(period=PeriodBucket("timestamp", period_s))
            .values("period")
            .annotate(n=Count("value"), total=Sum("value"), low=Min("value"), high=Max("value"))
            .values_list("period", "n", "total", "low", "high")
            .order_by()
        )
    result: dict[int, float] = {}
    for period, count, total, low, high in rows:
        if not count:
            continue
        result[int(period)] = {
            "avg": total / count,
            "min": low,
            "max": high,
            "count": float(count),
        }[aggregation]
    return result


def sensor_latest_reading(*, sensor_id: int, at: datetime) -> tuple[datetime, float] | None:
    """The sensor's newest reading at or before `at` (timestamp, value)."""
    found = (
        Reading.objects.filter(sensor_id=sensor_id, timestamp__lte=at)
        .order_by("-timestamp")
        .values_list("timestamp", "value")
        .first()
    )
    return found if found is None else (found[0], found[1])


# A window longer than this reads its whole minutes from the minute rollups.
_WINDOW_FROM_ROLLUPS_AFTER = timedelta(hours=2)


def sensor_window_value(
    *, sensor_id: int, start: datetime, end: datetime, aggregation: str
) -> float | None:
    """The aggregate of a sensor's readings in (start, end] (a rule's window ending at the
    evaluation time, the reading at that instant included); None for no readings (0 for
    count). Long windows read their whole minutes from the minute rollups and only the two
    partial minutes at their ends from the readings."""
    if aggregation not in SENSOR_AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation}")
    readings = Reading.objects.filter(sensor_id=sensor_id)
    if aggregation == "last":
        found = (
            readings.filter(timestamp__gt=start, timestamp__lte=end)
            .order_by("-timestamp")
            .values_list("value", flat=True)
            .first()
        )
        return found
    parts: list[dict[str, Any]] = []
    if end - start > _WINDOW_FROM_ROLLUPS_AFTER:
        first_whole = _minute(start) + MINUTE  # (start, first_whole) from the readings
        last_whole = _minute(end)  # [last_whole, end] from the readings
        parts.append(
            ReadingRollup.objects.filter(
                sensor_id=sensor_id,
                resolution=ReadingRollup.Resolution.MINUTE,
                bucket__gte=first_whole,
                bucket__lt=last_whole,
            ).aggregate(n=Sum("count"), total=Sum("total"), low=Min("minimum"), high=Max("maximum"))
        )
        edges = [
            readings.filter(timestamp__gt=start, timestamp__lt=first_whole),
            readings.filter(timestamp__gte=last_whole, timestamp__lte=end),
        ]
    else:
        edges = [readings.filter(timestamp__gt=start, timestamp__lte=end)]
    for edge in edges:
        parts.append(
            edge.aggregate(
                n=Count("value"), total=Sum("value"), low=Min("value"), high=Max("value")
            )
        )
    parts = [part for part in parts if part["n"]]
    count = sum(part["n"] for part in parts)
    if aggregation == "count":
        return float(count)
    if not count:
        return None
    if aggregation == "avg":
        return float(sum(part["total"] for part in parts) / count)
    if aggregation == "min":
        return float(min(part["low"] for part in parts))
    return float(max(part["high"] for part in parts))


# --- many sensors at once (scheduled rule evaluation) ----------------------------------------


def sensors_latest_readings(
    *, sensor_ids: Iterable[int], at: datetime, before: bool = False
) -> dict[int, tuple[datetime, float]]:
    """Sensor id -> its newest reading (timestamp, value) at or before `at` (strictly before
    with `before`), for the sensors that have one: `sensor_latest_reading` of many sensors in
    one query (an index probe per sensor)."""
    ids = sorted(set(sensor_ids))
    if not ids:
        return {}
    bound = Q(timestamp__lt=at) if before else Q(timestamp__lte=at)
    newest = Reading.objects.filter(bound, sensor_id=OuterRef("pk")).order_by("-timestamp")
    rows = (
        Sensor.objects.filter(pk__in=ids)
        .annotate(
            newest_at=Subquery(newest.values("timestamp")[:1]),
            newest_value=Subquery(newest.values("value")[:1]),
        )
        .values_list("pk", "newest_at", "newest_value")
        .order_by()
    )
    return {pk: (stamp, value) for pk, stamp, value in rows if stamp is not None}


def sensors_readings_before(*, bounds: Mapping[int, datetime]) -> dict[int, tuple[datetime, float]]:
    """Sensor id -> its newest reading strictly before its own bound (the ingest asks, for
    each sensor, the reading before its first new one), in one query whatever the bounds."""
    groups: dict[datetime, list[int]] = {}
    for pk, bound in bounds.items():
        groups.setdefault(bound, []).append(pk)
    if not groups:
        return {}
    bound_of = Case(
        *[When(pk__in=ids, then=Value(bound)) for bound, ids in groups.items()],
        output_field=models.DateTimeField(),
    )
    newest = Reading.objects.filter(
        sensor_id=OuterRef("pk"), timestamp__lt=OuterRef("bound")
    ).order_by("-timestamp")
    rows = (
        Sensor.objects.filter(pk__in=sorted(bounds))
        .annotate(bound=bound_of)
        .annotate(
            newest_at=Subquery(newest.values("timestamp")[:1]),
            newest_value=Subquery(newest.values("value")[:1]),
        )
        .values_list("pk", "newest_at", "newest_value")
        .order_by()
    )
    return {pk: (stamp, value) for pk, stamp, value in rows if stamp is not None}


def sensors_window_values(
    *, sensor_ids: Iterable[int], start: datetime, end: datetime, aggregation: str
) -> dict[int, float | None]:
    """Sensor id -> `sensor_window_value` of each sensor over the same window (start, end],
    in one query (two more for windows long enough to read the minute rollups)."""
    if aggregation not in SENSOR_AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation}")
    ids = sorted(set(sensor_ids))
    if not ids:
        return {}
    if aggregation == "last":
        found = sensors_latest_readings(sensor_ids=ids, at=end)
        return {pk: (found[pk][1] if pk in found and found[pk][0] > start else None) for pk in ids}
    parts: dict[int, list[dict[str, Any]]] = {}
    if connection.vendor == "postgresql" and end - start <= _WINDOW_FROM_ROLLUPS_AFTER:
        # One plain statement with the ids as an array: the ORM's IN list of 1 000 sensors
        # (an ingest batch's, a scheduler run's) cost more to build and bind than to run.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT sensor_id, count(value), sum(value), min(value), max(value)
                FROM {Reading._meta.db_table}
                WHERE sensor_id = ANY(%s::bigint[]) AND timestamp > %s AND timestamp <= %s
                GROUP BY sensor_id
                """,  # noqa: S608 - the model's table; the values are parameters
                [ids, start, end],
            )
            for pk, count, total, low, high in cursor.fetchall():
                if count:
                    parts[pk] = [{"n": count, "total": total, "low": low, "high": high}]
        return _window_values(ids, parts, aggregation)
    readings = Reading.objects.filter(sensor_id__in=ids)
    totals = dict(n=Count("value"), total=Sum("value"), low=Min("value"), high=Max("value"))
    queries: list[Any] = []
    if end - start > _WINDOW_FROM_ROLLUPS_AFTER:
        first_whole = _minute(start) + MINUTE
        last_whole = _minute(end)
        queries.append(
            ReadingRollup.objects.filter(
                sensor_id__in=ids,
                resolution=ReadingRollup.Resolution.MINUTE,
                bucket__gte=first_whole,
                bucket__lt=last_whole,
            )
            .values("sensor_id")
            .annotate(n=Sum("count"), total=Sum("total"), low=Min("minimum"), high=Max("maximum"))
        )
        edges = [
            readings.filter(timestamp__gt=start, timestamp__lt=first_whole),
            readings.filter(timestamp__gte=last_whole, timestamp__lte=end),
        ]
    else:
        edges = [readings.filter(timestamp__gt=start, timestamp__lte=end)]
    queries.extend(edge.values("sensor_id").annotate(**totals) for edge in edges)
    for query in queries:
        for part in query.order_by():
            if part["n"]:
                parts.setdefault(part["sensor_id"], []).append(part)
    return _window_values(ids, parts, aggregation)


def _window_values(
    ids: list[int], parts: Mapping[int, list[dict[str, Any]]], aggregation: str
) -> dict[int, float | None]:
    """`sensors_window_values` of each sensor from its parts' counts, totals, lows, highs."""
    empty = 0.0 if aggregation == "count" else None
    values: dict[int, float | None] = {}
    for pk in ids:
        mine = parts.get(pk, [])
        count = sum(part["n"] for part in mine)
        if aggregation == "count":
            values[pk] = float(count)
        elif not count:
            values[pk] = empty
        elif aggregation == "avg":
            values[pk] = float(sum(part["total"] for part in mine) / count)
        elif aggregation == "min":
            values[pk] = float(min(part["low"] for part in mine))
        else:
            values[pk] = float(max(part["high"] for part in mine))
    return values
