from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mlmanager.engine.training.model import TrainedModel
from mlmanager.engine.training.preprocessing import (
    ONE_HOT_MAX_LEVELS,
    TEXT_HASH_FEATURES,
    BooleanValues,
    DatetimeParts,
    FrequencyEncoder,
    as_text,
    build_preprocessor,
    compile_rows,
)


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def test_as_text_makes_whole_floats_match_typed_integers():
    texts = as_text(pd.Series([3.0, 2.5, None, float("nan"), True, " a ", ""], dtype=object))
    assert texts.tolist() == ["3", "2.5", "(missing)", "(missing)", "true", "a", "(missing)"]


def test_numbers_are_imputed_with_the_median_and_flagged_when_missing():
    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, np.inf]})
    preprocessor = build_preprocessor([("x", "numeric")], frame)
    features = _dense(preprocessor.fit_transform(frame))
    assert features.shape == (5, 2)  # the value and its missing indicator
    unseen = _dense(preprocessor.transform(pd.DataFrame({"x": ["not a number", 3]})))
    assert unseen[0, 1] > 0 and unseen[1, 1] == 0  # missing flagged, present not
    assert np.isfinite(unseen).all()


def test_no_indicator_when_nothing_is_missing():
    frame = pd.DataFrame({"x": [1, 2, 3, 4]})
    features = build_preprocessor([("x", "integer")], frame).fit_transform(frame)
    assert features.shape == (4, 1)


def test_booleans_of_every_spelling():
    encoder = BooleanValues().fit(pd.DataFrame({"b": ["yes", "No", None, "YES"]}))
    values = encoder.transform(pd.DataFrame({"b": ["yes", "no", "maybe", True, 0]}))
    assert values[:, 0].tolist()[:2] == [1.0, 0.0]
    assert np.isnan(values[2, 0])
    assert values[3, 0] == 1.0 and values[4, 0] == 0.0


def test_a_two_valued_column_called_boolean_uses_its_own_values():
    encoder = BooleanValues().fit(pd.DataFrame({"b": ["male", "female", "male"]}))
    assert encoder.transform(pd.DataFrame({"b": ["female", "male"]}))[:, 0].tolist() == [0, 1]


def test_few_categories_are_one_hot_and_unknown_ones_ignored():
    frame = pd.DataFrame({"color": ["red", "green", "blue", None] * 5})
    preprocessor = build_preprocessor([("color", "categorical")], frame)
    features = _dense(preprocessor.fit_transform(frame))
    assert features.shape == (20, 4)  # red, green, blue, (missing)
    unseen = _dense(preprocessor.transform(pd.DataFrame({"color": ["purple"]})))
    assert (unseen == 0).all()


def test_100_000_levels_become_two_columns():
    levels = [f"customer-{i}" for i in range(100_000)]
    frame = pd.DataFrame({"customer": levels + levels[:20_000]})
    preprocessor = build_preprocessor([("customer", "categorical")], frame)
    features = preprocessor.fit_transform(frame)
    assert features.shape == (120_000, 2)
    assert ONE_HOT_MAX_LEVELS < 100_000


def test_frequency_encoder_ranks_by_count_and_pools_rare_and_unseen_levels():
    encoder = FrequencyEncoder().fit(pd.DataFrame({"c": ["a"] * 3 + ["b"] * 2 + ["c", "d"]}))
    values = encoder.transform(pd.DataFrame({"c": ["a", "b", "c", "zzz"]}))
    assert values[:, 0].tolist() == [3 / 7, 2 / 7, 1 / 7, 0.0]
    assert values[:, 1].tolist() == [0, 1, 2, 2]  # c (seen once) and zzz share the last rank


