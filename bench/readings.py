"""Benchmark: readings ingest over HTTP against a raw COPY, and a 30-day chart over 10 M readings.

Issue 14's goals, on PostgreSQL, in one run:

(a) readings per second through `POST /api/v1/readings/` of the real web server (`mlmanager web`:
    gunicorn, its gthread workers), in 10 000-reading JSON requests with a bearer token, spread
    over 20 sensors, at 2 and at 4 concurrent clients (keep-alive connections, bodies encoded
    before the clock starts);
(b) a raw psycopg COPY of as many rows (fresh timestamps, so new rows) into the same partitioned
    readings table: the ceiling no ingest path can pass. Judged: the best HTTP rate ≥ 0.5 × COPY;
(c) a 30-day chart: `--chart-readings` readings (default 10 M) of one sensor over the last 30 days
    are loaded with one generate_series INSERT, its minute and hour rollups with one
    INSERT ... SELECT ... GROUP BY each, then the selectors a chart calls are timed, 50 runs each
    (p50, p95): `sensor_series(resolution="1h")` (judged: p95 ≤ 200 ms), the statistics the
    readings API answers beside it (`sensor_statistics`, from the minute rollups), the raw
    readings as the API gives them (`resolution="raw"`, the latest 1 000), and, for comparison,
    the same hourly chart computed from the raw readings without rollups (fewer runs: slow).

The HTTP rate includes everything a request does: authentication, JSON parsing, validation, the
COPY into a temporary table, the INSERT into the readings table with the rollup upserts, the
sensors' latest values, threshold alerts, the commit. Beside it the same request's service time
in this process (`readings_ingest` alone) is shown, so the HTTP and Django share is visible.

    .venv/bin/python bench/readings.py                 # 500 000 readings per run, 10 M chart
    .venv/bin/python bench/readings.py --quick         # small sizes, seconds (a smoke test)
    make bench-readings

The database: `DATABASE_URL` when set (migrated, used, left in place), else a fresh database
`bench_readings` on postgres@127.0.0.1:5432 that is created, migrated and dropped at the end.
Exit codes: 0 goals met, 1 a goal missed, 2 the benchmark could not run (a request failed,
the server did not start, no PostgreSQL).
Every server it starts is stopped, also on errors. Linux only.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import upload_profile as kit
from upload_profile import BenchError, print_table

REPO = kit.REPO
DEFAULT_DATABASE = "bench_readings"
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432"
GOAL_HTTP_SHARE = 0.5  # HTTP readings/s ≥ this × COPY readings/s
GOAL_CHART_P95_MS = 200.0
READINGS_PER_REQUEST = 10_000
SENSORS = 20
CLIENTS = (2, 4)
CHART_DAYS = 30
RUNS = 50
SLOW_RUNS = 5  # the hourly chart from raw readings: seconds per run at 10 M
REQUEST_TIMEOUT_S = 300.0
DEFAULTS = {  # full run / --quick
    "readings": (500_000, 40_000),
    "chart_readings": (10_000_000, 200_000),
}


# --- Database ------------------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextlib.contextmanager
def database(name: str = DEFAULT_DATABASE) -> Iterator[str]:
    """The URL of the database to use: DATABASE_URL, or a fresh one (`name`) dropped
    afterwards. bench/alerts.py uses it too."""
    import psycopg

    given = os.environ.get("DATABASE_URL", "")
    if given:
        if not given.startswith(("postgres://", "postgresql://")):
            raise BenchError(f"DATABASE_URL is not PostgreSQL: {given.split(':', 1)[0]}")
        yield given
        return
    admin = _with_database(DEFAULT_SERVER, "postgres")
    try:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            connection.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as error:
        raise BenchError(f"cannot create database {name}: {error}") from error
    try:
        yield _with_database(DEFAULT_SERVER, name)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def django_setup(url: str, data_dir: Path) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["MLMANAGER_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from mlmanager.sites.services.maintenance import partitions_ensure

    partitions_ensure()


class Fixture:
    """A team with its owner, a site with its sensors, and a bearer token."""

    def __init__(self, sensors: int) -> None:
        from mlmanager.accounts.caller import Caller
        from mlmanager.accounts.models import Membership, Team, User
        from mlmanager.accounts.services import api_token_create
        from mlmanager.sites.models import Sensor, Site

        suffix = f"{time.time_ns()}"
        self.team = Team.objects.create(name=f"Bench {suffix}")
        user = User.objects.create(email=f"bench-{suffix}@example.com")
        Membership.objects.create(team=self.team, user=user, role=Membership.Role.OWNER)
        user.current_team = self.team
        user.save(update_fields=["current_team"])
        self.caller = Caller.for_session(user)
        self.site = Site.objects.create(team=self.team, name="Bench mill", capacity=100.0)
        self.sensors = [
            Sensor.objects.create(
                team=self.team,
                site=self.site,
                name=f"Sensor {index}",
                device_id=f"bench-{suffix}-{index}",
                sensor_type="temperature",
                unit="°C",
            )
            for index in range(sensors + 1)  # the last one is the chart's
        ]
        self.chart_sensor = self.sensors.pop()
        _token, self.token = api_token_create(caller=self.caller, name="bench", team=self.team)


# --- Readings ------------------------------------------------------------------------------------


class Clock:
    """Hands out disjoint time ranges, so every part of the run writes new rows."""

    def __init__(self, start: datetime) -> None:
        self.next = start

    def take(self, seconds: int) -> datetime:
        taken = self.next
        self.next += timedelta(seconds=seconds + 60)
        return taken


def reading_rows(
    sensor_ids: list[int], start: datetime, count: int, seed: int
) -> Iterator[tuple[int, datetime, float]]:
    """`count` readings round-robin over the sensors, one per sensor per second."""
    generator = random.Random(seed)
    for index in range(count):
        moment = start + timedelta(seconds=index // len(sensor_ids))
        yield sensor_ids[index % len(sensor_ids)], moment, round(20 + generator.gauss(0, 2), 3)


def request_bodies(sensor_ids: list[int], start: datetime, count: int) -> list[bytes]:
    """The JSON bodies of `count` readings, 10 000 a body (one chunk of rows at a time)."""
    rows = reading_rows(sensor_ids, start, count, seed=count)
    bodies = []
    for _offset in range(0, count, READINGS_PER_REQUEST):
        readings = [
            {"sensor": sensor, "timestamp": moment.isoformat(), "value": value}
            for sensor, moment, value in itertools.islice(rows, READINGS_PER_REQUEST)
        ]
        bodies.append(json.dumps({"readings": readings}).encode())
    return bodies


# --- (a) HTTP ------------------------------------------------------------------------------------


def post_all(port: int, token: str, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    """Send the bodies from `clients` threads, each on one keep-alive connection; the seconds
    it took and each request's seconds. Raises on any answer but 201/200 with all accepted."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        try:
            while True:
                with lock:
                    if not queue or failures:
                        return
                    body = queue.pop()
                started = time.perf_counter()
                connection.request("POST", "/api/v1/readings/", body=body, headers=headers)
                response = connection.getresponse()
                raw = response.read()
                took = time.perf_counter() - started
                answer = _json(raw)
                expected = body.count(b'"sensor"')
                if response.status not in (200, 201) or not isinstance(answer, dict):
                    failures.append(f"HTTP {response.status}: {raw[:300]!r}")
                elif answer.get("accepted") != expected:
                    failures.append(f"accepted {answer.get('accepted')} of {expected}: {answer}")
                with lock:
                    latencies.append(took)
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _index in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    if failures:
        raise BenchError(f"POST /api/v1/readings/ failed: {failures[0]}")
    return took, latencies


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def service_seconds(fixture: Fixture, start: datetime) -> float:
    """One 10 000-reading request's `readings_ingest` in this process (no HTTP, no JSON)."""
    from mlmanager.sites.services.readings import readings_ingest

    sensor_ids = [sensor.pk for sensor in fixture.sensors]
    readings = [
        {"sensor": sensor, "timestamp": moment.isoformat(), "value": value}
        for sensor, moment, value in reading_rows(sensor_ids, start, READINGS_PER_REQUEST, 1)
    ]
    started = time.perf_counter()
    answer = readings_ingest(caller=fixture.caller, readings=readings)
    took = time.perf_counter() - started
    if answer["accepted"] != READINGS_PER_REQUEST:
        raise BenchError(f"in-process ingest accepted {answer['accepted']}: {answer}")
    return took


