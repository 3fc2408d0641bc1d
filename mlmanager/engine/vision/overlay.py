"""Draw a saliency heat map or a segmentation mask over an image (Pillow, numpy and a
matplotlib colour map; no torch)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mlmanager.engine.vision.data import to_mode

HEAT_COLOURMAP = "turbo"
# How much of the heat colour shows where the heat is 1 (it fades to none at 0, so the parts
# the model ignored stay readable).
HEAT_OPACITY = 0.6
MASK_OPACITY = 0.5
# Mask class colours (RGB), class 1 first; background (0) is left uncoloured. Tableau's 10,
# which stay apart for the common colour-vision deficiencies.
MASK_COLOURS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


def overlay(image: Image.Image, heat_or_mask: np.ndarray, *, kind: str = "heat") -> Image.Image:
    """An RGB copy of `image` with `heat_or_mask` drawn over it.

    kind="heat": values in [0, 1] (H×W, e.g. `VisionModel.saliency`) as a colour map whose
    opacity follows the value. kind="mask": class indices (uint8 H×W, e.g. a predicted or a
    stored mask), each class in its colour, background untouched. A map of another size than
    the image is resized to it (bilinear for heat, nearest for a mask).
    """
    if kind not in ("heat", "mask"):
        raise ValueError(f"kind must be 'heat' or 'mask', not {kind!r}")
    base = np.asarray(to_mode(image, 3), dtype=np.float32)
    height, width = base.shape[:2]
    values = np.asarray(heat_or_mask)
    if values.ndim != 2:
        raise ValueError("the heat map or mask must be a 2-D array")
    if kind == "heat":
        heat = np.nan_to_num(values.astype(np.float32), nan=0.0)
        if heat.shape != (height, width):
            heat = np.asarray(
                Image.fromarray(heat, mode="F").resize((width, height), Image.Resampling.BILINEAR)
            )
        heat = np.clip(heat, 0.0, 1.0)
        from matplotlib import colormaps

        colours = colormaps[HEAT_COLOURMAP](heat)[..., :3].astype(np.float32) * 255.0
        alpha = (HEAT_OPACITY * heat)[..., None]
    else:
        mask = values.astype(np.uint8)
        if mask.shape != (height, width):
            mask = np.asarray(
                Image.fromarray(mask, mode="L").resize((width, height), Image.Resampling.NEAREST)
            )
        palette = np.array([(0, 0, 0), *MASK_COLOURS], dtype=np.float32)
        # Classes beyond the palette reuse its colours in turn.
        colour_index = np.where(mask == 0, 0, (mask.astype(np.int64) - 1) % len(MASK_COLOURS) + 1)
        colours = palette[colour_index]
        alpha = np.where(mask == 0, 0.0, MASK_OPACITY).astype(np.float32)[..., None]
    blended = base * (1 - alpha) + colours * alpha
    return Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8), mode="RGB")
