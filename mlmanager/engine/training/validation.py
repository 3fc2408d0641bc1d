"""Check a training request against the data set's profile before any work starts.

Everything here reads the profile only (types, counts), so it is instant and can run while the
user fills in the form. `train` itself trusts these checks and re-checks only what the data
alone can show.
"""

from __future__ import annotations

import math

from mlmanager.engine.training.spec import (
    DEFAULT_METRIC,
    MAX_BUDGET_S,
    METRICS,
    MIN_BUDGET_S,
    TASKS,
    TrainingError,
    TrainingSpec,
    usable_inputs,
)

# An integer output with at most this many distinct values is taken for classes, not amounts.
INTEGER_CLASS_LIMIT = 20
MAX_CLASSES = 1000
MIN_TARGET_ROWS = 20
MAX_TARGET_MISSING_SHARE = 0.9
_TARGET_TYPES = frozenset({"numeric", "integer", "categorical", "boolean", "text"})
_REGRESSION_TYPES = frozenset({"numeric", "integer", "boolean"})


def infer_task(column_profile: dict) -> str:
    """Suggest the task for predicting the profiled column: binary, multiclass or regression.

    Raises TrainingError for columns nothing can be learnt to predict (empty, constant,
    identifiers, dates, JSON).
    """
    name = column_profile.get("name", "")
    column_type = column_profile.get("type")
    unique_count = int(column_profile.get("unique_count") or 0)
    if column_type not in _TARGET_TYPES or unique_count < 2:
        raise _unusable_target_error(name, column_type, unique_count)
    if column_type == "boolean" or unique_count == 2:
        return "binary"
    if column_type == "numeric":
        return "regression"
    if column_type == "integer":
        return "multiclass" if unique_count <= INTEGER_CLASS_LIMIT else "regression"
    return "multiclass"


def validate_spec(spec: TrainingSpec, profile: dict) -> None:
    """Raise TrainingError, in words a user understands, if `spec` cannot be trained."""
    _validate_budget(spec.time_budget_s)
    if spec.max_candidates is not None and spec.max_candidates < 1:
        raise TrainingError("The number of candidate models must be at least 1.", code="invalid")
    columns = {column["name"]: column for column in profile.get("columns", [])}
    row_count = int(profile.get("row_count") or 0)
    if not spec.outputs:
        raise TrainingError("Choose at least one column to predict.", code="no_outputs")
    output_names = [output.name for output in spec.outputs]
    if len(set(output_names)) != len(output_names):
        raise TrainingError("Each column can be predicted only once.", code="duplicate_output")
    input_names = [name for name, _ in spec.inputs]
    unknown = [name for name in [*input_names, *output_names] if name not in columns]
    if unknown:
        raise TrainingError(
            f"The data set has no column {_quoted(unknown)}; it may have changed since the "
            "model was set up.",
            code="unknown_column",
        )
    both = [name for name in output_names if name in input_names]
    if both:
        raise TrainingError(
            f"{_quoted(both)} cannot be both predicted and used as an input: the model would "
            "just copy it. Remove it from the inputs.",
            code="output_is_input",
        )
    if not usable_inputs(list(spec.inputs)):
        raise TrainingError(
            "None of the chosen inputs can be used: identifiers, columns with one value and "
            "empty columns carry nothing to learn from. Choose other input columns.",
            code="no_usable_inputs",
        )
    for output in spec.outputs:
        _validate_output(output.name, output.task, output.metric, columns[output.name], row_count)


def _validate_budget(budget_s: float) -> None:
    if not isinstance(budget_s, int | float) or not math.isfinite(budget_s):
        raise TrainingError("The time budget must be a number of seconds.", code="invalid_budget")
    if budget_s < MIN_BUDGET_S:
        raise TrainingError(
            f"A budget of {format_duration(budget_s)} is too short; training needs at least "
            f"{format_duration(MIN_BUDGET_S)}.",
            code="budget_too_small",
        )
    if budget_s > MAX_BUDGET_S:
        raise TrainingError(
            f"A budget of {format_duration(budget_s)} is more than the "
            f"{format_duration(MAX_BUDGET_S)} limit.",
            code="budget_too_large",
        )


def _validate_output(name: str, task: str, metric: str, column: dict, row_count: int) -> None:
    if task not in TASKS:
        raise TrainingError(
            f"Unknown task “{task}” for “{name}”; choose one of {', '.join(TASKS)}.",
            code="unknown_task",
        )
    if metric not in METRICS[task]:
        raise TrainingError(
            f"“{metric}” cannot be optimised for a {task} model of “{name}”; choose one of "
            f"{', '.join(METRICS[task])} (the default is {DEFAULT_METRIC[task]}).",
            code="unknown_metric",
        )
    column_type = column.get("type")
    unique_count = int(column.get("unique_count") or 0)
    if column_type not in _TARGET_TYPES or unique_count < 2:
        raise _unusable_target_error(name, column_type, unique_count)
    missing_share = float(column.get("missing_share") or 0.0)
    if missing_share >= MAX_TARGET_MISSING_SHARE:
        raise TrainingError(
            f"“{name}” is missing in {math.floor(missing_share * 100)} % of the rows; at least "
            f"{round((1 - MAX_TARGET_MISSING_SHARE) * 100)} % of the rows need a value to learn "
            "from.",
            code="target_mostly_missing",
        )
    with_value = row_count - int(column.get("missing_count") or 0)
    if with_value < MIN_TARGET_ROWS:
        raise TrainingError(
            f"Only {with_value} row{'s' if with_value != 1 else ''} have a value for “{name}”; "
            f"training needs at least {MIN_TARGET_ROWS}.",
            code="too_few_rows",
        )
    if task == "regression" and column_type not in _REGRESSION_TYPES:
        raise TrainingError(
            f"“{name}” holds {column_type} values, not numbers, so it cannot be predicted as an "
            "amount. Choose a classification task instead.",
            code="task_mismatch",
        )
    if task == "binary" and unique_count != 2:
        raise TrainingError(
            f"“{name}” has {unique_count:,} different values; a yes/no (binary) model needs "
            "exactly 2. Choose the multiclass task instead.",
            code="task_mismatch",
        )
    if task == "multiclass" and unique_count > MAX_CLASSES:
        raise TrainingError(
            f"“{name}” has {unique_count:,} different values; a classification model supports "
            f"at most {MAX_CLASSES:,} classes. If it is an amount, choose regression.",
            code="too_many_classes",
        )


def _unusable_target_error(name: str, column_type: str | None, unique_count: int) -> TrainingError:
    if column_type == "empty" or unique_count == 0:
        reason = "has no values"
    elif column_type == "constant" or unique_count == 1:
        reason = "has only one value, so there is nothing to predict"
    elif column_type == "identifier":
        reason = "looks like an identifier (a different value in every row)"
    else:
        reason = f"holds {column_type} values, which cannot be predicted"
    return TrainingError(f"“{name}” {reason}. Choose another column.", code="unusable_target")


def format_duration(seconds: float) -> str:
    """A duration in the unit people would use: 45 s, 5 min, 4 h, 30 days."""
    if seconds < 120:
        return f"{round(seconds, 1):g} s"
    if seconds < 2 * 3600:
        return f"{round(seconds / 60, 1):g} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600, 1):g} h"
    return f"{round(seconds / 86400, 1):g} days"


def _quoted(names: list[str]) -> str:
    return ", ".join(f"“{name}”" for name in names)
