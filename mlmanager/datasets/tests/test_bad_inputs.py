"""The issue's bad-input list, end to end: upload through the API, run the real worker, look.

Each file is either refused (a 4xx at once, or the dataset ends `failed` with a message, no files
left, and it can be deleted) or loaded safely (`ready`, right shape). Never a 5xx or a hang.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.conf import settings
from openpyxl import Workbook

from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset


@dataclass
class Case:
    filename: str
    build: Callable[[Path], None]
    # expected outcome: "ready", "failed", or an HTTP status for a refusal at once
    outcome: str | int
    rows: int | None = None
    columns: list[str] | None = None
    error_contains: str = ""
    notes_contain: list[str] = field(default_factory=list)
    cell_checks: dict[str, object] = field(default_factory=dict)


def _text(content: str, encoding: str = "utf-8") -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content.encode(encoding))


def _raw(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def _xlsx_bomb(path: Path) -> None:
    # 60 MB of one repeated byte deflates to ~60 KB: a ratio near 1000. It must be refused from
    # the zip directory alone, without inflating it.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as entry:
            block = b"0" * (1 << 20)
            for _ in range(60):
                entry.write(block)


def _xlsx(path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["city", "temperature", "=SUM(A1)"])
    sheet.append(["Zürich", 21.5, "x"])
    sheet.append(["Oslo", -3.0, "y"])
    workbook.save(path)


def _parquet(path: Path) -> None:
    pq.write_table(pa.table({"a": list(range(100)), "b": [str(i) for i in range(100)]}), path)


def _truncated_parquet(path: Path) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": list(range(1000))}), buffer)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def _corrupt_parquet(path: Path) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": list(range(1000))}), buffer)
    data = bytearray(buffer.getvalue())
    data[8:200] = b"\xff" * 192  # scramble the column chunk, keep both magic markers
    path.write_bytes(bytes(data))


def _many_columns(path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(100_000))
    path.write_text(header + "\n" + ",".join("1" for _ in range(100_000)) + "\n")


def _huge_field(path: Path) -> None:
    path.write_text("id,blob\n1," + "x" * (10 * 1024 * 1024) + "\n2,short\n")


def _jsonl(path: Path) -> None:
    rows = [
        {"id": 1, "user": {"name": "a", "tags": ["x"]}, "score": 0.5},
        {"id": 2, "user": {"name": "b", "tags": []}, "score": 1.5},
        {"id": 3, "user": {"name": "c"}, "score": None},
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")


CASES = {
    # refused
    "empty file": Case("empty.csv", _raw(b""), 400),
    "header only": Case("header.csv", _text("a,b,c\n"), "failed", error_contains="no data rows"),
    "binary renamed .csv": Case("photo.csv", _raw(b"\x7fELF\x02\x01\x01" + bytes(4000)), 400),
    "xlsx zip bomb": Case("bomb.xlsx", _xlsx_bomb, "failed", error_contains="unreasonable size"),
    "100 000 columns": Case("wide.csv", _many_columns, "failed", error_contains="100,000"),
    "truncated parquet": Case(
        "cut.parquet", _truncated_parquet, "failed", error_contains="Parquet"
    ),
    "corrupt parquet": Case("bad.parquet", _corrupt_parquet, "failed", error_contains="Parquet"),
    # loaded safely
    "latin-1 text": Case(
        "latin1.csv",
        _text("ville,prix\nMontréal,1.5\nQuébec,2.5\nGenève,3\n", "latin-1"),
        "ready",
        rows=3,
        columns=["ville", "prix"],
        cell_checks={"ville": "Montréal"},
    ),
    "utf-8 bom, semicolons, decimal commas": Case(
        "bom.csv",
        _text("\ufeffname;price;qty\nä;1,5;3\nö;2,25;4\nü;10,0;5\n"),
        "ready",
        rows=3,
        columns=["name", "price", "qty"],
        cell_checks={"price": 1.5},
    ),
    "html and js in names and cells": Case(
        "xss.csv",
        _text('"<script>alert(1)</script>",b\n"<img src=x onerror=alert(1)>",1\n'),
        "ready",
        rows=1,
        columns=["<script>alert(1)</script>", "b"],
    ),
    "formula-looking cells kept as data": Case(
        "formulas.csv",
        _text('a,b\n"=1+2",x\n"+cmd|calc",y\n"-2+3",z\n"@SUM(A1)",w\n'),
        "ready",
        rows=4,
        cell_checks={"a": "=1+2"},
    ),
    "filename with ../ and odd unicode": Case(
        "../../etc/pa\u202essw\u0000d\u200b.csv", _text("a,b\n1,2\n"), "ready", rows=1
    ),
    # The nested object is kept and expanded into dotted child columns (json_columns).
    "json lines with nested objects": Case(
        "events.jsonl",
        _jsonl,
        "ready",
        rows=3,
        columns=["id", "user", "user.name", "user.tags", "score"],
    ),
    "excel workbook": Case("sheet.xlsx", _xlsx, "ready", rows=2, cell_checks={"city": "Zürich"}),
    "parquet": Case("table.parquet", _parquet, "ready", rows=100, columns=["a", "b"]),
    # either, but never a 5xx or a hang
    "ragged rows": Case(
        "ragged.csv",
        _text("a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n"),
        "ready",
        rows=2,
        notes_contain=["Skipped 2 rows"],
    ),
    "duplicate and empty column names": Case(
        "dupes.csv",
        _text("a,a,,b\n1,2,3,4\n5,6,7,8\n"),
        "ready",
        columns=["a", "a_2", "column_3", "b"],
        notes_contain=["Renamed"],
    ),
    "NUL bytes": Case(
        "nul.csv",
        _raw(b"a,b\n1,x\x00y\n2,z\n"),
        "ready",
        rows=2,
        notes_contain=["Removed NUL bytes."],
        cell_checks={"b": "xy"},
    ),
    "10 MB single field": Case("huge.csv", _huge_field, "ready", rows=2),
}


def _dataset_files(dataset: Dataset) -> list[Path]:
    folder = local_path(dataset.storage_dir)
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input(case: Case, api, tmp_path: Path, run_jobs) -> None:
    path = tmp_path / "upload.bin"
    case.build(path)
    with path.open("rb") as handle:
        upload = io.BytesIO(handle.read())
    upload.name = case.filename
    response = api.post("/api/v1/datasets/", {"file": upload}, format="multipart")

    if isinstance(case.outcome, int):
        assert response.status_code == case.outcome, response.content
        assert response.json()["error"]["message"]
        assert not Dataset.objects.exists()
        media = Path(settings.MEDIA_ROOT)
        assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))
        return

    assert response.status_code == 202, response.content
    run_jobs()
    dataset = Dataset.objects.get()
    # the client's name is shown, never used as a path
    assert dataset.storage_dir.startswith(f"datasets/team-{dataset.team_id}/")
    assert ".." not in dataset.source_path

    if case.outcome == "failed":
        assert dataset.status == "failed"
        assert case.error_contains in dataset.error
        assert _dataset_files(dataset) == []  # nothing half-written is kept
        assert api.delete(f"/api/v1/datasets/{dataset.pk}/").status_code == 204
        return

    assert dataset.status == "ready", dataset.error
    detail = api.get(f"/api/v1/datasets/{dataset.pk}/").json()
    if case.rows is not None:
        assert detail["row_count"] == case.rows
    if case.columns is not None:
        assert [c["name"] for c in detail["columns"]] == case.columns
    for expected in case.notes_contain:
        assert any(expected in note for note in detail["notes"]), detail["notes"]
    if case.cell_checks:
        preview = api.get(f"/api/v1/datasets/{dataset.pk}/preview/?limit=1").json()
        first_row = dict(zip(preview["columns"], preview["rows"][0], strict=True))
        for column, value in case.cell_checks.items():
            assert first_row[column] == value
