"""The error and the report every reader produces, and the refusals several readers share."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TypeVar


class IngestError(Exception):
    """A problem with the user's file, with a message a non-programmer understands."""

    def __init__(self, message: str, *, code: str = "invalid_file"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclasses.dataclass
class IngestReport:
    """What the conversion found and changed, for showing next to the data set."""

    source_format: str
    row_count: int
    column_count: int
    encoding: str | None
    delimiter: str | None
    skipped_rows: int = 0
    renamed_columns: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    # How numbers were written in the file; text numbers are read this way (see `values`).
    decimal_separator: str = "."
    thousands_separator: str | None = None
    # Cells taken as missing, per column: token ("" for an empty cell) → count.
    missing_tokens: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    # Text columns stored as numbers: column, the type ("numeric" or "integer") and what the
    # conversion did (values.NumberConversion.to_dict()).
    conversions: list[dict] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def too_many_columns_error(count: int, max_columns: int) -> IngestError:
    return IngestError(
        f"The file has {count:,} columns; at most {max_columns:,} are supported.",
        code="too_many_columns",
    )


def too_many_rows_error(max_rows: int, *, count: int | None = None) -> IngestError:
    """`count` is the file's row count where its metadata gives it; streamed formats stop at
    the first batch past the cap without knowing the total (None)."""
    has = f"more than {max_rows:,}" if count is None else f"{count:,}"
    return IngestError(
        f"The file has {has} rows; this server accepts at most {max_rows:,} (MLMANAGER_MAX_ROWS).",
        code="too_many_rows",
    )


def too_many_cells_error(
    max_cells: int, *, rows: int | None = None, columns: int = 0
) -> IngestError:
    """Cells are rows × columns; `rows` as for too_many_rows_error."""
    if rows is None:
        has = f"more than {max_cells:,} cells (rows × columns)"
    else:
        has = f"{rows * columns:,} cells ({rows:,} rows × {columns:,} columns)"
    return IngestError(
        f"The file has {has}; this server accepts at most {max_cells:,} (MLMANAGER_MAX_CELLS).",
        code="too_many_cells",
    )


def no_rows_error(skipped_rows: int = 0) -> IngestError:
    if skipped_rows:
        return IngestError(
            f"None of the {skipped_rows:,} data rows has the same number of fields as the "
            "header, so there is nothing to load.",
            code="no_rows",
        )
    return IngestError("The file has column names but no data rows.", code="no_rows")


_Item = TypeVar("_Item")


def guarded(
    iterator: Iterator[_Item],
    to_error: Callable[[Exception], IngestError],
    *errors: type[Exception],
) -> Iterator[_Item]:
    """Yield from `iterator`, turning the reader's own errors into IngestError.

    Only the reading is guarded, so an error while writing is never blamed on the file.
    """
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except errors as exc:
            raise to_error(exc) from exc
        yield item
