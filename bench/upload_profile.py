"""Benchmark: upload a large CSV to a real MLManager and wait until it is profiled.

Measures what the issue asks for — time and peak memory (web process and worker) to upload and
profile a 1 M × 20 CSV; goal: under 30 s end to end, web process under 300 MB — against the real
servers, not the test client:

1. generates an N × C CSV (floats, ints, categories, an id, a date, yes/no, a float with 5 %
   missing) into a temporary folder (not part of the measured time);
2. migrates a fresh data folder and starts `mlmanager web` (gunicorn) and `mlmanager worker` as
   subprocesses bound to 127.0.0.1;
3. signs up a user and creates an API token over HTTP;
4. uploads the file with curl (which streams it) and polls the dataset until it is ready, while a
   background thread samples the RSS of both process trees every 0.1 s from /proc;
5. prints the figures and PASS/FAIL against the goals, stops both servers and removes the
   temporary folder.

Run from the repository root:

    .venv/bin/python bench/upload_profile.py                 # 1 000 000 × 20
    .venv/bin/python bench/upload_profile.py --rows 100000   # a quick check

Linux only (reads /proc). No network beyond 127.0.0.1; no dependencies beyond the app's own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from machine import cpu_model, total_memory_gb

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

GOAL_END_TO_END_S = 30.0
GOAL_WEB_RSS_MB = 300.0

SAMPLE_INTERVAL_S = 0.1
POLL_INTERVAL_S = 0.2
SERVER_START_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
GENERATE_BATCH_ROWS = 250_000

# One group of 20 columns in the mix the issue describes; wider files repeat it.
COLUMN_KINDS = (
    *(["float"] * 8),
    *(["int"] * 4),
    *(["category"] * 4),
    "id",
    "date",
    "yes_no",
    "float_missing",
)
CATEGORY_SIZES = (3, 5, 12, 40)
MISSING_SHARE = 0.05

MB = 1024 * 1024


# --- The CSV --------------------------------------------------------------------------------


def _column_names(columns: int) -> list[tuple[str, str]]:
    """(name, kind) for each column: the 20-column mix, repeated with a suffix when wider."""
    names: list[tuple[str, str]] = []
    counters: dict[str, int] = {}
    for index in range(columns):
        kind = COLUMN_KINDS[index % len(COLUMN_KINDS)]
        counters[kind] = counters.get(kind, 0) + 1
        names.append((f"{kind}_{counters[kind]:02d}", kind))
    return names


def _column(
    kind: str, number: int, rows: int, first_row: int, rng: np.random.Generator
) -> pa.Array:
    if kind == "float":
        values = rng.normal(loc=number * 10.0, scale=1.0 + number, size=rows)
        return pa.array(np.round(values, 4))
    if kind == "int":
        return pa.array(rng.integers(0, 10 ** min(1 + number, 12), size=rows))
    if kind == "category":
        size = CATEGORY_SIZES[(number - 1) % len(CATEGORY_SIZES)]
        vocabulary = pa.array([f"cat{number}_{value}" for value in range(size)])
        return pc.take(vocabulary, pa.array(rng.integers(0, size, size=rows)))
    if kind == "id":
        # Unique across the file: a shuffled range per batch, offset by the batch's first row.
        numbers = pc.cast(pa.array(rng.permutation(rows) + first_row), pa.string())
        return pc.binary_join_element_wise("ID-", pc.utf8_lpad(numbers, width=9, padding="0"), "")
    if kind == "date":
        days = np.datetime64("2015-01-01") + rng.integers(0, 3650, size=rows)
        return pa.array(days.astype("datetime64[D]"))
    if kind == "yes_no":
        return pc.take(pa.array(["no", "yes"]), pa.array(rng.integers(0, 2, size=rows)))
    if kind == "float_missing":
        values = np.round(rng.normal(loc=50.0, scale=15.0, size=rows), 3)
        return pa.array(values, mask=rng.random(rows) < MISSING_SHARE)
    raise ValueError(f"unknown column kind {kind!r}")


def generate_csv(path: Path, *, rows: int, columns: int, seed: int = 20) -> None:
    """Writes the CSV in batches (bounded memory), unquoted like most real exports."""
    rng = np.random.default_rng(seed)
    names = _column_names(columns)
    numbers = [int(name.rsplit("_", 1)[1]) for name, _kind in names]
    writer: pa_csv.CSVWriter | None = None
    try:
        for first_row in range(0, rows, GENERATE_BATCH_ROWS):
            count = min(GENERATE_BATCH_ROWS, rows - first_row)
            arrays = [
                _column(kind, number, count, first_row, rng)
                for (_name, kind), number in zip(names, numbers, strict=True)
            ]
            batch = pa.table(arrays, names=[name for name, _kind in names])
            if writer is None:
                writer = pa_csv.CSVWriter(
                    str(path), batch.schema, write_options=pa_csv.WriteOptions(quoting_style="none")
                )
            writer.write_table(batch)
    finally:
        if writer is not None:
            writer.close()


# --- Memory sampling from /proc -------------------------------------------------------------


def _status_kb(pid: int, *keys: str) -> dict[str, int]:
    """Values (kB) of the given /proc/<pid>/status keys; empty if the process is gone."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _sep, value = line.partition(":")
                if key in keys:
                    found[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    return found


def _children(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return children
    for task in tasks:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            children.extend(
                int(child)
                for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            )
    return children


def process_tree(root: int) -> list[int]:
    """The root and all its descendants, root first."""
    tree, pending = [], [root]
    while pending:
        pid = pending.pop(0)
        tree.append(pid)
        pending.extend(_children(pid))
    return tree


@dataclass
class TreeMemory:
    """Peak RSS seen for one process tree: per process and for the tree's sum."""

    root: int
    peak_kb: dict[int, int] = field(default_factory=dict)
    hwm_kb: dict[int, int] = field(default_factory=dict)
    peak_total_kb: int = 0
    baseline_total_kb: int = 0
    baseline_kb: dict[int, int] = field(default_factory=dict)

    def sample(self) -> None:
        total = 0
        for pid in process_tree(self.root):
            rss = _status_kb(pid, "VmRSS").get("VmRSS")
            if rss is None:
                continue
            total += rss
            self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), rss)
            self.baseline_kb.setdefault(pid, rss)
        if not self.baseline_total_kb:
            self.baseline_total_kb = total
        self.peak_total_kb = max(self.peak_total_kb, total)

    def read_high_water_marks(self) -> None:
        """VmHWM (the kernel's own peak RSS) of every process seen: catches spikes between
        samples. Must run while the processes are still alive."""
        for pid in {*self.peak_kb, *process_tree(self.root)}:
            hwm = _status_kb(pid, "VmHWM").get("VmHWM")
            if hwm is not None:
                self.hwm_kb[pid] = hwm

    def children_peak_kb(self) -> int:
        """The largest peak among the root's descendants (gunicorn's workers)."""
        return max((kb for pid, kb in self.peak_kb.items() if pid != self.root), default=0)

    def children_hwm_kb(self) -> int:
        return max((kb for pid, kb in self.hwm_kb.items() if pid != self.root), default=0)


