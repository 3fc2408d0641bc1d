"""Benchmark: alert rules keeping up with ingest, and how soon a breaking reading is an alert.

Issue 15's goals, on PostgreSQL, in one run:

(a) 10 000 rules over an hour of 1 000 000 readings on one worker: 1 000 sensors on 10 sites, ten
    rules each — the two built-in band rules of the sensor's thresholds, six rules on the
    sensor's last value (above, below, outside, inside, a rate of change, above for 30 s) and
    two scheduled ones (the minute average above a limit; no data for five minutes). The hour's
    readings (1 000 per sensor, 3.6 s apart, about 0.1 % of them outside the bands) are
    ingested in 100 requests of 10 000 through `readings_ingest`, the service every ingest path
    calls, first with no rule at all and then with the 10 000 rules. Then the scheduler's work
    for the same hour is done: `evaluate_due_rules` every 10 s of the hour (the scheduled rules
    every minute, in the run whose 10 s slot holds the minute; the pending ones when their
    30 s end). Judged: evaluation time (what the rules
    added to the ingest, plus the scheduler's hour) ≤ 0.1 × ingest time (the ingest without
    rules).
(b) From a breaking reading to its alert row: single breaking readings POSTed to the real web
    server (`mlmanager web`), each timed from the request's start until a second connection
    sees the rule's alert row committed (polled every 2 ms). Judged: p99 ≤ 2 s.

    .venv/bin/python bench/alerts.py            # the full run (a few minutes)
    .venv/bin/python bench/alerts.py --quick    # small sizes, seconds (a smoke test)
    .venv/bin/python bench/alerts.py --sensors 1000 --readings-per-sensor 100 --profile /tmp/p
        # a tenth of the readings, cProfile stats of the ingest with rules and of the scheduler
    make bench-alerts

The database: `DATABASE_URL` when set (migrated, used, left in place), else a fresh database
`bench_alerts` on postgres@127.0.0.1:5432, created, migrated and dropped at the end. Exit codes:
0 goals met, 1 a goal missed, 2 the benchmark could not run. Linux only.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from readings import database, django_setup, web_server
from upload_profile import BenchError, print_table

DEFAULT_DATABASE = "bench_alerts"
GOAL_EVALUATION_SHARE = 0.1  # evaluation seconds ≤ this × ingest seconds
GOAL_LATENCY_P99_S = 2.0
READINGS_PER_REQUEST = 10_000
SITES = 10
RULES_PER_SENSOR = 10
SCHEDULER_TICK_S = 10
HOUR_S = 3600
BREAKING_SHARE = 0.001
DEFAULTS = {  # full run / --quick
    "sensors": (1_000, 100),
    "readings_per_sensor": (1_000, 100),
    "latency_samples": (200, 20),
}


# --- The fleet and its rules ---------------------------------------------------------------------


class Fleet:
    """A team, its owner and a bearer token, `sensors` sensors on SITES sites with warning
    (10..30) and critical (0..40) bands, and RULES_PER_SENSOR rules per sensor when asked."""

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
        sites = Site.objects.bulk_create(
            Site(team=self.team, name=f"Mill {index}", capacity=100.0) for index in range(SITES)
        )
        self.sensors = Sensor.objects.bulk_create(
            Sensor(
                team=self.team,
                site=sites[index % SITES],
                name=f"Sensor {index}",
                device_id=f"bench-{suffix}-{index}",
                sensor_type="temperature",
                unit="°C",
                warning_min=10.0,
                warning_max=30.0,
                critical_min=0.0,
                critical_max=40.0,
            )
            for index in range(sensors)
        )
        _token, self.token = api_token_create(caller=self.caller, name="bench", team=self.team)

    def add_rules(self) -> int:
        """The built-in band rules through the sensors' own sync, the eight others in bulk
        (through the model, with what `rule_create` derives: site, sensors, next evaluation)."""
        from django.db import transaction
        from django.utils import timezone

        from mlmanager.monitoring.models import AlertRule
        from mlmanager.monitoring.services.evaluation import next_evaluation
        from mlmanager.monitoring.services.rules import sensor_rules_sync

        now = timezone.now()
        with transaction.atomic():
            for sensor in self.sensors:
                sensor_rules_sync(sensor, caller=self.caller)
            rules = []
            for sensor in self.sensors:
                for name, series, condition, for_s in self._user_rules(sensor.pk):
                    rule = AlertRule(
                        team=self.team,
                        name=f"{sensor.name}: {name}",
                        series=series,
                        condition=condition,
                        severity="warning",
                        for_s=for_s,
                        evaluate_every_s=60,
                        site_id=sensor.site_id,
                    )
                    rule.next_evaluation_at = next_evaluation(rule, now=now, first=True)
                    rules.append((rule, sensor.pk))
            AlertRule.objects.bulk_create([rule for rule, _sensor in rules], batch_size=2000)
            AlertRule.sensors.through.objects.bulk_create(
                [
                    AlertRule.sensors.through(alertrule_id=rule.pk, sensor_id=sensor_id)
                    for rule, sensor_id in rules
                ],
                batch_size=5000,
            )
        return AlertRule.objects.filter(team=self.team).count()

    @staticmethod
    def _user_rules(sensor_id: int) -> list[tuple[str, list[dict], dict, int]]:
        last = [{"kind": "sensor", "sensor": sensor_id, "aggregation": "last", "period_s": 0}]
        average = [{"kind": "sensor", "sensor": sensor_id, "aggregation": "avg", "period_s": 60}]
        return [
            ("above 35", last, {"series": 0, "op": "above", "value": 35.0}, 0),
            ("below 5", last, {"series": 0, "op": "below", "value": 5.0}, 0),
            ("outside 8..32", last, {"series": 0, "op": "outside", "low": 8.0, "high": 32.0}, 0),
            (
                "inside 100..200",
                last,
                {"series": 0, "op": "inside", "low": 100.0, "high": 200.0},
                0,
            ),
            # More than 300 per minute: a step of 18 between readings 3.6 s apart. The noise
            # (σ 2) never makes one; a breaking reading (20 → 45) does.
            ("jumps", last, {"series": 0, "op": "rate_above", "value": 300.0, "per_s": 60}, 0),
            ("above 33 for 30 s", last, {"series": 0, "op": "above", "value": 33.0}, 30),
            ("minute average above 34", average, {"series": 0, "op": "above", "value": 34.0}, 0),
            ("silent 5 min", last, {"series": 0, "op": "no_data", "value": 300}, 0),
        ]


def hour_of_readings(
    sensor_ids: list[int], start: datetime, per_sensor: int, seed: int
) -> list[list[dict[str, Any]]]:
    """Requests of READINGS_PER_REQUEST readings: every sensor once per step (HOUR_S /
    per_sensor seconds apart), values around 20 with BREAKING_SHARE of them at 45 (outside
    every band)."""
    generator = random.Random(seed)
    step = HOUR_S / per_sensor
    readings = []
    for index in range(per_sensor):
        moment = (start + timedelta(seconds=index * step)).isoformat()
        for sensor in sensor_ids:
            value = (
                45.0 if generator.random() < BREAKING_SHARE else round(generator.gauss(20, 2), 3)
            )
            readings.append({"sensor": sensor, "timestamp": moment, "value": value})
    return [
        readings[offset : offset + READINGS_PER_REQUEST]
        for offset in range(0, len(readings), READINGS_PER_REQUEST)
    ]


# --- (a) evaluation against ingest ---------------------------------------------------------------


class Stopwatch:
    """Seconds spent inside the wrapped functions (the ingest's calls into the rules)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, module: Any, name: str) -> Callable[[], None]:
        original = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        setattr(module, name, timed)
        return lambda: setattr(module, name, original)


def ingest_seconds(fleet: Fleet, requests: list[list[dict[str, Any]]]) -> float:
    from mlmanager.sites.services.readings import readings_ingest

    took = 0.0
    for readings in requests:
        started = time.perf_counter()
        answer = readings_ingest(caller=fleet.caller, readings=readings)
        took += time.perf_counter() - started
        if answer["accepted"] != len(readings):
            raise BenchError(f"ingest accepted {answer['accepted']} of {len(readings)}: {answer}")
    return took


def scheduler_hour(start: datetime) -> tuple[float, int]:
    """`evaluate_due_rules` every SCHEDULER_TICK_S of the hour after `start`: its seconds and
    how many rule evaluations it made."""
    from mlmanager.monitoring.services.evaluation import evaluate_due_rules

    took, evaluated = 0.0, 0
    for tick in range(0, HOUR_S, SCHEDULER_TICK_S):
        started = time.perf_counter()
        evaluated += evaluate_due_rules(now=start + timedelta(seconds=tick))
        took += time.perf_counter() - started
    return took, evaluated


@contextlib.contextmanager
def profiled(directory: Path | None, name: str) -> Iterator[None]:
    """cProfile of the block into `directory`/`name`.prof when asked (--profile), else nothing."""
    if directory is None:
        yield
        return
    import cProfile

    directory.mkdir(parents=True, exist_ok=True)
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(directory / f"{name}.prof")


def measure_evaluation(arguments: argparse.Namespace) -> dict[str, Any]:
    from django.utils import timezone

    from mlmanager.monitoring.models import Alert, AlertRule
    from mlmanager.monitoring.services import evaluation

    sensors, per_sensor = arguments.sensors, arguments.readings_per_sensor
    # Two fleets of the same shape: one without rules (the ingest alone), one with them.
    bare, watched = Fleet(sensors), Fleet(sensors)
    rules = watched.add_rules()
    start = timezone.now() - timedelta(hours=2)
    bare_requests = hour_of_readings([s.pk for s in bare.sensors], start, per_sensor, seed=1)
    watched_requests = hour_of_readings([s.pk for s in watched.sensors], start, per_sensor, seed=1)
    # Warm both paths (connections, caches) on a few readings of another hour.
    warm = start - timedelta(hours=1)
    ingest_seconds(bare, hour_of_readings([s.pk for s in bare.sensors], warm, 1, seed=2))
    ingest_seconds(watched, hour_of_readings([s.pk for s in watched.sensors], warm, 1, seed=2))

    bare_s = ingest_seconds(bare, bare_requests)
    stopwatch = Stopwatch()
    restore = stopwatch.wrap(evaluation, "evaluate_sensor_values")
    try:
        with profiled(arguments.profile, "ingest"):
            watched_s = ingest_seconds(watched, watched_requests)
    finally:
        restore()
    with profiled(arguments.profile, "scheduler"):
        scheduler_s, scheduled = scheduler_hour(timezone.now())
    readings = sum(len(request) for request in watched_requests)
    return {
        "rules": rules,
        "readings": readings,
        "requests": len(watched_requests),
        "ingest_bare_s": bare_s,
        "ingest_watched_s": watched_s,
        "at_ingest_s": stopwatch.seconds,
        "scheduler_s": scheduler_s,
        "scheduled_evaluations": scheduled,
        "alerts": Alert.objects.filter(team=watched.team).count(),
        "firing_rules": AlertRule.objects.filter(team=watched.team, state="firing").count(),
    }


# --- (b) latency ---------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure_latency(url: str, data_dir: Path, samples: int) -> list[float]:
    """Each sample: a sensor's reading at 45 (its critical band is 0..40) POSTed alone, timed
    until its built-in critical rule's alert row is visible to another connection; then a
    reading at 20 resolves it for the next sample."""
    import psycopg
    from django.utils import timezone

    from mlmanager.monitoring.models import Alert, AlertRule

    fleet = Fleet(1)
    sensor = fleet.sensors[0]
    from mlmanager.monitoring.services.rules import sensor_rules_sync

    sensor_rules_sync(sensor, caller=fleet.caller)
    rule = AlertRule.objects.get(sensors=sensor, builtin="sensor_critical_band")
    table = Alert._meta.db_table
    port = free_port()
    latencies = []
    headers = {"Authorization": f"Bearer {fleet.token}", "Content-Type": "application/json"}
    with (
        web_server(url, data_dir, port, data_dir / "web.log"),
        psycopg.connect(url, autocommit=True) as watcher,
    ):
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        moment = timezone.now() - timedelta(hours=1)
        for index in range(samples):
            for value in (45.0, 20.0):
                moment += timedelta(seconds=1)
                body = json.dumps(
                    {
                        "readings": [
                            {"sensor": sensor.pk, "timestamp": moment.isoformat(), "value": value}
                        ]
                    }
                ).encode()
                started = time.perf_counter()
                client.request("POST", "/api/v1/readings/", body=body, headers=headers)
                response = client.getresponse()
                raw = response.read()
                if response.status not in (200, 201):
                    raise BenchError(
                        f"POST /api/v1/readings/ answered {response.status}: {raw[:300]!r}"
                    )
                if value < 40:
                    continue  # the resolving reading is not timed
                while True:
                    row = watcher.execute(
                        f"SELECT count(*) FROM {table} WHERE rule_id = %s",  # noqa: S608 - our table
                        [rule.pk],
                    ).fetchone()
                    if row and row[0] > index:
                        break
                    if time.perf_counter() - started > 30:
                        raise BenchError("no alert row 30 s after a breaking reading")
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - started)
        client.close()
    return latencies


