"""Benchmark: one model served by MLManager's predict endpoint and by MLflow's scoring server.

What the serving issue asks for, all on 127.0.0.1:

1. generates a table (20 000 rows × 12 inputs: decimals, some missing, integers, categories,
   a flag; a binary target) and trains one model on it through the platform's real path: a fresh
   data folder, `mlmanager web` (gunicorn) and `mlmanager worker`, the Parquet file uploaded,
   a model created and trained over the API (the search capped at a few candidates); the worker
   is stopped once the version exists;
2. the version's signed artifact is that one model, served with the same number of worker
   processes by MLManager's `POST /api/v1/models/<id>/predict/` on `mlmanager web`, and by
   `mlflow models serve` (MLflow's venv, bench/.venv-serving) on an MLflow pyfunc model that
   loads the same file with the engine's `load_model` (bench/serving_mlflow.py), twice (see
   MLFLOW_PEERS): as `pip install mlflow` serves it (uvicorn alone: the asyncio event loop and
   h11, where uvicorn issue #3149 adds ~44 ms to every keep-alive request), and with uvicorn's
   [standard] extra (uvloop and httptools: no such delay), which `mlflow[genai]` brings, and
   which this venv has anyway (MLManager's own dependencies); every answer is checked against
   the in-process probabilities before anything is timed;
3. the in-process floor: `TrainedModel.predict_proba` on 1, 100 and 1 000 rows (a DataFrame as
   read from the Parquet file; no parsing, no HTTP);
4. bounded load, one server at a time: a fixed number of requests at each concurrency (1 and 16)
   with 1-row and 100-row requests, then one 1 000-row request repeated at concurrency 1;
   keep-alive connections from client threads (http.client), per-request latencies;
5. prints req/s, p50, p99 and rows/s per case and server, the ratios, and judges the goals:
   single-row p50 ≤ 0.25 × MLflow's; single-row req/s at concurrency 16 ≥ 5 × MLflow's
   (against each MLflow); a 1 000-row request ≥ 0.3 × the in-process rows/s. The client's own
   cost is measured too (its CPU time per case, and its ceiling against a canned-response
   server).

Run from the repository root (MLflow's venv first; see bench/README.md):

    make bench-serving                                   # 5 000 requests per case, ~10 min
    .venv/bin/python bench/serving.py --quick            # ~1 min, smoke figures only

Exit codes: 0 every goal is met, 1 a goal is missed or requests failed, 2 the benchmark could not
run (MLflow's venv missing, training failed, an endpoint missing). Every server it starts is
stopped, also on errors. Linux only. No network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import upload_profile as kit
from machine import cpu_model, total_memory_gb
from upload_profile import BenchError, print_table

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
MLFLOW_HELPER = BENCH / "serving_mlflow.py"
DEFAULT_SERVING_PYTHON = BENCH / ".venv-serving" / "bin" / "python"
DEFAULT_OUTPUT_DIR = REPO / "var" / "bench"
KEY_VARIABLE = "MLMANAGER_BENCH_KEY"  # bench/serving_mlflow.py reads the artifact key from it

GOAL_P50_SHARE = 0.25  # single-row p50 (concurrency 1) ≤ this × MLflow's
GOAL_THROUGHPUT_FACTOR = 5.0  # single-row req/s at the highest concurrency ≥ this × MLflow's
GOAL_FLOOR_SHARE = 0.3  # 1 000-row request: served rows/s ≥ this × in-process rows/s

TARGET = "churn"
CLASSES = ("left", "stayed")
PLANS = ("basic", "plus", "pro", "enterprise")
PLAN_FEES = {"basic": 19.0, "plus": 39.0, "pro": 79.0, "enterprise": 149.0}
REGIONS = ("north", "south", "east", "west", "central", "islands")
PAYMENTS = ("card", "bank transfer", "invoice")
SMALL_ROWS, MEDIUM_ROWS, LARGE_ROWS = 1, 100, 1000
SINGLE_ROW_BODIES = 500  # distinct 1-row requests, cycled
MEDIUM_BODIES = 50  # distinct 100-row requests, cycled

DEFAULTS = {  # full run / --quick
    "requests": (5000, 100),
    "medium_requests": (1000, 100),
    "large_requests": (200, 10),
    "max_candidates": (6, 2),
    "floor_repeats": (2000, 200),
}
DEFAULT_ROWS = 20_000
# A cap: the candidate limit ends the search well before it on an idle machine.
DEFAULT_BUDGET_S = 60
DEFAULT_WORKERS = 2
DEFAULT_PORT = 18080  # MLManager; MLflow +1, the canned-response server +2
REQUEST_TIMEOUT_S = 60.0
MLFLOW_START_TIMEOUT_S = 180.0
TRAINING_TIMEOUT_SLACK_S = 240.0
WARM_UP_REQUESTS = 64
MATCH_TOLERANCE = 1e-6  # served probabilities vs in-process ones
CLIENT_CEILING_MARGIN = 2.0  # the client must drive ≥ this × the fastest measured rate
MB = 1024 * 1024
SERVER_WIDTH = 13  # the longest server name in the tables

# MLflow's scoring server two ways: (name, uvicorn's settings as environment variables, what it
# stands for). `mlflow models serve` starts `uvicorn --workers N`; uvicorn reads UVICORN_<OPTION>.
MLFLOW_PEERS = (
    (
        "mlflow",
        {"UVICORN_LOOP": "asyncio", "UVICORN_HTTP": "h11"},
        "as `pip install mlflow` serves: uvicorn without extras (asyncio loop, h11)",
    ),
    (
        "mlflow+uvloop",
        {"UVICORN_LOOP": "uvloop", "UVICORN_HTTP": "httptools"},
        "with uvicorn[standard] (uvloop, httptools), as `pip install mlflow[genai]` serves",
    ),
)


# --- The table -----------------------------------------------------------------------------------


def make_table(rows: int, seed: int = 7) -> pd.DataFrame:
    """A customer table with a learnable churn target: 5 decimal numbers (two with missing
    values), 3 integers, 3 categories and a flag; the target follows thresholds and
    interactions (so that a tree model wins the search); about 30 % of the customers leave."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(PLANS, rows, p=[0.4, 0.3, 0.2, 0.1])
    tenure = rng.integers(0, 120, rows)
    fee = np.array([PLAN_FEES[name] for name in plan]) * rng.normal(1.0, 0.08, rows)
    calls = rng.poisson(1.5, rows)
    login_days = rng.exponential(12.0, rows)
    satisfaction = np.clip(rng.normal(7.0, 1.8, rows), 1, 10)
    discount = rng.choice([0.0, 0.05, 0.1, 0.2], rows, p=[0.55, 0.2, 0.15, 0.1])
    region = rng.choice(REGIONS, rows)
    payment = rng.choice(PAYMENTS, rows, p=[0.5, 0.3, 0.2])
    autopay = rng.random(rows) < 0.6
    age = rng.integers(18, 80, rows)
    region_effect = dict(zip(REGIONS, (0.0, 0.2, -0.1, 0.3, -0.2, 0.5), strict=True))
    # Thresholds and interactions, as in real churn: trees fit them, a linear model cannot.
    unhappy = np.nan_to_num(satisfaction, nan=7.0) < 4.5
    logit = (
        -1.1
        + 1.8 * (tenure < 6)
        + 1.3 * (calls >= 4)
        + 1.6 * unhappy
        + 1.2 * ((plan == "basic") & (payment == "invoice"))
        - 1.4 * (autopay & (tenure > 24))
        + 1.0 * (login_days > 30)
        - 1.5 * ((discount >= 0.1) & np.isin(plan, ("pro", "enterprise")))
        + 0.9 * (age < 25)
        - 0.6 * (age > 65)
        + 0.8 * (unhappy & (calls >= 2))
        + np.array([region_effect[name] for name in region])
    )
    left = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "age": age,
            "tenure_months": tenure,
            "monthly_fee": fee.round(2),
            "total_spend": (fee * tenure * rng.normal(1.0, 0.05, rows)).round(2),
            "support_calls": calls,
            "days_since_login": login_days.round(1),
            "satisfaction": satisfaction.round(1),
            "discount": discount,
            "plan": plan,
            "region": region,
            "payment": payment,
            "autopay": autopay,
        }
    )
    frame.loc[rng.random(rows) < 0.08, "days_since_login"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "satisfaction"] = np.nan
    frame[TARGET] = np.where(left, CLASSES[0], CLASSES[1])
    return frame


