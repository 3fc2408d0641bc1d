"""Every type override on every column ends in a profile, never an exception (issue 12): a
property test over generated messy columns, each written to Parquet and profiled with each type
of COLUMN_TYPES forced on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlmanager.engine.profiling import COLUMN_TYPES, profile_parquet

DATE_TEXTS = st.sampled_from(
    [
        "2024-01-05",
        "2024-01-05T10:11:12",
        "2024-01-05 10:11:12.123456",
        "05/01/2024",
        "01/05/2024",
        "5.1.2024",
        "2024/01/05",
        "2024-13-45",
        "1900-01-01",
        "9999-12-31",
        "0001-01-01",
        "2024-01-05T10:11:12+02:00",
    ]
)
NUMBER_TEXTS = st.sampled_from(
    [
        "1",
        "-3",
        "100,85",
        "1.5",
        "1e308",
        "-1e308",
        "1e999",
        "1e-300",
        "9007199254740993",
        "NaN",
        "inf",
        "?",
        "NA",
        "",
        " 7 ",
    ]
)
TEXTS = st.one_of(
    DATE_TEXTS, NUMBER_TEXTS, st.text(max_size=12), st.sampled_from(['{"a": 1}', "[1, 2]", "{"])
)

# One Arrow type per column, as the ingest writes them: text, whole numbers, decimals, booleans.
COLUMNS = st.one_of(
    st.lists(st.none() | TEXTS, min_size=1, max_size=40).map(lambda v: pa.array(v, pa.string())),
    st.lists(
        st.none()
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.sampled_from([2**53 + 1, -(2**63)]),
        min_size=1,
        max_size=40,
    ).map(lambda v: pa.array(v, pa.int64())),
    st.lists(
        st.none()
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.sampled_from([1e16, 1e16 + 2]),
        min_size=1,
        max_size=40,
    ).map(lambda v: pa.array(v, pa.float64())),
    st.lists(st.none() | st.booleans(), min_size=1, max_size=40).map(
        lambda v: pa.array(v, pa.bool_())
    ),
)


@pytest.mark.parametrize("override", COLUMN_TYPES)
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(column=COLUMNS)
def test_every_override_on_a_messy_column_ends_in_a_profile(
    tmp_path: Path, override: str, column: Any
) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"c": column}), path)
    profile = profile_parquet(path, type_overrides={"c": override})
    (profiled,) = profile["columns"]
    assert profiled["type"] == override
    json.dumps(profile, allow_nan=False)  # what the database and the API store and send
