from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine.profiling import profile_parquet, shape_stats
from mlmanager.engine.relations import column_relations, sample_rows


def test_shape_stats_exact_on_a_small_array() -> None:
    data = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    stats = shape_stats(data, 2.0, 4.0)
    # pandas' sample skewness and excess kurtosis of the same values.
    assert stats["skew"] == pytest.approx(2.2323959116364573, rel=1e-12)
    assert stats["kurtosis"] == pytest.approx(4.986865957200654, rel=1e-12)
    assert (stats["outlier_low"], stats["outlier_high"]) == (-1.0, 7.0)
    assert (stats["outlier_count"], stats["outlier_share"]) == (1, 0.2)


def test_shape_stats_symmetric_constant_and_short() -> None:
    symmetric = shape_stats(np.array([1.0, 2.0, 3.0, 4.0]), 1.75, 3.25)
    assert symmetric["skew"] == 0.0
    assert symmetric["kurtosis"] == pytest.approx(-1.2, rel=1e-12)
    assert symmetric["outlier_count"] == 0
    constant = shape_stats(np.array([5.0, 5.0, 5.0, 5.0]), 5.0, 5.0)
    assert (constant["skew"], constant["kurtosis"], constant["outlier_count"]) == (None, None, 0)
    two = shape_stats(np.array([1.0, 3.0]), 1.5, 2.5)
    assert (two["skew"], two["kurtosis"]) == (None, None)


def test_profile_stores_shape_stats_of_numeric_columns(tmp_path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"x": [1.5, 2.5, 3.5, 4.5, 100.5, None]}), path)
    stats = profile_parquet(path)["columns"][0]["stats"]
    expected = pd.Series([1.5, 2.5, 3.5, 4.5, 100.5])
    assert stats["skew"] == pytest.approx(expected.skew(), rel=1e-12)
    assert stats["kurtosis"] == pytest.approx(expected.kurt(), rel=1e-12)
    assert (stats["outlier_count"], stats["outlier_share"]) == (1, 0.2)


def _by_name(rows):
    return {row["name"]: row for row in rows}


def test_relations_with_a_number_output() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "minus": [6.0, 5.0, 4.0, 3.0, 2.0, 1.0],
            "group": ["a", "a", "a", "b", "b", "b"],
            "note": ["t", "u", "v", "w", "x", "y"],
            "y": [2.0, 4.0, 6.0, 8.0, 10.0, 12.0],
        }
    )
    types = {"x": "numeric", "minus": "numeric", "group": "categorical", "note": "text"}
    rows = column_relations(frame, output="y", types={**types, "y": "numeric"})
    found = _by_name(rows)
    assert found["x"]["correlation"] == pytest.approx(1.0)
    assert found["x"]["method"] == "pearson"
    assert found["minus"]["correlation"] == pytest.approx(-1.0)
    # η² = between / total = 6 * 3² / 70.
    assert found["group"]["correlation"] == pytest.approx(math.sqrt(54 / 70))
    assert found["group"]["method"] == "correlation_ratio"
    assert found["note"] == {
        "name": "note",
        "correlation": None,
        "method": None,
        "mutual_information": None,
    }
    assert rows[-1]["name"] == "note"  # nulls last
    informations = [row["mutual_information"] for row in rows[:-1]]
    assert informations == sorted(informations, reverse=True)


def test_relations_with_a_category_output() -> None:
    frame = pd.DataFrame(
        {
            "same": ["p", "p", "q", "q", "p", "q", "p", "q"],
            "number": [1.0, 1.1, 5.0, 5.1, 0.9, 4.9, 1.0, 5.2],
            "label": ["p", "p", "q", "q", "p", "q", "p", "q"],
        }
    )
    types = {"same": "categorical", "number": "numeric", "label": "categorical"}
    found = _by_name(column_relations(frame, output="label", types=types))
    assert found["same"]["correlation"] == pytest.approx(1.0)
    assert found["same"]["method"] == "cramers_v"
    assert found["number"]["method"] == "correlation_ratio"
    assert found["number"]["correlation"] > 0.99
    assert found["same"]["mutual_information"] == pytest.approx(math.log(2))


def test_sample_is_bounded_and_repeatable(tmp_path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": list(range(1000))}), path)
    first = sample_rows(path, ["a"], limit=100)
    assert len(first) == 100
    assert first["a"].is_monotonic_increasing
    assert sample_rows(path, ["a"], limit=100).equals(first)
    assert len(sample_rows(path, ["a"], limit=5000)) == 1000
