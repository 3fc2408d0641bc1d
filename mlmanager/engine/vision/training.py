"""`train_vision`: train a level's members one after the other within the budget, measure the
ensemble on the holdout, write the signed model.

Time line of a run with budget B (members share it, one after the other):

    start ── read + split ── member 0 ── member 1 ── … ── 0.98 B ── holdout + write ── B×1.05+2
                             |<- equal share of what is left ->|

Each member gets an equal share of the time left when it starts (so a member that stops
early leaves its time to the next). Inside its share a member trains epoch by epoch; the clock
and the cancel flag are checked before every batch, so it stops within one batch of its
deadline, keeping the weights of its best validation epoch. A member the deadline stops
before its first epoch ended is measured once as it is, so a short budget still gives a model
(a cancel does not wait for that). Training also ends early enough to leave time for the
holdout measurement (estimated from the validation passes); the slack between B and the hard
limit B×1.05+2 absorbs the rest and the write.

Same seed and `max_epochs` give the same weights: the split, the initial weights, the order of
the images and the augmentation all come from seeded generators, torch runs its deterministic
kernels, and the number of epochs does not depend on the clock (unless the budget runs out).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno
import importlib.metadata
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from mlmanager.engine.vision import store
from mlmanager.engine.vision.data import read_image_data, split
from mlmanager.engine.vision.metrics import (
    classification_metrics,
    mask_scores,
    mean_dice,
    segmentation_metrics,
)
from mlmanager.engine.vision.networks import build_network, network_parameters
from mlmanager.engine.vision.spec import (
    HOLDOUT_SHARE,
    LEVELS,
    MAIN_METRIC,
    PATIENCE,
    TASKS,
    VALIDATION_SHARE,
    Member,
    VisionError,
    VisionOutcome,
    VisionProgress,
    VisionSpec,
)

logger = logging.getLogger(__name__)

DISK_FULL_MESSAGE = (
    "The disk holding the models is full, so this model could not be saved. Free space in "
    "the data folder (or ask the administrator to), then train again."
)

# The clock every deadline is read from; tests replace it to run out the budget on purpose.
clock: Callable[[], float] = time.monotonic

# Training ends by this share of the budget; the rest and the hard limit's slack (5 % + 2 s)
# cover the holdout measurement and writing the model.
TRAINING_SHARE = 0.98
# The cancel callback may hit the database: asked at most this often, and after every epoch.
CANCEL_CHECK_S = 0.5
# A progress report during a long epoch (large images, many of them) at most this often.
PROGRESS_EVERY_S = 10.0
BATCH_SIZE = {"classification": 32, "segmentation": 16}
LEARNING_RATE = {"classification": 3e-3, "segmentation": 5e-3}
WEIGHT_DECAY = 1e-4
# The cosine schedule ends at this share of the starting learning rate.
FINAL_LEARNING_RATE_SHARE = 0.02
# Augmentation: small rotations, zooms and shifts for both tasks; flips only for segmentation,
# where the shapes (and most structures in a scan) stay what they are mirrored, while a digit,
# a letter or the side of a chest X-ray does not.
ROTATION_DEGREES = 10.0
ZOOM_SHARE = 0.1
SHIFT_SHARE = 0.08
EVALUATION_BATCH = 128


def train_vision(
    data: Path,
    spec: VisionSpec,
    *,
    workdir: Path,
    artifact_key: bytes,
    on_progress: Callable[[VisionProgress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> VisionOutcome:
    """Train the members of `spec.level` on the image data set `data` (its `data.parquet`).

    Returns a "completed" outcome, or a "cancelled" one holding the members that had finished
    an epoch when `should_cancel` said so (each at its best epoch). Raises VisionError when the
    data cannot train a model or no member trained at all (budget too small, cancelled at
    once). `workdir` receives `model/` with the signed files (see `store`).
    """
    started = clock()
    _check(spec)
    if not Path(data).is_file():
        raise VisionError(
            "The data set's file is no longer there; it may have been deleted.",
            code="dataset_missing",
        )
    run = _Run(
        data_path=Path(data),
        spec=spec,
        workdir=Path(workdir),
        artifact_key=artifact_key,
        on_progress=on_progress,
        should_cancel=should_cancel,
        started=started,
    )
    with _torch_settings():
        return run.execute()


def _check(spec: VisionSpec) -> None:
    budget = spec.time_budget_s
    if not isinstance(budget, int | float) or not math.isfinite(budget) or budget <= 0:
        raise VisionError("The time budget must be a positive number of seconds.")
    if spec.task not in TASKS:
        raise VisionError(f"“{spec.task}” is not an image task.", code="unknown_task")
    if spec.level not in LEVELS:
        raise VisionError(f"There is no level {spec.level}; choose 1 to 5.", code="unknown_level")
    if spec.max_epochs is not None and spec.max_epochs < 1:
        raise VisionError("max_epochs must be at least 1.")


def device() -> torch.device:
    """The GPU when this machine has one torch can use, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_count() -> int:
    """The CPUs this process may run on (a container's or taskset's limit included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def training_threads() -> int:
    """The CPUs left free by the rest of the machine: `cpu_count()` minus the 1-minute load.

    Torch's OpenMP threads wait for each other at every layer; when one of them shares its CPU
    with another busy process, all of them wait. On this 2-core machine, with the test suites
    of other work running, 2 threads trained the level-1 ResNet at 32 images/s and 1 thread at
    159 (at 421 with a lighter load), so a busy machine gets fewer threads. The count is in
    the outcome's reproducibility record (float sums may differ with it in the last bits).
    """
    count = cpu_count()
    try:
        busy = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return count
    return max(1, min(count, count - int(busy + 0.5)))


@contextlib.contextmanager
def _torch_settings() -> Iterator[None]:
    """The free CPUs and deterministic kernels for the run, the caller's settings after it."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(training_threads())
    # warn_only: a kernel without a deterministic version (some on CUDA) warns, not fails.
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


