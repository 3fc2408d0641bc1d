"""train_vision end to end: outcome, curves, metrics, budget, cancel, determinism."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mlmanager.engine.vision import LEVELS, VisionError, VisionSpec, train_vision
from mlmanager.engine.vision import training as training_module
from mlmanager.engine.vision.testing import ImageRow, write_image_rows

from .conftest import GENEROUS_BUDGET_S, KEY

CURVE_KEYS = {"epoch", "train_loss", "val_loss", "train_metric", "val_metric"}


def test_classification_outcome(digits_run) -> None:
    outcome, progress = digits_run

    assert outcome.status == "completed"
    assert outcome.task == "classification"
    assert outcome.metric == "accuracy"
    assert outcome.classes == [str(digit) for digit in range(10)]
    assert (outcome.image_size, outcome.channels) == (LEVELS[1].image_size, 1)
    [member] = outcome.members
    assert member["name"] == "member-0"
    assert member["architecture"].startswith("ResNet-10")
    assert (member["seed"], member["epochs"]) == (0, 2)
    assert member["best_epoch"] in (1, 2)
    curve = outcome.curves["member-0"]
    assert [point["epoch"] for point in curve] == [1, 2]
    assert all(set(point) == CURVE_KEYS for point in curve)
    assert member["val_metric"] == max(point["val_metric"] for point in curve)
    # Progress: the member's start, each epoch, the save; the last carries both epochs.
    assert progress[-1].curves["member-0"] == curve
    assert progress[-1].budget_s == GENEROUS_BUDGET_S
    assert [report.epoch for report in progress if "validation" in report.message] == [1, 2]


def test_classification_holdout_metrics(digits_run) -> None:
    outcome, _progress = digits_run
    metrics = outcome.metrics
    holdout = outcome.reproducibility["split"]["holdout"]

    assert holdout == 20  # 2 of the 10 images of each digit
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert set(metrics["per_class"]) == set(outcome.classes)
    assert all(
        set(values) == {"precision", "recall", "f1", "support"}
        for values in metrics["per_class"].values()
    )
    assert sum(values["support"] for values in metrics["per_class"].values()) == holdout
    matrix = metrics["confusion_matrix"]["matrix"]
    assert metrics["confusion_matrix"]["labels"] == outcome.classes
    assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)
    assert sum(map(sum, matrix)) == holdout
    assert sum(matrix[index][index] for index in range(10)) / holdout == pytest.approx(
        metrics["accuracy"]
    )


def test_artifacts_are_signed_files(digits_run) -> None:
    outcome, _progress = digits_run
    folder = Path(outcome.artifact_dir)

    assert set(outcome.signatures) == {"model.json", "member-0.safetensors"}
    assert sorted(path.name for path in folder.iterdir()) == [
        "member-0.safetensors",
        "member-0.safetensors.sig",
        "model.json",
        "model.json.sig",
    ]
    for name, signature in outcome.signatures.items():
        assert (folder / f"{name}.sig").read_text() == signature


def test_segmentation_outcome(shapes_run) -> None:
    outcome = shapes_run

    assert outcome.status == "completed"
    assert (outcome.task, outcome.metric) == ("segmentation", "dice")
    assert outcome.classes == ["background", "circle", "square"]
    assert outcome.members[0]["architecture"].startswith("U-Net")
    assert len(outcome.curves["member-0"]) == 2
    assert set(outcome.metrics) == {"dice", "iou", "per_class"}
    assert set(outcome.metrics["per_class"]) == {"background", "circle", "square"}
    for values in outcome.metrics["per_class"].values():
        assert set(values) == {"dice", "iou"}
    assert 0.0 <= outcome.metrics["dice"] <= 1.0
    assert 0.0 <= outcome.metrics["iou"] <= outcome.metrics["dice"] + 1e-9


def test_same_seed_and_epochs_give_same_weights(digits_path: Path, tmp_path: Path) -> None:
    spec = VisionSpec("classification", 1, GENEROUS_BUDGET_S, seed=4, max_epochs=1)
    first = train_vision(digits_path, spec, workdir=tmp_path / "a", artifact_key=KEY)
    second = train_vision(digits_path, spec, workdir=tmp_path / "b", artifact_key=KEY)
    other_seed = train_vision(
        digits_path,
        VisionSpec("classification", 1, GENEROUS_BUDGET_S, seed=5, max_epochs=1),
        workdir=tmp_path / "c",
        artifact_key=KEY,
    )

    weights = "member-0.safetensors"
    assert first.signatures[weights] == second.signatures[weights]
    assert first.metrics == second.metrics
    assert first.curves == second.curves
    assert other_seed.signatures[weights] != first.signatures[weights]


def test_cancel_keeps_each_trained_members_best_epoch(digits_path: Path, tmp_path: Path) -> None:
    epochs_seen: list[int] = []

    def on_progress(progress) -> None:
        if "validation" in progress.message:
            epochs_seen.append(progress.epoch)

    outcome = train_vision(
        digits_path,
        VisionSpec("classification", 2, GENEROUS_BUDGET_S, max_epochs=5),
        workdir=tmp_path,
        artifact_key=KEY,
        on_progress=on_progress,
        should_cancel=lambda: len(epochs_seen) >= 2,
    )

    assert outcome.status == "cancelled"
    # Level 2 has 3 members; the cancel came during the first, after its second epoch.
    [member] = outcome.members
    assert (member["name"], member["epochs"]) == ("member-0", 2)
    assert member["best_epoch"] in (1, 2)
    assert set(outcome.signatures) == {"model.json", "member-0.safetensors"}
    assert outcome.metrics["accuracy"] >= 0.0


def test_cancel_before_any_epoch_is_an_error(digits_path: Path, tmp_path: Path) -> None:
    with pytest.raises(VisionError) as raised:
        train_vision(
            digits_path,
            VisionSpec("classification", 1, GENEROUS_BUDGET_S, max_epochs=2),
            workdir=tmp_path,
            artifact_key=KEY,
            should_cancel=lambda: True,
        )
    assert raised.value.code == "cancelled"
    assert not (tmp_path / "model").exists()


def test_budget_stops_members_between_batches(
    digits_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake clock that moves 0.1 s per reading: the run must stop on its deadline (within one
    batch), give every member of the level its share, and end within the hard limit."""
    ticks = itertools.count()
    monkeypatch.setattr(training_module, "clock", lambda: next(ticks) * 0.1)
    budget = 12.0

    outcome = train_vision(
        digits_path,
        VisionSpec("classification", 2, budget),  # no max_epochs: only the clock stops it
        workdir=tmp_path,
        artifact_key=KEY,
    )

    assert outcome.status == "completed"
    assert [member["name"] for member in outcome.members] == ["member-0", "member-1", "member-2"]
    assert all(member["epochs"] < LEVELS[2].max_epochs for member in outcome.members)
    assert outcome.elapsed_s <= budget * 1.05 + 2


