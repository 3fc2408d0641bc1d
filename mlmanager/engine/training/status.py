"""The files through which the search process reports to the process that started it.

Each output trains in its own folder. The search process writes; the parent only reads. Every
file but the logs is written to a temporary name and renamed, so a reader (or a kill at any
moment) never sees half a file.

    holdout.parquet    the holdout rows (inputs + raw target), written before the search
    status.json        state, candidates, best score, leaderboard, the current checkpoint
    model-<n>.joblib   checkpoint n (+ .sig); status.json names the one to use
    final.joblib       the best model refitted on all rows (+ .sig), named in status.json
    trials-<n>.jsonl   FLAML's log of chunk n, one line per candidate (read as it grows)
    error.json         a failure the search process could describe
    search.log         the search process's stdout/stderr (native libraries included)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class OutputFolder:
    path: Path

    @property
    def holdout(self) -> Path:
        return self.path / "holdout.parquet"

    @property
    def status(self) -> Path:
        return self.path / "status.json"

    @property
    def error(self) -> Path:
        return self.path / "error.json"

    @property
    def log(self) -> Path:
        return self.path / "search.log"

    def checkpoint(self, number: int) -> Path:
        return self.path / f"model-{number}.joblib"

    @property
    def final(self) -> Path:
        return self.path / "final.joblib"


def write_json(path: Path, value: Any) -> None:
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(json_safe(value), handle, allow_nan=False)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def json_safe(value: Any) -> Any:
    """`value` with numpy scalars as Python numbers and NaN/infinity as None."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def log_tail(path: Path, *, lines: int = 40) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16_384))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
