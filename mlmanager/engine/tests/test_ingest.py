from __future__ import annotations

import datetime as dt
import io
import json
import random
import zipfile
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine import ingest
from mlmanager.engine.ingest import (
    IngestError,
    IngestReport,
    convert_to_parquet,
    detect_format,
    read_preview,
)


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    source = tmp_path / "upload" / name
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(content)
    return source


def _convert(tmp_path: Path, name: str, content: bytes, **options) -> tuple[IngestReport, pa.Table]:
    source = _write(tmp_path, name, content)
    destination = tmp_path / "out" / "data.parquet"
    report = convert_to_parquet(source, destination, original_name=name, **options)
    assert sorted(path.name for path in destination.parent.iterdir()) == ["data.parquet"]
    return report, pq.read_table(destination)


def _refused(tmp_path: Path, name: str, content: bytes, **options) -> IngestError:
    source = _write(tmp_path, name, content)
    destination = tmp_path / "out" / "data.parquet"
    with pytest.raises(IngestError) as caught:
        convert_to_parquet(source, destination, original_name=name, **options)
    # Neither the destination nor the temporary sibling it was being written to is left behind.
    assert not destination.parent.exists() or list(destination.parent.iterdir()) == []
    return caught.value


def _xlsx_bytes(rows: list[list[object]], *, extra_sheets: int = 0) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Data"
    for row in rows:
        sheet.append(row)
    for number in range(extra_sheets):
        workbook.create_sheet(f"Other {number}").append(["x"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _parquet_bytes(table: pa.Table, **options) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


# --- CSV: encodings, dialects, values ----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        ("name,city\nJosé,Zürich\nFrançois,Malmö\n".encode(), "utf-8"),
        (b"\xef\xbb\xbf" + "name,city\nJosé,Zürich\nFrançois,Malmö\n".encode(), "utf-8-sig"),
        ("name,city\nJosé,Zürich\nFrançois,Malmö\n".encode("latin-1"), "cp1252"),
        ("name,city\nJosé,Zürich\nFrançois,Malmö\n".encode("cp1252"), "cp1252"),
        ("name,city\nJosé,Zürich\nFrançois,Malmö\n".encode("utf-16"), "utf-16"),
    ],
    ids=["utf-8", "utf-8-bom", "latin-1", "cp1252", "utf-16"],
)
def test_csv_encoding_is_detected(tmp_path: Path, content: bytes, encoding: str) -> None:
    report, table = _convert(tmp_path, "people.csv", content)
    assert report.encoding == encoding
    assert table.column_names == ["name", "city"]
    assert table.to_pylist() == [
        {"name": "José", "city": "Zürich"},
        {"name": "François", "city": "Malmö"},
    ]


def test_csv_windows_1252_punctuation(tmp_path: Path) -> None:
    content = "item,note\nmug,“smart” quotes – €5\ncup,naïve café\n".encode("cp1252")
    report, table = _convert(tmp_path, "items.csv", content)
    assert report.encoding == "cp1252"
    assert table.column("note").to_pylist() == ["“smart” quotes – €5", "naïve café"]


def test_csv_cyrillic_code_page(tmp_path: Path) -> None:
    content = "имя,город\nИван,Москва\nПётр,Санкт-Петербург\nАнна,Казань\n".encode("cp1251")
    report, table = _convert(tmp_path, "people.csv", content)
    assert report.encoding == "cp1251"
    assert table.column("город").to_pylist() == ["Москва", "Санкт-Петербург", "Казань"]


@pytest.mark.parametrize(
    ("name", "delimiter"),
    [("a.csv", ","), ("a.csv", ";"), ("a.tsv", "\t"), ("a.txt", "\t"), ("a.csv", "|")],
)
def test_csv_delimiter_is_sniffed(tmp_path: Path, name: str, delimiter: str) -> None:
    lines = ["id,city,score", "1,Paris,3", "2,Rome,4", "3,Oslo,5"]
    content = "\n".join(line.replace(",", delimiter) for line in lines).encode()
    report, table = _convert(tmp_path, name, content)
    assert report.delimiter == delimiter
    assert report.source_format == "csv"
    assert table.to_pydict() == {
        "id": [1, 2, 3],
        "city": ["Paris", "Rome", "Oslo"],
        "score": [3, 4, 5],
    }


