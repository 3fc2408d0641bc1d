"""Batch predictions of an image model: a zip of images predicted by a job into a CSV (one row
per file: the answer, or why the file was skipped) and, for a segmentation, a zip of masks.

The zip is read with the rules of an image dataset's zip (engine `ingest.images.archive`):
entries are never extracted or used as paths, links and names that leave the folder are
refused, every read is bounded by the bytes actually inflated (per file, in total, and by the
compression ratio), and each image goes through the same checks and re-encoding as an image
of a dataset or of a single prediction (`images.received_image`). A file that cannot be used
is listed in the CSV with the reason; the batch fails only when the archive itself cannot be
read or holds no usable image.

Images are answered in chunks of CHUNK_IMAGES, so memory stays bounded by a chunk whatever
the archive's length. The results are stored under their names only when complete. Batch
answers are not added to the prediction log (as a table's batch rows are not): the CSV is the
record, and keeping every image again would double the storage a batch takes.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.http import FileResponse
from django.utils.translation import gettext as _

from mlmanager.core import storage
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.datasets import files
from mlmanager.engine.ingest.errors import IngestError
from mlmanager.engine.ingest.images import ImageLimits, check_image_zip, is_zip
from mlmanager.engine.ingest.images.archive import (
    ArchiveLimits,
    ArchiveTotal,
    EntryRefused,
    is_ignored,
    open_archive,
    read_entry,
    refusal_reason,
)
from mlmanager.engine.ingest.images.decode import ImageRefused
from mlmanager.jobs.runner import JobContext
from mlmanager.predictions.images import ReceivedImage, _mask_png, received_image
from mlmanager.predictions.models import BatchPrediction
from mlmanager.predictions.serving import ServedImageVersion, served_image_version

# Images answered at once: a chunk's images, tensors and masks are what the job holds.
CHUNK_IMAGES = 32
_FORMULA_START = re.compile(r"^[=+\-@\t\r]")


def image_limits() -> ImageLimits:
    """The limits a dataset's zip is read with, from the same settings (the engine's defaults
    where a setting is not there)."""
    defaults = ImageLimits()
    return ImageLimits(
        max_images=int(getattr(settings, "MLMANAGER_MAX_IMAGES", defaults.max_images)),
        max_pixels=int(getattr(settings, "MLMANAGER_MAX_IMAGE_PIXELS", defaults.max_pixels)),
        max_total_bytes=int(
            getattr(settings, "MLMANAGER_MAX_ZIP_UNCOMPRESSED_BYTES", defaults.max_total_bytes)
        ),
    )


def check_zip_upload(temporary_path: Path) -> None:
    """What can be told at once of an image batch's upload: a zip by its content, listing no
    more entries than a dataset's zip may."""
    if not is_zip(temporary_path):
        raise ApplicationError(
            _("An image model predicts a zip of images: upload a .zip file."),
            code="not_a_zip",
        )
    try:
        check_image_zip(temporary_path, image_limits())
    except IngestError as error:
        raise ApplicationError(error.message, code=error.code) from None


def masks_path(batch: BatchPrediction) -> str:
    return f"{batch.storage_dir}/masks.zip"


def masks_download_name(batch: BatchPrediction) -> str:
    return f"model-{batch.machine_id}-v{batch.version_number}-batch-{batch.pk}-masks.zip"


def has_masks(batch: BatchPrediction) -> bool:
    return batch.job.status == batch.job.Status.SUCCEEDED and bool(
        (batch.job.result or {}).get("masks")
    )


def masks_file_response(batch: BatchPrediction) -> FileResponse:
    """A finished segmentation batch's masks (a zip), for the API and the pages alike."""
    if not has_masks(batch):
        raise NotFound(_("This batch has no masks to download."))
    try:
        stream = files.open_for_reading(masks_path(batch))
    except FileNotFoundError:
        raise NotFound(_("This batch has no masks to download.")) from None
    return storage.StoredFileResponse(
        stream, as_attachment=True, filename=masks_download_name(batch)
    )


# --- the job -------------------------------------------------------------------------------


def image_batch_work(context: JobContext, batch: BatchPrediction) -> dict[str, Any]:
    assert batch.version is not None
    served = served_image_version(batch.version)
    source = files.materialise(batch.source_path)
    limits = image_limits().archive_limits()
    try:
        archive = open_archive(source, limits)
    except IngestError as error:
        raise ApplicationError(error.message, code=error.code) from None
    segmentation = served.task == "segmentation"
    counts = {"rows": 0, "answered": 0, "skipped": 0}
    with archive, files.writing(batch.result_path) as result:
        with result.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(_header(served))
            if segmentation:
                with (
                    files.writing(masks_path(batch)) as masks_file,
                    zipfile.ZipFile(masks_file, "w", zipfile.ZIP_DEFLATED) as masks,
                ):
                    _answer_all(context, served, archive, limits, writer, masks, counts)
            else:
                _answer_all(context, served, archive, limits, writer, None, counts)
        result_size = result.stat().st_size
    if not counts["answered"]:
        raise ApplicationError(
            _("The zip holds no image that could be used (%(skipped)s files skipped).")
            % {"skipped": counts["skipped"]},
            code="no_images",
        )
    # Each image answered is a row; charged before the source is deleted, so a refused
    # charge (402) fails the job with nothing delivered (batches.batch_charge).
    from mlmanager.predictions.batches import batch_charge  # batches imports this module

    batch_charge(batch=batch, rows=counts["answered"])
    files.delete(batch.source_path)  # the result is the record now
    BatchPrediction.objects.filter(pk=batch.pk).update(
        row_count=counts["rows"], result_size_bytes=result_size
    )
    context.log(
        _("%(answered)s images predicted, %(skipped)s files skipped.")
        % {"answered": f"{counts['answered']:,}", "skipped": f"{counts['skipped']:,}"}
    )
    return {
        "batch_id": batch.pk,
        "rows": counts["rows"],
        "images": counts["answered"],
        "skipped": counts["skipped"],
        "masks": segmentation,
        "warnings": {},
    }


