from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from mlmanager.accounts.access import access_team_object
from mlmanager.accounts.caller import Caller
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, Conflict
from mlmanager.datasets.files import materialise
from mlmanager.datasets.models import Dataset
from mlmanager.engine.ingest import read_preview

PREVIEW_MAX_LIMIT = 500


def datasets_for_caller(*, caller: Caller, team: Any = None) -> QuerySet[Dataset]:
    datasets = Dataset.objects.for_caller(caller).select_related("created_by", "job")
    if team is not None:
        datasets = datasets.filter(team=team)
    return datasets


def ready_datasets_for_caller(*, caller: Caller, team: Any = None) -> QuerySet[Dataset]:
    """The caller's datasets (of `team` when given) whose file and profile can be read now."""
    return datasets_for_caller(caller=caller, team=team).filter(status=Dataset.Status.READY)


def access_dataset(*, caller: Caller, id: Any, action: Action = Action.VIEW) -> Dataset:
    return access_team_object(
        Dataset.objects.select_related("job", "team"), caller=caller, id=id, action=action
    )


def access_dataset_of_team(
    *, caller: Caller, id: Any, team_id: int, action: Action = Action.VIEW
) -> Dataset:
    """A dataset for an operation on another object of team `team_id` (a batch of a model
    reads that model's team's datasets only): any other team's dataset is not found, whatever
    the caller's role there."""
    return access_team_object(
        Dataset.objects.select_related("job", "team").filter(team_id=team_id),
        caller=caller,
        id=id,
        action=action,
    )


def require_dataset_ready(*, dataset: Dataset) -> Dataset:
    """`dataset` if its file and profile can be read: while it is processing (or after its
    processing failed) every reader gets the same 409 `dataset_not_ready`."""
    if dataset.status != Dataset.Status.READY:
        raise Conflict(_("Wait until the dataset is ready."), code="dataset_not_ready")
    return dataset


def require_table(*, dataset: Dataset) -> Dataset:
    """`dataset` if it is a table: column previews, types and charts mean nothing for an
    image set, which answers 409 `not_a_table` (its images have their own endpoints)."""
    if dataset.is_images:
        raise Conflict(
            _("This is an image dataset: it has images, not table columns and rows."),
            code="not_a_table",
        )
    return dataset


def dataset_preview(
    *, dataset: Dataset, offset: int = 0, limit: int = 50
) -> tuple[list[str], list[list[Any]]]:
    require_table(dataset=dataset)
    require_dataset_ready(dataset=dataset)
    if offset < 0 or not 1 <= limit <= PREVIEW_MAX_LIMIT:
        raise ApplicationError(
            f"offset must be ≥ 0 and limit between 1 and {PREVIEW_MAX_LIMIT}.", code="invalid"
        )
    return read_preview(materialise(dataset.parquet_path), offset=offset, limit=limit)


def require_columns(*, dataset: Dataset, names: list[str], field: str) -> None:
    """400 `unknown_column` when the dataset lacks any of `names` (sent as request `field`);
    `details` names them and lists the dataset's columns."""
    columns = [column["name"] for column in dataset.columns]
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise ApplicationError(
            _("The dataset has no column %(names)s.")
            % {"names": ", ".join(f"“{name}”" for name in unknown)},
            code="unknown_column",
            details={field: unknown, "columns": columns},
        )