def test_csv_without_delimiter_falls_back_to_one_column(tmp_path: Path) -> None:
    report, table = _convert(tmp_path, "words.csv", b"word\nalpha\nbeta\n")
    assert report.delimiter == ","
    assert table.to_pydict() == {"word": ["alpha", "beta"]}


def test_csv_quotes_protect_delimiters_and_newlines(tmp_path: Path) -> None:
    content = b'name,comment\n"Smith, Ann","said ""hi""\nthen left"\nBob,ok\n'
    report, table = _convert(tmp_path, "q.csv", content)
    assert table.to_pydict() == {
        "name": ["Smith, Ann", "Bob"],
        "comment": ['said "hi"\nthen left', "ok"],
    }
    assert report.notes == []


def test_csv_single_quote_char(tmp_path: Path) -> None:
    content = b"name;note\n'Smith; Ann';'x'\n'Bob';'y'\n"
    report, table = _convert(tmp_path, "q.csv", content)
    assert report.delimiter == ";"
    assert table.column("name").to_pylist() == ["Smith; Ann", "Bob"]


def test_csv_decimal_comma(tmp_path: Path) -> None:
    content = b"product;price;count\napple;1,5;3\npear;2,25;4\nplum;10,0;5\n"
    report, table = _convert(tmp_path, "prices.csv", content)
    assert report.delimiter == ";"
    assert table.schema.field("price").type == pa.float64()
    assert table.column("price").to_pylist() == [1.5, 2.25, 10.0]
    assert table.column("count").to_pylist() == [3, 4, 5]
    assert report.notes == ["Read numbers with a decimal comma."]


def test_csv_types_are_inferred(tmp_path: Path) -> None:
    content = (
        b"i,f,b,d,t,s,blank\n"
        b"1,1.5,true,2020-01-02,2020-01-02 03:04:05,x,\n"
        b"2,,false,2021-02-03,2021-02-03 04:05:06,,\n"
    )
    report, table = _convert(tmp_path, "typed.csv", content)
    assert {field.name: str(field.type) for field in table.schema} == {
        "i": "int64",
        "f": "double",
        "b": "bool",
        "d": "date32[day]",
        "t": "timestamp[ms]",  # Parquet has no seconds unit
        "s": "string",
        "blank": "null",
    }
    assert table.column("s").to_pylist() == ["x", None]  # empty string means missing
    assert (report.row_count, report.column_count) == (2, 7)


def test_csv_duplicate_and_empty_headers_are_renamed(tmp_path: Path) -> None:
    report, table = _convert(tmp_path, "h.csv", b"a,a,,b,a, \n1,2,3,4,5,6\n")
    assert table.column_names == ["a", "a_2", "column_3", "b", "a_3", "column_6"]
    assert table.to_pylist() == [{"a": 1, "a_2": 2, "column_3": 3, "b": 4, "a_3": 5, "column_6": 6}]
    # One original occurring several times keeps its first new name in the mapping.
    assert report.renamed_columns == {"a": "a_2", "": "column_3", " ": "column_6"}
    assert report.notes == ["Renamed 4 duplicate or empty column names."]


def test_csv_renamed_empty_header_does_not_take_an_existing_name(tmp_path: Path) -> None:
    report, table = _convert(tmp_path, "h.csv", b",column_1\n1,2\n")
    assert table.column_names == ["column_1_2", "column_1"]
    assert report.renamed_columns == {"": "column_1_2"}
    assert report.notes == ["Renamed 1 duplicate or empty column name."]


def test_csv_nul_bytes_are_removed(tmp_path: Path) -> None:
    report, table = _convert(tmp_path, "n.csv", b"a,b\x00\n1,x\x00y\n2,z\n")
    assert table.to_pydict() == {"a": [1, 2], "b": ["xy", "z"]}
    assert report.notes == ["Removed NUL bytes."]


def test_csv_html_and_formulas_are_kept_as_data(tmp_path: Path) -> None:
    content = (
        b'<b>name</b>,formula\n"<script>alert(1)</script>",=SUM(A1:A2)\n'
        b"<img src=x onerror=alert(1)>,+1+2\nplain,@cmd\nother,-2+3\n"
    )
    report, table = _convert(tmp_path, "x.csv", content)
    assert table.column_names == ["<b>name</b>", "formula"]
    assert table.column("<b>name</b>").to_pylist() == [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "plain",
        "other",
    ]
    assert table.column("formula").to_pylist() == ["=SUM(A1:A2)", "+1+2", "@cmd", "-2+3"]
    assert report.notes == []


