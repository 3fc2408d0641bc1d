"""Batch predictions: a file of rows (an upload or a dataset) predicted by a job, in chunks.

The job streams: an upload is converted to Parquet by the same streaming reader datasets use,
then record batches of BATCH_ROWS rows are read, predicted and appended to the result, so
memory stays bounded by one batch whatever the file's length (5 000 000 rows run in well under
1 GB). The result is written under a temporary name and renamed when complete; CSV text
cells that a spreadsheet would run as a formula are prefixed with an apostrophe.

What a result holds: for an uploaded file, every column of the file (the caller's own rows),
then the predictions and probabilities; for a dataset, only the model's inputs and the columns
the caller named (`pass_through`), then the predictions. The dataset must be of the model's
team, and any member of that team may download the result: copying every column would let a
batch carry data out of the dataset that nobody asked to share.
"""

from __future__ import annotations

import logging
from collections import Counter
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

from mlmanager.core.errors import ApplicationError, Conflict, NotFound
from mlmanager.datasets import files
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.selectors import require_columns
from mlmanager.datasets.services import checked_upload, convert_in_job
from mlmanager.jobs.models import Job
from mlmanager.jobs.runner import JobContext
from mlmanager.jobs.services import job_create, job_enqueue
from mlmanager.machines.models import Machine, ModelVersion
from mlmanager.predictions.models import BatchPrediction, batch_storage_dir
from mlmanager.predictions.schema import warning_counts, warning_summary
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
    pass_through: list[str] | None = None,
) -> BatchPrediction:
    """Keep the upload (or note the dataset) and queue the job that predicts it.

    `dataset` must belong to the model's team (callers look it up with
    `access_dataset_of_team`; checked again here). `pass_through` names the dataset's columns
    to copy into the result besides the model's inputs (none by default); an upload keeps all
    of its columns and takes none."""
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
    if upload is not None:
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
        if dataset.status != Dataset.Status.READY:
            raise Conflict(_("The dataset is not ready yet."), code="dataset_not_ready")
        batch.dataset = dataset
        batch.original_filename = dataset.original_filename
        batch.pass_through = _checked_pass_through(dataset, pass_through or [])
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


def _checked_pass_through(dataset: Dataset, names: list[str]) -> list[str]:
    require_columns(dataset=dataset, names=names, field="pass_through")
    return list(dict.fromkeys(names))  # the order given, repeats dropped


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
    warnings: Counter[str] = Counter()
    try:
        count = _predict_file(
            context,
            served,
            rows_path,
            temporary,
            batch.output_format,
            progress_from=0 if batch.dataset_id is not None else CONVERSION_SHARE,
            pass_through=batch.pass_through,
            warnings=warnings,
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
    if any(warnings.values()):
        context.log(warning_summary(warnings))
    return {"batch_id": batch_id, "rows": count, "warnings": dict(warnings)}


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
    pass_through: list[str] | None = None,
    warnings: Counter[str] | None = None,
) -> int:
    """Predict `rows_path` into `result`; with `pass_through` (not None), only the model's
    inputs and those columns of the file are kept, read from the file and nothing else."""
    source = pq.ParquetFile(rows_path)
    kept = None
    if pass_through is not None:
        wanted = set(served.schema.by_name) | set(pass_through)
        kept = [name for name in source.schema_arrow.names if name in wanted]
    total = max(1, source.metadata.num_rows)
    writer: Any = None
    schema: pa.Schema | None = None
    done = 0
    try:
        for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=kept):
            context.check_cancelled()
            if warnings is not None:  # counted per code (schema.warning_counts)
                warnings.update(warning_counts(served.schema, batch))
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
            empty_table = source.schema_arrow.empty_table()
            if kept is not None:
                empty_table = empty_table.select(kept)
            empty = _with_predictions(served, empty_table)
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
        labels = output.model.labels(probabilities, served.threshold)
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
            # The separators in the column's own type: a large_string column (pandas
            # writes them) has no kernel joining it with plain strings.
            quote, nothing = pa.scalar("'", type=kind), pa.scalar("", type=kind)
            column = pc.if_else(risky, pc.binary_join_element_wise(quote, column, nothing), column)
        columns.append(column)
    return pa.table(columns, names=table.column_names)
