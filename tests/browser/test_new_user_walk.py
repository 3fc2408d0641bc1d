"""The tabular path as a new user walks it, in a real browser (issue 12): sign up, upload the
demo dataset, create-and-train from the dataset page, read the curves and the baseline, predict
with a value training never saw (a warning next to its field), then cancel a second training
mid-search and keep its best model.

Screenshots of each step at 1366 and 390 px go to /tmp/shots/walk-* for a human to look at;
they are not test artifacts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.mail import EmailMessage
from playwright.sync_api import Dialog, Page, expect

from mlmanager.datasets.tests.conftest import DEMO_CSV
from tests.browser.conftest import BackgroundWorker, BrowserErrors, sign_up

SHOTS = Path("/tmp/shots")
WIDTHS = (1366, 390)


def _shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=SHOTS / f"walk-{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def _accept(dialog: Dialog) -> None:
    """Destructive buttons ask first (hx-confirm); the walk says yes."""
    dialog.accept()


def _create_and_train(page: Page, dataset_url: str, name: str, level: str) -> str:
    """From the dataset page through the wizard to the model page; returns its URL."""
    page.goto(dataset_url)
    page.get_by_test_id("train-model").click()
    page.get_by_role("button", name="Next: review inputs and budget").click()
    page.locator("input[name=name]").fill(name)
    page.locator("select[name=level]").select_option(level)
    page.get_by_test_id("create-and-train").click()
    expect(page).to_have_url(re.compile(r"/models/\d+/$"))
    return page.url


@pytest.mark.browser
def test_sign_up_train_the_demo_predict_and_cancel_keeping_a_model(
    page: Page,
    worker: BackgroundWorker,
    browser_errors: BrowserErrors,
    live_server: Any,
    settings: Any,
    mailoutbox: list[EmailMessage],
) -> None:
    settings.MLMANAGER_SITE_URL = live_server.url
    settings.MLMANAGER_TRAINING_MAX_CANDIDATES = 6  # the first model: a bounded search
    page.on("dialog", _accept)
    worker.start()

    sign_up(page, live_server.url, mailoutbox, name="Grace Walker", email="grace@example.com")

    page.locator("input[type=file][name=file]").set_input_files(DEMO_CSV)
    page.locator("input[name=name]").fill("Churn demo")
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/$"))
    dataset_url = page.url
    expect(page.get_by_test_id("dataset-status")).to_have_text("Ready", timeout=30_000)
    _shoot(page, "dataset")

    # One click in the wizard trains: the model page shows the run, then the trained version.
    # Level 2 (five minutes), so the candidate cap, not the clock, ends the search on a busy
    # machine (level 1's minute could end a capped search there without a model).
    model_url = _create_and_train(page, dataset_url, "Churn", level="2")
    expect(page.get_by_test_id("model-status")).to_have_text("Ready", timeout=300_000)
    output = page.get_by_test_id("version-output")
    expect(output.get_by_test_id("metrics")).to_contain_text("roc_auc")
    # Every metric has its baseline beside it; the demo's model beats the majority class.
    expect(output.get_by_test_id("baseline-roc_auc")).to_have_text(re.compile(r"^0[.,]5"))
    expect(output.get_by_test_id("baseline-warning")).to_have_count(0)
    for chart in (
        "roc-curve",
        "precision-recall-curve",
        "calibration",
        "importance",
        "search-curve",
    ):
        expect(output.get_by_test_id(chart)).to_be_visible()
    _shoot(page, "model")

    # A value far outside what training saw is still predicted, with a warning at its field.
    page.get_by_test_id("predict-link").click()
    page.locator("select[name=plan]").select_option("premium")
    page.locator("input[name=tenure_months]").fill("999")
    page.locator("input[name=monthly_fee]").fill("60.5")
    page.get_by_test_id("predict-button").click()
    result = page.get_by_test_id("prediction-result")
    expect(result.get_by_test_id("predicted-value")).to_have_text(re.compile(r"^(yes|no)$"))
    expect(page.get_by_test_id("field-warning-tenure_months")).to_contain_text(
        "outside the range seen in training"
    )
    _shoot(page, "predict")

    # A second model, searched without a cap: cancelled once a candidate is scored, it keeps
    # that candidate as an inactive version, which one click activates.
    settings.MLMANAGER_TRAINING_MAX_CANDIDATES = None
    _create_and_train(page, dataset_url, "Churn, cancelled", level="2")
    expect(page.get_by_test_id("run-best-label")).to_be_visible(timeout=120_000)
    _shoot(page, "run")
    page.get_by_test_id("cancel-button").click()
    expect(page.get_by_test_id("model-status")).to_have_text("Cancelled", timeout=60_000)
    expect(page.get_by_test_id("kept-versions")).to_contain_text("1 version kept, not active")
    _shoot(page, "cancelled")
    page.get_by_test_id("activate-kept").click()
    expect(page.get_by_test_id("model-status")).to_have_text("Ready")
    expect(page.get_by_test_id("predict-link")).to_be_visible()

    page.goto(model_url)
    expect(page.get_by_test_id("model-status")).to_have_text("Ready")
    assert browser_errors.messages == []
