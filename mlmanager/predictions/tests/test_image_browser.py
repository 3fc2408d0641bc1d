"""In a real browser (issue 16): choose an image on an image model's predict page (htmx swaps
the class, votes, agreement and saliency overlay in), open the prediction, correct it and see
the review; a segmentation model's answer with its mask and areas.

Screenshots at 1280 and 390 px go to /tmp/shots/imgpredict-* for a human to look at; they are
not test artifacts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from mlmanager.core.tests.factories import PASSWORD
from mlmanager.predictions.tests.images_helpers import digit, shape
from tests.browser.conftest import (  # noqa: F401 - fixtures
    BrowserErrors,
    browser_errors,
    live_server,
    live_socket_server,
    page,
)

SHOTS = Path("/tmp/shots")
WIDTHS = (1280, 390)


def _shoot(browser_page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        browser_page.set_viewport_size({"width": width, "height": 900})
        browser_page.screenshot(path=SHOTS / f"imgpredict-{name}-{width}.png", full_page=True)
    browser_page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def _log_in(browser_page: Page, user: Any) -> None:
    browser_page.goto("/accounts/login/")
    browser_page.locator("input[name=username]").fill(user.email)
    browser_page.locator("input[name=password]").fill(PASSWORD)
    browser_page.get_by_role("button", name="Log in").click()


@pytest.mark.browser
def test_predict_an_image_review_it_and_segment_one(
    page: Page,  # noqa: F811 - the fixture imported above
    owner: Any,
    digits_model: Any,
    shapes_model: Any,
    browser_errors: BrowserErrors,  # noqa: F811
    tmp_path: Path,
) -> None:
    _log_in(page, owner)
    page.goto(f"/models/{digits_model.pk}/predict/")
    scan = tmp_path / "scan-of-a-zero.png"
    scan.write_bytes(digit(0)[0])
    page.locator("input[name=image]").set_input_files(str(scan))
    page.get_by_test_id("predict-button").click()
    result = page.get_by_test_id("prediction-result")
    expect(result.get_by_test_id("predicted-label")).to_have_text(re.compile(r"^\d$"))
    expect(result.get_by_test_id("vote")).to_have_count(
        len(digits_model.active_version.outputs[0]["members"])
    )
    expect(result.get_by_test_id("agreement")).to_be_visible()
    overlay = result.get_by_test_id("prediction-overlay")
    expect(overlay).to_be_visible()
    assert overlay.evaluate("image => image.naturalWidth") == 8  # loaded, the image's size
    _shoot(page, "classify")

    result.get_by_test_id("prediction-link").click()
    expect(page.get_by_test_id("review-status")).to_have_text("Not reviewed yet.")
    form = page.get_by_test_id("review-form")
    form.locator("select[name=status]").select_option("corrected")
    form.locator("select[name=label]").select_option("7")
    form.locator("textarea[name=note]").fill("The scan shows a seven.")
    page.get_by_test_id("review-button").click()
    expect(page.get_by_test_id("review-status")).to_have_text("Corrected")
    expect(page.get_by_test_id("review-label")).to_have_text("7")
    expect(page.get_by_test_id("report-button")).to_be_visible()
    _shoot(page, "review")

    page.goto(f"/models/{shapes_model.pk}/predict/")
    picture = tmp_path / "shapes.png"
    picture.write_bytes(shape(5, size=24))
    page.locator("input[name=image]").set_input_files(str(picture))
    page.get_by_test_id("predict-button").click()
    expect(page.get_by_test_id("areas").locator("tbody tr")).to_have_count(3)
    expect(page.get_by_test_id("prediction-overlay")).to_be_visible()
    _shoot(page, "segment")

    page.goto(f"/models/{digits_model.pk}/predictions/")
    expect(page.get_by_test_id("log-row-image")).to_have_count(1)
    _shoot(page, "log")
    assert browser_errors.messages == []
