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
from typing import Any

import numpy as np
from django.conf import settings

from mlmanager.engine.training import TrainedModel
from mlmanager.engine.training.model import chosen_classes, row_count
from mlmanager.machines import files
from mlmanager.machines.models import ModelVersion
from mlmanager.machines.selectors import version_model
from mlmanager.predictions.schema import InputSchema

logger = logging.getLogger(__name__)

# How many inputs a per-prediction explanation lists.
EXPLANATION_INPUTS = 5


@dataclasses.dataclass(frozen=True)
class ServedOutput:
    name: str
    task: str
    model: TrainedModel
    # Labels as JSON object keys (probabilities are keyed by them).
    class_keys: list[str] | None


@dataclasses.dataclass(frozen=True)
class ServedVersion:
    version_id: int
    number: int
    schema: InputSchema
    outputs: list[ServedOutput]
    size_bytes: int
    # The version's decision threshold for two-class outputs (None: the more probable class).
    # The one setting that changes after a version is written: served_version() copies the
    # cached entry with the current value rather than caching it.
    threshold: float | None = None

    def answer(self, columns: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Per row, per output: {"value": .., "probabilities": {label: p}} (classification)."""
        count = row_count(columns)
        answers: list[dict[str, Any]] = [{} for _ in range(count)]
        for output in self.outputs:
            model = output.model
            if output.task == "regression":
                values = model.predict(columns).tolist()
                for answer, value in zip(answers, values, strict=True):
                    answer[output.name] = {"value": value}
                continue
            probabilities = model.predict_proba(columns)
            labels = model.labels(probabilities, self.threshold).tolist()
            keys = output.class_keys or []
            for answer, label, row in zip(answers, labels, probabilities.tolist(), strict=True):
                answer[output.name] = {
                    "value": label,
                    "probabilities": dict(zip(keys, row, strict=True)),
                }
        return answers

    def explain(self, columns: dict[str, np.ndarray]) -> dict[str, list[dict[str, Any]]]:
        """For one row: per output, the given inputs that moved its prediction most.

        Each given input is blanked in turn (made missing, as if not known) and the prediction
        is made again, all in one call; the effect is how far the predicted class's probability
        (or the predicted amount) moved because the input was known. Model-agnostic, exact for
        this row, and as cheap as one prediction of a few rows.
        """
        given = [
            name
            for name, values in columns.items()
            if not _missing(values[0]) and name in self.schema.by_name
        ]
        if not given:
            return {output.name: [] for output in self.outputs}
        rows = 1 + len(given)
        probes = {name: np.repeat(values, rows) for name, values in columns.items()}
        for index, name in enumerate(given, start=1):
            probe = probes[name]
            probe[index] = np.nan if probe.dtype.kind == "f" else None
        explanation: dict[str, list[dict[str, Any]]] = {}
        for output in self.outputs:
            if output.task == "regression":
                values = output.model.predict(probes)
                effects = values[0] - values[1:]
            else:
                probabilities = output.model.predict_proba(probes)
                chosen = int(chosen_classes(probabilities[:1], self.threshold)[0])
                effects = probabilities[0, chosen] - probabilities[1:, chosen]
            order = np.argsort(-np.abs(effects))[:EXPLANATION_INPUTS]
            explanation[output.name] = [
                {"input": given[i], "effect": float(effects[i])} for i in order if effects[i] != 0
            ]
        return explanation


def _missing(value: Any) -> bool:
    """How a parsed column marks a missing value: NaN in number columns, else None."""
    return value is None or (isinstance(value, float) and np.isnan(value))


def class_key(label: Any) -> str:
    if isinstance(label, bool):
        return "true" if label else "false"
    return str(label)


def _load(version: ModelVersion) -> ServedVersion:
    outputs = []
    size = 0
    for record in version.outputs:
        model = version_model(version=version, output=record["name"])
        size += files.local_path(record["artifact"]).stat().st_size
        keys = [class_key(label) for label in model.classes] if model.classes else None
        outputs.append(ServedOutput(record["name"], record["task"], model, keys))
    return ServedVersion(
        version_id=version.pk,
        number=version.number,
        schema=InputSchema.of_version(version.inputs),
        outputs=outputs,
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
    if served.threshold != version.threshold:
        served = dataclasses.replace(served, threshold=version.threshold)
    return served
