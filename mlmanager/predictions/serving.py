"""Model versions kept loaded in the web process, and the answers they give.

A version's artifacts are verified and unpickled once per process, then kept in a
least-recently-used cache capped by memory (MLMANAGER_MODEL_CACHE_MB, measured as the size of
the artifact files, which is close to what they take unpickled). Versions never change once
written, their decision threshold aside (applied from the version row on each call), so an
entry is never stale; one that is no longer used just ages out.

Native libraries predict on one thread here (the models are saved single-threaded, and the web
command sets OMP_NUM_THREADS=1): several web workers each spreading a tree walk over every core
was measured 7.7 times slower than one thread each.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict

from django.conf import settings

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


def _load(version: ModelVersion) -> ServedVersion:
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


class VersionCache:
    """Loaded versions by primary key, least recently used evicted past `limit_bytes`."""

    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        self._entries: OrderedDict[int, ServedVersion] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[int, threading.Lock] = {}

    def get(self, version: ModelVersion) -> ServedVersion:
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


def served_version(version: ModelVersion) -> ServedVersion:
    served = cache.get(version)
    if served.predictor.threshold != version.threshold:
        predictor = served.predictor.with_threshold(version.threshold)
        served = dataclasses.replace(served, predictor=predictor)
    return served
