"""What an archive's folders say: class folders, images/ + masks/, or a CSV of labels.

Only names decide the layout (the content decides each file's type later); a name is matched
and shown, never used as a path. Checked in this order:

1. `images/` and `masks/` folders (optionally under one top folder), paired by relative path
   without extension → segmentation ("masks").
2. One CSV file of `filename,label` rows (header optional) → classification ("csv").
3. Class folders `cat/1.png` (optionally under one top folder) → classification ("folders").
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from pathlib import PurePosixPath

from mlmanager.engine.ingest.errors import IngestError

_CSV_SUFFIX = ".csv"
# Header names of the CSV's two columns, when it has a header.
_FILENAME_HEADERS = {"filename", "file", "file_name", "image", "path", "name", "id"}
_LABEL_HEADERS = {"label", "class", "target", "category", "y"}


@dataclasses.dataclass(frozen=True)
class Item:
    """One image to read: its entry, its mask's entry (segmentation) or its label."""

    name: str
    mask: str | None = None
    label: str | None = None


@dataclasses.dataclass
class Layout:
    task: str  # "classification" | "segmentation"
    layout: str  # "folders" | "csv" | "masks"
    items: list[Item]
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def detect_layout(names: list[str], read_text: Callable[[str], str]) -> Layout:
    """The layout of an archive whose usable file entries are `names`; `read_text` returns a
    CSV entry's text. Raises IngestError when no layout fits."""
    if not names:
        raise IngestError("No images found: the archive holds no files.", code="no_images")
    top = _common_top(names)
    relative = {name: _strip(name, top) for name in names}
    folders = {parts[0].lower() for parts in relative.values() if len(parts) >= 2}
    if {"images", "masks"} <= folders:
        return _masks_layout(relative)
    csv_files = [name for name in names if name.lower().endswith(_CSV_SUFFIX)]
    if len(csv_files) > 1:
        listed = ", ".join(sorted(csv_files)[:5])
        raise IngestError(
            f"The archive has several CSV files ({listed}): keep one CSV of filename,label "
            "rows, or use class folders.",
            code="ambiguous_layout",
        )
    if csv_files:
        return _csv_layout(names, csv_files[0], read_text)
    return _folders_layout(relative)


def _common_top(names: list[str]) -> str | None:
    """The one folder every entry is under, when some entry is at least two folders deep
    (`pets/cat/1.png`): a wrapper folder, not a class."""
    first_parts = {PurePosixPath(name).parts[0] for name in names}
    if len(first_parts) != 1:
        return None
    if not any(len(PurePosixPath(name).parts) >= 3 for name in names):
        return None
    return first_parts.pop()


def _strip(name: str, top: str | None) -> tuple[str, ...]:
    parts = PurePosixPath(name).parts
    return parts[1:] if top is not None else parts


def _folders_layout(relative: dict[str, tuple[str, ...]]) -> Layout:
    items = []
    skipped = []
    for name, parts in sorted(relative.items()):
        if len(parts) < 2:
            skipped.append((name, "not in a class folder"))
        else:
            items.append(Item(name=name, label=parts[0]))
    if not items:
        raise IngestError(
            "No images found in class folders. Put each class's images in a folder named "
            "after it (cat/1.png, dog/2.png), add a CSV of filename,label rows, or use images/ "
            "and masks/ folders for segmentation.",
            code="no_layout",
        )
    return Layout(task="classification", layout="folders", items=items, skipped=skipped)


def _masks_layout(relative: dict[str, tuple[str, ...]]) -> Layout:
    images: dict[str, str] = {}
    masks: dict[str, str] = {}
    skipped = []
    for name, parts in sorted(relative.items()):
        folder = parts[0].lower() if len(parts) >= 2 else ""
        key = str(PurePosixPath(*parts[1:]).with_suffix("")) if len(parts) >= 2 else ""
        if folder == "images":
            images[key] = name
        elif folder == "masks":
            if key in masks:
                skipped.append((name, "a second mask for the same image"))
            else:
                masks[key] = name
        else:
            skipped.append((name, "not in images/ or masks/"))
    items = []
    for key, name in sorted(images.items(), key=lambda pair: pair[1]):
        mask = masks.get(key)
        if mask is None:
            skipped.append((name, "no mask with the same name in masks/"))
        else:
            items.append(Item(name=name, mask=mask))
    for key, name in masks.items():
        if key not in images:
            skipped.append((name, "mask without an image of the same name in images/"))
    if not items:
        raise IngestError(
            "No images found with a mask: each image in images/ needs a mask of the same name "
            "in masks/ (images/a.png ↔ masks/a.png).",
            code="no_images",
        )
    return Layout(task="segmentation", layout="masks", items=items, skipped=sorted(skipped))


def _csv_layout(names: list[str], csv_name: str, read_text: Callable[[str], str]) -> Layout:
    rows = _csv_rows(read_text(csv_name))
    folder = str(PurePosixPath(csv_name).parent)
    others = [name for name in names if name != csv_name]
    by_name = {name: name for name in others}
    by_basename: dict[str, list[str]] = {}
    for name in others:
        by_basename.setdefault(PurePosixPath(name).name, []).append(name)

    def match(value: str) -> str | None:
        value = value.strip().replace("\\", "/").lstrip("./") if value.strip() else ""
        if not value:
            return None
        inside = value if folder in {"", "."} else f"{folder}/{value}"
        for candidate in (inside, value):
            if candidate in by_name:
                return candidate
        found = by_basename.get(PurePosixPath(value).name, [])
        return found[0] if len(found) == 1 else None

    if rows and match(rows[0][0]) is None and _is_header(rows[0]):
        rows = rows[1:]
    labels: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    notes: list[str] = []
    unmatched = 0
    for row in rows:
        if len(row) < 2 or not row[0].strip():
            continue
        entry = match(row[0])
        if entry is None:
            unmatched += 1
            continue
        label = row[1].strip()
        if not label:
            skipped.append((entry, f"no label in {csv_name}"))
            continue
        if entry in labels and labels[entry] != label:
            skipped.append((entry, f"listed twice in {csv_name} with different labels"))
            labels.pop(entry)
            continue
        labels[entry] = label
    skipped_names = {name for name, _reason in skipped}
    if unmatched:
        notes.append(f"{unmatched:,} rows of {csv_name} name no file in the archive.")
    for name in others:
        if name not in labels and name not in skipped_names:
            skipped.append((name, f"not listed in {csv_name}"))
    if not labels:
        raise IngestError(
            f"No images found: no row of {csv_name} names a file in the archive. It needs "
            "filename,label rows naming the images (1.png,cat).",
            code="no_images",
        )
    items = [Item(name=name, label=label) for name, label in sorted(labels.items())]
    return Layout(
        task="classification", layout="csv", items=items, skipped=sorted(skipped), notes=notes
    )


def _csv_rows(text: str) -> list[list[str]]:
    sample = text[:65536]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return [row for row in csv.reader(io.StringIO(text), dialect) if row]


def _is_header(row: list[str]) -> bool:
    cells = [cell.strip().lower() for cell in row[:2]]
    return cells[0] in _FILENAME_HEADERS or (len(cells) > 1 and cells[1] in _LABEL_HEADERS)
