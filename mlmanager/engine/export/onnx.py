"""A trained tabular version as one ONNX graph: preprocessing and estimators together.

The graph takes one input per model input column, as a column of N rows (`[N, 1]`): numbers as
`double` (NaN for a missing value), categories and yes/no columns as `string` (an empty string
for a missing value). Per predicted output it answers `<output>:label` and, for a
classification, `<output>:probabilities` (`[N, classes]`, in the order of the `classes:<output>`
metadata entry); a regression answers `<output>:value`.

The preprocessing is written here with plain ONNX operators, replaying the fitted pipeline of
`training.preprocessing` step by step in double precision (as NumPy does) and rounding to
float32 at the end, as `to_float32` does: the estimator then sees the very numbers it sees in
MLManager. The estimators are converted by skl2onnx (scikit-learn forests and linear models,
in double precision, which matches scikit-learn's own comparisons) and onnxmltools (LightGBM,
XGBoost), and spliced in. Free text (hashed words), dates and CatBoost have no converter here
yet: `OnnxUnsupported` says so in a sentence for the user.

Importing this module loads no ONNX library; `model_to_onnx` loads them on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx
    import pandas as pd

    from mlmanager.engine.training.model import TrainedModel

__all__ = [
    "OPSET",
    "REASONS",
    "OnnxUnsupported",
    "Problem",
    "export_problem",
    "model_to_onnx",
    "onnx_feed",
]

logger = logging.getLogger(__name__)

# The operator sets the graph is written for: onnxmltools converts up to opset 15.
OPSET = 15
ML_OPSET = 3
# Input types that have a converter, and what the others are called in a reason.
_SUPPORTED_INPUTS = frozenset({"numeric", "integer", "categorical", "boolean"})
_UNSUPPORTED_INPUTS = {
    "text": "text",
    "json": "JSON",
    "datetime": "date",
}
_SUPPORTED_ESTIMATORS = frozenset(
    {"lgbm", "xgboost", "rf", "extra_tree", "lrl1", "enet", "ensemble"}
)
_MISSING_TEXT = "(missing)"
# Probabilities of a forest's classes this close count as a tie (see _prediction).
TIE = 1e-6


# What each problem says, in English (the Django service says it in the user's language).
REASONS = {
    "input_type": "Inputs of type {subject} cannot be exported to ONNX yet.",
    "no_inputs": "A model without inputs cannot be exported to ONNX.",
    "no_outputs": "A version without outputs cannot be exported to ONNX.",
    "image_model": "Image models cannot be exported to ONNX yet.",
    "catboost": "CatBoost models cannot be exported to ONNX yet.",
    "estimator": "Models made by “{subject}” cannot be exported to ONNX yet.",
    "preprocessing": "This version's preprocessing cannot be exported to ONNX.",
    "mixed_input_types": "The input “{subject}” has different types in this version's outputs.",
    "converter": "This version's {subject} model could not be converted to ONNX.",
}


@dataclass(frozen=True)
class Problem:
    """Why a version cannot be exported: a `code` of REASONS and the name it mentions."""

    code: str
    subject: str = ""

    @property
    def reason(self) -> str:
        return REASONS[self.code].format(subject=self.subject)


class OnnxUnsupported(Exception):
    """The version cannot be exported to ONNX; `reason` says why, for the user."""

    def __init__(self, problem: Problem):
        super().__init__(problem.reason)
        self.problem = problem
        self.reason = problem.reason


# --- the cheap check ---------------------------------------------------------------------------


def export_problem(
    *, inputs: Sequence[tuple[str, str]], outputs: Sequence[Mapping]
) -> Problem | None:
    """Why a version with these `inputs` (name, type) and `outputs` (their recorded task,
    best_estimator and leaderboard) cannot be exported, or None when it can; decided without
    loading the model."""
    for output in outputs:
        if output.get("task") not in ("binary", "multiclass", "regression"):
            return Problem("image_model")
    if not outputs:
        return Problem("no_outputs")
    for _, kind in inputs:
        if kind not in _SUPPORTED_INPUTS:
            return Problem("input_type", _UNSUPPORTED_INPUTS.get(kind, kind))
    if not inputs:
        return Problem("no_inputs")
    for output in outputs:
        for name in _estimator_names(output):
            problem = _estimator_problem(name)
            if problem:
                return problem
    return None


def _estimator_names(output: Mapping) -> list[str]:
    name = str(output.get("best_estimator") or "")
    if name != "ensemble":
        return [name]
    for row in output.get("leaderboard") or []:
        if row.get("estimator") == "ensemble":
            members = (row.get("config") or {}).get("members") or []
            return [str(member.get("estimator")) for member in members]
    return []


def _estimator_problem(name: str) -> Problem | None:
    if name == "catboost":
        return Problem("catboost")
    if name not in _SUPPORTED_ESTIMATORS:
        return Problem("estimator", name)
    return None


# --- the graph ---------------------------------------------------------------------------------


class _Graph:
    """Nodes, constants and unique names of the graph being written."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self.opsets: dict[str, int] = {"": OPSET, "ai.onnx.ml": ML_OPSET}
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"_{hint}_{self._count}"

    def const(self, value: Any, hint: str = "const") -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(
        self, op_type: str, inputs: list[str], *, domain: str = "", hint: str = "", **attrs: Any
    ) -> str:
        from onnx import helper

        output = self.name(hint or op_type.lower())
        self.nodes.append(
            helper.make_node(op_type, inputs, [output], domain=domain or None, **attrs)
        )
        return output


