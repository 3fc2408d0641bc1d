"""Issue 12 from the platform's side: a cancel keeps what the engine found (and says what it
did not), the model says what is true after it, the wizard trains in one click, and a run
shows its best score over time, a log line per candidate and what its scores are."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from mlmanager.accounts.caller import Caller
from mlmanager.engine.artifacts import write_artifact
from mlmanager.engine.training import OutputResult, Progress, TrainingOutcome
from mlmanager.engine.training.spec import Candidate
from mlmanager.jobs.models import Job
from mlmanager.machines import selectors, services
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun
from mlmanager.machines.tests.conftest import BUDGET_S
from mlmanager.machines.tests.test_views import _review_post


@pytest.fixture
def browser(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _result(workdir: Path, key: bytes, name: str, task: str, metric: str) -> OutputResult:
    path = workdir / f"output-{name}" / "model.joblib"
    return OutputResult(
        name=name,
        task=task,
        metric=metric,
        artifact_path=path,
        artifact_signature=write_artifact({"fake": name}, path, key=key),
        metrics={metric: 0.6541, "holdout_rows": 40},
        leaderboard=[{"estimator": "lgbm", "config": {}, "score": 0.6959, "fit_time_s": 0.2}],
        feature_importance=[],
        best_estimator="lgbm",
    )


class ScriptedEngine:
    """Stands in for engine.training.train: reports `reports`, runs `during`, then ends with
    `status` and a model for the outputs named in `found`."""

    def __init__(self) -> None:
        self.reports: list[Progress] = []
        self.during: Any = None
        self.status = "succeeded"
        self.found: list[str] | None = None  # None: every output

    def train(self, parquet_path, spec, *, workdir, artifact_key, on_progress, should_cancel):
        for report in self.reports:
            on_progress(report)
        if self.during is not None:
            self.during()
        if self.status == "cancelled":
            deadline = time.monotonic() + 10
            while not should_cancel() and time.monotonic() < deadline:
                time.sleep(0.02)
        found = [o.name for o in spec.outputs] if self.found is None else self.found
        return TrainingOutcome(
            status=self.status,
            outputs=[
                _result(workdir, artifact_key, o.name, o.task, o.metric)
                for o in spec.outputs
                if o.name in found
            ],
            candidates=3,
            elapsed_s=2.0,
            reproducibility={"outputs": {o.name: {"eval_method": "cv"} for o in spec.outputs}},
        )


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> ScriptedEngine:
    scripted = ScriptedEngine()
    monkeypatch.setattr("mlmanager.machines.services.training.train", scripted.train)
    return scripted


def _machine(owner, dataset, outputs=("churned",)) -> Machine:
    return services.machine_create(
        caller=Caller.for_session(owner),
        dataset=dataset,
        outputs=list(outputs),
        time_budget_s=BUDGET_S,
    )


# --- cancel keeps the best model of every output that has one ---------------------------------


def test_cancel_keeps_the_outputs_found_and_names_the_one_without_a_model(
    owner, make_dataset, run_jobs, engine
) -> None:
    machine = _machine(owner, make_dataset(owner), outputs=("churned", "spend"))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    engine.status, engine.found = "cancelled", ["churned"]
    engine.during = lambda: services.training_cancel(run=run)
    run_jobs()

    run.refresh_from_db()
    machine.refresh_from_db()
    assert run.job.status == Job.Status.CANCELLED
    assert not run.is_active
    kept = ModelVersion.objects.get(machine=machine)
    assert kept.outcome == ModelVersion.Outcome.CANCELLED
    assert [output["name"] for output in kept.outputs] == ["churned"]
    assert machine.active_version is None  # a cancelled run never activates
    assert "kept as version 1; it is not active" in run.job.log
    assert (
        "No model was found for “spend” before the cancel: version 1 does not predict it."
        in run.job.log
    )


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (("churned",), "Cancelled before a model was found."),
        (("churned", "spend"), "Cancelled before a model was found for any output."),
    ],
)
def test_cancel_before_any_model_keeps_nothing_and_says_so(
    owner, make_dataset, run_jobs, engine, outputs, message
) -> None:
    machine = _machine(owner, make_dataset(owner), outputs=outputs)
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    engine.status, engine.found = "cancelled", []
    engine.during = lambda: services.training_cancel(run=run)
    run_jobs()
    run.refresh_from_db()
    assert run.job.status == Job.Status.CANCELLED
    assert message in run.job.log
    assert not ModelVersion.objects.exists()


def test_cancel_after_the_first_candidate_with_the_real_engine_keeps_a_model(
    owner, make_dataset, run_jobs, settings, monkeypatch
) -> None:
    """The issue's case: the page showed candidates and a best score, the user cancelled, and
    the run ended without a version. The first chunk of a time-bounded search lasts a tenth
    of the budget (a minute here, however slow the machine); the cancel comes inside it, at the
    first candidate."""
    from mlmanager.machines.services import training

    settings.MLMANAGER_TRAINING_MAX_CANDIDATES = None
    machine = services.machine_create(
        caller=Caller.for_session(owner),
        dataset=make_dataset(owner),
        outputs=["spend"],
        time_budget_s=BUDGET_S,
    )
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    real_train = training.train
    cancelled: list[Progress] = []

    def train_and_cancel(parquet_path, spec, *, on_progress, **kwargs):
        def progress(report: Progress) -> None:
            on_progress(report)
            if report.candidates >= 1 and not cancelled:
                cancelled.append(report)
                services.training_cancel(run=run)

        return real_train(parquet_path, spec, on_progress=progress, **kwargs)

    monkeypatch.setattr(training, "train", train_and_cancel)
    run_jobs()

    assert cancelled and cancelled[0].best_score is not None
    run.refresh_from_db()
    machine.refresh_from_db()
    assert run.job.status == Job.Status.CANCELLED
    kept = ModelVersion.objects.get(machine=machine)
    assert kept.outcome == ModelVersion.Outcome.CANCELLED
    assert machine.active_version is None
    assert selectors.version_model(version=kept, output="spend") is not None
    assert "kept as version 1; it is not active" in run.job.log


# --- the model after a cancel -----------------------------------------------------------------


def test_a_model_with_a_kept_version_says_cancelled_and_offers_to_activate_it(
    browser, owner, make_dataset, run_jobs, engine
) -> None:
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    engine.status = "cancelled"
    engine.during = lambda: services.training_cancel(run=run)
    run_jobs()

    listing = browser.get("/models/").content.decode()
    page = browser.get(f"/models/{machine.pk}/").content.decode()
    for html in (listing, page):
        assert "Not trained" not in html
        assert 'data-testid="model-status">Cancelled</span>' in html
        assert "1 version kept, not active" in html
    assert "No active version yet" not in page
    assert 'data-testid="activate-kept"' in page
    assert "Activate version 1" in page

    browser.post(f"/models/{machine.pk}/versions/1/activate/")
    machine.refresh_from_db()
    assert machine.active_version is not None and machine.active_version.number == 1
    page = browser.get(f"/models/{machine.pk}/").content.decode()
    assert 'data-testid="model-status">Ready</span>' in page


def test_a_model_cancelled_before_any_model_says_so(
    browser, owner, make_dataset, run_jobs, engine
) -> None:
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    engine.status, engine.found = "cancelled", []
    engine.during = lambda: services.training_cancel(run=run)
    run_jobs()
    page = browser.get(f"/models/{machine.pk}/").content.decode()
    assert "Not trained" not in page
    assert "no model kept" in page
    assert "No active version yet: train the model to get one." in page


# --- the wizard -------------------------------------------------------------------------------


def test_the_wizard_creates_and_trains_in_one_click(browser, owner, make_dataset) -> None:
    dataset = make_dataset(owner)
    review = browser.get(f"/models/new/?dataset={dataset.pk}&outputs=churned").content.decode()
    assert review.index("Create and train") < review.index("Create without training")
    assert 'data-testid="create-and-train"' in review

    created = browser.post("/models/new/", _review_post(dataset, then="train"))
    machine = Machine.objects.get()
    assert created["Location"] == f"/models/{machine.pk}/"
    run = TrainingRun.objects.get(machine=machine)
    assert run.is_active and run.job.status == Job.Status.QUEUED
    page = browser.get(f"/models/{machine.pk}/").content.decode()
    assert "Its training is queued." in page
    assert 'data-testid="active-run"' in page


def test_the_wizard_can_still_create_without_training(browser, owner, make_dataset) -> None:
    dataset = make_dataset(owner)
    browser.post("/models/new/", _review_post(dataset, then="create"))
    assert Machine.objects.count() == 1
    assert not TrainingRun.objects.exists()


# --- what the run shows -----------------------------------------------------------------------


def _candidate(number: int, score: float, elapsed: float) -> Candidate:
    return Candidate(
        output="churned",
        estimator="lgbm" if number % 2 else "rf",
        config={"n_estimators": 100 + number, "num_leaves": 31, "learning_rate": 0.1, "x": 1},
        score=score,
        fit_time_s=0.25 * number,
        elapsed_s=elapsed,
    )


def _report(elapsed: float, best: float, candidates: list[Candidate], total: int) -> Progress:
    return Progress(
        elapsed_s=elapsed,
        budget_s=BUDGET_S,
        candidates=total,
        best_score=best,
        best_estimator="lgbm",
        message="Trying models",
        new_candidates=candidates,
        eval_method="cv",
        output="churned",
    )


def test_a_run_logs_each_candidate_draws_its_best_score_and_labels_its_scores(
    browser, owner, make_dataset, run_jobs, engine
) -> None:
    machine = _machine(owner, make_dataset(owner))
    services.training_start(caller=Caller.for_session(owner), machine=machine)
    engine.reports = [
        _report(1.0, 0.61, [_candidate(1, 0.61, 1.0)], 1),
        _report(2.0, 0.6959, [_candidate(2, 0.6959, 2.0), _candidate(3, 0.65, 2.0)], 3),
    ]
    pages: list[str] = []
    engine.during = lambda: pages.append(browser.get(f"/models/{machine.pk}/").content.decode())
    run_jobs()

    [during] = pages
    assert 'data-testid="best-score-curve"' in during
    assert "best cross-validated roc_auc so far" in during
    assert "Scores during the search are cross-validated (5 folds of the training rows)" in during
    # Saved at most every half second while the search runs: the first point at least.
    assert 'class="chart-dot"' in during

    run = TrainingRun.objects.get(machine=machine)
    assert run.score_curve == {
        "eval_method": "cv",
        "outputs": {"churned": [[1.0, 0.61], [2.0, 0.6959]]},
    }
    lines = run.job.log_lines
    candidate_lines = [line for line in lines if "Candidate " in line]
    assert len(candidate_lines) == 3
    assert candidate_lines[0].endswith(
        "Candidate 1: lgbm (n_estimators 101, num_leaves 31, learning_rate 0.1) · "
        "cross-validated roc_auc 0.61 · 0.2 s"
    )
    assert candidate_lines[1].endswith(
        "Candidate 2: rf (n_estimators 102, num_leaves 31, "
        "learning_rate 0.1) · cross-validated roc_auc 0.6959 · 0.5 s"
    )
    assert any(
        "churned: best cross-validated roc_auc in the search 0.6959 (lgbm); roc_auc on the "
        "held-out rows 0.6541." in line
        for line in lines
    )
