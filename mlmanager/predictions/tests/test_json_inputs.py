"""A row may give a JSON column instead of its dotted children (predictions.schema)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlmanager.core.errors import ApplicationError
from mlmanager.machines.models import Machine, machine_storage_dir
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.schema import InputSchema, recorded_inputs

CITY = {"name": "meta.city", "type": "categorical", "expanded_from": "meta", "json_path": ["city"]}
WIDTH = {
    "name": "meta.size.w",
    "type": "numeric",
    "expanded_from": "meta",
    "json_path": ["size", "w"],
}
INPUTS = [
    CITY,
    WIDTH,
    {"name": "price", "type": "numeric"},
]


def test_rows_give_the_parent_json_or_the_children() -> None:
    schema = InputSchema.of_version(INPUTS)
    parsed = schema.parse_rows(
        [
            {"meta": json.dumps({"city": "Paris", "size": {"w": 2}}), "price": 1},
            {"meta": {"city": "Lyon", "size": {"w": 3.5}}},
            {"meta.city": "Nice", "meta.size.w": 4},
            {"meta": {"city": "Oslo", "size": {"w": 5}}, "meta.city": "Rome"},  # child wins
            {"meta": None},
            {"meta": {"size": "flat"}},
        ]
    )
    assert parsed.columns["meta.city"].tolist() == ["Paris", "Lyon", "Nice", "Rome", None, None]
    np.testing.assert_array_equal(
        parsed.columns["meta.size.w"], [2.0, 3.5, 4.0, 5.0, np.nan, np.nan]
    )
    assert parsed.row(1) == {"meta": {"city": "Lyon", "size": {"w": 3.5}}}  # logged as sent


def test_columns_payload_gives_the_parent() -> None:
    schema = InputSchema.of_version(INPUTS)
    parsed = schema.parse_columns(
        {"meta": ['{"city": "Paris", "size": {"w": 1}}', None], "price": [1, 2]}
    )
    assert parsed.columns["meta.city"].tolist() == ["Paris", None]
    np.testing.assert_array_equal(parsed.columns["meta.size.w"], [1.0, np.nan])


@pytest.mark.parametrize("value", ["not json", "[1, 2]", 5, ["x"]])
def test_a_parent_that_is_not_an_object_is_refused(value) -> None:
    schema = InputSchema.of_version(INPUTS)
    with pytest.raises(ApplicationError) as refused:
        schema.parse_rows([{"price": 1}, {"meta": value}])
    assert refused.value.code == "wrong_type"
    assert refused.value.details == {"row": 1, "field": "meta", "expected": "a JSON object"}


def test_unknown_fields_are_still_refused() -> None:
    schema = InputSchema.of_version(INPUTS)
    with pytest.raises(ApplicationError) as refused:
        schema.parse_rows([{"other": 1}])
    assert refused.value.code == "unknown_fields"


def test_a_parent_that_is_an_input_itself_stays() -> None:
    schema = InputSchema.of_version([*INPUTS, {"name": "meta", "type": "json"}])
    parsed = schema.parse_rows([{"meta": {"city": "Paris"}}])
    assert parsed.columns["meta"].tolist() == ['{"city": "Paris"}']
    assert parsed.columns["meta.city"].tolist() == ["Paris"]


def test_versions_record_where_a_child_comes_from() -> None:
    columns = [
        {
            "name": "meta.city",
            "type": "categorical",
            "expanded_from": "meta",
            "json_path": ["city"],
        },
        {"name": "price", "type": "numeric", "stats": {"min": 1, "max": 2}},
    ]
    records = recorded_inputs(
        [("meta.city", "categorical"), ("price", "numeric")], columns=columns, parquet=None
    )
    assert records == [
        {
            "name": "meta.city",
            "type": "categorical",
            "expanded_from": "meta",
            "json_path": ["city"],
        },
        {"name": "price", "type": "numeric", "min": 1, "max": 2},
    ]


@pytest.mark.django_db
def test_predict_by_rules_takes_the_parent_json(api, owner, make_dataset) -> None:
    frame = pd.DataFrame(
        {"meta": [json.dumps({"city": c, "size": {"w": i}}) for i, c in enumerate("ab" * 10)]}
    )
    dataset = make_dataset(owner, frame, name="Meta")
    # What processing records (datasets.json_columns), without running the job.
    dataset.profile["columns"] += [
        {
            "name": "meta.city",
            "type": "categorical",
            "expanded_from": "meta",
            "json_path": ["city"],
        },
        {
            "name": "meta.size.w",
            "type": "numeric",
            "expanded_from": "meta",
            "json_path": ["size", "w"],
        },
    ]
    dataset.save()
    machine = Machine.objects.create(
        team=owner.current_team,
        created_by=owner,
        name="Meta model",
        dataset=dataset,
        inputs=["meta.city", "meta.size.w"],
        outputs=[{"name": "score", "task": "regression", "metric": "rmse"}],
        time_budget_s=60,
        storage_dir=machine_storage_dir(owner.current_team_id),
    )
    rules = {"score": "meta_size_w * 2 if meta_city == 'a' else -1"}
    response = api.put(
        f"/api/v1/models/{machine.pk}/experimenter/", {"rules": rules}, format="json"
    )
    assert response.status_code == 200, response.json()
    rows = [{"meta": {"city": "a", "size": {"w": 4}}}, {"meta.city": "b", "meta.size.w": 1}]
    response = api.post(f"/api/v1/models/{machine.pk}/predict/", {"rows": rows}, format="json")
    assert response.status_code == 200, response.json()
    assert [p["score"] for p in response.json()["predictions"]] == [8.0, -1]
    assert Prediction.objects.filter(by_rules=True).count() == 2