def input_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name in frame.columns if name != TARGET]


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as a client sends them: plain JSON values, missing numbers as null."""
    rows = frame.to_dict("records")
    for row in rows:
        for name, value in row.items():
            if isinstance(value, float) and value != value:  # NaN
                row[name] = None
            elif isinstance(value, np.generic):
                row[name] = value.item()
    return rows


@dataclass
class Requests:
    """The request rows (drawn once from the table) and their bodies for each server."""

    single: list[pd.DataFrame]  # 1-row frames
    medium: list[pd.DataFrame]  # 100-row frames
    large: pd.DataFrame  # the one 1 000-row frame

    def frames(self, rows: int) -> list[pd.DataFrame]:
        return {SMALL_ROWS: self.single, MEDIUM_ROWS: self.medium, LARGE_ROWS: [self.large]}[rows]

    def bodies(self, rows: int, key: str) -> list[bytes]:
        """JSON bodies `{key: [row, …]}` (key "rows" for MLManager, "dataframe_records" for
        MLflow): the same rows and values for both servers."""
        return [
            json.dumps({key: json_rows(frame)}, separators=(",", ":")).encode()
            for frame in self.frames(rows)
        ]


def draw_requests(table: pd.DataFrame, seed: int = 11) -> Requests:
    inputs = table[input_columns(table)]
    rng = np.random.default_rng(seed)
    picks = rng.permutation(len(inputs))
    single = [inputs.iloc[[index]] for index in picks[:SINGLE_ROW_BODIES]]
    medium = [
        inputs.iloc[np.sort(rng.choice(len(inputs), MEDIUM_ROWS, replace=False))]
        for _ in range(MEDIUM_BODIES)
    ]
    large = inputs.iloc[np.sort(rng.choice(len(inputs), LARGE_ROWS, replace=False))]
    return Requests(single=single, medium=medium, large=large)


# --- Load generator ------------------------------------------------------------------------------


@dataclass
class Load:
    """One bounded load: `requests` requests from `concurrency` keep-alive connections."""

    server: str
    rows: int
    concurrency: int
    requests: int
    ok: int = 0
    errors: int = 0
    first_error: str = ""
    wall_s: float = 0.0
    req_per_s: float = 0.0
    rows_per_s: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    client_cpu_s: float = 0.0  # the benchmark process's own CPU time during the load
    client_cpu_us_per_request: float = 0.0
    client_cpu_share: float = 0.0  # of the machine's cores during the load

    @property
    def label(self) -> str:
        return f"{self.rows:,} row{'s' if self.rows > 1 else ''}".replace(",", " ")


def _connection(port: int) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        connection.connect()
    except OSError as error:
        raise BenchError(f"cannot connect to 127.0.0.1:{port}: {error}") from error
    assert connection.sock is not None
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def run_load(
    *,
    server: str,
    port: int,
    path: str,
    headers: dict[str, str],
    bodies: list[bytes],
    rows: int,
    requests: int,
    concurrency: int,
) -> Load:
    """Sends exactly `requests` POSTs (bodies cycled) from `concurrency` threads, each with its
    own keep-alive connection, opened before the clock starts; then stops. Latency = request
    sent → whole answer read; req/s = answered requests / wall time of the whole load."""
    counter = itertools.count()  # next() on it is atomic under the GIL: each index goes once
    latencies: list[list[int]] = [[] for _ in range(concurrency)]
    failures: list[str] = []
    connections = [_connection(port) for _ in range(concurrency)]
    start = threading.Barrier(concurrency + 1)
    all_headers = {"Content-Type": "application/json", "Accept": "application/json", **headers}

    def send(index: int) -> None:
        connection, mine = connections[index], latencies[index]
        start.wait()
        while (number := next(counter)) < requests:
            body = bodies[number % len(bodies)]
            began = time.perf_counter_ns()
            try:
                connection.request("POST", path, body=body, headers=all_headers)
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as error:
                failures.append(f"{type(error).__name__}: {error}")
                connection.close()  # reopened by the next request
                continue
            elapsed = time.perf_counter_ns() - began
            if response.status == 200:
                mine.append(elapsed)
            else:
                failures.append(f"HTTP {response.status}: {answer[:300].decode(errors='replace')}")

    threads = [
        threading.Thread(target=send, args=(index,), daemon=True) for index in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    cpu_before = time.process_time()
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    cpu = time.process_time() - cpu_before
    for connection in connections:
        connection.close()

    samples = np.array([value for mine in latencies for value in mine], dtype=np.float64) / 1e6
    load = Load(server=server, rows=rows, concurrency=concurrency, requests=requests)
    load.ok, load.errors = len(samples), len(failures)
    load.first_error = failures[0] if failures else ""
    load.wall_s = wall
    load.req_per_s = load.ok / wall if wall > 0 else 0.0
    load.rows_per_s = load.req_per_s * rows
    if len(samples):
        load.p50_ms = float(np.percentile(samples, 50))
        load.p99_ms = float(np.percentile(samples, 99))
        load.mean_ms = float(samples.mean())
    load.client_cpu_s = cpu
    load.client_cpu_us_per_request = cpu / max(load.ok + load.errors, 1) * 1e6
    load.client_cpu_share = cpu / wall / _cores() if wall > 0 else 0.0
    return load


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def post_json(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """One request outside any timing (probes, checks, warm-up)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        connection.request(
            "POST", path, body=body, headers={"Content-Type": "application/json", **headers}
        )
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw[:500].decode(errors="replace")


