"""JSON columns of a dataset expanded into dotted child columns (engine.ingest.json_columns),
within the processing job, and the expansion recorded in the profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from mlmanager.engine.ingest import MAX_COLUMNS
from mlmanager.engine.ingest.json_columns import expand_json_columns
from mlmanager.jobs.runner import JobContext


def expand_json_in_job(context: JobContext, parquet: Path) -> list[dict[str, Any]]:
    """Expand the JSON columns of a freshly converted file; the expansions as the ingest
    report keeps them (`json_columns`), each logged on the job."""
    expansions = expand_json_columns(
        parquet, max_columns=MAX_COLUMNS, max_cells=settings.MLMANAGER_MAX_CELLS
    )
    for expansion in expansions:
        context.log(
            _("JSON column “%(name)s” expanded into %(count)s columns.")
            % {"name": expansion.column, "count": len(expansion.children)}
        )
    return [expansion.to_dict() for expansion in expansions]


def attach_json_expansions(profile: dict[str, Any], expansions: list[dict[str, Any]]) -> None:
    """Mark each expanded column (`expanded_into`: its children's names; its suggested role
    becomes "ignore": its children carry what it holds) and each child (`expanded_from`: the
    parent, `json_path`: its keys)."""
    by_name = {column["name"]: column for column in profile.get("columns", [])}
    for expansion in expansions:
        parent = by_name.get(expansion["column"])
        children = [child for child in expansion["children"] if child["name"] in by_name]
        if parent is None or not children:
            continue
        parent["expanded_into"] = [child["name"] for child in children]
        parent["role"], parent["role_reason"] = "ignore", "expanded into columns"
        for child in children:
            by_name[child["name"]]["expanded_from"] = expansion["column"]
            by_name[child["name"]]["json_path"] = list(child["path"])
