"""Reading an image dataset's rows: pages of the gallery, one image's bytes, mask overlays.

The Parquet file (engine.ingest.images) keeps one row per image, sorted by name, in row groups
of 64: a page of thumbnails reads the row groups it shows and nothing else, so a 50 000-image
set costs a page what a 64-image set does. A row's position is its `index`, stable for the life
of the dataset (the file is written once).
"""

from __future__ import annotations

import bisect
import dataclasses
import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from django.utils.translation import gettext as _
from PIL import Image

from mlmanager.core.errors import ApplicationError, Conflict, NotFound
from mlmanager.datasets.files import materialise
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.selectors import require_dataset_ready

IMAGE_COLUMNS = ("image", "thumbnail", "mask")
MAX_PAGE = 200
# The columns a gallery row shows (the bytes are fetched one image at a time).
_ROW_COLUMNS = ["name", "label", "width", "height", "channels", "format"]
# Mask classes drawn over an image, semi-transparent; index 0 (background) is not drawn.
OVERLAY_OPACITY = 0.45
_OVERLAY_COLOURS = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
]


@dataclasses.dataclass(frozen=True)
class ImageRow:
    index: int
    name: str
    label: str | None
    width: int
    height: int
    channels: int
    format: str
    has_mask: bool

    @property
    def file_name(self) -> str:
        """The name without its folders: in a gallery the folders are the same for every
        image of a class (`shapes/images/…`), and a caption cut short would show only them."""
        return self.name.rsplit("/", 1)[-1]


def require_images(*, dataset: Dataset) -> Dataset:
    """`dataset` if it is a ready image dataset: a table has no images (409 `not_images`)."""
    if not dataset.is_images:
        raise Conflict(_("This dataset is a table: it has no images."), code="not_images")
    return require_dataset_ready(dataset=dataset)


def image_count(dataset: Dataset, label: str | None = None) -> int:
    """How many images the dataset has (of `label`, for a classification set)."""
    images = dataset.images or {}
    if label is None:
        return int(images.get("count", 0))
    if images.get("task") != "classification":
        return 0
    return int((images.get("classes") or {}).get(label, 0))


def image_rows(
    dataset: Dataset, offset: int = 0, limit: int = 50, label: str | None = None
) -> list[ImageRow]:
    """The rows `offset` to `offset + limit` (of the images labelled `label`, when given), in
    the file's order (by name). Reads the label column to filter, then only the row groups
    holding the rows returned."""
    require_images(dataset=dataset)
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise ApplicationError(
            _("offset must be ≥ 0 and limit between 1 and %(max)s.") % {"max": MAX_PAGE},
            code="invalid",
        )
    parquet = _ParquetIndex.of(materialise(dataset.parquet_path))
    if label is None:
        indices = list(range(offset, min(offset + limit, parquet.rows)))
    else:
        labels = parquet.file.read(columns=["label"]).column("label").to_pylist()
        matching = [index for index, value in enumerate(labels) if value == label]
        indices = matching[offset : offset + limit]
    has_mask = (dataset.images or {}).get("task") == "segmentation"
    rows = []
    for group, group_indices in parquet.by_row_group(indices):
        table = parquet.file.read_row_group(group, columns=_ROW_COLUMNS)
        start = parquet.starts[group]
        for index in group_indices:
            values = {name: table.column(name)[index - start].as_py() for name in _ROW_COLUMNS}
            rows.append(ImageRow(index=index, has_mask=has_mask, **values))
    return rows


def image_row(dataset: Dataset, index: int) -> ImageRow:
    """One image's row, or 404."""
    rows = image_rows(dataset, offset=index, limit=1) if index >= 0 else []
    if not rows:
        raise NotFound(_("No image %(index)s in this dataset.") % {"index": index})
    return rows[0]


