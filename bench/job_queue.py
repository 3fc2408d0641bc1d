"""Benchmark: the job queue — short jobs on each backend, and training on one worker vs two.

    python bench/job_queue.py          # 1 000 short jobs per backend and concurrency, 20 trainings
    python bench/job_queue.py --quick  # 100 short jobs, 4 trainings: a smoke run (a few minutes)

Everything runs against real services on 127.0.0.1: a fresh PostgreSQL database (created,
migrated, dropped at the end), a dedicated Redis database number and RabbitMQ's default vhost
(both checked unused before, purged after). Each case runs in a child process of this script
(`--case`), because a Django process picks its task backend once, at setup; the child sets Django
up with the case's environment, starts `mlmanager worker` (the real command, so Celery cases run
a real Celery worker), waits until the worker has registered and is idle, and enqueues through
the app's own services in its own process, one committed transaction per job.

1. Short jobs (mlmanager.jobs.tests.sample_tasks.sample_job, steps=1) per backend — database
   (django-tasks-db, the worker polling every --interval s when idle), Celery over Redis, Celery
   over RabbitMQ — and per worker concurrency: first --idle-jobs one at a time (each waits for
   the previous to finish: the pick-up latency of an idle worker), then --jobs at once, as fast
   as the loop can commit them. Latency = the Job row's started_at − enqueued_at; throughput =
   jobs / (last finished_at − first enqueued_at). Every job must have succeeded exactly once
   (its log says "did step 0" once).
2. Training: one generated dataset (2 000 rows × 8 columns, a binary target) processed by the
   worker, --training-jobs models, each trained once through `training_start` with the engine's
   own time budget (MLMANAGER_TRAINING_MAX_CANDIDATES unset), on one worker (concurrency 1) and
   then on two (concurrency 2: two worker processes on the database queue, two threads in one
   Celery worker). Wall time = last finished_at − first enqueued_at. Every run must have
   succeeded once and left one version.

Exit code: 0 when every job ran exactly once and succeeded, 1 when one was lost, ran twice or
failed, 2 when a service (PostgreSQL, Redis, RabbitMQ) is unreachable or the benchmark could not
run. Results go to var/bench/queue-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import upload_profile as kit
from machine import cpu_model, total_memory_gb

from mlmanager.accounts.caller import Caller

BACKENDS = ("database", "celery-redis", "celery-rabbitmq")
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432"
DATABASE_NAME = "mlmanager_bench_queue"
# A Redis database number of its own, so that purging it touches nothing else.
REDIS_URL = "redis://127.0.0.1:6379/13"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
# The queues the cases use: short jobs go to "default", trainings to "training".
USED_QUEUES = ("default", "training")

POLL_INTERVAL_S = 0.05  # the database worker's idle poll (its default is 0.5 s)
SERVICE_TIMEOUT_S = 5.0
WORKER_READY_TIMEOUT_S = 90.0
IDLE_BEFORE_ENQUEUE_S = 1.0
FINISH_POLL_S = 0.2
STALL_TIMEOUT_S = 90.0  # no job finished for this long: the rest count as lost
CHILD_STOP_GRACE_S = 45.0
TRAINING_ROWS = 2_000
# The engine's minimum is 10 s, but at 10 or 15 s on 2 busy cores the search's first chunk
# sometimes ends after its deadline and the run fails with "no model within the time budget".
TRAINING_BUDGET_S = 20
SHORT_JOB_LINE = "did step 0"
TRAINING_START_LINE = " rows, budget "  # in the one log line the training work writes first
MAX_FAILURES_SHOWN = 20


class BenchError(RuntimeError):
    """The benchmark could not run (exit code 2)."""


class ServiceUnavailable(BenchError):
    pass


def _stop_on_sigterm(signum: int, _frame: Any) -> None:
    # SIGTERM's default ends Python without `finally`: workers and the database would stay.
    raise SystemExit(128 + signum)


# --- Services -----------------------------------------------------------------------------------


def postgres_version() -> str:
    import psycopg

    try:
        with psycopg.connect(
            f"{POSTGRES_URL}/postgres", autocommit=True, connect_timeout=SERVICE_TIMEOUT_S
        ) as connection:
            return str(connection.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    except psycopg.Error as error:
        raise ServiceUnavailable(f"PostgreSQL at {POSTGRES_URL}: {error}") from None


def redis_check(url: str) -> str:
    """Redis's version; refuses a database number that already holds keys (someone's)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=SERVICE_TIMEOUT_S)
    try:
        version = str(client.info("server")["redis_version"])
        keys = int(client.dbsize())
    except redis.RedisError as error:
        raise ServiceUnavailable(f"Redis at {url}: {error}") from None
    finally:
        client.close()
    if keys:
        raise BenchError(
            f"Redis database {url} holds {keys} keys: it is not free for the benchmark "
            "(it is flushed at the end); pass --redis-url with another database number"
        )
    return version


