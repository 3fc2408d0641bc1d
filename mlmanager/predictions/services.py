"""Predictions: answering rows (UI and API), feedback on answers, and a dataset of feedback.

Batch predictions are in `batches` (an image model's zip: `image_batches`); image predictions
in `images`, their reviews in `reviews` and PDF reports in `reports`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.billing.services import charges, quotas, usage
from mlmanager.core.errors import ApplicationError, Conflict, NotFound
from mlmanager.datasets import files as dataset_files
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.services import dataset_create_from_parquet
from mlmanager.engine.prediction import (
    class_key,
    explain_row,
    predict_rows,
    write_with_feedback,
)
from mlmanager.machines.models import Machine, ModelVersion
from mlmanager.ops.metrics import PREDICTIONS
from mlmanager.predictions.log import AnsweredRows, prediction_log
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.schema import ParsedRows, warnings_as_dicts
from mlmanager.predictions.serving import ServedVersion, served_version

logger = logging.getLogger(__name__)

# Feedback rows read from the database per query when a feedback dataset is written.
FEEDBACK_CHUNK_ROWS = 65_536


def version_for_prediction(
    *, machine: Machine, number: Any = None, alias: Any = None
) -> ModelVersion:
    """The active version, or version `number` of the model (the API's `?version=n`), or the
    version its alias `alias` names (`?alias=champion`; 404 `alias_not_found`). Both at once
    is a 400 `alias_and_version`."""
    if alias not in (None, ""):
        if number not in (None, ""):
            raise ApplicationError(
                _("Give a version or an alias, not both."), code="alias_and_version"
            )
        from mlmanager.machines.services.aliases import version_for_alias

        return version_for_alias(machine=machine, alias=alias)
    if number in (None, ""):
        if machine.active_version is None:
            raise Conflict(
                _("This model has no trained version yet; train it first."), code="not_trained"
            )
        return machine.active_version
    try:
        parsed = int(number)
    except (TypeError, ValueError):
        raise ApplicationError(_("“version” must be a version number.")) from None
    version = ModelVersion.objects.filter(machine=machine, number=parsed).first()
    if version is None:
        raise NotFound(_("This model has no version %(number)s.") % {"number": parsed})
    return version


def predictions_make(
    *,
    machine: Machine,
    version: ModelVersion,
    payload: Any,
    caller: Caller,
    source: str = Prediction.Source.API,
    started: float | None = None,
    explain: bool = False,
    decimal_separator: str = ".",
    charged: bool = True,
    idempotency_key: str = "",
) -> dict[str, Any]:
    """Answer the rows of `payload` (see InputSchema.parse_payload) and log each answer.

    `started` is when the request began (perf_counter), so `timing_ms.parse` includes
    decoding the body. With `explain` (the web form's one row), the body also holds, per
    output, the inputs that moved the first row's prediction most (engine `explain_row`).
    `warnings` lists the values training did not see (InputSchema.warnings), the numbers in
    their messages written with `decimal_separator`; the rows are answered all the same.

    With billing on, the rows are charged after they are answered and before anything is
    logged, so a refused charge (402) leaves no trace; a retry with the same
    `idempotency_key` charges once. `charged=False`: the caller charges them itself (the
    marketplace's buyer pays the listing's price instead). With billing off the quota check,
    charge and usage count each return after reading the setting: no query is added.
    """
    started = time.perf_counter() if started is None else started
    served = served_version(version)
    parsed = served.schema.parse_payload(payload)
    warnings = served.schema.warnings(parsed)
    quotas.quota_check_predictions(team_id=machine.team_id, rows=parsed.count)
    parsed_at = time.perf_counter()
    answers = predict_rows(served.predictor, parsed.columns)
    answered_at = time.perf_counter()
    if charged:  # a short transaction of its own: the rows were answered, nothing is logged yet
        charges.prediction_charge(
            team_id=machine.team_id,
            rows=len(answers),
            source=source,
            created_by_id=caller.user_id,
            idempotency_key=idempotency_key,
        )
    ids = _new_ids(len(answers))
    body = {
        "model": machine.pk,
        "model_version": version.number,
        "predictions": [
            _shape(served, answer, prediction_id)
            for answer, prediction_id in zip(answers, ids, strict=True)
        ],
        "warnings": warnings_as_dicts(warnings, decimal_separator),
    }
    total_ms = (time.perf_counter() - started) * 1000
    body["timing_ms"] = {
        "parse": round((parsed_at - started) * 1000, 3),
        "model": round((answered_at - parsed_at) * 1000, 3),
        "total": round(total_ms, 3),
    }
    _log(machine, version, parsed, answers, ids, caller, source, total_ms)
    usage.usage_count_predictions(team_id=machine.team_id, rows=len(answers))
    PREDICTIONS.labels(source).inc(len(answers))
    if explain:
        body["explanation"] = explain_row(served.predictor, parsed.columns)
    return body


def _new_ids(count: int) -> list[str]:
    """`count` time-ordered UUIDs (version 7, RFC 9562: the time in milliseconds, then 74
    random bits) as text, from one read of the system's random source.

    Time-ordered, so the log's primary-key index grows at its end: random (version 4) ids
    land all over the index, and writing a 1 000-row request's entries touched a page per row
    (on SQLite, WAL grew ~3× faster and the writer took the web process's CPU from the
    requests). One urandom read: uuid4() reads it once per id and builds an object (~25 µs
    each: 25 ms of a 1 000-row request)."""
    octets = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    milliseconds = time.time_ns() // 1_000_000
    octets[:, :6] = np.frombuffer(milliseconds.to_bytes(6, "big"), dtype=np.uint8)
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x70  # version 7
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80  # the RFC 9562 variant
    text = octets.tobytes().hex()
    return [
        f"{text[i : i + 8]}-{text[i + 8 : i + 12]}-{text[i + 12 : i + 16]}-"
        f"{text[i + 16 : i + 20]}-{text[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


def _shape(served: ServedVersion, answer: dict[str, Any], prediction_id: str) -> dict:
    """One prediction as the API shows it: the value per output and, for a model with one
    classification output, its probabilities by label (several: by output, then label)."""
    shaped: dict[str, Any] = {"id": prediction_id}
    probabilities: dict[str, Any] = {}
    for name, result in answer.items():
        shaped[name] = result["value"]
        if "probabilities" in result:
            probabilities[name] = result["probabilities"]
    if len(probabilities) == 1 and len(served.predictor.outputs) == 1:
        shaped["probabilities"] = next(iter(probabilities.values()))
    elif probabilities:
        shaped["probabilities"] = probabilities
    return shaped


def _log(
    machine: Machine,
    version: ModelVersion,
    parsed: ParsedRows,
    answers: list[dict[str, Any]],
    ids: list[str],
    caller: Caller,
    source: str,
    total_ms: float,
) -> None:
    prediction_log.record(
        AnsweredRows(
            ids=ids,
            row=parsed.row,
            answers=answers,
            team_id=machine.team_id,
            machine_id=machine.pk,
            version_id=version.pk,
            version_number=version.number,
            source=source,
            user_id=caller.user_id,
            token_id=caller.api_token_id,
            latency_ms=total_ms,
            created_at=timezone.now(),
        )
    )


# --- feedback ------------------------------------------------------------------------------------


def prediction_feedback(*, caller: Caller, prediction: Prediction, actual: Any) -> Prediction:
    """Record the true value(s) of an answered row. `actual` maps output names to values; for
    a model with one output, the value alone is enough. A later call corrects an earlier one."""
    outputs = list(prediction.outputs)
    if not isinstance(actual, dict):
        if len(outputs) != 1:
            raise ApplicationError(
                _("This model predicts several columns; send “actual” as an object by column."),
                code="invalid_feedback",
            )
        actual = {outputs[0]: actual}
    unknown = sorted(set(actual) - set(outputs))
    if unknown or not actual:
        raise ApplicationError(
            _("Feedback is given for the predicted columns: %(names)s.")
            % {"names": ", ".join(outputs)},
            code="invalid_feedback",
            details={"fields": unknown, "outputs": outputs},
        )
    clean: dict[str, Any] = {}
    for name, value in actual.items():
        classes = (prediction.outputs.get(name) or {}).get("probabilities")
        clean[name] = _feedback_value(name, value, classes=None if classes is None else [*classes])
    updated = Prediction.objects.filter(pk=prediction.pk).update(
        feedback=clean, feedback_at=timezone.now(), feedback_by=caller.user
    )
    if not updated:
        raise NotFound()
    prediction.refresh_from_db()
    return prediction


def _feedback_value(name: str, value: Any, *, classes: list[str] | None) -> Any:
    """The true value of one output: a finite number for an amount (`classes` None), else one
    of the classes the model answers (as its probabilities name them). A class the model never
    saw is refused: appended to a dataset for retraining, it would add a class that has one
    example, or turn a yes/no column into text."""
    if classes is None:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _bad_feedback(name, _("a number"))
        try:
            number = float(value)
        except ValueError:
            raise _bad_feedback(name, _("a number")) from None
        if not math.isfinite(number):
            raise _bad_feedback(name, _("a number"))
        return number
    if not isinstance(value, str | int | float | bool) or class_key(value) not in classes:
        raise _bad_feedback(
            name, _("one of the classes: %(classes)s") % {"classes": ", ".join(classes)}
        )
    return value


def _bad_feedback(name: str, expected: str) -> ApplicationError:
    return ApplicationError(
        _("The true value of “%(name)s” must be %(expected)s.")
        % {"name": name, "expected": expected},
        code="invalid_feedback",
        details={"field": name},
    )


def feedback_dataset_create(*, caller: Caller, machine: Machine) -> Dataset:
    """A new dataset: the model's dataset with the rows that got feedback appended (inputs as
    sent, outputs as the true values), ready to train a new version on."""
    dataset = machine.dataset
    if dataset is None or dataset.status != Dataset.Status.READY:
        raise Conflict(_("The model's dataset is gone or not ready."), code="dataset_missing")
    if dataset.is_images:
        # Reviewed images are not rows to append to a table; the log keeps them for review.
        raise Conflict(
            _("A dataset of feedback rows is made for table models, not image models."),
            code="not_a_table_model",
        )
    rows = Prediction.objects.filter(machine=machine, feedback__isnull=False).values_list(
        "inputs", "feedback"
    )
    if not rows.exists():
        raise Conflict(_("No prediction of this model has feedback yet."), code="no_feedback")
    try:
        source = dataset_files.materialise(dataset.parquet_path)
    except FileNotFoundError:
        raise Conflict(_("The model's dataset file is missing."), code="dataset_missing") from None
    count = rows.count()

    def write(destination: Path) -> None:
        write_with_feedback(source, destination, rows.iterator(chunk_size=FEEDBACK_CHUNK_ROWS))

    created = dataset_create_from_parquet(
        caller=caller,
        team=machine.team,
        name=_("%(name)s + %(count)s feedback rows") % {"name": dataset.name, "count": count},
        write_parquet=write,
        type_overrides=dataset.type_overrides,
    )
    logger.info("dataset %s: %s with %s feedback rows", created.pk, dataset.pk, count)
    return created


def feedback_rows_append(*, caller: Caller, machine: Machine) -> Dataset:
    """Append the rows that got feedback since the last such append (inputs as sent, outputs
    as the true values) to the model's dataset: a new version of it, which the model (and
    every model of that dataset) then learns from. 409 `no_feedback` when there is none new."""
    from mlmanager.datasets.versions import dataset_rows_append, feedback_appended_until

    dataset = machine.dataset
    if dataset is None:
        raise Conflict(_("The model's dataset is gone or not ready."), code="dataset_missing")
    if dataset.is_images:
        raise Conflict(
            _("Feedback rows are appended for table models, not image models."),
            code="not_a_table_model",
        )
    until = timezone.now()
    rows = Prediction.objects.filter(
        machine=machine, feedback__isnull=False, feedback_at__lte=until
    )
    since = feedback_appended_until(dataset=dataset, machine_id=machine.pk)
    if since is not None:
        rows = rows.filter(feedback_at__gt=since)
    pairs = list(rows.order_by("feedback_at", "pk").values_list("inputs", "feedback"))
    if not pairs:
        raise Conflict(
            _("No prediction of this model got feedback since its last append."),
            code="no_feedback",
        )
    names = [column["name"] for column in dataset.columns if not column.get("expanded_from")]
    records = []
    for inputs, actual in pairs:
        record = {name: (inputs or {}).get(name) for name in names}
        record.update({k: v for k, v in (actual or {}).items() if k in record})
        records.append(record)
    version = dataset_rows_append(
        caller=caller,
        dataset=dataset,
        rows=pd.DataFrame.from_records(records, columns=names).astype(object),
        source="feedback",
        origin={"machine": machine.pk, "feedback_until": until.isoformat()},
    )
    logger.info(
        "model %s: %s feedback rows appended (dataset %s)", machine.pk, len(pairs), version.pk
    )
    return version
