"""predict_file: a Parquet file predicted chunk by chunk into a CSV or Parquet result."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine.prediction import Predictor, predict_file, predict_table


class Cancelled(Exception):
    pass


def rows_file(tmp_path: Path, rows: int = 25) -> Path:
    rng = np.random.default_rng(3)
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(rows)],
            "x": rng.normal(size=rows),
            "color": rng.choice(["red", "green", "blue"], rows),
            "note": ["=cmd()" if i % 5 == 0 else "fine" for i in range(rows)],
        }
    )
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path)
    return path


def test_a_file_is_predicted_in_chunks_with_progress_between_them(
    tmp_path: Path, predictor: Predictor
) -> None:
    source = rows_file(tmp_path)
    calls: list[tuple[int, int]] = []
    chunks: list[int] = []
    result = tmp_path / "result.parquet"
    count = predict_file(
        predictor,
        source,
        result,
        result_format="parquet",
        progress=lambda done, total: calls.append((done, total)),
        each_chunk=lambda chunk: chunks.append(chunk.num_rows),
        chunk_rows=10,
    )
    assert count == 25
    assert calls == [(0, 25), (10, 25), (20, 25), (25, 25)]
    assert chunks == [10, 10, 5]
    # The same as the whole table predicted at once, text kept as it was.
    assert pq.read_table(result) == predict_table(predictor, pq.read_table(source))


def test_raising_from_the_progress_callback_stops_between_chunks(
    tmp_path: Path, predictor: Predictor
) -> None:
    chunks: list[int] = []

    def progress(done: int, total: int) -> None:
        if done >= 10:  # cancelled while the first chunk was predicted
            raise Cancelled

    with pytest.raises(Cancelled):
        predict_file(
            predictor,
            rows_file(tmp_path),
            tmp_path / "result.csv",
            result_format="csv",
            progress=progress,
            each_chunk=lambda chunk: chunks.append(chunk.num_rows),
            chunk_rows=10,
        )
    assert chunks == [10]  # no chunk after the cancel was read


def test_a_csv_result_escapes_formulas_and_keeps_only_what_was_asked(
    tmp_path: Path, predictor: Predictor
) -> None:
    result = tmp_path / "result.csv"
    predict_file(
        predictor.with_threshold(0.3),
        rows_file(tmp_path, rows=6),
        result,
        result_format="csv",
        keep=["note"],  # and the inputs; `id` stays out
        chunk_rows=4,
    )
    with result.open(newline="") as file:
        header, *rows = list(csv.reader(file))
    assert header == [
        "x",
        "color",
        "note",
        "predicted_churned",
        "probability_churned_no",
        "probability_churned_yes",
        "predicted_amount",
    ]
    assert [row[2] for row in rows] == ["'=cmd()"] + ["fine"] * 4 + ["'=cmd()"]
    assert {row[3] for row in rows} <= {"yes", "no"}
    assert [row[3] for row in rows] == [
        "yes" if float(row[5]) >= 0.3 else "no" for row in rows
    ]  # the threshold, not the more probable class


def test_a_file_without_rows_gets_the_header_alone(tmp_path: Path, predictor: Predictor) -> None:
    source = tmp_path / "empty.parquet"
    pq.write_table(
        pa.table({"x": pa.array([], pa.float64()), "id": pa.array([], pa.string())}), source
    )
    calls: list[tuple[int, int]] = []
    for result_format in ("csv", "parquet"):
        result = tmp_path / f"result.{result_format}"
        count = predict_file(
            predictor,
            source,
            result,
            result_format=result_format,
            keep=[],
            progress=lambda done, total: calls.append((done, total)),
        )
        assert count == 0
    assert calls == [(0, 0), (0, 0)]
    assert (tmp_path / "result.csv").read_text().splitlines() == [
        '"x","predicted_churned","probability_churned_no","probability_churned_yes",'
        '"predicted_amount"'
    ]
    empty = pq.read_table(tmp_path / "result.parquet")
    assert empty.num_rows == 0 and empty.schema.field("predicted_churned").type == pa.string()
