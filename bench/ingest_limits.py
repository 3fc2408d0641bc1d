"""Benchmark: a worker's peak memory on a Parquet bomb, without and with the row and cell caps.

Issue 11, item 11: a Parquet file of a few hundred KB declares 30 000 000 rows and the worker
that ingests it grows by most of a gigabyte. This script measures that, before and after the
caps (`MLMANAGER_MAX_ROWS`, `MLMANAGER_MAX_CELLS`):

1. writes the bomb into a temporary folder (not measured): 30 000 000 rows of one repeated
   short text and one repeated integer, which dictionary and run-length encoding shrink to a
   few hundred KB;
2. runs what the worker's dataset job runs — `convert_to_parquet`, then `profile_parquet` — in a
   fresh child process, once without caps (the code before the fix) and once with the caps;
3. each child reports its RSS once the engine is imported, its peak RSS (`ru_maxrss`, the
   kernel's high-water mark, so no spike between samples is missed), its wall time and the
   outcome (ready, or refused with the message the user sees).

`--rows N --columns C` instead measures a realistic table (floats, integers, categories, an id)
of that size without caps: how the default caps were chosen (what a table at the caps costs).

Run from the repository root:

    .venv/bin/python bench/ingest_limits.py                                  # the bomb
    .venv/bin/python bench/ingest_limits.py --rows 10000000 --columns 20     # sizing

Exit codes: 0 the capped run refused the bomb and peaked under GOAL_CAPPED_PEAK_MB, 1 it did
not, 2 the benchmark could not run. Linux only (ru_maxrss in KB, /proc). No network.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from machine import cpu_model, total_memory_gb

from config.env import DEFAULT_MAX_CELLS, DEFAULT_MAX_ROWS

BOMB_ROWS = 30_000_000
WRITE_BATCH_ROWS = 1_000_000
# The capped worker must stay near its size with the engine imported: no row is decoded.
GOAL_CAPPED_PEAK_MB = 400.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, help="measure a realistic table of this many rows")
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
    parser.add_argument("--max-cells", type=int, default=DEFAULT_MAX_CELLS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        return _child(json.loads(arguments.child))

    print(f"machine: {cpu_model()}, {total_memory_gb()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="mlmanager-bench-") as folder:
        source = Path(folder) / "source.parquet"
        if arguments.rows:
            _write_table(source, arguments.rows, arguments.columns)
            print(f"table: {arguments.rows:,} rows × {arguments.columns} columns, ", end="")
            print(f"{source.stat().st_size / 1e6:.1f} MB of Parquet")
            _print(_run_child(source, Path(folder), max_rows=None, max_cells=None), "no caps")
            return 0
        _write_bomb(source)
        print(f"bomb: {BOMB_ROWS:,} rows, {source.stat().st_size / 1024:.0f} KB of Parquet")
        before = _run_child(source, Path(folder), max_rows=None, max_cells=None)
        _print(before, "before (no caps)")
        after = _run_child(
            source, Path(folder), max_rows=arguments.max_rows, max_cells=arguments.max_cells
        )
        _print(
            after,
            f"after (MLMANAGER_MAX_ROWS={arguments.max_rows:,}, "
            f"MLMANAGER_MAX_CELLS={arguments.max_cells:,})",
        )
    passed = after["refused"] and after["peak_mb"] < GOAL_CAPPED_PEAK_MB
    print(f"goal: capped run refused, peak < {GOAL_CAPPED_PEAK_MB:.0f} MB: ", end="")
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


def _write_bomb(path: Path) -> None:
    batch = pa.table(
        {
            "plan": pa.array(["premium"] * WRITE_BATCH_ROWS),
            "seats": pa.array(np.full(WRITE_BATCH_ROWS, 3, dtype=np.int64)),
        }
    )
    with pq.ParquetWriter(path, batch.schema, compression="zstd") as writer:
        for _ in range(BOMB_ROWS // WRITE_BATCH_ROWS):
            writer.write_table(batch, row_group_size=WRITE_BATCH_ROWS)


def _write_table(path: Path, rows: int, columns: int) -> None:
    """Floats, integers, categories and a unique id in turn: what the upload benchmark mixes."""
    generator = np.random.default_rng(7)
    categories = pa.array(["north", "south", "east", "west", "centre"])
    writer: pq.ParquetWriter | None = None
    for start in range(0, rows, WRITE_BATCH_ROWS):
        count = min(WRITE_BATCH_ROWS, rows - start)
        arrays: dict[str, pa.Array] = {}
        for index in range(columns):
            kind = index % 4
            if kind == 0:
                arrays[f"f{index}"] = pa.array(generator.normal(size=count))
            elif kind == 1:
                arrays[f"i{index}"] = pa.array(generator.integers(0, 1000, size=count))
            elif kind == 2:
                picks = pa.array(generator.integers(0, len(categories), size=count))
                arrays[f"c{index}"] = categories.take(picks)
            else:
                arrays[f"id{index}"] = pa.array(
                    [f"id-{number}" for number in range(start, start + count)]
                )
        table = pa.table(arrays)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def _run_child(source: Path, folder: Path, *, max_rows: int | None, max_cells: int | None) -> dict:
    job = {
        "source": str(source),
        "destination": str(folder / "converted.parquet"),
        "max_rows": max_rows,
        "max_cells": max_cells,
    }
    result = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(job)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        raise SystemExit(2)
    (folder / "converted.parquet").unlink(missing_ok=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _child(job: dict) -> int:
    """What the worker's dataset job runs, in this fresh process; prints one JSON line."""
    from mlmanager.engine.ingest import IngestError, convert_to_parquet
    from mlmanager.engine.profiling import profile_parquet

    imported_mb = _rss_mb()
    started = time.monotonic()
    source, destination = Path(job["source"]), Path(job["destination"])
    try:
        report = convert_to_parquet(
            source,
            destination,
            original_name=source.name,
            max_rows=job["max_rows"],
            max_cells=job["max_cells"],
        )
        profile_parquet(destination)
        outcome, refused = f"ready: {report.row_count:,} rows", False
    except IngestError as error:
        outcome, refused = f"refused ({error.code}): {error.message}", True
    seconds = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = {
        "imported_mb": imported_mb,
        "peak_mb": peak_mb,
        "seconds": seconds,
        "outcome": outcome,
        "refused": refused,
        "destination_left": destination.exists(),
    }
    print(json.dumps(line))
    return 0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _print(result: dict, label: str) -> None:
    print(f"\n{label}")
    print(f"  outcome: {result['outcome']}")
    print(f"  RSS with the engine imported: {result['imported_mb']:.0f} MB")
    print(
        f"  peak RSS: {result['peak_mb']:.0f} MB "
        f"(+{result['peak_mb'] - result['imported_mb']:.0f} MB), {result['seconds']:.1f} s"
    )
    print(f"  converted file left behind: {'yes' if result['destination_left'] else 'no'}")


if __name__ == "__main__":
    sys.exit(main())
