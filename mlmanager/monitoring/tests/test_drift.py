"""The model-signal maths on plain values: PSI, its states, bins against a profile, accuracy
on feedback, percentiles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlmanager.monitoring import drift


def test_psi_of_identical_distributions_is_zero() -> None:
    assert drift.psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)


def test_psi_by_hand() -> None:
    # shares 0.5/0.5 against 0.8/0.2: (0.3·ln 1.6) + (−0.3·ln 0.4)
    expected = 0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5)
    assert drift.psi([50, 50], [80, 20]) == pytest.approx(expected)


def test_an_empty_bin_takes_epsilon_so_psi_stays_finite() -> None:
    value = drift.psi([50, 50, 0], [40, 40, 20])
    share = 0.2
    expected = 2 * (0.4 - 0.5) * math.log(0.4 / 0.5) + (share - drift.EPSILON) * math.log(
        share / drift.EPSILON
    )
    assert value == pytest.approx(expected)
    assert math.isfinite(value)


def test_psi_needs_the_same_bins() -> None:
    with pytest.raises(ValueError):
        drift.psi([1, 2], [1, 2, 3])


@pytest.mark.parametrize(
    ("value", "state"),
    [(None, None), (0.0, "ok"), (0.099, "ok"), (0.1, "warning"), (0.2, "warning"), (0.21, "drift")],
)
def test_psi_states(value: float | None, state: str | None) -> None:
    assert drift.psi_state(value) == state


NUMERIC_COLUMN = {
    "name": "temperature",
    "type": "numeric",
    "stats": {"histogram": {"edges": [0.0, 10.0, 20.0, 30.0], "counts": [10, 30, 60]}},
}
CATEGORICAL_COLUMN = {
    "name": "plan",
    "type": "categorical",
    "stats": {
        "top_values": [{"value": "day", "count": 50}, {"value": "night", "count": 30}],
        "other_count": 20,
    },
}


def test_numeric_bins_are_the_profile_histogram_open_at_both_ends() -> None:
    distribution = drift.expected_distribution(NUMERIC_COLUMN)
    assert distribution is not None
    assert distribution.kind == "numeric"
    # −5 below the range and 99 above it fall in the end bins; 10 and 20 go right, like numpy;
    # missing and unreadable values are left out.
    counts = distribution.bin_counts([-5, 0, 9.9, 10, 20, 30, 99, None, "x", True, "25"])
    assert counts.tolist() == [3.0, 1.0, 4.0]
    assert distribution.shares.tolist() == pytest.approx([0.1, 0.3, 0.6])


def test_numeric_bins_agree_with_numpy_inside_the_range() -> None:
    generator = np.random.default_rng(3)
    values = generator.uniform(0, 30, 500)
    distribution = drift.expected_distribution(NUMERIC_COLUMN)
    assert distribution is not None
    expected, _edges = np.histogram(values, bins=[0.0, 10.0, 20.0, 30.0])
    assert distribution.bin_counts(values.tolist()).tolist() == expected.tolist()


def test_categorical_bins_are_the_top_values_and_other() -> None:
    distribution = drift.expected_distribution(CATEGORICAL_COLUMN)
    assert distribution is not None
    assert distribution.labels == ["day", "night", drift.OTHER]
    counts = distribution.bin_counts(["day", "day", "night", "holiday", None, ""])
    assert counts.tolist() == [2.0, 1.0, 1.0]


def test_booleans_and_whole_numbers_match_the_profile_spelling() -> None:
    column = {
        "type": "boolean",
        "stats": {"top_values": [{"value": "true", "count": 5}, {"value": "false", "count": 5}]},
    }
    distribution = drift.expected_distribution(column)
    assert distribution is not None
    assert distribution.bin_counts([True, False, False]).tolist() == [1.0, 2.0, 0.0]
    assert drift.category_key(3.0) == "3"
    assert drift.category_key(3.5) == "3.5"
    assert drift.category_key(True) == "true"


@pytest.mark.parametrize(
    "column",
    [
        None,
        {"type": "datetime", "stats": {"histogram": {"edges": ["a", "b"], "counts": [1]}}},
        {"type": "numeric", "stats": {}},
        {"type": "numeric", "stats": {"histogram": {"edges": [0, 1], "counts": [0]}}},
        {"type": "categorical", "stats": {"top_values": []}},
    ],
)
def test_no_distribution_without_one_to_compare_with(column: dict | None) -> None:
    assert drift.expected_distribution(column) is None


def test_compare_of_a_shifted_sample_drifts_and_of_the_same_sample_does_not() -> None:
    generator = np.random.default_rng(0)
    training = generator.normal(50, 10, 2000)
    counts, edges = np.histogram(training, bins=20)
    column = {
        "type": "numeric",
        "stats": {"histogram": {"edges": edges.tolist(), "counts": counts.tolist()}},
    }
    distribution = drift.expected_distribution(column)
    assert distribution is not None
    same = drift.compare(distribution, training[:1000].tolist())
    shifted = drift.compare(distribution, (training[:1000] + 20).tolist())
    assert same["count"] == 1000
    assert same["psi"] < 0.1
    assert shifted["psi"] > 0.2
    assert len(same["expected"]) == len(same["actual"]) == 20
    assert sum(same["actual"]) == pytest.approx(1.0)
    assert drift.compare(distribution, [None])["psi"] is None


def test_accuracy_of_classes_and_of_amounts_within_ten_percent() -> None:
    assert drift.accuracy([("yes", "yes"), ("no", "yes"), (True, "true")], task="binary") == (
        pytest.approx(2 / 3),
        3,
    )
    pairs = [(105.0, 100.0), (111.0, 100.0), (0.0, 0.0), (0.1, 0.0), (None, 1.0), ("x", 2.0)]
    assert drift.accuracy(pairs, task="regression") == (pytest.approx(2 / 4), 4)
    assert drift.accuracy([], task="binary") == (None, 0)


def test_percentile_and_mean_skip_what_is_not_a_number() -> None:
    values = [float(v) for v in range(1, 101)]
    assert drift.percentile([*values, None, float("nan")], 95) == pytest.approx(95.05)
    assert drift.percentile([], 95) is None
    assert drift.mean([1, 2, "3", None, True]) == pytest.approx(2.0)
    assert drift.mean([]) is None
