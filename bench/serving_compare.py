"""Benchmark: MLManager's predict endpoint served by two code trees, a baseline and the current one.

Issue 13 asks that a refactoring leave serving no slower: "single-row p50 within 10 % of today's,
same run". This script measures exactly that, all on 127.0.0.1:

1. trains one model once through the platform with the baseline tree's code (bench/serving.py's
   table, upload and training: a fresh data folder, `mlmanager web` and `mlmanager worker`, the
   search capped at a few candidates); both servers are stopped once the version exists;
2. serves that version's signed artifact with `mlmanager web` (the same number of worker
   processes) from each tree in turn, in the order baseline, current, current, baseline
   (A B B A: a drift of the machine's load over the run falls on both trees alike), each round on
   a fresh copy of its tree's data folder, so that no round sees another's prediction log;
3. in each round: checks which code the server runs, checks its probabilities against the
   in-process model's, warms it up, then sends 1-row requests at concurrency 1 and 16 and 100-row
   requests at concurrency 1 (bench/serving.py's client and its cases);
4. prints p50, p99 and req/s per tree (the mean of its two rounds' p50 and p99; req/s over both)
   and current ÷ baseline, and judges: the current single-row p50 at concurrency 1 at most 10 %
   above the baseline's.

Why the baseline trains, and how both trees read the data: new code must read what old code
wrote (a deployment upgrades with `migrate` and keeps serving the models it trained before), old
code need not read what new code writes. So the baseline trains, and serves copies of its own data
folder as they are (its schema, made by its own migrations); the current tree serves copies
migrated forward by its own `manage.py migrate` (a no-op when both trees have the same migrations).
Both serve the same artifact file byte for byte (same signature; the secret key it is signed with
lives in the data folder). Training once in each tree instead would compare two different models:
the search is bounded by time, so not reproducible.

How a tree's code runs: the same .venv, with `PYTHONPATH=<tree>` and the tree as the working
directory. The project is installed editable from the main checkout, but setuptools' editable
finder comes after sys.path, so PYTHONPATH wins; `python -m gunicorn` puts its working directory
first on sys.path, so that must be the tree too. bench/serving.py and bench/upload_profile.py start
servers and `manage.py` from their module's REPO with os.environ; `code_tree()` points both at a
tree for the duration, so their functions are reused unchanged. Each round then asks the running
server's own environment (its /proc environ, working directory and interpreter) which `mlmanager`
and `config` Python imports there, and refuses to measure a server that runs another tree's code.

    git clone -q . ../baseline-serving && git -C ../baseline-serving checkout -q b06ab1f
    .venv/bin/python bench/serving_compare.py --baseline ../baseline-serving
    .venv/bin/python bench/serving_compare.py --baseline ../baseline-serving --quick   # smoke

Exit codes: 0 the current single-row p50 is within the limit, 1 it is not or requests failed,
2 the comparison could not run (no baseline tree, training failed, a server not answering or
running the wrong code). Every server it starts is stopped, also on errors. Linux only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import serving
import upload_profile as kit
from upload_profile import BenchError, print_table

REPO = serving.REPO
P50_TOLERANCE = 0.10  # the current single-row p50 (concurrency 1) ≤ (1 + this) × the baseline's
ORDER = ("baseline", "current", "current", "baseline")  # A B B A
CASES = (  # (rows per request, concurrency)
    (serving.SMALL_ROWS, 1),
    (serving.SMALL_ROWS, 16),
    (serving.MEDIUM_ROWS, 1),
)
GATE_CASE = (serving.SMALL_ROWS, 1)
DEFAULT_REQUESTS = (5000, 100)  # per 1-row case: full run / --quick
MEDIUM_SHARE = 5  # a 100-row case sends requests // this (1 000 in a full run)
DEFAULT_PORT = 18090  # apart from serving.py's 18080-18082, so both can be run in one session
WEB_START_TIMEOUT_S = 60.0
PROBE = "import config, mlmanager; print(mlmanager.__file__); print(config.__file__)"


# --- Code trees ----------------------------------------------------------------------------------


@dataclass
class Tree:
    name: str  # "baseline" or "current"
    path: Path
    commit: str
    changed_files: int  # uncommitted changes (git status --porcelain lines)
    data: Path | None = None  # the data folder every round of this tree starts from a copy of


def describe_tree(name: str, path: Path) -> Tree:
    def git(*arguments: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(path), *arguments], capture_output=True, text=True, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else "?"

    status = git("status", "--porcelain")
    changed = len(status.splitlines()) if status != "?" else -1
    return Tree(name, path, git("rev-parse", "--short", "HEAD"), changed)


def check_baseline(path: Path) -> Path:
    tree = path.resolve()
    if not (tree / "manage.py").is_file() or not (tree / "mlmanager" / "__init__.py").is_file():
        raise BenchError(f"{path} is not a checkout of MLManager (no manage.py, no mlmanager/)")
    if tree == REPO.resolve():
        raise BenchError("--baseline is this checkout itself: pass a clone of the baseline commit")
    return tree


@contextlib.contextmanager
def code_tree(tree: Path) -> Iterator[None]:
    """What bench/serving.py and bench/upload_profile.py start in here (servers, `manage.py`)
    runs `tree`'s code: both start it from their module's REPO with os.environ."""
    saved = kit.REPO, serving.REPO, os.environ.get("PYTHONPATH")
    kit.REPO = serving.REPO = tree
    os.environ["PYTHONPATH"] = str(tree)
    try:
        yield
    finally:
        kit.REPO, serving.REPO = saved[0], saved[1]
        if saved[2] is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved[2]


def migrations(tree: Path) -> set[str]:
    return {str(path.relative_to(tree)) for path in tree.glob("mlmanager/*/migrations/[0-9]*.py")}


def migrate(tree: Path, env: dict[str, str], log: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=tree, env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise BenchError(f"migrate with {tree}'s code failed:\n{result.stderr[-1500:]}")


def copy_data_folder(source: Path, target: Path) -> None:
    """A copy of a stopped platform's data folder (SQLite database, media, secret key); sockets
    a server left behind are not files to copy."""

    def sockets(folder: str, names: list[str]) -> list[str]:
        return [
            name
            for name in names
            if stat.S_ISSOCK(os.lstat(os.path.join(folder, name)).st_mode)
            or stat.S_ISFIFO(os.lstat(os.path.join(folder, name)).st_mode)
        ]

    shutil.copytree(source, target, ignore=sockets)


@dataclass
class ServedCode:
    """Which code a running server imports, asked of its own environment."""

    cwd: str
    pythonpath: str
    interpreter: str
    mlmanager: str
    config: str


def served_code(process: subprocess.Popen[bytes], tree: Path) -> ServedCode:
    """Runs the server's interpreter with the server's environment and working directory (read
    from /proc: `mlmanager web` execs gunicorn, so the process started is its master) and asks
    where `mlmanager` and `config` come from; both must be the tree's."""
    proc = Path(f"/proc/{process.pid}")
    try:
        environ = dict(
            item.split("=", 1)
            for item in (proc / "environ").read_bytes().decode().split("\0")
            if "=" in item
        )
        cwd = os.readlink(proc / "cwd")
        interpreter = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError as error:
        raise BenchError(f"cannot read the server's environment from {proc}: {error}") from error
    result = subprocess.run(
        [interpreter, "-c", PROBE], cwd=cwd, env=environ, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or len(lines) < 2:
        raise BenchError(f"the code probe failed in the server's environment: {result.stderr}")
    code = ServedCode(cwd, environ.get("PYTHONPATH", ""), interpreter, lines[-2], lines[-1])
    for module in (code.mlmanager, code.config):
        if not Path(module).resolve().is_relative_to(tree):
            raise BenchError(f"the server for {tree} imports {module}: another tree's code")
    return code


# --- Training, once, with the baseline's code ------------------------------------------------


def train_in(
    tree: Tree, work: Path, arguments: argparse.Namespace, table: Any, columns: list[str]
) -> tuple[serving.TrainedVersion, str]:
    """Trains the model on a fresh data folder with `tree`'s code; returns the version and the
    API token (kept in the data folder's database, so every copy accepts it)."""
    data = work / f"{tree.name}-data"
    parquet = work / "customers.parquet"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), parquet)
    with code_tree(tree.path):
        env = kit.server_environment(data, arguments.port, debug=False)
        env.update(
            WEB_CONCURRENCY=str(arguments.workers),
            MLMANAGER_TRAINING_MAX_CANDIDATES=str(arguments.max_candidates),
        )
        migrate(tree.path, env, work / f"{tree.name}-migrate.log")
        processes: list[subprocess.Popen[bytes]] = []
        with serving.started(processes):
            web = kit.start_server(kit._mlmanager("web"), env, work / "training-web.log")
            processes.append(web)
            worker = kit.start_server(kit._mlmanager("worker"), env, work / "training-worker.log")
            processes.append(worker)
            kit.wait_for_web(
                f"http://127.0.0.1:{arguments.port}/accounts/login/", web, WEB_START_TIMEOUT_S
            )
            code = served_code(web, tree.path)
            print(f"  {tree.name}'s web server imports {code.mlmanager}", flush=True)
            api = kit.Api(f"http://127.0.0.1:{arguments.port}")
            credentials = {
                "email": "bench-compare@example.com",
                "password": secrets.token_urlsafe(18),
                "name": "Bench Compare",
            }
            kit.sign_up(api, credentials, data)
            version = serving.train_on_platform(
                api, parquet, columns, budget_s=serving.DEFAULT_BUDGET_S, env=env
            )
    tree.data = data
    return version, api.token