@dataclasses.dataclass
class _Trained:
    """A member that has a model: its network at its best epoch and its record."""

    index: int
    member: Member
    seed: int
    network: nn.Module
    parameters: dict
    epochs: int
    best_epoch: int
    val_metric: float
    train_images: int
    train_s: float

    @property
    def name(self) -> str:
        return f"member-{self.index}"


class _Stop(Exception):
    """Raised between batches when the member's deadline came or a cancel was asked."""


class _Run:
    def __init__(
        self,
        *,
        data_path: Path,
        spec: VisionSpec,
        workdir: Path,
        artifact_key: bytes,
        on_progress: Callable[[VisionProgress], None] | None,
        should_cancel: Callable[[], bool] | None,
        started: float,
    ):
        self.data_path = data_path
        self.spec = spec
        self.level = LEVELS[spec.level]
        self.workdir = workdir
        self.artifact_key = artifact_key
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.started = started
        self.budget = float(spec.time_budget_s)
        self.training_deadline = started + self.budget * TRAINING_SHARE
        self.max_epochs = spec.max_epochs or self.level.max_epochs
        self.device = device()
        self.cancelled = False
        self.last_cancel_check = -math.inf
        self.last_report = -math.inf
        self.curves: dict[str, list[dict]] = {}
        self.evaluation_s_per_image = 0.0

    # --- the run -------------------------------------------------------------------------

    def execute(self) -> VisionOutcome:
        task = self.spec.task
        data = read_image_data(self.data_path, task=task, image_size=self.level.image_size)
        parts = split(data, seed=self.spec.seed)
        # Per channel, from the training images only (the holdout stays unseen).
        train_pixels = data.images[parts.train].astype(np.float64) / 255.0
        self.mean = train_pixels.mean(axis=(0, 2, 3)).tolist()
        self.std = [max(value, 1e-3) for value in train_pixels.std(axis=(0, 2, 3)).tolist()]
        self.images = torch.from_numpy(data.images)
        self.targets = torch.from_numpy(data.targets).long()
        self.data, self.parts = data, parts
        members = self.level.members(task)
        trained: list[_Trained] = []
        for index, member in enumerate(members):
            now = clock()
            if self.cancelled or self._cancel_requested(now, force=True):
                break
            if now >= self.training_deadline:
                logger.info("vision run: no time left for members %s and later", index)
                break
            deadline = now + (self.training_deadline - now) / (len(members) - index)
            result = self._train_member(index, member, deadline)
            if result is not None:
                trained.append(result)
        if not trained:
            if self.cancelled:
                raise VisionError(
                    "Training was cancelled before any network finished a pass over the images, "
                    "so there is no model.",
                    code="cancelled",
                )
            raise VisionError(
                "The time budget ended before any network could learn from the images. Choose a "
                "larger budget or level.",
                code="budget_too_small",
            )
        metrics = self._holdout_metrics(trained)
        try:
            artifact_dir, signatures = store.save_model(
                self.workdir / "model",
                config=self._config(trained),
                states={
                    f"{entry.name}.safetensors": entry.network.state_dict() for entry in trained
                },
                key=self.artifact_key,
            )
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise VisionError(DISK_FULL_MESSAGE, code="disk_full") from exc
        elapsed = clock() - self.started
        self._report(trained[-1].name, trained[-1].epochs, "Model saved.", force=True)
        return VisionOutcome(
            status="cancelled" if self.cancelled else "completed",
            task=task,
            classes=list(data.classes),
            image_size=self.level.image_size,
            channels=data.channels,
            members=[
                {
                    "name": entry.name,
                    "architecture": entry.member.describe(),
                    "seed": entry.seed,
                    "epochs": entry.epochs,
                    "best_epoch": entry.best_epoch,
                    "val_metric": round(entry.val_metric, 6),
                }
                for entry in trained
            ],
            curves=self.curves,
            metrics=metrics,
            metric=MAIN_METRIC[task],
            elapsed_s=round(elapsed, 3),
            artifact_dir=artifact_dir,
            signatures=signatures,
            reproducibility=self._reproducibility(trained, elapsed),
        )

    # --- one member ----------------------------------------------------------------------

    def _train_member(self, index: int, member: Member, deadline: float) -> _Trained | None:
        name = f"member-{index}"
        seed = self.spec.seed + member.seed_offset
        torch.manual_seed(seed)
        parameters = network_parameters(
            member, channels=self.data.channels, classes=len(self.data.classes)
        )
        network = build_network(parameters).to(self.device)
        optimizer = torch.optim.AdamW(
            network.parameters(), lr=LEARNING_RATE[self.spec.task], weight_decay=WEIGHT_DECAY
        )
        loss_function = self._loss_function()
        generator = torch.Generator().manual_seed(seed)
        train_indices = torch.from_numpy(self.parts.train)
        batch_size = min(BATCH_SIZE[self.spec.task], len(train_indices))
        # A last batch of one image would break batch normalisation; it is left out instead.
        batches_per_epoch = max(1, len(train_indices) // batch_size)
        planned_epochs = self.max_epochs
        curve = self.curves.setdefault(name, [])
        best_state: dict | None = None
        best_metric, best_epoch, epochs_done, step = -math.inf, 0, 0, 0
        train_images, member_started = 0, clock()
        self._report(name, 0, f"Training {name} ({member.describe()}).", force=True)
        while epochs_done < self.max_epochs:
            network.train()
            order = train_indices[torch.randperm(len(train_indices), generator=generator)]
            loss_sum, metric_sum, seen = 0.0, 0.0, 0
            stopped = False
            epoch_started = clock()
            for batch in range(batches_per_epoch):
                try:
                    self._check_stop(deadline)
                except _Stop:
                    stopped = True
                    break
                indices = order[batch * batch_size : (batch + 1) * batch_size]
                progress = step / (planned_epochs * batches_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = _cosine(LEARNING_RATE[self.spec.task], progress)
                images, targets = self._batch(indices, generator)
                output = network(images)
                loss = loss_function(output, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                count = len(indices)
                seen += count
                loss_sum += float(loss.detach()) * count
                metric_sum += self._batch_metric(output.detach(), targets) * count
                self._report(
                    name,
                    epochs_done,
                    f"{name}, epoch {epochs_done + 1}: {batch + 1} of {batches_per_epoch} batches",
                )
            train_images += seen
            if stopped and (best_state is not None or seen == 0 or self.cancelled):
                break
            # A finished epoch, or a first one the deadline cut short (measured as it is).
            epochs_done += 1
            evaluation_started = clock()
            val_loss, val_metric = self._evaluate_member(network, self.parts.validation)
            if len(self.parts.validation):
                self.evaluation_s_per_image = max(
                    self.evaluation_s_per_image,
                    (clock() - evaluation_started) / len(self.parts.validation),
                )
            if val_metric is None:  # no validation images: follow the training metric
                val_metric = metric_sum / seen
            curve.append(
                {
                    "epoch": epochs_done,
                    "train_loss": round(loss_sum / seen, 6),
                    "val_loss": None if val_loss is None else round(val_loss, 6),
                    "train_metric": round(metric_sum / seen, 6),
                    "val_metric": round(val_metric, 6),
                }
            )
            if val_metric > best_metric:
                best_metric, best_epoch = val_metric, epochs_done
                best_state = copy.deepcopy(network.state_dict())
            self._report(
                name,
                epochs_done,
                f"{name}, epoch {epochs_done}: validation {MAIN_METRIC[self.spec.task]} "
                f"{val_metric:.3f} (best {best_metric:.3f}, epoch {best_epoch}).",
                force=True,
            )
            if stopped or self._cancel_requested(clock(), force=True):
                break
            if epochs_done - best_epoch >= PATIENCE[self.spec.task][self.spec.level]:
                logger.info("vision %s: early stop after epoch %s", name, epochs_done)
                break
            if self.spec.max_epochs is None:
                # Fit the cosine schedule to the epochs the member's share still allows.
                per_epoch = (clock() - epoch_started) or 1e-9
                affordable = epochs_done + int((deadline - clock()) / per_epoch)
                planned_epochs = max(epochs_done + 1, min(self.max_epochs, affordable))
        if best_state is None:
            return None
        network.load_state_dict(best_state)
        network.eval()
        return _Trained(
            index=index,
            member=member,
            seed=seed,
            network=network,
            parameters=parameters,
            epochs=epochs_done,
            best_epoch=best_epoch,
            val_metric=float(best_metric),
            train_images=train_images,
            train_s=clock() - member_started,
        )

    def _loss_function(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        if self.spec.task == "classification":
            return functional.cross_entropy
        from monai.losses import DiceCELoss

        dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
        return lambda output, masks: dice_ce(output, masks.unsqueeze(1))

    def _batch(
        self, indices: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's images augmented and normalised, and its targets, on the device."""
        images = self.images[indices].float().div_(255.0)
        targets = self.targets[indices]
        if self.spec.task == "segmentation":
            images, masks = augment(images, targets, generator)
            targets = masks if masks is not None else targets
        else:
            images, _none = augment(images, None, generator)
        return self._normalise(images).to(self.device), targets.to(self.device)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=images.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype).view(1, -1, 1, 1)
        return (images - mean) / std

    def _batch_metric(self, output: torch.Tensor, targets: torch.Tensor) -> float:
        predicted = output.argmax(dim=1)
        if self.spec.task == "classification":
            return float((predicted == targets).float().mean())
        dice, _iou = mask_scores(predicted.cpu(), targets.cpu(), len(self.data.classes))
        return mean_dice(dice)

    @torch.no_grad()
    def _probabilities(self, network: nn.Module, indices: np.ndarray) -> torch.Tensor:
        """Softmax outputs (on the CPU) of `network` for the images at `indices`."""
        network.eval()
        outputs = []
        for start in range(0, len(indices), EVALUATION_BATCH):
            chunk = torch.from_numpy(indices[start : start + EVALUATION_BATCH])
            images = self._normalise(self.images[chunk].float().div_(255.0)).to(self.device)
            outputs.append(torch.softmax(network(images).float(), dim=1).cpu())
        return torch.cat(outputs)

    def _evaluate_member(
        self, network: nn.Module, indices: np.ndarray
    ) -> tuple[float | None, float | None]:
        """Loss and main metric on the images at `indices` (None, None without images)."""
        if len(indices) == 0:
            return None, None
        probabilities = self._probabilities(network, indices)
        targets = self.targets[torch.from_numpy(indices)]
        return self._loss_and_metric(probabilities, targets)

    def _loss_and_metric(
        self, probabilities: torch.Tensor, targets: torch.Tensor
    ) -> tuple[float, float]:
        log_probabilities = torch.log(probabilities.clamp_min(1e-8))
        loss = float(functional.nll_loss(log_probabilities, targets))
        predicted = probabilities.argmax(dim=1)
        if self.spec.task == "classification":
            return loss, float((predicted == targets).float().mean())
        dice, _iou = mask_scores(predicted, targets, len(self.data.classes))
        return loss, mean_dice(dice)

    # --- the ensemble on the holdout -------------------------------------------------------

    def _holdout_metrics(self, trained: list[_Trained]) -> dict:
        indices = self.parts.holdout
        if len(indices) == 0:
            return {}
        probabilities = torch.stack(
            [self._probabilities(entry.network, indices) for entry in trained]
        ).mean(dim=0)
        targets = self.targets[torch.from_numpy(indices)]
        predicted = probabilities.argmax(dim=1)
        if self.spec.task == "classification":
            return classification_metrics(
                targets.numpy(), predicted.numpy(), list(self.data.classes)
            )
        dice, iou = mask_scores(predicted, targets, len(self.data.classes))
        return segmentation_metrics(dice, iou, list(self.data.classes))

    # --- records ---------------------------------------------------------------------------

    def _config(self, trained: list[_Trained]) -> dict:
        return {
            "task": self.spec.task,
            "classes": list(self.data.classes),
            "image_size": self.level.image_size,
            "channels": self.data.channels,
            "normalisation": {"mean": self.mean, "std": self.std},
            "members": [
                {
                    "name": entry.name,
                    "file": f"{entry.name}.safetensors",
                    "architecture": entry.member.describe(),
                    "network": entry.parameters,
                    "seed": entry.seed,
                    "best_epoch": entry.best_epoch,
                    "val_metric": round(entry.val_metric, 6),
                }
                for entry in trained
            ],
        }

    def _reproducibility(self, trained: list[_Trained], elapsed: float) -> dict:
        return {
            "seed": self.spec.seed,
            "level": self.spec.level,
            "budget_s": self.budget,
            "max_epochs": self.spec.max_epochs,
            "dataset_sha256": store.file_sha256(self.data_path),
            "image_count": len(self.data),
            "skipped": self.data.skipped[:100],
            "split": {
                "train": len(self.parts.train),
                "validation": len(self.parts.validation),
                "holdout": len(self.parts.holdout),
                "holdout_share": HOLDOUT_SHARE,
                "validation_share": VALIDATION_SHARE,
            },
            "batch_size": BATCH_SIZE[self.spec.task],
            "learning_rate": LEARNING_RATE[self.spec.task],
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "deterministic": True,
            "members": [
                {
                    "name": entry.name,
                    "train_images": entry.train_images,
                    "train_s": round(entry.train_s, 3),
                }
                for entry in trained
            ],
            "elapsed_s": round(elapsed, 3),
            "libraries": library_versions(),
        }

    # --- the clock, the cancel flag, progress ----------------------------------------------

    def _check_stop(self, deadline: float) -> None:
        now = clock()
        if (
            now >= deadline
            or now >= self.training_deadline - self._measurement_estimate()
            or self._cancel_requested(now)
        ):
            raise _Stop

    def _measurement_estimate(self) -> float:
        """Seconds the holdout measurement of every member will take, from the slowest
        validation pass per image seen so far (twice that, to be safe on a busy machine)."""
        members = len(self.level.members(self.spec.task))
        return 2 * self.evaluation_s_per_image * len(self.parts.holdout) * members

    def _cancel_requested(self, now: float, *, force: bool = False) -> bool:
        if self.cancelled:
            return True
        if self.should_cancel is None or (
            not force and now - self.last_cancel_check < CANCEL_CHECK_S
        ):
            return False
        self.last_cancel_check = now
        if self.should_cancel():
            logger.info("vision run cancelled")
            self.cancelled = True
        return self.cancelled

    def _report(self, member: str, epoch: int, message: str, *, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = clock()
        if not force and now - self.last_report < PROGRESS_EVERY_S:
            return
        self.last_report = now
        self.on_progress(
            VisionProgress(
                elapsed_s=round(now - self.started, 3),
                budget_s=self.budget,
                member=member,
                epoch=epoch,
                message=message,
                curves={name: list(points) for name, points in self.curves.items()},
            )
        )


def augment(
    images: torch.Tensor, masks: torch.Tensor | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A random small rotation, zoom and shift per image (and a flip when `masks` are given),
    the same geometric transform applied to each image's mask (nearest neighbour)."""
    count = images.shape[0]
    angles = (torch.rand(count, generator=generator) * 2 - 1) * math.radians(ROTATION_DEGREES)
    zooms = 1 + (torch.rand(count, generator=generator) * 2 - 1) * ZOOM_SHARE
    shifts = (torch.rand(count, 2, generator=generator) * 2 - 1) * SHIFT_SHARE * 2
    cosines, sines = torch.cos(angles) / zooms, torch.sin(angles) / zooms
    theta = torch.stack(
        [
            torch.stack([cosines, -sines, shifts[:, 0]], dim=1),
            torch.stack([sines, cosines, shifts[:, 1]], dim=1),
        ],
        dim=1,
    )
    if masks is not None:
        flips = torch.where(torch.rand(count, 2, generator=generator) < 0.5, -1.0, 1.0)
        theta[:, :, 0] *= flips[:, :1]
        theta[:, :, 1] *= flips[:, 1:]
    grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
    images = functional.grid_sample(
        images, grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    if masks is not None:
        masks = (
            functional.grid_sample(
                masks.unsqueeze(1).float(),
                grid,
                mode="nearest",
                padding_mode="border",
                align_corners=False,
            )
            .squeeze(1)
            .long()
        )
    return images, masks


def _cosine(start: float, progress: float) -> float:
    progress = min(max(progress, 0.0), 1.0)
    floor = start * FINAL_LEARNING_RATE_SHARE
    return floor + (start - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name, distribution in (
        ("torch", "torch"),
        ("monai", "monai"),
        ("safetensors", "safetensors"),
        ("numpy", "numpy"),
        ("pillow", "pillow"),
        ("pyarrow", "pyarrow"),
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(distribution)
    return versions