def test_csv_ragged_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    report, table = _convert(tmp_path, "r.csv", b"a,b\n1,2\n3\n4,5,6\n7,8\n")
    assert table.to_pydict() == {"a": [1, 7], "b": [2, 8]}
    assert report.skipped_rows == 2
    assert report.notes == ["Skipped 2 rows with the wrong number of fields."]


def test_csv_undecodable_bytes_are_replaced(tmp_path: Path) -> None:
    # UTF-8 in the sampled start, a stray Latin-1 byte beyond it.
    content = b"a,b\n" + b"1,caf\xc3\xa9\n" * 200_000 + b"2,caf\xe9\n"
    report, table = _convert(tmp_path, "late.csv", content)
    assert report.encoding == "utf-8"
    assert table.column("b").to_pylist()[-1] == "caf\ufffd"
    assert report.notes == [
        "Some characters could not be read as utf-8 and were replaced with “\ufffd”."
    ]


def test_csv_type_change_after_first_block_is_reread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "CSV_BLOCK_SIZE", 4096)
    rows = [f"{i},{i},,{i}" for i in range(2000)]
    rows += ["abc,2.5,7.5,x"]
    content = ("code,amount,late,label\n" + "\n".join(rows) + "\n").encode()
    report, table = _convert(tmp_path, "late.csv", content)
    assert {field.name: str(field.type) for field in table.schema} == {
        "code": "string",
        "amount": "double",
        "late": "double",
        "label": "string",
    }
    assert report.row_count == 2001
    assert table.column("code").to_pylist()[-2:] == ["1999", "abc"]
    assert table.column("amount").to_pylist()[-2:] == [1999.0, 2.5]
    assert table.column("late").to_pylist()[-2:] == [None, 7.5]
    assert sorted(report.notes) == [
        "Read column “amount” as decimal numbers because values further down did not match "
        "the first rows.",
        "Read column “code” as text because values further down did not match the first rows.",
        "Read column “label” as text because values further down did not match the first rows.",
        "Read column “late” as decimal numbers because values further down did not match the "
        "first rows.",
    ]


def test_csv_reads_everything_as_text_after_too_many_type_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "CSV_BLOCK_SIZE", 4096)
    monkeypatch.setattr(ingest, "CSV_MAX_TYPE_RETRIES", 1)
    rows = [f"{i},{i}" for i in range(2000)] + ["abc,def"]
    report, table = _convert(tmp_path, "late.csv", ("a,b\n" + "\n".join(rows)).encode())
    assert table.schema.types == [pa.string(), pa.string()]
    assert table.column("b").to_pylist()[-1] == "def"
    assert report.notes == [
        "Read every column as text because the kind of values changed further down the file."
    ]


def test_csv_ten_megabyte_field_loads(tmp_path: Path) -> None:
    big = "x" * (10 * 1024 * 1024)
    report, table = _convert(tmp_path, "big.csv", f'id,text\n1,"{big}"\n2,small\n'.encode())
    assert report.row_count == 2
    assert len(table.column("text")[0].as_py()) == 10 * 1024 * 1024
    assert table.column("text")[1].as_py() == "small"


def test_csv_field_larger_than_the_largest_block_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "CSV_BLOCK_SIZE", 256 * 1024)
    monkeypatch.setattr(ingest, "CSV_MAX_BLOCK_SIZE", 1024 * 1024)
    big = "x" * (2 * 1024 * 1024)
    error = _refused(tmp_path, "big.csv", f'id,text\n1,"{big}"\n2,small\n'.encode())
    assert error.code == "row_too_large"
    assert error.message.startswith("A row of the file is larger than 1 MB")


def test_csv_field_larger_than_first_block_is_retried_with_bigger_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "CSV_BLOCK_SIZE", 256 * 1024)
    big = "x" * (2 * 1024 * 1024)
    report, table = _convert(tmp_path, "big.csv", f'id,text\n1,"{big}"\n2,small\n'.encode())
    assert report.row_count == 2
    assert table.column("id").to_pylist() == [1, 2]


