"""CSV and other delimited text, end to end through convert_to_parquet."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine.ingest import csv as ingest_csv
from mlmanager.engine.ingest import csv_dialect, csv_stream, writer
from mlmanager.engine.tests.ingest.uploads import convert_upload, refused_upload


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
    report, table = convert_upload(tmp_path, "people.csv", content)
    assert report.encoding == encoding
    assert table.column_names == ["name", "city"]
    assert table.to_pylist() == [
        {"name": "José", "city": "Zürich"},
        {"name": "François", "city": "Malmö"},
    ]


def test_csv_windows_1252_punctuation(tmp_path: Path) -> None:
    content = "item,note\nmug,“smart” quotes – €5\ncup,naïve café\n".encode("cp1252")
    report, table = convert_upload(tmp_path, "items.csv", content)
    assert report.encoding == "cp1252"
    assert table.column("note").to_pylist() == ["“smart” quotes – €5", "naïve café"]


def test_csv_cyrillic_code_page(tmp_path: Path) -> None:
    content = "имя,город\nИван,Москва\nПётр,Санкт-Петербург\nАнна,Казань\n".encode("cp1251")
    report, table = convert_upload(tmp_path, "people.csv", content)
    assert report.encoding == "cp1251"
    assert table.column("город").to_pylist() == ["Москва", "Санкт-Петербург", "Казань"]


@pytest.mark.parametrize(
    ("name", "delimiter"),
    [("a.csv", ","), ("a.csv", ";"), ("a.tsv", "\t"), ("a.txt", "\t"), ("a.csv", "|")],
)
def test_csv_delimiter_is_sniffed(tmp_path: Path, name: str, delimiter: str) -> None:
    lines = ["id,city,score", "1,Paris,3", "2,Rome,4", "3,Oslo,5"]
    content = "\n".join(line.replace(",", delimiter) for line in lines).encode()
    report, table = convert_upload(tmp_path, name, content)
    assert report.delimiter == delimiter
    assert report.source_format == "csv"
    assert table.to_pydict() == {
        "id": [1, 2, 3],
        "city": ["Paris", "Rome", "Oslo"],
        "score": [3, 4, 5],
    }


def test_csv_without_delimiter_falls_back_to_one_column(tmp_path: Path) -> None:
    report, table = convert_upload(tmp_path, "words.csv", b"word\nalpha\nbeta\n")
    assert report.delimiter == ","
    assert table.to_pydict() == {"word": ["alpha", "beta"]}


def test_csv_quotes_protect_delimiters_and_newlines(tmp_path: Path) -> None:
    content = b'name,comment\n"Smith, Ann","said ""hi""\nthen left"\nBob,ok\n'
    report, table = convert_upload(tmp_path, "q.csv", content)
    assert table.to_pydict() == {
        "name": ["Smith, Ann", "Bob"],
        "comment": ['said "hi"\nthen left', "ok"],
    }
    assert report.notes == []


def test_csv_single_quote_char(tmp_path: Path) -> None:
    content = b"name;note\n'Smith; Ann';'x'\n'Bob';'y'\n"
    report, table = convert_upload(tmp_path, "q.csv", content)
    assert report.delimiter == ";"
    assert table.column("name").to_pylist() == ["Smith; Ann", "Bob"]


def test_csv_decimal_comma(tmp_path: Path) -> None:
    content = b"product;price;count\napple;1,5;3\npear;2,25;4\nplum;10,0;5\n"
    report, table = convert_upload(tmp_path, "prices.csv", content)
    assert report.delimiter == ";"
    assert table.schema.field("price").type == pa.float64()
    assert table.column("price").to_pylist() == [1.5, 2.25, 10.0]
    assert table.column("count").to_pylist() == [3, 4, 5]
    # The page lists the decimal separator from the report, so no note repeats it.
    assert (report.decimal_separator, report.notes) == (",", [])


def test_csv_types_are_inferred(tmp_path: Path) -> None:
    content = (
        b"i,f,b,d,t,s,blank\n"
        b"1,1.5,true,2020-01-02,2020-01-02 03:04:05,x,\n"
        b"2,,false,2021-02-03,2021-02-03 04:05:06,,\n"
    )
    report, table = convert_upload(tmp_path, "typed.csv", content)
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
    report, table = convert_upload(tmp_path, "h.csv", b"a,a,,b,a, \n1,2,3,4,5,6\n")
    assert table.column_names == ["a", "a_2", "column_3", "b", "a_3", "column_6"]
    assert table.to_pylist() == [{"a": 1, "a_2": 2, "column_3": 3, "b": 4, "a_3": 5, "column_6": 6}]
    # One original occurring several times keeps its first new name in the mapping.
    assert report.renamed_columns == {"a": "a_2", "": "column_3", " ": "column_6"}
    assert report.notes == ["Renamed 4 duplicate or empty column names."]


def test_csv_renamed_empty_header_does_not_take_an_existing_name(tmp_path: Path) -> None:
    report, table = convert_upload(tmp_path, "h.csv", b",column_1\n1,2\n")
    assert table.column_names == ["column_1_2", "column_1"]
    assert report.renamed_columns == {"": "column_1_2"}
    assert report.notes == ["Renamed 1 duplicate or empty column name."]


def test_csv_nul_bytes_are_removed(tmp_path: Path) -> None:
    report, table = convert_upload(tmp_path, "n.csv", b"a,b\x00\n1,x\x00y\n2,z\n")
    assert table.to_pydict() == {"a": [1, 2], "b": ["xy", "z"]}
    assert report.notes == ["Removed NUL bytes."]


def test_csv_html_and_formulas_are_kept_as_data(tmp_path: Path) -> None:
    content = (
        b'<b>name</b>,formula\n"<script>alert(1)</script>",=SUM(A1:A2)\n'
        b"<img src=x onerror=alert(1)>,+1+2\nplain,@cmd\nother,-2+3\n"
    )
    report, table = convert_upload(tmp_path, "x.csv", content)
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
    report, table = convert_upload(tmp_path, "r.csv", b"a,b\n1,2\n3\n4,5,6\n7,8\n")
    assert table.to_pydict() == {"a": [1, 7], "b": [2, 8]}
    assert report.skipped_rows == 2
    assert report.notes == ["Skipped 2 rows with the wrong number of fields."]


@pytest.mark.parametrize(
    "content",
    [
        b"a,b\n1,2,\n3,4,\n",
        b"a,b,\n1,2,\n3,4,\n",
        b"a,b\r\n1,2,\r\n3,4,\r\n",
        b"a,b,\r\n1,2,\r\n3,4,",
        b'"a","b",\n"1","2",""\n\n3,4,\n',
        b"a;b;\n1;2;\n3;4;\n",
        b"a,b,\n1,2\n3,4\n",
        b"a,b,\r\n1,2\r\n3,4",
    ],
    ids=[
        "rows",
        "header-and-rows",
        "crlf",
        "crlf-no-final-newline",
        "quoted",
        "semicolon",
        "header-only",
        "header-only-crlf",
    ],
)
def test_csv_trailing_delimiter_is_not_a_column(tmp_path: Path, content: bytes) -> None:
    report, table = convert_upload(tmp_path, "t.csv", content)
    assert table.to_pydict() == {"a": [1, 3], "b": [2, 4]}
    assert (report.row_count, report.column_count, report.skipped_rows) == (2, 2, 0)
    assert report.renamed_columns == {}
    assert report.notes == []


@pytest.mark.parametrize(
    ("content", "expected", "skipped_rows"),
    [
        (b"a,b\n1,2,\n3,4\n5,6,\n", {"a": [3], "b": [4]}, 2),
        (b"a,b,\n1,2\n3,4,\n", {"a": [3], "b": [4], "column_3": [None]}, 1),
        (b"a,b\n1,2,x\n3,4,\n5,6\n", {"a": [5], "b": [6]}, 2),
    ],
    ids=["some-rows-without", "header-only-some-rows", "extra-field-with-data"],
)
def test_csv_rows_not_all_ending_with_an_empty_field_are_ragged(
    tmp_path: Path, content: bytes, expected: dict[str, list[object]], skipped_rows: int
) -> None:
    report, table = convert_upload(tmp_path, "r.csv", content)
    assert table.to_pydict() == expected
    assert report.skipped_rows == skipped_rows


def test_csv_trailing_field_with_data_past_the_sample_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_dialect, "SNIFF_MAX_LINES", 3)
    report, table = convert_upload(tmp_path, "t.csv", b"a,b,\n1,2,\n3,4,\n5,6,x\n")
    # Read again as the file stands: the header's empty last name is a column, as it always was.
    assert table.to_pydict() == {"a": [1, 3, 5], "b": [2, 4, 6], "column_3": [None, None, "x"]}
    assert report.renamed_columns == {"": "column_3"}


def test_csv_trailing_field_with_data_past_the_sample_makes_every_row_ragged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_dialect, "SNIFF_MAX_LINES", 3)
    error = refused_upload(tmp_path, "t.csv", b"a,b\n1,2,\n3,4,\n5,6,x\n")
    assert error.code == "no_rows"
    assert error.message.startswith("None of the 3 data rows")


def test_csv_trailing_delimiter_is_not_counted_against_max_columns(tmp_path: Path) -> None:
    report, table = convert_upload(tmp_path, "w.csv", b"a,b,c,\n1,2,3,\n", max_columns=3)
    assert table.column_names == ["a", "b", "c"]
    assert report.column_count == 3


def test_csv_trailing_delimiter_survives_a_type_change_after_the_first_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_csv, "CSV_BLOCK_SIZE", 4096)
    rows = "".join(f"{i},{i},\n" for i in range(2000)) + "abc,2.5,\n"
    report, table = convert_upload(tmp_path, "late.csv", f"code,amount\n{rows}".encode())
    assert [str(arrow_type) for arrow_type in table.schema.types] == ["string", "double"]
    assert table.column("code").to_pylist()[-1] == "abc"
    assert (report.row_count, report.column_count) == (2001, 2)
    assert sorted(report.notes) == [
        "Read column “amount” as decimal numbers because values further down did not match "
        "the first rows.",
        "Read column “code” as text because values further down did not match the first rows.",
    ]


def test_csv_undecodable_bytes_are_replaced(tmp_path: Path) -> None:
    # UTF-8 in the sampled start, a stray Latin-1 byte beyond it.
    content = b"a,b\n" + b"1,caf\xc3\xa9\n" * 200_000 + b"2,caf\xe9\n"
    report, table = convert_upload(tmp_path, "late.csv", content)
    assert report.encoding == "utf-8"
    assert table.column("b").to_pylist()[-1] == "caf\ufffd"
    assert report.notes == [
        "Some characters could not be read as utf-8 and were replaced with “\ufffd”."
    ]


def test_csv_type_change_after_first_block_is_reread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_csv, "CSV_BLOCK_SIZE", 4096)
    rows = [f"{i},{i},,{i}" for i in range(2000)]
    rows += ["abc,2.5,7.5,x"]
    content = ("code,amount,late,label\n" + "\n".join(rows) + "\n").encode()
    report, table = convert_upload(tmp_path, "late.csv", content)
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
    monkeypatch.setattr(ingest_csv, "CSV_BLOCK_SIZE", 4096)
    monkeypatch.setattr(ingest_csv, "CSV_MAX_TYPE_RETRIES", 1)
    rows = [f"{i},{i}" for i in range(2000)] + ["abc,def"]
    report, table = convert_upload(tmp_path, "late.csv", ("a,b\n" + "\n".join(rows)).encode())
    assert table.schema.types == [pa.string(), pa.string()]
    assert table.column("b").to_pylist()[-1] == "def"
    assert report.notes == [
        "Read every column as text because the kind of values changed further down the file."
    ]


def test_csv_ten_megabyte_field_loads(tmp_path: Path) -> None:
    big = "x" * (10 * 1024 * 1024)
    report, table = convert_upload(tmp_path, "big.csv", f'id,text\n1,"{big}"\n2,small\n'.encode())
    assert report.row_count == 2
    assert len(table.column("text")[0].as_py()) == 10 * 1024 * 1024
    assert table.column("text")[1].as_py() == "small"


def test_csv_field_larger_than_the_largest_block_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_csv, "CSV_BLOCK_SIZE", 256 * 1024)
    monkeypatch.setattr(ingest_csv, "CSV_MAX_BLOCK_SIZE", 1024 * 1024)
    big = "x" * (2 * 1024 * 1024)
    error = refused_upload(tmp_path, "big.csv", f'id,text\n1,"{big}"\n2,small\n'.encode())
    assert error.code == "row_too_large"
    assert error.message.startswith("A row of the file is larger than 1 MB")


def test_csv_field_larger_than_first_block_is_retried_with_bigger_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_csv, "CSV_BLOCK_SIZE", 256 * 1024)
    big = "x" * (2 * 1024 * 1024)
    report, table = convert_upload(tmp_path, "big.csv", f'id,text\n1,"{big}"\n2,small\n'.encode())
    assert report.row_count == 2
    assert table.column("id").to_pylist() == [1, 2]


def test_csv_row_groups_hold_row_group_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 1000)
    monkeypatch.setattr(ingest_csv, "CSV_BLOCK_SIZE", 8192)
    content = ("n\n" + "\n".join(str(i) for i in range(4500)) + "\n").encode()
    report, _ = convert_upload(tmp_path, "n.csv", content)
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
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 1000)
    monkeypatch.setattr(writer, "ROW_GROUP_MAX_BYTES", 50_000)
    monkeypatch.setattr(ingest_csv, "CSV_BLOCK_SIZE", 16 * 1024)
    content = ("n,text\n" + "".join(f"{i},{'x' * 100}\n" for i in range(1000))).encode()
    report, _ = convert_upload(tmp_path, "wide.csv", content)
    metadata = pq.ParquetFile(tmp_path / "out" / "data.parquet").metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == report.row_count == 1000
    assert len(sizes) > 1
    assert max(sizes) < 1000


def test_csv_reading_goes_on_if_the_read_ahead_throttle_stalls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ingest_csv, "CSV_READAHEAD_BLOCKS", 0)  # allows nothing: always stalls
    monkeypatch.setattr(csv_stream, "CSV_THROTTLE_TIMEOUT_SECONDS", 0.05)
    _, table = convert_upload(tmp_path, "a.csv", b"a,b\n1,2\n3,4\n")
    assert table.to_pydict() == {"a": [1, 3], "b": [2, 4]}
    assert "reading on unthrottled" in caplog.text
