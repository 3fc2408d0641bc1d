"""Reads of a model's run history and of runs compared side by side (team-scoped).

A run's history entry is what it was asked (its spec: inputs, outputs, budget, candidate
cap, seed, the dataset with its checksum and rows), how it went (its job's status and
times, candidates, best score) and what it made (its version's holdout metrics and
leaderboard per output). The API and the pages show the same entries.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.engine.training.spec import higher_is_better
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun

# How many runs one comparison takes.
COMPARE_MIN_RUNS = 2
COMPARE_MAX_RUNS = 10
# The parameters a comparison shows side by side, in this order.
PARAMETERS = (
    "model",
    "dataset",
    "dataset_checksum",
    "dataset_rows",
    "inputs",
    "outputs",
    "time_budget_s",
    "max_candidates",
    "seed",
)


def runs_history(*, machine: Machine) -> QuerySet[TrainingRun]:
    """The model's runs, newest first, with what their entries read (one query a page)."""
    return (
        TrainingRun.objects.filter(machine=machine)
        .select_related("job", "version", "created_by")
        .order_by("-created_at", "-pk")
    )


def parse_run_ids(raw: str | None) -> list[int]:
    """`?ids=1,2,3`: 2 to 10 distinct positive run ids, or 400 `invalid_ids`."""
    text = (raw or "").strip()
    parts = [part.strip() for part in text.split(",")] if text else []
    ids = [int(part) for part in parts if part.isascii() and part.isdigit() and int(part) > 0]
    if (
        len(ids) != len(parts)
        or len(set(ids)) != len(ids)
        or not COMPARE_MIN_RUNS <= len(ids) <= COMPARE_MAX_RUNS
    ):
        message = _(
            "Give %(low)s to %(high)s different run ids, separated by commas (ids=1,2)."
        ) % {"low": COMPARE_MIN_RUNS, "high": COMPARE_MAX_RUNS}
        raise ApplicationError(message, code="invalid_ids", details={"ids": [message]})
    return ids


def runs_to_compare(*, caller: Caller, ids: list[int]) -> list[TrainingRun]:
    """The runs `ids` names, in that order, when every one is a run of one team the caller
    is in (runs of different models of that team may be compared); else 404, as for any id
    the caller may not see."""
    found = {
        run.pk: run
        for run in TrainingRun.objects.for_caller(caller)
        .filter(pk__in=ids)
        .select_related("job", "version", "created_by", "machine")
    }
    if len(found) != len(ids) or len({run.team_id for run in found.values()}) != 1:
        raise NotFound()
    return [found[pk] for pk in ids]


# --- a run's entry -------------------------------------------------------------------------