def model_to_onnx(
    models: Sequence[TrainedModel],
    *,
    threshold: float | None = None,
    name: str = "mlmanager",
) -> onnx.ModelProto:
    """One ONNX model answering every output of `models` (a version's trained models, one per
    output) from the raw input columns. `threshold` is the version's decision threshold for
    two-class outputs (the positive class when its probability reaches it). Raises
    OnnxUnsupported with the reason when some part has no converter."""
    import onnx
    from onnx import TensorProto, helper

    if not models:
        raise OnnxUnsupported(Problem("no_outputs"))
    graph = _Graph()
    input_kinds: dict[str, str] = {}
    for model in models:
        # The estimators are checked as they are converted (an ensemble's members too).
        problem = export_problem(
            inputs=model.inputs, outputs=[{"task": model.task, "best_estimator": "lgbm"}]
        )
        if problem:
            raise OnnxUnsupported(problem)
        for column, kind in model.inputs:
            kind = "number" if kind in ("numeric", "integer") else "text"
            if input_kinds.setdefault(column, kind) != kind:
                raise OnnxUnsupported(Problem("mixed_input_types", column))
    for column, kind in input_kinds.items():
        element = TensorProto.DOUBLE if kind == "number" else TensorProto.STRING
        graph.inputs.append(helper.make_tensor_value_info(column, element, [None, 1]))
    metadata: dict[str, str] = {}
    for model in models:
        features = _preprocessing(graph, model)
        _prediction(graph, model, features, threshold=threshold, metadata=metadata)
    onnx_graph = helper.make_graph(
        graph.nodes, name, graph.inputs, graph.outputs, initializer=graph.initializers
    )
    opsets = [helper.make_opsetid(domain, version) for domain, version in graph.opsets.items()]
    result = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="MLManager")
    result.ir_version = min(result.ir_version, 9)  # what onnxruntime 1.16+ reads
    for key, value in metadata.items():
        entry = result.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(result)
    return result


# --- preprocessing -----------------------------------------------------------------------------


