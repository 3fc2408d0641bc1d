"""Dataset versions: rows appended to a table make a new dataset (a version) whose file is its
parent's rows plus the new ones, processed like an upload; the parent is never changed.

The rows are checked against the parent's columns and types before anything is written
(engine.ingest.append: EasyAutoML's compatibility check), so a refused append leaves no
file and no row. The version is recorded, its processing queued and the models of the
parent moved to it in one transaction: a model's data grows with its dataset. A version's
family (`lineage`: its first dataset's id) numbers its versions 1, 2, 3…
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mlmanager.accounts.caller import Caller
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError, Conflict
from mlmanager.datasets import files
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.selectors import require_dataset_ready, require_table
from mlmanager.datasets.services import (
    _store_and_process,
    checked_upload,
    reading_number_format,
)
from mlmanager.engine.ingest import IngestError, convert_to_parquet
from mlmanager.engine.ingest.append import AppendProblems, check_rows, write_appended

logger = logging.getLogger(__name__)

# Rows one request may append (JSON or a file): the check runs in the request, so it is
# bounded. More rows at once are a new dataset (upload it, and point the model at it).
APPEND_MAX_ROWS = 100_000
# Where appended rows came from (`rows_origin["source"]`).
SOURCES = ("api", "file", "feedback")


def dataset_family(*, dataset: Dataset) -> QuerySet[Dataset]:
    """Every version of `dataset`'s family (its first dataset and all made from it), oldest
    version first."""
    root = dataset.lineage or dataset.pk
    return (
        Dataset.objects.filter(Q(pk=root) | Q(lineage=root), team_id=dataset.team_id)
        .select_related("created_by")
        .order_by("version", "pk")
    )


def dataset_rows_append(
    *,
    caller: Caller,
    dataset: Dataset,
    rows: pd.DataFrame | None = None,
    upload: UploadedFile | None = None,
    source: str = "api",
    origin: dict[str, Any] | None = None,
) -> Dataset:
    """A new version of the table `dataset`: its rows, then `rows` (a DataFrame) or the rows
    of `upload` (CSV, Parquet, Excel…: the upload checks of a dataset). The models of
    `dataset` move to the version. `origin` adds to what the version records of where its
    rows came from. Refusals, before anything is written: 409 when the dataset is not a
    ready table, 400 `incompatible_rows` (details: missing and unknown columns, and per
    column the values that do not fit its type), 400 `too_many_rows`, 400 `no_rows`."""
    require_table(dataset=dataset)
    require_dataset_ready(dataset=dataset)
    if (rows is None) == (upload is None):
        raise ApplicationError(_("Send rows or a file, not both."), code="invalid")
    if source not in SOURCES:  # pragma: no cover - a programming error
        raise ValueError(f"unknown source {source!r}")
    recorded: dict[str, Any] = {"source": source, **(origin or {})}
    with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as folder:
        if upload is not None:
            columns, count, filename = _upload_columns(upload, Path(folder))
            recorded["filename"] = filename
        else:
            assert rows is not None
            columns, count = _frame_columns(rows)
        _check_count(dataset, count)
        parquet = files.materialise(dataset.parquet_path)
        schema = pq.read_schema(parquet)
        types = {column["name"]: column.get("type", "") for column in dataset.columns}
        _derive_expanded(columns, dataset, count)
        table, problems = check_rows(
            columns,
            schema=schema,
            types=types,
            number_format=reading_number_format(dataset.ingest_report),
        )
        if table is None:
            raise _incompatible(problems)
        version = _version_create(
            caller=caller, dataset=dataset, table=table, parquet=parquet, origin=recorded
        )
    logger.info(
        "dataset %s: version %s (%s) with %s rows added by user %s",
        dataset.pk,
        version.pk,
        version.version,
        count,
        caller.user_id,
    )
    return version


def _frame_columns(rows: pd.DataFrame) -> tuple[dict[str, list[Any]], int]:
    return {str(name): rows[name].tolist() for name in rows.columns}, len(rows)


def _upload_columns(upload: UploadedFile, folder: Path) -> tuple[dict[str, list[Any]], int, str]:
    """The rows of an uploaded table, read as an upload is (the same reader), in memory:
    the count is bounded by APPEND_MAX_ROWS before they are read."""
    temporary_path, original_name, _extension = checked_upload(upload)
    converted = folder / "rows.parquet"
    try:
        convert_to_parquet(
            temporary_path,
            converted,
            original_name=original_name,
            max_rows=APPEND_MAX_ROWS,
            max_cells=settings.MLMANAGER_MAX_CELLS,
        )
    except IngestError as error:
        if error.code == "too_many_rows":
            raise _too_many(APPEND_MAX_ROWS) from None
        raise ApplicationError(error.message, code=error.code) from None
    table = pq.read_table(converted)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    return columns, table.num_rows, original_name


def _too_many(limit: int) -> ApplicationError:
    return ApplicationError(
        _("At most %(limit)s rows can be appended at once.") % {"limit": f"{limit:,}"},
        code="too_many_rows",
        details={"max_rows": limit},
    )


def _check_count(dataset: Dataset, count: int) -> None:
    if count == 0:
        raise ApplicationError(_("Send at least one row."), code="no_rows")
    if count > APPEND_MAX_ROWS:
        raise _too_many(APPEND_MAX_ROWS)
    if (dataset.row_count or 0) + count > settings.MLMANAGER_MAX_ROWS:
        raise ApplicationError(
            _("With these rows the dataset would pass the limit of %(limit)s rows.")
            % {"limit": f"{settings.MLMANAGER_MAX_ROWS:,}"},
            code="too_many_rows",
            details={"max_rows": settings.MLMANAGER_MAX_ROWS},
        )


def _derive_expanded(columns: dict[str, list[Any]], dataset: Dataset, count: int) -> None:
    """Columns expanded from a JSON column (`expanded_from` in the profile) are not sent:
    they are read from their JSON column's values, as processing read them."""
    derived = [
        column
        for column in dataset.columns
        if column.get("expanded_from") and column["name"] not in columns
    ]
    if not derived:
        return
    from mlmanager.engine.ingest.json_columns import json_path_value

    for column in derived:
        source = columns.get(column["expanded_from"])
        columns[column["name"]] = (
            [None] * count
            if source is None
            else [json_path_value(value, column.get("json_path", [])) for value in source]
        )