def _scalars(values: Any) -> dict[str, float] | None:
    """The numbers of a metrics record (its curves, matrices and per-class blocks left out)."""
    if not isinstance(values, dict):
        return None
    return {
        name: value
        for name, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def run_spec(run: TrainingRun) -> dict[str, Any]:
    """What the run was asked, in one shape for every run (runs recorded before the dataset's
    checksum was kept have an empty checksum and no row count)."""
    spec = run.spec or {}
    dataset = dict(spec.get("dataset") or {})
    return {
        "kind": spec.get("kind") or "table",
        "inputs": [{"name": name, "type": kind} for name, kind in spec.get("inputs") or []],
        "outputs": [
            {"name": output.get("name"), "task": output.get("task"), "metric": output.get("metric")}
            for output in spec.get("outputs") or []
        ],
        "time_budget_s": spec.get("time_budget_s", run.time_budget_s),
        "max_candidates": spec.get("max_candidates", run.max_candidates),
        "seed": spec.get("seed", run.seed),
        "dataset": {
            "id": dataset.get("id", spec.get("dataset_id")),
            "checksum": dataset.get("checksum") or "",
            "rows": dataset.get("rows"),
        },
        "rerun_of": spec.get("rerun_of"),
    }


def version_outputs(version: ModelVersion | None) -> list[dict[str, Any]]:
    """Per output of the version: its holdout metrics and baseline (numbers only) and its
    leaderboard (best first)."""
    if version is None:
        return []
    return [
        {
            "name": output.get("name"),
            "task": output.get("task"),
            "metric": output.get("metric"),
            "metrics": _scalars(output.get("metrics")) or {},
            "baseline": _scalars(output.get("baseline")),
            "leaderboard": list(output.get("leaderboard") or []),
        }
        for output in version.outputs
    ]


def run_entry(run: TrainingRun) -> dict[str, Any]:
    """A run's history entry (runs_history's rows have what it reads loaded)."""
    job = run.job
    version: ModelVersion | None = getattr(run, "version", None)
    user = run.created_by
    return {
        "id": run.pk,
        "model": run.machine_id,
        "status": job.status,
        "error": job.error,
        "created_at": run.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "created_by": None if user is None else {"id": user.pk, "email": user.email},
        "spec": run_spec(run),
        "candidates": run.candidates,
        "best_score": run.best_score,
        "best_estimator": run.best_estimator,
        "version": version.number if version is not None else None,
        "outputs": version_outputs(version),
    }


# --- runs side by side ---------------------------------------------------------------------


def _parameter_value(name: str, run: TrainingRun, spec: dict[str, Any]) -> Any:
    if name == "model":
        return run.machine_id
    if name.startswith("dataset"):
        return spec["dataset"][{"dataset": "id"}.get(name, name.removeprefix("dataset_"))]
    if name == "inputs":
        return [item["name"] for item in spec["inputs"]]
    return spec[name]


def compare_runs(runs: list[TrainingRun]) -> dict[str, Any]:
    """Runs side by side: each run's entry, the parameters (with whether they differ), the
    holdout metrics per output and metric (with the best run for each), and the search's
    best-score curves per output."""
    entries = [run_entry(run) for run in runs]
    specs = [entry["spec"] for entry in entries]
    parameters = []
    for name in PARAMETERS:
        values = [_parameter_value(name, run, spec) for run, spec in zip(runs, specs, strict=True)]
        parameters.append(
            {"name": name, "values": values, "differs": any(v != values[0] for v in values)}
        )
    return {
        "runs": entries,
        "parameters": parameters,
        "metrics": _compared_metrics(entries),
        "curves": _compared_curves(runs),
    }


def _in_order(names: list[Any]) -> list[Any]:
    return list(dict.fromkeys(names))


def _compared_metrics(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_run = [{output["name"]: output for output in entry["outputs"]} for entry in entries]
    rows = []
    for output in _in_order([name for outputs in by_run for name in outputs]):
        metrics = _in_order(
            [
                metric
                for outputs in by_run
                if output in outputs
                for metric in outputs[output]["metrics"]
                if metric != "holdout_rows"
            ]
        )
        optimised = next(
            (outputs[output]["metric"] for outputs in by_run if output in outputs), None
        )
        # The optimised metric first, then the others as the versions recorded them.
        for metric in sorted(metrics, key=lambda name: name != optimised):
            values = [
                outputs[output]["metrics"].get(metric) if output in outputs else None
                for outputs in by_run
            ]
            higher = higher_is_better(metric)
            scored = [(value, entry["id"]) for value, entry in zip(values, entries, strict=True)]
            numbers = [(value, run_id) for value, run_id in scored if value is not None]
            best = (max if higher else min)(numbers)[1] if numbers else None
            rows.append(
                {
                    "output": output,
                    "metric": metric,
                    "optimised": metric == optimised,
                    "higher_is_better": higher,
                    "values": values,
                    "best_run": best,
                }
            )
    return rows


def _compared_curves(runs: list[TrainingRun]) -> list[dict[str, Any]]:
    """Per output, each run's best search score over time (TrainingRun.score_curve: `[seconds
    since the start, score]` each time the best improved) and how long its search ran."""
    outputs: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        curve = run.score_curve or {}
        job = run.job
        until = (
            round((job.finished_at - job.started_at).total_seconds(), 2)
            if job.started_at and job.finished_at
            else None
        )
        for name, points in (curve.get("outputs") or {}).items():
            outputs.setdefault(name, []).append(
                {
                    "run": run.pk,
                    "eval_method": curve.get("eval_method"),
                    "until_s": until,
                    "points": points,
                }
            )
    return [{"output": name, "series": series} for name, series in outputs.items()]
