"""Dataset state changes: upload, processing (the job's work), type overrides, rename, delete,
and the confirmation of what an image archive was detected to be."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.selectors import access_team, current_team_for
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.billing.services import quotas
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, Conflict, NotFound
from mlmanager.datasets import files
from mlmanager.datasets.jobs import DATASET_PROCESS
from mlmanager.datasets.json_columns import attach_json_expansions, expand_json_in_job
from mlmanager.datasets.models import Dataset, dataset_storage_dir, reading_facts
from mlmanager.datasets.selectors import require_dataset_ready, require_table
from mlmanager.engine.ingest import (
    SUPPORTED_EXTENSIONS,
    IngestError,
    IngestReport,
    NumberFormat,
    convert_columns_to_numbers,
    convert_to_parquet,
    detect_format,
)
from mlmanager.engine.ingest.images import (
    ImageLimits,
    ImageSetReport,
    check_image_zip,
    is_spreadsheet_zip,
    is_zip,
    read_image_zip,
)
from mlmanager.engine.profiling import COLUMN_TYPES, profile_parquet
from mlmanager.jobs.runner import JobCancelled, JobContext
from mlmanager.jobs.services import job_cancel, job_create, job_enqueue

logger = logging.getLogger(__name__)

# Share of the progress bar given to conversion; profiling takes the rest.
CONVERSION_SHARE = 70
# Column types whose values are numbers: text columns set to one are stored as numbers.
NUMBER_TYPES = frozenset({"numeric", "integer"})


def _resolve_team(*, caller: Caller, team_id: Any) -> Any:
    if team_id not in (None, ""):
        return access_team(caller=caller, id=team_id, action=Action.CHANGE)
    team = current_team_for(caller=caller)
    if team is None:
        raise ApplicationError(_("You are not a member of any team."), code="no_team")
    return access_team(caller=caller, id=team.pk, action=Action.CHANGE)


# A zip of images; a zip that holds a workbook is an Excel file, whatever its name.
IMAGE_ARCHIVE_EXTENSION = ".zip"


def source_extension(filename: str) -> str:
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS and suffix != IMAGE_ARCHIVE_EXTENSION:
        raise ApplicationError(
            _(
                "Files of this type cannot be used. Upload CSV, TSV, Parquet, Excel (.xlsx), "
                "JSON Lines, or a zip of images."
            ),
            code="unsupported_format",
            details={"supported": sorted({*SUPPORTED_EXTENSIONS, IMAGE_ARCHIVE_EXTENSION})},
            status_code=415,
        )
    return suffix


def image_limits() -> ImageLimits:
    """The limits every image archive is read within (settings, README's configuration)."""
    return ImageLimits(
        max_images=settings.MLMANAGER_MAX_IMAGES,
        max_pixels=settings.MLMANAGER_MAX_IMAGE_PIXELS,
        max_total_bytes=settings.MLMANAGER_MAX_ZIP_UNCOMPRESSED_BYTES,
    )


def upload_kind(path: Path) -> str:
    """Table or images, from the content: a zip is an image archive unless it holds a workbook
    (`[Content_Types].xml` and `xl/`), whatever either is named."""
    if is_zip(path) and not is_spreadsheet_zip(path):
        return Dataset.Kind.IMAGES
    return Dataset.Kind.TABLE


def checked_upload(upload: UploadedFile) -> tuple[Path, str, str]:
    """The upload's temporary path, its client name (shown, never a path) and extension, once
    what can be told at once is fine: a supported type, not empty, not a binary file. For a
    table (a batch to predict reads one); `checked_dataset_upload` also takes image zips."""
    original_name, extension, temporary_path = _upload_basics(upload)
    _check_table(temporary_path, original_name)
    return temporary_path, original_name, extension


def checked_dataset_upload(upload: UploadedFile) -> tuple[Path, str, str, str]:
    """As `checked_upload`, with the dataset's kind told from the content: for an image
    archive, a readable zip listing no more entries than the limits allow."""
    original_name, extension, temporary_path = _upload_basics(upload)
    kind = upload_kind(temporary_path)
    if kind != Dataset.Kind.IMAGES:
        _check_table(temporary_path, original_name)
        return temporary_path, original_name, extension, kind
    try:
        check_image_zip(temporary_path, image_limits())
    except IngestError as error:
        raise ApplicationError(error.message, code=error.code) from None
    return temporary_path, original_name, IMAGE_ARCHIVE_EXTENSION, kind


def _upload_basics(upload: UploadedFile) -> tuple[str, str, Path]:
    original_name = (upload.name or "upload")[:255]
    extension = source_extension(original_name)
    if not upload.size:
        raise ApplicationError(_("The file is empty."), code="empty_file")
    return original_name, extension, Path(upload.temporary_file_path())  # type: ignore[attr-defined]


def _check_table(path: Path, original_name: str) -> None:
    try:
        detect_format(path, original_name)
    except IngestError as error:
        raise ApplicationError(error.message, code=error.code) from None


def convert_in_job(
    context: JobContext, source: Path, parquet: Path, *, original_name: str, share: float
) -> IngestReport:
    """Convert a kept upload to Parquet within a job: progress up to `share` percent, the
    job's cancel flag honoured, reading errors as the job's error in the reader's words."""
    context.progress(1, _("Reading the file"), force=True)
    try:
        return convert_to_parquet(
            source,
            parquet,
            original_name=original_name,
            max_rows=settings.MLMANAGER_MAX_ROWS,
            max_cells=settings.MLMANAGER_MAX_CELLS,
            on_progress=lambda done: context.progress(done * share, _("Reading the file")),
            should_cancel=context.is_cancel_requested,
        )
    except IngestError as error:
        if error.code == "cancelled":
            raise JobCancelled() from None
        raise ApplicationError(error.message, code=error.code) from None


def dataset_create(
    *, caller: Caller, upload: UploadedFile, name: str = "", team_id: Any = None
) -> Dataset:
    """Keep the upload under a server-chosen name and queue the job that converts and profiles it.

    What can be told at once (unsupported type, empty file, a binary file) is refused here with
    nothing kept; everything else is the job's to find, and ends in the dataset's `error`.
    """
    team = _resolve_team(caller=caller, team_id=team_id)
    user = caller.user
    if user is None:  # pragma: no cover - access_team refuses an anonymous caller first
        raise NotFound()
    temporary_path, original_name, extension, kind = checked_dataset_upload(upload)
    dataset = Dataset(
        team=team,
        created_by=user,
        kind=kind,
        name=(name or "").strip()[:200] or PurePosixPath(original_name).stem[:200] or "dataset",
        original_filename=original_name,
        storage_dir=dataset_storage_dir(team.pk),
        source_name=f"source{extension}",
    )
    _store_and_process(
        dataset, user=user, write_source=lambda path: files.keep_upload(temporary_path, path)
    )
    logger.info("dataset %s uploaded (%s bytes) by user %s", dataset.pk, upload.size, user.pk)
    return dataset


def dataset_create_from_parquet(
    *,
    caller: Caller,
    team: Any,
    name: str,
    write_parquet: Callable[[Path], None],
    type_overrides: dict[str, str] | None = None,
) -> Dataset:
    """A dataset whose source is a Parquet file the platform writes (`write_parquet` gets the
    path); processed like an upload, with the column types a user chose kept."""
    user = caller.user
    dataset = Dataset(
        type_overrides=dict(type_overrides or {}),
        team=team,
        created_by=user,
        name=name.strip()[:200] or "dataset",
        original_filename=f"{name.strip()[:200] or 'dataset'}.parquet",
        storage_dir=dataset_storage_dir(team.pk),
        source_name="source.parquet",
    )
    _store_and_process(dataset, user=user, write_source=write_parquet)
    return dataset


def _store_and_process(
    dataset: Dataset, *, user: Any, write_source: Callable[[Path], None]
) -> None:
    """Write the source file, then record the dataset and queue its processing, together:
    on any failure neither the row nor the folder remains."""
    dataset.full_clean()
    team = dataset.team
    try:
        with files.writing(dataset.source_path) as destination:
            write_source(destination)
            dataset.size_bytes = destination.stat().st_size
        # The plan's limits (billing on only): 403 past the storage, 429 at the jobs limit.
        quotas.quota_check_storage(team_id=team.pk, adding_bytes=dataset.size_bytes)
        with transaction.atomic():
            quotas.quota_check_jobs(team_id=team.pk)
            dataset.save()
            job = job_create(
                team=team,
                created_by=user,
                kind=DATASET_PROCESS,
                subject=dataset,
                description=_("Process %(name)s") % {"name": dataset.name},
            )
            Dataset.objects.filter(pk=dataset.pk).update(job=job)
            dataset.job = job
            from mlmanager.datasets.tasks import process_dataset  # tasks import this module

            job_enqueue(job=job, task=process_dataset, dataset_id=dataset.pk)
    except BaseException:
        files.remove_dir(dataset.storage_dir)
        raise


def dataset_process(context: JobContext, *, dataset_id: int) -> dict[str, Any]:
    """The job's work: convert to Parquet, then profile. Every failure leaves no partial file."""
    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        raise ApplicationError(_("The dataset was deleted before it could be processed."))
    if dataset.is_images:
        return _process_images(context, dataset)
    # The Parquet file is stored again only once rewritten whole (on S3, uploaded when the
    # block ends), and before the row says READY.
    with files.updating(dataset.parquet_path) as parquet:
        reading = dataset.ingest_report
        if not parquet.exists() or _needs_reread(reading, dataset.type_overrides):
            # Written over the old file only once complete: a failure keeps the data as it was.
            report = convert_in_job(
                context,
                files.materialise(dataset.source_path),
                parquet,
                original_name=dataset.original_filename,
                share=CONVERSION_SHARE,
            )
            if report.decimal_separator != ".":
                context.log(_("Read numbers with a decimal comma."))
            for note in report.notes:
                context.log(note)
            reading = report.to_dict()
            reading["json_columns"] = expand_json_in_job(context, parquet)
            Dataset.objects.filter(pk=dataset_id).update(ingest_report=reading)
        context.check_cancelled()
        number_format = reading_number_format(reading)
        reading = _store_overridden_numbers(
            context, parquet, reading, dataset.type_overrides, number_format
        )
        Dataset.objects.filter(pk=dataset_id).update(ingest_report=reading)
        context.check_cancelled()
        context.progress(CONVERSION_SHARE, _("Profiling columns"), force=True)
        profile = profile_parquet(
            parquet,
            type_overrides=dataset.type_overrides,
            should_cancel=context.is_cancel_requested,
            number_format=number_format,
            missing_tokens=reading.get("missing_tokens", {}),
        )
        checksum = file_sha256(parquet)  # the bytes stored as the block ends
    _attach_conversions(profile, reading.get("conversions", []))
    attach_json_expansions(profile, reading.get("json_columns", []))
    context.check_cancelled()
    updated = Dataset.objects.filter(pk=dataset_id).update(
        status=Dataset.Status.READY,
        error="",
        checksum=checksum,
        profile=profile,
        row_count=profile["row_count"],
        column_count=profile["column_count"],
    )
    if not updated:
        # Deleted while we worked: its folder is already scheduled for removal.
        files.remove_dir(dataset.storage_dir)
        raise ApplicationError(_("The dataset was deleted while it was being processed."))
    context.log(
        _("%(rows)s rows × %(columns)s columns profiled.")
        % {"rows": profile["row_count"], "columns": profile["column_count"]}
    )
    return {"dataset_id": dataset_id}


def _process_images(context: JobContext, dataset: Dataset) -> dict[str, Any]:
    """The job's work for an image archive: read, check and re-encode every image into the
    Parquet file (written whole, then moved into place), and profile it from the report."""
    context.progress(1, _("Reading the images"), force=True)
    with files.updating(dataset.parquet_path) as parquet:
        try:
            report = read_image_zip(
                files.materialise(dataset.source_path),
                parquet,
                limits=image_limits(),
                should_cancel=context.is_cancel_requested,
                on_progress=lambda share: context.progress(share * 99, _("Reading the images")),
            )
        except IngestError as error:
            if error.code == "cancelled":
                raise JobCancelled() from None
            raise ApplicationError(error.message, code=error.code) from None
        checksum = file_sha256(parquet)
    for note in report.notes:
        context.log(note)
    if report.skipped_count:
        context.log(
            _("%(count)s files skipped (listed on the dataset page).")
            % {"count": report.skipped_count}
        )
    context.check_cancelled()
    profile = images_profile(report)
    updated = Dataset.objects.filter(pk=dataset.pk).update(
        status=Dataset.Status.READY,
        error="",
        checksum=checksum,
        profile=profile,
        ingest_report={"source_format": "zip", "images": report.to_dict()},
        row_count=profile["row_count"],
        column_count=profile["column_count"],
    )
    if not updated:
        files.remove_dir(dataset.storage_dir)
        raise ApplicationError(_("The dataset was deleted while it was being processed."))
    context.log(
        _("%(count)s images read (%(task)s).") % {"count": report.count, "task": report.task}
    )
    return {"dataset_id": dataset.pk}


# Bytes read at a time when hashing a stored file (never the whole file in memory).
CHECKSUM_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """The sha256 (hex) of a local file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHECKSUM_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_checksum_ensure(*, dataset: Dataset) -> str:
    """The dataset's checksum (Dataset.checksum), computed now from the stored Parquet file
    (streamed from the storage) for a dataset processed before checksums were kept. Raises
    FileNotFoundError when the file is not stored."""
    if dataset.checksum:
        return dataset.checksum
    digest = hashlib.sha256()
    with contextlib.closing(files.open_for_reading(dataset.parquet_path)) as stream:
        while chunk := stream.read(CHECKSUM_CHUNK):
            digest.update(chunk)
    checksum = digest.hexdigest()
    # Only where still unset: a processing that ended meanwhile wrote the newer file's.
    Dataset.objects.filter(pk=dataset.pk, checksum="").update(checksum=checksum)
    dataset.checksum = checksum
    return checksum


def images_profile(report: ImageSetReport) -> dict[str, Any]:
    """An image dataset's profile: the table profile's keys (shared code reads `columns`,
    `row_count`) describing the one input and the one output, and the `images` block."""
    output = (
        {"name": "mask", "type": "mask"}
        if report.task == "segmentation"
        else {"name": "label", "type": "categorical"}
    )
    return {
        "kind": Dataset.Kind.IMAGES.value,
        "row_count": report.count,
        "column_count": 2,
        "columns": [{"name": "image", "type": "image"}, output],
        "images": report.images_profile(),
    }


@transaction.atomic
def dataset_confirm_images(*, caller: Caller, dataset: Dataset) -> Dataset:
    """Record that a user saw what the archive was detected to be (the task, the layout, the
    classes) and agrees. Training does not require it; the pages ask before training an
    unconfirmed set, since a wrong folder layout silently trains on the wrong labels."""
    # Locks the row only: PostgreSQL cannot lock the nullable side of a join (the job).
    dataset = (
        Dataset.objects.select_for_update(of=("self",))
        .select_related("job", "team")
        .get(pk=dataset.pk)
    )
    require_dataset_ready(dataset=dataset)
    if not dataset.is_images or not dataset.profile.get("images"):
        raise Conflict(
            _("Only an image dataset has a detected layout to confirm."), code="not_images"
        )
    images = dict(dataset.profile["images"])
    images["confirmed"] = True
    images["confirmed_at"] = timezone.now().isoformat()
    images["confirmed_by"] = caller.user.pk if caller.user is not None else None
    dataset.profile = {**dataset.profile, "images": images}
    dataset.save(update_fields=["profile", "updated_at"])
    logger.info("image dataset %s confirmed", dataset.pk)
    return dataset


def reading_number_format(reading: dict[str, Any]) -> NumberFormat:
    """The number format reading found, from a dataset's `ingest_report`."""
    facts = reading_facts(reading)
    return NumberFormat(
        facts.get("decimal_separator") or ".", facts.get("thousands_separator") or None
    )


def _needs_reread(reading: dict[str, Any], overrides: dict[str, str]) -> bool:
    """Whether a column stored as numbers for a type override is no longer set to a number
    type: its text is gone from the Parquet file, so the file is read again from the source."""
    return any(
        conversion.get("source") == "override"
        and overrides.get(conversion["column"]) not in NUMBER_TYPES
        for conversion in reading.get("conversions", [])
    )


def _store_overridden_numbers(
    context: JobContext,
    parquet: Path,
    reading: dict[str, Any],
    overrides: dict[str, str],
    number_format: NumberFormat,
) -> dict[str, Any]:
    """Store text columns the user set to a number type as numbers, read in the file's number
    format, so that training gets the numbers the profile counted (pandas would read "100,85"
    as missing). Returns `reading` with these conversions and their missing tokens added."""
    wanted = {name: False for name, kind in overrides.items() if kind in NUMBER_TYPES}
    if not wanted:
        return reading
    conversions = convert_columns_to_numbers(parquet, wanted, number_format)
    if not conversions:
        return reading
    reading = {**reading, "conversions": list(reading.get("conversions", []))}
    missing_tokens = {
        name: dict(tokens) for name, tokens in reading.get("missing_tokens", {}).items()
    }
    for name, conversion in conversions.items():
        record = {"column": name, "type": overrides[name], "source": "override"}
        reading["conversions"].append({**record, **conversion.to_dict()})
        tokens = missing_tokens.setdefault(name, {})
        for token, count in conversion.missing_tokens.items():
            tokens[token] = tokens.get(token, 0) + count
        if conversion.unconverted:
            context.log(
                _("%(count)s values of “%(column)s” could not be read as numbers.")
                % {"count": conversion.unconverted, "column": name}
            )
    reading["missing_tokens"] = missing_tokens
    return reading


def _attach_conversions(profile: dict[str, Any], conversions: list[dict[str, Any]]) -> None:
    """Give each profiled column the record of its conversion to numbers, if it had one."""
    by_column = {conversion["column"]: conversion for conversion in conversions}
    for column in profile["columns"]:
        if column["name"] in by_column:
            column["conversion"] = by_column[column["name"]]


def dataset_mark_failed(*, dataset_id: int, error: str) -> None:
    """A dataset that failed keeps its row (with the reason) but no files: nothing half-written."""
    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        return
    if dataset.profile:
        # A re-profile failed: the data itself is fine, keep it and the previous profile.
        Dataset.objects.filter(pk=dataset_id).update(status=Dataset.Status.READY, error=error)
        return
    Dataset.objects.filter(pk=dataset_id).update(status=Dataset.Status.FAILED, error=error)
    files.remove_dir(dataset.storage_dir)
    from mlmanager.datasets.versions import version_failed  # versions import this module

    version_failed(dataset=dataset)


def dataset_rename(*, dataset: Dataset, name: str) -> Dataset:
    name = (name or "").strip()
    if not name:
        raise ApplicationError(
            _("The name cannot be empty."), code="invalid", details={"name": ["required"]}
        )
    dataset.name = name[:200]
    dataset.save(update_fields=["name", "updated_at"])
    return dataset


@transaction.atomic
def dataset_update(
    *,
    caller: Caller,
    dataset: Dataset,
    name: str | None = None,
    column_types: dict[str, str] | None = None,
) -> Dataset:
    """Rename and/or override column types as one change: a refused type keeps the old name."""
    if name is not None:
        dataset = dataset_rename(dataset=dataset, name=name)
    if column_types is not None:
        dataset = dataset_set_column_types(caller=caller, dataset=dataset, types=column_types)
    return dataset


@transaction.atomic
def dataset_set_column_types(*, caller: Caller, dataset: Dataset, types: dict[str, str]) -> Dataset:
    """Override detected column types ("" resets to the detected one); a job re-profiles."""
    user = caller.user
    require_dataset_ready(dataset=dataset)
    require_table(dataset=dataset)
    known = {column["name"] for column in dataset.columns}
    unknown = sorted(set(types) - known)
    if unknown:
        raise ApplicationError(
            _("Unknown columns: %s") % ", ".join(unknown), details={"columns": unknown}
        )
    invalid = sorted(name for name, kind in types.items() if kind and kind not in COLUMN_TYPES)
    if invalid:
        raise ApplicationError(
            _("Unknown type for: %s") % ", ".join(invalid),
            details={"allowed_types": list(COLUMN_TYPES)},
        )
    overrides = dict(dataset.type_overrides)
    for name, kind in types.items():
        if kind:
            overrides[name] = kind
        else:
            overrides.pop(name, None)
    job = job_create(
        team=dataset.team,
        created_by=user,
        kind=DATASET_PROCESS,
        subject=dataset,
        description=_("Re-profile %(name)s") % {"name": dataset.name},
    )
    Dataset.objects.filter(pk=dataset.pk).update(
        type_overrides=overrides, status=Dataset.Status.PROCESSING, job=job
    )
    from mlmanager.datasets.tasks import process_dataset  # tasks import this module

    job_enqueue(job=job, task=process_dataset, dataset_id=dataset.pk)
    dataset.refresh_from_db()
    return dataset


def dataset_delete(*, caller: Caller, dataset: Dataset) -> None:
    """Deletes the row and, after commit, its folder. A job still working on it is cancelled."""
    job = dataset.job
    if job is not None and job.is_cancellable:
        job_cancel(job=job)
    storage_dir = dataset.storage_dir
    with transaction.atomic():
        deleted, _rows = Dataset.objects.filter(pk=dataset.pk).delete()
        if not deleted:
            raise NotFound()
        # The instance keeps its pk (the queryset deleted the row): the record's target id.
        audit_record(
            caller=caller, team=dataset.team, action=AuditAction.DATASET_DELETED, target=dataset
        )
        transaction.on_commit(lambda: files.remove_dir(storage_dir))
    logger.info("dataset %s deleted", dataset.pk)