def test_csv_row_groups_hold_row_group_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "ROW_GROUP_ROWS", 1000)
    monkeypatch.setattr(ingest, "CSV_BLOCK_SIZE", 8192)
    content = ("n\n" + "\n".join(str(i) for i in range(4500)) + "\n").encode()
    report, _ = _convert(tmp_path, "n.csv", content)
    metadata = pq.ParquetFile(tmp_path / "out" / "data.parquet").metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [
        1000,
        1000,
        1000,
        1000,
        500,
    ]
    assert report.row_count == 4500


def test_wide_rows_close_row_groups_at_the_byte_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "ROW_GROUP_ROWS", 1000)
    monkeypatch.setattr(ingest, "ROW_GROUP_MAX_BYTES", 50_000)
    monkeypatch.setattr(ingest, "CSV_BLOCK_SIZE", 16 * 1024)
    content = ("n,text\n" + "".join(f"{i},{'x' * 100}\n" for i in range(1000))).encode()
    report, _ = _convert(tmp_path, "wide.csv", content)
    metadata = pq.ParquetFile(tmp_path / "out" / "data.parquet").metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == report.row_count == 1000
    assert len(sizes) > 1
    assert max(sizes) < 1000


def test_csv_reading_goes_on_if_the_read_ahead_throttle_stalls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ingest, "CSV_READAHEAD_BLOCKS", 0)  # allows nothing: always stalls
    monkeypatch.setattr(ingest, "CSV_THROTTLE_TIMEOUT_SECONDS", 0.05)
    _, table = _convert(tmp_path, "a.csv", b"a,b\n1,2\n3,4\n")
    assert table.to_pydict() == {"a": [1, 3], "b": [2, 4]}
    assert "reading on unthrottled" in caplog.text


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("empty.csv", b"", "empty_file"),
        ("blank.csv", b"  \n\n\t \r\n", "empty_file"),
        ("bom.csv", b"\xef\xbb\xbf\n", "empty_file"),
        ("header.csv", b"a,b,c\n", "no_rows"),
        ("header.csv", b"a,b,c", "no_rows"),
        ("ragged.csv", b"a,b,c\n1,2\n3,4,5,6\n", "no_rows"),
        ("png.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "binary_file"),
        ("elf.csv", b"\x7fELF\x02\x01\x01" + bytes(500), "binary_file"),
        ("zeros.csv", bytes(4096), "binary_file"),
        ("random.csv", random.Random(7).randbytes(8192), "binary_file"),
        ("gzip.csv", b"\x1f\x8b\x08\x00" + random.Random(3).randbytes(500), "binary_file"),
        ("letter.docx", b"a,b\n1,2\n", "unsupported_format"),
        ("data.json", b'[{"a": 1}]', "unsupported_format"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "unsupported_format"),
        ("old.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "unsupported_format"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, name: str, content: bytes, code: str) -> None:
    assert _refused(tmp_path, name, content).code == code


def test_zip_archive_renamed_csv_is_unsupported(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")
    error = _refused(tmp_path, "data.csv", buffer.getvalue())
    assert error.code == "unsupported_format"
    assert "ZIP archive" in error.message


def test_no_rows_message_mentions_skipped_rows(tmp_path: Path) -> None:
    error = _refused(tmp_path, "ragged.csv", b"a,b,c\n1,2\n3,4,5,6\n")
    assert error.message == (
        "None of the 2 data rows has the same number of fields as the header, so there is "
        "nothing to load."
    )


def test_hundred_thousand_column_header_is_refused(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(100_000))
    body = ",".join("1" for _ in range(100_000))
    error = _refused(tmp_path, "wide.csv", f"{header}\n{body}\n".encode())
    assert error.code == "too_many_columns"
    assert error.message == "The file has 100,000 columns; at most 10,000 are supported."


def test_max_columns_is_configurable(tmp_path: Path) -> None:
    assert _refused(tmp_path, "w.csv", b"a,b,c,d\n1,2,3,4\n", max_columns=3).code == (
        "too_many_columns"
    )
    report, _ = _convert(tmp_path, "w.csv", b"a,b,c\n1,2,3\n", max_columns=3)
    assert report.column_count == 3


def test_header_longer_than_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "HEADER_MAX_CHARS", 1000)
    error = _refused(tmp_path, "long.csv", b"x" * 5000 + b"\n1\n")
    assert error.code == "invalid_file"


def test_existing_destination_is_replaced_only_on_success(tmp_path: Path) -> None:
    destination = tmp_path / "out" / "data.parquet"
    destination.parent.mkdir()
    destination.write_bytes(b"old")
    source = _write(tmp_path, "bad.csv", b"a,b\n")
    with pytest.raises(IngestError):
        convert_to_parquet(source, destination, original_name="bad.csv")
    assert destination.read_bytes() == b"old"
    assert [path.name for path in destination.parent.iterdir()] == ["data.parquet"]
    good = _write(tmp_path, "good.csv", b"a\n1\n")
    convert_to_parquet(good, destination, original_name="good.csv")
    assert pq.read_table(destination).to_pydict() == {"a": [1]}


# --- progress and cancellation ---------------------------------------------------------------


def test_progress_rises_to_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "CSV_BLOCK_SIZE", 64 * 1024)
    monkeypatch.setattr(ingest, "STREAM_CHUNK_BYTES", 64 * 1024)
    content = ("n,text\n" + "".join(f"{i},row {i}\n" for i in range(200_000))).encode()
    shares: list[float] = []
    _convert(tmp_path, "p.csv", content, on_progress=shares.append)
    assert len(shares) >= 3
    assert shares == sorted(shares)
    assert 0 < shares[0] < 1
    assert shares[-1] == 1.0


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx", "parquet"])
def test_cancelling_stops_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setattr(ingest, "CSV_BLOCK_SIZE", 4096)
    monkeypatch.setattr(ingest, "BATCH_ROWS", 100)
    monkeypatch.setattr(ingest, "ROW_GROUP_ROWS", 100)
    rows = [{"n": i, "s": f"v{i}"} for i in range(1000)]
    content = {
        "csv": ("n,s\n" + "".join(f"{r['n']},{r['s']}\n" for r in rows)).encode(),
        "jsonl": "".join(json.dumps(r) + "\n" for r in rows).encode(),
        "xlsx": _xlsx_bytes([["n", "s"]] + [[r["n"], r["s"]] for r in rows]),
        "parquet": _parquet_bytes(pa.Table.from_pylist(rows), row_group_size=100),
    }[fmt]
    calls = 0

    def should_cancel() -> bool:
        nonlocal calls
        calls += 1
        return calls > 2

    error = _refused(tmp_path, f"data.{fmt}", content, should_cancel=should_cancel)
    assert error.code == "cancelled"
    assert calls == 3


# --- Parquet input ---------------------------------------------------------------------------


def test_parquet_is_copied_with_normalised_columns(tmp_path: Path) -> None:
    table = pa.Table.from_arrays(
        [
            pa.array([1, 2, 3]),
            pa.array(["x", "y", "x"]).dictionary_encode(),
            pa.array([{"k": 1, "j": "a"}, None, {"k": 2, "j": "b"}]),
            pa.array([[1, 2], [], None]),
            pa.array(["a", "b", "c"], pa.large_string()),
            pa.array([dt.datetime(2020, 1, 1), None, dt.datetime(2021, 5, 6, 7, 8, 9)]),
        ],
        names=["id", "id", "", "tags", "big", "when"],
    )
    report, result = _convert(tmp_path, "in.parquet", _parquet_bytes(table))
    assert report.source_format == "parquet"
    assert (report.encoding, report.delimiter) == (None, None)
    assert result.column_names == ["id", "id_2", "column_3", "tags", "big", "when"]
    assert {field.name: str(field.type) for field in result.schema} == {
        "id": "int64",
        "id_2": "string",
        "column_3": "string",
        "tags": "string",
        "big": "string",
        "when": "timestamp[us]",
    }
    assert result.column("column_3").to_pylist() == [
        '{"j": "a", "k": 1}',
        None,
        '{"j": "b", "k": 2}',
    ]
    assert result.column("tags").to_pylist() == ["[1, 2]", "[]", None]
    assert report.renamed_columns == {"id": "id_2", "": "column_3"}
    assert report.notes == ["Renamed 2 duplicate or empty column names."]


def test_parquet_renamed_to_csv_is_detected_by_content(tmp_path: Path) -> None:
    content = _parquet_bytes(pa.table({"a": [1, 2]}))
    report, table = _convert(tmp_path, "really-parquet.csv", content)
    assert report.source_format == "parquet"
    assert table.to_pydict() == {"a": [1, 2]}


@pytest.mark.parametrize(
    "content",
    [
        _parquet_bytes(pa.table({"a": list(range(1000))}))[:-100],  # truncated upload
        _parquet_bytes(pa.table({"a": list(range(1000))}))[:100],
        b"PAR1 this is not really parquet PAR1",
        b"a,b\n1,2\n",  # text with a .parquet name
    ],
    ids=["truncated-footer", "truncated-start", "fake-magic", "text"],
)
def test_corrupt_parquet_is_refused(tmp_path: Path, content: bytes) -> None:
    assert _refused(tmp_path, "broken.parquet", content).code == "corrupt_parquet"


def test_corrupt_parquet_pages_are_refused(tmp_path: Path) -> None:
    content = bytearray(
        _parquet_bytes(
            pa.table({"a": [f"value {i}" for i in range(5000)]}),
            compression="snappy",
            use_dictionary=False,
        )
    )
    content[200:3000] = random.Random(1).randbytes(2800)  # data pages; the footer stays intact
    assert _refused(tmp_path, "broken.parquet", bytes(content)).code == "corrupt_parquet"


def test_parquet_without_rows_is_refused(tmp_path: Path) -> None:
    content = _parquet_bytes(pa.table({"a": pa.array([], pa.int64())}))
    assert _refused(tmp_path, "none.parquet", content).code == "no_rows"


def test_parquet_with_too_many_columns_is_refused(tmp_path: Path) -> None:
    content = _parquet_bytes(pa.table({f"c{i}": [i] for i in range(5)}))
    assert _refused(tmp_path, "w.parquet", content, max_columns=4).code == "too_many_columns"


# --- Excel -----------------------------------------------------------------------------------


def test_xlsx_first_sheet_is_read_with_types(tmp_path: Path) -> None:
    rows = [
        ["id", "name", "price", "when", "ok", "mixed", None, "id"],
        [1, "apple", 1.5, dt.datetime(2020, 1, 2, 3, 4, 5), True, 1, None, 10],
        [None, None, None, None, None, None, None, None],  # blank rows are skipped
        [2, "<b>pear</b>", 2, dt.datetime(2021, 2, 3), False, "n/a", None, 20],
        [3, "@SUM(A1:A2)", "#DIV/0!", None, None, 2.5, None, 30],
    ]
    report, table = _convert(tmp_path, "book.xlsx", _xlsx_bytes(rows, extra_sheets=2))
    assert report.source_format == "excel"
    assert table.column_names == ["id", "name", "price", "when", "ok", "mixed", "column_7", "id_2"]
    assert {field.name: str(field.type) for field in table.schema} == {
        "id": "int64",
        "name": "string",
        "price": "double",
        "when": "timestamp[us]",
        "ok": "bool",
        "mixed": "string",
        "column_7": "null",
        "id_2": "int64",
    }
    assert table.column("name").to_pylist() == ["apple", "<b>pear</b>", "@SUM(A1:A2)"]
    assert table.column("price").to_pylist() == [1.5, 2.0, None]
    assert table.column("when").to_pylist() == [
        dt.datetime(2020, 1, 2, 3, 4, 5),
        dt.datetime(2021, 2, 3),
        None,
    ]
    assert table.column("mixed").to_pylist() == ["1", "n/a", "2.5"]
    assert report.row_count == 3
    assert report.renamed_columns == {"": "column_7", "id": "id_2"}
    assert report.notes == [
        "Renamed 2 duplicate or empty column names.",
        "Read the first sheet, “Data”; the workbook has 3 sheets.",
        "Treated 1 Excel error cell (such as #DIV/0!) as missing.",
    ]


def test_xlsx_types_widen_across_written_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "BATCH_ROWS", 10)
    monkeypatch.setattr(ingest, "ROW_GROUP_ROWS", 10)
    rows = [["n", "code"]] + [[i, i] for i in range(25)] + [[2.5, "X1"], [None, None, "extra"]]
    report, table = _convert(tmp_path, "book.xlsx", _xlsx_bytes(rows))
    assert table.column_names == ["n", "code", "column_3"]
    assert [str(t) for t in table.schema.types] == ["double", "string", "string"]
    assert table.column("n").to_pylist()[:3] == [0.0, 1.0, 2.0]
    assert table.column("n").to_pylist()[-2:] == [2.5, None]
    assert table.column("code").to_pylist()[-3:] == ["24", "X1", None]
    assert table.column("column_3").to_pylist() == [None] * 26 + ["extra"]
    assert report.row_count == 27


