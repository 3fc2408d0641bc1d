"""In a real browser: a graph added on a dataset's Graphs page is drawn by the Plotly.js the
app serves (an SVG appears), under the page's Content-Security-Policy and without breaking it
(Plotly.js's stylesheet comes as a file, not the <style> element it would insert), and the
graph can be deleted."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from mlmanager.core.tests.factories import PASSWORD
from mlmanager.datasets.models import DatasetGraph
from mlmanager.datasets.tests.test_graphs import make_table
from tests.browser.conftest import BrowserErrors
from tests.browser.test_csp import PolicyWatch


@pytest.mark.browser
def test_a_graph_is_added_drawn_and_deleted(
    page: Page, owner: Any, browser_errors: BrowserErrors
) -> None:
    dataset = make_table(owner)
    watch = PolicyWatch(page)
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(owner.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))

    watch.visit(f"/datasets/{dataset.pk}/")
    page.get_by_test_id("dataset-graphs-link").click()
    expect(page).to_have_url(re.compile(rf"/datasets/{dataset.pk}/graphs/$"))
    expect(page.get_by_test_id("no-graphs")).to_be_visible()

    # The form shows the fields of the chosen type only.
    page.locator("select[name=type]").select_option("histogram")
    expect(page.locator("[data-graph-field=y]")).to_be_hidden()
    expect(page.locator("[data-graph-field=x]")).to_be_visible()
    page.locator("select[name=type]").select_option("scatter")
    expect(page.locator("[data-graph-field=y]")).to_be_visible()
    expect(page.locator("[data-graph-field=z]")).to_be_hidden()
    expect(page.locator("[data-graph-field=columns]")).to_be_hidden()

    page.locator("input[name=title]").fill("Height and weight")
    page.locator("select[name=x]").select_option("height")
    page.locator("select[name=y]").select_option("weight")
    page.locator("select[name=hue]").select_option("city")
    page.get_by_test_id("graph-add").click()
    expect(page).to_have_url(re.compile(rf"/datasets/{dataset.pk}/graphs/$"))

    plot = page.get_by_test_id("graph-plot")
    # The first figure imports plotly.express in the server and the page parses a 4.8 MB
    # Plotly.js: generous on a busy machine.
    expect(plot.locator("svg.main-svg").first).to_be_visible(timeout=30_000)
    expect(plot.locator(".scatterlayer .trace")).to_have_count(3)  # one per city
    expect(page.get_by_test_id("graph-sample")).to_have_text("60 of 60 rows drawn")
    expect(page.get_by_test_id("graph-title")).to_have_text("Height and weight")
    # Plotly.js found its stylesheet as a file and inserted no <style> element.
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    assert (
        page.evaluate(
            "getComputedStyle(document.querySelector('.js-plotly-plot .plotly .modebar')).position"
        )
        == "absolute"
    )
    page.wait_for_load_state("networkidle")
    watch.collect()

    # A second graph of another type on the same page: a heatmap of correlations.
    page.locator("select[name=type]").select_option("heatmap")
    page.get_by_test_id("graph-add").click()
    expect(page.get_by_test_id("graph-plot")).to_have_count(2)
    expect(page.locator(".heatmaplayer").first).to_be_attached(timeout=30_000)
    page.wait_for_load_state("networkidle")
    watch.collect()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("graph-delete").first.click()
    expect(page.get_by_test_id("graph-plot")).to_have_count(1)
    page.wait_for_load_state("networkidle")
    watch.collect()
    assert DatasetGraph.objects.count() == 1

    assert watch.found == {}
    assert browser_errors.messages == []