def redis_flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=SERVICE_TIMEOUT_S)
    try:
        client.flushdb()
    finally:
        client.close()


def amqp_check(url: str) -> tuple[str, list[str]]:
    """RabbitMQ's version and which of the used queues do not exist yet (removed at the end);
    refuses queues that someone else is using (messages or consumers)."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=SERVICE_TIMEOUT_S) as connection:
            connection.ensure_connection(max_retries=1)
            properties = connection.connection.server_properties
            version = properties.get("version", "?")
            version = version.decode() if isinstance(version, bytes) else str(version)
            missing = []
            for name in USED_QUEUES:
                state = _amqp_queue_state(connection, name)
                if state is None:
                    missing.append(name)
                elif state != (0, 0):
                    raise BenchError(
                        f"RabbitMQ queue {name!r} at {url} is in use ({state[0]} messages, "
                        f"{state[1]} consumers); pass --amqp-url with a vhost of your own"
                    )
    except (OSError, ConnectionError) as error:
        raise ServiceUnavailable(f"RabbitMQ at {url}: {error}") from None
    return version, missing


def _amqp_queue_state(connection: Any, name: str) -> tuple[int, int] | None:
    from amqp.exceptions import NotFound

    channel = connection.channel()
    try:
        _name, messages, consumers = channel.queue_declare(queue=name, passive=True)
        return int(messages), int(consumers)
    except NotFound:
        return None
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def amqp_clean(url: str, *, delete: list[str]) -> None:
    """Purge the used queues; delete those (and their exchanges) that did not exist before."""
    from kombu import Connection

    with Connection(url, connect_timeout=SERVICE_TIMEOUT_S) as connection:
        for name in USED_QUEUES:
            if _amqp_queue_state(connection, name) is None:
                continue
            channel = connection.channel()
            try:
                if name in delete:
                    channel.queue_delete(queue=name)
                    channel.exchange_delete(exchange=name)
                else:
                    channel.queue_purge(queue=name)
            finally:
                with contextlib.suppress(Exception):
                    channel.close()


def database_create(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
        # A database of this name is this benchmark's own, left by a run that was killed.
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_drop(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# --- Environment ---------------------------------------------------------------------------------


def case_environment(arguments: argparse.Namespace, work: Path, backend: str) -> dict[str, str]:
    env = dict(os.environ)
    # The engine's time budget alone ends each search, as in production.
    env.pop("MLMANAGER_TRAINING_MAX_CANDIDATES", None)
    env.update(
        DATABASE_URL=f"{POSTGRES_URL}/{arguments.database_name}",
        MLMANAGER_DATA_DIR=str(work / "data"),
        MLMANAGER_DEBUG="false",  # Django would record every query
        MLMANAGER_SIGNUP_OPEN="true",
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    if backend == "database":
        env["MLMANAGER_TASKS"] = "database"
        env.pop("CELERY_BROKER_URL", None)
    else:
        env["MLMANAGER_TASKS"] = "celery"
        env["CELERY_BROKER_URL"] = (
            arguments.redis_url if backend == "celery-redis" else arguments.amqp_url
        )
    return env


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=kit.REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"migrate failed:\n{done.stdout}\n{done.stderr}")


# --- Worker processes (inside a case) ------------------------------------------------------------


def _looks_like_ours(pid: int) -> bool:
    """A recorded worker pid still ours (not reused by an unrelated process)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"mlmanager" in command or b"celery" in command


