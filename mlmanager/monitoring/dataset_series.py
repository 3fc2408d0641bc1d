"""Dataset series: a column of a dataset against one of its time columns, for charts.

`{"kind": "dataset", "dataset": id, "column": name, "time_column": name, "aggregation":
"avg|min|max|last|count", "period_s": 86400}` draws `column` per period of `time_column`
(the periods aligned on the Unix epoch, as sensor series are): sales per day, a lab
measurement per week. The dataset must be ready; `time_column` one of its datetime columns,
`column` a numeric one (any column with `count`). A dataset does not change as time passes,
so rules do not watch it (`series_value` refuses it); charts and reports draw it.

The points are computed from the stored Parquet file, reading only the two columns (pyarrow),
the times parsed as UTC (a time without a zone is UTC, as readings' are).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from django.utils.translation import gettext as _

from mlmanager.core import storage
from mlmanager.core.filters import MAX_ID

DATASET_KEYS = {"kind", "dataset", "column", "time_column", "aggregation", "period_s"}
AGGREGATIONS = ("avg", "min", "max", "last", "count")
DEFAULT_PERIOD_S = 86400
MIN_PERIOD_S = 60
MAX_PERIOD_S = 366 * 86400
NUMERIC_TYPES = frozenset({"numeric", "integer"})


class DatasetSeriesError(ValueError):
    """A bad dataset spec: `field` names the part (`column`), the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def normalise(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's shape checked and its defaults filled in (no database)."""
    unknown = sorted(set(spec) - DATASET_KEYS)
    if unknown:
        raise DatasetSeriesError(unknown[0], _("unknown field"))
    dataset = spec.get("dataset")
    if isinstance(dataset, bool) or not isinstance(dataset, int) or not 1 <= dataset <= MAX_ID:
        raise DatasetSeriesError("dataset", _("an id (a positive whole number) is required"))
    for field in ("column", "time_column"):
        value = spec.get(field)
        if not isinstance(value, str) or not value or len(value) > 1000:
            raise DatasetSeriesError(field, _("a column's name is required"))
    aggregation = spec.get("aggregation", "avg")
    if aggregation not in AGGREGATIONS:
        raise DatasetSeriesError("aggregation", _("avg, min, max, last or count"))
    period = spec.get("period_s", DEFAULT_PERIOD_S)
    if isinstance(period, bool) or not isinstance(period, int):
        raise DatasetSeriesError("period_s", _("a whole number of seconds"))
    if not MIN_PERIOD_S <= period <= MAX_PERIOD_S or period % 60:
        raise DatasetSeriesError(
            "period_s", _("whole minutes from 1 minute to 366 days, in seconds")
        )
    return {
        "kind": "dataset",
        "dataset": dataset,
        "column": spec["column"],
        "time_column": spec["time_column"],
        "aggregation": aggregation,
        "period_s": period,
    }


def check_columns(spec: dict[str, Any], columns: list[dict[str, Any]]) -> None:
    """The spec's columns against the dataset's profile (`Dataset.columns`)."""
    types = {column["name"]: column.get("type") for column in columns}
    if spec["time_column"] not in types:
        raise DatasetSeriesError("time_column", _("the dataset has no such column"))
    if types[spec["time_column"]] != "datetime":
        raise DatasetSeriesError("time_column", _("not a date or date-and-time column"))
    if spec["column"] not in types:
        raise DatasetSeriesError("column", _("the dataset has no such column"))
    if spec["aggregation"] != "count" and types[spec["column"]] not in NUMERIC_TYPES:
        raise DatasetSeriesError("column", _("not a numeric column (only count applies)"))


def label(spec: dict[str, Any], *, name: str | None = None) -> str:
    subject = name or _("Dataset %(id)s") % {"id": spec.get("dataset")}
    return f"{subject} · {spec.get('column')} {spec.get('aggregation', 'avg')}"


def points(
    spec: dict[str, Any], *, parquet_name: str, start: datetime, end: datetime, period_s: int
) -> list[tuple[datetime, float | None]]:
    """One point per period of `period_s` overlapping [start, end): the aggregate of the
    column over the rows whose time falls in it (None when none does; count: 0)."""
    path = storage.materialise(parquet_name)
    table = pq.read_table(path, columns=[spec["time_column"], spec["column"]])
    times = pd.to_datetime(table.column(0).to_pandas(), errors="coerce", utc=True, format="mixed")
    values = table.column(1).to_pandas()
    if spec["aggregation"] != "count":
        values = pd.to_numeric(values, errors="coerce")
    frame = pd.DataFrame({"time": times, "value": values}).dropna(subset=["time"])
    frame = frame[(frame["time"] >= start) & (frame["time"] < end)]
    first = int(start.timestamp()) // period_s
    last = (int(end.timestamp()) - 1) // period_s
    buckets = range(first, last + 1)
    if frame.empty:
        empty = 0.0 if spec["aggregation"] == "count" else None
        return [(_moment(number, period_s), empty) for number in buckets]
    frame = frame.sort_values("time", kind="stable")
    # Whatever the unit pandas keeps times in (ns, us): seconds since the epoch.
    seconds = (frame["time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    grouped = frame["value"].groupby((seconds // period_s).to_numpy())
    how = {"avg": "mean", "min": "min", "max": "max", "last": "last", "count": "count"}
    aggregated = grouped.agg(how[spec["aggregation"]])
    by_bucket = {int(number): value for number, value in aggregated.items()}  # type: ignore[call-overload]
    result: list[tuple[datetime, float | None]] = []
    for number in buckets:
        value = by_bucket.get(number)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            result.append(
                (_moment(number, period_s), 0.0 if spec["aggregation"] == "count" else None)
            )
        else:
            result.append((_moment(number, period_s), float(value)))
    return result


def _moment(number: int, period_s: int) -> datetime:
    return datetime.fromtimestamp(number * period_s, tz=UTC)