def test_dates_become_parts_from_timestamps_and_from_text():
    moments = pd.Series(pd.to_datetime(["2024-03-05 14:30", "2023-12-31 08:00", None]))
    parts = DatetimeParts().fit(pd.DataFrame({"d": moments}))
    values = parts.transform(pd.DataFrame({"d": moments}))
    assert values[0, :5].tolist() == [2024, 3, 5, 1, 14]
    assert values[0, 5] == dt.datetime(2024, 3, 5, 14, 30, tzinfo=dt.UTC).timestamp()
    assert np.isnan(values[2]).all()
    # A form sends text; day-first text is read with the format found in training.
    text_parts = DatetimeParts().fit(pd.DataFrame({"d": ["05/03/2024", "31/12/2023"]}))
    assert text_parts.transform(pd.DataFrame({"d": ["25/12/2024"]}))[0, :3].tolist() == [
        2024,
        12,
        25,
    ]


def test_text_and_json_are_hashed_into_a_sparse_matrix():
    frame = pd.DataFrame(
        {
            "review": ["great product", "terrible", None, "great value"],
            "meta": ['{"a": 1}', '{"b": 2}', None, "[1, 2]"],
            "x": [1.0, 2.0, 3.0, 4.0],
        }
    )
    inputs = [("review", "text"), ("meta", "json"), ("x", "numeric")]
    preprocessor = build_preprocessor(inputs, frame)
    features = preprocessor.fit_transform(frame)
    assert sp.issparse(features)
    assert features.shape == (4, 2 * TEXT_HASH_FEATURES + 1)
    assert features.dtype == np.float32


def test_a_frame_with_every_value_missing_still_transforms():
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0],
            "color": ["a", "b", "a"],
            "flag": [True, False, True],
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        }
    )
    inputs = [("x", "numeric"), ("color", "categorical"), ("flag", "boolean"), ("when", "datetime")]
    preprocessor = build_preprocessor(inputs, frame)
    trained = preprocessor.fit_transform(frame)
    empty = pd.DataFrame({name: [None] for name, _ in inputs})
    features = _dense(preprocessor.transform(empty))
    assert features.shape == (1, trained.shape[1])
    assert np.isfinite(features).all()


def _row_frames(frame: pd.DataFrame) -> list[pd.DataFrame]:
    return [frame.iloc[[index]] for index in range(len(frame))] + [frame.iloc[:7]]


def _assert_rows_match(inputs: list, train: pd.DataFrame, rows: pd.DataFrame) -> None:
    preprocessor = build_preprocessor(inputs, train)
    preprocessor.fit(train)
    fast = compile_rows(preprocessor)
    assert fast is not None
    for part in _row_frames(rows):
        columns = {name: part[name].to_numpy() for name, _ in inputs}
        expected = preprocessor.transform(part.reset_index(drop=True))
        got = fast.transform(columns, len(part))
        assert sp.issparse(got) == sp.issparse(expected)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(_dense(got), _dense(expected))


def test_the_few_row_path_gives_the_pipelines_numbers():
    rng = np.random.default_rng(0)
    rows = 300
    frame = pd.DataFrame(
        {
            "x": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(size=rows)),
            "n": rng.integers(0, 9, rows),
            "text_number": np.where(rng.random(rows) < 0.1, "n/a", "3.5").astype(object),
            "color": np.where(rng.random(rows) < 0.1, None, rng.choice(["red", "blue"], rows)),
            "code": [f"c{value}" for value in rng.integers(0, 200, rows)],
            "flag": np.where(rng.random(rows) < 0.5, "yes", "no").astype(object),
            "when": [
                f"2024-{month:02d}-{day:02d}" + (" 10:30" if day % 2 else "")
                for month, day in zip(
                    rng.integers(1, 13, rows), rng.integers(1, 29, rows), strict=True
                )
            ],
            "stamp": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 10**6, rows), unit="s"),
        }
    )
    inputs = [
        ("x", "numeric"),
        ("n", "integer"),
        ("text_number", "numeric"),
        ("color", "categorical"),
        ("code", "categorical"),
        ("flag", "boolean"),
        ("when", "datetime"),
        ("stamp", "datetime"),
    ]
    odd = frame.head(12).copy()
    odd["x"] = [np.inf, None, "7", 1.5, np.nan, 2, 3, 4, 5, 6, 7, 8]
    odd["color"] = ["green", None, np.nan, 3, "red", "", " blue", "red", "red", "x", "y", "z"]
    odd["code"] = ["unseen", None, *frame["code"][:10]]
    odd["when"] = [
        "2024-02-30",
        "2024-01-05T10:00:00+02:00",
        "2024-01-05T10:00:00Z",
        "05/01/2024",
        None,
        "",
        "2024-01-05 23:59:59.123456",
        "not a date",
        "2024-01-05",
        "2024-W01-1",
        "20240105",
        "2024-12-31",
    ]
    odd["flag"] = ["TRUE", "n", None, "maybe", "1", "0", "yes", "no", "", "y", "f", "t"]
    _assert_rows_match(inputs, frame, pd.concat([frame.head(20), odd], ignore_index=True))
    # With free text the output is sparse.
    frame["review"] = rng.choice(["great value", "broke", None], rows)
    _assert_rows_match([*inputs, ("review", "text")], frame, frame.head(20))


