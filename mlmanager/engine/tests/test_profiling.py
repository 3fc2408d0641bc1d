from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine.ingest import IngestError, NumberFormat, convert_to_parquet
from mlmanager.engine.profiling import COLUMN_TYPES, ROLES, profile_parquet


def _profile(tmp_path: Path, columns: dict[str, object], **options) -> dict:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table(columns), path)
    profile = profile_parquet(path, **options)
    json.dumps(profile, allow_nan=False)  # JSON-safe: no NaN or infinity anywhere
    return profile


def _column(profile: dict, name: str) -> dict:
    return next(column for column in profile["columns"] if column["name"] == name)


def _single(tmp_path: Path, values: object, **options) -> dict:
    # Padding column last so the profiled column is not "the last column".
    length = len(values)  # type: ignore[arg-type]
    profile = _profile(tmp_path, {"c": values, "pad": list(range(length))}, **options)
    return _column(profile, "c")


rng = np.random.default_rng(42)
N = 100


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (rng.normal(size=N), "numeric"),
        (rng.integers(-1000, 1000, size=N), "integer"),
        (rng.integers(0, 10, size=N).astype(float), "integer"),
        (np.arange(1, N + 1), "identifier"),
        (np.arange(N, 0, -1) * 7, "identifier"),
        (rng.permutation(np.arange(1000, 1000 + N)), "identifier"),
        (pa.array([f"C{i:05d}" for i in rng.permutation(N)]), "identifier"),
        (pa.array([f"user{i}@example.com" for i in range(N)]), "identifier"),
        (pa.array([f"This is review number {i}, and it was fine." for i in range(N)]), "text"),
        (pa.array([f"word{i % 30}" for i in range(N)]), "text"),
        (pa.array([["red", "green", "blue"][i % 3] for i in range(N)]), "categorical"),
        (
            pa.array([["red", "green", "blue"][i % 3] for i in range(N)]).dictionary_encode(),
            "categorical",
        ),
        (pa.array([f"v{i}" for i in range(20)] * 5), "categorical"),
        (pa.array([i % 2 == 0 for i in range(N)]), "boolean"),
        (pa.array([["yes", "No"][i % 2] for i in range(N)]), "boolean"),
        (pa.array([["Y", "n"][i % 2] for i in range(N)]), "boolean"),
        (pa.array([["True", "false", "TRUE"][i % 3] for i in range(N)]), "boolean"),
        (pa.array([i % 2 for i in range(N)]), "boolean"),
        (pa.array([float(i % 2) for i in range(N)]), "boolean"),
        (pa.array([["a", "b"][i % 2] for i in range(N)]), "categorical"),
        (pa.array([None] * N, pa.float64()), "empty"),
        (pa.nulls(N), "empty"),
        (pa.array([" ", ""] * (N // 2)), "empty"),
        (pa.array([float("nan")] * N), "empty"),
        (pa.array([5] * N), "constant"),
        (pa.array(["x", None] * (N // 2)), "constant"),
        (pa.array([dt.datetime(2020, 1, 1) + dt.timedelta(hours=i) for i in range(N)]), "datetime"),
        (pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=i % 40) for i in range(N)]), "datetime"),
        (pa.array([f"2020-01-{i % 28 + 1:02d}" for i in range(N)]), "datetime"),
        (pa.array([f"2020-01-{i % 28 + 1:02d}T10:00:00Z" for i in range(N)]), "datetime"),
        (pa.array([f"{i % 28 + 1:02d}/03/2021" for i in range(N)]), "datetime"),
        (pa.array([json.dumps({"k": i, "tags": ["a"]}) for i in range(N)]), "json"),
        (pa.array([json.dumps([i, i + 1]) for i in range(N)]), "json"),
    ],
)
def test_type_detection(tmp_path: Path, values: object, expected: str) -> None:
    column = _single(tmp_path, values)
    assert column["type"] == expected
    assert column["detected_type"] == expected
    assert column["type"] in COLUMN_TYPES
    assert column["role"] in ROLES


def test_identifier_needs_more_than_twenty_rows(tmp_path: Path) -> None:
    assert _single(tmp_path, list(range(20)))["type"] == "integer"
    assert _single(tmp_path, list(range(21)))["type"] == "identifier"
    assert _single(tmp_path, [f"id{i}" for i in range(20)])["type"] == "categorical"


def test_missing_values_are_counted(tmp_path: Path) -> None:
    profile = _profile(
        tmp_path,
        {
            "f": [1.5, None, float("nan"), 2.5],
            "s": ["a", "", "  ", None],
            "i": [1, 2, 3, 4],
        },
    )
    assert profile["row_count"] == 4
    assert profile["column_count"] == 3
    f = _column(profile, "f")
    assert (f["missing_count"], f["missing_share"], f["unique_count"]) == (2, 0.5, 2)
    s = _column(profile, "s")
    assert (s["missing_count"], s["missing_share"], s["unique_count"]) == (3, 0.75, 1)
    assert (s["type"], s["stats"]) == ("constant", {"value": "a"})
    assert _column(profile, "i")["missing_count"] == 0


def test_numeric_stats(tmp_path: Path) -> None:
    values = [0.0, 1.0, 2.5, 3.0, 4.0, 10.5, None, float("inf")]
    column = _single(tmp_path, values)
    finite = np.array([0.0, 1.0, 2.5, 3.0, 4.0, 10.5])
    assert column["type"] == "numeric"
    assert column["missing_count"] == 1
    stats = column["stats"]
    assert stats["count"] == 6
    assert stats["infinite_count"] == 1
    assert stats["min"] == 0.0
    assert stats["max"] == 10.5
    assert stats["mean"] == pytest.approx(finite.mean())
    assert stats["std"] == pytest.approx(finite.std(ddof=1))
    assert [stats["q25"], stats["median"], stats["q75"]] == pytest.approx(
        list(np.quantile(finite, [0.25, 0.5, 0.75]))
    )
    assert stats["zeros"] == 1
    counts, edges = np.histogram(finite, bins=20)
    assert stats["histogram"] == {"edges": edges.tolist(), "counts": counts.tolist()}


def test_integer_stats_have_one_bin_per_value_on_small_ranges(tmp_path: Path) -> None:
    column = _single(tmp_path, [1, 2, 2, 3, 3, 3, 5])
    assert column["type"] == "integer"
    stats = column["stats"]
    assert (stats["min"], stats["max"], stats["median"]) == (1, 5, 3.0)
    assert isinstance(stats["min"], int)
    assert stats["histogram"] == {
        "edges": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "counts": [1, 2, 3, 0, 1],
    }


def test_categorical_stats(tmp_path: Path) -> None:
    values = [f"c{i:02d}" for i in range(12) for _ in range(i + 1)]  # c11 most frequent
    values += ["c00"] * 3 + ["c01"] * 2  # c00 and c01 now tie with c03 at four
    column = _single(tmp_path, values)
    assert column["type"] == "categorical"
    assert column["unique_count"] == 12
    assert column["stats"] == {
        "top_values": [
            {"value": "c11", "count": 12},
            {"value": "c10", "count": 11},
            {"value": "c09", "count": 10},
            {"value": "c08", "count": 9},
            {"value": "c07", "count": 8},
            {"value": "c06", "count": 7},
            {"value": "c05", "count": 6},
            {"value": "c04", "count": 5},
            {"value": "c00", "count": 4},
            {"value": "c01", "count": 4},
        ],
        "other_count": 4 + 3,  # c03 ties with c00 and c01 but sorts after them; c02
    }


def test_boolean_stats(tmp_path: Path) -> None:
    column = _single(tmp_path, [True, False, True, None])
    assert column["stats"] == {
        "top_values": [{"value": "true", "count": 2}, {"value": "false", "count": 1}],
        "other_count": 0,
    }


def test_identifier_stats_list_first_values(tmp_path: Path) -> None:
    column = _single(tmp_path, [f"id{i:03d}" for i in range(50, 0, -1)])
    assert column["type"] == "identifier"
    assert column["stats"]["top_values"][:2] == [
        {"value": "id001", "count": 1},
        {"value": "id002", "count": 1},
    ]
    assert column["stats"]["other_count"] == 40


def test_text_stats(tmp_path: Path) -> None:
    values = [f"free text number {i} " + "x" * (i % 7) for i in range(60)] + ["short"] * 3
    column = _single(tmp_path, values)
    assert column["type"] == "text"
    stats = column["stats"]
    lengths = [len(value) for value in values]
    assert (stats["min_length"], stats["max_length"]) == (min(lengths), max(lengths))
    assert stats["mean_length"] == pytest.approx(sum(lengths) / len(lengths))
    assert stats["top_values"][0] == {"value": "short", "count": 3}
    assert len(stats["top_values"]) == 5
    assert stats["other_count"] == 63 - 3 - 4


def test_datetime_stats(tmp_path: Path) -> None:
    values = [dt.datetime(2020, 1, 1) + dt.timedelta(days=i) for i in range(40)] + [None]
    stats = _single(tmp_path, values)["stats"]
    assert stats["min"] == "2020-01-01T00:00:00"
    assert stats["max"] == "2020-02-09T00:00:00"
    assert stats["unparsed_count"] == 0
    assert len(stats["histogram"]["edges"]) == 21
    assert stats["histogram"]["edges"][0] == "2020-01-01T00:00:00"
    assert stats["histogram"]["edges"][-1] == "2020-02-09T00:00:00"
    assert sum(stats["histogram"]["counts"]) == 40


def test_datetime_strings_with_time_zone(tmp_path: Path) -> None:
    values = ["2021-03-04T05:06:07Z", "2021-03-05T05:06:07+02:00", "2021-03-06T00:00:00Z"]
    column = _single(tmp_path, values)
    assert column["type"] == "datetime"
    assert (column["stats"]["min"], column["stats"]["max"]) == (
        "2021-03-04T05:06:07+00:00",
        "2021-03-06T00:00:00+00:00",
    )


def test_datetime_strings_beyond_the_sample_are_parsed_leniently(tmp_path: Path) -> None:
    values = [f"2020-01-{i % 28 + 1:02d}" for i in range(3000)]
    values[1] = "soon"  # the evenly spread sample skips index 1
    column = _single(tmp_path, values)
    assert column["type"] == "datetime"
    assert column["stats"]["unparsed_count"] == 1
    assert column["stats"]["max"] == "2020-01-28T00:00:00"


def test_json_stats(tmp_path: Path) -> None:
    values = [json.dumps({"a": i, "b": {"c": 1}}) for i in range(30)]
    values += [json.dumps({"a": 1, "z": 2})] * 5 + ["[1, 2]"] * 2
    column = _single(tmp_path, values)
    assert column["type"] == "json"
    assert column["stats"] == {
        "sampled": 37,
        "object_count": 35,
        "array_count": 2,
        "top_keys": [
            {"key": "a", "count": 35},
            {"key": "b", "count": 30},
            {"key": "z", "count": 5},
        ],
    }


def test_roles(tmp_path: Path) -> None:
    n = 200
    profile = _profile(
        tmp_path,
        {
            "row_id": list(range(n)),
            "SalePrice": [float(i % 50) + 0.5 for i in range(n)],
            "classification": [["a", "b", "c"][i % 3] for i in range(n)],
            "review": [f"Review {i} says the product was fine overall." for i in range(n)],
            "country": ["DE"] * n,
            "nothing": pa.nulls(n),
            "sparse": [1.5 if i < 5 else None for i in range(n)],
            "colour": [["red", "blue"][i % 2] for i in range(n)],
            "when": [dt.datetime(2020, 1, 1) + dt.timedelta(hours=i) for i in range(n)],
            "churned": [["yes", "no"][i % 2] for i in range(n)],
        },
    )
    roles = {c["name"]: (c["type"], c["role"], c["role_reason"]) for c in profile["columns"]}
    assert roles == {
        "row_id": ("identifier", "ignore", "identifier"),
        "SalePrice": ("numeric", "output_candidate", "name looks like a target"),
        "classification": ("categorical", "input", ""),
        "review": ("text", "input", ""),
        "country": ("constant", "ignore", "constant"),
        "nothing": ("empty", "ignore", "empty"),
        "sparse": ("constant", "ignore", "constant"),
        "colour": ("categorical", "input", ""),
        "when": ("datetime", "input", ""),
        "churned": ("boolean", "output_candidate", "last column"),
    }


def test_mostly_missing_column_is_ignored(tmp_path: Path) -> None:
    values = [float(i) if i < 4 else None for i in range(200)]
    column = _single(tmp_path, values)
    assert column["type"] == "integer"
    assert column["missing_share"] == 0.98
    assert (column["role"], column["role_reason"]) == ("ignore", "98 % missing")


@pytest.mark.parametrize(
    ("name", "is_target"),
    [
        ("target", True),
        ("Label", True),
        ("house_price", True),
        ("SalePrice", True),
        ("y", True),
        ("outcome-2024", True),
        ("class", True),
        ("classification", False),
        ("yield", False),
        ("priceless", False),
    ],
)
def test_target_like_names(tmp_path: Path, name: str, is_target: bool) -> None:
    profile = _profile(tmp_path, {name: [1.5, 2.5, 3.5] * 10, "last": ["t"] * 30})
    expected = "output_candidate" if is_target else "input"
    assert _column(profile, name)["role"] == expected


def test_type_override_recomputes_stats(tmp_path: Path) -> None:
    values = [1, 2, 2, 3, 3, 3] * 10
    column = _single(tmp_path, values, type_overrides={"c": "categorical"})
    assert (column["type"], column["detected_type"]) == ("categorical", "integer")
    assert column["stats"] == {
        "top_values": [
            {"value": "3", "count": 30},
            {"value": "2", "count": 20},
            {"value": "1", "count": 10},
        ],
        "other_count": 0,
    }


def test_type_override_to_numeric_parses_number_strings(tmp_path: Path) -> None:
    values = ["1", "2.5", " 3 ", "n/a", "-4e1"]
    column = _single(tmp_path, values, type_overrides={"c": "numeric"})
    assert (column["type"], column["detected_type"]) == ("numeric", "categorical")
    assert column["role"] == "input"
    assert (column["stats"]["count"], column["stats"]["min"], column["stats"]["max"]) == (
        4,
        -40.0,
        3.0,
    )


def test_type_override_to_numeric_reads_decimal_commas_and_counts_what_it_cannot(
    tmp_path: Path,
) -> None:
    # Issue 12: "100,85" became count 0 after *numeric*, the missing share unchanged, no word.
    values = ["100,85", "3,5", "?", "abc", None, "1.234,5"]
    column = _single(
        tmp_path,
        values,
        type_overrides={"c": "numeric"},
        number_format=NumberFormat(",", "."),
        missing_tokens={"c": {"": 1}},
    )
    assert (column["stats"]["count"], column["stats"]["min"], column["stats"]["max"]) == (
        3,
        3.5,
        1234.5,
    )
    # The empty cell, the token "?" and "abc" are all missing once read as numbers.
    assert (column["missing_count"], column["missing_share"]) == (3, 0.5)
    assert column["missing_tokens"] == {"": 1, "?": 1}
    assert column["conversion"] == {
        "type": "numeric",
        "source": "override",
        "converted": 3,
        "missing_tokens": {"?": 1},
        "unconverted": 1,
        "examples": ["abc"],
    }


def test_type_override_to_identifier_changes_role(tmp_path: Path) -> None:
    column = _single(tmp_path, ["a", "b", "c"], type_overrides={"c": "identifier"})
    assert (column["role"], column["role_reason"]) == ("ignore", "identifier")


def test_type_override_to_datetime_counts_values_that_are_not_dates(tmp_path: Path) -> None:
    values = ["2020-01-05", "nope", "2020-02-01", "2020-01-05"]
    column = _single(tmp_path, values, type_overrides={"c": "datetime"})
    assert (column["type"], column["detected_type"]) == ("datetime", "categorical")
    stats = column["stats"]
    assert (stats["min"], stats["max"], stats["unparsed_count"]) == (
        "2020-01-05T00:00:00",
        "2020-02-01T00:00:00",
        1,
    )


def test_unusual_arrow_types_and_names(tmp_path: Path) -> None:
    profile = _profile(
        tmp_path,
        {
            "a.b": pa.array([1, 2, 3, 1], pa.uint8()),
            "nanos": pa.array([1, 2_000, 3_000_001, 5], pa.timestamp("ns", tz="Europe/Berlin")),
            "money": pa.array(["1.10", "2.20", "3.35", "1.10"]).cast(pa.decimal128(5, 2)),
            "big": pa.array(["x", "y", "x", "z"], pa.large_string()),
        },
    )
    types = {c["name"]: (c["type"], c["physical_type"]) for c in profile["columns"]}
    assert types == {
        "a.b": ("integer", "uint8"),
        "nanos": ("datetime", "timestamp[ns, tz=Europe/Berlin]"),
        "money": ("numeric", "decimal128(5, 2)"),
        "big": ("categorical", "large_string"),
    }
    assert _column(profile, "nanos")["stats"]["min"] == "1970-01-01T00:00:00+00:00"
    assert _column(profile, "money")["stats"]["max"] == 3.35


def test_empty_parquet(tmp_path: Path) -> None:
    profile = _profile(tmp_path, {"a": pa.array([], pa.int64())})
    assert profile == {
        "row_count": 0,
        "column_count": 1,
        "columns": [
            {
                "name": "a",
                "type": "empty",
                "detected_type": "empty",
                "physical_type": "int64",
                "missing_count": 0,
                "missing_share": 0.0,
                "unique_count": 0,
                "role": "ignore",
                "role_reason": "empty",
                "stats": {},
                "missing_tokens": {},
            }
        ],
    }


def test_type_override_of_unknown_column_is_ignored_and_bad_type_refused(tmp_path: Path) -> None:
    column = _single(tmp_path, [1.5, 2.5], type_overrides={"gone": "text"})
    assert column["type"] == "numeric"
    with pytest.raises(ValueError, match="unknown column types"):
        _single(tmp_path, [1.5, 2.5], type_overrides={"c": "float"})


def test_cancelling_profiling(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as caught:
        _profile(tmp_path, {"a": [1], "b": [2]}, should_cancel=lambda: True)
    assert caught.value.code == "cancelled"


def test_profile_of_converted_csv(tmp_path: Path) -> None:
    source = tmp_path / "houses.csv"
    rows = [
        f"{i};{['north', 'south'][i % 2]};2020-01-{i % 28 + 1:02d};{i % 7},5;{(i * 37) % 50 * 10}"
        for i in range(50)
    ]
    source.write_text("id;area;sold;rooms;price\n" + "\n".join(rows) + "\n")
    convert_to_parquet(source, tmp_path / "houses.parquet", original_name="houses.csv")
    profile = profile_parquet(tmp_path / "houses.parquet")
    assert [(c["name"], c["type"], c["role"]) for c in profile["columns"]] == [
        ("id", "identifier", "ignore"),
        ("area", "categorical", "input"),
        ("sold", "datetime", "input"),
        ("rooms", "numeric", "input"),
        ("price", "integer", "output_candidate"),
    ]


def test_large_file_is_profiled_quickly(tmp_path: Path) -> None:
    n = 200_000
    generator = np.random.default_rng(0)
    cities = np.array(["Berlin", "Paris", "Rome", "Madrid", "Oslo", "Vienna", "Prague", "Lisbon"])
    columns = {
        "id": np.arange(n),
        "f1": generator.normal(size=n),
        "f2": generator.uniform(0, 100, n),
        "f3": np.where(generator.random(n) < 0.1, np.nan, generator.normal(size=n)),
        "f4": generator.exponential(size=n),
        "i1": generator.integers(0, 1000, n),
        "i2": generator.integers(0, 5, n),
        "i3": generator.integers(0, 10**6, n),
        "city": cities[generator.integers(0, len(cities), n)],
        "grade": np.array(list("ABCDE"))[generator.integers(0, 5, n)],
        "flag": generator.random(n) < 0.5,
        "yes_no": np.array(["yes", "no"])[generator.integers(0, 2, n)],
        "when": np.datetime64("2020-01-01")
        + generator.integers(0, 3 * 365 * 86400, n).astype("timedelta64[s]"),
        "day": np.datetime64("2020-01-01")
        + generator.integers(0, 1000, n).astype("timedelta64[D]"),
        "code": np.char.add("C", generator.integers(0, 10**12, n).astype(str)),
        "constant": np.full(n, 7),
        "empty": pa.nulls(n, pa.float64()),
        "mostly_missing": pa.array(np.where(np.arange(n) < 1000, 1.5, np.nan), from_pandas=True),
        "note": np.char.add("note about item ", generator.integers(0, 10**6, n).astype(str)),
        "price": generator.uniform(10, 1000, n).round(2),
    }
    path = tmp_path / "large.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=100_000)
    started = time.perf_counter()
    profile = profile_parquet(path)
    elapsed = time.perf_counter() - started
    json.dumps(profile, allow_nan=False)
    assert profile["row_count"] == n
    assert {c["name"]: (c["type"], c["role"]) for c in profile["columns"]} == {
        "id": ("identifier", "ignore"),
        "f1": ("numeric", "input"),
        "f2": ("numeric", "input"),
        "f3": ("numeric", "input"),
        "f4": ("numeric", "input"),
        "i1": ("integer", "input"),
        "i2": ("integer", "input"),
        "i3": ("integer", "input"),
        "city": ("categorical", "input"),
        "grade": ("categorical", "input"),
        "flag": ("boolean", "input"),
        "yes_no": ("boolean", "input"),
        "when": ("datetime", "input"),
        "day": ("datetime", "input"),
        "code": ("identifier", "ignore"),
        "constant": ("constant", "ignore"),
        "empty": ("empty", "ignore"),
        "mostly_missing": ("constant", "ignore"),
        "note": ("text", "input"),
        "price": ("numeric", "output_candidate"),
    }
    assert _column(profile, "f3")["missing_count"] == int(np.isnan(columns["f3"]).sum())
    assert _column(profile, "city")["unique_count"] == 8
    assert sum(_column(profile, "i2")["stats"]["histogram"]["counts"]) == n
    assert elapsed < 5
