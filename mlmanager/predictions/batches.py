"""Batch predictions: a file of rows (an upload or a dataset) predicted by a job, in chunks.

The job streams: an upload is converted to Parquet by the same streaming reader datasets use,
then the engine's `predict_file` reads it in chunks, predicts them and appends them to the
result, so memory stays bounded by one chunk whatever the file's length; CSV text cells that a
spreadsheet would run as a formula are escaped there. The result is stored under its name only
when complete.

What a result holds: for an uploaded file, every column of the file (the caller's own rows),
then the predictions and probabilities; for a dataset, only the model's inputs and the columns
the caller named (`pass_through`), then the predictions. The dataset must be of the model's
team, and any member of that team may download the result: copying every column would let a
batch carry data out of the dataset that nobody asked to share.

An image model's batch is a zip of images, predicted by the same job kind (`image_batches`).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.billing.services import charges, quotas, usage
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.datasets import files
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.selectors import require_columns, require_dataset_ready
from mlmanager.datasets.services import checked_upload, convert_in_job
from mlmanager.engine.prediction import predict_file
from mlmanager.jobs.runner import JobContext
from mlmanager.jobs.services import job_create, job_enqueue, job_set_subject
from mlmanager.machines.models import Machine, ModelVersion
from mlmanager.predictions.image_batches import check_zip_upload, image_batch_work
from mlmanager.predictions.jobs import BATCH_PREDICT
from mlmanager.predictions.models import BatchPrediction, batch_storage_dir
from mlmanager.predictions.schema import warning_counts, warning_summary
from mlmanager.predictions.serving import ServedVersion, is_image_version, served_version

logger = logging.getLogger(__name__)

# Share of the progress bar for converting an upload; predicting takes the rest.
CONVERSION_SHARE = 20
# The source a batch's charge names (Operation.details["source"]).
BATCH_SOURCE = "batch"


def batch_create(
    *,
    machine: Machine,
    version: ModelVersion,
    caller: Caller,
    upload: UploadedFile | None = None,
    dataset: Dataset | None = None,
    output_format: str = BatchPrediction.Format.CSV,
    pass_through: list[str] | None = None,
) -> BatchPrediction:
    """Keep the upload (or note the dataset) and queue the job that predicts it.

    `dataset` must belong to the model's team (callers look it up with
    `access_dataset_of_team`; checked again here). `pass_through` names the dataset's columns
    to copy into the result besides the model's inputs (none by default); an upload keeps all
    of its columns and takes none."""
    user = caller.user
    if (upload is None) == (dataset is None):
        raise ApplicationError(_("Upload a file or choose a dataset (one of the two)."))
    if dataset is not None and dataset.team_id != machine.team_id:
        raise NotFound()  # objects combined in one operation belong to one team
    if output_format not in BatchPrediction.Format.values:
        raise ApplicationError(
            _("The result format must be csv or parquet."),
            code="invalid",
            details={"format": BatchPrediction.Format.values},
        )
    batch = BatchPrediction(
        team_id=machine.team_id,
        machine=machine,
        version=version,
        version_number=version.number,
        created_by=user,
        storage_dir=batch_storage_dir(machine.team_id),
        output_format=output_format,
    )
    temporary_path: Path | None = None
    if is_image_version(version):
        temporary_path = _image_batch_source(batch, upload, dataset, output_format)
    elif upload is not None:
        if pass_through:
            raise ApplicationError(
                _("“pass_through” applies to a dataset; an uploaded file keeps all its columns."),
                code="invalid",
                details={"pass_through": pass_through},
            )
        temporary_path, original_name, extension = checked_upload(upload)
        batch.original_filename = original_name
        batch.source_name = f"source{extension}"
    else:
        assert dataset is not None
        require_dataset_ready(dataset=dataset)
        # Its rows are known: refuse now a batch the team could not pay for at its end.
        quotas.quota_check_predictions(team_id=machine.team_id, rows=dataset.row_count or 0)
        charges.prediction_affordable(team_id=machine.team_id, rows=dataset.row_count or 0)
        batch.dataset = dataset
        batch.original_filename = dataset.original_filename
        batch.pass_through = _checked_pass_through(dataset, pass_through or [])
    try:
        if temporary_path is not None:
            with files.writing(batch.source_path) as destination:
                files.keep_upload(temporary_path, destination)
        with transaction.atomic():
            quotas.quota_check_jobs(team_id=machine.team_id)
            batch.job = job_create(
                team=machine.team,
                created_by=user,
                kind=BATCH_PREDICT,
                description=_("Predict %(file)s with %(model)s")
                % {"file": batch.original_filename, "model": machine.name},
            )
            batch.save()
            job_set_subject(job=batch.job, subject=batch)
            from mlmanager.predictions.tasks import predict_batch  # tasks import this module

            job_enqueue(job=batch.job, task=predict_batch, batch_id=batch.pk)
    except BaseException:
        files.remove_dir(batch.storage_dir)
        raise
    logger.info("model %s: batch %s queued by user %s", machine.pk, batch.pk, caller.user_id)
    return batch


def _image_batch_source(
    batch: BatchPrediction,
    upload: UploadedFile | None,
    dataset: Dataset | None,
    output_format: str,
) -> Path:
    """An image model's batch: a zip upload (its content checked at once, its images by the
    job), answered into a CSV."""
    if upload is None or dataset is not None:
        raise ApplicationError(
            _("An image model predicts a zip of images: upload a .zip file."), code="not_a_zip"
        )
    if output_format != BatchPrediction.Format.CSV:
        raise ApplicationError(
            _("An image model's batch result is a CSV (and a zip of masks for a segmentation)."),
            code="invalid",
            details={"format": [BatchPrediction.Format.CSV]},
        )
    if not upload.size:
        raise ApplicationError(_("The file is empty."), code="empty_file")
    temporary_path = Path(upload.temporary_file_path())  # type: ignore[attr-defined]
    check_zip_upload(temporary_path)
    batch.original_filename = (upload.name or "images.zip")[:255]
    batch.source_name = "source.zip"
    return temporary_path


def _checked_pass_through(dataset: Dataset, names: list[str]) -> list[str]:
    require_columns(dataset=dataset, names=names, field="pass_through")
    return list(dict.fromkeys(names))  # the order given, repeats dropped


def batch_work(context: JobContext, *, batch_id: int) -> dict[str, Any]:
    batch = BatchPrediction.objects.select_related("version", "dataset").filter(pk=batch_id).first()
    if batch is None:
        raise ApplicationError(_("The batch was deleted before it ran."))
    if batch.version is None:
        raise ApplicationError(_("The model version of this batch was deleted."))
    if is_image_version(batch.version):
        return image_batch_work(context, batch)
    served = served_version(batch.version)
    rows_path = _input_rows(context, batch)
    warnings: Counter[str] = Counter()
    try:
        # Stored under its name only once complete (see mlmanager.core.storage.writing).
        with files.writing(batch.result_path) as result:
            count = _predict_file(
                context,
                served,
                rows_path,
                result,
                batch.output_format,
                progress_from=0 if batch.dataset_id is not None else CONVERSION_SHARE,
                pass_through=batch.pass_through,
                warnings=warnings,
            )
            result_size = result.stat().st_size
    finally:
        if batch.dataset_id is None:
            files.working_path(batch.input_parquet_path).unlink(missing_ok=True)
    batch_charge(batch=batch, rows=count)
    BatchPrediction.objects.filter(pk=batch_id).update(
        row_count=count, result_size_bytes=result_size
    )
    context.log(_("%(rows)s rows predicted.") % {"rows": f"{count:,}"})
    if any(warnings.values()):
        context.log(warning_summary(warnings))
    return {"batch_id": batch_id, "rows": count, "warnings": dict(warnings)}


def batch_charge(*, batch: BatchPrediction, rows: int) -> None:
    """Charge a batch by the rows it predicted (an image model's: the images answered), once
    its result is complete. Charged at the end rather than held at the start: an upload's
    row count is known only once the job has read it, and a batch stopped halfway pays
    nothing. A retried job charges once (the batch's idempotency key). A refused charge (402)
    fails the job, and `batch_failed` removes the result: nothing unpaid is delivered. The
    predictions-per-day quota is checked when a dataset's batch is created (its rows are
    known then); an upload's rows are counted here but never refused after the work."""
    with transaction.atomic():
        charges.prediction_charge(
            team_id=batch.team_id,
            rows=rows,
            source=BATCH_SOURCE,
            created_by_id=batch.created_by_id,
            idempotency_key=charges.batch_key(batch.pk),
        )
        usage.usage_count_predictions(team_id=batch.team_id, rows=rows)


def batch_failed(*, batch_id: int) -> None:
    """A failed or cancelled batch keeps its row (the job says why) but none of its files."""
    batch = BatchPrediction.objects.filter(pk=batch_id).first()
    if batch is not None:
        files.remove_dir(batch.storage_dir)


def _input_rows(context: JobContext, batch: BatchPrediction) -> Path:
    if batch.dataset_id is not None:
        assert batch.dataset is not None
        try:
            return files.materialise(batch.dataset.parquet_path)
        except FileNotFoundError:
            raise ApplicationError(
                _("The dataset's file is gone; it may have been deleted.")
            ) from None
    source = files.materialise(batch.source_path)
    # An intermediate that is never stored: on S3 it stays on this worker.
    parquet = files.working_path(batch.input_parquet_path)
    convert_in_job(
        context, source, parquet, original_name=batch.original_filename, share=CONVERSION_SHARE
    )
    files.delete(batch.source_path)  # the Parquet copy is all the job needs now
    return parquet


def _predict_file(
    context: JobContext,
    served: ServedVersion,
    rows_path: Path,
    result: Path,
    output_format: str,
    *,
    progress_from: float,
    pass_through: list[str] | None = None,
    warnings: Counter[str] | None = None,
) -> int:
    """Predict `rows_path` into `result` (engine `predict_file`): the job's progress and
    cancellation between chunks, the inputs training never saw counted per code
    (schema.warning_counts) into `warnings`."""

    def progress(done: int, total: int) -> None:
        context.check_cancelled()
        total = max(1, total)
        context.progress(
            progress_from + (100 - progress_from) * done / total,
            _("Predicted %(done)s of %(total)s rows")
            % {"done": f"{done:,}", "total": f"{total:,}"},
        )

    def count_warnings(chunk: pa.RecordBatch) -> None:
        assert warnings is not None
        warnings.update(warning_counts(served.schema, chunk))

    return predict_file(
        served.predictor,
        rows_path,
        result,
        result_format=output_format,
        keep=pass_through,
        progress=progress,
        each_chunk=None if warnings is None else count_warnings,
    )
