"""What an image training run is asked to do, the levels it may be asked at, what it reports
back, and the error it raises. Plain Python: pages import this module (through the package)
to show the levels, so it must not load torch."""

from __future__ import annotations

import dataclasses
from typing import Any

TASKS = ("classification", "segmentation")
# The tabular levels' budgets (engine.training.spec.LEVEL_BUDGET_S, a test keeps them equal):
# copied, because importing the tabular package loads pandas, and pages import this module.
LEVEL_BUDGET_S = {1: 60, 2: 300, 3: 900, 4: 3600, 5: 14400}
# The main metric per task, the one early stopping and the pages follow.
MAIN_METRIC = {"classification": "accuracy", "segmentation": "dice"}

# Share of the images kept aside to measure the final model (never trained on, never used to
# stop early), and share of the rest used to stop early and pick each member's best epoch.
HOLDOUT_SHARE = 0.2
VALIDATION_SHARE = 0.15
# Epochs without a better validation metric before a member stops, per task and level. The
# Dice of a U-Net on few images creeps up with long flat stretches (on the shapes at level 1
# the best epoch came 8-12 epochs after a previous best), accuracy moves in fewer, larger steps.
PATIENCE = {
    "classification": {1: 4, 2: 6, 3: 8, 4: 10, 5: 12},
    "segmentation": {1: 15, 2: 15, 3: 20, 4: 20, 5: 25},
}

# A prediction goes to review when fewer members than this share vote for the consensus: with
# 3 or 5 members, one dissenting member (0.67 / 0.8 agreement) is still accepted, two dissenting
# (0.33 / 0.6) are not. A single member always agrees with itself (1.0), so for
# level 1 only the confidence flags a case.
REVIEW_AGREEMENT = 0.65
# ... or when the consensus probability of the predicted class is below this. On the digits
# holdout at level 1 (2 seeds, 718 images), the 22 predictions under 0.8 were wrong 6 times
# (27 %), the 696 above it twice (1 in 350): a reviewer sees 3 % of the images, holding 6 of
# the 8 errors.
REVIEW_CONFIDENCE = 0.8


@dataclasses.dataclass(frozen=True)
class Member:
    """One network of a level's ensemble.

    `architecture` is "resnet" (classification: MONAI's 2-D ResNet with basic blocks, one per
    stage, `width` channels in the first stage, doubling at each of the 4 stages) or "unet"
    (segmentation: MONAI's UNet with `depth` resolution levels, `width` channels at the top,
    doubling per level, one residual unit per level). `seed_offset` is added to the run's seed,
    so members of one run start from different weights and see the images in another order.
    """

    architecture: str
    width: int
    depth: int
    seed_offset: int

    def describe(self) -> str:
        if self.architecture == "resnet":
            widths = "-".join(str(self.width * 2**stage) for stage in range(4))
            return f"ResNet-10 (basic blocks, channels {widths})"
        widths = "-".join(str(self.width * 2**level) for level in range(self.depth))
        return f"U-Net ({self.depth} levels, channels {widths}, residual units)"


@dataclasses.dataclass(frozen=True)
class Level:
    """How much a level trains: the square size images are resized to, the members of the
    ensemble per task, and the most epochs a member may run (early stopping usually ends it
    sooner). All members share the level's time budget."""

    number: int
    budget_s: float
    image_size: int
    max_epochs: int
    classification: tuple[Member, ...]
    segmentation: tuple[Member, ...]

    def members(self, task: str) -> tuple[Member, ...]:
        return self.classification if task == "classification" else self.segmentation

    def describe(self) -> dict[str, Any]:
        """The level as pages and the README show it (JSON-friendly)."""
        return {
            "level": self.number,
            "budget_s": self.budget_s,
            "image_size": self.image_size,
            "max_epochs": self.max_epochs,
            "classification": [member.describe() for member in self.classification],
            "segmentation": [member.describe() for member in self.segmentation],
        }


