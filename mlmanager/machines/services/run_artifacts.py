"""A run's downloadable artifacts: the version's signed model files as a zip, its holdout
metrics as JSON and its leaderboards as CSV.

They are built from the version a run produced, once, on first use, and kept through the
storage module under the model's folder (`downloads/run-<id>/`), so a worker or a web process
on another machine serves the same bytes, and a second download is only a read. A version's
files and records never change after it is recorded (the decision threshold aside, which none
of these files holds), so what was built stays true; the folder goes with the model.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
from django.utils.translation import gettext as _

from mlmanager.core import storage
from mlmanager.core.errors import Conflict, NotFound
from mlmanager.engine.artifacts import SIGNATURE_SUFFIX
from mlmanager.engine.prediction.writing import csv_safe
from mlmanager.machines.models import ModelVersion, TrainingRun

logger = logging.getLogger(__name__)

MODEL_ZIP = "model.zip"
METRICS_JSON = "metrics.json"
LEADERBOARD_CSV = "leaderboard.csv"
# Every artifact a run offers, in the order lists show them, with its content type.
CONTENT_TYPES = {
    MODEL_ZIP: "application/zip",
    METRICS_JSON: "application/json",
    LEADERBOARD_CSV: "text/csv",
}
LEADERBOARD_COLUMNS = ("output", "rank", "estimator", "score", "metric", "fit_time_s", "config")


@dataclass(frozen=True)
class RunArtifact:
    name: str
    size: int
    content_type: str


def artifacts_folder(run: TrainingRun) -> str:
    """Where a run's built downloads are kept (a folder the server chose, under its model's)."""
    return f"{run.machine.storage_dir}/downloads/run-{run.pk}"


def _version_of(run: TrainingRun) -> ModelVersion:
    version: ModelVersion | None = getattr(run, "version", None)
    if version is None:
        raise Conflict(
            _("This run produced no version, so it has no artifacts to download."),
            code="no_version",
        )
    return version


def _require_known(name: str) -> None:
    if name not in CONTENT_TYPES:
        raise NotFound(_("A run has no artifact “%(name)s”.") % {"name": name})


def run_artifacts(*, run: TrainingRun) -> list[RunArtifact]:
    """The run's artifacts with their sizes, built now when not built yet. 409 `no_version`
    when the run produced no version (it failed, or was cancelled before any model)."""
    version = _version_of(run)
    return [
        RunArtifact(
            name=name,
            size=storage.size(_ensure(run, version, name)),
            content_type=content_type,
        )
        for name, content_type in CONTENT_TYPES.items()
    ]


def run_artifact_open(*, run: TrainingRun, name: str) -> tuple[IO[bytes], RunArtifact]:
    """A stream of one artifact (read in chunks from the storage) and what it is. 404 for a
    name a run does not offer, 409 `no_version` as `run_artifacts`."""
    _require_known(name)
    version = _version_of(run)
    stored = _ensure(run, version, name)
    artifact = RunArtifact(name=name, size=storage.size(stored), content_type=CONTENT_TYPES[name])
    return storage.open_for_reading(stored), artifact


def _ensure(run: TrainingRun, version: ModelVersion, name: str) -> str:
    """The stored name of the artifact, written (whole, then made visible) when missing."""
    stored = f"{artifacts_folder(run)}/{name}"
    if storage.exists(stored):
        return stored
    with storage.writing(stored) as path:
        if name == MODEL_ZIP:
            _write_model_zip(version, path)
        elif name == METRICS_JSON:
            path.write_text(json.dumps(metrics_document(version), indent=2), encoding="utf-8")
        else:
            _write_leaderboard(version, path)
    logger.info("run %s: %s built", run.pk, name)
    return stored


# --- the files -------------------------------------------------------------------------------


def metrics_document(version: ModelVersion) -> dict[str, Any]:
    """metrics.json: per output its holdout metrics (with the curves the page draws) and the
    baseline's (null for versions recorded before baselines were measured)."""
    return {
        "model": version.machine_id,
        "version": version.number,
        "run": version.run_id,
        "outcome": version.outcome,
        "outputs": [
            {
                "name": output.get("name"),
                "task": output.get("task"),
                "metric": output.get("metric"),
                "best_estimator": output.get("best_estimator"),
                "metrics": output.get("metrics") or {},
                "baseline": output.get("baseline"),
            }
            for output in version.outputs
        ],
    }


