"""The issue's bad inputs that the platform must refuse before any training starts: a 4xx with
the one JSON error shape, words a user understands, and nothing created."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlmanager.core.tests.factories import member
from mlmanager.datasets.models import Dataset
from mlmanager.machines.models import Machine
from mlmanager.machines.tests.conftest import BUDGET_S, churn_frame

pytestmark = pytest.mark.django_db


def _frame(**columns: Any) -> pd.DataFrame:
    rows = 100
    generator = np.random.default_rng(1)
    return pd.DataFrame(
        {"customer_id": [f"C{i}" for i in range(rows)], "x": generator.normal(size=rows)} | columns
    )


def _mostly_missing() -> list[Any]:
    values: list[Any] = [None] * 100
    values[:8] = ["yes", "no"] * 4
    return values


# (what, dataset frame or None for the standard one, body fields, status, code, in the message)
CASES = [
    ("target with one value", _frame(y=["same"] * 100), {}, 400, "unusable_target", "one value"),
    (
        "target 92 % missing",
        _frame(y=_mostly_missing()),
        {},
        400,
        "target_mostly_missing",
        "missing in 92 % of the rows",
    ),
    (
        "no usable inputs",
        _frame(y=["a", "b"] * 50),
        {"inputs": ["customer_id"]},
        400,
        "no_usable_inputs",
        "None of the chosen inputs can be used",
    ),
    (
        "only an identifier besides the target",
        _frame(y=["a", "b"] * 50).drop(columns=["x"]),
        {},
        400,
        "no_usable_inputs",
        "identifiers",
    ),
    (
        "5 rows",
        pd.DataFrame({"x": [1.0, 2.5, 3.0, 4.5, 5.0], "y": [True, False, True, False, True]}),
        {},
        400,
        "too_few_rows",
        "Only 5 rows",
    ),
    (
        "2 000 classes",
        pd.DataFrame(
            {
                "x": np.random.default_rng(2).normal(size=4000),
                "y": [f"level {i % 2000}" for i in range(4000)],
            }
        ),
        {},
        400,
        "too_many_classes",
        "at most 1,000 classes",
    ),
    ("budget of 0", None, {"time_budget_s": 0}, 400, "budget_too_small", "too short"),
    (
        "budget of 30 days",
        None,
        {"time_budget_s": 30 * 86400},
        400,
        "budget_too_large",
        "30 days",
    ),
    ("level 9", None, {"level": 9, "time_budget_s": None}, 400, "invalid_level", "between 1 and 5"),
    ("level and seconds", None, {"level": 2}, 400, "invalid", "not both"),
    ("unknown output", None, {"outputs": ["nope"]}, 400, "unknown_column", "“nope”"),
    ("unknown input", None, {"inputs": ["plan", "nope"]}, 400, "unknown_column", "“nope”"),
    ("no outputs", None, {"outputs": []}, 400, "no_outputs", "at least one column"),
    ("malformed output", None, {"outputs": [{"task": "binary"}]}, 400, "invalid", "column name"),
    ("wrong metric", None, {"metric": "rmse"}, 400, "unknown_metric", "roc_auc"),
    (
        "regression of a category",
        None,
        {"outputs": [{"name": "plan", "task": "regression"}]},
        400,
        "task_mismatch",
        "classification",
    ),
    (
        "output is also an input",
        None,
        {"inputs": ["plan", "churned"]},
        400,
        "output_is_input",
        "both predicted and used as an input",
    ),
]


@pytest.mark.parametrize(
    ("frame", "body", "status", "code", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_refused_with_a_clear_message(
    api, owner, make_dataset, frame, body, status, code, message
) -> None:
    dataset = make_dataset(owner, frame)
    target = "churned" if frame is None else "y"
    payload = {"dataset": dataset.pk, "outputs": [target], "time_budget_s": BUDGET_S} | body
    response = api.post("/api/v1/models/", payload, format="json")
    assert response.status_code == status, response.json()
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert message in error["message"]
    assert not Machine.objects.exists()


def test_dataset_not_ready_conflicts(api, owner, make_dataset) -> None:
    dataset = make_dataset(owner, churn_frame())
    Dataset.objects.filter(pk=dataset.pk).update(status=Dataset.Status.PROCESSING)
    response = api.post(
        "/api/v1/models/", {"dataset": dataset.pk, "outputs": ["churned"]}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "dataset_not_ready"


def test_dataset_of_another_team_is_not_found(api, make_dataset) -> None:
    dataset = make_dataset(member("owner"))
    response = api.post(
        "/api/v1/models/", {"dataset": dataset.pk, "outputs": ["churned"]}, format="json"
    )
    assert response.status_code == 404
    assert not Machine.objects.exists()