def _members(architecture: str, widths: tuple[int, ...], depth: int) -> tuple[Member, ...]:
    return tuple(
        Member(architecture=architecture, width=width, depth=depth, seed_offset=index)
        for index, width in enumerate(widths)
    )


# Level 1 is one small network trained for a minute on the CPU: it reaches 0.97+ accuracy on
# the 8×8 digits (upscaled to 32×32) and 0.90+ Dice on the generated shapes (bench/images.py).
# Higher levels add members (seeds and widths), pixels and epochs; at 4 and 5 the members are
# meant for a GPU worker, on the CPU they share the budget and stop early.
LEVELS: dict[int, Level] = {
    1: Level(
        1, LEVEL_BUDGET_S[1], 32, 80, _members("resnet", (16,), 0), _members("unet", (16,), 4)
    ),
    2: Level(
        2,
        LEVEL_BUDGET_S[2],
        48,
        100,
        _members("resnet", (16, 16, 24), 0),
        _members("unet", (16, 16, 24), 4),
    ),
    3: Level(
        3,
        LEVEL_BUDGET_S[3],
        64,
        120,
        _members("resnet", (16, 24, 32), 0),
        _members("unet", (16, 24, 32), 5),
    ),
    4: Level(
        4,
        LEVEL_BUDGET_S[4],
        96,
        150,
        _members("resnet", (16, 24, 32, 32, 48), 0),
        _members("unet", (16, 24, 32, 32, 48), 5),
    ),
    5: Level(
        5,
        LEVEL_BUDGET_S[5],
        128,
        200,
        _members("resnet", (24, 32, 32, 48, 64), 0),
        _members("unet", (24, 32, 32, 48, 64), 5),
    ),
}


class VisionError(Exception):
    """A run that cannot go on, with a message a non-programmer understands; `code` is stable
    for programs."""

    def __init__(self, message: str, *, code: str = "invalid_vision_training"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclasses.dataclass(frozen=True)
class VisionSpec:
    task: str  # "classification" | "segmentation"
    level: int  # 1..5, see LEVELS
    time_budget_s: float
    seed: int = 0
    # Same seed + same max_epochs -> same weights (the clock then only stops a run that would
    # exceed its budget, which a test's budget never does).
    max_epochs: int | None = None


@dataclasses.dataclass
class VisionProgress:
    elapsed_s: float
    budget_s: float
    member: str  # the member training now ("member-0", ...)
    epoch: int  # its epoch just finished (0 before the first)
    message: str
    # {member name: [{"epoch", "train_loss", "val_loss", "train_metric", "val_metric"}]}
    curves: dict[str, list[dict]]


@dataclasses.dataclass
class VisionOutcome:
    status: str  # "completed" | "cancelled"
    task: str
    classes: list[str]  # index order; segmentation: the mask classes, background first
    image_size: int
    channels: int
    members: list[dict]  # {"name", "architecture", "seed", "epochs", "best_epoch", "val_metric"}
    curves: dict[str, list[dict]]
    metrics: dict  # holdout metrics of the ensemble
    metric: str  # "accuracy" | "dice"
    elapsed_s: float
    artifact_dir: Any  # pathlib.Path
    signatures: dict[str, str]  # file name in artifact_dir -> hex HMAC-SHA256
    reproducibility: dict


@dataclasses.dataclass
class ImagePrediction:
    label: str
    confidence: float  # the consensus (mean) probability of `label`
    probabilities: dict[str, float]  # mean over members
    votes: list[dict]  # [{"member", "label", "confidence"}]
    agreement: float  # share of members voting for `label`
    needs_review: bool


@dataclasses.dataclass
class SegmentationPrediction:
    mask: Any  # numpy uint8 HxW at the image's own size, class indices
    areas: dict[str, float]  # class name -> share of the pixels
    confidence: float  # mean over pixels of the consensus' top probability
    votes: list[dict]  # [{"member", "areas", "confidence"}]
    agreement: float  # mean share of members agreeing with the consensus, over pixels
    needs_review: bool
