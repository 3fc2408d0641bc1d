"""Model versions kept loaded in the web process, and the answers they give.

A version's artifacts are verified and unpickled once per process, then kept in a
least-recently-used cache capped by memory (MLMANAGER_MODEL_CACHE_MB, measured as the size of
the artifact files, which is close to what they take unpickled). Versions never change once
written, their decision threshold aside (applied from the version row on each call), so an
entry is never stale; one that is no longer used just ages out.

Versions of image models (`ServedImageVersion`) share the cache: their weights (safetensors,
nothing unpickled) are verified against the signatures the version recorded and loaded by the
vision engine, which imports torch only then, never at start-up.

Native libraries predict on one thread here (the models are saved single-threaded, and the web
command sets OMP_NUM_THREADS=1): several web workers each spreading a tree walk over every core
was measured 7.7 times slower than one thread each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from mlmanager.core import storage
from mlmanager.core.errors import ApplicationError, Conflict
from mlmanager.engine.artifacts import SIGNATURE_SUFFIX, ArtifactError
from mlmanager.engine.prediction import Predictor
from mlmanager.machines import files
from mlmanager.machines.models import ModelVersion
from mlmanager.machines.selectors import version_model
from mlmanager.predictions.schema import InputSchema

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServedVersion:
    version_id: int
    number: int
    schema: InputSchema
    # The version's models, inputs and decision threshold, as the engine predicts with them.
    # The threshold is the one setting that changes after a version is written: served_version()
    # swaps in the current value rather than trusting the cached one.
    predictor: Predictor
    size_bytes: int


@dataclasses.dataclass(frozen=True)
class ServedImageVersion:
    """An image model's version: the vision engine's `VisionModel` (its members), the task
    ("classification" or "segmentation"), the output's name ("label" or "mask") and the class
    names in index order (segmentation: the mask's pixel classes)."""

    version_id: int
    number: int
    task: str
    output: str
    classes: list[str]
    model: Any  # mlmanager.engine.vision.VisionModel (imported lazily: it brings torch)
    size_bytes: int


# The configuration file of an image model's folder (engine vision), beside its weights.
MODEL_CONFIG_FILE = "model.json"


def is_image_version(version: ModelVersion) -> bool:
    """A version of a model trained on an image dataset (its one input is the image)."""
    return any(item.get("type") == "image" for item in version.inputs)


def _load(version: ModelVersion) -> ServedVersion | ServedImageVersion:
    if is_image_version(version):
        return _load_image(version)
    models = []
    size = 0
    for record in version.outputs:
        models.append(version_model(version=version, output=record["name"]))
        size += files.size(record["artifact"])
    schema = InputSchema.of_version(version.inputs)
    return ServedVersion(
        version_id=version.pk,
        number=version.number,
        schema=schema,
        predictor=Predictor.of(models, inputs=list(schema.by_name), threshold=version.threshold),
        size_bytes=size,
    )


def _load_image(version: ModelVersion) -> ServedImageVersion:
    from mlmanager.engine.vision import load_vision_model  # torch: only when a model is loaded

    record = version.outputs[0]
    signatures: dict[str, str] = dict(record.get("signatures") or {})
    try:
        names = sorted({MODEL_CONFIG_FILE, *signatures})
        with _artifact_folder(record["artifact_dir"], names) as folder:
            model = load_vision_model(folder, key=files.artifact_key(), signatures=signatures)
            size = sum(path.stat().st_size for path in folder.iterdir() if path.is_file())
    except ArtifactError as error:
        raise Conflict(error.message, code=error.code) from None
    return ServedImageVersion(
        version_id=version.pk,
        number=version.number,
        task=record["task"],
        output=record["name"],
        classes=[str(name) for name in model.classes],
        model=model,
        size_bytes=size,
    )


@contextlib.contextmanager
def _artifact_folder(name: str, file_names: list[str]) -> Iterator[Path]:
    """The local folder of an image model's files (`model.json`, the members' weights, each
    with its `.sig`). Locally that is the stored folder itself. On S3 each file is
    materialised on its own (the cache keeps one entry per object), so they are copied into a
    temporary folder for the loader, which reads them whole, and removed after."""
    if storage.is_local():
        yield storage.local_path(name)
        return
    temporary = Path(tempfile.mkdtemp(prefix="vision-"))
    try:
        for file_name in file_names:
            try:
                source = storage.materialise(f"{name}/{file_name}", companions=(SIGNATURE_SUFFIX,))
            except FileNotFoundError:
                raise ArtifactError() from None
            for path in (source, source.with_name(source.name + SIGNATURE_SUFFIX)):
                shutil.copyfile(path, temporary / path.name)
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


class VersionCache:
    """Loaded versions by primary key, least recently used evicted past `limit_bytes`."""

    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        self._entries: OrderedDict[int, ServedVersion | ServedImageVersion] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[int, threading.Lock] = {}

    def get(self, version: ModelVersion) -> ServedVersion | ServedImageVersion:
        with self._lock:
            served = self._entries.get(version.pk)
            if served is not None:
                self._entries.move_to_end(version.pk)
                return served
            loading = self._loading.setdefault(version.pk, threading.Lock())
        with loading:  # one thread loads a version; the others wait for it
            with self._lock:
                served = self._entries.get(version.pk)
            if served is None:
                served = _load(version)
                logger.info(
                    "loaded model version %s (%.1f MB)", version.pk, served.size_bytes / 2**20
                )
                with self._lock:
                    self._entries[version.pk] = served
                    self._evict()
        with self._lock:
            self._loading.pop(version.pk, None)
        return served

    def _evict(self) -> None:
        total = sum(entry.size_bytes for entry in self._entries.values())
        while total > self.limit_bytes and len(self._entries) > 1:
            _, evicted = self._entries.popitem(last=False)
            total -= evicted.size_bytes
            logger.info("evicted model version %s from the cache", evicted.version_id)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __contains__(self, version_id: int) -> bool:
        return version_id in self._entries


cache = VersionCache(limit_bytes=settings.MLMANAGER_MODEL_CACHE_MB * 2**20)


def served_any(version: ModelVersion) -> ServedVersion | ServedImageVersion:
    """The loaded version, of a table model or of an image model: callers that take both
    look at its type (a cached version needs no query to tell)."""
    served = cache.get(version)
    if isinstance(served, ServedVersion) and served.predictor.threshold != version.threshold:
        predictor = served.predictor.with_threshold(version.threshold)
        served = dataclasses.replace(served, predictor=predictor)
    return served


def served_version(version: ModelVersion) -> ServedVersion:
    """A table model's loaded version (an image model's is refused: it takes images)."""
    served = cache.get(version)
    if isinstance(served, ServedImageVersion):
        raise images_not_rows()
    if served.predictor.threshold != version.threshold:
        predictor = served.predictor.with_threshold(version.threshold)
        served = dataclasses.replace(served, predictor=predictor)
    return served


def served_image_version(version: ModelVersion) -> ServedImageVersion:
    """An image model's loaded version (a table model's is refused: it takes rows)."""
    served = cache.get(version)
    if not isinstance(served, ServedImageVersion):
        raise rows_not_images()
    return served


def images_not_rows() -> ApplicationError:
    return ApplicationError(
        _(
            "This model predicts from images: send them as multipart/form-data, one or more "
            "files in the “image” field."
        ),
        code="unsupported_media_type",
        status_code=415,
    )


def rows_not_images() -> ApplicationError:
    return ApplicationError(
        _("This model predicts from table rows, not images: send JSON with “rows” or “columns”."),
        code="unsupported_media_type",
        status_code=415,
    )
