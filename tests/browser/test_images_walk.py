"""The image path as a new user walks it, in a real browser (issue 16): sign up, upload a zip of
digits in class folders on the datasets page, see it processed (task and classes detected),
confirm, create-and-train a model, read its version (accuracy, curves), predict an image, open
the prediction, correct it with a review and download its PDF report; then upload a zip of
images with masks and see it detected as segmentation, its masks drawn over the gallery.

Training is bounded by epochs (MLMANAGER_VISION_MAX_EPOCHS), not by seconds, so a busy machine
only makes the walk slower. Screenshots of each step at 1280 and 390 px go to
/tmp/shots/walk-images-* for a human to look at; they are not test artifacts.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pypdfium2 as pdfium
import pytest
from django.core.mail import EmailMessage
from PIL import Image
from playwright.sync_api import Page, expect

from mlmanager.engine.vision.testing import generate_shape_image
from tests.browser.conftest import BackgroundWorker, BrowserErrors, sign_up

SHOTS = Path("/tmp/shots")
WIDTHS = (1280, 390)
DIGITS_PER_CLASS = 6  # 60 images: enough for a holdout of every class, quick to train
SHAPES = 12
SHAPE_SIDE = 24
# Generous for a loaded machine; the epoch cap, not these, ends the training.
PROCESSING_TIMEOUT_MS = 60_000
TRAINING_TIMEOUT_MS = 180_000


def _shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=SHOTS / f"walk-images-{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def _digit_pixels(pixels: np.ndarray) -> np.ndarray:
    """scikit-learn's 0..16 values stretched to 0..255, so the PNG looks like a digit."""
    return np.clip(pixels * (255.0 / 16.0), 0, 255).astype(np.uint8)