def leaderboard_rows(version: ModelVersion) -> list[dict[str, Any]]:
    """leaderboard.csv's rows: every output's leaderboard, best first (rank 1)."""
    rows = []
    for output in version.outputs:
        for rank, entry in enumerate(output.get("leaderboard") or [], start=1):
            rows.append(
                {
                    "output": str(output.get("name") or ""),
                    "rank": rank,
                    "estimator": str(entry.get("estimator") or ""),
                    "score": _float(entry.get("score")),
                    "metric": str(output.get("metric") or ""),
                    "fit_time_s": _float(entry.get("fit_time_s")),
                    "config": json.dumps(entry.get("config") or {}, sort_keys=True),
                }
            )
    return rows


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _write_leaderboard(version: ModelVersion, path: Path) -> None:
    rows = leaderboard_rows(version)
    if not rows:  # an image model's version has members, not a search's leaderboard
        with open(path, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerow(LEADERBOARD_COLUMNS)
        return
    schema = pa.schema(
        [
            ("output", pa.string()),
            ("rank", pa.int64()),
            ("estimator", pa.string()),
            ("score", pa.float64()),
            ("metric", pa.string()),
            ("fit_time_s", pa.float64()),
            ("config", pa.string()),
        ]
    )
    # Column names are the user's: a name that looks like a formula is escaped as text.
    table = csv_safe(pa.Table.from_pylist(rows, schema=schema))
    pa_csv.write_csv(table, str(path))


def model_files(version: ModelVersion) -> list[str]:
    """The stored names of the version's signed artifact files (each with its signature
    file for a table model; an image model's folder files, signed in the version's record)."""
    names: list[str] = []
    for output in version.outputs:
        if output.get("artifact"):
            names += [output["artifact"], output["artifact"] + SIGNATURE_SUFFIX]
        folder = output.get("artifact_dir")
        if folder:
            names += [f"{folder}/{name}" for name in sorted(output.get("signatures") or {})]
    return names


def _manifest(version: ModelVersion) -> dict[str, Any]:
    """version.json in the zip: what the files are and how to check them."""
    root = PurePosixPath(version.storage_dir)
    outputs = []
    for output in version.outputs:
        item = {
            key: output.get(key)
            for key in ("name", "task", "metric", "best_estimator", "artifact_signature")
            if key in output
        }
        if output.get("artifact"):
            item["artifact"] = _relative(output["artifact"], root)
        if output.get("artifact_dir"):
            item["artifact_dir"] = _relative(output["artifact_dir"], root)
            item["signatures"] = output.get("signatures") or {}
        outputs.append(item)
    return {
        "model": version.machine_id,
        "version": version.number,
        "inputs": version.inputs,
        "outputs": outputs,
        "threshold": version.threshold,
        "reproducibility": version.reproducibility,
        "signature": "HMAC-SHA256 with a key derived from the server's SECRET_KEY: the "
        "server that wrote the files verifies them before loading.",
    }


def _write_model_zip(version: ModelVersion, path: Path) -> None:
    root = PurePosixPath(version.storage_dir)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("version.json", json.dumps(_manifest(version), indent=2))
        for name in model_files(version):
            try:
                stream = storage.open_for_reading(name)
            except FileNotFoundError:
                raise Conflict(
                    _("The files of version %(number)s are missing from the storage.")
                    % {"number": version.number},
                    code="artifact_missing",
                ) from None
            entry = _relative(name, root)
            with contextlib.closing(stream), archive.open(entry, "w") as target:
                for chunk in _chunks(stream):
                    target.write(chunk)


def _relative(name: str, root: PurePosixPath) -> str:
    """A stored name as a path inside the zip: relative to the version's folder."""
    path = PurePosixPath(name)
    return str(path.relative_to(root)) if path.is_relative_to(root) else path.name


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(1 << 20):
        yield chunk