def test_xlsx_header_only_and_empty_sheet_are_refused(tmp_path: Path) -> None:
    assert _refused(tmp_path, "h.xlsx", _xlsx_bytes([["a", "b"]])).code == "no_rows"
    assert _refused(tmp_path, "e.xlsx", _xlsx_bytes([])).code == "empty_file"


def test_xlsx_with_too_many_columns_is_refused(tmp_path: Path) -> None:
    content = _xlsx_bytes([[f"c{i}" for i in range(6)], list(range(6))])
    assert _refused(tmp_path, "w.xlsx", content, max_columns=5).code == "too_many_columns"


def test_xlsx_zip_bomb_is_refused_by_compression_ratio(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (11 * 1024 * 1024))
    content = buffer.getvalue()
    assert len(content) < 100_000
    error = _refused(tmp_path, "bomb.xlsx", content)
    assert error.code == "zip_bomb"


def test_xlsx_zip_bomb_is_refused_by_total_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "ZIP_MAX_TOTAL_UNCOMPRESSED", 1000)
    content = _xlsx_bytes([["a"], [1]])
    assert _refused(tmp_path, "big.xlsx", content).code == "zip_bomb"


def _zip_with_xl_garbage() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<not-a-workbook")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        random.Random(5).randbytes(2000),
        _xlsx_bytes([["a"], [1]])[:-200],
        _zip_with_xl_garbage(),
        b"a,b\n1,2\n",
    ],
    ids=["random-bytes", "truncated", "garbage-entries", "text"],
)
def test_corrupt_xlsx_is_refused(tmp_path: Path, content: bytes) -> None:
    assert _refused(tmp_path, "broken.xlsx", content).code == "corrupt_excel"


