"""predict_rows: the few rows of a request as plain values; explain_row: what moved one row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlmanager.engine.prediction import Predictor, explain_row, predict_rows
from mlmanager.engine.training import TrainedModel


def columns(x: list[float], color: list[str | None]) -> dict[str, np.ndarray]:
    """Rows as a request's parser hands them over: floats with NaN, objects with None."""
    return {"x": np.array(x, dtype=np.float64), "color": np.array(color, dtype=object)}


def test_a_regression_answers_its_amounts(amount_model: TrainedModel) -> None:
    rows = columns([0.0, 1.0], ["red", "blue"])
    answers = predict_rows(Predictor.of([amount_model]), rows)
    expected = amount_model.predict(pd.DataFrame(rows)).tolist()
    assert answers == [{"amount": {"value": expected[0]}}, {"amount": {"value": expected[1]}}]
    assert expected == pytest.approx([1.0, 4.0], abs=1e-6)


def test_two_classes_take_the_more_probable_or_the_threshold(churn_model: TrainedModel) -> None:
    rows = columns([-0.6, 0.0, 2.0], ["red", "red", "red"])
    plain = predict_rows(Predictor.of([churn_model]), rows)
    chances = [round(answer["churned"]["probabilities"]["yes"], 2) for answer in plain]
    assert chances == [0.11, 0.43, 1.0]
    assert [answer["churned"]["value"] for answer in plain] == ["no", "no", "yes"]
    assert set(plain[0]["churned"]["probabilities"]) == {"no", "yes"}

    lowered = predict_rows(Predictor.of([churn_model], threshold=0.3), rows)
    assert [answer["churned"]["value"] for answer in lowered] == ["no", "yes", "yes"]
    lenient = Predictor.of([churn_model]).with_threshold(0.1)
    assert [a["churned"]["value"] for a in predict_rows(lenient, rows)] == ["yes", "yes", "yes"]
    # The threshold chooses the label only: the probabilities are the same.
    assert [a["churned"]["probabilities"] for a in lowered] == [
        a["churned"]["probabilities"] for a in plain
    ]


def test_three_classes_ignore_a_threshold(color_model: TrainedModel) -> None:
    rows = columns([0.0, 0.0, 0.0], ["green", "blue", "red"])
    for threshold in (None, 0.01, 0.99):
        answers = predict_rows(Predictor.of([color_model], threshold=threshold), rows)
        assert [answer["shade"]["value"] for answer in answers] == ["green", "blue", "red"]
        assert list(answers[0]["shade"]["probabilities"]) == ["red", "green", "blue"]
        assert sum(answers[0]["shade"]["probabilities"].values()) == pytest.approx(1.0)


def test_true_and_false_classes_are_keyed_as_json_writes_them(flag_model: TrainedModel) -> None:
    answers = predict_rows(Predictor.of([flag_model]), columns([-2.0, 2.0], ["red", "red"]))
    assert [answer["flag"]["value"] for answer in answers] == [False, True]
    assert list(answers[0]["flag"]["probabilities"]) == ["false", "true"]


def test_missing_and_absent_inputs_are_answered(predictor: Predictor) -> None:
    answers = predict_rows(predictor, columns([np.nan, 1.0], [None, None]))
    assert [set(answer) for answer in answers] == [{"churned", "amount"}] * 2
    only_x = predict_rows(predictor, {"x": np.array([1.0])})  # `color` not sent at all
    with_none = predict_rows(predictor, columns([1.0], [None]))
    assert only_x == with_none
    assert predict_rows(predictor, {}) == []


def test_several_outputs_answer_each(predictor: Predictor, amount_model: TrainedModel) -> None:
    rows = columns([2.0], ["blue"])
    (answer,) = predict_rows(predictor, rows)
    assert list(answer) == ["churned", "amount"]
    assert answer["amount"] == {"value": amount_model.predict(rows)[0]}
    assert answer["churned"]["value"] == "yes"


def test_an_explanation_names_the_inputs_that_moved_the_answer(predictor: Predictor) -> None:
    explanation = explain_row(predictor, columns([2.5, -1.0], ["red", "blue"]))
    assert list(explanation) == ["churned", "amount"]
    # `x` drives both; blanking it (the median, about 0) moves "yes" and the amount down.
    assert explanation["churned"][0]["input"] == "x" and explanation["churned"][0]["effect"] > 0.3
    assert explanation["amount"][0]["input"] == "x"
    assert explanation["amount"][0]["effect"] == pytest.approx(7.5, abs=0.5)
    nothing_given = explain_row(predictor, columns([np.nan], [None]))
    assert nothing_given == {"churned": [], "amount": []}


def test_an_explanation_follows_the_class_the_threshold_chose(churn_model: TrainedModel) -> None:
    rows = columns([-0.5], ["red"])  # "no" is the more probable class
    chose_no = explain_row(Predictor.of([churn_model]), rows)["churned"][0]["effect"]
    chose_yes = explain_row(Predictor.of([churn_model], threshold=0.05), rows)["churned"]
    # Knowing `x` made "no" more probable, and so "yes" less.
    assert chose_no > 0.2 and chose_yes[0]["effect"] == pytest.approx(-chose_no)
