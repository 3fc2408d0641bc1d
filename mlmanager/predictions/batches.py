"""Batch predictions: a file of rows (an upload or a dataset) predicted by a job, in chunks.

The job streams: an upload is converted to Parquet by the same streaming reader datasets use,
then record batches of BATCH_ROWS rows are read, predicted and appended to the result, so
memory stays bounded by one batch whatever the file's length (5 000 000 rows run in well under
1 GB). The result (every column of the file, then the predictions and probabilities) is
written under a temporary name and renamed when complete; CSV text cells that a spreadsheet
would run as a formula are prefixed with an apostrophe.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _

from mlmanager.core.errors import ApplicationError, Conflict
from mlmanager.datasets import files
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.services import checked_upload, convert_in_job
from mlmanager.jobs.models import Job
from mlmanager.jobs.runner import JobContext
from mlmanager.jobs.services import job_create, job_enqueue
from mlmanager.machines.models import Machine, ModelVersion
from mlmanager.predictions.models import BatchPrediction, batch_storage_dir
from mlmanager.predictions.serving import ServedVersion, served_version

logger = logging.getLogger(__name__)

BATCH_ROWS = 50_000
# Share of the progress bar for converting an upload; predicting takes the rest.
CONVERSION_SHARE = 20
# Text a spreadsheet would evaluate as a formula (OWASP "CSV injection").
_FORMULA_START = r"^[=+\-@\t\r]"


def batch_create(
    *,
    machine: Machine,
    version: ModelVersion,
    user: Any,
    upload: UploadedFile | None = None,
    dataset: Dataset | None = None,
    output_format: str = BatchPrediction.Format.CSV,
) -> BatchPrediction:
    """Keep the upload (or note the dataset) and queue the job that predicts it."""
    if (upload is None) == (dataset is None):
        raise ApplicationError(_("Upload a file or choose a dataset (one of the two)."))
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
    if upload is not None:
        temporary_path, original_name, extension = checked_upload(upload)
        batch.original_filename = original_name
        batch.source_name = f"source{extension}"
    else:
        assert dataset is not None
        if dataset.status != Dataset.Status.READY:
            raise Conflict(_("The dataset is not ready yet."), code="dataset_not_ready")
        batch.dataset = dataset
        batch.original_filename = dataset.original_filename
    folder = files.local_path(batch.storage_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if temporary_path is not None:
            files.keep_upload(temporary_path, files.local_path(batch.source_path))
        with transaction.atomic():
            batch.job = job_create(
                team=machine.team,
                created_by=user,
                kind=Job.Kind.BATCH_PREDICT,
                description=_("Predict %(file)s with %(model)s")
                % {"file": batch.original_filename, "model": machine.name},
            )
            batch.save()
            from mlmanager.predictions.tasks import predict_batch  # tasks import this module

            job_enqueue(job=batch.job, task=predict_batch, batch_id=batch.pk)
    except BaseException:
        files.remove_dir(batch.storage_dir)
        raise
    logger.info("model %s: batch %s queued by user %s", machine.pk, batch.pk, user.pk)
    return batch


def batch_work(context: JobContext, *, batch_id: int) -> dict[str, Any]:
    batch = BatchPrediction.objects.select_related("version", "dataset").filter(pk=batch_id).first()
    if batch is None:
        raise ApplicationError(_("The batch was deleted before it ran."))
    if batch.version is None:
        raise ApplicationError(_("The model version of this batch was deleted."))
    served = served_version(batch.version)
    rows_path = _input_rows(context, batch)
    result = files.local_path(batch.result_path)
    temporary = result.with_name(result.name + ".part")
    try:
        count = _predict_file(
            context,
            served,
            rows_path,
            temporary,
            batch.output_format,
            progress_from=0 if batch.dataset_id is not None else CONVERSION_SHARE,
        )
        temporary.replace(result)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    finally:
        if batch.dataset_id is None:
            files.local_path(batch.input_parquet_path).unlink(missing_ok=True)
    BatchPrediction.objects.filter(pk=batch_id).update(
        row_count=count, result_size_bytes=result.stat().st_size
    )
    context.log(_("%(rows)s rows predicted.") % {"rows": f"{count:,}"})
    return {"batch_id": batch_id, "rows": count}


def batch_failed(*, batch_id: int) -> None:
    """A failed or cancelled batch keeps its row (the job says why) but none of its files."""
    batch = BatchPrediction.objects.filter(pk=batch_id).first()
    if batch is not None:
        files.remove_dir(batch.storage_dir)


def _input_rows(context: JobContext, batch: BatchPrediction) -> Path:
    if batch.dataset_id is not None:
        assert batch.dataset is not None
        path = files.local_path(batch.dataset.parquet_path)
        if not path.is_file():
            raise ApplicationError(_("The dataset's file is gone; it may have been deleted."))
        return path
    source = files.local_path(batch.source_path)
    parquet = files.local_path(batch.input_parquet_path)
    convert_in_job(
        context, source, parquet, original_name=batch.original_filename, share=CONVERSION_SHARE
    )
    source.unlink(missing_ok=True)  # the Parquet copy is all the job needs now
    return parquet


def _predict_file(
    context: JobContext,
    served: ServedVersion,
    rows_path: Path,
    result: Path,
    output_format: str,
    *,
    progress_from: float,
) -> int:
    source = pq.ParquetFile(rows_path)
    total = max(1, source.metadata.num_rows)
    writer: Any = None
    schema: pa.Schema | None = None
    done = 0
    try:
        for batch in source.iter_batches(batch_size=BATCH_ROWS):
            context.check_cancelled()
            table = _with_predictions(served, pa.Table.from_batches([batch]))
            if output_format == BatchPrediction.Format.CSV:
                table = _csv_safe(table)
            if writer is None:
                schema = table.schema
                writer = (
                    pa_csv.CSVWriter(str(result), schema)
                    if output_format == BatchPrediction.Format.CSV
                    else pq.ParquetWriter(result, schema)
                )
            elif table.schema != schema:
                table = table.cast(schema)
            writer.write_table(table)
            done += batch.num_rows
            context.progress(
                progress_from + (100 - progress_from) * done / total,
                _("Predicted %(done)s of %(total)s rows")
                % {"done": f"{done:,}", "total": f"{total:,}"},
            )
        if writer is None:  # a file with a header and no rows
            empty = _with_predictions(served, source.schema_arrow.empty_table())
            if output_format == BatchPrediction.Format.CSV:
                writer = pa_csv.CSVWriter(str(result), _csv_safe(empty).schema)
            else:
                writer = pq.ParquetWriter(result, empty.schema)
    finally:
        if writer is not None:
            writer.close()
    return done


def _with_predictions(served: ServedVersion, table: pa.Table) -> pa.Table:
    """`table` with, per output, the predicted value and per class its probability."""
    names = set(table.column_names)
    # Inputs the file lacks are missing values to the model.
    frame = table.select([name for name in served.schema.by_name if name in names]).to_pandas(
        split_blocks=True
    )
    for output in served.outputs:
        label = _free_name(f"predicted_{output.name}", names)
        if output.task == "regression":
            values = output.model.predict(frame) if table.num_rows else np.empty(0)
            table = table.append_column(label, pa.array(values, type=pa.float64()))
            continue
        probabilities = (
            output.model.predict_proba(frame)
            if table.num_rows
            else np.empty((0, len(output.class_keys or [])))
        )
        labels = np.array(output.model.classes, dtype=object)[probabilities.argmax(axis=1)]
        table = table.append_column(label, pa.array([_plain(value) for value in labels]))
        for index, key in enumerate(output.class_keys or []):
            column = _free_name(f"probability_{output.name}_{key}", names)
            table = table.append_column(column, pa.array(probabilities[:, index]))
    return table


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _free_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    taken.add(candidate)
    return candidate


def _csv_safe(table: pa.Table) -> pa.Table:
    """Text columns with formula-like cells escaped; types the CSV writer cannot write (lists,
    structs, dictionaries) as text."""
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = kind.value_type
        if pa.types.is_nested(kind) or pa.types.is_binary(kind):
            column = pa.chunked_array(
                [pa.array([None if v is None else str(v) for v in column.to_pylist()])],
                type=pa.string(),
            )
            kind = pa.string()
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            risky = pc.match_substring_regex(column, _FORMULA_START)
            column = pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
        columns.append(column)
    return pa.table(columns, names=table.column_names)