def test_xlsx_named_csv_is_detected_by_content(tmp_path: Path) -> None:
    report, table = _convert(tmp_path, "export.csv", _xlsx_bytes([["a"], [1], [2]]))
    assert report.source_format == "excel"
    assert table.to_pydict() == {"a": [1, 2]}


# --- JSON Lines ------------------------------------------------------------------------------


def test_jsonl_rows_with_nested_values(tmp_path: Path) -> None:
    lines = [
        {"id": 1, "meta": {"b": 2, "a": [1, 2]}, "tags": ["x"], "ok": True, "score": 1},
        {"id": 2, "meta": {"a": None}, "tags": [], "ok": False, "score": 2.5, "new": "late"},
        {"id": 3, "meta": None, "ok": None, "score": None},
    ]
    content = ("\n".join(json.dumps(line) for line in lines) + "\n\n").encode()
    report, table = _convert(tmp_path, "rows.jsonl", content)
    assert report.source_format == "jsonl"
    assert (report.encoding, report.delimiter, report.row_count) == ("utf-8", None, 3)
    assert {field.name: str(field.type) for field in table.schema} == {
        "id": "int64",
        "meta": "string",
        "tags": "string",
        "ok": "bool",
        "score": "double",
        "new": "string",
    }
    assert table.column("meta").to_pylist() == ['{"a": [1, 2], "b": 2}', '{"a": null}', None]
    assert table.column("tags").to_pylist() == ['["x"]', "[]", None]
    assert table.column("new").to_pylist() == [None, "late", None]


