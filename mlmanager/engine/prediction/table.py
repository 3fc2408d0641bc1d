"""A table of rows with the predictions appended (a batch file's chunk, a notebook's frame)."""

from __future__ import annotations

from typing import TypeVar

import pandas as pd
import pyarrow as pa

from mlmanager.engine.prediction.columns import OutputColumn, output_columns, plain
from mlmanager.engine.prediction.predictor import Predictor, decided

Table = TypeVar("Table", pa.Table, pd.DataFrame)


def predict_table(predictor: Predictor, table: Table) -> Table:
    """`table` (Arrow or pandas; the same kind comes back) with the columns of
    `output_columns` appended: per output, the predicted label or amount, then per class its
    probability. Inputs the table lacks are missing values to the model; its other columns are
    kept as they are."""
    if isinstance(table, pd.DataFrame):
        names = [str(name) for name in table.columns]
        frame = table
    else:
        names = table.column_names
        present = set(names)
        # Only the inputs are converted: the other columns are copied to the result as Arrow
        # holds them, types and all.
        frame = table.select([n for n in predictor.inputs if n in present]).to_pandas(
            split_blocks=True
        )
    columns = _prediction_columns(
        predictor, frame, len(table), output_columns(predictor, taken=names)
    )
    if isinstance(table, pd.DataFrame):
        result = table.copy(deep=False)
        for column, values in columns:
            result[column.name] = values.to_numpy(zero_copy_only=False)
        return result
    for column, values in columns:
        table = table.append_column(pa.field(column.name, column.type), values)
    return table


def _prediction_columns(
    predictor: Predictor, frame: pd.DataFrame, count: int, columns: list[OutputColumn]
) -> list[tuple[OutputColumn, pa.Array]]:
    pending = iter(columns)
    arrays = []
    for output in predictor.outputs:
        values, probabilities = decided(output, frame, count, predictor.threshold)
        column = next(pending)
        if probabilities is None:
            arrays.append((column, pa.array(values, type=pa.float64())))
            continue
        labels = [plain(value) for value in values]
        if column.type == pa.string() and not all(isinstance(v, str) for v in labels):
            labels = [str(value) for value in labels]  # classes of no single type
        arrays.append((column, pa.array(labels, type=column.type)))
        for index in range(len(output.class_keys or ())):
            arrays.append((next(pending), pa.array(probabilities[:, index])))
    return arrays
