"""Loading (verified), predicting, segmenting, saliency and overlays of image models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mlmanager.engine.artifacts import ArtifactError
from mlmanager.engine.vision import (
    REVIEW_AGREEMENT,
    REVIEW_CONFIDENCE,
    ImagePrediction,
    SegmentationPrediction,
    VisionError,
    load_vision_model,
    overlay,
)
from mlmanager.engine.vision.model import VisionModel, _LoadedMember

from .conftest import KEY


@pytest.fixture(scope="module")
def digits_model(digits_run) -> VisionModel:
    outcome, _progress = digits_run
    return load_vision_model(outcome.artifact_dir, key=KEY, signatures=outcome.signatures)


@pytest.fixture(scope="module")
def shapes_model(shapes_run) -> VisionModel:
    return load_vision_model(shapes_run.artifact_dir, key=KEY, signatures=shapes_run.signatures)


# --- classification --------------------------------------------------------------------------


def test_predict_one_member(digits_model: VisionModel) -> None:
    [prediction] = digits_model.predict([Image.new("L", (8, 8), 40)])

    assert isinstance(prediction, ImagePrediction)
    assert digits_model.task == "classification"
    assert digits_model.classes == [str(digit) for digit in range(10)]
    assert [member["name"] for member in digits_model.members] == ["member-0"]
    assert set(prediction.probabilities) == set(digits_model.classes)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert prediction.confidence == prediction.probabilities[prediction.label]
    assert prediction.votes == [
        {"member": "member-0", "label": prediction.label, "confidence": prediction.confidence}
    ]
    assert prediction.agreement == 1.0
    assert prediction.needs_review == (prediction.confidence < REVIEW_CONFIDENCE)


def test_predict_agrees_with_the_holdout_measurement(digits_run, digits_model, digits_path) -> None:
    """Predicting the holdout images one by one from their stored PNGs gives the accuracy
    training measured: the same pre-processing (8×8 grey → 32×32, normalised) in both paths."""
    import io

    import pyarrow.parquet as pq

    from mlmanager.engine.vision.data import read_image_data, split

    outcome, _progress = digits_run
    holdout = split(
        read_image_data(digits_path, task="classification", image_size=outcome.image_size),
        seed=0,
    ).holdout
    table = pq.read_table(digits_path, columns=["image", "label"]).take(holdout)
    images = [Image.open(io.BytesIO(value.as_py())) for value in table.column("image")]

    predictions = digits_model.predict(images)

    labels = table.column("label").to_pylist()
    correct = sum(p.label == label for p, label in zip(predictions, labels, strict=True))
    assert correct / len(labels) == pytest.approx(outcome.metrics["accuracy"])


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (30, 20), (10, 200, 30)),
        Image.new("RGBA", (16, 16), (255, 255, 255, 0)),
        Image.new("P", (9, 9)),
        Image.new("1", (12, 12), 1),
        Image.new("I;16", (20, 20), 3000),
        Image.new("F", (5, 7), 0.5),
        Image.new("LA", (8, 8)),
        Image.new("CMYK", (8, 8)),
    ],
    ids=lambda image: image.mode,
)
def test_predict_any_image_mode(digits_model: VisionModel, image: Image.Image) -> None:
    [prediction] = digits_model.predict([image])

    assert prediction.label in digits_model.classes


def test_ensemble_consensus_votes_and_review() -> None:
    """Three members: two vote "cat" (0.6, 0.7), one "dog" (0.9)."""
    model = _fixed_model([[0.6, 0.4], [0.7, 0.3], [0.1, 0.9]], classes=["cat", "dog"])

    [prediction] = model.predict([Image.new("L", (4, 4))])

    # The consensus is the mean probability: dog 0.5333 beats cat 0.4667 although two of
    # three members voted cat, so only one member agrees with it.
    assert prediction.label == "dog"
    assert prediction.probabilities == pytest.approx({"cat": 1.4 / 3, "dog": 1.6 / 3}, abs=1e-5)
    assert prediction.confidence == pytest.approx(1.6 / 3, abs=1e-5)
    assert [vote["label"] for vote in prediction.votes] == ["cat", "cat", "dog"]
    assert [vote["member"] for vote in prediction.votes] == ["member-0", "member-1", "member-2"]
    assert prediction.votes[2]["confidence"] == pytest.approx(0.9, abs=1e-5)
    assert prediction.agreement == pytest.approx(1 / 3, abs=1e-5)
    assert prediction.needs_review


def test_ensemble_agreeing_and_confident_needs_no_review() -> None:
    model = _fixed_model([[0.95, 0.05], [0.9, 0.1], [0.97, 0.03]], classes=["cat", "dog"])

    [prediction] = model.predict([Image.new("L", (4, 4))])

    assert (prediction.label, prediction.agreement) == ("cat", 1.0)
    assert prediction.confidence > REVIEW_CONFIDENCE
    assert not prediction.needs_review


def test_two_of_three_agreeing_passes_the_agreement_threshold() -> None:
    model = _fixed_model([[0.95, 0.05], [0.99, 0.01], [0.4, 0.6]], classes=["cat", "dog"])

    [prediction] = model.predict([Image.new("L", (4, 4))])

    assert prediction.agreement == pytest.approx(2 / 3, abs=1e-5)
    assert prediction.agreement >= REVIEW_AGREEMENT
    assert prediction.confidence < REVIEW_CONFIDENCE  # (0.95 + 0.99 + 0.4) / 3 = 0.78
    assert prediction.needs_review


def test_saliency_shape_and_range(digits_model: VisionModel) -> None:
    image = Image.new("L", (40, 24))
    image.paste(255, (10, 5, 20, 20))

    heat = digits_model.saliency(image)

    assert heat.shape == (24, 40)
    assert heat.dtype == np.float32
    assert float(heat.min()) >= 0.0 and float(heat.max()) <= 1.0
    # Saliency does not change what predict returns (its hooks live on a copy).
    assert digits_model.predict([image]) == digits_model.predict([image])


def test_segmentation_model_refuses_classification(shapes_model: VisionModel) -> None:
    with pytest.raises(VisionError) as raised:
        shapes_model.predict([Image.new("L", (8, 8))])
    assert raised.value.code == "wrong_task"
    with pytest.raises(VisionError):
        shapes_model.saliency(Image.new("L", (8, 8)))


# --- segmentation ----------------------------------------------------------------------------


def test_segment_at_the_images_own_size(shapes_model: VisionModel) -> None:
    images = [Image.new("L", (50, 40), 60), Image.new("RGB", (17, 33), (200, 10, 10))]

    predictions = shapes_model.segment(images)

    assert len(predictions) == 2
    for prediction, image in zip(predictions, images, strict=True):
        assert isinstance(prediction, SegmentationPrediction)
        assert prediction.mask.shape == (image.height, image.width)
        assert prediction.mask.dtype == np.uint8
        assert int(prediction.mask.max()) < 3
        assert set(prediction.areas) == {"background", "circle", "square"}
        assert sum(prediction.areas.values()) == pytest.approx(1.0, abs=1e-4)
        assert 0.0 <= prediction.confidence <= 1.0
        assert prediction.agreement == 1.0  # one member
        assert [vote["member"] for vote in prediction.votes] == ["member-0"]
        assert prediction.needs_review == (prediction.confidence < REVIEW_CONFIDENCE)


def test_segmentation_agreement_is_the_pixel_share() -> None:
    """Two members: one says class 1 everywhere, the other class 1 on the left half only:
    all agree on half the pixels, half of them on the other half."""
    everywhere = torch.zeros(1, 2, 4, 4)
    everywhere[:, 1] = 5.0
    left_half = torch.zeros(1, 2, 4, 4)
    left_half[:, 1, :, :2] = 5.0
    left_half[:, 0, :, 2:] = 3.0
    model = _model_of(
        [_Constant(everywhere), _Constant(left_half)], task="segmentation", classes=["bg", "fg"]
    )

    [prediction] = model.segment([Image.new("L", (4, 4))])

    assert prediction.mask.tolist() == [[1, 1, 1, 1]] * 4
    assert prediction.areas == {"bg": 0.0, "fg": 1.0}
    assert prediction.agreement == pytest.approx(0.75)
    # Right half: fg at (0.993 + 0.047) / 2 = 0.52, so the mean confidence is 0.76.
    assert prediction.confidence == pytest.approx(0.757, abs=1e-3)
    assert prediction.needs_review
    assert prediction.votes[1]["areas"] == {"bg": 0.5, "fg": 0.5}


# --- overlays --------------------------------------------------------------------------------


def test_overlay_heat_and_mask() -> None:
    image = Image.new("L", (20, 10), 100)
    heat = np.zeros((5, 10), dtype=np.float32)
    heat[:, 5:] = 1.0
    mask = np.zeros((10, 20), dtype=np.uint8)
    mask[:, :10] = 2

    heated = overlay(image, heat, kind="heat")
    masked = overlay(image, mask, kind="mask")

    assert (heated.mode, heated.size) == ("RGB", (20, 10))
    assert heated.getpixel((0, 0)) == (100, 100, 100)  # no heat: the image as it was
    assert heated.getpixel((19, 9)) != (100, 100, 100)
    assert (masked.mode, masked.size) == ("RGB", (20, 10))
    assert masked.getpixel((19, 0)) == (100, 100, 100)  # background: untouched
    assert masked.getpixel((0, 0)) != (100, 100, 100)
    with pytest.raises(ValueError):
        overlay(image, mask, kind="outline")


# --- signatures ------------------------------------------------------------------------------


@pytest.fixture
def model_copy(digits_run, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    outcome, _progress = digits_run
    folder = tmp_path / "model"
    shutil.copytree(outcome.artifact_dir, folder)
    return folder, dict(outcome.signatures)


@pytest.mark.parametrize("file_name", ["model.json", "member-0.safetensors"])
def test_tampered_file_is_refused(model_copy, file_name: str) -> None:
    folder, signatures = model_copy
    data = bytearray((folder / file_name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / file_name).write_bytes(bytes(data))

    with pytest.raises(ArtifactError):
        load_vision_model(folder, key=KEY, signatures=signatures)
    with pytest.raises(ArtifactError):
        load_vision_model(folder, key=KEY)


def test_wrong_key_recorded_signatures_and_missing_files_are_refused(model_copy) -> None:
    folder, signatures = model_copy

    with pytest.raises(ArtifactError):
        load_vision_model(folder, key=b"another-key", signatures=signatures)
    with pytest.raises(ArtifactError):
        load_vision_model(folder, key=KEY, signatures={**signatures, "model.json": "0" * 64})
    with pytest.raises(ArtifactError):
        load_vision_model(folder, key=KEY, signatures={"model.json": signatures["model.json"]})
    (folder / "member-0.safetensors.sig").unlink()
    with pytest.raises(ArtifactError):
        load_vision_model(folder, key=KEY)


def test_weights_of_another_model_are_refused(model_copy, shapes_run) -> None:
    """A correctly signed weights file from another model, with its .sig, does not match the
    signature recorded in model.json."""
    folder, _signatures = model_copy
    for suffix in ("", ".sig"):
        shutil.copy(
            Path(shapes_run.artifact_dir) / f"member-0.safetensors{suffix}",
            folder / f"member-0.safetensors{suffix}",
        )

    with pytest.raises(ArtifactError):
        load_vision_model(folder, key=KEY)


# --- helpers ---------------------------------------------------------------------------------


class _Constant(nn.Module):
    """A member that outputs fixed logits whatever the image."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(images.shape[0], *self.logits.shape[1:])


def _fixed_model(probabilities: list[list[float]], *, classes: list[str]) -> VisionModel:
    members = [_Constant(torch.log(torch.tensor([row]))) for row in probabilities]
    return _model_of(members, task="classification", classes=classes)


def _model_of(networks: list[nn.Module], *, task: str, classes: list[str]) -> VisionModel:
    config = {
        "task": task,
        "classes": classes,
        "image_size": 4,
        "channels": 1,
        "normalisation": {"mean": [0.5], "std": [0.25]},
    }
    members = [
        _LoadedMember(name=f"member-{index}", architecture="fixed", network=network, parameters={})
        for index, network in enumerate(networks)
    ]
    return VisionModel(config, members)
