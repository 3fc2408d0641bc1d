"""From untrusted bytes to a clean image: the type from the content, the pixel count checked
from the header before any pixel is decoded, Pillow's verify, then a fresh decode, and a PNG
re-encoded from the pixels alone (no EXIF, GPS, ICC profile or text chunks survive).

DICOM is read with pydicom (imported only when a DICOM file is met): uncompressed pixel data and
what pydicom 3 decodes by itself (RLE Lossless and deflated transfer syntaxes); JPEG-compressed
DICOM needs plugins (pylibjpeg, GDCM) that are not installed, and is skipped with that reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Longest side of a thumbnail, in pixels.
THUMBNAIL_SIZE = 128
# Transparent pixels are shown over white, as a browser shows a transparent image.
FLATTEN_BACKGROUND = 255
# A mask has one value per class; more distinct values than this is not a mask.
MAX_MASK_VALUES = 255

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
# Recognised only to name them in the reason they are skipped.
_OTHER_SIGNATURES = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"%PDF-", "PDF"),
    (b"RIFF", "RIFF (WebP or other)"),
    (b"PK\x03\x04", "ZIP"),
    (b"II+\x00", "BigTIFF"),
    (b"MM\x00+", "BigTIFF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
)


class ImageRefused(Exception):
    """One file cannot be used; the message is the reason listed to the user."""


@dataclasses.dataclass
class CleanImage:
    """An image rebuilt from its pixels: mode "L" or "RGB", no metadata."""

    image: Image.Image
    source_format: str

    @property
    def channels(self) -> int:
        return 1 if self.image.mode == "L" else 3


def content_format(data: bytes) -> str:
    """The image format the bytes are, from their first bytes (never the file name); raises
    ImageRefused naming what they are instead."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "DICOM"
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    for signature, name in _OTHER_SIGNATURES:
        if data.startswith(signature):
            raise ImageRefused(f"unsupported type ({name})")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg")) or b"<svg" in head:
        raise ImageRefused("unsupported type (SVG)")
    if head.startswith((b"<!doctype html", b"<html")):
        raise ImageRefused("unsupported type (HTML)")
    if not data:
        raise ImageRefused("empty file")
    raise ImageRefused("not an image (PNG, JPEG, TIFF, BMP or DICOM)")


def decode_image(data: bytes, *, max_pixels: int) -> CleanImage:
    """Decode untrusted bytes into a clean "L" or "RGB" image, or raise ImageRefused."""
    source_format = content_format(data)
    if source_format == "DICOM":
        return CleanImage(_decode_dicom(data, max_pixels=max_pixels), "DICOM")
    image = _open_checked(data, source_format, max_pixels=max_pixels)
    return CleanImage(_normalised(image), source_format)


def decode_mask(data: bytes, *, max_pixels: int) -> np.ndarray:
    """A mask's values as a 2-D integer array (no scaling: values are classes). A palette
    image gives its indices; a grey image stored as RGB is accepted when its channels agree."""
    source_format = content_format(data)
    if source_format == "DICOM":
        raise ImageRefused("a DICOM file cannot be a mask")
    image = _open_checked(data, source_format, max_pixels=max_pixels)
    if image.mode in {"1", "L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N"}:
        values = np.asarray(image.convert("L") if image.mode == "1" else image)
    elif image.mode in {"RGB", "RGBA", "LA"}:
        pixels = np.asarray(image)
        colour = pixels[..., :3] if image.mode != "LA" else pixels[..., :1]
        if colour.shape[-1] == 3 and not (
            np.array_equal(colour[..., 0], colour[..., 1])
            and np.array_equal(colour[..., 0], colour[..., 2])
        ):
            raise ImageRefused(
                "the mask has colours: a mask is single-channel, one value per class"
            )
        values = colour[..., 0]
    else:
        raise ImageRefused(f"the mask's pixel format ({image.mode}) is not single-channel")
    if values.ndim != 2:
        raise ImageRefused("the mask is not single-channel")
    if values.size and values.min() < 0:
        raise ImageRefused("the mask has negative values: values are classes 0, 1, 2, …")
    return values.astype(np.int64, copy=False)


def png_bytes(image: Image.Image) -> bytes:
    """Encode as PNG from the pixels alone: a new image carries no `info` (EXIF, ICC, text)."""
    pixels = Image.fromarray(np.asarray(image))
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def thumbnail_bytes(image: Image.Image, *, resample: Image.Resampling) -> bytes:
    """A PNG whose longest side is at most THUMBNAIL_SIZE (masks use nearest-neighbour, so
    their values stay classes)."""
    thumbnail = image.copy()
    thumbnail.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), resample=resample)
    return png_bytes(thumbnail)


