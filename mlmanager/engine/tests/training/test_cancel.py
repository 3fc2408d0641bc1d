"""Cancel keeps the best model found so far, whenever it comes (issue 12, item 1).

A cancel used to kill the search process at once. The checkpoint is written when a chunk of
the search ends, and the first chunk lasts a tenth of the budget (about 30 s at level 2), so a
cancel during it lost every candidate the page had already shown. Each test cancels at one
moment of a run and asserts the outcome: status, model or not.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from mlmanager.engine.tests.training.conftest import (
    CLASSIFICATION_INPUTS,
    GENEROUS_BUDGET_S,
    KEY,
    REGRESSION_INPUTS,
    classification_frame,
    regression_frame,
    spec,
    write_parquet,
)
from mlmanager.engine.training import Progress, load_model, train
from mlmanager.engine.training.child import STOP, STOP_SIGNAL, SearchJob, SearchStopped
from mlmanager.engine.training.status import OutputFolder, read_json


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cancel")
    return write_parquet(folder / "data.parquet", classification_frame(400))


@pytest.fixture(scope="module")
def two_outputs(tmp_path_factory) -> Path:
    frame = regression_frame(300)
    frame["double"] = frame["amount"] * 2
    return write_parquet(tmp_path_factory.mktemp("cancel2") / "data.parquet", frame)


def _cancel_when(condition):
    """should_cancel and on_progress callbacks that cancel once `condition(progress)` holds."""
    cancelled: list[Progress] = []

    def on_progress(progress: Progress) -> None:
        if not cancelled and condition(progress):
            cancelled.append(progress)

    return cancelled, on_progress, lambda: bool(cancelled)


def _assert_kept(outcome, workdir: Path) -> None:
    assert outcome.status == "cancelled"
    [result] = outcome.outputs
    assert result.metrics["roc_auc"] > 0.6
    model = load_model(result.artifact_path, key=KEY, signature=result.artifact_signature)
    assert model.predict(classification_frame(5)).shape == (5,)
    assert multiprocessing.active_children() == []


def test_cancel_before_the_first_candidate_keeps_nothing(data: Path, tmp_path: Path):
    outcome = train(
        data,
        spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc")),
        workdir=tmp_path / "work",
        artifact_key=KEY,
        should_cancel=lambda: True,
    )
    assert outcome.status == "cancelled"
    assert outcome.outputs == []
    assert outcome.candidates == 0
    assert multiprocessing.active_children() == []


def test_cancel_after_the_first_candidate_keeps_it(data: Path, tmp_path: Path):
    """The first chunk of a time-bounded search lasts a tenth of the budget (about a minute
    here, so however slow the machine): the cancel comes inside it, before any checkpoint was
    written (the case the issue reports)."""
    workdir = tmp_path / "work"
    cancelled, on_progress, should_cancel = _cancel_when(lambda progress: progress.candidates >= 1)
    outcome = train(
        data,
        spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc")),
        workdir=workdir,
        artifact_key=KEY,
        on_progress=on_progress,
        should_cancel=should_cancel,
    )
    assert cancelled and cancelled[0].best_score is not None
    assert not list(workdir.glob("output-1/final.joblib"))  # no time for a refit
    _assert_kept(outcome, workdir)
    assert outcome.candidates >= 1
    assert read_json(workdir / "output-1" / "status.json")["state"] == "stopped"


def test_cancel_mid_search_keeps_the_best_so_far(data: Path, tmp_path: Path):
    workdir = tmp_path / "work"
    cancelled, on_progress, should_cancel = _cancel_when(
        lambda progress: progress.candidates >= 3 and progress.message.startswith("Trying")
    )
    outcome = train(
        data,
        spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc")),
        workdir=workdir,
        artifact_key=KEY,
        on_progress=on_progress,
        should_cancel=should_cancel,
    )
    assert cancelled
    _assert_kept(outcome, workdir)
    assert outcome.candidates >= 3


def test_cancel_during_the_evaluation_keeps_the_model(data: Path, tmp_path: Path):
    workdir = tmp_path / "work"
    cancelled, on_progress, should_cancel = _cancel_when(
        lambda progress: progress.message.startswith("Measuring")
    )
    outcome = train(
        data,
        spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc"), max_candidates=2),
        workdir=workdir,
        artifact_key=KEY,
        on_progress=on_progress,
        should_cancel=should_cancel,
    )
    assert cancelled
    _assert_kept(outcome, workdir)
    # The search had finished: the model shipped is the one refitted on all rows.
    assert outcome.outputs[0].refit_on_all_rows
    # The last report counted each candidate once (it used to count them twice).
    assert cancelled[0].candidates == outcome.candidates == 2


def test_cancel_during_the_first_of_two_outputs_keeps_that_output(
    two_outputs: Path, tmp_path: Path
):
    _cancelled, on_progress, should_cancel = _cancel_when(lambda progress: progress.candidates >= 1)
    outcome = train(
        two_outputs,
        spec(
            REGRESSION_INPUTS,
            ("amount", "regression", "rmse"),
            ("double", "regression", "rmse"),
        ),
        workdir=tmp_path / "work",
        artifact_key=KEY,
        on_progress=on_progress,
        should_cancel=should_cancel,
    )
    assert outcome.status == "cancelled"
    assert [result.name for result in outcome.outputs] == ["amount"]
    assert multiprocessing.active_children() == []


def _job(data: Path, folder: Path, *, max_candidates: int) -> SearchJob:
    return SearchJob(
        parquet_path=str(data),
        folder=str(folder),
        inputs=CLASSIFICATION_INPUTS,
        output="label",
        task="binary",
        metric="roc_auc",
        seed=0,
        max_candidates=max_candidates,
        # Counted searches: the candidate cap ends them, never these.
        search_deadline=time.time() + GENEROUS_BUDGET_S,
        hard_deadline=time.time() + GENEROUS_BUDGET_S + 10,
        n_jobs=1,
        artifact_key=KEY,
        parent_pid=os.getpid(),
    )


@pytest.fixture
def stop_handler():
    """The search process's stop handler, installed in this process for an in-process search."""
    assert STOP_SIGNAL is not None
    import signal

    previous = signal.getsignal(STOP_SIGNAL)
    STOP.requested = False
    STOP.install()
    yield
    # A knock still on its way (StopRequest sends the signal again for a swallowed stop) must
    # land on the handler: with the default one back, it would end the test run.
    deadline = time.monotonic() + 5
    while STOP._knocking and time.monotonic() < deadline:
        time.sleep(0.05)
    signal.signal(STOP_SIGNAL, previous)
    STOP.requested = False


