"""The entry point: an untrusted zip in, one Parquet file of clean images out, and a report."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import statistics
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from mlmanager.engine.ingest.context import Progress
from mlmanager.engine.ingest.errors import IngestError
from mlmanager.engine.ingest.images.archive import (
    ArchiveLimits,
    ArchiveTotal,
    EntryRefused,
    is_ignored,
    open_archive,
    read_entry,
    refusal_reason,
)
from mlmanager.engine.ingest.images.decode import (
    MAX_MASK_VALUES,
    ImageRefused,
    decode_image,
    decode_mask,
    png_bytes,
    thumbnail_bytes,
)
from mlmanager.engine.ingest.images.layout import Item, Layout, detect_layout

logger = logging.getLogger(__name__)

# Pages read a few dozen thumbnails at a time: a row group of 64 rows is what they read.
ROW_GROUP_ROWS = 64
# The report lists this many skipped files by name; `skipped_count` has them all.
SKIPPED_LISTED = 200
# A CSV of labels is read whole; 50 000 rows of names and labels fit well under this.
MAX_LABELS_CSV_BYTES = 64 << 20
# The directory may list a mask and macOS's `__MACOSX/._name` copy beside each image, and
# folders and a CSV besides.
ENTRIES_PER_IMAGE = 4
EXTRA_ENTRIES = 1_000

SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("image", pa.binary(), nullable=False),
        pa.field("thumbnail", pa.binary(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("mask", pa.binary()),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("channels", pa.int32(), nullable=False),
        pa.field("format", pa.string(), nullable=False),
    ]
)
# PNG is already compressed: compressing it again costs time and saves nothing.
_COMPRESSION = {
    "name": "snappy",
    "image": "none",
    "thumbnail": "none",
    "label": "snappy",
    "mask": "none",
    "width": "snappy",
    "height": "snappy",
    "channels": "snappy",
    "format": "snappy",
}


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    """What one archive may hold. The three settings-backed values come from
    MLMANAGER_MAX_IMAGES, MLMANAGER_MAX_IMAGE_PIXELS and MLMANAGER_MAX_ZIP_UNCOMPRESSED_BYTES."""

    max_images: int = 50_000
    max_pixels: int = 40_000_000
    max_total_bytes: int = 4 << 30
    # One file: a 40 MP 16-bit RGBA TIFF, uncompressed, is 320 MB.
    max_file_bytes: int = 512 << 20
    # Deflate reaches ~1030× on constant data; an image rarely passes 50×.
    max_compression_ratio: float = 200.0

    def archive_limits(self) -> ArchiveLimits:
        return ArchiveLimits(
            max_entries=self.max_images * ENTRIES_PER_IMAGE + EXTRA_ENTRIES,
            max_file_bytes=self.max_file_bytes,
            max_total_bytes=self.max_total_bytes,
            max_compression_ratio=self.max_compression_ratio,
        )


@dataclasses.dataclass
class ImageSetReport:
    """What reading the archive found: the profile's `images` block (`images_profile`)."""

    count: int
    task: str
    layout: str
    classes: dict[str, int]
    skipped: list[dict[str, str]]
    skipped_count: int
    sizes: dict[str, dict[str, float]]
    channels: dict[str, int]
    formats: dict[str, int]
    mask_classes: list[str] | None = None
    # Segmentation: the mask pixel value of each class index (index 0 = the lowest value).
    mask_values: list[int] | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def images_profile(self) -> dict[str, Any]:
        block: dict[str, Any] = {
            "count": self.count,
            "task": self.task,
            "layout": self.layout,
            "classes": dict(self.classes),
            "skipped": list(self.skipped),
            "skipped_count": self.skipped_count,
            "sizes": self.sizes,
            "channels": dict(self.channels),
            "formats": dict(self.formats),
            "notes": list(self.notes),
            "confirmed": False,
        }
        if self.mask_classes is not None:
            block["mask_classes"] = list(self.mask_classes)
            block["mask_values"] = list(self.mask_values or [])
        return block

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Skipped:
    """Files left out, with the reason: the first SKIPPED_LISTED listed, all counted."""

    def __init__(self) -> None:
        self.listed: list[dict[str, str]] = []
        self.count = 0
        self._names: set[str] = set()

    def add(self, name: str, reason: str) -> None:
        if name in self._names:
            return
        self._names.add(name)
        self.count += 1
        if len(self.listed) < SKIPPED_LISTED:
            self.listed.append({"file": name, "reason": reason})


