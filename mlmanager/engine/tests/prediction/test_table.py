"""predict_table: prediction columns appended to a table; output_columns: what they are."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlmanager.engine.prediction import (
    OutputColumn,
    Predictor,
    output_columns,
    predict_rows,
    predict_table,
)
from mlmanager.engine.training import TrainedModel


def test_output_columns_name_kind_and_type_every_added_column(
    predictor: Predictor, color_model: TrainedModel, flag_model: TrainedModel
) -> None:
    assert output_columns(predictor.with_threshold(0.3)) == [
        OutputColumn("predicted_churned", "churned", "label", pa.string(), threshold=0.3),
        OutputColumn("probability_churned_no", "churned", "probability", pa.float64(), "no"),
        OutputColumn("probability_churned_yes", "churned", "probability", pa.float64(), "yes"),
        OutputColumn("predicted_amount", "amount", "value", pa.float64()),
    ]
    three = output_columns(Predictor.of([color_model], threshold=0.3))
    # Three classes: no threshold applies.
    assert three[0] == OutputColumn("predicted_shade", "shade", "label", pa.string())
    assert [column.class_key for column in three[1:]] == ["red", "green", "blue"]
    flags = output_columns(Predictor.of([flag_model]))
    assert [(c.name, c.type) for c in flags] == [
        ("predicted_flag", pa.bool_()),
        ("probability_flag_false", pa.float64()),
        ("probability_flag_true", pa.float64()),
    ]


def test_names_the_table_already_has_get_a_suffix(predictor: Predictor) -> None:
    taken = ["predicted_churned", "predicted_churned_2", "probability_churned_yes"]
    names = [column.name for column in output_columns(predictor, taken=taken)]
    assert names == [
        "predicted_churned_3",
        "probability_churned_no",
        "probability_churned_yes_2",
        "predicted_amount",
    ]


def test_an_arrow_table_keeps_its_columns_and_gets_the_predictions(predictor: Predictor) -> None:
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "x": [-0.6, None, 2.0],  # a missing value
            "predicted_churned": [1, 2, 3],  # the caller's own column of that name
        }
    )  # no `color` column: missing to the model
    result = predict_table(predictor.with_threshold(0.3), table)
    assert result.column_names == [
        "id",
        "x",
        "predicted_churned",
        "predicted_churned_2",
        "probability_churned_no",
        "probability_churned_yes",
        "predicted_amount",
    ]
    assert result.select(["id", "x", "predicted_churned"]) == table
    assert result.schema.field("predicted_churned_2").type == pa.string()
    rows = predict_rows(
        predictor.with_threshold(0.3),
        {"x": np.array([-0.6, np.nan, 2.0]), "color": np.array([None] * 3, dtype=object)},
    )
    assert result.column("predicted_churned_2").to_pylist() == [r["churned"]["value"] for r in rows]
    assert result.column("probability_churned_yes").to_pylist() == pytest.approx(
        [r["churned"]["probabilities"]["yes"] for r in rows]
    )
    assert result.column("predicted_amount").to_pylist() == pytest.approx(
        [r["amount"]["value"] for r in rows]
    )


def test_the_threshold_chooses_the_labels_of_a_table(churn_model: TrainedModel) -> None:
    table = pa.table({"x": [-0.6, 0.0, 2.0]})
    labels = {
        threshold: predict_table(Predictor.of([churn_model], threshold=threshold), table)
        .column("predicted_churned")
        .to_pylist()
        for threshold in (None, 0.3, 0.01)
    }
    assert labels == {
        None: ["no", "no", "yes"],
        0.3: ["no", "yes", "yes"],
        0.01: ["yes", "yes", "yes"],
    }


def test_an_empty_table_gets_typed_empty_columns(predictor: Predictor, flag_model) -> None:
    empty = predict_table(predictor, pa.table({"x": pa.array([], pa.float64())}))
    assert empty.num_rows == 0
    assert [field.type for field in empty.schema][1:] == [
        pa.string(),
        pa.float64(),
        pa.float64(),
        pa.float64(),
    ]
    flags = predict_table(Predictor.of([flag_model]), pa.table({"x": pa.array([], pa.float64())}))
    assert flags.schema.field("predicted_flag").type == pa.bool_()


def test_a_pandas_frame_comes_back_as_one_with_its_index(predictor: Predictor) -> None:
    frame = pd.DataFrame({"x": [2.0, -2.0], "color": ["red", None]}, index=[10, 20])
    result = predict_table(predictor, frame)
    assert isinstance(result, pd.DataFrame) and list(result.index) == [10, 20]
    assert list(result.columns[:2]) == ["x", "color"]
    assert result["predicted_churned"].tolist() == ["yes", "no"]
    assert list(frame.columns) == ["x", "color"]  # the caller's frame is left as it was
    arrow = predict_table(predictor, pa.Table.from_pandas(frame, preserve_index=False))
    assert result["predicted_amount"].tolist() == arrow.column("predicted_amount").to_pylist()
