"""Missing-value tokens and number formats while reading (issue 12, item 3): tokens become
missing and are counted, a column of numbers with tokens is stored as numbers in the file's
own format, and a real category "None" among words stays a value."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlmanager.engine.ingest import NumberFormat, convert_columns_to_numbers, parse_numbers
from mlmanager.engine.tests.ingest.uploads import convert_upload

HEATING = ["Gas", "Electric", "None", "Oil", "Wood", "Heat pump"]


def _semicolon_file(amounts: list[str]) -> bytes:
    lines = ["id;amount;heating"]
    lines += [
        f"{index};{amount};{HEATING[index % len(HEATING)]}"
        for index, amount in enumerate(amounts, 1)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_tokens_in_a_decimal_comma_column_are_missing_and_counted(tmp_path: Path) -> None:
    amounts = ["100,85", "?", "2,5", "NA", "", "3,25", "N/A", " - ", "None", "7,0", "null", "1,5"]
    report, table = convert_upload(tmp_path, "sales.csv", _semicolon_file(amounts))
    assert report.decimal_separator == ","
    assert table.schema.field("amount").type == pa.float64()
    assert table.column("amount").to_pylist() == [
        100.85, None, 2.5, None, None, 3.25, None, None, None, 7.0, None, 1.5,
    ]  # fmt: skip
    assert report.missing_tokens["amount"] == {
        "": 1,
        "-": 1,
        "?": 1,
        "N/A": 1,
        "NA": 1,
        "None": 1,
        "null": 1,
    }
    assert report.conversions == [
        {
            "column": "amount",
            "type": "numeric",
            "source": "reading",
            "converted": 5,
            "missing_tokens": report.missing_tokens["amount"],
            "unconverted": 0,
            "examples": [],
        }
    ]


def test_none_among_words_stays_a_category(tmp_path: Path) -> None:
    report, table = convert_upload(tmp_path, "homes.csv", _semicolon_file(["1,5"] * 12))
    assert table.column("heating").to_pylist().count("None") == 2
    assert "heating" not in report.missing_tokens
    assert report.conversions == []


def test_integer_column_with_a_question_mark_is_stored_as_integers(tmp_path: Path) -> None:
    report, table = convert_upload(tmp_path, "a.csv", b"rooms,city\n3,Oslo\n?,Rome\n5,Nice\n")
    assert table.schema.field("rooms").type == pa.int64()
    assert table.column("rooms").to_pylist() == [3, None, 5]
    assert report.missing_tokens == {"rooms": {"?": 1}}
    assert report.conversions[0]["type"] == "integer"


def test_grouped_thousands_are_read_as_numbers(tmp_path: Path) -> None:
    content = b"item;price\nbike;1.234,50\ncar;12.500,00\npen;2,75\n"
    report, table = convert_upload(tmp_path, "p.csv", content)
    assert (report.decimal_separator, report.thousands_separator) == (",", ".")
    assert table.column("price").to_pylist() == [1234.5, 12500.0, 2.75]


def test_quoted_decimal_commas_in_a_comma_delimited_file(tmp_path: Path) -> None:
    content = b'item,price\nbike,"100,85"\ncar,"2,5"\npen,"3,75"\n'
    report, table = convert_upload(tmp_path, "p.csv", content)
    assert (report.delimiter, report.decimal_separator) == (",", ",")
    assert table.column("price").to_pylist() == [100.85, 2.5, 3.75]


def test_quoted_grouped_thousands_in_a_comma_delimited_file(tmp_path: Path) -> None:
    content = b'item,price\nbike,"1,234.50"\ncar,"2,000"\npen,2.75\n'
    report, table = convert_upload(tmp_path, "p.csv", content)
    assert (report.decimal_separator, report.thousands_separator) == (".", ",")
    assert table.column("price").to_pylist() == [1234.5, 2000.0, 2.75]


def test_text_column_of_a_typed_format_without_tokens_stays_text(tmp_path: Path) -> None:
    source = tmp_path / "codes.parquet"
    pq.write_table(pa.table({"zip": ["01234", "02345"], "n": ["1", "?"]}), source)
    report, table = convert_upload(tmp_path, "codes.parquet", source.read_bytes())
    assert table.column("zip").to_pylist() == ["01234", "02345"]
    assert table.column("n").to_pylist() == [1, None]
    assert report.missing_tokens == {"n": {"?": 1}}


def test_parse_numbers_counts_tokens_and_cells_that_are_not_numbers() -> None:
    texts = pa.array(["100,85", "1.234,5", "?", "abc", "None", None, "abc", "1.5", "-2"])
    numbers, conversion = parse_numbers(texts, NumberFormat(",", "."))
    assert numbers.to_pylist() == [100.85, 1234.5, None, None, None, None, None, None, -2.0]
    assert conversion.to_dict() == {
        "converted": 3,
        "missing_tokens": {"?": 1, "None": 1},
        "unconverted": 3,
        "examples": ["abc", "1.5"],
    }


def test_convert_columns_to_numbers_rewrites_only_text_columns(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": ["1,5", "x", "?"], "b": [1, 2, 3]}), path)
    conversions = convert_columns_to_numbers(path, {"a": False, "b": False}, NumberFormat(","))
    table = pq.read_table(path)
    assert table.column("a").to_pylist() == [1.5, None, None]
    assert table.column("b").to_pylist() == [1, 2, 3]
    assert list(conversions) == ["a"]
    assert (conversions["a"].unconverted, conversions["a"].examples) == (1, ["x"])