def test_budget_too_small_for_any_batch(digits_path: Path, tmp_path: Path) -> None:
    with pytest.raises(VisionError) as raised:
        train_vision(
            digits_path,
            VisionSpec("classification", 1, time_budget_s=1e-6),
            workdir=tmp_path,
            artifact_key=KEY,
        )
    assert raised.value.code == "budget_too_small"


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (VisionSpec("detection", 1, 60), "unknown_task"),
        (VisionSpec("classification", 9, 60), "unknown_level"),
        (VisionSpec("classification", 1, 0), "invalid_vision_training"),
    ],
)
def test_invalid_specs(spec: VisionSpec, code: str, digits_path: Path, tmp_path: Path) -> None:
    with pytest.raises(VisionError) as raised:
        train_vision(digits_path, spec, workdir=tmp_path, artifact_key=KEY)
    assert raised.value.code == code


def test_missing_dataset(tmp_path: Path) -> None:
    with pytest.raises(VisionError) as raised:
        train_vision(
            tmp_path / "gone.parquet",
            VisionSpec("classification", 1, 60),
            workdir=tmp_path,
            artifact_key=KEY,
        )
    assert raised.value.code == "dataset_missing"


def test_mixed_grey_and_colour_images_and_broken_rows(tmp_path: Path) -> None:
    """Grey and colour images in one set train in colour; a row whose image does not decode
    or has no label is skipped and listed."""
    from PIL import Image

    rows = []
    for index in range(24):
        label = "dark" if index % 2 else "light"
        shade = 30 if label == "dark" else 220
        mode = "RGB" if index % 3 == 0 else "L"
        colour = (shade, shade, shade) if mode == "RGB" else shade
        rows.append(
            ImageRow(
                name=f"{label}/{index:02d}.png",
                image=Image.new(mode, (10 + index, 12), colour),
                label=label,
            )
        )
    rows.append(ImageRow(name="unlabelled.png", image=Image.new("L", (8, 8)), label=None))
    path = write_image_rows(tmp_path / "data.parquet", rows)
    _replace_image_bytes(path, "dark/01.png", b"\x89PNG\r\n\x1a\n truncated")

    outcome = train_vision(
        path,
        VisionSpec("classification", 1, GENEROUS_BUDGET_S, max_epochs=1),
        workdir=tmp_path / "run",
        artifact_key=KEY,
    )

    assert outcome.channels == 3
    assert outcome.classes == ["dark", "light"]
    skipped = {entry["file"]: entry["reason"] for entry in outcome.reproducibility["skipped"]}
    assert skipped["unlabelled.png"] == "no label"
    assert skipped["dark/01.png"].startswith("cannot be decoded")
    assert outcome.reproducibility["image_count"] == 23


def test_too_few_images(tmp_path: Path) -> None:
    from PIL import Image

    rows = [
        ImageRow(name=f"{index}.png", image=Image.new("L", (8, 8)), label=str(index % 2))
        for index in range(5)
    ]
    path = write_image_rows(tmp_path / "data.parquet", rows)

    with pytest.raises(VisionError) as raised:
        train_vision(path, VisionSpec("classification", 1, 60), workdir=tmp_path, artifact_key=KEY)
    assert raised.value.code == "too_few_images"


def _replace_image_bytes(path: Path, name: str, data: bytes) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    images = table.column("image").to_pylist()
    images[table.column("name").to_pylist().index(name)] = data
    table = table.set_column(
        table.column_names.index("image"), "image", pa.array(images, pa.binary())
    )
    pq.write_table(table, path)