@contextlib.contextmanager
def web_server(url: str, data_dir: Path, port: int, log: Path) -> Iterator[None]:
    env = kit.server_environment(data_dir, port, debug=False)
    env["DATABASE_URL"] = url  # server_environment drops it (the other benchmarks use SQLite)
    if not kit.port_is_free(port):
        raise BenchError(f"port {port} is in use; pass --port")
    process = kit.start_server(kit._mlmanager("web"), env, log)
    try:
        kit.wait_for_web(f"http://127.0.0.1:{port}/api/v1/", process, kit.SERVER_START_TIMEOUT_S)
        yield
    except BenchError as error:
        raise BenchError(f"{error}\n{kit.tail(log)}") from error
    finally:
        kit.stop_server(process)


# --- (b) COPY ------------------------------------------------------------------------------------


def copy_rows(url: str, rows: list[tuple[int, datetime, float]]) -> float:
    """A raw COPY of the rows into the readings table in one transaction; its seconds."""
    import psycopg

    from mlmanager.sites.models import Reading

    table = Reading._meta.db_table
    with psycopg.connect(url) as connection:
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                f"COPY {table} (sensor_id, timestamp, raw_value, value, quality) FROM STDIN"
            ) as copy,
        ):
            for sensor, moment, value in rows:
                copy.write_row((sensor, moment, value, value, "good"))
        connection.commit()
        return time.perf_counter() - started


