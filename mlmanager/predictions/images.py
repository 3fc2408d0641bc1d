"""Predictions of image models: uploaded images checked and re-encoded, answered by the
version's ensemble, each logged with its image; the files a prediction keeps and the overlay
pages and reports show.

An uploaded image goes through the same checks as an image of a dataset's zip (engine
`ingest.images.decode`: the type from the content, the pixel count from the header before any
pixel is decoded, Pillow's verify, a fresh decode, a PNG re-encoded from the pixels alone), so
there is one way of accepting an image. The PNG the platform wrote is what is kept, under a
folder named by the prediction's id inside its model's folder (models.prediction_image_dir):
nothing a client sends becomes a path, and deleting the model removes the images.

Logging: image predictions are written to the log within the request (not through the
buffered log of table rows), after their files. An image prediction is a record to review and
report on, and a segmentation's answer names its mask by a URL that reads the log: an answer
whose entry was lost would point at nothing. So when the entries cannot be written, the files
just written are removed and the request fails (500): no orphan file and no answer that cannot
be found again; the client may send the images again. (A process killed between the two
writes can still leave a folder without an entry; its name is a prediction id, so it is easy
to find and sweep.) A few rows per request cost a millisecond or two against the tens of
milliseconds the networks take.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.translation import gettext as _
from PIL import Image

from mlmanager.accounts.caller import Caller
from mlmanager.billing.services import charges, quotas, usage
from mlmanager.core import storage
from mlmanager.core.errors import ApplicationError, PayloadTooLarge
from mlmanager.engine.ingest.images import ImageLimits
from mlmanager.engine.ingest.images.decode import ImageRefused, decode_image, png_bytes
from mlmanager.ops.metrics import PREDICTIONS
from mlmanager.predictions.models import Prediction, prediction_image_dir
from mlmanager.predictions.services import _new_ids  # the table path's time-ordered ids
from mlmanager.predictions.serving import ServedImageVersion, served_image_version

logger = logging.getLogger(__name__)

IMAGE_FILE = "image.png"
MASK_FILE = "mask.png"
OVERLAY_FILE = "overlay.png"


def max_image_pixels() -> int:
    """The pixel limit of one image, the same as for a dataset's images (the engine's default
    where the setting is not there)."""
    return int(getattr(settings, "MLMANAGER_MAX_IMAGE_PIXELS", ImageLimits().max_pixels))


@dataclasses.dataclass(frozen=True)
class ReceivedImage:
    """An uploaded image once checked: `name` as the client named it (shown, never a path),
    the clean image (mode "L" or "RGB") and its PNG, what the content was (`format`)."""

    name: str
    image: Image.Image
    png: bytes
    format: str

    def described(self) -> dict[str, Any]:
        """What the log keeps as the prediction's input."""
        return {
            "name": self.name,
            "width": self.image.width,
            "height": self.image.height,
            "channels": 1 if self.image.mode == "L" else 3,
            "format": self.format,
        }


def received_image(data: bytes, *, name: str) -> ReceivedImage:
    """Check and re-encode one image's bytes (engine ingest.images.decode); raises
    ImageRefused with the reason."""
    clean = decode_image(data, max_pixels=max_image_pixels())
    return ReceivedImage(
        name=name, image=clean.image, png=png_bytes(clean.image), format=clean.source_format
    )