def image_bytes(dataset: Dataset, index: int, column: str) -> bytes:
    """The PNG stored in `column` ("image", "thumbnail" or "mask") of row `index`; 404 when
    there is no such row, or no mask (a classification set)."""
    require_images(dataset=dataset)
    if column not in IMAGE_COLUMNS:
        raise NotFound()
    parquet = _ParquetIndex.of(materialise(dataset.parquet_path))
    if not 0 <= index < parquet.rows:
        raise NotFound(_("No image %(index)s in this dataset.") % {"index": index})
    group = parquet.group_of(index)
    value = (
        parquet.file.read_row_group(group, columns=[column])
        .column(column)[index - parquet.starts[group]]
        .as_py()
    )
    if value is None:
        raise NotFound(_("This image has no mask."))
    return bytes(value)


def mask_overlay(dataset: Dataset, index: int, *, thumbnail: bool = False) -> bytes:
    """The image (or its thumbnail) with its mask drawn over it, one colour per class at
    OVERLAY_OPACITY: a PNG rendered here, so pages need no script to show masks."""
    mask = _png(image_bytes(dataset, index, "mask"))
    image = _png(image_bytes(dataset, index, "thumbnail" if thumbnail else "image"))
    return overlay_png(image, mask)


def overlay_png(image: Image.Image, mask: Image.Image) -> bytes:
    base = image.convert("RGB")
    if mask.size != base.size:
        mask = mask.resize(base.size, Image.Resampling.NEAREST)
    palette = [0, 0, 0]
    for index in range(1, 256):
        palette.extend(_OVERLAY_COLOURS[(index - 1) % len(_OVERLAY_COLOURS)])
    colours = mask.convert("L")
    coloured = colours.copy()
    coloured.putpalette(palette)
    alpha = colours.point(lambda value: int(255 * OVERLAY_OPACITY) if value else 0)
    base.paste(coloured.convert("RGB"), (0, 0), alpha)
    buffer = io.BytesIO()
    base.save(buffer, format="PNG")
    return buffer.getvalue()


def overlay_colour(index: int) -> str:
    """The CSS colour a mask class is drawn in (for the legend)."""
    if index <= 0:
        return "transparent"
    red, green, blue = _OVERLAY_COLOURS[(index - 1) % len(_OVERLAY_COLOURS)]
    return f"#{red:02x}{green:02x}{blue:02x}"


def _png(data: bytes) -> Image.Image:
    # Only ever bytes this platform encoded (engine.ingest.images), never an upload.
    image = Image.open(io.BytesIO(data), formats=["PNG"])
    image.load()
    return image


@dataclasses.dataclass(frozen=True)
class _ParquetIndex:
    """A Parquet file's row groups and where each starts, to read only what a page shows."""

    file: pq.ParquetFile
    starts: list[int]
    rows: int

    @classmethod
    def of(cls, path: Path) -> _ParquetIndex:
        stat = path.stat()
        metadata, starts = _footer(str(path), stat.st_mtime_ns, stat.st_size)
        # A file of its own per call (threads do not share a handle); the footer is cached.
        file = pq.ParquetFile(path, metadata=metadata)
        return cls(file=file, starts=starts, rows=metadata.num_rows)

    def group_of(self, index: int) -> int:
        return bisect.bisect_right(self.starts, index) - 1

    def by_row_group(self, indices: list[int]) -> list[tuple[int, list[int]]]:
        groups: dict[int, list[int]] = {}
        for index in indices:
            groups.setdefault(self.group_of(index), []).append(index)
        return sorted(groups.items())


@lru_cache(maxsize=64)
def _footer(path: str, _mtime_ns: int, _size: int) -> tuple[Any, list[int]]:
    """The footer and the first row of each row group. A gallery page asks for dozens of
    thumbnails of one file; the file is written once (a new file has a new mtime and size,
    hence a new key)."""
    metadata = pq.read_metadata(path)
    starts = []
    total = 0
    for group in range(metadata.num_row_groups):
        starts.append(total)
        total += metadata.row_group(group).num_rows
    return metadata, starts


def image_row_dict(row: ImageRow) -> dict[str, Any]:
    return dataclasses.asdict(row)


__all__ = [
    "IMAGE_COLUMNS",
    "ImageRow",
    "image_bytes",
    "image_count",
    "image_row",
    "image_rows",
    "mask_overlay",
    "require_images",
]
