"""Image models: classification (small residual CNNs) and segmentation (U-Nets), trained from
scratch as ensembles on a stored image data set, saved as signed safetensors files.

How a run flows through the modules of this package:

1. `spec` holds what a run is asked (`VisionSpec`) and the levels (`LEVELS`: image size,
   members, epoch cap), what it reports (`VisionProgress`, `VisionOutcome`), the error
   (`VisionError`) and the review thresholds.
2. `training.train_vision` reads the data set's `data.parquet` through `data` (decode,
   resize, seeded stratified split), then trains each member of the level in turn
   (`networks`: MONAI's ResNet and UNet) within its share of the budget, with augmentation,
   early stopping on the validation metric and a cosine schedule, stopping between batches
   at the deadline or on a cancel and keeping each member's best epoch. `metrics` measures
   the ensemble on the holdout; `store` writes `model.json` + `member-<i>.safetensors`, signed.
3. `model.load_vision_model` verifies every file before parsing it and returns a
   `VisionModel`: `predict` (classes, votes, agreement, review flag), `segment` (masks at the
   image's size, areas), `saliency` (Grad-CAM). `overlay` draws a heat map or mask over an
   image.

Importing this package is light (no torch, no MONAI): pages import it for `LEVELS`. The
names that need torch (`train_vision`, `load_vision_model`, `VisionModel`, `warm_up`) load
their module on first use. Only the names below are the package's interface.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlmanager.engine.vision.spec import (
    LEVELS,
    MAIN_METRIC,
    REVIEW_AGREEMENT,
    REVIEW_CONFIDENCE,
    TASKS,
    ImagePrediction,
    Level,
    Member,
    SegmentationPrediction,
    VisionError,
    VisionOutcome,
    VisionProgress,
    VisionSpec,
)

if TYPE_CHECKING:
    from mlmanager.engine.vision.model import VisionModel, load_vision_model
    from mlmanager.engine.vision.overlay import overlay
    from mlmanager.engine.vision.training import train_vision
    from mlmanager.engine.vision.warm import warm_up

# name -> module that defines it, imported when the name is first used.
_LAZY = {
    "train_vision": "mlmanager.engine.vision.training",
    "load_vision_model": "mlmanager.engine.vision.model",
    "VisionModel": "mlmanager.engine.vision.model",
    "overlay": "mlmanager.engine.vision.overlay",
    "warm_up": "mlmanager.engine.vision.warm",
}

__all__ = [
    "LEVELS",
    "MAIN_METRIC",
    "REVIEW_AGREEMENT",
    "REVIEW_CONFIDENCE",
    "TASKS",
    "ImagePrediction",
    "Level",
    "Member",
    "SegmentationPrediction",
    "VisionError",
    "VisionModel",
    "VisionOutcome",
    "VisionProgress",
    "VisionSpec",
    "load_vision_model",
    "overlay",
    "train_vision",
    "warm_up",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
