"""ONNX export of a tabular version: its preprocessing and estimators as one graph.

`onnx_export_problem` decides from what the version recorded (input types, best estimators,
an ensemble's members) without loading anything, for pages; `onnx_model_bytes` loads the
signed artifacts the way predictions do and converts them (engine.export.onnx). Parity with
MLManager's own predictions is the engine's tests' business, not each request's.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils.translation import gettext as _

from mlmanager.core.errors import ApplicationError
from mlmanager.engine.export.onnx import OnnxUnsupported, Problem, export_problem, model_to_onnx
from mlmanager.machines.models import ModelVersion
from mlmanager.machines.selectors import version_model

logger = logging.getLogger(__name__)

EXPORT_UNSUPPORTED = "export_unsupported"


def _reason(problem: Problem) -> str:
    """The engine's reason in the user's language."""
    subject = problem.subject
    if problem.code == "input_type":
        kinds = {"text": _("text"), "JSON": _("JSON"), "date": _("date")}
        return _("Inputs of type %(type)s cannot be exported to ONNX yet.") % {
            "type": kinds.get(subject, subject)
        }
    reasons = {
        "no_inputs": _("A model without inputs cannot be exported to ONNX."),
        "no_outputs": _("A version without outputs cannot be exported to ONNX."),
        "image_model": _("Image models cannot be exported to ONNX yet."),
        "catboost": _("CatBoost models cannot be exported to ONNX yet."),
        "estimator": _("Models made by “%(name)s” cannot be exported to ONNX yet."),
        "preprocessing": _("This version's preprocessing cannot be exported to ONNX."),
        "mixed_input_types": _(
            "The input “%(name)s” has different types in this version's outputs."
        ),
        "converter": _("This version's %(name)s model could not be converted to ONNX."),
    }
    template = reasons.get(problem.code)
    if template is None:
        return problem.reason
    return template % {"name": subject}  # a mapping: templates without the name ignore it


def _recorded_inputs(version: ModelVersion) -> list[tuple[str, str]]:
    inputs: list[Any] = version.inputs or []
    return [(str(item.get("name")), str(item.get("type"))) for item in inputs]


def onnx_export_problem(*, version: ModelVersion) -> str | None:
    """Why `version` cannot be exported to ONNX, in a sentence for the user; None when it can.
    Cheap: read from the version's recorded inputs and outputs, no artifact loaded."""
    problem = export_problem(inputs=_recorded_inputs(version), outputs=version.outputs or [])
    return _reason(problem) if problem is not None else None


def onnx_model_bytes(*, version: ModelVersion) -> bytes:
    """The version as a serialized ONNX model (every output, preprocessing included, the
    version's decision threshold applied to two-class labels). Raises ApplicationError
    `export_unsupported` (409) with the reason when it cannot be exported."""
    reason = onnx_export_problem(version=version)
    if reason is not None:
        raise ApplicationError(reason, code=EXPORT_UNSUPPORTED, status_code=409)
    models = [version_model(version=version, output=output["name"]) for output in version.outputs]
    try:
        converted = model_to_onnx(
            models,
            threshold=version.threshold,
            name=f"model-{version.machine_id}-v{version.number}",
        )
    except OnnxUnsupported as error:
        logger.info("version %s cannot be exported to ONNX: %s", version.pk, error.reason)
        raise ApplicationError(
            _reason(error.problem), code=EXPORT_UNSUPPORTED, status_code=409
        ) from None
    return converted.SerializeToString()
