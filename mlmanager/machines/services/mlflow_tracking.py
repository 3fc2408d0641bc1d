"""Runs logged to an MLflow tracking server, and versions registered there (MLFLOW_TRACKING_URI).

MLflow cannot be installed beside the project (it pins older libraries), so this speaks its
REST API with httpx: `/api/2.0/mlflow/...` for experiments, runs, metrics and the model
registry, and the server's proxied artifact API (`mlflow server --serve-artifacts`,
`/api/2.0/mlflow-artifacts/artifacts/...`) for files.

What a run becomes in MLflow:
- an experiment per model, "mlmanager/<team>/<model name> (#<id>)", and for registered
  versions a registered model "mlmanager.<team>.<model name> (#<id>)" (no "/" there);
- a run named "run <id> (v<n>)" with params (inputs, outputs, budget, seed, max_candidates,
  the dataset's id, checksum and rows, each output's best family), metrics (each output's
  search score curve, one step per point, its time as the timestamp; the holdout metrics;
  the candidates tried), tags (`mlmanager.model_id`, `mlmanager.run_id`, `mlmanager.version`,
  `mlmanager.team`) and artifacts (`model/`: the MLflow model directory of
  services.mlflow_export; `metrics.json`; `leaderboard.csv`).

Logging is a background job queued after the run's version is recorded (`run_log_enqueue`):
it never slows or fails a training. An unreachable server is retried a few times, each try a
line in the job's log, then the job fails with the reason. A retried job finds the run it
half logged by its `mlmanager.run_id` tag and starts it again.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError, Conflict
from mlmanager.jobs.models import Job
from mlmanager.jobs.runner import JobContext
from mlmanager.jobs.services import job_create, job_enqueue
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun
from mlmanager.machines.services.mlflow_export import export_problem, mlflow_model_files

logger = logging.getLogger(__name__)

MLFLOW_LOG = "machine.mlflow_log"
REQUEST_TIMEOUT_S = 30.0
# Tries of one request while the server does not answer (or answers 5xx), with these pauses.
ATTEMPTS = 3
BACKOFF_S = 2.0
# MLflow's LogBatch limits (1000 metrics, 100 params, 100 tags per request) and its
# param-value length (6000 characters in MLflow 3).
BATCH_METRICS = 1000
BATCH_PARAMS = 100
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 5000
# Tag of a run logged completely: a retried job skips it, or starts a half-logged one again.
COMPLETE_TAG = "mlmanager.complete"
MODEL_ARTIFACT_PATH = "model"
# Characters MLflow allows in metric and param names.
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


class MlflowError(Exception):
    """An MLflow server refused a request (`code` is its error_code) or did not answer
    (`code` "UNREACHABLE")."""

    def __init__(self, message: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    @property
    def is_transient(self) -> bool:
        return self.code == "UNREACHABLE" or self.status >= 500


def tracking_uri() -> str:
    return str(getattr(settings, "MLFLOW_TRACKING_URI", "") or "").rstrip("/")


def require_tracking_uri() -> str:
    uri = tracking_uri()
    if not uri:
        raise Conflict(
            _("No MLflow server is configured: set MLFLOW_TRACKING_URI to its address."),
            code="mlflow_not_configured",
        )
    return uri


class MlflowClient:
    """The few REST calls of MLflow this module needs. `transport` is for tests (httpx's
    MockTransport); `on_retry(message)` hears of each failed try before the next."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url, transport=transport, timeout=REQUEST_TIMEOUT_S
        )
        self.on_retry = on_retry

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
    ) -> dict[str, Any]:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self.http.request(
                    method, path, json=json_body, params=params, content=content
                )
            except httpx.HTTPError as error:
                failure = MlflowError(
                    _("MLflow at %(url)s did not answer: %(error)s")
                    % {"url": self.base_url, "error": error.__class__.__name__},
                    code="UNREACHABLE",
                )
            else:
                if response.status_code < 400:
                    return response.json() if response.content else {}
                failure = _refusal(response)
            if not failure.is_transient or attempt == ATTEMPTS:
                raise failure
            pause = BACKOFF_S * 2 ** (attempt - 1)
            if self.on_retry is not None:
                self.on_retry(
                    _("%(error)s Trying again in %(seconds)s s (try %(attempt)s of %(count)s).")
                    % {
                        "error": failure.message,
                        "seconds": f"{pause:g}",
                        "attempt": attempt + 1,
                        "count": ATTEMPTS,
                    }
                )
            time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/api/2.0/mlflow/{endpoint}", json_body=body)

    def get(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.request("GET", f"/api/2.0/mlflow/{endpoint}", params=params)

    def experiment_id(self, name: str) -> str:
        """The experiment of this name, created when missing."""
        try:
            found = self.get("experiments/get-by-name", {"experiment_name": name})
            return str(found["experiment"]["experiment_id"])
        except MlflowError as error:
            if error.code != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            return str(self.post("experiments/create", {"name": name})["experiment_id"])
        except MlflowError as error:
            if error.code != "RESOURCE_ALREADY_EXISTS":  # created meanwhile by another job
                raise
        found = self.get("experiments/get-by-name", {"experiment_name": name})
        return str(found["experiment"]["experiment_id"])

    def find_runs(self, experiment_id: str, *, run_id: int) -> list[dict[str, Any]]:
        """The MLflow runs of an MLManager run (by its tag)."""
        body = {
            "experiment_ids": [experiment_id],
            "filter": f"tags.`mlmanager.run_id` = '{int(run_id)}'",
            "max_results": 10,
        }
        return list(self.post("runs/search", body).get("runs") or [])

    def upload(self, artifact_uri: str, path: str, data: bytes) -> None:
        """One file into a run's artifacts, through the server's artifact proxy."""
        root = artifact_root_path(artifact_uri)
        self.request(
            "PUT",
            f"/api/2.0/mlflow-artifacts/artifacts/{quote(root)}/{quote(path)}",
            content=data,
        )

    def log_batch(
        self,
        run_id: str,
        *,
        params: list[dict[str, str]],
        metrics: list[dict[str, Any]],
        tags: list[dict[str, str]],
    ) -> None:
        """Params, metrics and tags in as many requests as MLflow's LogBatch limits need."""
        for start in range(0, len(params), BATCH_PARAMS):
            self.post(
                "runs/log-batch",
                {"run_id": run_id, "params": params[start : start + BATCH_PARAMS]},
            )
        for start in range(0, len(metrics), BATCH_METRICS):
            self.post(
                "runs/log-batch",
                {"run_id": run_id, "metrics": metrics[start : start + BATCH_METRICS]},
            )
        if tags:
            self.post("runs/log-batch", {"run_id": run_id, "tags": tags})


def _refusal(response: httpx.Response) -> MlflowError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = str(body.get("error_code") or "") if isinstance(body, dict) else ""
    message = str(body.get("message") or "") if isinstance(body, dict) else ""
    return MlflowError(
        _("MLflow refused %(path)s (HTTP %(status)s): %(message)s")
        % {
            "path": response.request.url.path,
            "status": response.status_code,
            "message": (message or response.text)[:300],
        },
        code=code,
        status=response.status_code,
    )


def artifact_root_path(artifact_uri: str) -> str:
    """The path under the artifact proxy of a run's `mlflow-artifacts:` URI
    (`mlflow-artifacts:/1/<run>/artifacts` or `mlflow-artifacts://host:port/1/...`)."""
    parts = urlsplit(artifact_uri)
    if parts.scheme != "mlflow-artifacts":
        raise MlflowError(
            _(
                "The MLflow server stores artifacts at %(uri)s, which MLManager cannot write "
                "to: start it with --serve-artifacts."
            )
            % {"uri": artifact_uri},
            code="ARTIFACTS_NOT_PROXIED",
        )
    return parts.path.strip("/")


# --- what a run becomes: pure functions of the run and its version ----------------------------


def experiment_name(machine: Machine) -> str:
    return f"mlmanager/{machine.team.name}/{machine.name} (#{machine.pk})"


def registered_model_name(machine: Machine) -> str:
    """The experiment's name as MLflow's registry allows it (no "/" nor ":"):
    "mlmanager.<team>.<model name> (#<id>)"."""
    team = re.sub(r"[/:]", "-", machine.team.name)
    name = re.sub(r"[/:]", "-", machine.name)
    return f"mlmanager.{team}.{name} (#{machine.pk})"


def metric_key(*parts: str) -> str:
    return "/".join(_UNSAFE_KEY.sub("_", str(part)) for part in parts)[:250]


def run_params(run: TrainingRun, version: ModelVersion | None) -> list[dict[str, str]]:
    spec = run.spec or {}
    dataset = spec.get("dataset") or {}
    outputs = spec.get("outputs") or []
    values: dict[str, Any] = {
        "inputs": ",".join(_input_name(item) for item in spec.get("inputs") or []),
        "outputs": ",".join(
            f"{item.get('name')}:{item.get('task')}:{item.get('metric')}" for item in outputs
        ),
        "time_budget_s": run.time_budget_s,
        "seed": run.seed,
        "max_candidates": run.max_candidates if run.max_candidates is not None else "",
        "dataset_id": dataset.get("id", spec.get("dataset_id", "")),
        "dataset_checksum": dataset.get("checksum", ""),
        "dataset_rows": dataset.get("rows", ""),
    }
    for output in (version.outputs if version is not None else []) or []:
        values[metric_key(f"{output['name']}.best_estimator")] = output.get("best_estimator", "")
    return [
        {"key": key, "value": str(value)[:MAX_PARAM_VALUE]}
        for key, value in values.items()
        if value != "" and value is not None
    ]


def _input_name(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("name"))
    if isinstance(item, list | tuple):
        return str(item[0])
    return str(item)


def run_metrics(
    run: TrainingRun, version: ModelVersion | None, *, start_ms: int
) -> list[dict[str, Any]]:
    """The search score curve of each output (step = point number, timestamp = when it was
    reached), the holdout metrics and the candidates tried (step 0)."""
    metrics: list[dict[str, Any]] = []
    curve = (run.score_curve or {}).get("outputs") or {}
    for output, points in curve.items():
        for step, (seconds, score) in enumerate(points):
            if _finite(score):
                metrics.append(
                    {
                        "key": metric_key("search_score", output),
                        "value": float(score),
                        "timestamp": start_ms + int(float(seconds) * 1000),
                        "step": step,
                    }
                )
    end_ms = start_ms + int(run.time_budget_s * 1000)
    for output in (version.outputs if version is not None else []) or []:
        for name, value in sorted((output.get("metrics") or {}).items()):
            if _finite(value):
                metrics.append(
                    {
                        "key": metric_key("holdout", output["name"], name),
                        "value": float(value),
                        "timestamp": end_ms,
                        "step": 0,
                    }
                )
    metrics.append(
        {"key": "candidates", "value": float(run.candidates), "timestamp": end_ms, "step": 0}
    )
    return metrics


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def run_tags(run: TrainingRun, version: ModelVersion | None) -> list[dict[str, str]]:
    machine = run.machine
    values = {
        "mlmanager.model_id": str(machine.pk),
        "mlmanager.model_name": machine.name,
        "mlmanager.run_id": str(run.pk),
        "mlmanager.version": str(version.number) if version is not None else "",
        "mlmanager.team": machine.team.name,
        "mlmanager.outcome": version.outcome if version is not None else "",
        "mlflow.runName": run_name(run, version),
        "mlflow.source.name": "MLManager",
    }
    return [{"key": key, "value": value[:MAX_TAG_VALUE]} for key, value in values.items() if value]


def run_name(run: TrainingRun, version: ModelVersion | None) -> str:
    if version is None:
        return f"run {run.pk}"
    return f"run {run.pk} (v{version.number})"


def metrics_json(version: ModelVersion) -> bytes:
    """Per output: its task, metric, holdout metrics and baseline (what the version page shows)."""
    return json.dumps(
        {
            output["name"]: {
                "task": output.get("task"),
                "metric": output.get("metric"),
                "metrics": output.get("metrics") or {},
                "baseline": output.get("baseline"),
                "best_estimator": output.get("best_estimator"),
            }
            for output in version.outputs
        },
        indent=2,
        sort_keys=True,
    ).encode()


def leaderboard_csv(version: ModelVersion) -> bytes:
    """Every candidate of every output: output, rank, estimator, score, seconds, config."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["output", "rank", "estimator", "score", "fit_time_s", "config"])
    for output in version.outputs:
        for rank, row in enumerate(output.get("leaderboard") or [], start=1):
            writer.writerow(
                [
                    output["name"],
                    rank,
                    row.get("estimator", ""),
                    "" if row.get("score") is None else row.get("score"),
                    "" if row.get("fit_time_s") is None else row.get("fit_time_s"),
                    json.dumps(row.get("config") or {}, sort_keys=True),
                ]
            )
    return buffer.getvalue().encode()


def run_artifacts(version: ModelVersion) -> dict[str, bytes]:
    """The files of a logged run, by their path in its artifacts."""
    artifacts = {
        f"{MODEL_ARTIFACT_PATH}/{path}": data
        for path, data in mlflow_model_files(version=version).items()
    }
    artifacts["metrics.json"] = metrics_json(version)
    artifacts["leaderboard.csv"] = leaderboard_csv(version)
    return artifacts


# --- the background job ------------------------------------------------------------------------


def run_log_enqueue(*, run: TrainingRun) -> Job | None:
    """Queue the job that logs `run` to MLflow, after the surrounding transaction commits.

    Nothing without MLFLOW_TRACKING_URI. Called at the end of a run that recorded a version
    (services.training), so an error here must never fail the training: it is logged."""
    if not tracking_uri():
        return None
    from mlmanager.machines.tasks import mlflow_log_run

    try:
        with transaction.atomic():
            job = job_create(
                team=run.machine.team,
                created_by=run.created_by,
                kind=MLFLOW_LOG,
                subject=run,
                description=_("Log run %(run)s of %(name)s to MLflow")
                % {"run": run.pk, "name": run.machine.name},
            )
            job_enqueue(job=job, task=mlflow_log_run, run_id=run.pk)
    except Exception:
        logger.exception("run %s: the MLflow logging job could not be queued", run.pk)
        return None
    return job


def run_log_work(context: JobContext, *, run_id: int) -> dict[str, Any]:
    """The job's work: log the run (and its version) to MLflow."""
    run = TrainingRun.objects.select_related("machine__team", "version").filter(pk=run_id).first()
    if run is None:
        raise ApplicationError(_("The run was deleted before it was logged to MLflow."))
    uri = tracking_uri()
    if not uri:
        raise ApplicationError(
            _("MLFLOW_TRACKING_URI is no longer set; the run was not logged."),
            code="mlflow_not_configured",
        )
    context.log(_("Logging run %(run)s to MLflow at %(url)s.") % {"run": run.pk, "url": uri})
    client = MlflowClient(uri, on_retry=context.log)
    try:
        logged = run_log(client, run=run, log=context.log)
    except MlflowError as error:
        raise ApplicationError(error.message, code="mlflow_failed") from None
    finally:
        client.close()
    context.log(
        _("Logged as MLflow run %(run)s of experiment %(experiment)s.")
        % {"run": logged["run_id"], "experiment": logged["experiment_id"]}
    )
    return {"machine_id": run.machine_id, "run_id": run.pk, "mlflow_run_id": logged["run_id"]}


def _version_of(run: TrainingRun) -> ModelVersion | None:
    try:
        return run.version
    except ModelVersion.DoesNotExist:
        return None


def run_log(
    client: MlflowClient, *, run: TrainingRun, log: Callable[[str], None] | None = None
) -> dict[str, str]:
    """Log `run` to MLflow (once: a completely logged run is found by its tag and kept).
    Returns the MLflow `experiment_id`, `run_id` and `artifact_uri`."""
    version = _version_of(run)
    experiment_id = client.experiment_id(experiment_name(run.machine))
    for found in client.find_runs(experiment_id, run_id=run.pk):
        info = found["info"]
        tags = {tag["key"]: tag["value"] for tag in (found.get("data") or {}).get("tags") or []}
        if tags.get(COMPLETE_TAG) == "true":
            return {
                "experiment_id": experiment_id,
                "run_id": info["run_id"],
                "artifact_uri": info["artifact_uri"],
            }
        # Half logged by an attempt that failed: start again from nothing.
        client.post("runs/delete", {"run_id": info["run_id"]})
    start_ms = int(run.created_at.timestamp() * 1000)
    created = client.post(
        "runs/create",
        {
            "experiment_id": experiment_id,
            "run_name": run_name(run, version),
            "start_time": start_ms,
            "tags": run_tags(run, version),
        },
    )["run"]["info"]
    mlflow_run_id, artifact_uri = created["run_id"], created["artifact_uri"]
    client.log_batch(
        mlflow_run_id,
        params=run_params(run, version),
        metrics=run_metrics(run, version, start_ms=start_ms),
        tags=[],
    )
    if version is not None:
        for path, data in run_artifacts(version).items():
            client.upload(artifact_uri, path, data)
        if log is not None:
            log(_("Artifacts uploaded: the MLflow model, metrics.json and leaderboard.csv."))
    finished = version is not None and version.outcome == ModelVersion.Outcome.SUCCEEDED
    client.post(
        "runs/update",
        {
            "run_id": mlflow_run_id,
            "status": "FINISHED" if finished else "KILLED",
            "end_time": int(run.updated_at.timestamp() * 1000),
        },
    )
    client.post("runs/set-tag", {"run_id": mlflow_run_id, "key": COMPLETE_TAG, "value": "true"})
    return {"experiment_id": experiment_id, "run_id": mlflow_run_id, "artifact_uri": artifact_uri}


# --- the model registry --------------------------------------------------------------------------


def version_register(*, caller: Caller, version: ModelVersion) -> dict[str, Any]:
    """Register `version` as a version of the MLflow registered model named like its
    experiment (`registered_model_name`: the registry refuses "/"), from the `model/`
    artifacts of its logged run (logged now when it was not). Synchronous: answers the
    registered model's name and version number. 409 `mlflow_not_configured` without
    MLFLOW_TRACKING_URI, `mlflow_no_run` for a version not trained here (a marketplace copy),
    502 `mlflow_failed` when MLflow refuses or is down."""
    uri = require_tracking_uri()
    run = version.run
    if run is None:
        raise Conflict(
            _("This version was not trained here (it is a copy), so it has no run to register."),
            code="mlflow_no_run",
        )
    problem = export_problem(version=version)
    if problem is not None:
        raise Conflict(problem, code="export_unsupported")
    run = TrainingRun.objects.select_related("machine__team", "version").filter(pk=run.pk).get()
    client = MlflowClient(uri)
    name = registered_model_name(version.machine)
    try:
        logged = run_log(client, run=run)
        try:
            client.post("registered-models/create", {"name": name})
        except MlflowError as error:
            if error.code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"{logged['artifact_uri'].rstrip('/')}/{MODEL_ARTIFACT_PATH}"
        created = client.post(
            "model-versions/create",
            {
                "name": name,
                "source": source,
                "run_id": logged["run_id"],
                "tags": [
                    {"key": "mlmanager.model_id", "value": str(version.machine_id)},
                    {"key": "mlmanager.version", "value": str(version.number)},
                ],
                "description": f"MLManager model {version.machine_id}, version {version.number}",
            },
        )["model_version"]
    except MlflowError as error:
        raise ApplicationError(error.message, code="mlflow_failed", status_code=502) from None
    finally:
        client.close()
    registered = {
        "name": created["name"],
        "version": int(created["version"]),
        "run_id": logged["run_id"],
        "source": source,
    }
    with transaction.atomic():
        audit_record(
            caller=caller,
            team=version.machine.team,
            action=AuditAction.MODEL_VERSION_MLFLOW_REGISTERED,
            target=version,
            details={"name": registered["name"], "mlflow_version": registered["version"]},
        )
    logger.info(
        "model %s: version %s registered in MLflow as %s v%s",
        version.machine_id,
        version.number,
        registered["name"],
        registered["version"],
    )
    return registered
