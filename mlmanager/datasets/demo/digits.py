"""The demo image dataset: scikit-learn's handwritten digits (1 797 images of 8 × 8 pixels, ten
classes, shipped inside scikit-learn) as a zip of class folders, the layout a user uploads.

Built when `make run` bootstraps (nothing is downloaded): each image's 0-16 grey levels are
scaled to 0-255 and the image enlarged to 32 × 32 with nearest-neighbour resampling, so the
gallery shows the pixels the model learns from.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

DEMO_IMAGE_SIZE = 32


def write_digits_zip(path: Path) -> Path:
    """Write the digits as `digits/<label>/<index>.png` into the zip at `path`."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
            grey = np.clip(pixels * (255.0 / 16.0), 0, 255).astype(np.uint8)
            image = Image.fromarray(grey, mode="L").resize(
                (DEMO_IMAGE_SIZE, DEMO_IMAGE_SIZE), Image.Resampling.NEAREST
            )
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            archive.writestr(f"digits/{label}/{index:04d}.png", buffer.getvalue())
    return path
