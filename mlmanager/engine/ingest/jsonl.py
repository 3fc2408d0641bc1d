"""JSON Lines input: one JSON object per line, streamed; each new key becomes a column."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

from mlmanager.engine.ingest.context import ReadContext
from mlmanager.engine.ingest.errors import IngestError, IngestReport, too_many_columns_error
from mlmanager.engine.ingest.naming import ColumnNamer
from mlmanager.engine.ingest.python_values import RowBuffer


def convert_jsonl(source: Path, context: ReadContext) -> IngestReport:
    size = max(source.stat().st_size, 1)
    namer = ColumnNamer()
    column_of_key: dict[str, str] = {}
    buffer = RowBuffer(context, namer)
    removed_nul = False
    encoding = "utf-8"
    bytes_read = 0
    with source.open("rb") as file:
        for line_number, raw_line in enumerate(file, start=1):
            bytes_read += len(raw_line)
            if line_number == 1 and raw_line.startswith(codecs.BOM_UTF8):
                raw_line = raw_line[len(codecs.BOM_UTF8) :]
                encoding = "utf-8-sig"
            if b"\x00" in raw_line:
                raw_line = raw_line.replace(b"\x00", b"")
                removed_nul = True
            line = raw_line.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            row = _parse_json_object(line, line_number)
            new_keys = [key for key in row if key not in column_of_key]
            if new_keys:
                if len(column_of_key) + len(new_keys) > context.max_columns:
                    raise too_many_columns_error(
                        len(column_of_key) + len(new_keys), context.max_columns
                    )
                column_of_key.update(zip(new_keys, namer.add(new_keys), strict=True))
                buffer.add_columns(len(new_keys))
            buffer.append([row.get(key) for key in column_of_key], share_read=bytes_read / size)
    buffer.finish()
    if context.sink.rows == 0:
        raise IngestError("The file has no JSON objects.", code="no_rows")
    notes = namer.notes()
    if removed_nul:
        notes.append("Removed NUL bytes.")
    return context.report("jsonl", namer, notes=notes, encoding=encoding)


def _parse_json_object(line: str, line_number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"Line {line_number:,} is not valid JSON ({exc.msg}, at character {exc.colno}).",
            code="invalid_json",
        ) from exc
    except RecursionError as exc:
        raise IngestError(
            f"Line {line_number:,} is nested too deeply to be read.", code="invalid_json"
        ) from exc
    if not isinstance(value, dict):
        raise IngestError(
            f"Line {line_number:,} is not a JSON object; each line must be one object "
            'like {"name": "value"}.',
            code="invalid_json",
        )
    return value