def _header(served: ServedImageVersion) -> list[str]:
    if served.task == "segmentation":
        areas = [f"area_{name}" for name in served.classes]
        return ["name", "confidence", "agreement", "needs_review", *areas, "mask", "skipped"]
    probabilities = [f"probability_{name}" for name in served.classes]
    return [
        "name",
        "label",
        "confidence",
        "agreement",
        "needs_review",
        *probabilities,
        "skipped",
    ]


def _answer_all(
    context: JobContext,
    served: ServedImageVersion,
    archive: zipfile.ZipFile,
    limits: ArchiveLimits,
    writer: Any,
    masks: zipfile.ZipFile | None,
    counts: dict[str, int],
) -> None:
    entries = sorted(
        (
            info
            for info in archive.infolist()
            if not info.is_dir() and not is_ignored(info.filename)
        ),
        key=lambda info: info.filename,
    )
    total = ArchiveTotal(limits.max_total_bytes)
    mask_names: set[str] = set()
    # Files in name order, answered a chunk at a time; a skipped file keeps its place.
    chunk: list[ReceivedImage | tuple[str, str]] = []
    for done, item in enumerate(_received(archive, entries, limits, total), start=1):
        chunk.append(item)
        if done % CHUNK_IMAGES == 0 or done == len(entries):
            _answer_chunk(served, chunk, writer, masks, mask_names, counts)
            chunk = []
            context.check_cancelled()
            context.progress(
                100 * done / max(1, len(entries)),
                _("Predicted %(done)s of %(total)s files")
                % {"done": f"{done:,}", "total": f"{len(entries):,}"},
            )


def _received(
    archive: zipfile.ZipFile,
    entries: list[zipfile.ZipInfo],
    limits: ArchiveLimits,
    total: ArchiveTotal,
) -> Iterator[ReceivedImage | tuple[str, str]]:
    seen: set[str] = set()
    for info in entries:
        name = info.filename
        reason = refusal_reason(info)
        if reason is None and name in seen:
            reason = "listed twice in the archive"
        seen.add(name)
        if reason is not None:
            yield name, reason
            continue
        try:
            data = read_entry(archive, info, limits, total)
            yield received_image(data, name=name)
        except (EntryRefused, ImageRefused) as refused:
            yield name, str(refused)
        except IngestError as error:  # the archive's total: nothing more is read
            raise ApplicationError(error.message, code=error.code) from None


def _answer_chunk(
    served: ServedImageVersion,
    chunk: list[ReceivedImage | tuple[str, str]],
    writer: Any,
    masks: zipfile.ZipFile | None,
    mask_names: set[str],
    counts: dict[str, int],
) -> None:
    received = [item for item in chunk if isinstance(item, ReceivedImage)]
    pictures = [item.image for item in received]
    if not pictures:
        answers: list[Any] = []
    elif served.task == "segmentation":
        answers = served.model.segment(pictures)
    else:
        answers = served.model.predict(pictures)
    answer_of = dict(zip(map(id, received), answers, strict=True))
    for item in chunk:
        counts["rows"] += 1
        if isinstance(item, tuple):  # (name, reason): skipped
            writer.writerow(_skipped_row(served, *item))
            counts["skipped"] += 1
            continue
        counts["answered"] += 1
        answer = answer_of[id(item)]
        if served.task == "segmentation":
            assert masks is not None
            mask_name = _mask_name(item.name, mask_names)
            masks.writestr(mask_name, _mask_png(answer.mask))
            areas = [float(answer.areas.get(name, 0.0)) for name in served.classes]
            writer.writerow(
                [
                    _cell(item.name),
                    float(answer.confidence),
                    float(answer.agreement),
                    bool(answer.needs_review),
                    *areas,
                    _cell(mask_name),
                    "",
                ]
            )
        else:
            probabilities = [float(answer.probabilities.get(name, 0.0)) for name in served.classes]
            writer.writerow(
                [
                    _cell(item.name),
                    _cell(str(answer.label)),
                    float(answer.confidence),
                    float(answer.agreement),
                    bool(answer.needs_review),
                    *probabilities,
                    "",
                ]
            )


def _skipped_row(served: ServedImageVersion, name: str, reason: str) -> list[Any]:
    width = len(_header(served))
    return [_cell(name), *([""] * (width - 2)), _cell(reason)]


def _mask_name(image_name: str, taken: set[str]) -> str:
    """The mask's name in the masks zip: the image's (already checked: no "..", not absolute)
    with a .png suffix, numbered when two images differ only by their suffix."""
    base = str(PurePosixPath(image_name).with_suffix(".png"))
    name, number = base, 1
    while name in taken:
        number += 1
        name = str(PurePosixPath(base).with_stem(f"{PurePosixPath(base).stem}-{number}"))
    taken.add(name)
    return name


def _cell(text: str) -> str:
    """A text cell a spreadsheet would run as a formula is escaped with a leading quote, as
    the table batches' CSV does."""
    return f"'{text}" if _FORMULA_START.match(text) else text