def test_jsonl_keys_and_types_change_across_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "BATCH_ROWS", 5)
    monkeypatch.setattr(ingest, "ROW_GROUP_ROWS", 5)
    lines = [{"n": i} for i in range(12)] + [{"n": "twelve", "": 1, "x": {"k": 1}}]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    report, table = _convert(tmp_path, "rows.ndjson", content)
    assert table.column_names == ["n", "column_2", "x"]
    assert table.column("n").to_pylist() == [str(i) for i in range(12)] + ["twelve"]
    assert table.column("x").to_pylist() == [None] * 12 + ['{"k": 1}']
    assert report.renamed_columns == {"": "column_2"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": 1}\n{"a": 2}\n{"a": 3,\n', "Line 3 is not valid JSON"),
        (b'{"a": 1}\n\n[1, 2]\n', "Line 3 is not a JSON object"),
        (b'{"a": 1}\n' + b"[" * 100_000 + b"\n", "Line 2 is nested too deeply"),
    ],
)
def test_bad_jsonl_line_is_refused_with_its_number(
    tmp_path: Path, content: bytes, message: str
) -> None:
    error = _refused(tmp_path, "rows.jsonl", content)
    assert error.code == "invalid_json"
    assert error.message.startswith(message)


def test_jsonl_integers_beyond_int64_keep_their_digits(tmp_path: Path) -> None:
    content = b'{"n": 1}\n{"n": 123456789012345678901234567890}\n'
    _, table = _convert(tmp_path, "big.jsonl", content)
    assert table.column("n").to_pylist() == ["1", "123456789012345678901234567890"]


