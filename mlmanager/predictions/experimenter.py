"""Predictions answered by a model's experimenter rules (machines.services.experimenter) while
it has no version: the rows are parsed against the model's inputs (types from its dataset's
profile, JSON columns expanded as for a version), each output is its rule's value, and every
answer is logged with `by_rules` set, no version and version number 0."""

from __future__ import annotations

import time
from typing import Any

from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.billing.services import charges, quotas, usage
from mlmanager.machines.services.experimenter import answers_by_rules, machine_for_rules
from mlmanager.ops.metrics import PREDICTIONS
from mlmanager.predictions.log import AnsweredRows, prediction_log
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.schema import InputSchema


def answers_by_rules_now(*, machine: Any, number: Any = None, alias: Any = None) -> bool:
    """Whether a predict request is answered by the rules: the model has no active version,
    the request names no version or alias, and the model has rules. The version check comes
    first and costs nothing (the predict path loaded the model's active version id); the rules
    are read only for a model without a version."""
    if machine.active_version_id is not None or number not in (None, "") or alias not in (None, ""):
        return False
    return bool(machine.experimenter_rules)


def rules_schema(*, machine: Any) -> InputSchema:
    """The model's inputs as a schema: types (and JSON parents) from its dataset's profile;
    an input whose dataset is gone takes any plain value."""
    columns = {
        column["name"]: column for column in (machine.dataset.columns if machine.dataset else [])
    }
    return InputSchema.of_version(
        [
            {
                "name": name,
                "type": columns.get(name, {}).get("type", ""),
                "expanded_from": columns.get(name, {}).get("expanded_from"),
                "json_path": columns.get(name, {}).get("json_path"),
            }
            for name in machine.inputs
        ]
    )


def predictions_make_by_rules(
    *,
    machine: Any,
    payload: Any,
    caller: Caller,
    source: str = Prediction.Source.API,
    started: float | None = None,
    idempotency_key: str = "",
) -> dict[str, Any]:
    """Answer the rows of `payload` (as `predictions_make`) from the rules; the body has
    `"by_rules": true` and `"model_version": 0`. Charged and counted as any prediction."""
    from mlmanager.predictions.services import _new_ids  # the log's time-ordered ids

    started = time.perf_counter() if started is None else started
    machine = machine_for_rules(machine_id=machine.pk)
    schema = rules_schema(machine=machine)
    parsed = schema.parse_payload(payload)
    quotas.quota_check_predictions(team_id=machine.team_id, rows=parsed.count)
    parsed_at = time.perf_counter()
    rows = [
        {name: column[index] for name, column in parsed.columns.items()}
        for index in range(parsed.count)
    ]
    values = answers_by_rules(
        rules=machine.experimenter_rules, inputs=list(machine.inputs), rows=_plain(rows)
    )
    answered_at = time.perf_counter()
    charges.prediction_charge(
        team_id=machine.team_id,
        rows=len(values),
        source=source,
        created_by_id=caller.user_id,
        idempotency_key=idempotency_key,
    )
    ids = _new_ids(len(values))
    total_ms = (time.perf_counter() - started) * 1000
    body = {
        "model": machine.pk,
        "model_version": 0,
        "by_rules": True,
        "predictions": [
            {"id": prediction_id, **answer}
            for answer, prediction_id in zip(values, ids, strict=True)
        ],
        "warnings": [],
        "timing_ms": {
            "parse": round((parsed_at - started) * 1000, 3),
            "model": round((answered_at - parsed_at) * 1000, 3),
            "total": round(total_ms, 3),
        },
    }
    prediction_log.record(
        AnsweredRows(
            ids=ids,
            row=parsed.row,
            answers=[
                {name: {"value": value} for name, value in answer.items()} for answer in values
            ],
            team_id=machine.team_id,
            machine_id=machine.pk,
            version_id=None,
            version_number=0,
            source=source,
            user_id=caller.user_id,
            token_id=caller.api_token_id,
            latency_ms=total_ms,
            created_at=timezone.now(),
            by_rules=True,
        )
    )
    usage.usage_count_predictions(team_id=machine.team_id, rows=len(values))
    PREDICTIONS.labels(source).inc(len(values))
    return body


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """numpy scalars as Python values: rules compare and compute on plain numbers and texts."""
    return [
        {name: value.item() if hasattr(value, "item") else value for name, value in row.items()}
        for row in rows
    ]
