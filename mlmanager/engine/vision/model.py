"""A trained image model: load it (verified), predict classes, segment, explain.

The members run on the CPU in evaluation mode; a prediction averages their probabilities
(the consensus) and reports each member's vote, how many agree, and whether a person should
look (`spec.REVIEW_AGREEMENT`, `spec.REVIEW_CONFIDENCE`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional

from mlmanager.engine.artifacts import ArtifactError
from mlmanager.engine.vision.data import to_array
from mlmanager.engine.vision.networks import GRADCAM_LAYER, build_network
from mlmanager.engine.vision.spec import (
    REVIEW_AGREEMENT,
    REVIEW_CONFIDENCE,
    ImagePrediction,
    SegmentationPrediction,
    VisionError,
)
from mlmanager.engine.vision.store import load_model_files

# Images per forward pass when many are predicted at once (a batch file).
PREDICT_BATCH = 64
# Up to this many images run on one CPU thread. A small image's layers are too small to share
# out, and torch's threads wait for each other at every layer: on the 2-core machine with
# other work running, one level-2 prediction (3 members) took 22 ms on 1 thread, 365 ms on 2.
SINGLE_THREAD_IMAGES = 8


@dataclasses.dataclass
class _LoadedMember:
    name: str
    architecture: str
    network: nn.Module
    parameters: dict
    saliency_network: Any = None  # a copy with MONAI's Grad-CAM hooks, made on first use


class VisionModel:
    """The members of a trained model and what they need to read an image."""

    def __init__(self, config: dict, members: list[_LoadedMember]):
        self.config = config
        self.task: str = config["task"]
        self.classes: list[str] = list(config["classes"])
        self.image_size: int = int(config["image_size"])
        self.channels: int = int(config["channels"])
        normalisation = config["normalisation"]
        self._mean = torch.tensor(normalisation["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        self._std = torch.tensor(normalisation["std"], dtype=torch.float32).view(1, -1, 1, 1)
        self._members = members

    @property
    def members(self) -> list[dict]:
        return [
            {"name": member.name, "architecture": member.architecture} for member in self._members
        ]

    # --- classification --------------------------------------------------------------------

    def predict(self, images: list[Image.Image]) -> list[ImagePrediction]:
        """One prediction per image (classification models)."""
        self._require("classification")
        predictions: list[ImagePrediction] = []
        for start in range(0, len(images), PREDICT_BATCH):
            batch = self._inputs(images[start : start + PREDICT_BATCH])
            with torch.inference_mode(), _threads_for(len(batch)):
                # members × images × classes
                member_probabilities = torch.stack(
                    [torch.softmax(member.network(batch), dim=1) for member in self._members]
                ).numpy()
            for position in range(batch.shape[0]):
                predictions.append(self._classification(member_probabilities[:, position]))
        return predictions

    def _classification(self, member_probabilities: np.ndarray) -> ImagePrediction:
        consensus = member_probabilities.mean(axis=0)
        winner = int(consensus.argmax())
        votes = []
        for member, probabilities in zip(self._members, member_probabilities, strict=True):
            choice = int(probabilities.argmax())
            votes.append(
                {
                    "member": member.name,
                    "label": self.classes[choice],
                    "confidence": round(float(probabilities[choice]), 6),
                }
            )
        agreeing = sum(vote["label"] == self.classes[winner] for vote in votes)
        agreement = agreeing / len(votes)
        confidence = float(consensus[winner])
        return ImagePrediction(
            label=self.classes[winner],
            confidence=round(confidence, 6),
            probabilities={
                label: round(float(value), 6)
                for label, value in zip(self.classes, consensus, strict=True)
            },
            votes=votes,
            agreement=round(agreement, 6),
            needs_review=agreement < REVIEW_AGREEMENT or confidence < REVIEW_CONFIDENCE,
        )

    def saliency(self, image: Image.Image) -> np.ndarray:
        """Where the models looked: Grad-CAM (MONAI) on each member's last residual stage for
        the consensus class, averaged over the members, scaled to [0, 1], float32 H×W at the
        image's own size."""
        self._require("classification")
        from monai.visualize import GradCAM

        label = self.classes.index(self.predict([image])[0].label)
        batch = self._inputs([image])
        maps = []
        for member in self._members:
            if member.saliency_network is None:
                # A copy, so the hooks Grad-CAM registers never slow down `predict`.
                member.saliency_network = GradCAM(
                    nn_module=copy.deepcopy(member.network), target_layers=GRADCAM_LAYER
                )
            with torch.enable_grad(), _threads_for(1):
                heat = member.saliency_network(
                    x=batch.clone().requires_grad_(True), class_idx=label
                )
            maps.append(heat.detach()[0, 0].float())
        heat = torch.stack(maps).mean(dim=0).numpy().astype(np.float32)
        resized = Image.fromarray(heat, mode="F").resize(image.size, Image.Resampling.BILINEAR)
        values = np.asarray(resized, dtype=np.float32)
        low, high = float(values.min()), float(values.max())
        if high - low < 1e-12:
            return np.zeros((image.height, image.width), dtype=np.float32)
        return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)

    # --- segmentation ----------------------------------------------------------------------

    def segment(self, images: list[Image.Image]) -> list[SegmentationPrediction]:
        """A mask per image at the image's own size (segmentation models)."""
        self._require("segmentation")
        results = []
        for image in images:
            batch = self._inputs([image])
            with torch.inference_mode(), _threads_for(1):
                # members × classes × S × S
                member_probabilities = torch.stack(
                    [torch.softmax(member.network(batch), dim=1)[0] for member in self._members]
                )
                consensus = member_probabilities.mean(dim=0)
                # The probabilities, not the labels, are resized: smoother edges at any size.
                full = functional.interpolate(
                    consensus.unsqueeze(0),
                    size=(image.height, image.width),
                    mode="bilinear",
                    align_corners=False,
                )[0]
            results.append(self._segmentation(member_probabilities, consensus, full))
        return results

    def _segmentation(
        self, member_probabilities: torch.Tensor, consensus: torch.Tensor, full: torch.Tensor
    ) -> SegmentationPrediction:
        class_count = len(self.classes)
        top, labels = full.max(dim=0)
        mask = labels.numpy().astype(np.uint8)
        areas_counts = np.bincount(mask.ravel(), minlength=class_count)
        areas = {
            name: round(float(count) / mask.size, 6)
            for name, count in zip(self.classes, areas_counts, strict=True)
        }
        consensus_labels = consensus.argmax(dim=0)
        member_labels = member_probabilities.argmax(dim=1)  # members × S × S
        agreement = float((member_labels == consensus_labels).float().mean())
        votes = []
        for member, labels_of_member, probabilities in zip(
            self._members, member_labels, member_probabilities, strict=True
        ):
            counts = torch.bincount(labels_of_member.ravel(), minlength=class_count)
            votes.append(
                {
                    "member": member.name,
                    "areas": {
                        name: round(float(count) / labels_of_member.numel(), 6)
                        for name, count in zip(self.classes, counts.tolist(), strict=True)
                    },
                    "confidence": round(float(probabilities.max(dim=0).values.mean()), 6),
                }
            )
        confidence = float(top.mean())
        return SegmentationPrediction(
            mask=mask,
            areas=areas,
            confidence=round(confidence, 6),
            votes=votes,
            agreement=round(agreement, 6),
            needs_review=agreement < REVIEW_AGREEMENT or confidence < REVIEW_CONFIDENCE,
        )

    # --- shared ----------------------------------------------------------------------------

    def _inputs(self, images: list[Image.Image]) -> torch.Tensor:
        arrays = np.stack([to_array(image, self.channels, self.image_size) for image in images])
        batch = torch.from_numpy(arrays).float().div_(255.0)
        return (batch - self._mean) / self._std

    def _require(self, task: str) -> None:
        if self.task != task:
            raise VisionError(
                f"This is a {self.task} model; it cannot do {task}.", code="wrong_task"
            )


@contextlib.contextmanager
def _threads_for(image_count: int) -> Iterator[None]:
    """One torch thread while a few images run (see SINGLE_THREAD_IMAGES), then as before."""
    threads = torch.get_num_threads()
    if image_count > SINGLE_THREAD_IMAGES or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load_vision_model(
    artifact_dir: Path, *, key: bytes, signatures: dict[str, str] | None = None
) -> VisionModel:
    """The model in `artifact_dir` once every file matches its signature (and `signatures`,
    the ones recorded at training, when given). Raises ArtifactError otherwise."""
    config, states = load_model_files(Path(artifact_dir), key=key, signatures=signatures)
    try:
        members = []
        for entry in config["members"]:
            network = build_network(entry["network"])
            network.load_state_dict(states[entry["file"]], strict=True)
            network.eval()
            members.append(
                _LoadedMember(
                    name=str(entry["name"]),
                    architecture=str(entry.get("architecture", "")),
                    network=network,
                    parameters=entry["network"],
                )
            )
        model = VisionModel(config, members)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ArtifactError("The saved model does not fit its description.") from exc
    return model
