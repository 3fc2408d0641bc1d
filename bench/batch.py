"""Benchmark: batch predictions of millions of rows through the real job path, and its memory.

    python bench/batch.py                       # 1 000 000 and 5 000 000 rows
    python bench/batch.py --rows 200000         # a quick run

Starts `mlmanager web` and `mlmanager worker` on a fresh data folder (bench/upload_profile.py's
helpers), trains a small model over the API (20 000 rows, a few candidates), then for each
size uploads a generated CSV as a batch prediction (curl, multipart), polls the batch until it
ends, downloads the result, and counts its rows. The worker's process tree is sampled from /proc
every 0.1 s (and its kernel high-water mark read at the end): the goal is a worker under 1 GB
for 5 000 000 rows. Printed: rows, the job's own time, rows/s, upload and download times,
result size, and the worker's peak memory (the worker process itself, which runs the batch, and
its whole tree, which includes the training fork server it keeps).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import upload_profile as kit

PORT = 18731
COLUMNS = 10
TRAIN_ROWS = 20_000
GOAL_WORKER_MB = 1024
RUN_TIMEOUT_S = 3600.0
# The training is not what is measured: a few candidates, a short budget.
TRAINING_ENVIRONMENT = {"MLMANAGER_TRAINING_MAX_CANDIDATES": "4"}


def training_csv(path: Path) -> str:
    """The generator's columns plus a learnable binary target; returns the target's name."""
    kit.generate_csv(path, rows=TRAIN_ROWS, columns=COLUMNS, seed=3)
    frame = pd.read_csv(path)
    numbers = frame.select_dtypes("number")
    signal = (numbers - numbers.mean()) / numbers.std()
    noise = np.random.default_rng(4).normal(0, 0.5, len(frame))
    frame["target"] = np.where(signal.sum(axis=1).fillna(0) + noise > 0, "yes", "no")
    frame.to_csv(path, index=False)
    return "target"


def train(api: kit.Api, folder: Path) -> int:
    csv_path = folder / "train.csv"
    target = training_csv(csv_path)
    uploaded = kit.upload_and_wait(api, csv_path, timeout=300.0)
    if uploaded.dataset["status"] != "ready":
        raise kit.BenchError(f"the training dataset failed: {uploaded.dataset.get('error')}")
    body = {"name": "bench batch", "dataset": uploaded.dataset["id"], "outputs": [target],
            "time_budget_s": 60}  # fmt: skip
    model = api.expect("POST", "/api/v1/models/", body, 201)
    run = api.expect("POST", f"/api/v1/models/{model['id']}/start_training/", {}, 202)
    while run.get("status") not in {"succeeded", "failed", "cancelled"}:
        time.sleep(kit.POLL_INTERVAL_S)
        run = api.expect("GET", f"/api/v1/runs/{run['id']}/", None, 200)
    if run["status"] != "succeeded":
        raise kit.BenchError(f"training ended {run['status']}: {run.get('error')}")
    return int(model["id"])


def curl(*arguments: str) -> tuple[int, str]:
    command = ["curl", "-sS", "--noproxy", "*", "-H", "Expect:", *arguments]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise kit.BenchError(f"curl failed ({result.returncode}): {result.stderr.strip()}")
    return int(result.stdout.strip() or 0), result.stderr


def one_batch(
    api: kit.Api, model_id: int, rows: int, folder: Path, worker: subprocess.Popen[bytes]
) -> dict[str, Any]:
    source = folder / f"rows-{rows}.csv"
    kit.generate_csv(source, rows=rows, columns=COLUMNS, seed=rows % 1000)
    response = folder / "batch-response.json"
    tree = kit.TreeMemory(worker.pid)
    sampler = kit.MemorySampler([tree])
    sampler.start()
    started = time.perf_counter()
    try:
        status, _ = curl(
            "-H", f"Authorization: Bearer {api.token}", "-F", f"file=@{source}", "-F", "format=csv",
            "-o", str(response), "-w", "%{http_code}",
            f"{api.base_url}/api/v1/models/{model_id}/batch_predictions/",
        )  # fmt: skip
        uploaded_s = time.perf_counter() - started
        if status != 202:
            raise kit.BenchError(f"batch: HTTP {status}: {response.read_text()[:1000]}")
        batch = json.loads(response.read_text())
        while batch["status"] not in {"succeeded", "failed", "cancelled"}:
            if time.perf_counter() - started > RUN_TIMEOUT_S:
                raise kit.BenchError(f"the batch did not end within {RUN_TIMEOUT_S:.0f} s")
            time.sleep(kit.POLL_INTERVAL_S)
            batch = api.expect("GET", f"/api/v1/batch_predictions/{batch['id']}/", None, 200)
        tree.read_high_water_marks()
    finally:
        sampler.stop()
    if batch["status"] != "succeeded":
        raise kit.BenchError(f"the batch ended {batch['status']}: {batch.get('error')}")
    job = api.expect("GET", f"/api/v1/jobs/{batch['job']}/", None, 200)
    result = folder / f"result-{rows}.csv"
    download_started = time.perf_counter()
    status, _ = curl(
        "-H", f"Authorization: Bearer {api.token}", "-o", str(result), "-w", "%{http_code}",
        batch["download_url"],
    )  # fmt: skip
    download_s = time.perf_counter() - download_started
    if status != 200:
        raise kit.BenchError(f"download: HTTP {status}")
    with result.open("rb") as handle:
        result_rows = sum(1 for _ in handle) - 1
    job_s = kit._seconds(job.get("started_at"), job.get("finished_at"))
    source.unlink()
    result_bytes = result.stat().st_size
    result.unlink()
    return {
        "rows": rows,
        "result_rows": result_rows,
        "upload_s": uploaded_s,
        "job_s": job_s,
        "rows_per_s": rows / job_s if job_s else None,
        "download_s": download_s,
        "result_mb": result_bytes / kit.MB,
        "worker_peak_mb": kit._mb(max(tree.hwm_kb.get(worker.pid, 0),
                                      tree.peak_kb.get(worker.pid, 0))),
        "worker_tree_peak_mb": kit._mb(tree.peak_total_kb),
        "worker_baseline_mb": kit._mb(tree.baseline_kb.get(worker.pid, 0)),
    }  # fmt: skip


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", default="1000000,5000000", help="comma-separated sizes")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--output", type=Path, help="results as JSON")
    return parser.parse_args(argv)


def sign_up(api: kit.Api, data_dir: Path) -> None:
    email, password = "bench-batch@example.com", "bench-" + os.urandom(12).hex()
    kit.sign_up(api, {"email": email, "password": password, "name": "Bench"}, data_dir)


def print_results(results: list[dict[str, Any]]) -> None:
    header = ("rows", "job s", "rows/s", "upload s", "download s", "result MB", "worker MB",
              "tree MB")  # fmt: skip
    print(" ".join(f"{name:>10}" for name in header), f"  goal: worker < {GOAL_WORKER_MB} MB")
    for item in results:
        verdict = "met" if item["worker_peak_mb"] < GOAL_WORKER_MB else "MISSED"
        if item["result_rows"] != item["rows"]:
            verdict += f" (result has {item['result_rows']:,} rows!)"
        cells = (
            f"{item['rows']:,}",
            f"{item['job_s'] or 0:.1f}",
            f"{item['rows_per_s'] or 0:,.0f}",
            f"{item['upload_s']:.1f}",
            f"{item['download_s']:.1f}",
            f"{item['result_mb']:.0f}",
            f"{item['worker_peak_mb']:.0f}",
            f"{item['worker_tree_peak_mb']:.0f}",
        )
        print(" ".join(f"{cell:>10}" for cell in cells), f"  {verdict}")


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    sizes = [int(value) for value in arguments.rows.split(",") if value.strip()]
    if not kit.port_is_free(arguments.port):
        print(f"Port {arguments.port} is in use; pass --port.", file=sys.stderr)
        return 2
    results: list[dict[str, Any]] = []
    os.environ.update(TRAINING_ENVIRONMENT)  # the servers inherit it
    with tempfile.TemporaryDirectory(prefix="mlmanager-bench-batch-") as work_name:
        work = Path(work_name)
        base_url = f"http://127.0.0.1:{arguments.port}"
        with kit.servers(work, arguments.port, debug=False) as (web, worker):
            kit.wait_for_web(f"{base_url}/accounts/login/", web, kit.SERVER_START_TIMEOUT_S)
            api = kit.Api(base_url)
            sign_up(api, work / "data")
            print("Training a small model…", flush=True)
            model_id = train(api, work)
            for rows in sizes:
                print(f"Batch of {rows:,} rows…", flush=True)
                results.append(one_batch(api, model_id, rows, work, worker))
    print()
    print_results(results)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = arguments.output or kit.REPO / "var" / "bench" / f"batch-{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"results": results, "machine": kit.machine_info()}, indent=2))
    print(f"\nSaved {output}")
    return 0 if all(item["result_rows"] == item["rows"] for item in results) else 1


if __name__ == "__main__":
    sys.exit(main())