class MemorySampler(threading.Thread):
    """Samples the given trees every `interval` seconds until stopped."""

    def __init__(self, trees: list[TreeMemory], interval: float = SAMPLE_INTERVAL_S) -> None:
        super().__init__(name="memory-sampler", daemon=True)
        self.trees = trees
        self.interval = interval
        self._stop_event = threading.Event()
        self.samples = 0

    def run(self) -> None:
        while not self._stop_event.is_set():
            for tree in self.trees:
                tree.sample()
            self.samples += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        for tree in self.trees:  # one last sample at the very end
            tree.sample()


# --- HTTP --------------------------------------------------------------------------------------

# No proxies: everything goes to 127.0.0.1, whatever http_proxy says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.token = ""

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")

    def expect(self, method: str, path: str, body: dict[str, Any] | None, status: int) -> Any:
        got, payload = self.request(method, path, body)
        if got != status:
            raise BenchError(f"{method} {path}: expected HTTP {status}, got {got}: {payload}")
        return payload


class BenchError(RuntimeError):
    pass


def warm_up(api: Api, requests: int = 16) -> None:
    """Concurrent authenticated requests, so that every gunicorn worker has most likely loaded
    the whole app before the measurement starts (workers import views on first use)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _index: api.request("GET", "/api/v1/me/"), range(requests)))


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As gunicorn binds: connections of a previous run in TIME_WAIT do not block the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def sign_up(api: Api, account: dict[str, str], data_dir: Path) -> None:
    """Sign up over the API, activate the account, and keep a token in `api`.

    Sign-up answers 202 and e-mails an activation link; the servers print e-mails to their log.
    The benchmark activates through the same service the link's page calls, in a
    `manage.py shell` on the servers' data folder, instead of reading that log."""
    api.expect("POST", "/api/v1/auth/signup/", account, 202)
    activate = (
        "from mlmanager.accounts import services; from mlmanager.accounts.models import User; "
        f"services.user_activate(user=User.objects.get(email={account['email'].lower()!r}))"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", activate],
        cwd=REPO,
        env=server_environment(data_dir, 0, debug=False),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"activating the account failed:\n{done.stdout}\n{done.stderr}")
    credentials = {"email": account["email"], "password": account["password"], "name": "bench"}
    api.token = api.expect("POST", "/api/v1/auth/token/", credentials, 201)["token"]