def stop_recorded_workers(pid_file: Path) -> None:
    """Stop worker process groups a case started, should the case itself have been killed."""
    if not pid_file.exists():
        return
    for line in pid_file.read_text().split():
        pid = int(line)
        if not _looks_like_ours(pid):
            continue
        for signum in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signum)
            deadline = time.monotonic() + kit.STOP_GRACE_S
            while _looks_like_ours(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not _looks_like_ours(pid):
                break


@contextlib.contextmanager
def running_worker(
    arguments: argparse.Namespace, *, queues: str, concurrency: int, log: Path
) -> Any:
    command = [
        sys.executable,
        "-m",
        "mlmanager.cli",
        "worker",
        "--queues",
        queues,
        "--concurrency",
        str(concurrency),
        "--interval",
        str(arguments.interval),
    ]
    worker = kit.start_server(command, dict(os.environ), log)
    with (arguments.work / "workers.pids").open("a") as pids:
        pids.write(f"{worker.pid}\n")
    try:
        yield worker
    finally:
        kit.stop_server(worker)


def wait_until_registered(worker: subprocess.Popen[bytes], expected: int, log: Path) -> float:
    """Until the worker (or its `expected` child processes) registered in the Worker table,
    which each does once it takes jobs; returns the seconds it took."""
    from mlmanager.jobs.models import Worker

    started = time.monotonic()
    while time.monotonic() - started < WORKER_READY_TIMEOUT_S:
        if worker.poll() is not None:
            raise BenchError(f"the worker exited with code {worker.returncode}:\n{kit.tail(log)}")
        pids = kit.process_tree(worker.pid)
        registered = Worker.objects.filter(pid__in=pids, stopped_at__isnull=True).count()
        if registered >= expected:
            return time.monotonic() - started
        time.sleep(0.1)
    raise BenchError(f"the worker did not register within {WORKER_READY_TIMEOUT_S:.0f} s")


def bench_user(label: str) -> Any:
    """An active user with a team of their own (as an activated sign-up has)."""
    from mlmanager.accounts.models import User
    from mlmanager.accounts.services import team_create

    user = User.objects.create_user(
        email=f"bench-{label}-{os.urandom(3).hex()}@example.com",
        password="bench-" + os.urandom(12).hex(),
        first_name="Bench",
    )
    team_create(caller=Caller.for_session(user), name="Bench Queue's team")
    return user


def wait_until_finished(job_ids: list[int], *, timeout_s: float) -> None:
    """Until every job ended, the timeout passed, or none ended for STALL_TIMEOUT_S (the rest
    are reported lost by the caller)."""
    from mlmanager.jobs.models import Job

    started = last_change = time.monotonic()
    last_done = -1
    while True:
        done = Job.objects.filter(pk__in=job_ids, status__in=Job.FINISHED_STATUSES).count()
        now = time.monotonic()
        if done == len(job_ids):
            return
        if done != last_done:
            last_done, last_change = done, now
        if now - started > timeout_s or now - last_change > STALL_TIMEOUT_S:
            print(f"    gave up waiting: {done}/{len(job_ids)} jobs ended", flush=True)
            return
        time.sleep(FINISH_POLL_S)


def refused_deliveries(log: Path) -> int:
    """Messages for a job that was no longer queued, which the runner's claim refused: a
    delivery the broker repeated (or the reaper re-sent), run once all the same."""
    return kit.tail(log, 10**9).count("was not queued (claimed elsewhere or ended)")


def _ms(values: list[float], share: float) -> float | None:
    return float(np.percentile(values, share)) * 1000 if values else None


def _job_problems(rows: list[dict[str, Any]], line: str) -> dict[str, list[dict[str, Any]]]:
    """Jobs that never ended (lost), ran their work more than once, or did not succeed."""
    problems: dict[str, list[dict[str, Any]]] = {"lost": [], "twice": [], "failed": []}
    for row in rows:
        runs = row["log"].count(line)
        brief = {
            "job": row["id"],
            "status": row["status"],
            "runs": runs,
            "error": row["error"][:200],
            "worker": row["worker"],
        }
        if row["status"] in ("queued", "running"):
            problems["lost"].append(brief)
        elif runs > 1:
            problems["twice"].append(brief)
        elif row["status"] != "succeeded" or runs != 1:
            problems["failed"].append(brief)
    return problems


# --- Case: short jobs ----------------------------------------------------------------------------


def enqueue_short_job(user: Any) -> tuple[int, Any]:
    """One job, enqueued as the app does: created and handed to job_enqueue in one transaction,
    sent on commit. Returns its id and when the commit happened (a callback registered before
    job_enqueue's runs first, right after the commit)."""
    from django.db import transaction
    from django.utils import timezone

    from mlmanager.jobs.services import job_create, job_enqueue
    from mlmanager.jobs.tests.sample_tasks import sample_job

    committed: list[Any] = []
    with transaction.atomic():
        job = job_create(
            team=user.current_team,
            created_by=user,
            kind="dataset.process",
            description="bench: short job",
        )
        transaction.on_commit(lambda: committed.append(timezone.now()))
        job_enqueue(job=job, task=sample_job, steps=1)
    return job.pk, committed[0]


def short_case(arguments: argparse.Namespace) -> dict[str, Any]:
    from mlmanager.jobs.models import Job

    user = bench_user(f"{arguments.backend}-{arguments.concurrency}")
    log = arguments.work / f"worker-short-{arguments.backend}-{arguments.concurrency}.log"
    expected = arguments.concurrency if arguments.backend == "database" else 1
    committed_at: dict[int, Any] = {}
    with running_worker(
        arguments, queues="default", concurrency=arguments.concurrency, log=log
    ) as worker:
        ready_s = wait_until_registered(worker, expected, log)
        time.sleep(IDLE_BEFORE_ENQUEUE_S)
        idle_ids = []
        for _ in range(arguments.idle_jobs):
            # A random pause, so that the enqueue does not fall at the same point of the
            # database worker's poll cycle every time.
            time.sleep(random.uniform(0, 2 * arguments.interval))
            job_id, committed = enqueue_short_job(user)
            idle_ids.append(job_id)
            committed_at[job_id] = committed
            wait_until_finished([job_id], timeout_s=30.0)
        time.sleep(IDLE_BEFORE_ENQUEUE_S)
        burst_ids = []
        began = time.perf_counter()
        for _ in range(arguments.jobs):
            job_id, committed = enqueue_short_job(user)
            burst_ids.append(job_id)
            committed_at[job_id] = committed
        enqueue_s = time.perf_counter() - began
        wait_until_finished(burst_ids, timeout_s=120.0 + 0.5 * arguments.jobs)
    fields = ("id", "status", "error", "log", "worker", "enqueued_at", "started_at", "finished_at")
    rows = {row["id"]: row for row in Job.objects.filter(pk__in=committed_at).values(*fields)}

    def latencies(ids: list[int], since: str) -> list[float]:
        values = []
        for job_id in ids:
            row = rows[job_id]
            start = row["enqueued_at"] if since == "enqueued" else committed_at[job_id]
            if start is not None and row["started_at"] is not None:
                values.append((row["started_at"] - start).total_seconds())
        return values

    burst = [rows[job_id] for job_id in burst_ids]
    first_enqueued = min((r["enqueued_at"] for r in burst if r["enqueued_at"]), default=None)
    last_finished = max((r["finished_at"] for r in burst if r["finished_at"]), default=None)
    span_s = (
        (last_finished - first_enqueued).total_seconds()
        if first_enqueued and last_finished
        else None
    )
    succeeded = sum(1 for r in burst if r["status"] == "succeeded")
    burst_latency = latencies(burst_ids, "enqueued")
    idle_latency = latencies(idle_ids, "enqueued")
    problems = _job_problems(list(rows.values()), SHORT_JOB_LINE)
    return {
        "case": "short",
        "backend": arguments.backend,
        "concurrency": arguments.concurrency,
        "jobs": arguments.jobs,
        "idle_jobs": arguments.idle_jobs,
        "worker_ready_s": ready_s,
        "enqueue_s": enqueue_s,
        "enqueue_per_s": arguments.jobs / enqueue_s if enqueue_s else None,
        "idle_p50_ms": _ms(idle_latency, 50),
        "idle_p99_ms": _ms(idle_latency, 99),
        "p50_ms": _ms(burst_latency, 50),
        "p99_ms": _ms(burst_latency, 99),
        "max_ms": _ms(burst_latency, 100),
        "negative_latencies": sum(1 for value in burst_latency + idle_latency if value < 0),
        "commit_p50_ms": _ms(latencies(burst_ids, "committed"), 50),
        "commit_p99_ms": _ms(latencies(burst_ids, "committed"), 99),
        "idle_commit_p50_ms": _ms(latencies(idle_ids, "committed"), 50),
        "span_s": span_s,
        "jobs_per_s": succeeded / span_s if span_s else None,
        "succeeded": succeeded,
        "workers_seen": sorted({r["worker"] for r in rows.values() if r["worker"]}),
        "refused_deliveries": refused_deliveries(log),
        "problems": problems,
    }


# --- Case: training ------------------------------------------------------------------------------


def training_frame(rows: int = TRAINING_ROWS, seed: int = 7) -> pd.DataFrame:
    """8 inputs (5 decimal numbers, 2 integers, 1 category) and a learnable yes/no target."""
    generator = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{index}": generator.normal(0, 1, rows) for index in range(5)})
    frame["count_a"] = generator.integers(0, 50, rows)
    frame["count_b"] = generator.integers(0, 8, rows)
    frame["group"] = generator.choice(["north", "south", "east", "west"], rows)
    signal_ = (
        frame["x0"]
        - 0.8 * frame["x1"]
        + 0.5 * frame["x2"] * frame["x3"]
        + (frame["count_a"] - 25) / 20
        + frame["group"].map({"north": 0.6, "south": -0.6, "east": 0.2, "west": -0.2})
        + generator.normal(0, 0.7, rows)
    )
    frame["target"] = np.where(signal_ > 0, "yes", "no")
    return frame


def ready_dataset(user: Any) -> Any:
    """The training data, created and processed as an upload is (a job on the default queue)."""
    from mlmanager.datasets.models import Dataset
    from mlmanager.datasets.services import dataset_create_from_parquet

    frame = training_frame()
    dataset = dataset_create_from_parquet(
        team=user.current_team,
        caller=Caller.for_session(user),
        name="bench queue",
        write_parquet=lambda path: frame.to_parquet(path, index=False),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dataset.refresh_from_db()
        if dataset.status != Dataset.Status.PROCESSING:
            break
        time.sleep(FINISH_POLL_S)
    if dataset.status != Dataset.Status.READY:
        raise BenchError(f"the training dataset is {dataset.status}: {dataset.error}")
    return dataset


def training_case(arguments: argparse.Namespace) -> dict[str, Any]:
    from mlmanager.jobs.models import Job
    from mlmanager.machines.models import ModelVersion, TrainingRun
    from mlmanager.machines.services import machine_create, training_start

    user = bench_user(f"training-{arguments.backend}-{arguments.concurrency}")
    log = arguments.work / f"worker-training-{arguments.backend}-{arguments.concurrency}.log"
    expected = arguments.concurrency if arguments.backend == "database" else 1
    with running_worker(
        arguments, queues="default,training", concurrency=arguments.concurrency, log=log
    ) as worker:
        ready_s = wait_until_registered(worker, expected, log)
        dataset = ready_dataset(user)
        machines = [
            machine_create(
                caller=Caller.for_session(user),
                dataset=dataset,
                outputs=["target"],
                name=f"bench queue {index + 1}",
                time_budget_s=arguments.budget,
            )
            for index in range(arguments.jobs)
        ]
        time.sleep(IDLE_BEFORE_ENQUEUE_S)
        caller = Caller.for_session(user)
        runs = [training_start(caller=caller, machine=machine) for machine in machines]
        job_ids = [run.job_id for run in runs]
        # Each worker runs its jobs one after the other, each about the budget long.
        per_worker = -(-arguments.jobs // arguments.concurrency)
        wait_until_finished(job_ids, timeout_s=per_worker * (arguments.budget + 60) + 60)
    fields = ("id", "status", "error", "log", "worker", "enqueued_at", "started_at", "finished_at")
    rows = list(Job.objects.filter(pk__in=job_ids).values(*fields))
    problems = _job_problems(rows, TRAINING_START_LINE)
    succeeded = {row["id"] for row in rows if row["status"] == "succeeded"}
    for run in TrainingRun.objects.filter(pk__in=[run.pk for run in runs]):
        versions = ModelVersion.objects.filter(machine_id=run.machine_id).count()
        has_own = ModelVersion.objects.filter(run=run).exists()
        # A failed run leaves no version; a succeeded one exactly one, its own.
        if (versions, has_own) != ((1, True) if run.job_id in succeeded else (0, False)):
            problems["twice" if versions > 1 else "failed"].append(
                {
                    "job": run.job_id,
                    "status": "versions",
                    "runs": versions,
                    "error": f"model {run.machine_id} has {versions} versions (own: {has_own})",
                    "worker": "",
                }
            )
    first = min((row["enqueued_at"] for row in rows if row["enqueued_at"]), default=None)
    last = max((row["finished_at"] for row in rows if row["finished_at"]), default=None)
    durations = [
        (row["finished_at"] - row["started_at"]).total_seconds()
        for row in rows
        if row["started_at"] and row["finished_at"]
    ]
    candidates = list(
        TrainingRun.objects.filter(pk__in=[run.pk for run in runs]).values_list(
            "candidates", flat=True
        )
    )
    return {
        "case": "training",
        "backend": arguments.backend,
        "concurrency": arguments.concurrency,
        "jobs": arguments.jobs,
        "budget_s": arguments.budget,
        "worker_ready_s": ready_s,
        "wall_s": (last - first).total_seconds() if first and last else None,
        "job_mean_s": float(np.mean(durations)) if durations else None,
        "candidates_mean": float(np.mean(candidates)) if candidates else None,
        "succeeded": len(succeeded),
        "workers_seen": sorted({row["worker"] for row in rows if row["worker"]}),
        "refused_deliveries": refused_deliveries(log),
        "problems": problems,
    }


def run_case(arguments: argparse.Namespace) -> int:
    """The child process: Django set up with the case's environment (from the parent)."""
    import django

    django.setup()
    from django.db import connections

    # The app's own INFO lines (a user signed up…) would interleave with the progress lines.
    logging.getLogger("mlmanager").setLevel(logging.WARNING)

    try:
        result = short_case(arguments) if arguments.case == "short" else training_case(arguments)
    except BenchError as error:
        print(
            f"\nBenchmark error in case {arguments.case}/{arguments.backend}: {error}",
            file=sys.stderr,
        )
        return 2
    finally:
        connections.close_all()
    arguments.result.write_text(json.dumps(result, indent=2, default=str))
    return 0


# --- The parent: cases, report -------------------------------------------------------------------


def run_child(
    arguments: argparse.Namespace,
    work: Path,
    *,
    case: str,
    backend: str,
    concurrency: int,
    jobs: int,
) -> dict[str, Any]:
    result = work / f"{case}-{backend}-{concurrency}.json"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--case",
        case,
        "--backend",
        backend,
        "--concurrency",
        str(concurrency),
        "--jobs",
        str(jobs),
        "--idle-jobs",
        str(arguments.idle_jobs),
        "--budget",
        str(arguments.budget),
        "--interval",
        str(arguments.interval),
        "--work",
        str(work),
        "--result",
        str(result),
    ]
    label = f"{case} jobs, {backend}, concurrency {concurrency}"
    print(f"{label}: {jobs} jobs…", flush=True)
    child = subprocess.Popen(
        command,
        cwd=kit.REPO,
        env=case_environment(arguments, work, backend),
        start_new_session=True,  # Ctrl-C reaches this process only, which stops the child
    )
    try:
        code = child.wait()
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=CHILD_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        stop_recorded_workers(work / "workers.pids")
    if code != 0 or not result.exists():
        for log in sorted(work.glob("worker-*.log")):
            print(f"\n{log.name} (tail):\n{kit.tail(log, 15)}", file=sys.stderr)
        raise BenchError(f"{label}: the case ended with code {code}")
    return dict(json.loads(result.read_text()))


def _versions() -> str:
    names = ("django-tasks-db", "celery", "kombu", "redis", "psycopg")
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return ", ".join(found)


def machine_info(services: dict[str, str]) -> list[tuple[str, str]]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        ("cores", f"{usable} (os.cpu_count {os.cpu_count()})"),
        ("cpu", cpu_model()),
        ("memory", total_memory_gb()),
        ("load average", " ".join(f"{value:.2f}" for value in os.getloadavg())),
        ("kernel", platform.release()),
        ("python", platform.python_version()),
        ("libraries", _versions()),
        *services.items(),
    ]


def _cell(value: float | None, form: str) -> str:
    return "n/a" if value is None else format(value, form)


def _verdict(result: dict[str, Any]) -> str:
    problems = result["problems"]
    counts = {name: len(items) for name, items in problems.items() if items}
    if not counts:
        verdict = f"{result['succeeded']}/{result['jobs']} once"
    else:
        verdict = ", ".join(f"{count} {name}" for name, count in counts.items())
    if result["refused_deliveries"]:
        verdict += f" ({result['refused_deliveries']} repeated deliveries refused)"
    return verdict


# (header, width, key, format); the last column is left-aligned and unpadded.
SHORT_COLUMNS = (
    ("backend", 16, "backend", "s"),
    ("conc", 4, "concurrency", "d"),
    ("jobs", 5, "jobs", "d"),
    ("enqueue/s", 9, "enqueue_per_s", ".0f"),
    ("idle p50", 8, "idle_p50_ms", ".1f"),
    ("idle commit", 11, "idle_commit_p50_ms", ".1f"),
    ("p50 ms", 8, "p50_ms", ".1f"),
    ("p99 ms", 8, "p99_ms", ".1f"),
    ("commit p50", 10, "commit_p50_ms", ".1f"),
    ("commit p99", 10, "commit_p99_ms", ".1f"),
    ("jobs/s", 7, "jobs_per_s", ".1f"),
)
TRAINING_COLUMNS = (
    ("backend", 16, "backend", "s"),
    ("workers", 7, "concurrency", "d"),
    ("jobs", 5, "jobs", "d"),
    ("wall s", 8, "wall_s", ".1f"),
    ("speed-up", 8, "speed_up", ".2f"),
    ("job s", 7, "job_mean_s", ".1f"),
    ("candidates", 10, "candidates_mean", ".1f"),
)


def print_rows(
    columns: tuple[tuple[str, int, str, str], ...], results: list[dict[str, Any]]
) -> None:
    print(" ".join(f"{header:>{width}}" for header, width, _key, _form in columns), "checked")
    for item in results:
        cells = (_cell(item[key], form) for _header, _width, key, form in columns)
        widths = (width for _header, width, _key, _form in columns)
        print(
            " ".join(f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True)),
            _verdict(item),
        )