# --- (c) Chart -----------------------------------------------------------------------------------


def load_chart(url: str, sensor_id: int, count: int, end: datetime) -> float:
    """`count` readings of one sensor evenly over the 30 days before `end`, and their rollups;
    the seconds it took."""
    import psycopg

    from mlmanager.sites.models import Reading, ReadingRollup
    from mlmanager.sites.services.maintenance import partitions_ensure

    readings, rollups = Reading._meta.db_table, ReadingRollup._meta.db_table
    start = end - timedelta(days=CHART_DAYS)
    # 31 days back may be two months back: that month's partition too, as the hourly upkeep
    # would have made it, not the default one.
    partitions_ensure(today=start.date())
    step_us = int(CHART_DAYS * 86_400 * 1_000_000 / count)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            f"INSERT INTO {readings} (sensor_id, timestamp, raw_value, value, quality)"  # noqa: S608
            " SELECT %(sensor)s, %(start)s + i::bigint * %(step)s * interval '1 microsecond',"
            " 20 + 5 * sin(i / 5000.0) + random(), 20 + 5 * sin(i / 5000.0) + random(), 'good'"
            " FROM generate_series(0, %(count)s - 1) AS i",
            {"sensor": sensor_id, "start": start, "step": step_us, "count": count},
        )
        for resolution, unit in (("1m", "minute"), ("1h", "hour")):
            connection.execute(
                f"INSERT INTO {rollups}"  # noqa: S608 - the models' tables, literal units
                " (sensor_id, resolution, bucket, minimum, maximum, total, count)"
                f" SELECT sensor_id, %(resolution)s, date_trunc('{unit}', timestamp),"
                " min(value), max(value), sum(value), count(*)"
                f" FROM {readings} WHERE sensor_id = %(sensor)s GROUP BY 1, 3",
                {"sensor": sensor_id, "resolution": resolution},
            )
        connection.execute(f"ANALYZE {readings}")
        connection.execute(f"ANALYZE {rollups}")
    return time.perf_counter() - started


def timed(call: Callable[[], Any], runs: int) -> dict[str, float]:
    call()  # warm: the plan and the pages in cache
    took = []
    for _index in range(runs):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return {
        "runs": runs,
        "p50_ms": statistics.median(took),
        "p95_ms": took[min(len(took) - 1, round(0.95 * (len(took) - 1)))],
    }


def chart_queries(sensor: Any, end: datetime, runs: int) -> dict[str, dict[str, float]]:
    from django.db import connection

    from mlmanager.sites.models import Reading
    from mlmanager.sites.selectors import sensor_series, sensor_statistics

    start = end - timedelta(days=CHART_DAYS)
    points = sensor_series(sensor=sensor, start=start, end=end, resolution="1h")
    if len(points) != CHART_DAYS * 24:
        raise BenchError(f"the 1h chart has {len(points)} points, not {CHART_DAYS * 24}")

    def hourly_from_raw() -> list[Any]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT date_trunc('hour', timestamp), avg(value), min(value), max(value),"  # noqa: S608
                f" count(*) FROM {Reading._meta.db_table} WHERE sensor_id = %s"
                " AND timestamp >= %s AND timestamp < %s GROUP BY 1 ORDER BY 1",
                [sensor.pk, start, end],
            )
            return cursor.fetchall()

    return {
        "series 1h (rollups)": timed(
            lambda: sensor_series(sensor=sensor, start=start, end=end, resolution="1h"), runs
        ),
        "statistics (1m rollups)": timed(
            lambda: sensor_statistics(sensor=sensor, start=start, end=end), runs
        ),
        "series raw (latest 1 000)": timed(
            lambda: sensor_series(sensor=sensor, start=start, end=end, resolution="raw"), runs
        ),
        "hourly from raw readings": timed(hourly_from_raw, min(runs, SLOW_RUNS)),
    }


# --- Run -----------------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, help="readings per HTTP run and for the COPY")
    parser.add_argument("--chart-readings", type=int, help="readings under the 30-day chart")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--clients", default=",".join(map(str, CLIENTS)))
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs per chart query")
    parser.add_argument("--port", type=int, default=18090)
    arguments = parser.parse_args(argv)
    size = 1 if arguments.quick else 0
    for name, values in DEFAULTS.items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, values[size])
    if arguments.readings < READINGS_PER_REQUEST:
        parser.error(f"--readings: at least {READINGS_PER_REQUEST}")
    arguments.clients = [int(part) for part in arguments.clients.split(",") if part]
    return arguments


