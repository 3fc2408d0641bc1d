from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mlmanager.engine.training.preprocessing import (
    ONE_HOT_MAX_LEVELS,
    TEXT_HASH_FEATURES,
    BooleanValues,
    DatetimeParts,
    FrequencyEncoder,
    as_text,
    build_preprocessor,
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