def print_short(results: list[dict[str, Any]], interval: float) -> None:
    print_rows(SHORT_COLUMNS, results)
    print(
        "  p50/p99: started_at − enqueued_at of the burst (all jobs enqueued at once, so later\n"
        "  ones wait behind earlier ones); commit p50/p99: started_at − the commit of the job's\n"
        "  transaction; idle p50 and idle commit: the same for jobs sent one at a time to an idle\n"
        "  worker; jobs/s: jobs / (last finished_at − first enqueued_at); enqueue/s: the burst's\n"
        "  enqueue loop alone. conc: worker processes on the database queue (each polling every\n"
        f"  {interval} s when idle), threads of one Celery worker. Times in ms."
    )
    negative = sum(item["negative_latencies"] for item in results)
    if negative:
        print(
            f"  {negative} jobs were started before their enqueued_at was written (negative\n"
            "  latency): job_enqueue records enqueued_at only after the send returns."
        )


def print_training(results: list[dict[str, Any]]) -> None:
    base: dict[str, float] = {}
    for item in results:
        wall = item["wall_s"]
        if item["concurrency"] == 1 and wall:
            base[item["backend"]] = wall
        one = base.get(item["backend"])
        item["speed_up"] = one / wall if one and wall else None
    print_rows(TRAINING_COLUMNS, results)
    print(
        "  wall s: last finished_at − first enqueued_at; job s: mean started_at → finished_at;\n"
        "  candidates: mean models tried per run. Each search is ended by its time budget and\n"
        "  uses every core, so two at once on the same cores each get about half the CPU:\n"
        "  the wall time falls, but each run tries fewer candidates."
    )