def measure(arguments: argparse.Namespace, url: str, data_dir: Path) -> dict[str, Any]:
    django_setup(url, data_dir)
    fixture = Fixture(SENSORS)
    sensor_ids = [sensor.pk for sensor in fixture.sensors]
    count = arguments.readings // READINGS_PER_REQUEST * READINGS_PER_REQUEST
    span = count // SENSORS + 1
    # Recent readings: they land in the monthly partitions, not the default one.
    clock = Clock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=25))
    result: dict[str, Any] = {"readings": count, "sensors": SENSORS, "http": {}}

    service = [service_seconds(fixture, clock.take(READINGS_PER_REQUEST)) for _index in range(3)]
    result["service_s_per_request"] = min(service)

    with web_server(url, data_dir, arguments.port, data_dir / "web.log"):
        # Warm-up: 4 requests from 2 clients, so every worker has imported its views.
        warm = 4 * READINGS_PER_REQUEST
        post_all(
            arguments.port,
            fixture.token,
            request_bodies(sensor_ids, clock.take(warm // SENSORS), warm),
            2,
        )
        for clients in arguments.clients:
            bodies = request_bodies(sensor_ids, clock.take(span), count)
            took, latencies = post_all(arguments.port, fixture.token, bodies, clients)
            result["http"][str(clients)] = {
                "seconds": took,
                "readings_per_s": count / took,
                "request_p50_s": statistics.median(latencies),
            }

    rows = list(reading_rows(sensor_ids, clock.take(span), count, seed=7))
    copy_s = copy_rows(url, rows)
    result["copy"] = {"seconds": copy_s, "readings_per_s": count / copy_s}
    best = max(run["readings_per_s"] for run in result["http"].values())
    result["http_over_copy"] = best / result["copy"]["readings_per_s"]

    end = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    chart_load_s = load_chart(url, fixture.chart_sensor.pk, arguments.chart_readings, end)
    result["chart"] = {
        "readings": arguments.chart_readings,
        "load_s": chart_load_s,
        "queries": chart_queries(fixture.chart_sensor, end, arguments.runs),
    }
    return result


def report(result: dict[str, Any]) -> bool:
    http_ok = result["http_over_copy"] >= GOAL_HTTP_SHARE
    chart_p95 = result["chart"]["queries"]["series 1h (rollups)"]["p95_ms"]
    chart_ok = chart_p95 <= GOAL_CHART_P95_MS
    rows = [("readings per run", f"{result['readings']:,} over {result['sensors']} sensors")]
    rows.append(
        ("service, one request", f"{result['service_s_per_request'] * 1000:.0f} ms in process")
    )
    for clients, run in result["http"].items():
        rows.append(
            (
                f"HTTP, {clients} clients",
                f"{run['readings_per_s']:>10,.0f} readings/s  ({run['seconds']:.1f} s,"
                f" request p50 {run['request_p50_s'] * 1000:.0f} ms)",
            )
        )
    copy = result["copy"]
    rows.append(
        ("raw COPY", f"{copy['readings_per_s']:>10,.0f} readings/s  ({copy['seconds']:.1f} s)")
    )
    rows.append(
        (
            "HTTP / COPY",
            f"{result['http_over_copy']:.2f}  (goal ≥ {GOAL_HTTP_SHARE})"
            f"  {'ok' if http_ok else 'MISSED'}",
        )
    )
    chart = result["chart"]
    rows.append(
        (
            "chart readings",
            f"{chart['readings']:,} of one sensor over {CHART_DAYS} days"
            f" (loaded with rollups in {chart['load_s']:.1f} s)",
        )
    )
    for name, timing in chart["queries"].items():
        rows.append(
            (
                name,
                f"p50 {timing['p50_ms']:8.1f} ms   p95 {timing['p95_ms']:8.1f} ms"
                f"   ({timing['runs']} runs)",
            )
        )
    rows.append(
        (
            "chart p95",
            f"{chart_p95:.1f} ms  (goal ≤ {GOAL_CHART_P95_MS:.0f})"
            f"  {'ok' if chart_ok else 'MISSED'}",
        )
    )
    print("\nbench/readings.py")
    print_table(rows)
    print(json.dumps({"bench": "readings", **result, "goals_met": http_ok and chart_ok}))
    return http_ok and chart_ok


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-readings-"))
    try:
        with database() as url:
            result = measure(arguments, url, data_dir)
        return 0 if report(result) else 1
    except BenchError as error:
        print(f"bench/readings.py: {error}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