def test_a_stop_during_the_final_refit_keeps_the_checkpoint(
    data: Path, tmp_path: Path, monkeypatch, stop_handler
):
    """The refit on all rows runs in the search process after the search; a cancel then keeps
    the checkpoint (the search's best model, which the parent measures and ships)."""
    from mlmanager.engine.training import search

    real_refitted = search.refitted

    def slow_refit(estimator, rows, *, budget_s):
        if rows is not None and len(rows) == 400:  # the final refit: training rows + holdout
            os.kill(os.getpid(), STOP_SIGNAL)
            time.sleep(5)  # the signal interrupts this
            raise AssertionError("the stop did not interrupt the refit")
        return real_refitted(estimator, rows, budget_s=budget_s)

    monkeypatch.setattr(search, "refitted", slow_refit)
    folder = OutputFolder(tmp_path / "output-1")
    folder.path.mkdir()
    # slow_refit raises if the stop does not interrupt it, so this returns only if it did.
    search.run_search(_job(data, folder.path, max_candidates=4), folder)
    status = read_json(folder.status)
    assert status["state"] == "stopped"
    assert status["final"] is None
    assert Path(status["checkpoint"]["path"]).is_file()


# The stop can land in xgboost's data-iterator callback, where ctypes reports the exception as
# unraisable and drops it; StopRequest then sends the signal again (what this test proves).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_during_a_chunk_saves_its_best_candidate(data: Path, tmp_path: Path, stop_handler):
    """In-process: the stop arrives while FLAML searches the first chunk, once its trial log
    has a candidate; the search saves that chunk's best candidate as the checkpoint."""
    from mlmanager.engine.training import search

    folder = OutputFolder(tmp_path / "output-1")
    folder.path.mkdir()

    search_over = threading.Event()

    def stop_after_first_trial() -> None:
        # Never after the search: the signal would then reach pytest with the default handler
        # back in place, and end the whole run.
        log = folder.path / "trials-0.jsonl"
        while not search_over.wait(0.01):
            if log.is_file() and '"learner"' in log.read_text(encoding="utf-8"):
                os.kill(os.getpid(), STOP_SIGNAL)
                return

    stopper = threading.Thread(target=stop_after_first_trial, daemon=True)
    stopper.start()
    try:
        search.run_search(_job(data, folder.path, max_candidates=200), folder)
    finally:
        search_over.set()
        stopper.join()
    status = read_json(folder.status)
    assert status["state"] == "stopped"
    # The stop cut the first chunk (50 candidates here) short.
    assert 1 <= status["candidates"] < 50
    assert status["checkpoint"] is not None and status["checkpoint"]["number"] == 1
    model = load_model(
        Path(status["checkpoint"]["path"]), key=KEY, signature=status["checkpoint"]["signature"]
    )
    assert model.predict(classification_frame(5)).shape == (5,)


# The unraisable report is ctypes' own (what this test provokes on purpose).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_swallowed_by_a_c_callback_is_sent_again(stop_handler):
    """The first SearchStopped lands in a ctypes callback, which drops it; the knock that
    follows stops the step anyway, and no knock outlives the step."""
    import ctypes

    in_callback = threading.Event()

    def callback() -> None:
        in_callback.set()
        time.sleep(0.3)  # the stop arrives here, and ctypes drops its exception

    c_callback = ctypes.CFUNCTYPE(None)(callback)
    threading.Thread(
        target=lambda: in_callback.wait(5) and os.kill(os.getpid(), STOP_SIGNAL), daemon=True
    ).start()
    started = time.monotonic()
    with pytest.raises(SearchStopped), STOP.interruptible():
        c_callback()
        while time.monotonic() - started < 10:
            time.sleep(0.05)
    deadline = time.monotonic() + 5
    while STOP._knocking and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not STOP._knocking
