"""Predict with trained models: a few rows, a table, or a file streamed chunk by chunk.

How a prediction flows through the modules of this package:

1. `predictor.Predictor.of` gathers a model version's `TrainedModel`s (one per output), its
   input columns and its decision threshold. Each output's classes are prepared once (labels,
   and their keys by `class_key`), and `predictor.decided` is where every answer is chosen:
   the amounts of a regression, or the probabilities of a classification and the label the
   threshold (two classes) or the more probable class gives.
2. `rows.predict_rows` answers the few rows of a form or an API request as plain values
   (`{"value", "probabilities"}` per output), from column arrays without building a
   DataFrame; `rows.explain_row` says which inputs moved one row's answer most.
3. `table.predict_table` appends the prediction columns to an Arrow table or a pandas
   DataFrame; `columns.output_columns` names and types those columns (label or amount, then
   a probability per class) without predicting anything.
4. `stream.predict_file` reads a Parquet file chunk by chunk, predicts each chunk with
   `predict_table` and writes the result through `writing.ResultWriter` (Parquet, or CSV with
   formula-like text escaped by `writing.csv_safe`), reporting progress between chunks and
   stopping when its callback raises.
5. `feedback.write_with_feedback` copies a data set's Parquet file with the rows that got
   feedback appended in its column types, for training a new version.

Only the names below are the package's interface; the modules are its internals.
"""

from mlmanager.engine.prediction.columns import OutputColumn, output_columns
from mlmanager.engine.prediction.feedback import write_with_feedback
from mlmanager.engine.prediction.predictor import PredictedOutput, Predictor, class_key
from mlmanager.engine.prediction.rows import EXPLANATION_INPUTS, explain_row, predict_rows
from mlmanager.engine.prediction.stream import CHUNK_ROWS, predict_file
from mlmanager.engine.prediction.table import predict_table
from mlmanager.engine.prediction.writing import RESULT_FORMATS, ResultWriter, csv_safe

__all__ = [
    "CHUNK_ROWS",
    "EXPLANATION_INPUTS",
    "RESULT_FORMATS",
    "OutputColumn",
    "PredictedOutput",
    "Predictor",
    "ResultWriter",
    "class_key",
    "csv_safe",
    "explain_row",
    "output_columns",
    "predict_file",
    "predict_rows",
    "predict_table",
    "write_with_feedback",
]