def _open_checked(data: bytes, source_format: str, *, max_pixels: int) -> Image.Image:
    """Open with only the plugin the content named, check the declared size, verify the file's
    structure (Pillow's verify), then open it again and decode it."""
    with warnings.catch_warnings():
        # The pixel limit below is ours (and lower); Pillow's own warning is noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data), formats=[source_format])
            _check_pixels(probe.size, max_pixels)
            probe.verify()
            image = Image.open(io.BytesIO(data), formats=[source_format])
            _check_pixels(image.size, max_pixels)
            image.load()
        except ImageRefused:
            raise
        except Image.DecompressionBombError:
            # Pillow's own check, at twice its (higher) limit, can fire before ours.
            raise ImageRefused(
                f"more than {max_pixels:,} pixels "
                "(MLMANAGER_MAX_IMAGE_PIXELS; a decompression bomb?)"
            ) from None
        except UnidentifiedImageError:
            raise ImageRefused(f"damaged {source_format} file: cannot be identified") from None
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as error:
            raise ImageRefused(
                f"damaged or truncated {source_format} file ({_short(error)})"
            ) from None
        except Exception as error:
            raise ImageRefused(f"damaged {source_format} file ({_short(error)})") from None
    if image.format != source_format:
        raise ImageRefused(f"content is not a {source_format} file")
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    return image


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageRefused("the image has no pixels")
    if width * height > max_pixels:
        raise ImageRefused(
            f"{width:,} × {height:,} pixels is more than {max_pixels:,} "
            "(MLMANAGER_MAX_IMAGE_PIXELS; a decompression bomb?)"
        )


def _normalised(image: Image.Image) -> Image.Image:
    """Mode "L" or "RGB": EXIF orientation applied, alpha flattened onto white, palettes
    expanded, 16-bit and float images scaled to 8 bits by their own range."""
    with contextlib.suppress(Exception):
        image = ImageOps.exif_transpose(image) or image
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    elif mode == "PA":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in {"RGBA", "LA", "La", "RGBa"}:
        return _flatten(image)
    if mode == "1":
        return image.convert("L")
    if mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        return Image.fromarray(_scaled_to_bytes(np.asarray(image)), mode="L")
    if mode == "L":
        return image
    if mode == "RGB":
        return image
    # CMYK, YCbCr, LAB, HSV, ...
    return image.convert("RGB")


def _flatten(image: Image.Image) -> Image.Image:
    """Composite over white, so a transparent background looks as a browser shows it."""
    if image.mode in {"LA", "La"}:
        pixels = np.asarray(image.convert("LA")).astype(np.float32)
        alpha = pixels[..., 1] / 255.0
        value = pixels[..., 0] * alpha + FLATTEN_BACKGROUND * (1.0 - alpha)
        return Image.fromarray(np.clip(np.rint(value), 0, 255).astype(np.uint8), mode="L")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (FLATTEN_BACKGROUND,) * 3 + (255,))
    background.alpha_composite(rgba)
    return background.convert("RGB")


def _scaled_to_bytes(values: np.ndarray) -> np.ndarray:
    """Stretch an image of any numeric range to 0..255 by its own minimum and maximum: a
    12-bit X-ray in a 16-bit container would be near black if divided by 257."""
    values = values.astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    low = float(values[finite].min())
    high = float(values[finite].max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.where(finite, values, low) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _decode_dicom(data: bytes, *, max_pixels: int) -> Image.Image:
    import pydicom
    from pydicom.errors import InvalidDicomError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dataset = pydicom.dcmread(io.BytesIO(data))
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as error:
            raise ImageRefused(f"damaged DICOM file ({_short(error)})") from None
        if "PixelData" not in dataset:
            raise ImageRefused("DICOM file without pixel data")
        rows = int(dataset.get("Rows", 0) or 0)
        columns = int(dataset.get("Columns", 0) or 0)
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        _check_pixels((columns, rows * max(frames, 1)), max_pixels)
        try:
            pixels = _first_frame(dataset, frames)
        except NotImplementedError:
            syntax = getattr(dataset.file_meta, "TransferSyntaxUID", None)
            name = getattr(syntax, "name", str(syntax))
            raise ImageRefused(
                f"compressed DICOM ({name}) needs a decoder plugin that is not installed"
            ) from None
        except Exception as error:
            raise ImageRefused(f"damaged DICOM pixel data ({_short(error)})") from None
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    if pixels.ndim == 2:
        grey = _scaled_to_bytes(pixels)
        if photometric == "MONOCHROME1":  # brightest means least signal
            grey = 255 - grey
        return Image.fromarray(grey, mode="L")
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        if pixels.dtype != np.uint8:
            pixels = _scaled_to_bytes(pixels)
        return Image.fromarray(np.ascontiguousarray(pixels.astype(np.uint8)), mode="RGB")
    raise ImageRefused(f"DICOM pixel data of shape {pixels.shape} is not an image")


def _first_frame(dataset: Any, frames: int) -> np.ndarray:
    from pydicom.pixels import pixel_array

    if frames > 1:
        return np.asarray(pixel_array(dataset, index=0))
    return np.asarray(dataset.pixel_array)


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 120 else text[:119] + "…"
