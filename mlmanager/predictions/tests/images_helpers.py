"""Images for the image-prediction tests: digits (scikit-learn's, bundled) and generated shapes,
as the bytes a client would upload; and hostile files."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import Any

import numpy as np
from PIL import Image

from mlmanager.engine.vision.testing import generate_shape_image


def png(image: Image.Image, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def digit(index: int = 0) -> tuple[bytes, str]:
    """The PNG of digit `index` of scikit-learn's set, and its true label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    array = np.clip(digits.images[index] * (255.0 / 16.0), 0, 255).astype(np.uint8)
    return png(Image.fromarray(array, mode="L")), str(int(digits.target[index]))


def shape(seed: int = 1, size: int = 24) -> bytes:
    image, _mask = generate_shape_image(np.random.default_rng(seed), size)
    return png(Image.fromarray(image, mode="L"))


def jpeg_with_exif() -> bytes:
    """A JPEG carrying EXIF (GPS position and a comment) that must not survive re-encoding."""
    image = Image.new("RGB", (16, 16), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010E] = "secret description"  # ImageDescription
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def png_bomb(side: int = 20_000) -> bytes:
    """A tiny PNG whose header declares side × side pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * side
    data = zlib.compress(row * 4, 9)  # far fewer rows than declared: never decoded anyway
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()
