"""A model's monitoring over a range: what `GET /api/v1/models/{id}/monitoring/` answers and
the model's monitoring page draws.

Volume is counted in SQL. Latency, the predictions' distribution and drift are read from the
newest `series.MODEL_ROWS` predictions of the range (a sample when it holds more); accuracy
from the newest `series.MODEL_ROWS` predictions with feedback, per period.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np

from mlmanager.monitoring import drift
from mlmanager.monitoring.selectors import (
    model_holdout_outputs,
    model_training_profile,
    prediction_count_between,
    prediction_rows,
)
from mlmanager.monitoring.series import MODEL_ROWS, series_points

# Accuracy and the charts' periods: the first of these giving at most MAX_PERIODS periods.
PERIODS_S = (3600, 6 * 3600, 86400, 7 * 86400)
MAX_PERIODS = 100
DISTRIBUTION_BINS = 10
_CLASS_TASKS = {"binary", "multiclass", "classification"}


def monitoring_period_s(start: datetime, end: datetime) -> int:
    span = (end - start).total_seconds()
    for period in PERIODS_S:
        if span / period <= MAX_PERIODS:
            return period
    return PERIODS_S[-1]


def _inputs_drift(
    *, team_id: int, machine_id: int, inputs: list[str], rows: list[Any]
) -> list[dict[str, Any]]:
    """Per input: its PSI against training (None without a training profile to compare with,
    or too few values), its state and both histograms; the worst first."""
    profile = model_training_profile(team_id=team_id, machine_id=machine_id)
    found: list[dict[str, Any]] = []
    for name in inputs:
        distribution = drift.expected_distribution(profile.get(name))
        if distribution is None:
            found.append({"input": name, "psi": None, "state": None, "histogram": None})
            continue
        compared = drift.compare(
            distribution,
            [row_inputs.get(name) for row_inputs in rows if isinstance(row_inputs, dict)],
        )
        psi = compared["psi"] if compared["count"] >= 20 else None
        found.append(
            {"input": name, "psi": psi, "state": drift.psi_state(psi), "histogram": compared}
        )
    found.sort(key=lambda item: (item["psi"] is None, -(item["psi"] or 0.0), item["input"]))
    return found


def _prediction_distribution(output: dict[str, Any], answers: list[Any]) -> dict[str, Any] | None:
    """The window's predictions of one output against the holdout's: class shares (holdout:
    the confusion matrix's predicted columns), or for amounts a histogram on common edges
    (holdout: the predicted values the version kept for its chart). None without a holdout."""
    metrics = output.get("metrics") or {}
    if output.get("task") in _CLASS_TASKS:
        matrix = metrics.get("confusion_matrix") or {}
        labels = [drift.category_key(label) for label in matrix.get("labels") or []]
        rows = matrix.get("matrix") or []
        if not labels or not rows:
            return None
        holdout = np.asarray(rows, dtype=np.float64).sum(axis=0)
        window = np.zeros(len(labels))
        for answer in answers:
            key = drift.category_key(answer)
            if key in labels:
                window[labels.index(key)] += 1
        return {
            "kind": "classes",
            "labels": labels,
            "holdout": _shares(holdout),
            "window": _shares(window),
            "count": int(window.sum()),
        }
    predicted = drift.finite_numbers(
        (metrics.get("predicted_vs_actual") or {}).get("predicted") or []
    )
    values = drift.finite_numbers(answers)
    if not len(predicted):
        return None
    low = float(min(predicted.min(), values.min() if len(values) else predicted.min()))
    high = float(max(predicted.max(), values.max() if len(values) else predicted.max()))
    if not high > low:
        high = low + 1.0
    edges = np.linspace(low, high, DISTRIBUTION_BINS + 1)
    return {
        "kind": "histogram",
        "edges": [float(edge) for edge in edges],
        "holdout": _shares(np.histogram(predicted, bins=edges)[0]),
        "window": _shares(np.histogram(values, bins=edges)[0]),
        "count": len(values),
    }


def _shares(counts: np.ndarray) -> list[float]:
    total = float(np.sum(counts))
    return [float(count) / total if total else 0.0 for count in counts]


def _accuracy_periods(
    *,
    team_id: int,
    machine_id: int,
    output: dict[str, Any],
    start: datetime,
    end: datetime,
    period_s: int,
) -> list[dict[str, Any]]:
    rows = prediction_rows(
        team_id=team_id,
        machine_id=machine_id,
        start=start,
        end=end,
        fields=("outputs", "feedback"),
        limit=MODEL_ROWS,
        with_feedback=True,
    )
    name = output["name"]
    task = "regression" if output.get("task") == "regression" else "class"
    by_period: dict[int, list[tuple[Any, Any]]] = {}
    for created_at, outputs, feedback in rows:
        if not isinstance(feedback, dict) or name not in feedback:
            continue
        answer = (outputs or {}).get(name) if isinstance(outputs, dict) else None
        predicted = answer.get("value") if isinstance(answer, dict) else None
        number = math.floor(created_at.timestamp() / period_s)
        by_period.setdefault(number, []).append((predicted, feedback[name]))
    result = []
    for number in sorted(by_period):
        accuracy, count = drift.accuracy(by_period[number], task=task)
        result.append(
            {
                "period_start": datetime.fromtimestamp(number * period_s, tz=start.tzinfo),
                "accuracy": accuracy,
                "count": count,
            }
        )
    return result


def model_monitoring(
    *, machine: Any, start: datetime, end: datetime, output: str | None = None
) -> dict[str, Any]:
    """A model's monitoring over [start, end) (the model found with machines' access_machine):

    `volume`, `latency_ms` {p50, p95}, `drift` per input (worst first: input, psi, state, and
    for the page `histogram` against training), `accuracy` per period (period_start,
    accuracy, count) of `output` (default the first), and for the page `output`,
    `period_s`, `volume_series` and `latency_series` (points), and `predictions` (the
    output's distribution against the holdout's, None without one)."""
    team_id, machine_id = machine.team_id, machine.pk
    outputs = {item["name"]: item for item in machine.outputs or []}
    recorded = {
        item["name"]: item for item in model_holdout_outputs(team_id=team_id, machine_id=machine_id)
    }
    chosen = output if output in outputs else next(iter(outputs), None)
    period_s = monitoring_period_s(start, end)
    rows = prediction_rows(
        team_id=team_id,
        machine_id=machine_id,
        start=start,
        end=end,
        fields=("inputs", "outputs", "latency_ms"),
        limit=MODEL_ROWS,
    )
    latencies = [latency for _created, _inputs, _outputs, latency in rows]
    answers = [
        answer.get("value")
        for _created, _inputs, row_outputs, _latency in rows
        if isinstance(row_outputs, dict) and isinstance(answer := row_outputs.get(chosen), dict)
    ]
    spec = {"kind": "model", "model": machine_id, "period_s": period_s}
    return {
        "volume": prediction_count_between(
            team_id=team_id, machine_id=machine_id, start=start, end=end
        ),
        "latency_ms": {
            "p50": drift.percentile(latencies, 50),
            "p95": drift.percentile(latencies, 95),
        },
        "drift": _inputs_drift(
            team_id=team_id,
            machine_id=machine_id,
            inputs=list(machine.inputs or []),
            rows=[row_inputs for _created, row_inputs, _outputs, _latency in rows],
        ),
        "accuracy": []
        if chosen is None
        else _accuracy_periods(
            team_id=team_id,
            machine_id=machine_id,
            output=outputs[chosen],
            start=start,
            end=end,
            period_s=period_s,
        ),
        "output": chosen,
        "period_s": period_s,
        "volume_series": series_points(
            {**spec, "signal": "volume"}, team_id=team_id, start=start, end=end
        ),
        "latency_series": series_points(
            {**spec, "signal": "latency_p95"}, team_id=team_id, start=start, end=end
        ),
        "predictions": None
        if chosen is None
        else _prediction_distribution({**outputs[chosen], **recorded.get(chosen, {})}, answers),
        "window": {"start": start, "end": end},
        "sampled": len(rows) >= MODEL_ROWS,
        "rows_read": len(rows),
    }
