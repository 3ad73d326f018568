"""End-to-end: the results view, Saved runs and Home as a user reads them, with screenshots for the README.

Self-contained: trains one fast run (two seeds per model) through the page first.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.test_browser import (
    TRAIN_TIMEOUT_MS,
    assert_no_errors,
    full_page_screenshot,
    grid_rows,
    keep_models,
    set_number,
    wait_idle,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")
expect = sync_api.expect

pytestmark = pytest.mark.e2e

LOAD_TIMEOUT_MS = 180_000  # generous: the shared test machines are often heavily loaded
MODELS = ["CNN", "Random forest", "k-nearest neighbours", "Majority class"]


def test_results_saved_runs_and_home(app_page: Any, streamlit_url: str, page_errors: list[str]) -> None:
    page = app_page
    # through Home: a fresh server opened straight at /image does not run app.py's navigation (Streamlit)
    page.goto(streamlit_url)
    expect(page.get_by_role("heading", name="NeuralBench", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Image recognition").click()
    expect(page.get_by_role("heading", name="Image recognition", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page, LOAD_TIMEOUT_MS)
    keep_models(page, MODELS)
    set_number(page, "Fast path: training samples (0 = all)", 600)
    set_number(page, "Seeds per model", 2)
    page.get_by_test_id("stExpander").filter(has_text="Training (neural models)").locator("summary").click()
    set_number(page, "Epochs", 3)
    page.get_by_test_id("stExpander").filter(has_text="Training (neural models)").locator("summary").click()
    page.get_by_role("button", name="Train", exact=True).click()

    train_tab = page.get_by_role("tabpanel", name="Train & compare")
    expect(train_tab.get_by_role("heading", name="Results", exact=True)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page, TRAIN_TIMEOUT_MS)
    assert_no_errors(page, page_errors)
    # what the run was, said where the results are
    used = train_tab.get_by_test_id("stMarkdown").filter(has_text="Settings used.")
    expect(used).to_contain_text("600 training samples used")
    expect(used).to_contain_text("Seeds per model: 2")
    expect(train_tab.get_by_text(re.compile(r"test split whole \(1,000 images\)")).first).to_be_visible()
    # ranked by the mean over seeds (the grid's accessible table holds the raw numbers, not the display format)
    rows = grid_rows(train_tab.get_by_test_id("stDataFrame").first)
    assert [r["model"] for r in rows][-1] == "Majority class", rows
    scores = [float(r["mean ± sd over seeds"].split("%")[0]) for r in rows if "seeds)" in r["mean ± sd over seeds"]]
    assert scores == sorted(scores, reverse=True), rows
    cnn = next(r for r in rows if r["model"] == "CNN")
    assert re.fullmatch(r"\d{1,3}\.\d\d% ± \d+\.\d\d \(2 seeds\)", cnn["mean ± sd over seeds"]), cnn
    # the naive baseline is a reference line in the accuracy chart, not a bar that squashes the scale
    chart = train_tab.get_by_test_id("stPlotlyChart").first
    expect(chart).to_contain_text("Majority class")
    expect(chart).to_contain_text("off this scale")
    # explain a misclassified image directly
    train_tab.get_by_role("button", name="Next misclassified image").click()
    wait_idle(page, LOAD_TIMEOUT_MS)
    train_tab.get_by_role("button", name="Explain", exact=True).click()
    expect(train_tab.get_by_text("Red pixels push towards the class")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    # the index moved to an image the CNN got wrong in the stored predictions (a reloaded model may run another
    # precision path and flip a borderline image, so the caption's right/wrong is not asserted here)
    index = train_tab.get_by_test_id("stNumberInput").filter(has_text="Test image").locator("input")
    assert index.input_value() != "0", index.input_value()
    wait_idle(page, LOAD_TIMEOUT_MS)
    full_page_screenshot(page, "results.png")

    # --- Saved runs: the label says what the run was; the same results view reopens it
    page.get_by_role("tab", name="Saved runs", exact=True).click()
    saved = page.get_by_role("tabpanel", name="Saved runs")
    saved.get_by_test_id("stSelectbox").click()
    newest = page.get_by_role("option").first
    expect(newest).to_contain_text("MNIST-5k (bundled, 5,000 digits) · best ", timeout=LOAD_TIMEOUT_MS)
    expect(newest).to_contain_text("4 models (CNN, Random forest, k-nearest neighbours, Majority class)")
    expect(newest).to_contain_text("fast path (600 training samples)")
    newest.click()
    saved.get_by_role("button", name="Show saved run").click()
    expect(saved.get_by_test_id("stMarkdown").filter(has_text="Settings used.")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page, LOAD_TIMEOUT_MS)
    assert_no_errors(page, page_errors)
    full_page_screenshot(page, "saved-runs.png")

    # --- Home: a fast-path run is marked for what it is
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Home").click()
    expect(page.get_by_role("heading", name="Latest results", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page, LOAD_TIMEOUT_MS)
    expect(page.get_by_text("Device")).to_be_visible()
    mnist = page.get_by_role("heading", name="MNIST-5k (bundled, 5,000 digits)")
    expect(mnist).to_be_visible()
    expect(page.get_by_text(re.compile("Not a reference run: fast path")).first).to_be_visible()
    assert_no_errors(page, page_errors)
    full_page_screenshot(page, "home.png")