# --- Report --------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report_evaluation(evaluation: dict[str, Any]) -> bool:
    """Print (a), as soon as it is measured (a busy machine may still fail (b))."""
    evaluation_s = (
        evaluation["ingest_watched_s"] - evaluation["ingest_bare_s"] + evaluation["scheduler_s"]
    )
    share = evaluation_s / evaluation["ingest_bare_s"]
    print(
        f"\n(a) {evaluation['rules']:,} rules over {evaluation['readings']:,} readings "
        f"({evaluation['requests']} requests of {READINGS_PER_REQUEST:,}), one process\n"
    )
    bare, watched = evaluation["ingest_bare_s"], evaluation["ingest_watched_s"]
    readings = evaluation["readings"]
    print_table(
        [
            ("ingest, no rules", f"{bare:.2f} s ({readings / bare:,.0f} readings/s)"),
            ("ingest with the rules", f"{watched:.2f} s ({readings / watched:,.0f} readings/s)"),
            ("  of which in evaluate_sensor_values", f"{evaluation['at_ingest_s']:.2f} s"),
            (
                f"scheduler's hour ({evaluation['scheduled_evaluations']:,} evaluations)",
                f"{evaluation['scheduler_s']:.2f} s",
            ),
        ]
    )
    print(
        f"\nalerts opened: {evaluation['alerts']:,}; rules firing at the end: "
        f"{evaluation['firing_rules']:,}"
    )
    evaluation_ok = share <= GOAL_EVALUATION_SHARE
    print(
        f"evaluation {evaluation_s:.2f} s = {share:.3f} × ingest "
        f"(goal ≤ {GOAL_EVALUATION_SHARE}): {'met' if evaluation_ok else 'MISSED'}",
        flush=True,
    )
    return evaluation_ok