def warm_up(port: int, path: str, headers: dict[str, str], bodies: list[bytes]) -> None:
    """Concurrent requests so that every worker process has loaded the model (MLManager loads
    a version on its first request in each process) and the code paths are warm."""
    run_load(
        server="warm-up",
        port=port,
        path=path,
        headers=headers,
        bodies=bodies,
        rows=0,
        requests=WARM_UP_REQUESTS,
        concurrency=8,
    )


# --- The client's own ceiling ------------------------------------------------------------------


def _canned_server(port: int, answer: bytes) -> None:
    """An HTTP/1.1 keep-alive server that answers every request with the same bytes, at once
    (asyncio, one process): what the load generator alone can drive."""
    import asyncio

    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(answer)}\r\n\r\n".encode()
    )

    class Canned(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                length = 0
                for line in self.buffer[:end].split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                self.transport.write(head + answer)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(loop.create_server(Canned, "127.0.0.1", port))
    loop.run_forever()


@dataclass
class ClientCeiling:
    concurrency: int
    req_per_s: float
    p50_ms: float | None
    client_cpu_us_per_request: float
    client_cpu_share: float


def client_ceiling(
    port: int, bodies: list[bytes], answer: bytes, requests: int, concurrencies: list[int]
) -> list[ClientCeiling]:
    """The load generator against a server that costs nothing: single-row requests, an answer
    of the real single-row answer's size."""
    process = multiprocessing.get_context("spawn").Process(
        target=_canned_server, args=(port, answer), daemon=True
    )
    process.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline or not process.is_alive():
                raise BenchError("the canned-response server did not start")
            time.sleep(0.1)
        ceilings = []
        for concurrency in concurrencies:
            load = run_load(
                server="canned",
                port=port,
                path="/",
                headers={},
                bodies=bodies,
                rows=SMALL_ROWS,
                requests=requests,
                concurrency=concurrency,
            )
            ceilings.append(
                ClientCeiling(
                    concurrency,
                    load.req_per_s,
                    load.p50_ms,
                    load.client_cpu_us_per_request,
                    load.client_cpu_share,
                )
            )
        return ceilings
    finally:
        process.terminate()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()


# --- The in-process floor ----------------------------------------------------------------------


@dataclass
class Floor:
    rows: int
    calls: int
    p50_ms: float
    p99_ms: float
    calls_per_s: float  # one thread, back to back
    rows_per_s: float  # rows × calls_per_s, as the servers' rows/s

    @property
    def p50_rows_per_s(self) -> float:
        """One call's rows over its median time: what the 1 000-row goal compares."""
        return self.rows / (self.p50_ms / 1000)


def measure_floor(model: Any, requests: Requests, repeats: int) -> list[Floor]:
    """`TrainedModel.predict_proba` on the request rows, as DataFrames typed as in the Parquet
    file: what a prediction costs without parsing, validation or HTTP."""
    floors = []
    for rows, calls in (
        (SMALL_ROWS, repeats),
        (MEDIUM_ROWS, max(repeats // 4, 20)),
        (LARGE_ROWS, max(repeats // 20, 10)),
    ):
        frames = requests.frames(rows)
        for frame in frames[:20]:  # warm-up
            model.predict_proba(frame)
        timings = np.empty(calls)
        began = time.perf_counter()
        for index in range(calls):
            frame = frames[index % len(frames)]
            started = time.perf_counter_ns()
            model.predict_proba(frame)
            timings[index] = (time.perf_counter_ns() - started) / 1e6
        total = time.perf_counter() - began
        p50 = float(np.percentile(timings, 50))
        floors.append(
            Floor(
                rows=rows,
                calls=calls,
                p50_ms=p50,
                p99_ms=float(np.percentile(timings, 99)),
                calls_per_s=calls / total,
                rows_per_s=rows * calls / total,
            )
        )
    return floors


# --- Servers -------------------------------------------------------------------------------------


@contextlib.contextmanager
def started(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Stops every server in `processes` (each in its own process group) on the way out,
    whatever happened."""
    try:
        yield
    finally:
        for process in processes:
            kit.stop_server(process)


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float, what: str) -> float:
    """Polls until `url` answers 200; returns the seconds it took."""
    began = time.perf_counter()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.perf_counter() - began < timeout:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with code {process.returncode}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            opener.open(url, timeout=2) as response,
        ):
            if response.status == 200:
                return time.perf_counter() - began
        time.sleep(0.25)
    raise BenchError(f"{what} did not answer {url} within {timeout:.0f} s")


@dataclass
class TrainedVersion:
    machine_id: int
    version: int
    artifact: Path
    signature: str
    key_hex: str
    estimator: str
    metric: str
    score: float | None
    candidates: int | None
    run_s: float | None  # the training job's own started → finished
    artifact_bytes: int


def train_on_platform(
    api: kit.Api,
    parquet: Path,
    columns: list[str],
    *,
    budget_s: int,
    env: dict[str, str],
) -> TrainedVersion:
    """Upload → dataset ready → model → training run succeeded → its version's artifact."""
    uploaded = kit.upload_and_wait(api, parquet, timeout=300.0)
    if uploaded.dataset["status"] != "ready":
        raise BenchError(f"the dataset failed: {uploaded.dataset.get('error')}")
    body = {
        "name": "bench serving",
        "dataset": uploaded.dataset["id"],
        "inputs": columns,
        "outputs": [TARGET],
        "time_budget_s": budget_s,
    }
    machine = api.expect("POST", "/api/v1/models/", body, 201)
    run = api.expect("POST", f"/api/v1/models/{machine['id']}/start_training/", {}, 202)
    deadline = time.monotonic() + 3 * budget_s + TRAINING_TIMEOUT_SLACK_S
    while run.get("status") not in {"succeeded", "failed", "cancelled"}:
        if time.monotonic() > deadline:
            raise BenchError(f"the training run did not end in time: {run.get('message')}")
        time.sleep(kit.POLL_INTERVAL_S)
        run = api.expect("GET", f"/api/v1/runs/{run['id']}/", None, 200)
    if run["status"] != "succeeded":
        raise BenchError(f"the training run ended {run['status']}: {run.get('error')}")
    versions = api.expect("GET", f"/api/v1/models/{machine['id']}/versions/", None, 200)
    version = (versions.get("results") if isinstance(versions, dict) else versions)[0]
    output = version["outputs"][0]
    media_root, key_hex = _platform_storage(env)
    artifact = media_root / output["artifact"]
    metrics = output.get("metrics") or {}
    return TrainedVersion(
        machine_id=machine["id"],
        version=version["number"],
        artifact=artifact,
        signature=output["artifact_signature"],
        key_hex=key_hex,
        estimator=str(output.get("best_estimator")),
        metric=str(output.get("metric")),
        score=metrics.get(output.get("metric")),
        candidates=run.get("candidates"),
        run_s=kit._seconds(run.get("started_at"), run.get("finished_at")),
        artifact_bytes=artifact.stat().st_size,
    )


def _platform_storage(env: dict[str, str]) -> tuple[Path, str]:
    """The media root and the artifact key of the platform running with `env`, asked of the
    platform itself (so that the benchmark never re-implements the key's derivation)."""
    code = (
        "from django.conf import settings; from mlmanager.machines.files import artifact_key; "
        "print(settings.MEDIA_ROOT); print(artifact_key().hex())"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or len(lines) < 2:
        raise BenchError(f"could not read the platform's storage settings: {result.stderr[-800:]}")
    return Path(lines[-2]), lines[-1]


def save_mlflow_model(
    serving_python: Path, version: TrainedVersion, example: pd.DataFrame, work: Path
) -> Path:
    example_path = work / "mlflow-example.parquet"
    pq.write_table(pa.Table.from_pandas(example, preserve_index=False), example_path)
    model_dir = work / "mlflow-model"
    result = subprocess.run(
        [str(serving_python), str(MLFLOW_HELPER), "save", "--artifact", str(version.artifact),
         "--signature", version.signature, "--example", str(example_path),
         "--out", str(model_dir)],
        cwd=REPO, env={**os.environ, KEY_VARIABLE: version.key_hex}, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    (work / "mlflow-save.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise BenchError(f"saving the MLflow model failed:\n{result.stderr[-2000:]}")
    return model_dir


def start_mlflow(
    serving_python: Path,
    model_dir: Path,
    port: int,
    workers: int,
    key_hex: str,
    log: Path,
    uvicorn_env: dict[str, str],
) -> subprocess.Popen[bytes]:
    bin_dir = serving_python.parent
    # `mlflow models serve` runs `bash -c "exec uvicorn …"`: the venv's bin must come first.
    path = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    env = {**os.environ, KEY_VARIABLE: key_hex, "PYTHONUNBUFFERED": "1", "PATH": path}
    env.update(uvicorn_env)
    # MLflow's uvicorn is started by `mlflow models serve` as a child; both go in one group.
    return kit.start_server(
        [str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env,
        log,
    )  # fmt: skip


# --- Answers: the same model on both sides ---------------------------------------------------


def mlmanager_probabilities(payload: Any, classes: list[str]) -> np.ndarray:
    """Probabilities from MLManager's answer `{"predictions": [{..., "probabilities": {label:
    p}}]}` (also accepted: the probabilities inside the output's own object)."""
    rows = payload["predictions"]
    table = []
    for row in rows:
        probabilities = row.get("probabilities")
        if probabilities is None:
            nested = [value for value in row.values() if isinstance(value, dict)]
            probabilities = next(
                (value["probabilities"] for value in nested if "probabilities" in value), None
            )
        if probabilities is None:
            raise BenchError(f"no probabilities in MLManager's answer: {row}")
        table.append([float(probabilities[str(label)]) for label in classes])
    return np.array(table)


def mlflow_probabilities(payload: Any, classes: list[str]) -> np.ndarray:
    rows = payload["predictions"]
    return np.array([[float(row[f"probability_{label}"]) for label in classes] for row in rows])


def check_answers(
    server: str,
    port: int,
    path: str,
    headers: dict[str, str],
    key: str,
    requests: Requests,
    model: Any,
    read: Any,
) -> float:
    """One 100-row request and one 1-row request: the served probabilities must be the
    in-process ones. Returns the largest difference."""
    classes = [str(label) for label in model.classes]
    worst = 0.0
    for frame in (requests.medium[0], requests.single[0], requests.single[1]):
        body = json.dumps({key: json_rows(frame)}).encode()
        status, payload = post_json(port, path, body, headers)
        if status != 200:
            raise BenchError(f"{server} answered HTTP {status}: {str(payload)[:800]}")
        served = read(payload, classes)
        expected = model.predict_proba(frame)
        if served.shape != expected.shape:
            raise BenchError(
                f"{server} answered {served.shape} probabilities for {len(frame)} rows"
            )
        worst = max(worst, float(np.abs(served - expected).max()))
    if worst > MATCH_TOLERANCE:
        raise BenchError(
            f"{server}'s probabilities differ from the in-process model's by {worst:.2e}: "
            "not the same model, or not the same inputs"
        )
    return worst


@dataclass
class Breakdown:
    """Where MLManager's time goes, from its answers' `timing_ms` (medians, sequential)."""

    rows: int
    requests: int
    client_ms: float
    parse_ms: float | None
    model_ms: float | None
    total_ms: float | None

    @property
    def outside_ms(self) -> float | None:
        return None if self.total_ms is None else self.client_ms - self.total_ms


def mlmanager_breakdown(
    port: int, path: str, headers: dict[str, str], requests: Requests, count: int
) -> list[Breakdown]:
    breakdowns = []
    for rows, repeats in ((SMALL_ROWS, count), (MEDIUM_ROWS, count), (LARGE_ROWS, count // 4)):
        bodies = requests.bodies(rows, "rows")
        client, parts = [], []
        for index in range(max(repeats, 5)):
            began = time.perf_counter()
            status, payload = post_json(port, path, bodies[index % len(bodies)], headers)
            client.append((time.perf_counter() - began) * 1000)
            if status == 200 and isinstance(payload, dict):
                parts.append(payload.get("timing_ms") or {})

        def median(name: str, parts: list[dict[str, Any]] = parts) -> float | None:
            values = [part[name] for part in parts if isinstance(part.get(name), int | float)]
            return float(np.median(values)) if values else None

        breakdowns.append(
            Breakdown(
                rows=rows,
                requests=len(client),
                client_ms=float(np.median(client)),
                parse_ms=median("parse"),
                model_ms=median("model"),
                total_ms=median("total"),
            )
        )
    return breakdowns


# --- One server under load ---------------------------------------------------------------------


@dataclass
class Served:
    server: str
    available: bool = False
    why_not: str = ""
    start_s: float | None = None
    match: float | None = None  # largest probability difference to the in-process model
    loads: list[Load] = field(default_factory=list)
    breakdown: list[Breakdown] = field(default_factory=list)
    single_answer: bytes = b""  # a real 1-row answer, the canned server's reply

    def load(self, rows: int, concurrency: int) -> Load | None:
        return next(
            (
                load
                for load in self.loads
                if load.rows == rows and load.concurrency == concurrency and load.ok
            ),
            None,
        )


def run_cases(
    served: Served,
    *,
    port: int,
    path: str,
    headers: dict[str, str],
    key: str,
    requests: Requests,
    arguments: argparse.Namespace,
) -> None:
    cases = [
        (rows, concurrency, count)
        for rows, count in (
            (SMALL_ROWS, arguments.requests),
            (MEDIUM_ROWS, arguments.medium_requests),
        )
        for concurrency in arguments.concurrency
    ]
    cases.append((LARGE_ROWS, 1, arguments.large_requests))
    for rows, concurrency, count in cases:
        load = run_load(
            server=served.server,
            port=port,
            path=path,
            headers=headers,
            bodies=requests.bodies(rows, key),
            rows=rows,
            requests=count,
            concurrency=concurrency,
        )
        served.loads.append(load)
        _print_load(load)


def _print_load(load: Load) -> None:
    errors = f", {load.errors} FAILED: {load.first_error}" if load.errors else ""
    print(
        f"  {load.server:<{SERVER_WIDTH}} {load.label:>10} × {load.requests:>5} at concurrency "
        f"{load.concurrency:>2}: {load.req_per_s:8.1f} req/s, p50 {_ms(load.p50_ms)} ms, "
        f"p99 {_ms(load.p99_ms)} ms, client CPU {load.client_cpu_share:.0%}{errors}",
        flush=True,
    )


# --- Report --------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}".replace(",", " ")


def _times(value: float | None) -> str:
    return "—" if value is None else f"×{value:.2f}"


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    if mine is None or theirs is None or theirs == 0:
        return None
    return mine / theirs


def print_results(floors: list[Floor], servers: list[Served], concurrencies: list[int]) -> None:
    print(
        f"\n  {'case':<10} {'conc':>4}  {'server':<{SERVER_WIDTH}} {'requests':>8} {'req/s':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'rows/s':>10} {'client CPU':>10}"
    )
    for rows in (SMALL_ROWS, MEDIUM_ROWS, LARGE_ROWS):
        floor = next(item for item in floors if item.rows == rows)
        label = Load("", rows, 1, 0).label
        print(
            f"  {label:<10} {'1':>4}  {'in-process':<{SERVER_WIDTH}} {floor.calls:>8} "
            f"{floor.calls_per_s:>8.1f} {floor.p50_ms:>8.3f} {floor.p99_ms:>8.3f} "
            f"{_rate(floor.rows_per_s):>10} {'':>10}"
        )
        for concurrency in concurrencies if rows != LARGE_ROWS else [1]:
            for served in servers:
                load = next(
                    (x for x in served.loads if x.rows == rows and x.concurrency == concurrency),
                    None,
                )
                if load is None:
                    why = served.why_not or "not run"
                    print(f"  {label:<10} {concurrency:>4}  {served.server:<{SERVER_WIDTH}} {why}")
                    continue
                failed = f"  {load.errors} failed" if load.errors else ""
                print(
                    f"  {label:<10} {concurrency:>4}  {served.server:<{SERVER_WIDTH}} "
                    f"{load.requests:>8} "
                    f"{load.req_per_s:>8.1f} {_ms(load.p50_ms):>8} {_ms(load.p99_ms):>8} "
                    f"{_rate(load.rows_per_s):>10} {load.client_cpu_share:>10.0%}{failed}"
                )


def ratio_rows(
    floors: list[Floor], mine: Served, theirs: Served, concurrencies: list[int]
) -> list[dict[str, Any]]:
    """Per case: MLManager ÷ MLflow for p50 and req/s, and each server's rows/s ÷ the floor's
    (p50-based: one request's rows over its median latency)."""
    ratios = []
    for rows in (SMALL_ROWS, MEDIUM_ROWS, LARGE_ROWS):
        floor = next(item for item in floors if item.rows == rows)
        for concurrency in concurrencies if rows != LARGE_ROWS else [1]:
            a, b = mine.load(rows, concurrency), theirs.load(rows, concurrency)
            ratios.append(
                {
                    "rows": rows,
                    "concurrency": concurrency,
                    "p50": _ratio(a and a.p50_ms, b and b.p50_ms),
                    "req_per_s": _ratio(a and a.req_per_s, b and b.req_per_s),
                    "mlmanager_vs_floor": _ratio(floor.p50_ms, a and a.p50_ms),
                    "mlflow_vs_floor": _ratio(floor.p50_ms, b and b.p50_ms),
                }
            )
    return ratios


def print_ratios(ratios: list[dict[str, Any]], peer: str) -> None:
    print(f"\n  against {peer}")
    print(
        f"  {'case':<10} {'conc':>4}  {'p50 MLManager÷MLflow':>21} "
        f"{'req/s MLManager÷MLflow':>23} {'floor÷MLManager p50':>20} {'floor÷MLflow p50':>17}"
    )
    for ratio in ratios:
        label = Load("", ratio["rows"], 1, 0).label
        print(
            f"  {label:<10} {ratio['concurrency']:>4}  {_times(ratio['p50']):>21} "
            f"{_times(ratio['req_per_s']):>23} {_times(ratio['mlmanager_vs_floor']):>20} "
            f"{_times(ratio['mlflow_vs_floor']):>17}"
        )


def print_ratios_note() -> None:
    print(
        "  (floor÷server p50: the in-process p50 over the served one = the share of the "
        "in-process rows/s one request gets; the 1 000-row goal wants ≥ ×0.30)"
    )


@dataclass
class Goal:
    text: str
    passed: bool | None  # None: not judged (a side did not run)
    detail: str
    needs: str = ""  # what MLManager would need to meet it, when missed

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "n/a"}[self.passed]


def judge_goals(
    floors: list[Floor], mine: Served, peers: list[Served], concurrencies: list[int]
) -> list[Goal]:
    goals = []
    for theirs in peers:
        goals.extend(_peer_goals(floors, mine, theirs, concurrencies))
    goals.append(_floor_goal(floors, mine))
    return goals


def _peer_goals(
    floors: list[Floor], mine: Served, theirs: Served, concurrencies: list[int]
) -> list[Goal]:
    goals = []
    text = f"single-row p50 ≤ {GOAL_P50_SHARE} × {theirs.server}'s (concurrency 1)"
    a, b = mine.load(SMALL_ROWS, 1), theirs.load(SMALL_ROWS, 1)
    if a is None or b is None or a.p50_ms is None or b.p50_ms is None:
        goals.append(Goal(text, None, _missing(mine, theirs)))
    else:
        limit = GOAL_P50_SHARE * b.p50_ms
        goals.append(
            Goal(
                text,
                a.p50_ms <= limit,
                f"{a.p50_ms:.2f} ms vs {b.p50_ms:.2f} ms (×{a.p50_ms / b.p50_ms:.2f}); "
                f"limit {limit:.2f} ms",
                f"p50 down by {a.p50_ms - limit:.2f} ms to ≤ {limit:.2f} ms"
                + _where(
                    mine, SMALL_ROWS, next(item for item in floors if item.rows == SMALL_ROWS)
                ),
            )
        )

    top = max(concurrencies)
    text = f"single-row req/s at concurrency {top} ≥ {GOAL_THROUGHPUT_FACTOR:g} × {theirs.server}'s"
    a, b = mine.load(SMALL_ROWS, top), theirs.load(SMALL_ROWS, top)
    if a is None or b is None:
        goals.append(Goal(text, None, _missing(mine, theirs)))
    else:
        need = GOAL_THROUGHPUT_FACTOR * b.req_per_s
        goals.append(
            Goal(
                text,
                a.req_per_s >= need,
                f"{a.req_per_s:.0f} vs {b.req_per_s:.0f} req/s "
                f"(×{a.req_per_s / b.req_per_s:.2f}); needs {need:.0f}",
                f"≥ {need:.0f} req/s (×{need / a.req_per_s:.2f} of now), i.e. at most "
                f"{1000 * _cores() / need:.2f} ms of the machine's {_cores()} cores per request "
                f"(now {1000 * _cores() / a.req_per_s:.2f} ms, of which the client "
                f"{a.client_cpu_us_per_request / 1000:.2f} ms)",
            )
        )
    return goals


def _floor_goal(floors: list[Floor], mine: Served) -> Goal:
    text = f"1 000-row request ≥ {GOAL_FLOOR_SHARE} × in-process rows/s (p50s, concurrency 1)"
    floor = next(item for item in floors if item.rows == LARGE_ROWS)
    a = mine.load(LARGE_ROWS, 1)
    if a is None or a.p50_ms is None:
        return Goal(text, None, mine.why_not or "MLManager not measured")
    served_rows = LARGE_ROWS / (a.p50_ms / 1000)
    limit = floor.p50_ms / GOAL_FLOOR_SHARE
    return Goal(
        text,
        served_rows >= GOAL_FLOOR_SHARE * floor.p50_rows_per_s,
        f"{_rate(served_rows)} rows/s (p50 {a.p50_ms:.1f} ms) vs in-process "
        f"{_rate(floor.p50_rows_per_s)} rows/s (p50 {floor.p50_ms:.1f} ms): "
        f"×{served_rows / floor.p50_rows_per_s:.2f}; limit {limit:.1f} ms",
        f"a 1 000-row request in ≤ {limit:.1f} ms (now {a.p50_ms:.1f} ms: "
        f"{a.p50_ms - limit:.1f} ms less){_where(mine, LARGE_ROWS, floor)}",
    )


def _where(served: Served, rows: int, floor: Floor) -> str:
    """Where the time of one request goes (the endpoint's own `timing_ms`, sequential)."""
    item = next((item for item in served.breakdown if item.rows == rows), None)
    if item is None or item.total_ms is None:
        return f"; the in-process predict alone takes {floor.p50_ms:.2f} ms"
    return (
        f"; one request at a time: {item.client_ms:.2f} ms at the client = view "
        f"{item.total_ms:.2f} ms (parse {_ms(item.parse_ms)}, model {_ms(item.model_ms)}) + "
        f"{_ms(item.outside_ms)} ms outside the view; the in-process predict alone takes "
        f"{floor.p50_ms:.2f} ms"
    )


def _missing(mine: Served, theirs: Served) -> str:
    return (
        "; ".join(
            f"{served.server}: {served.why_not or 'no successful load'}"
            for served in (mine, theirs)
            if not served.loads
        )
        or "a case did not run"
    )


def print_breakdown(breakdowns: list[Breakdown]) -> None:
    if not breakdowns:
        return
    print("\nMLManager's own timing (`timing_ms` of its answers; medians, one request at a time)")
    print(
        f"  {'case':<10} {'requests':>8} {'client ms':>10} {'view total':>11} {'parse':>8} "
        f"{'model':>8} {'outside view':>13}"
    )
    for item in breakdowns:
        label = Load("", item.rows, 1, 0).label
        print(
            f"  {label:<10} {item.requests:>8} {item.client_ms:>10.2f} {_ms(item.total_ms):>11} "
            f"{_ms(item.parse_ms):>8} {_ms(item.model_ms):>8} {_ms(item.outside_ms):>13}"
        )
    print(
        "  (outside view: client latency − the endpoint's own total: HTTP, gunicorn, Django "
        "middleware, authentication, and the loopback)"
    )


def machine_info(serving_python: Path) -> list[tuple[str, str]]:
    return [
        ("cores", str(_cores())),
        ("cpu", cpu_model()),
        ("memory", total_memory_gb()),
        ("load average", " ".join(f"{value:.2f}" for value in os.getloadavg())),
        ("kernel", platform.release()),
        ("project python", f"{platform.python_version()} ({sys.executable})"),
        ("MLflow python", str(serving_python)),
    ]


# --- Main ----------------------------------------------------------------------------------------


def _concurrencies(value: str) -> list[int]:
    try:
        values = sorted({int(item) for item in value.split(",") if item.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {value!r}") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("concurrencies must be 1 or more")
    return values


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small counts, ~1 minute")
    parser.add_argument("--requests", type=int, help="requests per 1-row case (5000; quick 100)")
    parser.add_argument(
        "--medium-requests", type=int, help="requests per 100-row case (1000; quick 100)"
    )
    parser.add_argument(
        "--large-requests", type=int, help="times the 1 000-row request is sent (200; quick 10)"
    )
    parser.add_argument(
        "--concurrency", type=_concurrencies, default=[1, 16], help="comma-separated (1,16)"
    )
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="worker processes per server (2)"
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="training rows (20000)")
    parser.add_argument(
        "--budget", type=int, default=DEFAULT_BUDGET_S, help="training budget cap, seconds (60)"
    )
    parser.add_argument(
        "--max-candidates", type=int, help="candidates the search tries (6; quick 2)"
    )
    parser.add_argument(
        "--floor-repeats", type=int, help="in-process 1-row predictions timed (2000; quick 200)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="MLManager's; MLflow +1, canned +2 (18080)"
    )
    parser.add_argument(
        "--serving-python",
        type=Path,
        default=DEFAULT_SERVING_PYTHON,
        help="Python of MLflow's venv (bench/.venv-serving/bin/python)",
    )
    parser.add_argument(
        "--output", type=Path, help="results as JSON (default var/bench/serving-<time>.json)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    arguments = parser.parse_args(argv)
    for name, (full, quick) in DEFAULTS.items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, quick if arguments.quick else full)
    positive = (*DEFAULTS, "workers", "rows")
    if any(getattr(arguments, name) < 1 for name in positive) or arguments.budget < 10:
        parser.error(
            "--requests, --medium-requests, --large-requests, --workers, --rows, "
            "--max-candidates and --floor-repeats must be positive, --budget at least 10"
        )
    # Absolute, not resolved: a venv's python is a symlink that must stay the venv's.
    arguments.serving_python = arguments.serving_python.absolute()
    return arguments


def check_prerequisites(arguments: argparse.Namespace) -> None:
    if not arguments.serving_python.exists():
        raise BenchError(
            f"{arguments.serving_python} is missing; set up MLflow's venv as bench/README.md "
            "says (make bench-serving does it)"
        )
    probe = subprocess.run(
        [str(arguments.serving_python), "-c", "import mlflow, mlmanager.engine.training"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        raise BenchError(f"MLflow's venv cannot import mlflow and the engine: {last}")
    if shutil.which("curl") is None:
        raise BenchError("curl is needed for the upload")
    for port in (arguments.port, arguments.port + 1, arguments.port + 2):
        if not kit.port_is_free(port):
            raise BenchError(f"port {port} is in use; pass --port")


def _stop_on_sigterm(signum: int, _frame: Any) -> None:
    # SIGTERM's default ends Python without `finally`: servers and the data folder would stay.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    print("Machine")
    print_table(machine_info(arguments.serving_python))
    try:
        check_prerequisites(arguments)
    except BenchError as error:
        print(f"\nBenchmark error: {error}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="mlmanager-serving-"))
    began = time.perf_counter()
    try:
        return run(arguments, work, began)
    except BenchError as error:
        print(f"\nBenchmark error: {error}", file=sys.stderr)
        logs = ["web.log", "worker.log", *(f"{name}.log" for name, *_ in MLFLOW_PEERS)]
        for name in (*logs, "mlflow-save.log"):
            if (work / name).exists():
                print(f"\n{name} (tail):\n{kit.tail(work / name, 20)}", file=sys.stderr)
        return 2
    finally:
        if arguments.keep:
            print(f"Kept the data folder, models and logs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(arguments: argparse.Namespace, work: Path, began: float) -> int:
    concurrencies: list[int] = arguments.concurrency
    workers: int = arguments.workers
    table = make_table(arguments.rows)
    parquet = work / "customers.parquet"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), parquet)
    requests = draw_requests(table)
    columns = input_columns(table)
    print(
        f"\nTable: {len(table):,} rows × {len(columns)} inputs, target {TARGET!r} "
        f"({(table[TARGET] == CLASSES[0]).mean():.0%} {CLASSES[0]!r}); {workers} worker "
        f"processes per server; at concurrency {', '.join(map(str, concurrencies))}: "
        f"{arguments.requests} 1-row and {arguments.medium_requests} 100-row requests, then "
        f"the 1 000-row request {arguments.large_requests} times at concurrency 1",
        flush=True,
    )
    mlmanager_port, mlflow_port, canned_port = (arguments.port + offset for offset in range(3))
    env = kit.server_environment(work / "data", mlmanager_port, debug=False)
    env.update(
        WEB_CONCURRENCY=str(workers),
        MLMANAGER_TRAINING_MAX_CANDIDATES=str(arguments.max_candidates),
    )
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if migrate.returncode != 0:
        raise BenchError(f"migrate failed:\n{migrate.stdout[-1500:]}\n{migrate.stderr[-1500:]}")

    mine = Served("mlmanager")
    peers = [Served(name) for name, _env, _what in MLFLOW_PEERS]
    processes: list[subprocess.Popen[bytes]] = []
    with started(processes):
        web = kit.start_server(kit._mlmanager("web"), env, work / "web.log")
        processes.append(web)
        worker = kit.start_server(kit._mlmanager("worker"), env, work / "worker.log")
        processes.append(worker)
        mine.start_s = kit.wait_for_web(
            f"http://127.0.0.1:{mlmanager_port}/accounts/login/", web, 60.0
        )
        api = kit.Api(f"http://127.0.0.1:{mlmanager_port}")
        email, password = f"bench-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(18)
        credentials = {"email": email, "password": password, "name": "Bench Mark"}
        kit.sign_up(api, credentials, work / "data")
        print(
            f"\nTraining on the platform (budget {arguments.budget} s, at most "
            f"{arguments.max_candidates} candidates)…",
            flush=True,
        )
        version = train_on_platform(api, parquet, columns, budget_s=arguments.budget, env=env)
        kit.stop_server(worker)  # nothing else runs while servers are measured
        print(
            f"  model {version.machine_id} version {version.version}: {version.estimator}, "
            f"{version.metric} {_score(version.score)}, {version.candidates} candidates, "
            f"job {_ms(version.run_s)} s, artifact {version.artifact_bytes / MB:.1f} MB",
            flush=True,
        )
        from mlmanager.engine.training import load_model

        model = load_model(version.artifact, key=bytes.fromhex(version.key_hex),
                           signature=version.signature)  # fmt: skip
        print("Saving the MLflow model…", flush=True)
        model_dir = save_mlflow_model(
            arguments.serving_python, version, table[columns].head(500), work
        )

        print("\nIn-process floor (TrainedModel.predict_proba, one thread)", flush=True)
        floors = measure_floor(model, requests, arguments.floor_repeats)
        for floor in floors:
            print(
                f"  {floor.rows:>5} rows: p50 {floor.p50_ms:.3f} ms, p99 {floor.p99_ms:.3f} ms, "
                f"{_rate(floor.p50_rows_per_s)} rows/s at p50"
            )

        print("\nMLManager (mlmanager web: gunicorn gthread, 4 threads per worker)", flush=True)
        measure_mlmanager(
            mine, port=mlmanager_port, machine_id=version.machine_id, token=api.token,
            requests=requests, model=model, arguments=arguments,
        )  # fmt: skip
        kit.stop_server(web)

        for theirs, (_name, uvicorn_env, what) in zip(peers, MLFLOW_PEERS, strict=True):
            print(
                f"\n{theirs.server} (mlflow models serve: uvicorn, {workers} workers; {what})",
                flush=True,
            )
            mlflow = start_mlflow(
                arguments.serving_python, model_dir, mlflow_port, workers, version.key_hex,
                work / f"{theirs.server}.log", uvicorn_env,
            )  # fmt: skip
            processes.append(mlflow)
            theirs.start_s = wait_for(
                f"http://127.0.0.1:{mlflow_port}/ping",
                mlflow,
                MLFLOW_START_TIMEOUT_S,
                theirs.server,
            )
            measure_mlflow(theirs, port=mlflow_port, requests=requests, model=model,
                           arguments=arguments)  # fmt: skip
            kit.stop_server(mlflow)

    print("\nThe client alone (same load generator, a canned-response server)", flush=True)
    servers = [mine, *peers]
    answer = next((item.single_answer for item in servers if item.single_answer), b"{}")
    ceilings = client_ceiling(
        canned_port,
        requests.bodies(SMALL_ROWS, "rows"),
        answer,
        max(arguments.requests, 1000),
        concurrencies,
    )
    client_note = print_client(ceilings, servers)

    print(
        f"\nResults ({workers} worker processes per server; req/s = answered requests / wall "
        "time; client CPU = the load generator's share of all cores)"
    )
    print_results(floors, servers, concurrencies)
    ratios = {}
    for theirs in peers:
        ratios[theirs.server] = ratio_rows(floors, mine, theirs, concurrencies)
        print_ratios(ratios[theirs.server], theirs.server)
    print_ratios_note()
    print_breakdown(mine.breakdown)

    goals = judge_goals(floors, mine, peers, concurrencies)
    print("\nGoals")
    print_table([(goal.text, f"{goal.verdict}  {goal.detail}") for goal in goals])
    missed = [goal for goal in goals if goal.passed is False]
    if missed:
        print("\nWhat MLManager's endpoint would need")
        print_table([(goal.text, goal.needs) for goal in missed])

    failed_requests = sum(load.errors for s in servers for load in s.loads)
    output = arguments.output or DEFAULT_OUTPUT_DIR / f"serving-{datetime.now():%Y%m%d-%H%M%S}.json"
    _save(output, arguments, version, floors, servers, ratios, goals, ceilings, client_note)
    not_run = [s.server for s in servers if not s.available]
    passed = not missed and not failed_requests and not not_run
    verdict = "PASS" if passed else "INCOMPLETE" if not_run else "FAIL"
    print(
        f"\n{verdict}: {sum(goal.passed is True for goal in goals)}/{len(goals)} goals met"
        + (f", {failed_requests} requests failed" if failed_requests else "")
        + (f", not measured: {', '.join(not_run)}" if not_run else "")
        + f"; {(time.perf_counter() - began) / 60:.1f} min; results in {output}"
    )
    if not_run:
        return 2
    return 0 if passed else 1


def measure_mlmanager(
    served: Served,
    *,
    port: int,
    machine_id: int,
    token: str,
    requests: Requests,
    model: Any,
    arguments: argparse.Namespace,
) -> None:
    """Probe the predict endpoint (it may not exist yet: then say so and measure nothing),
    check its answers, warm it up, run the cases, then the one-at-a-time timing breakdown."""
    path = f"/api/v1/models/{machine_id}/predict/"
    headers = {"Authorization": f"Bearer {token}"}
    status, answer = post_json(port, path, requests.bodies(SMALL_ROWS, "rows")[0], headers)
    if status != 200:
        served.why_not = f"predict endpoint answered HTTP {status}"
        print(f"  not measured: {served.why_not}: {str(answer)[:300]}")
        return
    served.single_answer = json.dumps(answer).encode()
    served.match = check_answers(
        "MLManager", port, path, headers, "rows", requests, model, mlmanager_probabilities
    )
    warm_up(port, path, headers, requests.bodies(SMALL_ROWS, "rows"))
    served.available = True
    run_cases(
        served, port=port, path=path, headers=headers, key="rows", requests=requests,
        arguments=arguments,
    )  # fmt: skip
    served.breakdown = mlmanager_breakdown(
        port, path, headers, requests, 50 if arguments.quick else 200
    )


def measure_mlflow(
    served: Served, *, port: int, requests: Requests, model: Any, arguments: argparse.Namespace
) -> None:
    key = "dataframe_records"
    served.match = check_answers(
        served.server, port, "/invocations", {}, key, requests, model, mlflow_probabilities
    )
    _status, answer = post_json(port, "/invocations", requests.bodies(SMALL_ROWS, key)[0], {})
    served.single_answer = json.dumps(answer).encode()
    warm_up(port, "/invocations", {}, requests.bodies(SMALL_ROWS, key))
    served.available = True
    run_cases(
        served, port=port, path="/invocations", headers={}, key=key, requests=requests,
        arguments=arguments,
    )  # fmt: skip


def print_client(ceilings: list[ClientCeiling], servers: list[Served]) -> str:
    """Prints the client's ceiling; returns the note saying whether it may limit the figures."""
    for ceiling in ceilings:
        print(
            f"  1-row requests at concurrency {ceiling.concurrency:>2}: "
            f"{ceiling.req_per_s:8.0f} req/s, p50 {_ms(ceiling.p50_ms)} ms, client CPU "
            f"{ceiling.client_cpu_us_per_request:.0f} µs per request"
        )
    fastest = max((load.req_per_s for served in servers for load in served.loads), default=0.0)
    slowest_ceiling = min(ceiling.req_per_s for ceiling in ceilings)
    if not fastest:
        return "no load was measured"
    note = (
        f"the client alone drives ≥ {slowest_ceiling:.0f} req/s, "
        f"{slowest_ceiling / fastest:.1f} × the fastest measured rate ({fastest:.0f} req/s)"
    )
    if slowest_ceiling < CLIENT_CEILING_MARGIN * fastest:
        note += ": the client may limit the fastest cases"
    print(f"  {note}")
    return note


def _save(
    path: Path,
    arguments: argparse.Namespace,
    version: TrainedVersion,
    floors: list[Floor],
    servers: list[Served],
    ratios: dict[str, list[dict[str, Any]]],
    goals: list[Goal],
    ceilings: list[ClientCeiling],
    client_note: str,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model = asdict(version)
    model.pop("key_hex")
    payload = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "arguments": {key: str(value) for key, value in vars(arguments).items()},
        "machine": dict(machine_info(arguments.serving_python)),
        "model": model,
        "floor": [asdict(floor) for floor in floors],
        "servers": [
            {key: value for key, value in asdict(served).items() if key != "single_answer"}
            for served in servers
        ],
        "ratios": ratios,
        "client": {"ceilings": [asdict(item) for item in ceilings], "note": client_note},
        "goals": [asdict(goal) | {"verdict": goal.verdict} for goal in goals],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
