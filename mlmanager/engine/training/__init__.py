"""Train models from a profiled Parquet file: preprocessing, AutoML search, signed artifacts.

How a run flows through the modules of this package:

1. `validation.validate_spec` checks a request against the data set's profile (budget,
   inputs, target) before anything starts; `validation.infer_task` suggests a task.
2. `runner.train` runs each output in turn. `process` starts a search process per output
   (from a fork server that preloaded the ML libraries) and the parent follows it through
   the files described in `status` (`watch`, which also reads FLAML's trial log through
   `trials` for live progress) until it ends, is cancelled, or reaches its deadline and is
   killed. Meanwhile `record` hashes the data set for the reproducibility record.
3. In the search process (`child` → `search`): `data` reads the needed columns once, sets
   aside the holdout and writes it for the parent; `preprocessing` builds the column
   transformer from the input types; FLAML searches in chunks, each improvement saved as a
   signed checkpoint (`engine.artifacts`) holding a `model.TrainedModel`; `ensemble` may
   replace the best model by a weighted average of the top estimators when that measurably
   helps and time is left.
4. Back in the parent, `evaluation` loads the last checkpoint, computes the holdout
   `metrics` and permutation importance, and `train` returns a `TrainingOutcome`. A search
   process that crashed or was killed (out of memory) after writing a checkpoint ends the
   same way, from that checkpoint; without one it is a `TrainingError`.
5. `model.TrainedModel` predicts from raw columns; frames of a few rows (a form, an API call)
   skip the scikit-learn pipeline through `preprocessing.RowTransform`, same numbers faster.

Importing this package is light (no ML libraries); they load in the search process, and in
the parent only when a model is measured or loaded. Only the names below are the package's
interface; the modules are its internals.
"""

from mlmanager.engine.training.model import TrainedModel, load_model
from mlmanager.engine.training.runner import train
from mlmanager.engine.training.spec import (
    DEFAULT_METRIC,
    LEVEL_BUDGET_S,
    MAX_BUDGET_S,
    METRICS,
    MIN_BUDGET_S,
    TASKS,
    USABLE_INPUT_TYPES,
    OutputResult,
    OutputSpec,
    Progress,
    TrainingError,
    TrainingOutcome,
    TrainingSpec,
)
from mlmanager.engine.training.validation import infer_task, validate_spec

__all__ = [
    "DEFAULT_METRIC",
    "LEVEL_BUDGET_S",
    "MAX_BUDGET_S",
    "METRICS",
    "MIN_BUDGET_S",
    "TASKS",
    "USABLE_INPUT_TYPES",
    "OutputResult",
    "OutputSpec",
    "Progress",
    "TrainedModel",
    "TrainingError",
    "TrainingOutcome",
    "TrainingSpec",
    "infer_task",
    "load_model",
    "train",
    "validate_spec",
]
