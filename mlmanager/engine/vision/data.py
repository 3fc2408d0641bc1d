"""Read a stored image data set (`data.parquet`) into arrays, split it, and turn any picture
into the network's input. Uses pyarrow, Pillow and numpy only (no torch), so the predictions'
pre-processing and the tests of the split stay light."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mlmanager.engine.vision.spec import HOLDOUT_SHARE, VALIDATION_SHARE, VisionError

logger = logging.getLogger(__name__)

# Parquet key-value metadata the writer may set to name the mask classes (a JSON list, index
# order); without it they are "background", "1", "2", ... like the profile's `mask_classes`.
MASK_CLASSES_METADATA_KEY = b"mlmanager.mask_classes"
# More mask classes than this means the masks are not class indices (a 0/255 mask, a photo).
MAX_MASK_CLASSES = 64
MIN_IMAGES = 8
_READ_COLUMNS = {
    "classification": ["name", "image", "label"],
    "segmentation": ["name", "image", "mask"],
}


@dataclasses.dataclass
class ImageData:
    """The usable images of a data set at one size: `images` uint8 N×C×S×S, `targets` int64 N
    (class index) or uint8 N×S×S (mask of class indices)."""

    task: str
    classes: list[str]
    channels: int
    image_size: int
    names: list[str]
    images: np.ndarray
    targets: np.ndarray
    skipped: list[dict]

    def __len__(self) -> int:
        return len(self.names)


@dataclasses.dataclass(frozen=True)
class Split:
    train: np.ndarray
    validation: np.ndarray
    holdout: np.ndarray


def read_image_data(path: Path, *, task: str, image_size: int) -> ImageData:
    """Decode every usable row of `path` resized to `image_size` × `image_size`.

    A row without a label (classification) or mask (segmentation), or whose PNG does not
    decode, is skipped and listed with the reason; the data set's mix of grey and colour
    images becomes one channel count (colour as soon as one image has colour).
    """
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise VisionError(
            "The image data set's file cannot be read; process the data set again.",
            code="dataset_unreadable",
        ) from exc
    missing = [column for column in _READ_COLUMNS[task] if column not in parquet.schema_arrow.names]
    if missing:
        raise VisionError(
            f"This data set has no {missing[0]} column, so it cannot train a {task} model.",
            code="dataset_not_images",
        )
    metadata = parquet.schema_arrow.metadata or {}
    pictures: list[Image.Image] = []
    raw_targets: list = []
    names: list[str] = []
    skipped: list[dict] = []
    for batch in parquet.iter_batches(batch_size=256, columns=_READ_COLUMNS[task]):
        for row in batch.to_pylist():
            name = str(row["name"])
            target = row["label"] if task == "classification" else row["mask"]
            if target is None or row["image"] is None:
                skipped.append(
                    {
                        "file": name,
                        "reason": f"no {'label' if task == 'classification' else 'mask'}",
                    }
                )
                continue
            try:
                picture = decode_png(row["image"])
                if task == "segmentation":
                    target = decode_png(target).convert("L")
                    if target.size != picture.size:
                        target = target.resize(picture.size, Image.Resampling.NEAREST)
            except (
                OSError,
                ValueError,
                UnidentifiedImageError,
                Image.DecompressionBombError,
            ) as exc:
                skipped.append(
                    {"file": name, "reason": f"cannot be decoded ({exc.__class__.__name__})"}
                )
                continue
            pictures.append(picture)
            raw_targets.append(target)
            names.append(name)
    if len(names) < MIN_IMAGES:
        raise VisionError(
            f"Only {len(names)} usable images; at least {MIN_IMAGES} are needed to train and "
            "measure a model.",
            code="too_few_images",
        )
    channels = 3 if any(_channels_of(picture) == 3 for picture in pictures) else 1
    images = np.stack([to_array(picture, channels, image_size) for picture in pictures])
    if task == "classification":
        classes = sorted({str(label) for label in raw_targets})
        if len(classes) < 2:
            raise VisionError(
                "Every image has the same label; a classifier needs at least two classes.",
                code="single_class",
            )
        index = {label: position for position, label in enumerate(classes)}
        targets = np.array([index[str(label)] for label in raw_targets], dtype=np.int64)
    else:
        targets = np.stack([mask_array(mask, image_size) for mask in raw_targets])
        class_count = int(max(np.asarray(mask).max() for mask in raw_targets)) + 1
        if class_count > MAX_MASK_CLASSES:
            raise VisionError(
                f"The masks hold values up to {class_count - 1}; a mask's pixels must be class "
                f"numbers (0 = background, 1, 2, …, at most {MAX_MASK_CLASSES - 1}).",
                code="mask_values",
            )
        if class_count < 2:
            raise VisionError(
                "Every mask is empty (background only); there is nothing to segment.",
                code="empty_masks",
            )
        classes = _mask_class_names(metadata.get(MASK_CLASSES_METADATA_KEY), class_count)
    return ImageData(
        task=task,
        classes=classes,
        channels=channels,
        image_size=image_size,
        names=names,
        images=images,
        targets=targets,
        skipped=skipped,
    )


def split(data: ImageData, *, seed: int) -> Split:
    """Holdout, validation and training indices, stratified by class for classification (by
    the largest foreground class of each mask for segmentation), the same for the same seed."""
    if data.task == "classification":
        strata = data.targets
    else:
        counts = np.stack(
            [np.bincount(mask.ravel(), minlength=len(data.classes)) for mask in data.targets]
        )
        counts[:, 0] = 0
        strata = np.where(counts.max(axis=1) > 0, counts.argmax(axis=1), 0)
    generator = np.random.default_rng(seed)
    holdout, rest = _stratified(np.arange(len(data)), strata, HOLDOUT_SHARE, generator)
    validation, train = _stratified(rest, strata[rest], VALIDATION_SHARE, generator)
    return Split(train=np.sort(train), validation=np.sort(validation), holdout=np.sort(holdout))


def _stratified(
    indices: np.ndarray, strata: np.ndarray, share: float, generator: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    taken: list[int] = []
    kept: list[int] = []
    for stratum in np.unique(strata):
        members = indices[strata == stratum]
        members = members[generator.permutation(len(members))]
        # A class of one image stays in training; any larger one gives at least one image.
        count = 0 if len(members) < 2 else max(1, round(len(members) * share))
        taken.extend(members[:count].tolist())
        kept.extend(members[count:].tolist())
    return np.array(taken, dtype=np.int64), np.array(kept, dtype=np.int64)


def decode_png(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def to_array(picture: Image.Image, channels: int, image_size: int) -> np.ndarray:
    """`picture` as uint8 C×S×S: converted to grey or colour, resized (bilinear)."""
    picture = to_mode(picture, channels)
    if picture.size != (image_size, image_size):
        picture = picture.resize((image_size, image_size), Image.Resampling.BILINEAR)
    array = np.asarray(picture, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def mask_array(mask: Image.Image, image_size: int) -> np.ndarray:
    if mask.size != (image_size, image_size):
        mask = mask.resize((image_size, image_size), Image.Resampling.NEAREST)
    return np.asarray(mask, dtype=np.uint8)


def to_mode(picture: Image.Image, channels: int) -> Image.Image:
    """Any Pillow image as mode "L" (channels=1) or "RGB" (3).

    16-bit and float images (DICOM, TIFF) are stretched from their own range to 0..255 first,
    which Pillow's `convert` would instead clip; transparency is flattened on black.
    """
    if picture.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(picture, dtype=np.float64)
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        scaled = (values - low) / (high - low) * 255.0 if high > low else np.zeros_like(values)
        picture = Image.fromarray(np.nan_to_num(scaled).astype(np.uint8), mode="L")
    target = "L" if channels == 1 else "RGB"
    if picture.mode == target:
        return picture
    if picture.mode in ("LA", "RGBA", "PA") or (
        picture.mode == "P" and "transparency" in picture.info
    ):
        picture = picture.convert("RGBA")
        flattened = Image.new("RGB", picture.size)
        flattened.paste(picture, mask=picture.getchannel("A"))
        picture = flattened
    return picture.convert(target)


def _channels_of(picture: Image.Image) -> int:
    return 1 if picture.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F") else 3


def _mask_class_names(raw: bytes | None, class_count: int) -> list[str]:
    names = ["background", *(str(index) for index in range(1, class_count))]
    if raw:
        try:
            given = json.loads(raw)
        except ValueError:
            given = None
        if isinstance(given, list):
            for index, name in enumerate(given[:class_count]):
                if isinstance(name, str) and name.strip():
                    names[index] = name.strip()
    return names