def print_problems(results: list[dict[str, Any]]) -> None:
    for item in results:
        for name, problems in item["problems"].items():
            for problem in problems[:MAX_FAILURES_SHOWN]:
                detail = (
                    ""
                    if problem["status"] == "versions"
                    else f" ({problem['status']}, its work started {problem['runs']} times, "
                    f"worker {problem['worker'] or '?'})"
                )
                print(
                    f"  {item['case']}, {item['backend']}, concurrency {item['concurrency']}: "
                    f"job {problem['job']} {name}{detail}: {problem['error'] or '-'}"
                )
            if len(problems) > MAX_FAILURES_SHOWN:
                print(f"  … and {len(problems) - MAX_FAILURES_SHOWN} more {name}")


def _summary(result: dict[str, Any]) -> str:
    if result["case"] == "short":
        figures = (
            f"p50 {_cell(result['p50_ms'], '.1f')} ms, p99 {_cell(result['p99_ms'], '.1f')} ms, "
            f"{_cell(result['jobs_per_s'], '.1f')} jobs/s"
        )
    else:
        figures = f"wall {_cell(result['wall_s'], '.1f')} s"
    return f"{figures}; {_verdict(result)}"


def _backends(value: str) -> list[str]:
    chosen = [item.strip() for item in value.split(",") if item.strip()]
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown backend(s) {unknown}; choose from {BACKENDS}")
    return chosen