# --- Rounds ----------------------------------------------------------------------------------


@dataclass
class Round:
    number: int
    tree: str
    code: ServedCode | None = None
    start_s: float | None = None
    match: float | None = None  # largest probability difference to the in-process model
    loads: list[serving.Load] = field(default_factory=list)


def serve_round(
    number: int,
    tree: Tree,
    *,
    work: Path,
    arguments: argparse.Namespace,
    machine_id: int,
    token: str,
    requests: serving.Requests,
    bodies: dict[int, list[bytes]],
    model: Any,
) -> Round:
    """One tree's `mlmanager web` on a fresh copy of its data folder: check, warm up, measure."""
    assert tree.data is not None
    label = f"{tree.name} #{number}"
    served = Round(number, tree.name)
    data = work / f"round-{number}-{tree.name}"
    copy_data_folder(tree.data, data)
    if not kit.port_is_free(arguments.port):
        raise BenchError(f"port {arguments.port} is still in use before round {number}")
    processes: list[subprocess.Popen[bytes]] = []
    with serving.started(processes):
        with code_tree(tree.path):
            env = kit.server_environment(data, arguments.port, debug=False)
            env["WEB_CONCURRENCY"] = str(arguments.workers)
            web = kit.start_server(kit._mlmanager("web"), env, work / f"round-{number}.log")
        processes.append(web)
        served.start_s = kit.wait_for_web(
            f"http://127.0.0.1:{arguments.port}/accounts/login/", web, WEB_START_TIMEOUT_S
        )
        served.code = served_code(web, tree.path)
        print(
            f"\nRound {number}: {tree.name} ({tree.path}, {tree.commit}) imports "
            f"{served.code.mlmanager}",
            flush=True,
        )
        path = f"/api/v1/models/{machine_id}/predict/"
        headers = {"Authorization": f"Bearer {token}"}
        status, answer = serving.post_json(arguments.port, path, bodies[serving.SMALL_ROWS][0],
                                           headers)  # fmt: skip
        if status != 200:
            raise BenchError(f"{label}: the predict endpoint answered HTTP {status}: {answer}")
        served.match = serving.check_answers(
            label, arguments.port, path, headers, "rows", requests, model,
            serving.mlmanager_probabilities,
        )  # fmt: skip
        serving.warm_up(arguments.port, path, headers, bodies[serving.SMALL_ROWS])
        for rows, concurrency in CASES:
            load = serving.run_load(
                server=label,
                port=arguments.port,
                path=path,
                headers=headers,
                bodies=bodies[rows],
                rows=rows,
                requests=arguments.requests if rows == serving.SMALL_ROWS else arguments.medium,
                concurrency=concurrency,
            )
            served.loads.append(load)
            serving._print_load(load)
    return served


