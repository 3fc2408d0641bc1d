"""Import torch, MONAI and the training code ahead of the first run.

Importing MONAI takes several seconds (7 s measured on the 2-core CI machine under load); a
worker that takes image jobs may call `warm_up()` once at start so a level-1 run (60 s) does
not spend that on imports. Optional: without it the first run pays the time from its budget.
"""

from __future__ import annotations

import importlib


def warm_up() -> None:
    for module in (
        "torch",
        "monai.networks.nets",
        "monai.losses",
        "monai.metrics",
        "mlmanager.engine.vision.training",
        "mlmanager.engine.vision.model",
    ):
        importlib.import_module(module)