def read_uploads(uploads: list[UploadedFile]) -> list[ReceivedImage]:
    """The uploaded files of one request as checked images; the whole request is refused
    (with the file's index, name and reason) when one of them is not a usable image, as a
    request of rows is refused for one bad row."""
    if not uploads:
        raise ApplicationError(
            _("Send one or more images in the “image” field (multipart/form-data)."),
            code="no_image",
        )
    limit = settings.MLMANAGER_PREDICT_MAX_IMAGES
    if len(uploads) > limit:
        raise ApplicationError(
            _("At most %(limit)s images per request; use a batch prediction (a zip) for more.")
            % {"limit": limit},
            code="too_many_images",
            details={"max_images": limit, "sent": len(uploads)},
        )
    max_bytes = settings.MLMANAGER_PREDICT_MAX_IMAGE_BYTES
    received = []
    for index, upload in enumerate(uploads):
        name = str(upload.name or f"image-{index + 1}")[:200]
        if (upload.size or 0) > max_bytes:
            raise PayloadTooLarge(
                _("Image %(index)s (%(name)s) is larger than %(limit)s.")
                % {"index": index, "name": name, "limit": filesizeformat(max_bytes)},
                code="image_too_large",
                details={"index": index, "name": name, "max_bytes": max_bytes},
            )
        upload.seek(0)
        data = upload.read(max_bytes + 1)
        try:
            received.append(received_image(data, name=name))
        except ImageRefused as refused:
            raise ApplicationError(
                _("Image %(index)s (%(name)s) cannot be used: %(reason)s.")
                % {"index": index, "name": name, "reason": refused},
                code="invalid_image",
                details={"index": index, "name": name, "reason": str(refused)},
            ) from None
    return received


# --- answering -----------------------------------------------------------------------------


def image_predictions_make(
    *,
    machine: Any,
    version: Any,
    images: list[ReceivedImage],
    caller: Caller,
    source: str = Prediction.Source.API,
    started: float | None = None,
    with_overlay: bool = False,
    charged: bool = True,
    idempotency_key: str = "",
) -> dict[str, Any]:
    """Answer `images` with the version's ensemble, keep each image (and mask) and log each
    answer. `with_overlay` (the web form) also writes the overlay the page shows at once
    (saliency for a class, the mask for a segmentation); otherwise it is made when first
    asked for (`overlay_png`).

    Billing (see services.predictions_make): an image is a row; the charge is written in the
    transaction that logs the answers, so a refused charge (402) keeps no image and no log."""
    started = time.perf_counter() if started is None else started
    quotas.quota_check_predictions(team_id=machine.team_id, rows=len(images))
    served = served_image_version(version)
    pictures = [item.image for item in images]
    parsed_at = time.perf_counter()
    if served.task == "segmentation":
        answers = served.model.segment(pictures)
    else:
        answers = served.model.predict(pictures)
    answered_at = time.perf_counter()
    ids = _new_ids(len(images))
    shaped = [
        _shape(served, answer, prediction_id)
        for answer, prediction_id in zip(answers, ids, strict=True)
    ]
    folders = [prediction_image_dir(machine.storage_dir, prediction_id) for prediction_id in ids]
    try:
        for folder, item, answer in zip(folders, images, answers, strict=True):
            _store(f"{folder}/{IMAGE_FILE}", item.png)
            if served.task == "segmentation":
                _store(f"{folder}/{MASK_FILE}", _mask_png(answer.mask))
            if with_overlay:
                _store(f"{folder}/{OVERLAY_FILE}", _overlay_of(served, item.image, answer))
        total_ms = (time.perf_counter() - started) * 1000
        with transaction.atomic():
            if charged:
                charges.prediction_charge(
                    team_id=machine.team_id,
                    rows=len(images),
                    source=source,
                    created_by_id=caller.user_id,
                    idempotency_key=idempotency_key,
                )
            Prediction.objects.bulk_create(
                [
                    Prediction(
                        id=uuid.UUID(prediction_id),
                        team_id=machine.team_id,
                        machine_id=machine.pk,
                        version_id=version.pk,
                        version_number=version.number,
                        source=source,
                        user_id=caller.user_id,
                        token_id=caller.api_token_id,
                        inputs={"image": item.described()},
                        outputs={served.output: answer},
                        latency_ms=total_ms,
                        image=f"{folder}/{IMAGE_FILE}",
                    )
                    for prediction_id, folder, item, answer in zip(
                        ids, folders, images, (_logged(each) for each in shaped), strict=True
                    )
                ]
            )
    except BaseException:
        for folder in folders:
            storage.delete_folder(folder)
        raise
    usage.usage_count_predictions(team_id=machine.team_id, rows=len(images))
    PREDICTIONS.labels(source).inc(len(images))
    predictions = []
    for item, answer in zip(images, shaped, strict=True):
        answer = {"id": answer["id"], "name": item.name, **answer}
        if served.task == "segmentation":
            answer["mask_url"] = reverse("api:prediction-mask", args=[answer["id"]])
        predictions.append(answer)
    return {
        "model": machine.pk,
        "model_version": version.number,
        "task": served.task,
        "predictions": predictions,
        "timing_ms": {
            "parse": round((parsed_at - started) * 1000, 3),
            "model": round((answered_at - parsed_at) * 1000, 3),
            "total": round((time.perf_counter() - started) * 1000, 3),
        },
    }