# --- Report --------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One tree's figures for one case over its rounds."""

    tree: str
    rows: int
    concurrency: int
    p50_ms: float | None  # mean of the rounds' p50s
    p99_ms: float | None  # mean of the rounds' p99s
    req_per_s: float  # answered requests of all rounds / their wall time
    round_p50_ms: list[float | None]
    errors: int


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def summarise(rounds: list[Round], tree: str, rows: int, concurrency: int) -> Figures:
    loads = [
        load
        for served in rounds
        if served.tree == tree
        for load in served.loads
        if load.rows == rows and load.concurrency == concurrency
    ]
    wall = sum(load.wall_s for load in loads)
    return Figures(
        tree=tree,
        rows=rows,
        concurrency=concurrency,
        p50_ms=_mean([load.p50_ms for load in loads]),
        p99_ms=_mean([load.p99_ms for load in loads]),
        req_per_s=sum(load.ok for load in loads) / wall if wall else 0.0,
        round_p50_ms=[load.p50_ms for load in loads],
        errors=sum(load.errors for load in loads),
    )


def print_summary(figures: dict[tuple[str, int, int], Figures]) -> list[dict[str, Any]]:
    """The table, and current ÷ baseline per case (returned for the JSON)."""
    ratios = []
    print(
        f"\n  {'case':<8} {'conc':>4}  {'tree':<18} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}  "
        "p50 ms per round (in run order)"
    )
    for rows, concurrency in CASES:
        label = serving.Load("", rows, 1, 0).label
        for tree in ("baseline", "current"):
            item = figures[tree, rows, concurrency]
            failed = f"  {item.errors} FAILED" if item.errors else ""
            print(
                f"  {label:<8} {concurrency:>4}  {tree:<18} {serving._ms(item.p50_ms):>8} "
                f"{serving._ms(item.p99_ms):>8} {item.req_per_s:>8.1f}  "
                + " / ".join(serving._ms(value) for value in item.round_p50_ms)
                + failed
            )
        base, mine = figures["baseline", rows, concurrency], figures["current", rows, concurrency]
        ratio = {
            "rows": rows,
            "concurrency": concurrency,
            "p50": serving._ratio(mine.p50_ms, base.p50_ms),
            "p99": serving._ratio(mine.p99_ms, base.p99_ms),
            "req_per_s": serving._ratio(mine.req_per_s, base.req_per_s),
        }
        ratios.append(ratio)
        print(
            f"  {label:<8} {concurrency:>4}  {'current÷baseline':<18} "
            f"{serving._times(ratio['p50']):>8} {serving._times(ratio['p99']):>8} "
            f"{serving._times(ratio['req_per_s']):>8}"
        )
    return ratios