def test_jsonl_with_too_many_keys_is_refused(tmp_path: Path) -> None:
    content = b'{"a": 1}\n{"b": 1, "c": 2}\n'
    assert _refused(tmp_path, "rows.jsonl", content, max_columns=2).code == "too_many_columns"


# --- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.csv", b"a,b\n1,2\n", "csv"),
        ("a.txt", b"a\tb\n1\t2\n", "csv"),
        ("a.txt", b'{"a": 1}\n{"a": 2}\n', "jsonl"),
        ("a.csv", b'  {"a": 1}\n', "jsonl"),
        ("a.jsonl", b"not json\n", "jsonl"),
        ("a.bin.CSV", b"a\n1\n", "csv"),
        ("a.dat", _parquet_bytes(pa.table({"a": [1]})), "parquet"),
        ("a.parquet", b"PAR1truncated", "parquet"),
        ("a.zip", _xlsx_bytes([["a"], [1]]), "excel"),
        ("a.xlsx", b"garbage", "excel"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    assert detect_format(_write(tmp_path, "file", content), name) == expected


# --- preview ---------------------------------------------------------------------------------


def test_read_preview_reads_the_requested_rows_as_json_safe_values(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    count = 35
    table = pa.table(
        {
            "n": list(range(count)),
            "f": [float("nan") if i == 9 else i / 2 for i in range(count)],
            "s": [None if i == 10 else f"s{i}" for i in range(count)],
            "when": [dt.datetime(2020, 1, 1) + dt.timedelta(days=i) for i in range(count)],
            "day": [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(count)],
        }
    )
    pq.write_table(table, path, row_group_size=10)
    names, rows = read_preview(path, offset=8, limit=15)
    assert names == ["n", "f", "s", "when", "day"]
    assert [row[0] for row in rows] == list(range(8, 23))
    assert rows[1] == [9, None, "s9", "2020-01-10T00:00:00", "2020-01-10"]
    assert rows[2] == [10, 5.0, None, "2020-01-11T00:00:00", "2020-01-11"]
    json.dumps(rows, allow_nan=False)
    assert read_preview(path, offset=30, limit=100)[1][-1][0] == 34
    assert read_preview(path, offset=35, limit=10) == (names, [])
    assert read_preview(path, offset=0, limit=0) == (names, [])
    with pytest.raises(ValueError):
        read_preview(path, offset=-1, limit=5)


def test_read_preview_converts_unusual_types(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    table = pa.table(
        {
            "span": pa.array([dt.timedelta(seconds=90)]),
            "raw": pa.array([b"\xffab"]),
            "money": pa.array(["1.25"]).cast(pa.decimal128(5, 2)),
            "nested": pa.array([{"a": [1.5, float("inf")], "t": dt.date(2020, 1, 2)}]),
            "nanos": pa.array([1_500], pa.timestamp("ns")),
            "clock": pa.array([dt.time(10, 30)]),
        }
    )
    pq.write_table(table, path)
    _, rows = read_preview(path, offset=0, limit=1)
    assert rows == [
        [
            90.0,
            "\ufffdab",
            1.25,
            {"a": [1.5, None], "t": "2020-01-02"},
            "1970-01-01T00:00:00.000001500",
            "10:30:00",
        ]
    ]
    json.dumps(rows, allow_nan=False)


def test_report_to_dict(tmp_path: Path) -> None:
    report, _ = _convert(tmp_path, "a.csv", b"a,a\n1,2\n")
    assert report.to_dict() == {
        "source_format": "csv",
        "row_count": 1,
        "column_count": 2,
        "encoding": "utf-8",
        "delimiter": ",",
        "skipped_rows": 0,
        "renamed_columns": {"a": "a_2"},
        "notes": ["Renamed 1 duplicate or empty column name."],
    }