def _incompatible(problems: AppendProblems) -> ApplicationError:
    parts = []
    if problems.missing_columns:
        parts.append(
            _("missing columns: %(names)s") % {"names": ", ".join(problems.missing_columns)}
        )
    if problems.unknown_columns:
        parts.append(
            _("unknown columns: %(names)s") % {"names": ", ".join(problems.unknown_columns)}
        )
    for name, mistyped in problems.mistyped.items():
        rows = ", ".join(str(example["row"]) for example in mistyped.examples)
        parts.append(
            ngettext(
                "“%(name)s” needs %(expected)s (%(count)s value does not fit, row %(rows)s)",
                "“%(name)s” needs %(expected)s (%(count)s values do not fit, rows %(rows)s)",
                mistyped.count,
            )
            % {
                "name": name,
                "expected": _(mistyped.expected),
                "count": mistyped.count,
                "rows": rows,
            }
        )
    return ApplicationError(
        _("The rows do not fit the dataset: %(problems)s.") % {"problems": "; ".join(parts)},
        code="incompatible_rows",
        details=problems.to_dict(),
    )


def _version_create(
    *,
    caller: Caller,
    dataset: Dataset,
    table: pa.Table,
    parquet: Path,
    origin: dict[str, Any],
) -> Dataset:
    """Write the version's file and record it, its processing job, the models moved and the
    audit, together: on any failure neither the row nor the folder remains."""
    from mlmanager.datasets.models import dataset_storage_dir
    from mlmanager.machines.services.machines import machines_move_to_dataset

    root = dataset.lineage or dataset.pk
    version = Dataset(
        team=dataset.team,
        created_by=caller.user,
        kind=Dataset.Kind.TABLE,
        name=dataset.name,
        original_filename=dataset.original_filename,
        storage_dir=dataset_storage_dir(dataset.team_id),
        source_name="source.parquet",
        type_overrides=dict(dataset.type_overrides),
        parent=dataset,
        rows_added=table.num_rows,
        lineage=root,
        rows_origin=origin,
    )
    try:
        with transaction.atomic():
            # Appends to one family take turns (PostgreSQL; SQLite has one writer anyway).
            locked = Dataset.objects.select_for_update(of=("self",)).filter(pk=dataset.pk)
            if not locked.filter(status=Dataset.Status.READY).exists():
                raise Conflict(_("Wait until the dataset is ready."), code="dataset_not_ready")
            family = Dataset.objects.filter(Q(pk=root) | Q(lineage=root))
            version.version = (family.aggregate(top=Max("version"))["top"] or 1) + 1
            _store_and_process(
                version,
                user=caller.user,
                write_source=lambda destination: write_appended(parquet, table, destination),
            )
            moved = machines_move_to_dataset(caller=caller, source=dataset, target=version)
            audit_record(
                caller=caller,
                team=dataset.team,
                action="dataset.version_created",  # AuditAction.DATASET_VERSION_CREATED
                target=version,
                details={
                    "parent": dataset.pk,
                    "version": version.version,
                    "rows_added": version.rows_added,
                    "origin": origin,
                    "models_moved": moved,
                },
            )
    except IntegrityError:
        files.remove_dir(version.storage_dir)
        raise Conflict(
            _("Another version of this dataset was being made at the same time; try again."),
            code="version_conflict",
        ) from None
    except BaseException:
        files.remove_dir(version.storage_dir)
        raise
    return version


def version_failed(*, dataset: Dataset) -> None:
    """A version whose processing failed keeps nothing: its models go back to its parent."""
    if dataset.parent_id is None:
        return
    from mlmanager.machines.services.machines import machines_move_to_dataset

    parent = Dataset.objects.filter(pk=dataset.parent_id).first()
    if parent is None:
        return
    with transaction.atomic():
        machines_move_to_dataset(caller=Caller.system(), source=dataset, target=parent)


def feedback_appended_until(*, dataset: Dataset, machine_id: int) -> str | None:
    """Until when (ISO time) the feedback of model `machine_id` is already in `dataset` or
    one of its ancestors (versions made of that feedback), or None."""
    family = {
        row["pk"]: row
        for row in Dataset.objects.filter(
            Q(pk=dataset.lineage or dataset.pk) | Q(lineage=dataset.lineage or dataset.pk)
        ).values("pk", "parent_id", "rows_origin")
    }
    until: str | None = None
    current: int | None = dataset.pk
    seen: set[int] = set()
    while current is not None and current in family and current not in seen:
        seen.add(current)
        origin = family[current]["rows_origin"] or {}
        if origin.get("source") == "feedback" and origin.get("machine") == machine_id:
            stamp = origin.get("feedback_until")
            if stamp and (until is None or stamp > until):
                until = stamp
        current = family[current]["parent_id"]
    return until
