"""End-to-end: the dashboard as a user sees it, in Debian's Chromium against a real `streamlit run` server.

Run alone with `pytest -m e2e tests/e2e`. Screenshots of each page's main flow are test artefacts in
test-artifacts/screenshots/ (git-ignored); `make screenshots` sets NEURALBENCH_SCREENSHOTS_DIR=docs/screenshots to
refresh the README's pictures on purpose.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")
expect = sync_api.expect

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"  # default; NEURALBENCH_SCREENSHOTS_DIR overrides it
LOAD_TIMEOUT_MS = 60_000
TRAIN_TIMEOUT_MS = 180_000
MAX_SHOT_HEIGHT = 6_000

FAST_MODELS = ["CNN", "Deep MLP", "Logistic regression", "Majority class"]
FAST_SAMPLES = 400
FAST_EPOCHS = 2


def wait_idle(page: Any, timeout: int = LOAD_TIMEOUT_MS) -> None:
    """Wait until the script run is over: no running indicator and no stale (greyed-out) elements left."""
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=timeout)
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=timeout)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout)


def wait_rendered(scope: Any) -> None:
    """Every visible Plotly chart has drawn its SVG and every visible dataframe its canvas."""
    for chart in scope.get_by_test_id("stPlotlyChart").all():
        if chart.is_visible():
            expect(chart.locator(".main-svg").first).to_be_attached(timeout=LOAD_TIMEOUT_MS)
    for frame in scope.get_by_test_id("stDataFrame").all():
        if frame.is_visible():
            expect(frame.get_by_test_id("data-grid-canvas")).to_be_visible(timeout=LOAD_TIMEOUT_MS)


def screenshots_dir() -> Path:
    """test-artifacts/screenshots/, or the folder NEURALBENCH_SCREENSHOTS_DIR names (relative to the repository)."""
    raw = os.environ.get("NEURALBENCH_SCREENSHOTS_DIR", "").strip()
    if not raw:
        return SHOTS
    path = Path(raw).expanduser()
    return path if path.is_absolute() else ROOT / path


def full_page_screenshot(page: Any, name: str) -> Path:
    """Screenshot of the whole page. Streamlit scrolls inside <main>, not the document, so Playwright's
    full_page alone would stop at the viewport: the viewport is stretched to the content for the shot."""
    shots = screenshots_dir()
    shots.mkdir(parents=True, exist_ok=True)
    path = shots / name
    size = page.viewport_size
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
        " return Math.max(m ? m.scrollHeight : 0, document.documentElement.scrollHeight); }"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(height, MAX_SHOT_HEIGHT))})
    try:
        # two animation frames: layout and canvases have caught up with the new size
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        wait_rendered(page)
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    return path


def grid_rows(frame: Any) -> list[dict[str, str]]:
    """The rows of a st.dataframe, read from the accessible table that glide-data-grid keeps in its canvas."""
    return frame.locator("table[role=grid]").evaluate(
        """t => {
            const head = [...t.querySelectorAll('thead th')].map(th => th.textContent.trim());
            return [...t.querySelectorAll('tbody tr')].map(tr =>
                Object.fromEntries([...tr.querySelectorAll('td')].map((td, i) => [head[i], td.textContent.trim()])));
        }"""
    )


def assert_no_errors(page: Any, page_errors: list[str]) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    assert not page_errors, f"uncaught JavaScript errors: {page_errors}"


def test_image_train_and_data(app_page: Any, streamlit_url: str, page_errors: list[str]) -> None:
    page = app_page
    page.goto(streamlit_url)
    expect(page.get_by_role("heading", name="NeuralBench", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Image recognition").click()
    expect(page.get_by_role("heading", name="Image recognition", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(page).to_have_url(re.compile(r"/image/?$"))
    wait_idle(page)

    # --- the form: a few fast models, the fast path and two epochs
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    keep_models(page, FAST_MODELS)

    samples = page.locator(".st-key-max_samples input[type=number]")
    samples.fill(str(FAST_SAMPLES))
    samples.press("Tab")  # commit on blur (Enter would submit the form)
    expect(samples).to_have_value(str(FAST_SAMPLES))

    page.get_by_test_id("stExpander").filter(has_text="Training (neural models)").locator("summary").click()
    set_number(page, "Epochs", FAST_EPOCHS)

    page.get_by_role("button", name="Train", exact=True).click()

    # --- results
    train_tab = page.get_by_role("tabpanel", name="Train & compare")
    expect(train_tab.get_by_role("heading", name="Results", exact=True)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page, TRAIN_TIMEOUT_MS)
    assert_no_errors(page, page_errors)
    expect(train_tab.get_by_test_id("stProgress")).to_contain_text("Done")

    leaderboard = train_tab.get_by_test_id("stDataFrame").first
    expect(leaderboard.get_by_test_id("data-grid-canvas")).to_be_visible()
    expect(leaderboard.locator("table[role=grid] tbody tr")).to_have_count(len(FAST_MODELS))
    rows = grid_rows(leaderboard)
    assert sorted(r["model"] for r in rows) == sorted(FAST_MODELS), rows
    by_model = {r["model"]: r for r in rows}
    # the form's values reached the run: fast-path cap for the classical models, two epochs for the nets
    assert by_model["Logistic regression"]["train samples"] == str(FAST_SAMPLES), rows
    for net in ("CNN", "Deep MLP"):
        assert by_model[net]["epochs"] == str(FAST_EPOCHS), rows
        assert int(by_model[net]["train samples"]) <= FAST_SAMPLES, rows
    # best first, and the majority class is the floor on 10 balanced digit classes
    accuracies = [float(r["accuracy"].rstrip("%")) for r in rows]
    assert accuracies == sorted(accuracies, reverse=True), rows
    assert rows[-1]["model"] == "Majority class", rows
    expect(train_tab.get_by_role("heading", name="Accuracy by epoch")).to_be_visible()

    # --- SHAP: explain the first test image with the CNN (the default model to explain)
    train_tab.get_by_role("button", name="Explain", exact=True).click()
    expect(train_tab.get_by_text("Red pixels push towards the class")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(train_tab.get_by_text("GradientExplainer")).to_be_visible()
    wait_idle(page)
    assert_no_errors(page, page_errors)

    # collapse the settings again so the screenshot shows the results, not the form
    page.get_by_test_id("stExpander").filter(has_text="Training (neural models)").locator("summary").click()
    full_page_screenshot(page, "image.png")

    # --- the Data tab: sample grid per class and class counts
    page.get_by_role("tab", name="Data", exact=True).click()
    data_tab = page.get_by_role("tabpanel", name="Data")
    expect(data_tab).to_be_visible()
    grid = data_tab.get_by_test_id("stPlotlyChart").first
    expect(grid).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(grid.locator(".main-svg").first).to_be_attached(timeout=LOAD_TIMEOUT_MS)
    expect(grid).to_contain_text("Training samples per class")
    expect(data_tab.get_by_test_id("stMetric").filter(has_text="training images")).to_contain_text("4,000")
    assert_no_errors(page, page_errors)
    full_page_screenshot(page, "image-data.png")


def keep_models(page: Any, keep: list[str]) -> None:
    """Remove every model from the form's multiselect except `keep` (the defaults include them all)."""
    models = page.get_by_test_id("stMultiSelect").filter(has_text="Models")
    tags = models.locator("[data-tag]")
    expect(tags.filter(has_text="Majority class")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    for label in tags.all_inner_texts():
        if label not in keep:
            models.get_by_role("button", name=f"Remove {label}", exact=True).click()
    expect(tags).to_have_text(keep)


def set_number(page: Any, label: str, value: int) -> None:
    """Fill the number input whose label is exactly `label` and commit it on blur."""
    box = page.get_by_test_id("stNumberInput").filter(
        has=page.get_by_test_id("stWidgetLabel").filter(has_text=re.compile(rf"^{re.escape(label)}$"))
    )
    expect(box).to_have_count(1)
    box.locator("input[type=number]").fill(str(value))
    box.locator("input[type=number]").press("Tab")
    expect(box.locator("input[type=number]")).to_have_value(str(value))


def test_stop_training_discards_the_run(app_page: Any, streamlit_url: str, page_errors: list[str], e2e_runs) -> None:
    from bench.run.store import RunStore

    store = RunStore(root=e2e_runs)
    before = all_run_ids(store)
    page = app_page
    page.goto(f"{streamlit_url}/image")
    expect(page.get_by_role("heading", name="Image recognition", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page)
    keep_models(page, ["CNN"])
    page.get_by_test_id("stExpander").filter(has_text="Training (neural models)").locator("summary").click()
    set_number(page, "Epochs", 150)  # long enough that Stop comes first
    set_number(page, "Early-stopping patience (epochs)", 150)
    page.get_by_role("button", name="Train", exact=True).click()

    train_tab = page.get_by_role("tabpanel", name="Train & compare")
    expect(train_tab.get_by_test_id("stProgress")).to_contain_text("CNN", timeout=LOAD_TIMEOUT_MS)
    train_tab.get_by_role("button", name="Stop training").click()
    expect(page.get_by_text("Training stopped; the unfinished run was discarded.")).to_be_visible(timeout=90_000)
    wait_idle(page)
    expect(train_tab.get_by_role("heading", name="Results", exact=True)).to_have_count(0)
    assert_no_errors(page, page_errors)
    # the store holds exactly one new run, closed KILLED, and it is not among the runs offered as saved runs
    new = all_run_ids(store) - before
    assert len(new) == 1, new
    killed = new.pop()
    assert store.status(killed) == "KILLED"
    assert killed not in {r["run_id"] for r in store.list_runs("image")}


def all_run_ids(store: Any) -> set[str]:
    """Every run of the image experiment, whatever its status."""
    exp = store.client.get_experiment_by_name("neuralbench-image")
    if exp is None:
        return set()
    from mlflow.entities import ViewType

    return {r.info.run_id for r in store.client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL)}


def test_home(app_page: Any, streamlit_url: str, page_errors: list[str]) -> None:
    """Runs last in this file, so the home page shows the leaderboard of the run trained above."""
    page = app_page
    page.goto(streamlit_url)
    expect(page.get_by_role("heading", name="NeuralBench", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Data sources", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Latest results", exact=True)).to_be_visible()
    wait_idle(page)

    # the data-sources table is the last dataframe on the page and lists every image dataset
    sources = page.get_by_test_id("stDataFrame").last
    expect(sources.get_by_test_id("data-grid-canvas")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    rows = grid_rows(sources)
    datasets = {r["dataset"] for r in rows}
    assert {"MNIST-5k (bundled, 5,000 digits)", "scikit-learn digits (1,797, 8x8)"} <= datasets, rows
    bundled = [r for r in rows if r["dataset"].startswith(("MNIST-5k", "scikit-learn"))]
    assert all(r["available offline"] == "true" for r in bundled), rows
    # the run store is the temporary one given to the server, never the repository's runs/ folder
    expect(page.get_by_text("Runs are tracked with MLflow at")).to_contain_text("e2e-server")

    assert_no_errors(page, page_errors)
    full_page_screenshot(page, "home.png")
