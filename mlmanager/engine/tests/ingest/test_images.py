"""read_image_zip on well-formed archives: the layouts, the stored rows and the report."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mlmanager.engine.ingest import IngestError
from mlmanager.engine.ingest.images import (
    ROW_GROUP_ROWS,
    SCHEMA,
    ImageLimits,
    is_spreadsheet_zip,
    read_image_zip,
)
from mlmanager.engine.tests.ingest.image_archives import (
    build_zip,
    encoded,
    png,
    segmentation_entries,
    shape_image,
    square_mask,
    two_classes,
)


def read(tmp_path: Path, entries, **options):
    source = build_zip(tmp_path / "in" / "upload.zip", entries)
    destination = tmp_path / "out" / "data.parquet"
    report = read_image_zip(source, destination, **options)
    assert sorted(path.name for path in destination.parent.iterdir()) == ["data.parquet"]
    return report, pq.read_table(destination)


def refused(tmp_path: Path, entries, **options) -> IngestError:
    source = build_zip(tmp_path / "in" / "upload.zip", entries)
    destination = tmp_path / "out" / "data.parquet"
    with pytest.raises(IngestError) as caught:
        read_image_zip(source, destination, **options)
    # Neither the file nor its temporary sibling is left behind.
    assert not destination.parent.exists() or list(destination.parent.iterdir()) == []
    return caught.value


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_class_folders_are_classification(tmp_path) -> None:
    report, table = read(tmp_path, two_classes(3))
    assert table.schema.equals(SCHEMA)
    assert table.column("name").to_pylist() == [
        "cat/0.png", "cat/1.png", "cat/2.png", "dog/0.png", "dog/1.png", "dog/2.png",
    ]  # fmt: skip
    assert table.column("label").to_pylist() == ["cat"] * 3 + ["dog"] * 3
    assert table.column("mask").null_count == 6
    assert report.images_profile() == {
        "count": 6,
        "task": "classification",
        "layout": "folders",
        "classes": {"cat": 3, "dog": 3},
        "skipped": [],
        "skipped_count": 0,
        "sizes": {
            "width": {"min": 24, "max": 24, "median": 24.0},
            "height": {"min": 16, "max": 16, "median": 16.0},
        },
        "channels": {"3": 6},
        "formats": {"PNG": 6},
        "notes": [],
        "confirmed": False,
    }
    first = decoded(table.column("image")[0].as_py())
    assert (first.format, first.mode, first.size) == ("PNG", "RGB", (24, 16))
    assert first.getpixel((0, 0)) == (200, 30, 30)


def test_one_top_folder_is_a_wrapper_not_a_class(tmp_path) -> None:
    entries = [(f"pets/{name}", data) for name, data in two_classes(2)]
    report, _table = read(tmp_path, [*entries, ("pets/loose.png", png())])
    assert report.classes == {"cat": 2, "dog": 2}
    assert report.skipped == [{"file": "pets/loose.png", "reason": "not in a class folder"}]


def test_system_files_are_ignored_silently(tmp_path) -> None:
    entries = [
        *two_classes(2),
        ("__MACOSX/cat/._0.png", b"\x00\x05\x16\x07"),
        ("cat/.DS_Store", b"\x00\x00\x00\x01Bud1"),
        ("dog/Thumbs.db", b"\xd0\xcf\x11\xe0"),
        ("cat/", b""),
    ]
    report, _table = read(tmp_path, entries)
    assert report.count == 4
    assert report.skipped_count == 0


def test_type_comes_from_content_not_name(tmp_path) -> None:
    jpeg_named_png = encoded(Image.new("RGB", (8, 8), (0, 0, 255)), "JPEG")
    _report, table = read(tmp_path, [*two_classes(2), ("dog/photo.png", jpeg_named_png)])
    names = table.column("name").to_pylist()
    formats = dict(zip(names, table.column("format").to_pylist(), strict=True))
    assert formats["dog/photo.png"] == "JPEG"
    assert decoded(table.column("image")[4].as_py()).format == "PNG"


def test_thumbnails_fit_128_pixels(tmp_path) -> None:
    big = encoded(Image.new("RGB", (400, 100), (10, 20, 30)), "PNG")
    report, table = read(tmp_path, [*two_classes(1), ("cat/big.png", big)])
    thumbnail = decoded(table.column("thumbnail")[1].as_py())
    assert thumbnail.size == (128, 32)
    assert report.sizes["width"] == {"min": 24, "max": 400, "median": 24.0}


def test_row_groups_hold_64_rows(tmp_path) -> None:
    entries = [(f"{label}/{index:03}.png", png()) for label in ("a", "b") for index in range(40)]
    source = build_zip(tmp_path / "upload.zip", entries)
    read_image_zip(source, tmp_path / "data.parquet")
    metadata = pq.ParquetFile(tmp_path / "data.parquet").metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [
        ROW_GROUP_ROWS,
        80 - ROW_GROUP_ROWS,
    ]


def test_csv_of_labels_with_header(tmp_path) -> None:
    entries = [
        (
            "data/labels.csv",
            b"filename,label\n1.png,cat\nsub/2.png,dog\n3.png,dog\nmissing.png,cat\n",
        ),
        ("data/1.png", png()),
        ("data/sub/2.png", png()),
        ("data/3.png", png()),
        ("data/unlisted.png", png()),
    ]
    report, table = read(tmp_path, entries)
    assert report.layout == "csv"
    names = table.column("name").to_pylist()
    assert dict(zip(names, table.column("label").to_pylist(), strict=True)) == {
        "data/1.png": "cat",
        "data/3.png": "dog",
        "data/sub/2.png": "dog",
    }
    assert report.skipped == [
        {"file": "data/unlisted.png", "reason": "not listed in data/labels.csv"}
    ]
    assert report.notes == [
        "1 rows of data/labels.csv name no file in the archive.",
        "Classes with fewer than 2 images (too few to train and validate on): cat",
    ]


def test_csv_without_header_matches_base_names(tmp_path) -> None:
    entries = [
        ("labels.csv", b"a.png;yes\nb.png;no\n"),
        ("pics/a.png", png()),
        ("pics/b.png", png()),
    ]
    report, _table = read(tmp_path, entries)
    assert report.classes == {"no": 1, "yes": 1}


def test_several_csv_files_are_ambiguous(tmp_path) -> None:
    error = refused(tmp_path, [("a.csv", b"x,y"), ("b.csv", b"x,y"), ("x.png", png())])
    assert error.code == "ambiguous_layout"


def test_images_and_masks_are_segmentation(tmp_path) -> None:
    report, table = read(tmp_path, segmentation_entries(3))
    assert (report.task, report.layout) == ("segmentation", "masks")
    assert report.mask_classes == ["background", "1"]
    assert report.mask_values == [0, 255]
    assert report.classes == {"background": 3, "1": 3}
    assert table.column("label").null_count == 3
    mask = np.asarray(decoded(table.column("mask")[0].as_py()))
    expected = (np.asarray(square_mask(0)) == 255).astype(np.uint8)
    assert decoded(table.column("mask")[0].as_py()).mode == "L"
    assert np.array_equal(mask, expected)
    assert report.images_profile()["mask_classes"] == ["background", "1"]


def test_mask_values_map_to_sorted_class_indices(tmp_path) -> None:
    masks = []
    for index, (low, high) in enumerate([(10, 40), (10, 80)]):
        mask = Image.new("L", (16, 16), low)
        mask.paste(high, (0, 0, 4, 4))
        masks.append((f"masks/{index}.png", encoded(mask, "PNG")))
    images = [(f"images/{index}.png", encoded(shape_image(index), "PNG")) for index in range(2)]
    report, table = read(tmp_path, [*images, *masks])
    assert report.mask_values == [10, 40, 80]
    assert report.mask_classes == ["background", "1", "2"]
    assert report.classes == {"background": 2, "1": 1, "2": 1}
    second = np.asarray(decoded(table.column("mask")[1].as_py()))
    assert set(np.unique(second)) == {0, 2}


def test_masks_that_do_not_fit_are_skipped_with_the_reason(tmp_path) -> None:
    entries = [
        *segmentation_entries(2),
        ("images/small.png", encoded(shape_image(0), "PNG")),
        ("masks/small.png", encoded(square_mask(0, size=8), "PNG")),
        ("images/alone.png", encoded(shape_image(0), "PNG")),
        ("masks/orphan.png", encoded(square_mask(0), "PNG")),
        ("images/coloured.png", encoded(shape_image(0), "PNG")),
        ("masks/coloured.png", png((255, 0, 0), (16, 16))),
    ]
    report, _table = read(tmp_path, entries)
    assert report.count == 2
    assert {entry["file"]: entry["reason"] for entry in report.skipped} == {
        "images/alone.png": "no mask with the same name in masks/",
        "masks/orphan.png": "mask without an image of the same name in images/",
        "images/small.png": "mask masks/small.png is 8×8, the image 16×16",
        "images/coloured.png": (
            "mask masks/coloured.png: the mask has colours: a mask is single-channel, "
            "one value per class"
        ),
    }


def test_masks_of_one_value_are_refused(tmp_path) -> None:
    entries = [("images/a.png", png(0, (8, 8), "L")), ("masks/a.png", png(0, (8, 8), "L"))]
    assert refused(tmp_path, entries).code == "one_class"


def test_only_one_class_is_refused(tmp_path) -> None:
    error = refused(tmp_path, [("cat/1.png", png()), ("cat/2.png", png())])
    assert error.code == "one_class"
    assert error.message.startswith("Only one class (“cat”): a classifier needs at least two.")


def test_flat_images_without_labels_are_refused(tmp_path) -> None:
    error = refused(tmp_path, [("1.png", png()), ("2.png", png())])
    assert error.code == "no_layout"


def test_empty_archive_has_no_images(tmp_path) -> None:
    assert refused(tmp_path, []).message == "No images found: the archive holds no files."


def test_classes_with_one_image_are_kept_with_a_note(tmp_path) -> None:
    report, _table = read(tmp_path, [*two_classes(2), ("bird/1.png", png())])
    assert report.classes == {"bird": 1, "cat": 2, "dog": 2}
    assert report.notes == [
        "Classes with fewer than 2 images (too few to train and validate on): bird"
    ]


def test_progress_rises_to_one_and_cancel_stops(tmp_path) -> None:
    seen: list[float] = []
    read(tmp_path, two_classes(2), on_progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0
    error = refused(tmp_path / "again", two_classes(2), should_cancel=lambda: True)
    assert error.code == "cancelled"


def test_spreadsheet_zip_told_from_image_zip(tmp_path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.append(["a"])
    workbook.save(tmp_path / "book.zip")
    assert is_spreadsheet_zip(tmp_path / "book.zip")
    assert not is_spreadsheet_zip(build_zip(tmp_path / "images.zip", two_classes(1)))


def test_limits_default_to_the_documented_values() -> None:
    assert ImageLimits() == ImageLimits(
        max_images=50_000, max_pixels=40_000_000, max_total_bytes=4 << 30
    )
