from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine.ingest import writer
from mlmanager.engine.ingest.json_columns import (
    MAX_DEPTH,
    expand_json_columns,
    json_path_value,
)


def _write(path, columns: dict[str, list]) -> None:
    pq.write_table(pa.table(columns), path)


def test_nested_objects_become_typed_children_next_to_their_parent(tmp_path) -> None:
    path = tmp_path / "data.parquet"
    meta = [
        json.dumps({"city": "Paris", "size": {"w": 2, "h": 1.5}, "tags": ["a", "b"], "ok": True}),
        json.dumps({"city": "Lyon", "size": {"w": 3, "h": 2}, "tags": [], "ok": False}),
        None,
        "  ",
    ]
    _write(path, {"id": [1, 2, 3, 4], "meta": meta, "after": ["x", "y", "z", "w"]})

    expansions = expand_json_columns(path, max_columns=100)

    assert [expansion.to_dict() for expansion in expansions] == [
        {
            "column": "meta",
            "children": [
                {"name": "meta.city", "path": ["city"]},
                {"name": "meta.size.w", "path": ["size", "w"]},
                {"name": "meta.size.h", "path": ["size", "h"]},
                {"name": "meta.tags", "path": ["tags"]},
                {"name": "meta.ok", "path": ["ok"]},
            ],
            "object_count": 2,
            "other_count": 0,
            "keys_left_out": 0,
        }
    ]
    table = pq.read_table(path)
    assert table.column_names == [
        "id",
        "meta",
        "meta.city",
        "meta.size.w",
        "meta.size.h",
        "meta.tags",
        "meta.ok",
        "after",
    ]
    assert table.schema.field("meta.size.w").type == pa.int64()
    assert table.schema.field("meta.size.h").type == pa.float64()
    assert table.schema.field("meta.ok").type == pa.bool_()
    assert table.column("meta.city").to_pylist() == ["Paris", "Lyon", None, None]
    assert table.column("meta.tags").to_pylist() == ['["a", "b"]', "[]", None, None]
    assert table.column("meta").to_pylist() == meta


def test_depth_cap_keeps_deeper_objects_as_json_text(tmp_path) -> None:
    path = tmp_path / "data.parquet"
    deep = {"a": {"b": {"c": {"d": 1}}}}
    _write(path, {"j": [json.dumps(deep)] * 3})
    expansions = expand_json_columns(path, max_columns=100)
    assert MAX_DEPTH == 3
    assert expansions[0].children == [("j.a.b.c", ("a", "b", "c"))]
    assert pq.read_table(path).column("j.a.b.c").to_pylist() == ['{"d": 1}'] * 3
    assert json_path_value(json.dumps(deep), ["a", "b", "c"]) == '{"d": 1}'
    assert json_path_value(deep, ["a", "b"]) is None  # flattened further: not a child


def test_children_cap_keeps_the_most_frequent_keys(tmp_path) -> None:
    path = tmp_path / "data.parquet"
    rows = [json.dumps({"common": i, f"rare{i}": i}) for i in range(10)]
    _write(path, {"j": rows})
    expansions = expand_json_columns(path, max_columns=100, max_children=3)
    assert [name for name, _path in expansions[0].children] == ["j.common", "j.rare0", "j.rare1"]
    assert expansions[0].keys_left_out == 8


def test_column_limit_bounds_the_children(tmp_path) -> None:
    path = tmp_path / "data.parquet"
    _write(path, {"j": [json.dumps({"a": 1, "b": 2, "c": 3})] * 2})
    expansions = expand_json_columns(path, max_columns=3)
    assert [name for name, _path in expansions[0].children] == ["j.a", "j.b"]
    assert pq.read_table(path).column_names == ["j", "j.a", "j.b"]


def test_mostly_objects_expand_and_other_values_leave_children_missing(tmp_path) -> None:
    path = tmp_path / "data.parquet"
    values = [json.dumps({"k": i}) for i in range(19)] + ["[1, 2]"]
    _write(path, {"j": values})
    expansions = expand_json_columns(path, max_columns=100)
    assert (expansions[0].object_count, expansions[0].other_count) == (19, 1)
    assert pq.read_table(path).column("j.k").to_pylist() == [*range(19), None]


@pytest.mark.parametrize(
    "values",
    [
        ["plain", "text", "{not json", "x"],
        [json.dumps({"k": 1}), "[1]", "[2]", "oops"],  # a minority of objects
        ["[1, 2]", "[3]", "[]", "[4]"],  # arrays are not expanded
        ["1", "2", "3", "4"],
    ],
)
def test_columns_that_are_not_json_objects_are_left_alone(tmp_path, values) -> None:
    path = tmp_path / "data.parquet"
    _write(path, {"j": values})
    before = path.read_bytes()
    assert expand_json_columns(path, max_columns=100) == []
    assert path.read_bytes() == before


def test_mixed_value_types_become_text_and_names_never_collide(tmp_path) -> None:
    path = tmp_path / "data.parquet"
    rows = [json.dumps({"v": 1, "a.b": 1, "a": {"b": 2}}), json.dumps({"v": "x"})]
    _write(path, {"j": rows, "j.x": [1, 2]})
    expansions = expand_json_columns(path, max_columns=100)
    names = [name for name, _path in expansions[0].children]
    assert names == ["j.v", "j.a.b", "j.a.b_2"]  # "a.b" and a→b would share a name
    table = pq.read_table(path)
    assert table.column("j.v").to_pylist() == ["1", "x"]
    assert table.column("j.a.b_2").to_pylist() == [2, None]
    assert table.column_names[-1] == "j.x"
    again = expand_json_columns(path, max_columns=100)
    assert [name for name, _path in again[0].children] == names
    assert pq.read_table(path).equals(table)


def test_expanding_twice_changes_nothing(tmp_path) -> None:
    path = tmp_path / "data.parquet"
    _write(path, {"j": [json.dumps({"a": 1}), json.dumps({"a": 2, "b": "z"})]})
    expand_json_columns(path, max_columns=100)
    once = pq.read_table(path)
    expansions = expand_json_columns(path, max_columns=100)
    assert [name for name, _path in expansions[0].children] == ["j.a", "j.b"]
    assert pq.read_table(path).equals(once)


def test_row_groups_with_no_value_take_the_type_of_the_others(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 2)
    path = tmp_path / "data.parquet"
    rows = [json.dumps({"a": "s"}), json.dumps({"a": "t"}), json.dumps({"b": 1}), None]
    pq.write_table(pa.table({"j": rows}), path, row_group_size=2)
    expand_json_columns(path, max_columns=100)
    table = pq.read_table(path)
    assert table.schema.field("j.a").type == pa.string()
    assert table.schema.field("j.b").type == pa.int64()
    assert table.column("j.b").to_pylist() == [None, None, 1, None]


def test_json_path_value_reads_a_row_as_expansion_does() -> None:
    value = {"city": "Paris", "size": {"w": 2}, "tags": ["a"]}
    assert json_path_value(value, ["city"]) == "Paris"
    assert json_path_value(json.dumps(value), ["size", "w"]) == 2
    assert json_path_value(value, ["tags"]) == '["a"]'
    assert json_path_value(value, ["missing"]) is None
    assert json_path_value(value, ["city", "x"]) is None
    assert json_path_value("not json", ["city"]) is None
    assert json_path_value("[1]", ["city"]) is None
    assert json_path_value(None, ["city"]) is None