def test_a_model_predicts_one_row_as_it_predicts_it_in_a_batch():
    frame = pd.DataFrame(
        {
            "x": np.arange(50, dtype=float),
            "color": ["a", "b"] * 25,
            "when": ["2024-01-01", "2024-03-01"] * 25,
        }
    )
    inputs = [("x", "numeric"), ("color", "categorical"), ("when", "datetime")]
    preprocessor = build_preprocessor(inputs, frame)
    batch = preprocessor.fit_transform(frame)
    model = TrainedModel(
        output="y",
        task="regression",
        metric="rmse",
        inputs=inputs,
        preprocessor=preprocessor,
        estimator=None,
        estimator_name="none",
        classes=None,
    )
    for index in range(0, 50, 7):
        one = model.features(frame.iloc[[index]].drop(columns=["color"]))
        assert one.shape == (1, batch.shape[1])
    np.testing.assert_array_equal(_dense(model.features(frame.iloc[:5])), _dense(batch)[:5])
    assert "_rows" not in pickle.loads(pickle.dumps(model)).__dict__  # noqa: S301


def test_a_forest_predicts_a_few_rows_as_scikit_learn_does():
    from flaml.automl.model import ExtraTreesEstimator, RandomForestEstimator

    from mlmanager.engine.training.model import forest_predictions

    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 6)).astype(np.float32)
    labels = (features[:, 0] + rng.normal(size=300) > 0).astype(int) + (features[:, 1] > 1)
    amounts = features[:, 0] * 3 + rng.normal(size=300)
    for learner in (RandomForestEstimator, ExtraTreesEstimator):
        for task, target in (("multiclass", labels), ("regression", amounts)):
            model = learner(task=task, n_estimators=30, n_jobs=1)
            model.fit(features, target)
            for rows in (features[:1], features[5:12]):
                got = forest_predictions(model, rows)
                expected = (
                    model.predict(rows) if task == "regression" else model.predict_proba(rows)
                )
                np.testing.assert_array_equal(got, expected)
    assert forest_predictions(object(), features[:1]) is None


def test_lightgbm_predicts_as_its_scikit_learn_wrapper_does():
    from flaml.automl.model import LGBMEstimator

    from mlmanager.engine.training.model import lightgbm_predictions, native_predictions

    rng = np.random.default_rng(1)
    features = rng.normal(size=(400, 5)).astype(np.float32)
    features[rng.random(features.shape) < 0.05] = np.nan
    binary = (np.nan_to_num(features[:, 0]) > 0).astype(int)
    three = binary + (np.nan_to_num(features[:, 1]) > 1)
    amounts = np.nan_to_num(features[:, 2]) * 2 + rng.normal(size=400)
    for task, target in (("binary", binary), ("multiclass", three), ("regression", amounts)):
        model = LGBMEstimator(task=task, n_estimators=20, n_jobs=2, verbose=-1)
        model.fit(features, target)
        for rows in (features[:1], features[:250]):
            expected = model.predict(rows) if task == "regression" else model.predict_proba(rows)
            np.testing.assert_array_equal(lightgbm_predictions(model, rows), expected)
            np.testing.assert_array_equal(native_predictions(model, rows), expected)
    assert lightgbm_predictions(object(), features[:1]) is None
    assert native_predictions(model, features[:1].astype(np.float64)) is None
