"""Reading a stored image data set: decoding, channels, the seeded stratified split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlmanager.engine.vision import VisionError
from mlmanager.engine.vision.data import read_image_data, split, to_mode
from mlmanager.engine.vision.testing import ImageRow, write_image_rows


def test_digits_read_resized_and_split_by_class(digits_path: Path) -> None:
    data = read_image_data(digits_path, task="classification", image_size=16)

    assert data.images.shape == (100, 1, 16, 16) and data.images.dtype == np.uint8
    assert data.classes == [str(digit) for digit in range(10)]
    parts = split(data, seed=0)
    everything = np.concatenate([parts.train, parts.validation, parts.holdout])
    assert sorted(everything.tolist()) == list(range(100))
    # Stratified: each digit gives 2 of its 10 images to the holdout, 1 to validation.
    assert np.bincount(data.targets[parts.holdout], minlength=10).tolist() == [2] * 10
    assert np.bincount(data.targets[parts.validation], minlength=10).tolist() == [1] * 10
    again = split(data, seed=0)
    assert again.holdout.tolist() == parts.holdout.tolist()
    assert split(data, seed=1).holdout.tolist() != parts.holdout.tolist()


def test_shapes_masks_and_named_classes(shapes_path: Path) -> None:
    data = read_image_data(shapes_path, task="segmentation", image_size=16)

    assert data.classes == ["background", "circle", "square"]
    assert data.targets.shape == (24, 16, 16)
    assert set(np.unique(data.targets).tolist()) <= {0, 1, 2}


def test_mask_classes_default_to_numbers(tmp_path: Path) -> None:
    rows = []
    for index in range(8):
        mask = np.zeros((8, 8), dtype=np.uint8)
        mask[:4, :4] = 1 + index % 2
        rows.append(
            ImageRow(name=f"{index}.png", image=Image.new("L", (8, 8)), mask=Image.fromarray(mask))
        )
    path = write_image_rows(tmp_path / "data.parquet", rows)

    data = read_image_data(path, task="segmentation", image_size=8)

    assert data.classes == ["background", "1", "2"]


def test_masks_that_are_not_class_numbers(tmp_path: Path) -> None:
    rows = [
        ImageRow(
            name=f"{index}.png",
            image=Image.new("L", (8, 8)),
            mask=Image.new("L", (8, 8), 255),  # a 0/255 picture, not class indices
        )
        for index in range(8)
    ]
    path = write_image_rows(tmp_path / "data.parquet", rows)

    with pytest.raises(VisionError) as raised:
        read_image_data(path, task="segmentation", image_size=8)
    assert raised.value.code == "mask_values"


def test_a_classification_set_cannot_train_segmentation(digits_path: Path) -> None:
    with pytest.raises(VisionError) as raised:
        read_image_data(digits_path, task="segmentation", image_size=8)
    assert raised.value.code == "too_few_images"  # no row has a mask


def test_single_class(tmp_path: Path) -> None:
    rows = [ImageRow(name=f"{i}.png", image=Image.new("L", (8, 8)), label="a") for i in range(9)]
    path = write_image_rows(tmp_path / "data.parquet", rows)

    with pytest.raises(VisionError) as raised:
        read_image_data(path, task="classification", image_size=8)
    assert raised.value.code == "single_class"


def test_sixteen_bit_images_are_stretched_not_clipped() -> None:
    image = Image.fromarray(np.array([[1000, 3000]], dtype=np.uint16))

    grey = to_mode(image, 1)

    assert grey.mode == "L"
    assert list(np.asarray(grey).ravel()) == [0, 255]


def test_levels_use_the_tabular_budgets() -> None:
    from mlmanager.engine.training.spec import LEVEL_BUDGET_S as TABULAR_BUDGETS
    from mlmanager.engine.vision import LEVELS
    from mlmanager.engine.vision.spec import LEVEL_BUDGET_S

    assert LEVEL_BUDGET_S == TABULAR_BUDGETS
    assert [LEVELS[number].budget_s for number in range(1, 6)] == [60, 300, 900, 3600, 14400]
    # Higher levels never train smaller images, fewer members or fewer epochs.
    for lower, higher in zip(range(1, 5), range(2, 6), strict=True):
        assert LEVELS[higher].image_size > LEVELS[lower].image_size
        assert LEVELS[higher].max_epochs > LEVELS[lower].max_epochs
        for task in ("classification", "segmentation"):
            assert len(LEVELS[higher].members(task)) >= len(LEVELS[lower].members(task))


def test_importing_the_package_loads_no_torch() -> None:
    """Pages import the package (LEVELS); torch and MONAI load only to train or predict."""
    import subprocess
    import sys

    code = (
        "import sys, mlmanager.engine.vision as v; v.LEVELS[1].describe(); "
        "print(sorted(m for m in ('torch', 'monai', 'pandas', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
