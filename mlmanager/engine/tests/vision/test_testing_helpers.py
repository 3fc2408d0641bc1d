"""The test-data writer produces the stored layout of contract §1."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from mlmanager.engine.vision.data import MASK_CLASSES_METADATA_KEY
from mlmanager.engine.vision.testing import (
    SHAPE_CLASSES,
    write_digits_dataset,
    write_shapes_dataset,
)

COLUMNS = ["name", "image", "thumbnail", "label", "mask", "width", "height", "channels", "format"]


def test_digits_dataset_layout(tmp_path: Path) -> None:
    path = write_digits_dataset(tmp_path, per_class=3)

    assert path == tmp_path / "data.parquet"
    table = pq.read_table(path)
    assert table.column_names == COLUMNS
    assert table.num_rows == 30
    names = table.column("name").to_pylist()
    assert names == sorted(names)
    assert sorted(set(table.column("label").to_pylist())) == [str(digit) for digit in range(10)]
    assert set(table.column("mask").to_pylist()) == {None}
    first = Image.open(io.BytesIO(table.column("image")[0].as_py()))
    assert (first.format, first.mode, first.size) == ("PNG", "L", (8, 8))
    assert set(table.column("channels").to_pylist()) == {1}


def test_shapes_dataset_layout_and_mask_classes(tmp_path: Path) -> None:
    path = write_shapes_dataset(tmp_path / "shapes.parquet", count=70, size=24, channels=3)

    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_rows == 70
    assert parquet.metadata.num_row_groups == 2  # row groups of 64 rows
    metadata = parquet.schema_arrow.metadata
    assert json.loads(metadata[MASK_CLASSES_METADATA_KEY]) == list(SHAPE_CLASSES)
    table = parquet.read()
    assert set(table.column("label").to_pylist()) == {None}
    image = Image.open(io.BytesIO(table.column("image")[0].as_py()))
    mask = Image.open(io.BytesIO(table.column("mask")[0].as_py()))
    assert (image.mode, image.size) == ("RGB", (24, 24))
    assert (mask.mode, mask.size) == ("L", (24, 24))
    assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 1, 2}


def test_same_seed_same_shapes(tmp_path: Path) -> None:
    first = write_shapes_dataset(tmp_path / "a.parquet", count=5, seed=3)
    second = write_shapes_dataset(tmp_path / "b.parquet", count=5, seed=3)

    assert pq.read_table(first).equals(pq.read_table(second))
