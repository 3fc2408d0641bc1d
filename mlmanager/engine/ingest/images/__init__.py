"""Turn an uploaded zip of images (untrusted) into one Parquet file of clean images.

How a zip flows through the modules of this package:

1. `archive` opens the zip (its declared entry count checked before `zipfile` parses the
   directory), lists the entries that may be read — unsafe names (`..`, absolute paths, drive
   letters, backslashes), links and encrypted entries are skipped with the reason; `__MACOSX/`,
   dot files and Thumbs.db silently — and reads one entry at a time into memory, bounded by
   the bytes actually inflated (per file, in total, and against the compressed size).
2. `layout` decides from the names alone: `images/` + `masks/` (segmentation), one CSV of
   `filename,label` rows, or class folders (classification).
3. `decode` names each file's type from its content (PNG, JPEG, TIFF, BMP, DICOM), checks the
   pixel count from the header before decoding, runs Pillow's verify, decodes afresh and
   rebuilds the image from its pixels (mode "L" or "RGB"): no metadata survives.
4. `reader.read_image_zip` writes the rows, sorted by name, in row groups of 64 to a temporary
   sibling of the destination, moved into place only when complete, and reports the profile's
   `images` block (`ImageSetReport.images_profile`).

Problems with the archive as a whole raise `IngestError` (message for the user); a file that
cannot be used is skipped and listed with its reason.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from mlmanager.engine.ingest.images.archive import open_archive
from mlmanager.engine.ingest.images.decode import THUMBNAIL_SIZE
from mlmanager.engine.ingest.images.reader import (
    ROW_GROUP_ROWS,
    SCHEMA,
    ImageLimits,
    ImageSetReport,
    read_image_zip,
)

__all__ = [
    "ROW_GROUP_ROWS",
    "SCHEMA",
    "THUMBNAIL_SIZE",
    "ImageLimits",
    "ImageSetReport",
    "check_image_zip",
    "is_spreadsheet_zip",
    "is_zip",
    "read_image_zip",
]

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"


def is_zip(path: Path) -> bool:
    with Path(path).open("rb") as file:
        return file.read(4) in {_ZIP_MAGIC, _EMPTY_ZIP_MAGIC}


def is_spreadsheet_zip(path: Path) -> bool:
    """Whether a zip is an Excel workbook (an xlsx is a zip holding `[Content_Types].xml` and
    an `xl/` folder) rather than an archive of images: told by the content, not the name."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    return "[Content_Types].xml" in names and any(name.startswith("xl/") for name in names)


def check_image_zip(path: Path, limits: ImageLimits) -> None:
    """What can be told of an image archive at once, without inflating anything: it is a
    readable zip and lists no more entries than the limits allow. Raises IngestError."""
    open_archive(Path(path), limits.archive_limits()).close()
