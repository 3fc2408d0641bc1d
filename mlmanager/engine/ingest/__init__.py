"""Turn an uploaded table (CSV/TSV, Parquet, Excel, JSON Lines) into one normalised Parquet file.

How a conversion flows through the modules of this package:

1. `detection` reads the start of the file and names its format (and, for text, its encoding),
   refusing empty, binary and unsupported files before anything else runs.
2. `conversion.convert_to_parquet` opens a temporary sibling of the destination through
   `writer.atomic_parquet_file` and hands the file to the reader for its format:
   `csv` (with `csv_dialect` for sniffing and `csv_stream` for the input stream), `excel`,
   `jsonl` or `parquet`. Readers get a `context.ReadContext`: the sink, the column limit,
   the row and cell caps, progress reporting and cancellation. Every batch is written through
   `ReadContext.write`, which refuses the first one past a cap; Parquet is also checked from its
   footer before any row is read.
3. Every reader streams: CSV through pyarrow's block reader, JSON Lines and Excel row by row in
   batches (`python_values` types those Python values), Parquet batch by batch, so memory stays
   bounded whatever the size of the upload. Column names are made unique by `naming`.
4. `writer.ParquetSink` writes row groups, widening column types when later batches disagree;
   the finished file replaces the destination only when the reader succeeds.
5. `values.MissingValueScan` sees every batch on its way to the sink: missing-value tokens
   ("?", "N/A", ...) become null and are counted; text columns that hold only numbers and such
   tokens are then stored as numbers by `retype`, read in the file's `values.NumberFormat`
   (decimal and thousands separators). The report names the tokens and the conversions.
6. `preview.read_preview` later reads pages of the converted file for display.

Problems with the user's file surface as `IngestError`, whose message is meant for the user.
Only the names below are the package's interface; the modules are its internals.
"""

from mlmanager.engine.ingest.conversion import MAX_COLUMNS, convert_to_parquet
from mlmanager.engine.ingest.detection import SUPPORTED_EXTENSIONS, detect_format
from mlmanager.engine.ingest.errors import IngestError, IngestReport
from mlmanager.engine.ingest.preview import read_preview
from mlmanager.engine.ingest.retype import convert_columns_to_numbers
from mlmanager.engine.ingest.values import NumberConversion, NumberFormat, parse_numbers

__all__ = [
    "MAX_COLUMNS",
    "SUPPORTED_EXTENSIONS",
    "IngestError",
    "IngestReport",
    "NumberConversion",
    "NumberFormat",
    "convert_columns_to_numbers",
    "convert_to_parquet",
    "detect_format",
    "parse_numbers",
    "read_preview",
]