def wait_for_web(url: str, process: subprocess.Popen[bytes], timeout: float) -> float:
    """Polls until the web server answers; returns the seconds it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise BenchError(f"the web server exited with code {process.returncode}")
        try:
            with _OPENER.open(url, timeout=2) as response:
                if response.status < 500:
                    return time.perf_counter() - started
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"the web server did not answer {url} within {timeout:.0f} s")


# --- Servers -------------------------------------------------------------------------------------


def _mlmanager(*arguments: str) -> list[str]:
    script = BIN / "mlmanager"
    if script.exists():
        return [str(script), *arguments]
    return [sys.executable, "-m", "mlmanager.cli", *arguments]


def server_environment(data_dir: Path, port: int, *, debug: bool) -> dict[str, str]:
    env = dict(os.environ)
    # A fresh SQLite database in the data folder, never one configured in the shell.
    env.pop("DATABASE_URL", None)
    env.update(
        MLMANAGER_DATA_DIR=str(data_dir),
        PORT=str(port),
        HOST="127.0.0.1",
        MLMANAGER_MAX_UPLOAD_MB="2000",
        MLMANAGER_SIGNUP_OPEN="true",
        # One benchmark user sends far more than a user's default limits (1 200 API calls and
        # 6 000 predictions a minute): limits high enough never to refuse, so their counting
        # is still measured.
        MLMANAGER_API_RATE="100000000/min",
        MLMANAGER_PREDICT_RATE="100000000/min",
        MLMANAGER_DEBUG="true" if debug else "false",
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_server(arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        # Own session: Ctrl-C in this terminal does not reach the servers, and stop_server can
        # signal exactly the processes started here (the group) and nothing else.
        return subprocess.Popen(
            arguments,
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL after the grace period."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # Workers outliving their master (the group is ours alone).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# --- Upload and wait ------------------------------------------------------------------------


@dataclass
class Outcome:
    dataset: dict[str, Any]
    job: dict[str, Any]
    upload_s: float
    processing_s: float
    end_to_end_s: float
    curl_http_code: int


def upload_and_wait(api: Api, csv_path: Path, *, timeout: float) -> Outcome:
    body_file = csv_path.with_name("upload-response.json")
    command = [
        "curl",
        "-sS",
        "--noproxy",
        "*",
        # No "Expect: 100-continue" round trip: browsers do not send one either.
        "-H",
        "Expect:",
        "-H",
        f"Authorization: Bearer {api.token}",
        "-F",
        f"file=@{csv_path}",
        "-F",
        "name=bench",
        "-o",
        str(body_file),
        "-w",
        "%{http_code}",
        f"{api.base_url}/api/v1/datasets/",
    ]
    t0 = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    t_upload = time.perf_counter()
    if result.returncode != 0:
        raise BenchError(f"curl failed ({result.returncode}): {result.stderr.strip()}")
    http_code = int(result.stdout.strip() or 0)
    response_text = body_file.read_text(errors="replace") if body_file.exists() else ""
    if http_code != 202:
        raise BenchError(f"upload: expected HTTP 202, got {http_code}: {response_text[:2000]}")
    created = json.loads(response_text)
    dataset_id = created["id"]

    deadline = t0 + timeout
    while True:
        status, dataset = api.request("GET", f"/api/v1/datasets/{dataset_id}/")
        if status != 200:
            raise BenchError(f"GET dataset {dataset_id}: HTTP {status}: {dataset}")
        if dataset["status"] in ("ready", "failed"):
            break
        if time.perf_counter() > deadline:
            raise BenchError(f"dataset {dataset_id} not ready after {timeout:.0f} s: {dataset}")
        time.sleep(POLL_INTERVAL_S)
    t_ready = time.perf_counter()

    job: dict[str, Any] = {}
    job_id = dataset.get("job") or created.get("job")
    if job_id:
        job = api.expect("GET", f"/api/v1/jobs/{job_id}/", None, 200)
    return Outcome(
        dataset=dataset,
        job=job,
        upload_s=t_upload - t0,
        processing_s=t_ready - t_upload,
        end_to_end_s=t_ready - t0,
        curl_http_code=http_code,
    )


# --- Report ------------------------------------------------------------------------------------


def machine_info() -> list[tuple[str, str]]:
    import pandas

    cpu = cpu_model()
    memory = total_memory_gb()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        ("nproc", f"{usable} (os.cpu_count {os.cpu_count()})"),
        ("cpu", cpu),
        ("memory", memory),
        ("kernel", platform.release()),
        ("python", platform.python_version()),
        ("pandas", pandas.__version__),
        ("pyarrow", pa.__version__),
        ("numpy", np.__version__),
        ("web workers", os.environ.get("WEB_CONCURRENCY", "2") + " (WEB_CONCURRENCY), gthread×4"),
    ]


def worker_timeline(log: Path) -> list[str]:
    """The app's own log lines from the worker, timed from the job's start: where time goes."""
    lines: list[str] = []
    start: datetime | None = None
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        parts = line.split(" ", 4)
        if len(parts) < 5 or not parts[3].startswith("mlmanager."):
            continue
        try:
            stamp = datetime.strptime(f"{parts[0]} {parts[1]}", "%Y-%m-%d %H:%M:%S,%f")
        except ValueError:
            continue
        start = start or stamp
        message = parts[4] if len(parts[4]) <= 110 else parts[4][:109] + "…"
        lines.append(f"+{(stamp - start).total_seconds():6.2f} s  {parts[3]}: {message}")
    return lines


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _seconds(start: str | None, end: str | None) -> float | None:
    first, last = _parse_time(start), _parse_time(end)
    return (last - first).total_seconds() if first and last else None


def _fmt_s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _mb(kb: int) -> float:
    return kb / 1024


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _value in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


def report(
    *,
    rows: int,
    columns: int,
    file_bytes: int,
    outcome: Outcome,
    web: TreeMemory,
    worker: TreeMemory,
    samples: int,
    timeline: list[str],
) -> bool:
    job = outcome.job
    queue_wait = _seconds(job.get("created_at"), job.get("started_at"))
    job_run = _seconds(job.get("started_at"), job.get("finished_at"))

    web_worker_peak = _mb(web.children_peak_kb())
    web_worker_hwm = _mb(web.children_hwm_kb())
    web_process_peak = max(web_worker_peak, web_worker_hwm)
    worker_peak = _mb(max(worker.peak_kb.values(), default=0))
    worker_hwm = _mb(max(worker.hwm_kb.values(), default=0))

    time_ok = outcome.end_to_end_s < GOAL_END_TO_END_S
    memory_ok = web_process_peak < GOAL_WEB_RSS_MB

    print("\nJob")
    print_table(
        [
            ("dataset", f"#{outcome.dataset['id']} {outcome.dataset['status']}"),
            (
                "rows × columns (profile)",
                f"{outcome.dataset.get('row_count')} × {outcome.dataset.get('column_count')}",
            ),
            ("job", f"#{job.get('id')} {job.get('status')}"),
            ("queued -> started (s)", _fmt_s(queue_wait)),
            ("started -> finished (s)", _fmt_s(job_run)),
        ]
    )
    for line in job.get("log") or []:
        print(f"    log: {line}")
    if timeline:
        print("\nWorker log (app lines)")
        for line in timeline:
            print(f"    {line}")

    print("\nRSS per process, MB (at start -> sampled peak, VmHWM)")
    for role, tree in (("web", web), ("worker", worker)):
        for pid, kb in sorted(tree.peak_kb.items()):
            kind = "master" if role == "web" and pid == tree.root else "process"
            start, hwm = _mb(tree.baseline_kb.get(pid, 0)), _mb(tree.hwm_kb.get(pid, 0))
            print(f"    {role} {kind} {pid}: {start:.0f} -> {_mb(kb):.0f}, HWM {hwm:.0f}")
    print(f"Memory samples taken: {samples} (every {SAMPLE_INTERVAL_S} s)")

    print("\nResult")
    print_table(
        [
            ("rows", f"{rows:,}"),
            ("columns", str(columns)),
            ("file size (MB)", f"{file_bytes / MB:.1f}"),
            ("upload time (s)", f"{outcome.upload_s:.2f}"),
            ("processing time (s)", f"{outcome.processing_s:.2f}"),
            ("end-to-end (s)", f"{outcome.end_to_end_s:.2f}"),
            (
                "web peak RSS, largest worker (MB)",
                f"{web_worker_peak:.0f} sampled / {web_worker_hwm:.0f} VmHWM",
            ),
            (
                "web peak RSS, whole tree (MB)",
                f"{_mb(web.peak_total_kb):.0f} (at start {_mb(web.baseline_total_kb):.0f}, "
                f"{len(web.peak_kb)} processes)",
            ),
            ("worker peak RSS (MB)", f"{worker_peak:.0f} sampled / {worker_hwm:.0f} VmHWM"),
            (
                f"goal: end-to-end < {GOAL_END_TO_END_S:.0f} s",
                f"{'PASS' if time_ok else 'FAIL'} ({outcome.end_to_end_s:.1f} s)",
            ),
            (
                f"goal: web process < {GOAL_WEB_RSS_MB:.0f} MB",
                f"{'PASS' if memory_ok else 'FAIL'} ({web_process_peak:.0f} MB)",
            ),
        ]
    )
    return time_ok and memory_ok


# --- Main ----------------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (default 1 000 000)")
    parser.add_argument("--columns", type=int, default=20, help="columns (default 20)")
    parser.add_argument("--port", type=int, default=8765, help="web port on 127.0.0.1")
    parser.add_argument(
        "--csv", type=Path, help="upload this CSV instead of generating one (kept as is)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated CSV and logs")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for the dataset (900)"
    )
    parser.add_argument(
        "--debug", action="store_true", help="run the servers with MLMANAGER_DEBUG=true"
    )
    arguments = parser.parse_args(argv)
    if arguments.rows < 1 or arguments.columns < 1:
        parser.error("--rows and --columns must be positive")
    return arguments


@contextlib.contextmanager
def servers(
    work: Path, port: int, *, debug: bool
) -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    data_dir = work / "data"
    env = server_environment(data_dir, port, debug=debug)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if migrate.returncode != 0:
        raise BenchError(f"migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
    started: list[subprocess.Popen[bytes]] = []
    try:
        web = start_server(_mlmanager("web"), env, work / "web.log")
        started.append(web)
        worker = start_server(_mlmanager("worker"), env, work / "worker.log")
        started.append(worker)
        yield web, worker
    finally:
        for process in started:
            stop_server(process)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if not port_is_free(arguments.port):
        print(f"Port {arguments.port} is in use; pass --port.", file=sys.stderr)
        return 2
    if shutil.which("curl") is None:
        print("curl is needed for the upload.", file=sys.stderr)
        return 2

    print("Machine")
    print_table(machine_info())

    work = Path(tempfile.mkdtemp(prefix="mlmanager-bench-"))
    try:
        if arguments.csv:
            csv_path = arguments.csv.resolve()
            rows, columns = arguments.rows, arguments.columns
            print(f"\nUsing {csv_path} (--rows/--columns only label the report)")
        else:
            csv_path = work / f"bench-{arguments.rows}x{arguments.columns}.csv"
            rows, columns = arguments.rows, arguments.columns
            started = time.perf_counter()
            generate_csv(csv_path, rows=rows, columns=columns)
            print(
                f"\nGenerated {rows:,} × {columns} CSV: {csv_path.stat().st_size / MB:.1f} MB "
                f"in {time.perf_counter() - started:.1f} s (not measured)"
            )
        file_bytes = csv_path.stat().st_size

        base_url = f"http://127.0.0.1:{arguments.port}"
        with servers(work, arguments.port, debug=arguments.debug) as (web, worker):
            ready_after = wait_for_web(f"{base_url}/accounts/login/", web, SERVER_START_TIMEOUT_S)
            print(f"Servers up (web answered after {ready_after:.1f} s); logs in {work}")

            api = Api(base_url)
            email = f"bench-{secrets.token_hex(4)}@example.com"
            password = secrets.token_urlsafe(18)
            signup = {"email": email, "password": password, "name": "Bench Mark"}
            sign_up(api, signup, work / "data")

            warm_up(api)
            web_memory, worker_memory = TreeMemory(web.pid), TreeMemory(worker.pid)
            sampler = MemorySampler([web_memory, worker_memory])
            sampler.start()
            try:
                print("Uploading and waiting for the profile…", flush=True)
                outcome = upload_and_wait(api, csv_path, timeout=arguments.timeout)
            finally:
                sampler.stop()
                web_memory.read_high_water_marks()
                worker_memory.read_high_water_marks()

            if outcome.dataset["status"] != "ready":
                print(f"\nDataset failed: {outcome.dataset.get('error')}", file=sys.stderr)
                for line in outcome.job.get("log") or []:
                    print(f"    log: {line}", file=sys.stderr)
                print(f"\nWorker log (tail):\n{tail(work / 'worker.log')}", file=sys.stderr)
                return 1

            passed = report(
                rows=rows,
                columns=columns,
                file_bytes=file_bytes,
                outcome=outcome,
                web=web_memory,
                worker=worker_memory,
                samples=sampler.samples,
                timeline=worker_timeline(work / "worker.log"),
            )
        print(
            f"\n{'PASS' if passed else 'FAIL'}: goals are end-to-end < {GOAL_END_TO_END_S:.0f} s "
            f"and web process < {GOAL_WEB_RSS_MB:.0f} MB."
        )
        return 0 if passed else 1
    except BenchError as error:
        print(f"\nBenchmark error: {error}", file=sys.stderr)
        for name in ("web.log", "worker.log"):
            print(f"\n{name} (tail):\n{tail(work / name)}", file=sys.stderr)
        return 2
    finally:
        if arguments.keep:
            for path in work.iterdir():
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
            print(f"Kept the CSV and logs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