def _shape(served: ServedImageVersion, answer: Any, prediction_id: str) -> dict[str, Any]:
    """One answer as the API shows it (plain numbers: the engine may hand numpy scalars)."""
    shaped: dict[str, Any] = {"id": prediction_id}
    if served.task == "segmentation":
        shaped["areas"] = {str(name): float(share) for name, share in answer.areas.items()}
    else:
        shaped["label"] = str(answer.label)
        shaped["probabilities"] = {
            str(label): float(probability) for label, probability in answer.probabilities.items()
        }
    shaped["confidence"] = float(answer.confidence)
    shaped["votes"] = [_plain(vote) for vote in answer.votes]
    shaped["agreement"] = float(answer.agreement)
    shaped["needs_review"] = bool(answer.needs_review)
    return shaped


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def _logged(shaped: dict[str, Any]) -> dict[str, Any]:
    """The answer as the log keeps it per output: `value` is what live accuracy and the
    monitoring compare with feedback (the label; a segmentation has none)."""
    logged = {key: item for key, item in shaped.items() if key != "id"}
    return {"value": logged.pop("label", None), **logged}


def _store(name: str, content: bytes) -> None:
    with storage.writing(name) as path:
        path.write_bytes(content)


def _mask_png(mask: Any) -> bytes:
    import numpy as np

    return png_bytes(Image.fromarray(np.asarray(mask, dtype=np.uint8), mode="L"))


def _overlay_of(served: ServedImageVersion, image: Image.Image, answer: Any) -> bytes:
    from mlmanager.engine.vision import overlay  # brings torch and monai: only here

    if served.task == "segmentation":
        shown = overlay(image, answer.mask, kind="mask")
    else:
        shown = overlay(image, served.model.saliency(image), kind="heat")
    return png_bytes(shown)


# --- the files of a logged prediction ------------------------------------------------------


def read_file(name: str) -> bytes | None:
    try:
        with contextlib.closing(storage.open_for_reading(name)) as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def overlay_png(prediction: Prediction) -> bytes | None:
    """The overlay of a logged image prediction (saliency over the image for a class, the mask
    over it for a segmentation), written beside the image the first time it is asked for so
    later pages and reports read it. None when it cannot be made: the image is gone, or a
    class's saliency needs a version that was deleted."""
    stored = read_file(prediction.overlay_path)
    if stored is not None:
        return stored
    image_bytes = read_file(prediction.image)
    if image_bytes is None:
        return None
    image = Image.open(io.BytesIO(image_bytes))
    image.load()
    answer_mask = None
    if _is_segmentation(prediction):
        mask_bytes = read_file(prediction.mask_path)
        if mask_bytes is None:
            return None
        import numpy as np

        answer_mask = np.asarray(Image.open(io.BytesIO(mask_bytes)))
    from mlmanager.engine.vision import overlay  # brings torch and monai: only here

    if answer_mask is not None:
        shown = overlay(image, answer_mask, kind="mask")
    else:
        if prediction.version is None:
            return None
        served = served_image_version(prediction.version)
        shown = overlay(image, served.model.saliency(image), kind="heat")
    content = png_bytes(shown)
    _store(prediction.overlay_path, content)
    return content


def _is_segmentation(prediction: Prediction) -> bool:
    return "areas" in prediction.answer()