def drift_note(figures: Figures) -> str:
    """How far one tree's two rounds of the same case lie apart: the noise a ratio sits in."""
    values = [value for value in figures.round_p50_ms if value is not None]
    if len(values) < 2 or not min(values):
        return ""
    spread = max(values) / min(values) - 1
    return f"{figures.tree}'s rounds {spread:.0%} apart"


def machine_info() -> list[tuple[str, str]]:
    # serving.py's, less the MLflow venv this comparison does not use.
    return [
        (name, value)
        for name, value in serving.machine_info(Path(sys.executable))
        if name != "MLflow python"
    ]


def save(
    path: Path,
    arguments: argparse.Namespace,
    trees: list[Tree],
    version: serving.TrainedVersion,
    rounds: list[Round],
    figures: dict[tuple[str, int, int], Figures],
    ratios: list[dict[str, Any]],
    verdict: dict[str, Any],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model = asdict(version)
    model.pop("key_hex")
    payload = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "arguments": {key: str(value) for key, value in vars(arguments).items()},
        "machine": dict(machine_info()),
        "trees": [asdict(tree) for tree in trees],
        "model": model,
        "rounds": [asdict(served) for served in rounds],
        "figures": [asdict(item) for item in figures.values()],
        "ratios": ratios,
        "verdict": verdict,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


# --- Main ----------------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--baseline", type=Path, required=True, help="a checkout of the baseline commit"
    )
    parser.add_argument("--quick", action="store_true", help="small counts, a smoke run")
    parser.add_argument(
        "--requests",
        type=int,
        help=f"requests per 1-row case (5000; quick 100); a 100-row case sends ÷{MEDIUM_SHARE}",
    )
    parser.add_argument(
        "--workers", type=int, default=serving.DEFAULT_WORKERS, help="web worker processes (2)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the servers' port ({DEFAULT_PORT})"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="results as JSON (default var/bench/serving-compare-<time>.json)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data folders and logs")
    arguments = parser.parse_args(argv)
    full, quick = DEFAULT_REQUESTS
    if arguments.requests is None:
        arguments.requests = quick if arguments.quick else full
    full, quick = serving.DEFAULTS["max_candidates"]
    arguments.max_candidates = quick if arguments.quick else full
    if arguments.requests < 1 or arguments.workers < 1:
        parser.error("--requests and --workers must be positive")
    arguments.medium = max(arguments.requests // MEDIUM_SHARE, min(arguments.requests, 20))
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    signal.signal(signal.SIGTERM, serving._stop_on_sigterm)
    print("Machine")
    print_table(machine_info())
    try:
        baseline = describe_tree("baseline", check_baseline(arguments.baseline))
        if not kit.port_is_free(arguments.port):
            raise BenchError(f"port {arguments.port} is in use; pass --port")
        if shutil.which("curl") is None:
            raise BenchError("curl is needed for the upload")
    except BenchError as error:
        print(f"\nBenchmark error: {error}", file=sys.stderr)
        return 2
    current = describe_tree("current", REPO.resolve())
    work = Path(tempfile.mkdtemp(prefix="mlmanager-serving-compare-"))
    began = time.perf_counter()
    try:
        return run(arguments, [baseline, current], work, began)
    except BenchError as error:
        print(f"\nBenchmark error: {error}", file=sys.stderr)
        for log in sorted(work.glob("*.log")):
            print(f"\n{log.name} (tail):\n{kit.tail(log, 20)}", file=sys.stderr)
        return 2
    finally:
        if arguments.keep:
            print(f"Kept the data folders and logs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(arguments: argparse.Namespace, trees: list[Tree], work: Path, began: float) -> int:
    baseline, current = trees
    print_table(
        [
            (tree.name, f"{tree.path} at {tree.commit}, {tree.changed_files} files changed")
            for tree in trees
        ]
    )
    only_current = sorted(migrations(current.path) - migrations(baseline.path))
    only_baseline = sorted(migrations(baseline.path) - migrations(current.path))
    if only_current or only_baseline:
        print(
            f"Migrations only in current: {', '.join(only_current) or 'none'}; only in baseline: "
            f"{', '.join(only_baseline) or 'none'}"
        )

    table = serving.make_table(serving.DEFAULT_ROWS)
    columns = serving.input_columns(table)
    requests = serving.draw_requests(table)
    bodies = {rows: requests.bodies(rows, "rows") for rows, _concurrency in CASES}
    print(
        f"\nTraining once with the baseline's code ({len(table):,} rows, at most "
        f"{arguments.max_candidates} candidates)…",
        flush=True,
    )
    version, token = train_in(baseline, work, arguments, table, columns)
    print(
        f"  model {version.machine_id} version {version.version}: {version.estimator}, "
        f"{version.metric} {serving._score(version.score)}, {version.candidates} candidates, "
        f"artifact {version.artifact_bytes / serving.MB:.1f} MB",
        flush=True,
    )
    # The current tree reads the baseline's data as an upgraded deployment would.
    assert baseline.data is not None
    current.data = work / "current-data"
    copy_data_folder(baseline.data, current.data)
    migrate(
        current.path,
        kit.server_environment(current.data, arguments.port, debug=False),
        work / "current-migrate.log",
    )

    from mlmanager.engine.training import load_model

    model = load_model(version.artifact, key=bytes.fromhex(version.key_hex),
                       signature=version.signature)  # fmt: skip
    print(
        f"\n{len(ORDER)} rounds ({' '.join(ORDER)}), {arguments.workers} web worker processes; "
        f"{arguments.requests} 1-row requests at concurrency 1 and 16, {arguments.medium} 100-row "
        "requests at concurrency 1",
        flush=True,
    )
    by_name = {tree.name: tree for tree in trees}
    rounds = []
    for number, name in enumerate(ORDER, start=1):
        rounds.append(
            serve_round(
                number,
                by_name[name],
                work=work,
                arguments=arguments,
                machine_id=version.machine_id,
                token=token,
                requests=requests,
                bodies=bodies,
                model=model,
            )
        )

    figures = {
        (tree.name, rows, concurrency): summarise(rounds, tree.name, rows, concurrency)
        for tree in trees
        for rows, concurrency in CASES
    }
    print(
        f"\nResults ({arguments.workers} web worker processes; per tree the mean of its two "
        "rounds' p50 and p99, req/s = answered requests / wall time over both rounds)"
    )
    ratios = print_summary(figures)

    base, mine = figures[("baseline", *GATE_CASE)], figures[("current", *GATE_CASE)]
    failed = sum(item.errors for item in figures.values())
    if base.p50_ms is None or mine.p50_ms is None:
        raise BenchError("the single-row case at concurrency 1 was not measured")
    limit = (1 + P50_TOLERANCE) * base.p50_ms
    within = mine.p50_ms <= limit
    noise = "; ".join(note for note in (drift_note(base), drift_note(mine)) if note)
    verdict = {
        "baseline_p50_ms": base.p50_ms,
        "current_p50_ms": mine.p50_ms,
        "ratio": mine.p50_ms / base.p50_ms,
        "limit_ms": limit,
        "within": within,
        "failed_requests": failed,
    }
    output = (
        arguments.output
        or serving.DEFAULT_OUTPUT_DIR / f"serving-compare-{datetime.now():%Y%m%d-%H%M%S}.json"
    )
    save(output, arguments, trees, version, rounds, figures, ratios, verdict)
    passed = within and not failed
    print(
        f"\n{'PASS' if passed else 'FAIL'}: single-row p50 at concurrency 1: current "
        f"{mine.p50_ms:.2f} ms vs baseline {base.p50_ms:.2f} ms (×{mine.p50_ms / base.p50_ms:.2f}; "
        f"limit ×{1 + P50_TOLERANCE:.2f} = {limit:.2f} ms)"
        + (f" ({noise})" if noise else "")
        + (f", {failed} requests failed" if failed else "")
        + f"; {(time.perf_counter() - began) / 60:.1f} min; results in {output}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
