"""Read the columns a model needs from the Parquet file, clean the target, split off the holdout.

Runs in the search process: the data set is read once, there, with only the needed columns.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mlmanager.engine.training.preprocessing import as_text
from mlmanager.engine.training.spec import DATASET_GONE_MESSAGE, HOLDOUT_SHARE, TrainingError
from mlmanager.engine.training.validation import MAX_CLASSES, MIN_TARGET_ROWS

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainingData:
    """The rows with a target value, split into training rows and the holdout."""

    train: pd.DataFrame  # input columns only
    train_target: np.ndarray  # class indices (classification) or floats (regression)
    holdout: pd.DataFrame  # input columns and the raw target column
    holdout_target: np.ndarray  # as train_target
    classes: list[Any] | None  # raw labels, in the order of the class indices
    row_count: int  # rows in the file
    target_row_count: int  # rows with a target value


def read_training_data(
    parquet_path: Path, *, inputs: list[str], output: str, task: str, seed: int
) -> TrainingData:
    try:
        table = pq.read_table(parquet_path, columns=[*inputs, output])
    except FileNotFoundError as exc:
        raise TrainingError(DATASET_GONE_MESSAGE, code="dataset_missing") from exc
    row_count = table.num_rows
    # Hands Arrow's buffers over column by column, so the data is not held twice meanwhile.
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    target_raw = frame[output]
    present = _present(target_raw)
    frame = frame.loc[present].reset_index(drop=True)
    target_raw = frame[output]
    if len(frame) < MIN_TARGET_ROWS:
        raise TrainingError(
            f"Only {len(frame)} rows have a value for “{output}”; training needs at least "
            f"{MIN_TARGET_ROWS}.",
            code="too_few_rows",
        )
    if task == "regression":
        target = pd.to_numeric(target_raw, errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(target).all():
            raise TrainingError(
                f"“{output}” has values that are not numbers, so it cannot be predicted as an "
                "amount. Choose a classification task instead.",
                code="task_mismatch",
            )
        classes = None
    else:
        target, classes = encode_labels(target_raw)
        _check_classes(output, task, classes)
    train_rows, holdout_rows = split_holdout(target, task=task, seed=seed)
    holdout = frame.iloc[holdout_rows].reset_index(drop=True)
    train = frame.iloc[train_rows][inputs].reset_index(drop=True)
    return TrainingData(
        train=train,
        train_target=target[train_rows],
        holdout=holdout,
        holdout_target=target[holdout_rows],
        classes=classes,
        row_count=row_count,
        target_row_count=len(frame),
    )


def _present(values: pd.Series) -> np.ndarray:
    present = values.notna().to_numpy()
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        present = present & values.astype(str).str.strip().ne("").to_numpy()
    return present


def encode_labels(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Class indices for the labels, and the labels sorted (as JSON-friendly Python values).

    Whole floats become ints (a label column read as float because of missing values still
    has classes 0 and 1, not 0.0 and 1.0).
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        labels = values.astype(bool).to_numpy()
    elif pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64)
        labels = numbers.astype(np.int64) if np.all(numbers == np.floor(numbers)) else numbers
    else:
        labels = np.array([str(value).strip() for value in values], dtype=object)
    classes, indices = np.unique(labels, return_inverse=True)
    return indices.astype(np.int64), [_plain(value) for value in classes]


def label_indices(values: pd.Series, classes: list[Any]) -> np.ndarray:
    """Indices of `values` in `classes`, -1 for labels the model never saw."""
    lookup = {_label_key(label): index for index, label in enumerate(classes)}
    texts = as_text(values)
    return np.array([lookup.get(text, -1) for text in texts], dtype=np.int64)


def _label_key(label: Any) -> str:
    return str(as_text(pd.Series([label], dtype=object))[0])


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _check_classes(output: str, task: str, classes: list[Any]) -> None:
    if len(classes) < 2:
        raise TrainingError(
            f"“{output}” has only one value, so there is nothing to predict.",
            code="unusable_target",
        )
    if task == "binary" and len(classes) != 2:
        raise TrainingError(
            f"“{output}” has {len(classes):,} different values; a yes/no (binary) model needs "
            "exactly 2. Choose the multiclass task instead.",
            code="task_mismatch",
        )
    if len(classes) > MAX_CLASSES:
        raise TrainingError(
            f"“{output}” has {len(classes):,} different values; a classification model "
            f"supports at most {MAX_CLASSES:,} classes.",
            code="too_many_classes",
        )


def split_holdout(target: np.ndarray, *, task: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices for training and for the holdout (HOLDOUT_SHARE of the rows, by seed).

    Classification splits per class, so each class keeps its share in both parts; a class
    with a single row stays in training, where it can at least be learnt.
    """
    rng = np.random.default_rng(seed)
    count = len(target)
    if task == "regression":
        order = rng.permutation(count)
        holdout_size = max(1, round(count * HOLDOUT_SHARE))
        return np.sort(order[holdout_size:]), np.sort(order[:holdout_size])
    train_parts, holdout_parts = [], []
    for label in np.unique(target):
        rows = rng.permutation(np.flatnonzero(target == label))
        holdout_size = round(len(rows) * HOLDOUT_SHARE) if len(rows) > 1 else 0
        if len(rows) > 1:
            holdout_size = min(max(1, holdout_size), len(rows) - 1)
        holdout_parts.append(rows[:holdout_size])
        train_parts.append(rows[holdout_size:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(holdout_parts))
