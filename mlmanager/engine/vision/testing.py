"""Small image data sets in the stored layout (`data.parquet`, issue 16 contract §1), for tests,
benchmarks and the demo.

Nothing is downloaded: the classification set is scikit-learn's bundled 8×8 digits, the
segmentation set is generated (circles and squares on a noisy background, with their masks).
Both are written the way the datasets app writes an uploaded zip once processed: one row per
image sorted by `name`, images re-encoded as PNG, row groups of 64 rows, written to a temporary
sibling then renamed.

    write_digits_dataset(tmp_path)                  # 1,797 digits, 10 classes, folders layout
    write_digits_dataset(tmp_path, per_class=20)    # 200 digits
    write_shapes_dataset(tmp_path, count=64, size=32)
    write_image_rows(tmp_path / "data.parquet", [ImageRow(...), ...])   # anything else
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from mlmanager.engine.vision.data import MASK_CLASSES_METADATA_KEY

DATA_FILE = "data.parquet"
ROW_GROUP_ROWS = 64
THUMBNAIL_SIDE = 128
# Mask pixel value -> class name of the generated shapes (0 is always the background).
SHAPE_CLASSES = ("background", "circle", "square")


@dataclasses.dataclass(frozen=True)
class ImageRow:
    """One image before encoding: `label` for classification, `mask` (mode "L", class indices)
    for segmentation."""

    name: str
    image: Image.Image
    label: str | None = None
    mask: Image.Image | None = None
    format: str = "PNG"


def write_digits_dataset(
    path: Path, per_class: int | None = None, *, size: int = 8, channels: int = 1
) -> Path:
    """Write scikit-learn's digits as a classification set; return the `data.parquet` path.

    `path` is the file to write, or a folder to write `data.parquet` in. `per_class` keeps the
    first n images of each digit (all 1,797 when None). `size` upscales the 8×8 images
    (nearest neighbour) and `channels=3` stores them as RGB, to exercise other shapes.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    kept: dict[int, int] = {}
    rows = []
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        target = int(target)
        if per_class is not None and kept.get(target, 0) >= per_class:
            continue
        kept[target] = kept.get(target, 0) + 1
        # Values are 0..16; stretched to 0..255 so the PNG looks like a digit when shown.
        array = np.clip(pixels * (255.0 / 16.0), 0, 255).astype(np.uint8)
        image = Image.fromarray(array, mode="L")
        if size != 8:
            image = image.resize((size, size), Image.Resampling.NEAREST)
        if channels == 3:
            image = image.convert("RGB")
        rows.append(
            ImageRow(name=f"{target}/digit-{index:04d}.png", image=image, label=str(target))
        )
    return write_image_rows(_data_path(path), rows)


def write_shapes_dataset(
    path: Path, count: int = 96, size: int = 32, *, seed: int = 0, channels: int = 1
) -> Path:
    """Write `count` generated images with masks as a segmentation set; return the path.

    Each image holds one or two shapes (a filled circle, class 1, and/or a filled square,
    class 2) of random size and place on a noisy background, each shape a little brighter than
    the background by a random amount; the mask marks each pixel's class. Same seed, same set.
    """
    generator = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        image, mask = generate_shape_image(generator, size)
        picture = Image.fromarray(image, mode="L")
        if channels == 3:
            picture = picture.convert("RGB")
        rows.append(
            ImageRow(
                name=f"images/shape-{index:04d}.png",
                image=picture,
                mask=Image.fromarray(mask, mode="L"),
            )
        )
    return write_image_rows(_data_path(path), rows, mask_classes=list(SHAPE_CLASSES))


def generate_shape_image(
    generator: np.random.Generator, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """One (image uint8 HxW, mask uint8 HxW) pair of the shapes data set."""
    background = generator.uniform(20, 90)
    image = generator.normal(background, 12, (size, size))
    mask = np.zeros((size, size), dtype=np.uint8)
    rows, columns = np.mgrid[0:size, 0:size]
    kinds = [1, 2] if generator.random() < 0.5 else [int(generator.integers(1, 3))]
    for kind in kinds:
        radius = generator.uniform(size * 0.14, size * 0.26)
        centre_row, centre_column = generator.uniform(radius, size - radius, 2)
        if kind == 1:
            inside = (rows - centre_row) ** 2 + (columns - centre_column) ** 2 <= radius**2
        else:
            inside = (np.abs(rows - centre_row) <= radius) & (
                np.abs(columns - centre_column) <= radius
            )
        image[inside] = generator.normal(background + generator.uniform(70, 150), 12, inside.sum())
        mask[inside] = kind
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_image_rows(
    path: Path, rows: list[ImageRow], *, mask_classes: list[str] | None = None
) -> Path:
    """Encode `rows` and write them to `path` in the stored layout (sorted by name).

    `mask_classes` (index order, background first) names the mask classes in the file's
    metadata, where the engine looks for them (`data.MASK_CLASSES_METADATA_KEY`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    rows = sorted(rows, key=lambda row: row.name)
    columns: dict[str, list] = {
        key: []
        for key in ("name", "image", "thumbnail", "label", "mask", "width", "height", "channels")
    }
    columns["format"] = []
    for row in rows:
        image = row.image if row.image.mode in ("L", "RGB") else row.image.convert("RGB")
        thumbnail = image.copy()
        thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        columns["name"].append(row.name)
        columns["image"].append(png_bytes(image))
        columns["thumbnail"].append(png_bytes(thumbnail))
        columns["label"].append(row.label)
        columns["mask"].append(None if row.mask is None else png_bytes(row.mask.convert("L")))
        columns["width"].append(image.width)
        columns["height"].append(image.height)
        columns["channels"].append(1 if image.mode == "L" else 3)
        columns["format"].append(row.format)
    schema = pa.schema(
        [
            ("name", pa.string()),
            ("image", pa.binary()),
            ("thumbnail", pa.binary()),
            ("label", pa.string()),
            ("mask", pa.binary()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("channels", pa.int32()),
            ("format", pa.string()),
        ]
    )
    if mask_classes is not None:
        schema = schema.with_metadata({MASK_CLASSES_METADATA_KEY: json.dumps(mask_classes)})
    table = pa.table(columns, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".part", dir=path.parent
    )
    os.close(descriptor)
    try:
        pq.write_table(table, temporary, row_group_size=ROW_GROUP_ROWS)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _data_path(path: Path) -> Path:
    path = Path(path)
    return path / DATA_FILE if path.is_dir() else path
