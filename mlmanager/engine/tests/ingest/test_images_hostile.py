"""The hostile-image battery against read_image_zip: bombs, traversal, links, encryption,
polyglots, truncated files, metadata. Each case ends in the right skip reason or a clear error,
and a refused archive leaves nothing behind."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import ExifTags, Image

from mlmanager.engine.ingest.images import ImageLimits, read_image_zip
from mlmanager.engine.tests.ingest.image_archives import (
    build_zip,
    decompression_bomb_png,
    dicom,
    encoded,
    flag_encrypted,
    jpeg,
    png,
    symlink_entry,
    two_classes,
    zip_bytes,
)
from mlmanager.engine.tests.ingest.test_images import decoded, read, refused


def stored(table, name: str) -> bytes:
    return table.column("image")[table.column("name").to_pylist().index(name)].as_py()


def skip_reasons(report) -> dict[str, str]:
    return {entry["file"]: entry["reason"] for entry in report.skipped}


def test_decompression_bomb_is_refused_from_its_header(tmp_path) -> None:
    bomb = decompression_bomb_png(10_000, 10_000)
    huge = decompression_bomb_png(100_000, 100_000)
    assert len(bomb) < 100 and len(huge) < 100
    report, _table = read(
        tmp_path, [*two_classes(2), ("cat/bomb.png", bomb), ("cat/huge.png", huge)]
    )
    assert skip_reasons(report) == {
        "cat/bomb.png": "10,000 × 10,000 pixels is more than 40,000,000 "
        "(MLMANAGER_MAX_IMAGE_PIXELS; a decompression bomb?)",
        # Past twice Pillow's own limit, Pillow refuses it while reading the header.
        "cat/huge.png": "more than 40,000,000 pixels "
        "(MLMANAGER_MAX_IMAGE_PIXELS; a decompression bomb?)",
    }


def test_pixel_limit_is_the_setting(tmp_path) -> None:
    report, _table = read(
        tmp_path,
        [*two_classes(2), ("cat/wide.png", png(0, (30, 30), "L"))],
        limits=ImageLimits(max_pixels=500),
    )
    assert skip_reasons(report)["cat/wide.png"].startswith("30 × 30 pixels is more than 500")


def test_zip_bomb_entry_stops_at_the_ratio(tmp_path) -> None:
    # 8 MB of zeros deflate to ~8 KB: reading stops past 1 MB, at a ratio over 200.
    report, _table = read(tmp_path, [*two_classes(2), ("cat/bomb.bmp", b"BM" + bytes(8 << 20))])
    assert skip_reasons(report) == {
        "cat/bomb.bmp": "inflates more than 200× its compressed size (a zip bomb?)"
    }


def test_total_inflated_bytes_are_capped(tmp_path) -> None:
    error = refused(tmp_path, two_classes(3), limits=ImageLimits(max_total_bytes=300))
    assert error.code == "archive_too_large"
    assert "MLMANAGER_MAX_ZIP_UNCOMPRESSED_BYTES" in error.message


def test_declared_sizes_are_not_trusted(tmp_path) -> None:
    # The directory claims 10 bytes for an entry that inflates to 2 MB: the read stops at the
    # declared size and the entry is refused as damaged; nothing trusts the claim.
    source = tmp_path / "in" / "upload.zip"
    source.parent.mkdir()
    source.write_bytes(zip_bytes([*two_classes(2), ("cat/big.bmp", b"BM" + bytes(2 << 20))]))
    data = bytearray(source.read_bytes())
    central = bytes(data).rfind(b"PK\x01\x02")  # big.bmp was written last
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    source.write_bytes(bytes(data))
    report = read_image_zip(source, tmp_path / "out" / "data.parquet")
    assert skip_reasons(report)["cat/big.bmp"].startswith("damaged in the archive")


def test_per_file_limit_counts_the_bytes_read(tmp_path) -> None:
    report, _table = read(
        tmp_path,
        [*two_classes(2), ("cat/big.bmp", b"BM" + bytes(2 << 20))],
        limits=ImageLimits(max_file_bytes=1 << 20, max_compression_ratio=1e9),
    )
    assert skip_reasons(report)["cat/big.bmp"] == "larger than 1,048,576 bytes"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../x.png", "unsafe name: “..” leaves the folder"),
        ("cat/../../x.png", "unsafe name: “..” leaves the folder"),
        ("/etc/x.png", "unsafe name: absolute path"),
        ("C:\\x.png", "unsafe name: contains a backslash"),
        ("C:/x.png", "unsafe name: drive letter"),
        ("cat\\x.png", "unsafe name: contains a backslash"),
    ],
)
def test_traversal_names_are_skipped(tmp_path, name, reason) -> None:
    report, table = read(tmp_path, [*two_classes(2), (name, png())])
    assert skip_reasons(report) == {name: reason}
    assert name not in table.column("name").to_pylist()
    assert not (tmp_path / "x.png").exists()


def test_symlink_entry_is_skipped(tmp_path) -> None:
    report, _table = read(tmp_path, [*two_classes(2), symlink_entry("cat/link.png")])
    assert skip_reasons(report) == {"cat/link.png": "symbolic link: links are not followed"}


def test_encrypted_entry_is_skipped(tmp_path) -> None:
    source = build_zip(tmp_path / "upload.zip", [*two_classes(2), ("cat/secret.png", png())])
    flag_encrypted(source, "cat/secret.png")
    report = read_image_zip(source, tmp_path / "out" / "data.parquet")
    assert skip_reasons(report) == {
        "cat/secret.png": "encrypted: password-protected files cannot be read"
    }


def test_png_followed_by_html_and_zip_is_re_encoded_without_them(tmp_path) -> None:
    payload = b"<html><script>alert(1)</script></html>" + zip_bytes([("evil.txt", b"x")])
    report, table = read(tmp_path, [*two_classes(2), ("cat/poly.png", png() + payload)])
    assert report.count == 5
    stored = table.column("image").to_pylist()[
        table.column("name").to_pylist().index("cat/poly.png")
    ]
    assert b"<script>" not in stored and b"PK\x03\x04" not in stored
    assert decoded(stored).format == "PNG"


def test_jpeg_that_is_also_a_zip_is_re_encoded(tmp_path) -> None:
    polyglot = jpeg() + zip_bytes([("payload.html", b"<html></html>")])
    _report, table = read(tmp_path, [*two_classes(2), ("dog/poly.jpg", polyglot)])
    row = table.column("name").to_pylist().index("dog/poly.jpg")
    assert table.column("format")[row].as_py() == "JPEG"
    assert b"PK\x03\x04" not in table.column("image")[row].as_py()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>", "unsupported type (SVG)"),
        (b"<?xml version='1.0'?><svg/>", "unsupported type (SVG)"),
        (b"<!DOCTYPE html><html></html>", "unsupported type (HTML)"),
        (b"GIF89a\x01\x00\x01\x00", "unsupported type (GIF)"),
        (b"%PDF-1.7\n", "unsupported type (PDF)"),
        (b"just text", "not an image (PNG, JPEG, TIFF, BMP or DICOM)"),
        (b"", "empty file"),
    ],
)
def test_other_types_named_png_are_skipped(tmp_path, content, reason) -> None:
    report, _table = read(tmp_path, [*two_classes(2), ("cat/fake.png", content)])
    assert skip_reasons(report) == {"cat/fake.png": reason}


def test_png_header_followed_by_html_is_damaged(tmp_path) -> None:
    report, _table = read(
        tmp_path, [*two_classes(2), ("cat/fake.png", b"\x89PNG\r\n\x1a\n<html></html>")]
    )
    assert skip_reasons(report)["cat/fake.png"].startswith("damaged")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_skipped(tmp_path, fmt) -> None:
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    data = encoded(noisy, fmt)
    report, _table = read(tmp_path, [*two_classes(2), ("cat/cut.img", data[: len(data) // 2])])
    assert skip_reasons(report)["cat/cut.img"].startswith(f"damaged or truncated {fmt} file")


def test_huge_exif_with_gps_is_dropped(tmp_path) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.ImageDescription] = "secret " * 8_500  # ~60 KB
    exif[ExifTags.Base.Make] = "Camera"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (47.0, 22.0, 1.0)
    data = jpeg(size=(32, 32), exif=exif.tobytes())
    assert len(data) > 55_000
    _report, table = read(tmp_path, [*two_classes(2), ("cat/photo.jpg", data)])
    row = table.column("name").to_pylist().index("cat/photo.jpg")
    stored = table.column("image")[row].as_py()
    image = decoded(stored)
    assert "exif" not in image.info and not image.getexif()
    assert b"secret" not in stored and b"Exif" not in stored and b"Camera" not in stored
    assert len(stored) < 5_000


def test_icc_profile_and_text_chunks_are_dropped(tmp_path) -> None:
    from PIL import ImageCms, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "private note")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encoded(Image.new("RGB", (8, 8), (1, 2, 3)), "PNG", pnginfo=info, icc_profile=icc)
    _report, table = read(tmp_path, [*two_classes(2), ("cat/tagged.png", data)])
    stored_png = stored(table, "cat/tagged.png")
    assert b"private note" not in stored_png and b"iCCP" not in stored_png


def test_sixteen_bit_tiff_is_scaled_by_its_range(tmp_path) -> None:
    values = np.array([[1000, 2000], [3000, 4000]], dtype=np.uint16)
    data = encoded(Image.fromarray(values), "TIFF")
    _report, table = read(tmp_path, [*two_classes(2), ("cat/scan.tif", data)])
    row = table.column("name").to_pylist().index("cat/scan.tif")
    image = decoded(table.column("image")[row].as_py())
    assert image.mode == "L"
    assert np.asarray(image).tolist() == [[0, 85], [170, 255]]
    assert table.column("format")[row].as_py() == "TIFF"


def test_palette_png_with_transparency_is_flattened_on_white(tmp_path) -> None:
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((0, 0), 0)
    data = encoded(palette, "PNG", transparency=0)
    _report, table = read(tmp_path, [*two_classes(2), ("cat/palette.png", data)])
    image = decoded(stored(table, "cat/palette.png"))
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((1, 1)) == (255, 0, 0)


def test_grey_and_colour_images_are_counted_by_channels(tmp_path) -> None:
    entries = [
        *two_classes(2),
        ("cat/grey.png", png(90, mode="L")),
        ("dog/bw.bmp", encoded(Image.new("1", (5, 5), 1), "BMP")),
    ]
    report, _table = read(tmp_path, entries)
    assert report.channels == {"1": 2, "3": 4}
    assert report.formats == {"BMP": 1, "PNG": 5}


def test_dicom_is_read_with_pydicom(tmp_path) -> None:
    entries = [
        *two_classes(2),
        ("cat/scan.dcm", dicom()),
        ("dog/inverted.dcm", dicom(monochrome1=True)),
    ]
    report, table = read(tmp_path, entries)
    names = table.column("name").to_pylist()
    scan = decoded(table.column("image")[names.index("cat/scan.dcm")].as_py())
    inverted = decoded(table.column("image")[names.index("dog/inverted.dcm")].as_py())
    assert (scan.mode, scan.size) == ("L", (10, 12))
    assert scan.getpixel((0, 0)) == 0 and inverted.getpixel((0, 0)) == 255
    assert report.formats["DICOM"] == 2
    assert b"Test^Patient" not in table.column("image")[names.index("cat/scan.dcm")].as_py()


def test_damaged_dicom_is_skipped(tmp_path) -> None:
    data = dicom()
    report, _table = read(tmp_path, [*two_classes(2), ("cat/cut.dcm", data[:-50])])
    assert skip_reasons(report)["cat/cut.dcm"].startswith("damaged DICOM")


def test_too_many_files_are_refused(tmp_path) -> None:
    error = refused(tmp_path, two_classes(2), limits=ImageLimits(max_images=3))
    assert error.code == "too_many_images"
    assert "MLMANAGER_MAX_IMAGES" in error.message


def test_too_many_entries_are_refused_before_reading_the_directory(tmp_path) -> None:
    entries = [(f"cat/{index}.png", b"") for index in range(40)]
    error = refused(tmp_path, entries, limits=ImageLimits(max_images=0))
    assert error.code == "too_many_files"


def test_not_a_zip_is_refused(tmp_path) -> None:
    source = tmp_path / "in" / "upload.zip"
    source.parent.mkdir()
    source.write_bytes(b"PK\x03\x04 not really a zip")
    from mlmanager.engine.ingest import IngestError

    with pytest.raises(IngestError) as caught:
        read_image_zip(source, tmp_path / "out" / "data.parquet")
    assert caught.value.code == "invalid_zip"
    assert not (tmp_path / "out").exists()


def test_every_file_bad_names_the_reasons(tmp_path) -> None:
    entries = [("cat/a.png", b"<svg/>"), ("dog/b.png", decompression_bomb_png())]
    error = refused(tmp_path, entries)
    assert error.code == "no_images"
    assert error.message.startswith(
        "No images found that can be used. Skipped: cat/a.png: unsupported type (SVG); "
    )


def test_output_rows_hold_nothing_but_pixels(tmp_path) -> None:
    _report, table = read(tmp_path, two_classes(2))
    for data in table.column("image").to_pylist() + table.column("thumbnail").to_pylist():
        image = Image.open(io.BytesIO(data))
        assert set(image.info) <= {"dpi"}  # nothing the upload carried
