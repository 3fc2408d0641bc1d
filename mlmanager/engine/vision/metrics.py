"""Holdout and per-epoch metrics: accuracy and per-class precision/recall/F1 with the confusion
matrix (numpy), Dice and IoU per class (MONAI's `compute_dice` / `compute_iou`)."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional


def classification_metrics(truth: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict:
    """`accuracy`, `per_class` {label: precision, recall, f1, support} and `confusion_matrix`
    (rows: true class, columns: predicted class, both in `classes` order)."""
    count = len(classes)
    confusion = np.bincount(truth * count + predicted, minlength=count * count).reshape(
        count, count
    )
    per_class = {}
    for index, label in enumerate(classes):
        true_positive = int(confusion[index, index])
        predicted_total = int(confusion[:, index].sum())
        support = int(confusion[index].sum())
        precision = true_positive / predicted_total if predicted_total else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f1": round(f1, 6),
            "support": support,
        }
    return {
        "accuracy": round(float((truth == predicted).mean()) if len(truth) else 0.0, 6),
        "per_class": per_class,
        "confusion_matrix": {"labels": list(classes), "matrix": confusion.tolist()},
    }


def mask_scores(predicted: torch.Tensor, truth: torch.Tensor, class_count: int) -> tuple:
    """Per image and class Dice and IoU (B×K each) of two B×H×W label maps; NaN where the
    class is absent from the image's true mask (MONAI's `ignore_empty`: such an image does not
    count for that class)."""
    from monai.metrics import compute_dice, compute_iou

    predicted_one_hot = _one_hot(predicted, class_count)
    truth_one_hot = _one_hot(truth, class_count)
    dice = compute_dice(
        predicted_one_hot, truth_one_hot, include_background=True, ignore_empty=True
    )
    iou = compute_iou(predicted_one_hot, truth_one_hot, include_background=True, ignore_empty=True)
    return dice, iou


def segmentation_metrics(dice: torch.Tensor, iou: torch.Tensor, classes: list[str]) -> dict:
    """`dice` and `iou` (mean over the foreground classes of each class's mean over the images
    that contain it) and `per_class` {name: {dice, iou}} from `mask_scores` rows of all images."""
    dice_per_class = _nan_mean(dice)
    iou_per_class = _nan_mean(iou)
    return {
        "dice": _foreground_mean(dice_per_class),
        "iou": _foreground_mean(iou_per_class),
        "per_class": {
            name: {"dice": _rounded(dice_per_class[index]), "iou": _rounded(iou_per_class[index])}
            for index, name in enumerate(classes)
        },
    }


def mean_dice(dice: torch.Tensor) -> float:
    """The main segmentation metric of `mask_scores` rows (0.0 when nothing counts)."""
    value = _foreground_mean(_nan_mean(dice))
    return 0.0 if value is None else value


def _one_hot(labels: torch.Tensor, class_count: int) -> torch.Tensor:
    return functional.one_hot(labels.long(), class_count).permute(0, 3, 1, 2).float()


def _nan_mean(scores: torch.Tensor) -> list[float | None]:
    values = scores.detach().cpu().double().numpy()
    means: list[float | None] = []
    for column in values.T:
        kept = column[~np.isnan(column)]
        means.append(float(kept.mean()) if len(kept) else None)
    return means


def _foreground_mean(per_class: list[float | None]) -> float | None:
    kept = [value for value in per_class[1:] if value is not None]
    return round(float(np.mean(kept)), 6) if kept else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
