"""End-to-end in Chromium: run a tiny sweep on the Experiments page, compare two of its runs on the Runs page,
export the claims report. Screenshots: experiments.png, runs.png, claims.png (see full_page_screenshot for where)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_browser import (
    LOAD_TIMEOUT_MS,
    TRAIN_TIMEOUT_MS,
    assert_no_errors,
    expect,
    full_page_screenshot,
    grid_rows,
    set_number,
    wait_idle,
)

pytestmark = pytest.mark.e2e


def start_sweep(page: Any, url: str, activations: str, *, seeds: int, epochs: int, backend: str, samples: int = 0) -> None:
    """Open the Experiments page, fill the activation grid, seeds, fast path and epochs, pick the backend, run."""
    page.goto(f"{url}/experiments")
    expect(page.get_by_role("heading", name="Experiments", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page)
    values = page.get_by_label("activation: values, comma separated", exact=True).and_(page.get_by_test_id("stTextInputField"))
    values.fill(activations)
    values.press("Enter")
    wait_idle(page)
    set_number(page, "Seeds per cell", seeds)
    if samples:
        set_number(page, "Fast path: training samples (0 = all)", samples)
    set_number(page, "Epochs (0 = the dataset's default)", epochs)
    page.get_by_text(backend).click()
    wait_idle(page)
    page.get_by_role("button", name="Run sweep", exact=True).click()


def test_sweep_compare_and_export(app_page: Any, streamlit_url: str, page_errors: list[str], tmp_path) -> None:
    page = app_page
    # --- a tiny sweep: CNN, activation relu vs tanh, 2 seeds, 200 samples, 1 epoch, in the server process
    start_sweep(page, streamlit_url, "relu,tanh", seeds=2, epochs=1, samples=200,
                backend="one after another in this server process (small sweeps)")  # fmt: skip
    new_tab = page.get_by_role("tabpanel", name="New sweep")
    expect(new_tab.get_by_role("heading", name="Results", exact=True)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page, TRAIN_TIMEOUT_MS)
    assert_no_errors(page, page_errors)
    expect(new_tab.get_by_text("Best setting by mean accuracy")).to_be_visible()
    factor = new_tab.get_by_test_id("stDataFrame").first
    expect(factor.get_by_test_id("data-grid-canvas")).to_be_visible()
    rows = grid_rows(factor)
    assert [r["value"] for r in rows] == ["relu", "tanh"], rows
    assert all(r["n"] == "2" for r in rows), rows
    expect(new_tab.get_by_text("paired t-test").first).to_be_visible()
    full_page_screenshot(page, "experiments.png")

    # --- the Runs page: the four trials are there; compare two of them
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Runs").click()
    expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page)
    picker = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")
    for _ in range(2):
        picker.locator("input").click()
        option = page.get_by_role("option").filter(has_not_text="Select all").first  # Streamlit lists "Select all" first
        expect(option).to_be_visible(timeout=LOAD_TIMEOUT_MS)
        option.click()
        page.keyboard.press("Escape")
        wait_idle(page)
    expect(page.get_by_role("heading", name="Settings that differ")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page)
    assert_no_errors(page, page_errors)
    cmp_tab = page.get_by_role("tabpanel", name="Compare")
    metrics = cmp_tab.get_by_test_id("stDataFrame").first
    expect(metrics.get_by_test_id("data-grid-canvas")).to_be_visible()
    rows = grid_rows(metrics)
    # exactly the two runs clicked (the "extra runs" of an earlier session were the picker's "Select all" option)
    assert len({r["run"] for r in rows if r["model"] == "CNN"}) == 2, rows
    diff = cmp_tab.get_by_test_id("stDataFrame").last
    expect(diff.get_by_test_id("data-grid-canvas")).to_be_visible()
    settings = {r["setting"] for r in grid_rows(diff)}
    assert settings & {"cnn.activation", "seed"}, settings  # what differs between sweep trials, nothing else
    full_page_screenshot(page, "runs.png")

    # --- the claims report, from what is stored, downloaded as one HTML file
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Experiments").click()
    expect(page.get_by_role("heading", name="Experiments", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    page.get_by_role("tab", name="Claims report", exact=True).click()
    page.get_by_role("button", name="Build the claims report from stored runs").click()
    button = page.get_by_role("button", name="Download the claims report (HTML)")
    expect(button).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page)
    with page.expect_download() as dl:
        button.click()
    path = tmp_path / "claims.html"
    dl.value.save_as(path)
    html = path.read_text()
    assert "Checking the classic claims about neural networks" in html and "Activation function" in html
    assert_no_errors(page, page_errors)
    full_page_screenshot(page, "claims.png")


def test_stop_a_sweep_on_ray(app_page: Any, streamlit_url: str, page_errors: list[str], e2e_runs) -> None:
    """A sweep on a local Ray instance, stopped from the page while trials run: the page says so, nothing is
    left RUNNING in the store (killed trials are closed KILLED), finished trials stay FINISHED."""
    from mlflow.entities import ViewType

    from bench.experiments.trials import TAG_SWEEP
    from bench.run.store import RunStore

    page = app_page
    start_sweep(page, streamlit_url, "relu,tanh,gelu", seeds=3, epochs=30,  # long enough that Stop comes first
                backend="Ray Tune (a local Ray instance, or the cluster at RAY_ADDRESS)")  # fmt: skip
    new_tab = page.get_by_role("tabpanel", name="New sweep")
    expect(new_tab.get_by_test_id("stProgress")).to_contain_text("running", timeout=LOAD_TIMEOUT_MS)
    expect(new_tab.get_by_test_id("stProgress")).not_to_contain_text(" 0 running", timeout=LOAD_TIMEOUT_MS)
    new_tab.get_by_role("button", name="Stop sweep").click()
    notice = page.get_by_text("stopped; its finished trials are kept")
    expect(notice).to_be_visible(timeout=120_000)
    wait_idle(page)
    assert_no_errors(page, page_errors)
    sweep_id = notice.inner_text().split("Sweep ", 1)[1].split(" ", 1)[0]
    store = RunStore(root=e2e_runs)
    exps = [e.experiment_id for e in store.client.search_experiments(view_type=ViewType.ALL)]
    runs = store.client.search_runs(exps, filter_string=f"tags.\"{TAG_SWEEP}\" = '{sweep_id}'",
                                    run_view_type=ViewType.ALL, max_results=100)  # fmt: skip
    statuses = [r.info.status for r in runs]
    assert "RUNNING" not in statuses, statuses
    assert len(statuses) < 9, "the sweep was stopped before all its 9 trials finished"