def _numbers(value: str) -> list[int]:
    try:
        numbers = [int(item) for item in value.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {value!r}") from None
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError("give numbers of 1 or more")
    return numbers


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="100 short jobs, concurrency 1, 4 trainings: a smoke run",
    )
    parser.add_argument("--backends", type=_backends, default=list(BACKENDS))
    parser.add_argument("--jobs", type=int, help="short jobs per case (1000; quick 100)")
    parser.add_argument("--idle-jobs", type=int, help="jobs sent one at a time (20; quick 10)")
    parser.add_argument(
        "--concurrency", type=_numbers, help="worker concurrencies for short jobs (1,2; quick 1)"
    )
    parser.add_argument("--training-jobs", type=int, help="trainings per case (20; quick 4)")
    parser.add_argument(
        "--training-backends",
        type=_backends,
        default=["database"],
        help="backends for the training cases (database)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=TRAINING_BUDGET_S,
        help="seconds per training (20; the engine's minimum is 10)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=POLL_INTERVAL_S,
        help="database worker's idle poll interval (0.05 s)",
    )
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--amqp-url", default=AMQP_URL)
    parser.add_argument("--database-name", default=DATABASE_NAME)
    parser.add_argument("--output", type=Path, help="results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the worker logs")
    # The child process of one case (internal).
    parser.add_argument("--case", choices=["short", "training"], help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    quick = arguments.quick
    if arguments.case:
        arguments.concurrency = arguments.concurrency[0]
        return arguments
    arguments.jobs = arguments.jobs or (100 if quick else 1000)
    arguments.idle_jobs = (
        arguments.idle_jobs if arguments.idle_jobs is not None else (10 if quick else 20)
    )
    arguments.concurrency = arguments.concurrency or ([1] if quick else [1, 2])
    arguments.training_jobs = (
        arguments.training_jobs if arguments.training_jobs is not None else (4 if quick else 20)
    )
    if arguments.jobs < 1 or arguments.idle_jobs < 0 or arguments.training_jobs < 0:
        parser.error("--jobs must be 1 or more, --idle-jobs and --training-jobs 0 or more")
    return arguments


def check_services(arguments: argparse.Namespace) -> tuple[dict[str, str], list[str]]:
    used = set(arguments.backends) | (
        set(arguments.training_backends) if arguments.training_jobs else set()
    )
    services = {"postgresql": postgres_version()}
    missing: list[str] = []
    if "celery-redis" in used:
        services["redis"] = f"{redis_check(arguments.redis_url)} ({arguments.redis_url})"
    if "celery-rabbitmq" in used:
        version, missing = amqp_check(arguments.amqp_url)
        services["rabbitmq"] = f"{version} ({arguments.amqp_url})"
    return services, missing


def clean_broker(arguments: argparse.Namespace, backend: str, created: list[str]) -> None:
    try:
        if backend == "celery-redis":
            redis_flush(arguments.redis_url)  # our own database number, empty before the run
        elif backend == "celery-rabbitmq":
            amqp_clean(arguments.amqp_url, delete=created)
    except Exception as error:  # cleaning must not hide the results or the first error
        print(f"Could not clean the {backend} broker: {error!r}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if arguments.case:
        return run_case(arguments)
    try:
        services, created_queues = check_services(arguments)
    except BenchError as error:
        print(f"Benchmark error: {error}", file=sys.stderr)
        return 2
    print("Machine")
    kit.print_table(machine_info(services))
    work = Path(tempfile.mkdtemp(prefix="mlmanager-bench-queue-"))
    short: list[dict[str, Any]] = []
    training: list[dict[str, Any]] = []
    used_backends = set(arguments.backends) | set(arguments.training_backends)
    began = time.perf_counter()
    try:
        database_create(arguments.database_name)
        print(f"\nDatabase {arguments.database_name} created; migrating…", flush=True)
        migrate(case_environment(arguments, work, "database"))
        cases = [
            ("short", backend, concurrency, arguments.jobs)
            for backend in arguments.backends
            for concurrency in arguments.concurrency
        ]
        if arguments.training_jobs:
            cases += [
                ("training", backend, concurrency, arguments.training_jobs)
                for backend in arguments.training_backends
                for concurrency in (1, 2)
            ]
        for case, backend, concurrency, jobs in cases:
            result = run_child(
                arguments, work, case=case, backend=backend, concurrency=concurrency, jobs=jobs
            )
            (short if case == "short" else training).append(result)
            print(f"  {_summary(result)}", flush=True)
            clean_broker(arguments, backend, [])
    except BenchError as error:
        print(f"\nBenchmark error: {error}", file=sys.stderr)
        return 2
    finally:
        stop_recorded_workers(work / "workers.pids")
        for backend in used_backends - {"database"}:
            clean_broker(arguments, backend, created_queues)
        with contextlib.suppress(Exception):
            database_drop(arguments.database_name)
        if arguments.keep:
            print(f"Worker logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - began
    print(
        f"\nShort jobs (sample_job, steps=1; {arguments.idle_jobs} one at a time, then "
        f"{arguments.jobs} at once)"
    )
    print_short(short, arguments.interval)
    if training:
        print(
            f"\nTraining ({arguments.training_jobs} models, {TRAINING_ROWS} rows × 8 inputs, "
            f"binary, budget {arguments.budget} s each)"
        )
        print_training(training)
    results = short + training
    problems = sum(len(items) for item in results for items in item["problems"].values())
    if problems:
        print(f"\n{problems} jobs lost, run twice or failed:")
        print_problems(results)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\nTotal {elapsed / 60:.1f} min; load average at the end {load}.")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = arguments.output or kit.REPO / "var" / "bench" / f"queue-{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "arguments": {key: str(value) for key, value in vars(arguments).items()},
        "machine": dict(machine_info(services)),
        "short": short,
        "training": training,
    }
    output.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"Saved {output}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
