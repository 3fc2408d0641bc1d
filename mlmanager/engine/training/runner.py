"""`train`: one search process per output, watched against the budget, then measured.

Time line of a run with budget B (all outputs share it, one after the other):

    start ── search (child) ── kill at the latest ── evaluation (parent) ── B ── B×1.05+2
             |<------------------------ share of B per output ------------->|

Each output gets an equal share of what is left. Inside a share, the search process plans to
end at `search_end`; at `search_end + grace` the parent asks it to stop (it saves the best
candidate of the chunk in flight, see `child.StopRequest`) and kills it moments later,
whatever it is doing, then measures the last checkpoint on the holdout within the reserve
left. A cancel takes the same way, at once. The slack between B and
the hard limit B×1.05+2 absorbs the rest (process start, a slow evaluation).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

from mlmanager.engine.training.child import EXIT_DISK_FULL, EXIT_REFUSED, SearchJob
from mlmanager.engine.training.process import SearchProcess, cpu_count
from mlmanager.engine.training.record import RunRecord, library_versions
from mlmanager.engine.training.spec import (
    CV_FOLDS,
    DATASET_GONE_MESSAGE,
    DISK_FULL_MESSAGE,
    HOLDOUT_SHARE,
    METRICS,
    TASKS,
    Candidate,
    OutputResult,
    OutputSpec,
    Progress,
    TrainingError,
    TrainingOutcome,
    TrainingSpec,
    usable_inputs,
)
from mlmanager.engine.training.status import OutputFolder, log_tail, read_json
from mlmanager.engine.training.trials import score_from_loss
from mlmanager.engine.training.watch import SearchWatch

logger = logging.getLogger(__name__)

POLL_S = 0.25
# Per output share: time kept for evaluation, and how long past its planned end the search
# may run before it is killed.
EVAL_SHARE, EVAL_MIN_S, EVAL_MAX_S = 0.05, 1.0, 120.0
GRACE_SHARE, GRACE_MIN_S, GRACE_MAX_S = 0.03, 0.75, 60.0
# After a cancel, evaluation of the best-so-far model gets this long (cancel must take < 5 s).
CANCEL_EVAL_S = 2.5
# After a cancel, the search gets this long to save the best candidate of the chunk in flight
# (it is interrupted, not refitted: tens of milliseconds on the test data) before it is killed.
CANCEL_STOP_S = 2.0
# The search process ends itself this long after the parent should have killed it.
WATCHDOG_MARGIN_S = 2.0


def train(
    parquet_path: Path,
    spec: TrainingSpec,
    *,
    workdir: Path,
    artifact_key: bytes,
    on_progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> TrainingOutcome:
    """Train one model per output of `spec` on the Parquet file within the time budget.

    The returned outcome is "succeeded" when every output has a model (also when the budget
    ran out during the search: the best model found in time is the result); "cancelled" when
    `should_cancel` said so, and "timed_out" when the budget ended before some output had any
    model. A "cancelled" outcome carries the outputs that had a model when the cancel came
    (the best model found so far of each; the others are missing), a "timed_out" one none.
    Problems with the data or a crashed search raise TrainingError. `workdir` receives one
    folder per output with the artifact (path and signature in the result), the holdout rows
    and the search log.

    The search runs in a child process from multiprocessing (fork server, else spawn). As for
    any such use, the calling program's main module must be safe to import (the `if __name__
    == "__main__":` idiom) and the caller must not be a daemonic process (a Celery prefork
    pool worker is one; its solo or threads pool is not).
    """
    started = time.monotonic()
    _check(spec)
    if not Path(parquet_path).is_file():
        raise TrainingError(DATASET_GONE_MESSAGE, code="dataset_missing")
    run = _Run(
        parquet_path=Path(parquet_path),
        spec=spec,
        workdir=Path(workdir),
        artifact_key=artifact_key,
        on_progress=on_progress,
        should_cancel=should_cancel,
        started=started,
    )
    return run.execute()


def _check(spec: TrainingSpec) -> None:
    budget = spec.time_budget_s
    if not isinstance(budget, int | float) or not math.isfinite(budget) or budget <= 0:
        raise TrainingError("The time budget must be a positive number of seconds.")
    if not spec.outputs:
        raise TrainingError("Choose at least one column to predict.", code="no_outputs")
    for output in spec.outputs:
        if output.task not in TASKS or output.metric not in METRICS[output.task]:
            raise TrainingError(
                f"“{output.metric}” is not a metric for a {output.task} model.",
                code="unknown_metric",
            )
    if not usable_inputs(list(spec.inputs)):
        raise TrainingError("None of the chosen inputs can be used.", code="no_usable_inputs")


class _Run:
    def __init__(
        self,
        *,
        parquet_path: Path,
        spec: TrainingSpec,
        workdir: Path,
        artifact_key: bytes,
        on_progress: Callable[[Progress], None] | None,
        should_cancel: Callable[[], bool] | None,
        started: float,
    ):
        self.parquet_path = parquet_path
        self.spec = spec
        self.workdir = workdir
        self.artifact_key = artifact_key
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.cancelled = False
        self.started = started
        self.budget = float(spec.time_budget_s)
        self.target_end = started + self.budget
        self.hard_end = started + self.budget * 1.05 + 2.0
        self.inputs = usable_inputs(list(spec.inputs))
        self.n_jobs = cpu_count()
        self.candidates_done = 0
        self.facts: dict[str, dict] = {}
        self.record = RunRecord(parquet_path)

    def execute(self) -> TrainingOutcome:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.record.start()
        results: list[OutputResult] = []
        status = "succeeded"
        for index, output in enumerate(self.spec.outputs):
            result, stopped = self._output(index, output)
            if result is not None:
                results.append(result)
            if stopped == "cancelled" or result is None:
                status = "cancelled" if stopped == "cancelled" else "timed_out"
                break
        if status == "timed_out":
            results = []  # a finished run's version must predict every output
        elapsed = time.monotonic() - self.started
        logger.info("training ended %s after %.1f s of %.1f s", status, elapsed, self.budget)
        return TrainingOutcome(
            status=status,
            outputs=results,
            candidates=self.candidates_done,
            elapsed_s=elapsed,
            reproducibility=self._reproducibility(),
        )

    # --- one output ----------------------------------------------------------------------------

    def _output(self, index: int, output: OutputSpec) -> tuple[OutputResult | None, str | None]:
        """Search and measure one output; the result (None if no model) and why it stopped
        early ("cancelled", "deadline") or None."""
        now = time.monotonic()
        share = max(0.0, self.target_end - now) / (len(self.spec.outputs) - index)
        eval_reserve = min(max(EVAL_SHARE * share, EVAL_MIN_S), EVAL_MAX_S)
        grace = min(max(GRACE_SHARE * share, GRACE_MIN_S), GRACE_MAX_S)
        search_end = now + share - eval_reserve - grace
        kill_at = search_end + grace
        folder = OutputFolder(self.workdir / f"output-{index + 1}")
        folder.path.mkdir(parents=True, exist_ok=True)
        wall_offset = time.time() - time.monotonic()
        job = SearchJob(
            parquet_path=str(self.parquet_path),
            folder=str(folder.path),
            inputs=self.inputs,
            output=output.name,
            task=output.task,
            metric=output.metric,
            seed=self.spec.seed,
            max_candidates=self.spec.max_candidates,
            search_deadline=search_end + wall_offset,
            hard_deadline=kill_at + WATCHDOG_MARGIN_S + wall_offset,
            n_jobs=self.n_jobs,
            artifact_key=self.artifact_key,
            parent_pid=os.getpid(),
        )
        watch = SearchWatch(folder=folder, metric=output.metric)
        process = SearchProcess(job)
        try:
            process.start()
            stopped = self._watch(process, watch, index, output, kill_at)
            # A kill would lose the candidates of the chunk in flight (a first chunk lasts
            # 10 % of the budget, and one slow candidate can outlast a short budget); asked to
            # stop, the search saves the best of them first. At the deadline, within half the
            # evaluation's reserve, so the hard limit holds.
            if stopped == "cancelled":
                process.request_stop(CANCEL_STOP_S)
            elif stopped == "deadline":
                process.request_stop(min(CANCEL_STOP_S, eval_reserve / 2))
        finally:
            process.stop()
        watch.refresh(final=True)
        checkpoint = watch.status.get("checkpoint")
        if stopped is None:
            if checkpoint and Path(checkpoint["path"]).is_file():
                # Crashed or killed (out of memory, say) after saving a model: that model is
                # the result, as when the deadline stops the search.
                self._log_if_failed(process.exitcode, folder, output)
            else:
                self._raise_if_failed(process.exitcode, folder, output)
        tried = watch.candidates
        self.facts[output.name] = {
            key: watch.status.get(key)
            for key in (
                "eval_method",
                "train_rows",
                "holdout_rows",
                "holdout_rows_evaluated",
                "target_row_count",
                "row_count",
                "feature_count",
                "estimators",
            )
        } | {"candidates": tried}
        if not checkpoint:
            self.candidates_done += tried
            return None, stopped or "deadline"
        # Reported before this output's candidates join candidates_done (counted once).
        self._report(index, output, watch, "Measuring the best model on the held-out rows")
        deadline = max(now + share, time.monotonic() + 0.5)
        if self.cancelled:
            deadline = time.monotonic() + CANCEL_EVAL_S
        try:
            result = self._evaluate(output, folder, watch, checkpoint, deadline)
        finally:
            self.candidates_done += tried
        return result, "cancelled" if self.cancelled else None

    def _cancel_requested(self) -> bool:
        if not self.cancelled and self.should_cancel is not None:
            self.cancelled = bool(self.should_cancel())
        return self.cancelled

    def _watch(
        self,
        process: SearchProcess,
        watch: SearchWatch,
        index: int,
        output: OutputSpec,
        kill_at: float,
    ) -> str | None:
        """Poll until the search ends (None), is cancelled, or reaches `kill_at`."""
        while True:
            if process.wait(0):
                return None
            if self._cancel_requested():
                logger.info("training cancelled")
                return "cancelled"
            watch.refresh()
            state = watch.status.get("state")
            if state in {"searching", "done", "refitting"}:
                score, estimator = watch.best()
                message = f"Trying models: {watch.candidates} tried"
                if score is not None:
                    message += f", best {output.metric} {score:.4g} ({estimator})"
                if state == "refitting":
                    message = "Refitting the best model on all rows"
            else:
                message = "Preparing the data"
            self._report(index, output, watch, message)
            if time.monotonic() >= kill_at:
                logger.info("search for %s stopped at its deadline", output.name)
                return "deadline"
            process.wait(min(POLL_S, max(0.0, kill_at - time.monotonic())))

    def _report(self, index: int, output: OutputSpec, watch: SearchWatch, message: str) -> None:
        if self.on_progress is None:
            return
        if len(self.spec.outputs) > 1:
            message = f"“{output.name}” ({index + 1} of {len(self.spec.outputs)}): {message}"
        score, estimator = watch.best()
        elapsed = time.monotonic() - self.started
        self.on_progress(
            Progress(
                elapsed_s=elapsed,
                budget_s=self.budget,
                candidates=self.candidates_done + watch.candidates,
                best_score=score,
                best_estimator=estimator,
                message=message,
                new_candidates=[
                    Candidate(
                        output=output.name,
                        estimator=trial.estimator,
                        config=trial.config,
                        score=score_from_loss(output.metric, trial.loss)
                        if math.isfinite(trial.loss)
                        else None,
                        fit_time_s=trial.fit_time_s,
                        elapsed_s=elapsed,
                    )
                    for trial in watch.take_unreported()
                ],
                eval_method=watch.status.get("eval_method"),
                output=output.name,
            )
        )

    def _log_if_failed(self, exitcode: int | None, folder: OutputFolder, output: OutputSpec):
        status = read_json(folder.status) or {}
        if exitcode == 0 and status.get("state") == "done":
            return
        logger.warning(
            "search for %s ended early (exit code %s); using its last checkpoint\n%s",
            output.name,
            exitcode,
            log_tail(folder.log),
        )

    def _raise_if_failed(self, exitcode: int | None, folder: OutputFolder, output: OutputSpec):
        status = read_json(folder.status) or {}
        if exitcode == 0 and status.get("state") == "done":
            return
        error = read_json(folder.error)
        details = log_tail(folder.log)
        if error:
            default_code = "invalid" if exitcode == EXIT_REFUSED else "crashed"
            code = error.get("code", default_code)
            raise TrainingError(error["message"], code=code, details=details)
        if exitcode == EXIT_DISK_FULL:
            raise TrainingError(DISK_FULL_MESSAGE, code="disk_full", details=details)
        if exitcode is not None and exitcode < 0:
            reason = f"it was stopped by signal {-exitcode}"
            if exitcode == -9:
                reason += ", often because the machine ran out of memory"
        else:
            reason = f"it ended with exit code {exitcode}"
        raise TrainingError(
            f"Training stopped unexpectedly while searching models for “{output.name}” "
            f"({reason}). Try again; if it keeps happening, use fewer rows or input columns.",
            code="crashed",
            details=details,
        )

    def _evaluate(
        self,
        output: OutputSpec,
        folder: OutputFolder,
        watch: SearchWatch,
        checkpoint: dict,
        deadline: float,
    ) -> OutputResult:
        # Imported here so that importing the package does not load scikit-learn.
        from mlmanager.engine.training.evaluation import evaluate

        # A cancel arriving now still gets the model measured, in at most CANCEL_EVAL_S.
        cancel_deadline: list[float] = []

        def should_stop() -> bool:
            if not cancel_deadline and self._cancel_requested():
                cancel_deadline.append(time.monotonic() + CANCEL_EVAL_S)
            return bool(cancel_deadline) and time.monotonic() >= cancel_deadline[0]

        # The checkpoint never saw the holdout, so it is what is measured; the model shipped
        # is the final one, refitted on all rows, when the search had time to write it.
        measured = Path(checkpoint["path"])
        _model, holdout_metrics, importance = evaluate(
            model_path=measured,
            signature=checkpoint["signature"],
            key=self.artifact_key,
            holdout_path=folder.holdout,
            seed=self.spec.seed,
            n_jobs=self.n_jobs,
            deadline=deadline,
            should_stop=should_stop,
        )
        final = watch.status.get("final")
        shipped = final if final and Path(final["path"]).is_file() else checkpoint
        return OutputResult(
            name=output.name,
            task=output.task,
            metric=output.metric,
            artifact_path=Path(shipped["path"]),
            artifact_signature=shipped["signature"],
            refit_on_all_rows=shipped is final,
            metrics=holdout_metrics,
            leaderboard=list(watch.status.get("leaderboard") or []),
            feature_importance=importance,
            best_estimator=str(checkpoint["estimator"]),
        )

    # --- the record --------------------------------------------------------------------------

    def _reproducibility(self) -> dict:
        methods = sorted({str(facts.get("eval_method")) for facts in self.facts.values()})
        row_counts = [facts.get("row_count") for facts in self.facts.values()]
        return {
            "seed": self.spec.seed,
            "dataset_sha256": self.record.dataset_sha256(),
            "row_count": next((count for count in row_counts if count is not None), None),
            "libraries": library_versions(),
            "budget_s": self.budget,
            "candidates": self.candidates_done,
            "max_candidates": self.spec.max_candidates,
            "holdout_share": HOLDOUT_SHARE,
            "eval_method": ", ".join(methods),
            "cv_folds": CV_FOLDS,
            "n_jobs": self.n_jobs,
            "outputs": self.facts,
        }