def _digits_zip(folder: Path) -> tuple[Path, Path, str]:
    """`digits/<label>/<n>.png`, DIGITS_PER_CLASS per digit; also one digit left out of the
    zip (to predict) and its true label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    kept: dict[int, int] = {}
    path = folder / "digits.zip"
    unseen: tuple[np.ndarray, int] | None = None
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
            target = int(target)
            if kept.get(target, 0) >= DIGITS_PER_CLASS:
                if unseen is None:
                    unseen = (pixels, target)
                continue
            kept[target] = kept.get(target, 0) + 1
            archive.writestr(f"digits/{target}/{index}.png", _png(_digit_pixels(pixels)))
    assert unseen is not None
    scan = folder / "scan.png"
    scan.write_bytes(_png(_digit_pixels(unseen[0])))
    return path, scan, str(unseen[1])


def _shapes_zip(folder: Path) -> Path:
    """`shapes/images/<n>.png` + `shapes/masks/<n>.png`: generated circles (mask value 1) and
    squares (2) on a noisy background (0)."""
    generator = np.random.default_rng(16)
    path = folder / "shapes.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(SHAPES):
            image, mask = generate_shape_image(generator, SHAPE_SIDE)
            archive.writestr(f"shapes/images/shape-{index:02d}.png", _png(image))
            archive.writestr(f"shapes/masks/shape-{index:02d}.png", _png(mask))
    return path


def _upload(page: Page, path: Path, name: str) -> None:
    """Through the datasets page's upload form, to the dataset's page, until processed."""
    page.goto("/datasets/")
    page.locator("input[type=file][name=file]").set_input_files(str(path))
    page.locator("input[name=name]").fill(name)
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/$"))
    status = page.get_by_test_id("dataset-status")
    expect(status).to_have_text(re.compile(r"^(Ready|Failed)$"), timeout=PROCESSING_TIMEOUT_MS)
    if status.inner_text() == "Failed":  # say why, instead of waiting for a timeout
        pytest.fail(f"processing failed: {page.get_by_test_id('dataset-error').inner_text()}")
    # The dataset is ready a moment before its job ends, and the job's last update re-renders
    # the page (reloading the gallery at its first page): look at the job until it has ended,
    # so what the walk clicks next is not reset under it.
    dataset_url = page.url
    page.get_by_role("link", name="Processing job and log").click()
    expect(page.get_by_test_id("job-status")).to_have_text("Succeeded")
    page.goto(dataset_url)


def _expect_gallery_loaded(page: Page, count: int) -> None:
    """The gallery (loaded by htmx) shows `count` thumbnails, every one of them decoded."""
    thumbnails = page.get_by_test_id("gallery-items").locator("img")
    expect(thumbnails).to_have_count(count)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=gallery-items] img')]"
        ".every(image => image.complete && image.naturalWidth > 0)"
    )


def _pdf_first_page(content: bytes) -> tuple[np.ndarray, str]:
    document = pdfium.PdfDocument(content)
    first = document[0]
    pixels = np.asarray(first.render(scale=1).to_pil().convert("L"))
    return pixels, first.get_textpage().get_text_range()


@pytest.mark.browser
def test_upload_train_predict_review_and_report_images_then_a_segmentation_set(
    page: Page,
    worker: BackgroundWorker,
    browser_errors: BrowserErrors,
    live_server: Any,
    settings: Any,
    mailoutbox: list[EmailMessage],
    tmp_path: Path,
) -> None:
    import torch

    torch.set_num_threads(2)  # the worker thread trains in this process
    settings.MLMANAGER_SITE_URL = live_server.url
    settings.MLMANAGER_VISION_MAX_EPOCHS = 2
    digits_zip, scan, true_label = _digits_zip(tmp_path)
    worker.start()

    sign_up(page, live_server.url, mailoutbox, name="Iris Walker", email="iris@example.com")

    # The zip of class folders is processed into a classification set of ten digits.
    _upload(page, digits_zip, "Handwritten digits")
    summary = page.get_by_test_id("images-summary")
    expect(summary).to_contain_text("Classification")
    expect(summary).to_contain_text(f"{10 * DIGITS_PER_CLASS} images")
    expect(summary).to_contain_text("one folder per class")
    expect(summary.get_by_test_id("images-width")).to_have_text("Width: 8 px")
    filters = page.get_by_test_id("class-filter")
    expect(filters).to_have_text([f"{digit} ({DIGITS_PER_CLASS})" for digit in range(10)])
    expect(page.get_by_test_id("category-chart")).to_be_visible()
    _expect_gallery_loaded(page, 24)  # the first page of the gallery
    _shoot(page, "dataset")

    # One class of the gallery, then the detected task and classes confirmed.
    filters.filter(has_text="7 (").click()
    _expect_gallery_loaded(page, DIGITS_PER_CLASS)
    page.get_by_test_id("confirm-images").click()
    expect(page.get_by_test_id("images-confirmed")).to_be_visible()

    # Create and train from the dataset page, in one click.
    page.get_by_test_id("train-model").click()
    expect(page.get_by_test_id("image-model-plan")).to_contain_text("label")
    page.locator("input[name=name]").fill("Digit reader")
    page.locator("select[name=level]").select_option("1")
    _shoot(page, "create")
    page.get_by_test_id("create-and-train").click()
    expect(page).to_have_url(re.compile(r"/models/\d+/$"))
    model_url = page.url
    # The page follows the run by itself (live updates) until the version is active.
    expect(page.get_by_test_id("model-status")).to_have_text(
        re.compile(r"^(Ready|Failed)$"), timeout=TRAINING_TIMEOUT_MS
    )
    if page.get_by_test_id("model-status").inner_text() == "Failed":
        pytest.fail(f"training failed: {page.get_by_test_id('run-error').inner_text()}")
    output = page.get_by_test_id("version-output")
    expect(output.get_by_test_id("metrics")).to_contain_text("accuracy")
    expect(output.get_by_test_id("members")).to_be_visible()
    expect(output.get_by_test_id("per-class")).to_be_visible()
    expect(output.get_by_test_id("confusion-matrix")).to_be_visible()
    expect(output.get_by_test_id("version-epoch-loss").first).to_be_visible()
    expect(output.get_by_test_id("version-epoch-metric").first).to_be_visible()
    _shoot(page, "model")

    # Predict a digit the model never saw.
    page.get_by_test_id("predict-link").click()
    page.locator("input[name=image]").set_input_files(str(scan))
    page.get_by_test_id("predict-button").click()
    result = page.get_by_test_id("prediction-result")
    label = result.get_by_test_id("predicted-label")
    expect(label).to_have_text(re.compile(r"^\d$"))
    expect(result.get_by_test_id("agreement")).to_be_visible()
    overlay = result.get_by_test_id("prediction-overlay")
    expect(overlay).to_be_visible()
    assert overlay.evaluate("image => image.complete && image.naturalWidth") == 8
    _shoot(page, "predict")

    # Open it and correct it: with its true label, or (when the model was right) another
    # class, so the review is a correction whatever two epochs of training learned.
    predicted = label.inner_text()
    corrected = true_label if true_label != predicted else str((int(predicted) + 1) % 10)
    result.get_by_test_id("prediction-link").click()
    expect(page).to_have_url(re.compile(r"/predictions/[0-9a-f-]{36}/$"))
    expect(page.get_by_test_id("review-status")).to_have_text("Not reviewed yet.")
    form = page.get_by_test_id("review-form")
    form.locator("select[name=status]").select_option("corrected")
    form.locator("select[name=label]").select_option(corrected)
    form.locator("textarea[name=note]").fill("Checked against the scanned form.")
    page.get_by_test_id("review-button").click()
    expect(page.get_by_test_id("review-status")).to_have_text("Corrected")
    expect(page.get_by_test_id("review-label")).to_have_text(corrected)
    expect(page.get_by_test_id("review-note")).to_have_text("Checked against the scanned form.")
    _shoot(page, "review")

    # The report, as the button downloads it: a PDF whose first page draws and says it all.
    with page.expect_download() as download:
        page.get_by_test_id("report-button").click()
    report = Path(download.value.path()).read_bytes()
    assert report.startswith(b"%PDF-")
    served = page.request.get(page.get_by_test_id("report-button").get_attribute("href") or "")
    assert served.status == 200 and served.headers["content-type"] == "application/pdf"
    pixels, text = _pdf_first_page(report)
    assert pixels.shape[0] > 500 and pixels.min() < 128 < pixels.max()  # drawn, not blank
    assert f"Prediction: {predicted}" in text
    assert "Status: Corrected" in text
    assert f"True label: {corrected}" in text
    assert "Checked against the scanned form." in text

    # A zip of images with masks: detected as segmentation, with its mask classes.
    _upload(page, _shapes_zip(tmp_path), "Shapes")
    summary = page.get_by_test_id("images-summary")
    expect(summary).to_contain_text("Segmentation")
    expect(summary).to_contain_text(f"{SHAPES} images")
    expect(summary).to_contain_text("images/ and masks/ folders")
    expect(summary.get_by_test_id("images-height")).to_have_text(f"Height: {SHAPE_SIDE} px")
    expect(page.get_by_test_id("mask-legend").locator("li")).to_have_text(["class 1", "class 2"])
    _expect_gallery_loaded(page, SHAPES)
    overlays = page.locator("[data-testid=gallery-items] img[src$='/thumbnail-overlay.png']")
    expect(overlays).to_have_count(SHAPES)
    _shoot(page, "segmentation")
    page.get_by_test_id("gallery-items").locator("a").first.click()
    expect(page.get_by_test_id("mask-overlay")).to_be_visible()
    _shoot(page, "segmentation-image")

    page.goto(model_url)
    expect(page.get_by_test_id("model-status")).to_have_text("Ready")
    assert browser_errors.messages == []