def _preprocessing(graph: _Graph, model: TrainedModel) -> str:
    """The float32 feature matrix [N, F] the estimator sees, from the graph's raw inputs."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from mlmanager.engine.training import preprocessing as pre

    steps = dict(getattr(model.preprocessor, "steps", []))
    columns, scaler = steps.get("columns"), steps.get("scale")
    if not isinstance(columns, ColumnTransformer) or not isinstance(scaler, StandardScaler):
        raise OnnxUnsupported(Problem("preprocessing"))
    parts: list[str] = []
    for step, transformer, selection in columns.transformers_:
        if transformer == "drop" or step == "remainder":
            if transformer == "drop":
                continue
            raise OnnxUnsupported(Problem("preprocessing"))
        names = [selection] if isinstance(selection, str) else list(selection)
        if isinstance(transformer, pre.FrequencyEncoder):
            parts.append(_frequency_codes(graph, transformer, names))
            continue
        if not isinstance(transformer, Pipeline):
            raise OnnxUnsupported(Problem("preprocessing"))
        first, last = transformer.steps[0][1], transformer.steps[-1][1]
        if isinstance(first, pre.NumberValues):
            values = graph.op("Concat", names, axis=1) if len(names) > 1 else names[0]
            bad = graph.op("Or", [graph.op("IsNaN", [values]), graph.op("IsInf", [values])])
            parts.append(_imputed(graph, values, bad, last))
        elif isinstance(first, pre.BooleanValues):
            codes = [
                _boolean_codes(graph, name, mapping)
                for name, mapping in zip(names, first.own_values_, strict=True)
            ]
            values = graph.op("Concat", codes, axis=1) if len(codes) > 1 else codes[0]
            parts.append(_imputed(graph, values, graph.op("IsNaN", [values]), last))
        elif isinstance(first, pre.TextValues):
            parts.append(_one_hot(graph, last, names))
        elif isinstance(first, pre.DatetimeParts):
            raise OnnxUnsupported(Problem("input_type", "date"))
        else:
            raise OnnxUnsupported(Problem("input_type", "text"))
    joined = graph.op("Concat", parts, axis=1, hint="columns") if len(parts) > 1 else parts[0]
    if getattr(scaler, "scale_", None) is not None:
        scale = np.asarray(scaler.scale_, dtype=np.float64)
        # StandardScaler divides a dense matrix by the scales and multiplies a sparse one by
        # their inverses: the same arithmetic, to the last bit.
        if columns.sparse_output_:
            joined = graph.op("Mul", [joined, graph.const(1 / scale, "inverse_scale")])
        else:
            joined = graph.op("Div", [joined, graph.const(scale, "scale")])
    features = graph.op("Cast", [joined], to=1, hint="features")  # FLOAT
    if columns.sparse_output_ and _sparse_means_missing(model.estimator):
        # XGBoost reads the entries a sparse matrix leaves out as missing, not as zeros.
        zero = graph.op("Equal", [features, graph.const(np.float32(0.0))])
        features = graph.op("Where", [zero, graph.const(np.float32(np.nan)), features])
    return features


def _sparse_means_missing(estimator: Any) -> bool:
    members = getattr(estimator, "members", None)
    if members is not None:
        return any(_sparse_means_missing(member) for _, member, _ in members)
    return type(getattr(estimator, "_model", None)).__module__.startswith("xgboost")


def _imputed(graph: _Graph, values: str, missing: str, imputer: Any) -> str:
    """SimpleImputer(add_indicator=True): missing values replaced by the fitted statistics,
    then a 0/1 column per column that had missing values in training."""
    statistics = np.asarray(imputer.statistics_, dtype=np.float64).reshape(1, -1)
    filled = graph.op("Where", [missing, graph.const(statistics, "statistics"), values])
    indicator = getattr(imputer, "indicator_", None)
    if indicator is None or not len(indicator.features_):
        return filled
    flagged = graph.const(np.asarray(indicator.features_, dtype=np.int64), "flagged")
    flags = graph.op("Cast", [graph.op("Gather", [missing, flagged], axis=1)], to=11)  # DOUBLE
    return graph.op("Concat", [filled, flags], axis=1)


def _boolean_codes(graph: _Graph, name: str, mapping: dict[str, float]) -> str:
    """One yes/no column as 1.0/0.0, NaN when missing or neither."""
    from mlmanager.engine.training import preprocessing as pre

    if not mapping:
        mapping = {text: 1.0 for text in pre._TRUE_TEXTS}
        mapping.update({text: 0.0 for text in pre._FALSE_TEXTS})
    # MLManager lower-cases the text first; ONNX's StringNormalizer needs the system's locales
    # (onnxruntime fails to load the graph without them), so the usual spellings are listed.
    spellings: dict[str, int] = {}
    for text, number in mapping.items():
        for spelling in (text, text.upper(), text.capitalize(), text.title()):
            spellings.setdefault(spelling, int(number))
    keys = sorted(spellings)
    codes = graph.op(
        "LabelEncoder",
        [name],
        domain="ai.onnx.ml",
        keys_strings=keys,
        values_int64s=[spellings[key] for key in keys],
        default_int64=-1,
    )
    numbers = graph.op("Cast", [codes], to=11)
    unknown = graph.op("Less", [codes, graph.const(np.int64(0))])
    return graph.op("Where", [unknown, graph.const(np.float64(np.nan)), numbers])


def _positions(graph: _Graph, name: str, levels: Sequence[str]) -> str:
    """Each value's position among `levels` ([N, 1] int64), -1 when not among them; an empty
    string counts as a missing value, as in training."""
    keys = [str(level) for level in levels]
    values = list(range(len(keys)))
    if _MISSING_TEXT in keys and "" not in keys:
        keys.append("")
        values.append(keys.index(_MISSING_TEXT))
    if not keys:  # LabelEncoder needs keys: a level nobody can send
        keys, values = ["\x00"], [-1]
    return graph.op(
        "LabelEncoder",
        [name],
        domain="ai.onnx.ml",
        keys_strings=keys,
        values_int64s=values,
        default_int64=-1,
    )


def _one_hot(graph: _Graph, encoder: Any, names: list[str]) -> str:
    if encoder.drop is not None or getattr(encoder, "_infrequent_enabled", False):
        raise OnnxUnsupported(Problem("preprocessing"))
    blocks = []
    for name, categories in zip(names, encoder.categories_, strict=True):
        positions = _positions(graph, name, list(categories))
        every = graph.const(np.arange(len(categories), dtype=np.int64).reshape(1, -1), "levels")
        # Unknown values (-1) match no level: all zeros, as handle_unknown="ignore".
        blocks.append(graph.op("Cast", [graph.op("Equal", [positions, every])], to=11))
    return graph.op("Concat", blocks, axis=1) if len(blocks) > 1 else blocks[0]


def _frequency_codes(graph: _Graph, encoder: Any, names: list[str]) -> str:
    blocks = []
    for name, levels, shares, frequent in zip(
        names, encoder.levels_, encoder.shares_, encoder.frequent_counts_, strict=True
    ):
        positions = _positions(graph, name, list(levels))
        known = graph.op("GreaterOrEqual", [positions, graph.const(np.int64(0))])
        padded = np.append(np.asarray(shares, dtype=np.float64), 0.0)
        index = graph.op("Where", [known, positions, graph.const(np.int64(len(shares)))])
        blocks.append(graph.op("Gather", [graph.const(padded, "shares"), index]))
        rank = graph.op("Min", [positions, graph.const(np.int64(frequent))])
        rank = graph.op("Where", [known, rank, graph.const(np.int64(frequent))])
        blocks.append(graph.op("Cast", [rank], to=11))
    return graph.op("Concat", blocks, axis=1)


# --- estimators --------------------------------------------------------------------------------


def _prediction(
    graph: _Graph,
    model: TrainedModel,
    features: str,
    *,
    threshold: float | None,
    metadata: dict[str, str],
) -> None:
    import json

    from onnx import TensorProto, helper

    from mlmanager.engine.training.ensemble import EnsembleModel

    output = model.output
    estimator = model.estimator
    regression = model.task == "regression"
    class_count = 0 if regression else len(model.classes or [])
    if isinstance(estimator, EnsembleModel):
        for name, _, _ in estimator.members:
            problem = _estimator_problem(name)
            if problem:
                raise OnnxUnsupported(problem)
        weighted = [
            graph.op(
                "Mul",
                [
                    _member(graph, member, features, regression, class_count),
                    graph.const(np.float64(weight)),
                ],
            )
            for _, member, weight in estimator.members
        ]
        values = graph.op("Sum", weighted) if len(weighted) > 1 else weighted[0]
    else:
        problem = _estimator_problem(model.estimator_name)
        if problem:
            raise OnnxUnsupported(problem)
        values = _member(graph, estimator, features, regression, class_count)
    if regression:
        value = graph.op("Reshape", [values, graph.const(np.array([-1], dtype=np.int64))])
        graph.nodes.append(helper.make_node("Identity", [value], [f"{output}:value"]))
        graph.outputs.append(
            helper.make_tensor_value_info(f"{output}:value", TensorProto.DOUBLE, [None])
        )
        return
    total = graph.op("ReduceSum", [values, graph.const(np.array([1], dtype=np.int64))])
    probabilities = graph.op("Div", [values, total])
    graph.nodes.append(helper.make_node("Identity", [probabilities], [f"{output}:probabilities"]))
    # A forest's probabilities are shares of its trees' votes, and two classes often tie
    # (15 votes of 30 each); onnxruntime sums the votes in float32, which turns a tie into
    # 0.49999997 against 0.50000003. Within TIE of each other, classes count as tied here,
    # and a tie goes to the first class, as in MLManager.
    tie = TIE if _is_forest(estimator) else 0.0
    if threshold is not None and class_count == 2:
        positive = graph.op(
            "Gather", [probabilities, graph.const(np.int64(1))], axis=1, hint="positive"
        )
        chosen = graph.op(
            "Cast",
            [graph.op("GreaterOrEqual", [positive, graph.const(np.float64(threshold - tie))])],
            to=7,  # INT64
        )
    elif tie:
        best = graph.op("ReduceMax", [probabilities], axes=[1], keepdims=1)
        near = graph.op("Sub", [best, graph.const(np.float64(tie))])
        tied = graph.op("Cast", [graph.op("GreaterOrEqual", [probabilities, near])], to=11)
        chosen = graph.op("ArgMax", [tied], axis=1, keepdims=0)  # the first of the tied
    else:
        chosen = graph.op("ArgMax", [probabilities], axis=1, keepdims=0)
    classes, element = _class_constant(model.classes or [])
    graph.nodes.append(
        helper.make_node("Gather", [graph.const(classes, "classes"), chosen], [f"{output}:label"])
    )
    graph.outputs.append(helper.make_tensor_value_info(f"{output}:label", element, [None]))
    graph.outputs.append(
        helper.make_tensor_value_info(
            f"{output}:probabilities", TensorProto.DOUBLE, [None, class_count]
        )
    )
    metadata[f"classes:{output}"] = json.dumps([_plain(value) for value in model.classes or []])


def _is_forest(estimator: Any) -> bool:
    return type(getattr(estimator, "_model", None)).__module__.startswith("sklearn.ensemble")


def _class_constant(classes: list[Any]) -> tuple[np.ndarray, int]:
    from onnx import TensorProto

    if all(
        isinstance(value, int | np.integer) and not isinstance(value, bool) for value in classes
    ):
        return np.asarray(classes, dtype=np.int64), TensorProto.INT64
    if all(
        isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
        for value in classes
    ):
        return np.asarray(classes, dtype=np.float64), TensorProto.DOUBLE
    return np.asarray([str(value) for value in classes], dtype=object), TensorProto.STRING


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, int | float | str | bool) else str(value)


def _member(
    graph: _Graph, estimator: Any, features: str, regression: bool, class_count: int
) -> str:
    """Splice the converted estimator in; its probabilities [N, classes] (aligned to all
    classes, as ensemble._probabilities does) or amounts [N, 1], as double."""
    library_model = getattr(estimator, "_model", None)
    if library_model is None:
        raise OnnxUnsupported(Problem("converter", type(estimator).__name__))
    converted, double_input = _convert(library_model, regression)
    prefix = graph.name("model") + "_"
    source = features
    if double_input:
        source = graph.op("Cast", [features], to=11)
    outputs = _splice(graph, converted, prefix, source)
    if regression:
        return graph.op("Cast", [outputs[0]], to=11)
    probabilities = graph.op("Cast", [outputs[-1]], to=11)
    known = np.asarray(getattr(library_model, "classes_", np.arange(class_count)), dtype=np.int64)
    if len(known) != class_count:
        # A member that never saw a class gives no column for it: zeros there.
        spread = np.zeros((len(known), class_count))
        spread[np.arange(len(known)), known] = 1.0
        probabilities = graph.op("MatMul", [probabilities, graph.const(spread, "spread")])
    return probabilities


def _convert(model: Any, regression: bool) -> tuple[onnx.ModelProto, bool]:
    """The library model as ONNX with one input named "features"; True when that input is
    double (scikit-learn's trees compare float32 features with float64 thresholds: double
    thresholds reproduce that exactly)."""
    module = type(model).__module__
    opsets = {"": OPSET, "ai.onnx.ml": ML_OPSET}
    features = model.n_features_in_
    try:
        if module.startswith("lightgbm"):
            from onnxmltools import convert_lightgbm
            from onnxmltools.convert.common.data_types import FloatTensorType

            return (
                convert_lightgbm(
                    model,
                    initial_types=[("features", FloatTensorType([None, features]))],
                    target_opset=OPSET,
                    zipmap=False,
                    split=50,
                ),
                False,
            )
        if module.startswith("xgboost"):
            from onnxmltools import convert_xgboost
            from onnxmltools.convert.common.data_types import FloatTensorType

            return (
                convert_xgboost(
                    model,
                    initial_types=[("features", FloatTensorType([None, features]))],
                    target_opset=OPSET,
                ),
                False,
            )
        if module.startswith("sklearn"):
            from skl2onnx import convert_sklearn
            from skl2onnx.common.data_types import DoubleTensorType

            # In double precision: scikit-learn compares float32 features with float64
            # thresholds and sums its trees' values in float64, and so does this graph (float32
            # sums break ties between classes differently). The price: skl2onnx searches a
            # switch point per tree node in Python, ~40 s for 100 fully grown trees.
            options = {} if regression else {id(model): {"zipmap": False}}
            return (
                convert_sklearn(
                    model,
                    initial_types=[("features", DoubleTensorType([None, features]))],
                    target_opset=opsets,
                    options=options,
                ),
                True,
            )
    except OnnxUnsupported:
        raise
    except Exception as error:  # a converter's own refusal
        logger.warning("ONNX conversion of %s failed", type(model).__name__, exc_info=True)
        raise OnnxUnsupported(Problem("converter", type(model).__name__)) from error
    raise OnnxUnsupported(Problem("estimator", type(model).__name__))


def _splice(graph: _Graph, converted: onnx.ModelProto, prefix: str, source: str) -> list[str]:
    """Copy `converted`'s nodes and constants into the graph with `prefix` on every name, its
    one input wired to `source`; returns its output names (in order)."""
    inner = converted.graph
    input_name = inner.input[0].name
    names = {input_name: source}

    def renamed(name: str) -> str:
        if not name:
            return name
        if name not in names:
            names[name] = prefix + name
        return names[name]

    for initializer in inner.initializer:
        copy = type(initializer)()
        copy.CopyFrom(initializer)
        copy.name = renamed(initializer.name)
        graph.initializers.append(copy)
    for number, node in enumerate(inner.node):
        copy = type(node)()
        copy.CopyFrom(node)
        del copy.input[:]
        copy.input.extend(renamed(name) for name in node.input)
        del copy.output[:]
        copy.output.extend(renamed(name) for name in node.output)
        copy.name = f"{prefix}{number}_{node.name}"
        graph.nodes.append(copy)
    for opset in converted.opset_import:
        domain = opset.domain or ""
        if domain not in graph.opsets or graph.opsets[domain] < opset.version:
            graph.opsets[domain] = opset.version
    return [renamed(output.name) for output in inner.output]


# --- feeding the graph -------------------------------------------------------------------------


def onnx_feed(frame: pd.DataFrame, inputs: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
    """The graph's inputs for the raw rows `frame` (values as in the Parquet file): numbers as
    double with NaN for missing, the others as the text MLManager reads them as."""
    import pandas as pd

    from mlmanager.engine.training.preprocessing import _numbers, as_text

    feed: dict[str, np.ndarray] = {}
    for name, kind in inputs:
        if name in feed:
            continue
        column = frame[name] if name in frame else pd.Series([None] * len(frame), dtype=object)
        column = column.reset_index(drop=True)
        if kind in ("numeric", "integer"):
            feed[name] = _numbers(column).reshape(-1, 1)
        else:
            feed[name] = np.asarray(as_text(column), dtype=object).reshape(-1, 1)
    return feed
