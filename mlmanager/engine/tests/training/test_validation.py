from __future__ import annotations

import pytest

from mlmanager.engine.training import (
    DEFAULT_METRIC,
    MAX_BUDGET_S,
    METRICS,
    MIN_BUDGET_S,
    OutputSpec,
    TrainingError,
    TrainingSpec,
    infer_task,
    validate_spec,
)
from mlmanager.engine.training.validation import format_duration


def _column(name: str, kind: str, *, unique: int = 50, missing: int = 0, rows: int = 100) -> dict:
    return {
        "name": name,
        "type": kind,
        "unique_count": unique,
        "missing_count": missing,
        "missing_share": missing / rows,
        "stats": {},
    }


def _profile(*columns: dict, rows: int = 100) -> dict:
    return {"row_count": rows, "column_count": len(columns), "columns": list(columns)}


GOOD_PROFILE = _profile(
    _column("age", "integer", unique=60),
    _column("city", "categorical", unique=12),
    _column("id", "identifier", unique=100),
    _column("churn", "boolean", unique=2),
)


def _spec(**changes) -> TrainingSpec:
    values = {
        "inputs": [("age", "integer"), ("city", "categorical")],
        "outputs": [OutputSpec("churn", "binary", "roc_auc")],
        "time_budget_s": 60,
    }
    values.update(changes)
    return TrainingSpec(**values)


@pytest.mark.parametrize(
    ("column", "task"),
    [
        (_column("churn", "boolean", unique=2), "binary"),
        (_column("grade", "categorical", unique=2), "binary"),
        (_column("rating", "integer", unique=2), "binary"),
        (_column("grade", "categorical", unique=5), "multiclass"),
        (_column("topic", "text", unique=40), "multiclass"),
        (_column("price", "numeric", unique=90), "regression"),
        (_column("stars", "integer", unique=5), "multiclass"),
        (_column("stars", "integer", unique=20), "multiclass"),
        (_column("count", "integer", unique=21), "regression"),
    ],
)
def test_infer_task(column: dict, task: str):
    assert infer_task(column) == task
    assert DEFAULT_METRIC[task] in METRICS[task]


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (_column("c", "constant", unique=1), "only one value"),
        (_column("e", "empty", unique=0), "no values"),
        (_column("id", "identifier", unique=100), "identifier"),
        (_column("when", "datetime", unique=80), "datetime values"),
    ],
)
def test_infer_task_refuses_columns_that_cannot_be_predicted(column: dict, message: str):
    with pytest.raises(TrainingError, match=message) as caught:
        infer_task(column)
    assert caught.value.code == "unusable_target"


def test_a_good_spec_passes():
    validate_spec(_spec(), GOOD_PROFILE)


@pytest.mark.parametrize(
    ("budget", "message", "code"),
    [
        (0, "A budget of 0 s is too short; training needs at least 10 s.", "budget_too_small"),
        (MIN_BUDGET_S - 1, "9 s is too short", "budget_too_small"),
        (30 * 86400, "A budget of 30 days is more than the 24 h limit.", "budget_too_large"),
        (float("nan"), "must be a number", "invalid_budget"),
    ],
)
def test_budget_limits(budget: float, message: str, code: str):
    with pytest.raises(TrainingError) as caught:
        validate_spec(_spec(time_budget_s=budget), GOOD_PROFILE)
    assert message in caught.value.message
    assert caught.value.code == code


def test_budget_bounds_are_inclusive():
    validate_spec(_spec(time_budget_s=MIN_BUDGET_S), GOOD_PROFILE)
    validate_spec(_spec(time_budget_s=MAX_BUDGET_S), GOOD_PROFILE)


def test_a_target_with_one_value_is_refused():
    profile = _profile(_column("age", "integer"), _column("churn", "constant", unique=1))
    with pytest.raises(TrainingError, match="“churn” has only one value") as caught:
        validate_spec(_spec(inputs=[("age", "integer")]), profile)
    assert caught.value.code == "unusable_target"


def test_a_target_missing_in_90_percent_of_rows_is_refused():
    profile = _profile(
        _column("age", "integer"),
        _column("churn", "boolean", unique=2, missing=900, rows=1000),
        rows=1000,
    )
    with pytest.raises(TrainingError, match="missing in 90 % of the rows") as caught:
        validate_spec(_spec(inputs=[("age", "integer")]), profile)
    assert caught.value.code == "target_mostly_missing"


def test_no_usable_inputs_is_refused():
    with pytest.raises(TrainingError, match="None of the chosen inputs can be used") as caught:
        validate_spec(_spec(inputs=[("id", "identifier")]), GOOD_PROFILE)
    assert caught.value.code == "no_usable_inputs"
    with pytest.raises(TrainingError, match="None of the chosen inputs"):
        validate_spec(_spec(inputs=[]), GOOD_PROFILE)


def test_five_rows_are_refused():
    profile = _profile(
        _column("age", "integer", unique=5, rows=5),
        _column("churn", "boolean", unique=2, rows=5),
        rows=5,
    )
    with pytest.raises(TrainingError, match="Only 5 rows have a value for “churn”") as caught:
        validate_spec(_spec(inputs=[("age", "integer")]), profile)
    assert caught.value.code == "too_few_rows"


def test_an_output_used_as_input_is_refused():
    with pytest.raises(TrainingError, match="both predicted and used as an input") as caught:
        validate_spec(_spec(inputs=[("age", "integer"), ("churn", "boolean")]), GOOD_PROFILE)
    assert caught.value.code == "output_is_input"


@pytest.mark.parametrize(
    ("output", "code"),
    [
        (OutputSpec("churn", "ranking", "roc_auc"), "unknown_task"),
        (OutputSpec("churn", "binary", "rmse"), "unknown_metric"),
        (OutputSpec("churn", "regression", "macro_f1"), "unknown_metric"),
        (OutputSpec("city", "binary", "roc_auc"), "task_mismatch"),
        (OutputSpec("city", "regression", "rmse"), "task_mismatch"),
        (OutputSpec("missing", "binary", "roc_auc"), "unknown_column"),
    ],
)
def test_task_and_metric_must_fit_the_output(output: OutputSpec, code: str):
    with pytest.raises(TrainingError) as caught:
        validate_spec(_spec(inputs=[("age", "integer")], outputs=[output]), GOOD_PROFILE)
    assert caught.value.code == code


def test_a_multiclass_target_with_more_than_1000_classes_is_refused():
    profile = _profile(
        _column("age", "integer", rows=5000),
        _column("code", "categorical", unique=1001, rows=5000),
        rows=5000,
    )
    spec = _spec(
        inputs=[("age", "integer")], outputs=[OutputSpec("code", "multiclass", "log_loss")]
    )
    with pytest.raises(TrainingError, match="at most 1,000 classes") as caught:
        validate_spec(spec, profile)
    assert caught.value.code == "too_many_classes"


def test_duplicate_and_missing_outputs_are_refused():
    with pytest.raises(TrainingError, match="at least one column"):
        validate_spec(_spec(outputs=[]), GOOD_PROFILE)
    twice = [OutputSpec("churn", "binary", "roc_auc")] * 2
    with pytest.raises(TrainingError, match="only once"):
        validate_spec(_spec(outputs=twice), GOOD_PROFILE)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (45, "45 s"), (300, "5 min"), (5400, "90 min"), (14400, "4 h"), (86400, "24 h")],
)
def test_format_duration(seconds: float, text: str):
    assert format_duration(seconds) == text
