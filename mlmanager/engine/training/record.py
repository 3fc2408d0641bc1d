"""The reproducibility record's parts the search does not know: library versions and the
data set's checksum (computed, with the evaluation's imports, while the search runs)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import logging
import platform
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

LIBRARIES = {
    "flaml": ("flaml",),
    "lightgbm": ("lightgbm",),
    "xgboost": ("xgboost-cpu", "xgboost"),
    "catboost": ("catboost",),
    "sklearn": ("scikit-learn",),
    "pandas": ("pandas",),
    "numpy": ("numpy",),
    "pyarrow": ("pyarrow",),
}
# Imported in the background while the first search runs, so evaluation does not wait.
_WARM_MODULES = (
    "mlmanager.engine.training.evaluation",
    "flaml.automl.model",
    "lightgbm",
    "xgboost",
    "catboost",
    "sklearn.ensemble",
    "sklearn.linear_model",
)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name, distributions in LIBRARIES.items():
        for distribution in distributions:
            try:
                versions[name] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


class RunRecord:
    """Hashes the data set and imports the evaluation's libraries while the search runs."""

    def __init__(self, parquet_path: Path):
        self.parquet_path = parquet_path
        self._sha256: str | None = None
        self._thread = threading.Thread(target=self._work, name="training-background", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def dataset_sha256(self) -> str | None:
        self._thread.join()
        return self._sha256

    def _work(self) -> None:
        digest = hashlib.sha256()
        try:
            with open(self.parquet_path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
            self._sha256 = digest.hexdigest()
        except OSError:
            logger.warning("could not hash %s", self.parquet_path, exc_info=True)
        for module in _WARM_MODULES:
            try:
                importlib.import_module(module)
            except ImportError:
                logger.warning("could not import %s", module)
