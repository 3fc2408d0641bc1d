"""JSON columns expanded into child columns with dotted names (`meta.city`, `meta.size.w`).

A text column qualifies when at least JSON_OBJECT_MIN_SHARE (95 %) of its non-empty values
parse as JSON objects (and at least one does). Nested objects are flattened down to
MAX_DEPTH levels below the column (`meta.a.b.c`); an object deeper than that, and every
array, is kept as JSON text in the child at the last level. At most MAX_CHILDREN children per
column, the keys found in most rows first (ties: the order they first appear), and never past
the file's column or cell limits. Values that are not objects (arrays, scalars, broken JSON)
leave the children missing in their row.

The children are written into the Parquet file right after their parent (which is kept), typed
as any column (all booleans: boolean, all whole numbers: int64, numbers: float64, anything else
mixed: text), so the profiler and training treat them like any other column. A child's name is
the parent's and its key path joined by dots; where that name is taken by another column of
the file, the child gets a numbered suffix. A column with the child's exact name that an earlier
expansion wrote is replaced, so expanding an expanded file changes nothing.

`json_path_value` answers one child from one parent value the same way at prediction time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlmanager.engine.ingest.writer import atomic_parquet_file

logger = logging.getLogger(__name__)

JSON_OBJECT_MIN_SHARE = 0.95
MAX_DEPTH = 3
MAX_CHILDREN = 50


@dataclasses.dataclass
class JsonExpansion:
    """One expanded column: its children (name and key path) and what was found."""

    column: str
    children: list[tuple[str, tuple[str, ...]]]
    object_count: int  # values that were JSON objects
    other_count: int  # non-empty values that were not
    keys_left_out: int  # key paths beyond MAX_CHILDREN or the file's limits

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "children": [{"name": name, "path": list(path)} for name, path in self.children],
            "object_count": self.object_count,
            "other_count": self.other_count,
            "keys_left_out": self.keys_left_out,
        }


def parse_object(value: Any) -> dict | None:
    """`value` as a JSON object: a dict as is, text that parses to an object; else None."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text.startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def leaf_text(value: Any) -> str:
    """Arrays and objects past the depth cap, as the child stores them."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def flatten(value: dict, max_depth: int = MAX_DEPTH) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(key path, leaf value) of an object, objects flattened down to `max_depth` levels;
    arrays and deeper objects as JSON text."""

    def walk(node: dict, prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        for key, item in node.items():
            path = (*prefix, str(key))
            if isinstance(item, dict) and item and len(path) < max_depth:
                yield from walk(item, path)
            elif isinstance(item, dict | list):
                yield path, leaf_text(item)
            else:
                yield path, item

    return walk(value, ())


def json_path_value(parent: Any, path: tuple[str, ...] | list[str]) -> Any:
    """The value of the child at `path` for one parent value (a dict or JSON text), as
    expansion stores it; None where the parent or the path holds nothing."""
    node: Any = parse_object(parent)
    if node is None:
        return None
    path = tuple(path)
    for depth, key in enumerate(path, start=1):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
        if depth < len(path) and not isinstance(node, dict):
            return None
    if isinstance(node, dict) and node and len(path) < MAX_DEPTH:
        return None  # an object that expansion flattened further: not a leaf
    if isinstance(node, dict | list):
        return leaf_text(node)
    return node


def _json_column_names(schema: pa.Schema) -> list[str]:
    return [field.name for field in schema if pa.types.is_string(field.type)]


def _scan(parquet_file: pq.ParquetFile, names: list[str]) -> dict[str, tuple[Counter, int, int]]:
    """Per text column: key path counts (in first-seen order), objects, other non-empty."""
    found: dict[str, tuple[Counter, int, int]] = {}
    for name in names:
        paths: Counter[tuple[str, ...]] = Counter()
        objects = others = 0
        for index in range(parquet_file.num_row_groups):
            column = parquet_file.read_row_group(index, columns=[name]).column(0)
            for value in column.to_pylist():
                if value is None or not value.strip():
                    continue
                parsed = parse_object(value)
                if parsed is None:
                    others += 1
                    if objects == 0 and others > 20:
                        break  # plainly not a JSON column: stop reading it
                    continue
                objects += 1
                paths.update(path for path, _value in flatten(parsed))
            else:
                continue
            break
        found[name] = (paths, objects, others)
    return found


def _typed(values: list[Any]) -> pa.Array:
    kinds = {type(value) for value in values} - {type(None)}
    if not kinds:
        # Null-typed: the sink widens it to whatever type the other row groups give.
        return pa.nulls(len(values))
    if kinds == {bool}:
        return pa.array(values, pa.bool_())
    if kinds == {int}:
        try:
            return pa.array(values, pa.int64())
        except (OverflowError, pa.ArrowInvalid):
            pass
    elif kinds <= {int, float}:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else _text(v) for v in values], pa.string())


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def expand_json_columns(
    path: Path,
    *,
    max_columns: int,
    max_cells: int | None = None,
    max_children: int = MAX_CHILDREN,
) -> list[JsonExpansion]:
    """Rewrite the Parquet file at `path` with the children of its JSON columns after their
    parents (see the module docstring); return the expansions, [] when none (the file is then
    left untouched). Row group by row group, replaced only once complete."""
    parquet_file = pq.ParquetFile(path)
    schema = parquet_file.schema_arrow
    rows = parquet_file.metadata.num_rows
    if not rows:
        return []
    scanned = _scan(parquet_file, _json_column_names(schema))
    plans: list[JsonExpansion] = []
    # A child of an earlier expansion is replaced, not counted against the limits.
    existing = set(schema.names)
    assigned: set[str] = set()
    budget = max_columns - len(existing)
    if max_cells is not None:
        budget = min(budget, max_cells // rows - len(existing))
    for parent, (paths, objects, others) in scanned.items():
        if not objects or objects < JSON_OBJECT_MIN_SHARE * (objects + others):
            continue
        ranked = sorted(paths.items(), key=lambda item: -item[1])  # stable: first seen first
        chosen = [key_path for key_path, _count in ranked[:max_children]]
        children = []
        for key_path in chosen:
            name = ".".join((parent, *key_path))

            if _taken(name, parent, assigned, existing):
                base, suffix = name, 2
                while _taken(name := f"{base}_{suffix}", parent, assigned, existing):
                    suffix += 1
            if name not in existing:
                if budget <= 0:
                    break
                budget -= 1
            assigned.add(name)
            children.append((name, key_path))
        left_out = len(paths) - len(children)
        plans.append(JsonExpansion(parent, children, objects, others, left_out))
    plans = [plan for plan in plans if plan.children]
    if not plans:
        return []
    _write(path, parquet_file, plans)
    logger.info("expanded JSON columns %s in %s", [plan.column for plan in plans], path)
    return plans


def _taken(name: str, parent: str, assigned: set[str], existing: set[str]) -> bool:
    """Whether `name` is another column's: a child of this expansion, or a column of the file
    other than an earlier expansion's "parent.…" child (that one is replaced)."""
    return name in assigned or (name in existing and not name.startswith(parent + "."))


def _write(path: Path, parquet_file: pq.ParquetFile, plans: list[JsonExpansion]) -> None:
    by_parent = {plan.column: plan for plan in plans}
    replaced = {name for plan in plans for name, _path in plan.children}
    with atomic_parquet_file(path) as sink:
        for index in range(parquet_file.num_row_groups):
            group = parquet_file.read_row_group(index)
            arrays: list[pa.Array] = []
            names: list[str] = []
            for name, column in zip(group.column_names, group.columns, strict=True):
                if name in replaced:
                    continue
                arrays.append(column.combine_chunks())
                names.append(name)
                plan = by_parent.get(name)
                if plan is None:
                    continue
                parsed = [parse_object(value) for value in column.to_pylist()]
                flat = [dict(flatten(value)) if value is not None else {} for value in parsed]
                for child, key_path in plan.children:
                    arrays.append(_typed([values.get(key_path) for values in flat]))
                    names.append(child)
            sink.write(pa.RecordBatch.from_arrays(arrays, names=names))