def report_latency(latencies: list[float]) -> bool:
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    latency_ok = p99 <= GOAL_LATENCY_P99_S
    print(
        f"\n(b) breaking reading → alert row over HTTP, {len(latencies)} samples: "
        f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
        f"(goal ≤ {GOAL_LATENCY_P99_S * 1000:.0f} ms): {'met' if latency_ok else 'MISSED'}"
    )
    return latency_ok


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--sensors", type=int, help="sensors (10 rules each)")
    parser.add_argument("--readings-per-sensor", type=int, help="readings per sensor in the hour")
    parser.add_argument("--latency-samples", type=int, help="breaking readings timed")
    parser.add_argument(
        "--profile",
        type=Path,
        help="write cProfile stats of the ingest with rules and of the scheduler's hour here",
    )
    arguments = parser.parse_args(argv)
    which = 1 if arguments.quick else 0
    for name, values in DEFAULTS.items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, values[which])
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    try:
        with database(DEFAULT_DATABASE) as url:
            django_setup(url, data_dir)
            print(
                f"PostgreSQL; {arguments.sensors:,} sensors × {RULES_PER_SENSOR} rules, "
                f"{arguments.readings_per_sensor:,} readings per sensor in the hour"
            )
            evaluation_ok = report_evaluation(measure_evaluation(arguments))
            latencies = measure_latency(url, data_dir, arguments.latency_samples)
            latency_ok = report_latency(latencies)
            return 0 if evaluation_ok and latency_ok else 1
    except BenchError as error:
        print(f"benchmark could not run: {error}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