def read_image_zip(
    source: Path,
    destination_parquet: Path,
    *,
    limits: ImageLimits | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> ImageSetReport:
    """Read the zip at `source` into `destination_parquet` (one row per kept image, sorted by
    name, row groups of ROW_GROUP_ROWS) and report what was found and skipped.

    The file is written to a temporary sibling and moved into place only when complete; on
    any error nothing new appears at the destination. Problems with the archive as a whole
    raise IngestError (code "cancelled" when `should_cancel` said stop); a file that cannot be
    used is skipped and listed with its reason."""
    limits = limits or ImageLimits()
    archive_limits = limits.archive_limits()
    progress = Progress(on_progress)
    skipped = _Skipped()
    total = ArchiveTotal(limits.max_total_bytes)
    with open_archive(Path(source), archive_limits) as archive:
        entries = _usable_entries(archive, skipped)
        if len(entries) > limits.max_images * 2 + 1:  # an image and its mask each, a CSV
            raise IngestError(
                f"The archive has {len(entries):,} files; at most {limits.max_images:,} images "
                "are read (MLMANAGER_MAX_IMAGES).",
                code="too_many_files",
            )

        def read_text(name: str) -> str:
            try:
                data = read_entry(
                    archive, entries[name], archive_limits, total, max_bytes=MAX_LABELS_CSV_BYTES
                )
            except EntryRefused as refused:
                raise IngestError(
                    f"{name} cannot be read: {refused}.", code="invalid_csv"
                ) from None
            try:
                return data.decode("utf-8-sig")
            except UnicodeDecodeError:
                return data.decode("cp1252", errors="replace")

        layout = detect_layout(sorted(entries), read_text)
        if len(layout.items) > limits.max_images:
            raise IngestError(
                f"The archive has {len(layout.items):,} images; this server accepts at most "
                f"{limits.max_images:,} (MLMANAGER_MAX_IMAGES).",
                code="too_many_images",
            )
        for name, reason in layout.skipped:
            skipped.add(name, reason)
        reader = _EntryReader(archive, entries, archive_limits, total, limits, should_cancel)
        mask_mapping = None
        if layout.task == "segmentation":
            mask_mapping = _mask_values(reader, layout, skipped, progress)
        with _atomic_file(Path(destination_parquet)) as temporary:
            report = _write_rows(
                reader, layout, temporary, skipped, progress, mask_mapping=mask_mapping
            )
    progress(1.0)
    logger.info(
        "read image archive: %s images (%s), %s skipped",
        report.count,
        report.task,
        report.skipped_count,
    )
    return report


class _EntryReader:
    """Reads one entry at a time within the archive's limits, honouring cancellation."""

    def __init__(
        self,
        archive: zipfile.ZipFile,
        entries: dict[str, zipfile.ZipInfo],
        archive_limits: ArchiveLimits,
        total: ArchiveTotal,
        limits: ImageLimits,
        should_cancel: Callable[[], bool] | None,
    ):
        self.archive = archive
        self.entries = entries
        self.archive_limits = archive_limits
        self.total = total
        self.limits = limits
        self.should_cancel = should_cancel

    def read(self, name: str) -> bytes:
        if self.should_cancel is not None and self.should_cancel():
            raise IngestError("The upload was cancelled.", code="cancelled")
        return read_entry(self.archive, self.entries[name], self.archive_limits, self.total)


def _usable_entries(archive: zipfile.ZipFile, skipped: _Skipped) -> dict[str, zipfile.ZipInfo]:
    """File entries that may be read: folders and system files left out silently, unsafe
    names, links and encrypted entries listed with the reason."""
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename
        reason = refusal_reason(info)
        if reason is not None:
            skipped.add(name, reason)
            continue
        if info.is_dir() or is_ignored(name):
            continue
        if name in entries:
            skipped.add(name, "listed twice in the archive")
            continue
        entries[name] = info
    return entries


def _mask_values(
    reader: _EntryReader, layout: Layout, skipped: _Skipped, progress: Progress
) -> dict[int, int]:
    """First pass over the masks: every value used, mapped to class indices 0..K in sorted
    order (the lowest value, usually 0, is the background). Masks that cannot be used are
    skipped now, with their images."""
    values: set[int] = set()
    usable = []
    for number, item in enumerate(layout.items):
        assert item.mask is not None
        try:
            mask = decode_mask(reader.read(item.mask), max_pixels=reader.limits.max_pixels)
        except (EntryRefused, ImageRefused) as refused:
            skipped.add(item.name, f"mask {item.mask}: {refused}")
        else:
            values.update(int(value) for value in np.unique(mask))
            usable.append(item)
            if len(values) > MAX_MASK_VALUES:
                raise IngestError(
                    f"The masks hold more than {MAX_MASK_VALUES} different values: a mask "
                    "has one value per class (0 = background, 1, 2, …).",
                    code="invalid_masks",
                )
        progress(0.3 * (number + 1) / len(layout.items))
    layout.items = usable
    if not usable:
        raise _no_images_error(skipped)
    if len(values) < 2:
        raise IngestError(
            "Every mask has the same single value: there is nothing to segment. A mask marks "
            "the background with 0 and each class with its own value.",
            code="one_class",
        )
    return {value: index for index, value in enumerate(sorted(values))}


def _write_rows(
    reader: _EntryReader,
    layout: Layout,
    path: Path,
    skipped: _Skipped,
    progress: Progress,
    *,
    mask_mapping: dict[int, int] | None,
) -> ImageSetReport:
    start = 0.3 if mask_mapping is not None else 0.0
    pending: list[dict[str, Any]] = []
    widths: list[int] = []
    heights: list[int] = []
    channels: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    with pq.ParquetWriter(path, SCHEMA, compression=_COMPRESSION) as writer:

        def flush() -> None:
            if pending:
                table = pa.Table.from_pylist(pending, schema=SCHEMA)
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                pending.clear()

        for number, item in enumerate(layout.items):
            result = _row(reader, item, skipped, mask_mapping)
            progress(start + (1 - start) * (number + 1) / len(layout.items))
            if result is None:
                continue
            row, present = result
            pending.append(row)
            widths.append(row["width"])
            heights.append(row["height"])
            channels[str(row["channels"])] += 1
            formats[row["format"]] += 1
            classes.update(present)
            if len(pending) == ROW_GROUP_ROWS:
                flush()
        flush()
    count = len(widths)
    if not count:
        raise _no_images_error(skipped)
    notes = list(layout.notes)
    mask_classes = None
    if mask_mapping is not None:
        mask_classes = ["background", *[str(index) for index in range(1, len(mask_mapping))]]
        classes = Counter({name: classes.get(name, 0) for name in mask_classes})
        if sum(1 for name in mask_classes[1:] if classes[name]) == 0:
            raise IngestError(
                "No kept mask marks anything but the background: there is nothing to segment.",
                code="one_class",
            )
    else:
        if len(classes) < 2:
            only = next(iter(classes), "")
            raise IngestError(
                f"Only one class (“{only}”): a classifier needs at least two. Put each class's "
                "images in its own folder (cat/1.png, dog/2.png).",
                code="one_class",
            )
    few = sorted(name for name, number in classes.items() if number < 2)
    if few:
        notes.append(
            "Classes with fewer than 2 images (too few to train and validate on): "
            + ", ".join(few[:20])
            + ("…" if len(few) > 20 else "")
        )
    return ImageSetReport(
        count=count,
        task=layout.task,
        layout=layout.layout,
        classes=dict(sorted(classes.items())) if mask_classes is None else dict(classes),
        skipped=skipped.listed,
        skipped_count=skipped.count,
        sizes={"width": _spread(widths), "height": _spread(heights)},
        channels=dict(sorted(channels.items())),
        formats=dict(sorted(formats.items())),
        mask_classes=mask_classes,
        mask_values=sorted(mask_mapping) if mask_mapping is not None else None,
        notes=notes,
    )


def _row(
    reader: _EntryReader,
    item: Item,
    skipped: _Skipped,
    mask_mapping: dict[int, int] | None,
) -> tuple[dict[str, Any], set[str]] | None:
    """One image's row and the classes it shows, or None (skipped, with the reason)."""
    max_pixels = reader.limits.max_pixels
    try:
        clean = decode_image(reader.read(item.name), max_pixels=max_pixels)
    except (EntryRefused, ImageRefused) as refused:
        skipped.add(item.name, str(refused))
        return None
    image = clean.image
    row: dict[str, Any] = {
        "name": item.name,
        "image": png_bytes(image),
        "thumbnail": thumbnail_bytes(image, resample=Image.Resampling.LANCZOS),
        "label": item.label,
        "mask": None,
        "width": image.width,
        "height": image.height,
        "channels": clean.channels,
        "format": clean.source_format,
    }
    present = {item.label} if item.label is not None else set()
    if mask_mapping is not None and item.mask is not None:
        try:
            values = decode_mask(reader.read(item.mask), max_pixels=max_pixels)
        except (EntryRefused, ImageRefused) as refused:
            skipped.add(item.name, f"mask {item.mask}: {refused}")
            return None
        if (values.shape[1], values.shape[0]) != image.size:
            skipped.add(
                item.name,
                f"mask {item.mask} is {values.shape[1]}×{values.shape[0]}, "
                f"the image {image.width}×{image.height}",
            )
            return None
        lookup = np.zeros(max(mask_mapping) + 1, dtype=np.uint8)
        for value, index in mask_mapping.items():
            lookup[value] = index
        indices = lookup[values]
        row["mask"] = png_bytes(Image.fromarray(indices, mode="L"))
        names = ["background", *[str(index) for index in range(1, len(mask_mapping))]]
        present = {names[index] for index in np.unique(indices)}
    return row, present


def _spread(values: list[int]) -> dict[str, float]:
    return {"min": min(values), "max": max(values), "median": float(statistics.median(values))}


def _no_images_error(skipped: _Skipped) -> IngestError:
    reasons = "; ".join(f"{entry['file']}: {entry['reason']}" for entry in skipped.listed[:3])
    more = f" (and {skipped.count - 3:,} more)" if skipped.count > 3 else ""
    detail = f" Skipped: {reasons}{more}." if reasons else ""
    return IngestError(f"No images found that can be used.{detail}", code="no_images")


@contextlib.contextmanager
def _atomic_file(destination: Path) -> Iterator[Path]:
    """A temporary sibling of `destination`, moved into place when the block succeeds and
    removed when it fails: a half-written file never has the destination's name."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    os.close(descriptor)
    temporary = Path(temporary_name)
    try:
        yield temporary
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
