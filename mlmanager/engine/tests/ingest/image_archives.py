"""Builders of image files and zip archives for the image-ingest tests, hostile ones included.

Everything is generated here (Pillow, numpy, pydicom); nothing is downloaded.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def png(
    colour: int | tuple[int, ...] = (200, 30, 30), size: tuple[int, int] = (24, 16), mode="RGB"
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(colour: tuple[int, int, int] = (30, 200, 30), size=(24, 16), **options) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def shape_image(index: int, size: int = 16) -> Image.Image:
    """A grey square on black whose position depends on `index`: a mask for it is easy."""
    image = Image.new("L", (size, size), 0)
    offset = index % (size // 2)
    ImageDraw.Draw(image).rectangle([offset, offset, offset + size // 3, offset + size // 3], 200)
    return image


def square_mask(index: int, size: int = 16, value: int = 255) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    offset = index % (size // 2)
    ImageDraw.Draw(mask).rectangle([offset, offset, offset + size // 3, offset + size // 3], value)
    return mask


def decompression_bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares width × height pixels (CRC fixed, so it parses)."""
    data = bytearray(png(0, (1, 1), "L"))
    # Signature (8) + IHDR length (4) + "IHDR" (4), then width and height.
    struct.pack_into(">II", data, 16, width, height)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF
    struct.pack_into(">I", data, 29, crc)
    return bytes(data)


def dicom(rows: int = 12, columns: int = 10, *, monochrome1: bool = False) -> bytes:
    """An uncompressed 16-bit DICOM image with a gradient, written by pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.PatientName = "Test^Patient"
    dataset.Modality = "OT"
    dataset.Rows = rows
    dataset.Columns = columns
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    dataset.BitsAllocated = 16
    dataset.BitsStored = 12
    dataset.HighBit = 11
    dataset.PixelRepresentation = 0
    pixels = (np.arange(rows * columns, dtype=np.uint16) * 30 % 4096).reshape(rows, columns)
    dataset.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def build_zip(path: Path, entries: Iterable[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


def zip_bytes(entries: Iterable[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def symlink_entry(name: str, target: str = "/etc/passwd") -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def flag_encrypted(path: Path, name: str) -> Path:
    """Mark entry `name` of the zip at `path` as encrypted, in its local header and its
    directory entry (zipfile cannot encrypt; the flag is what readers see)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
        position = archive.start_dir  # type: ignore[attr-defined]
    data[info.header_offset + 6] |= 0x1
    while data[position : position + 4] == b"PK\x01\x02":
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, position + 28)
        if data[position + 46 : position + 46 + name_length].decode() == name:
            data[position + 8] |= 0x1
        position += 46 + name_length + extra_length + comment_length
    path.write_bytes(bytes(data))
    return path


def two_classes(count: int = 3) -> list[tuple[str, bytes]]:
    return [
        *[(f"cat/{index}.png", png((200, 30, 30 + index))) for index in range(count)],
        *[(f"dog/{index}.png", png((30, 30, 200 - index))) for index in range(count)],
    ]


def segmentation_entries(count: int = 3) -> list[tuple[str, bytes]]:
    entries = []
    for index in range(count):
        entries.append((f"images/{index}.png", encoded(shape_image(index), "PNG")))
        entries.append((f"masks/{index}.png", encoded(square_mask(index), "PNG")))
    return entries
