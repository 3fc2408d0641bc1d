"""Correlation and mutual information of a dataset's columns with a chosen output
(engine.relations), on at most 20 000 sampled rows, kept in the cache per file and output."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.utils.translation import gettext as _

from mlmanager.core.errors import ApplicationError
from mlmanager.datasets.files import materialise
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.selectors import require_dataset_ready, require_table
from mlmanager.engine.relations import (
    CATEGORY_TYPES,
    MAX_SAMPLE_ROWS,
    NUMBER_TYPES,
    column_relations,
    sample_rows,
)

# A day: the key names the file's state (profile and update time), so an entry never goes stale.
CACHE_SECONDS = 24 * 3600


def output_choices(*, dataset: Dataset) -> list[str]:
    """The columns relations can be computed against: numbers and categories."""
    return [
        column["name"]
        for column in dataset.columns
        if column.get("type") in NUMBER_TYPES | CATEGORY_TYPES
    ]


def dataset_relations(*, dataset: Dataset, output: str) -> dict[str, Any]:
    """`{"output", "sampled_rows", "columns": [{name, correlation, method,
    mutual_information}]}`, the columns by mutual information with `output`, highest first."""
    require_table(dataset=dataset)
    require_dataset_ready(dataset=dataset)
    choices = output_choices(dataset=dataset)
    if output not in choices:
        raise ApplicationError(
            _("Choose a column of numbers or categories as the output."),
            code="invalid_output",
            details={"output": output, "choices": choices},
        )
    key = f"dataset-relations:{dataset.pk}:{dataset.updated_at.timestamp()}:{output}"
    found = cache.get(key)
    if found is not None:
        return found
    types = {column["name"]: column.get("type", "") for column in dataset.columns}
    frame = sample_rows(materialise(dataset.parquet_path), list(types))
    body = {
        "output": output,
        "sampled_rows": min(len(frame), MAX_SAMPLE_ROWS),
        "columns": column_relations(frame, output=output, types=types),
    }
    cache.set(key, body, CACHE_SECONDS)
    return body
