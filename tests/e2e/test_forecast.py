"""End-to-end, stock forecasting: pick the S&P 500, run the default backtest, see the verdict and the charts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_browser import LOAD_TIMEOUT_MS, assert_no_errors, full_page_screenshot, grid_rows, wait_idle

sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")
expect = sync_api.expect

pytestmark = pytest.mark.e2e

FIRST_LOAD_MS = 240_000  # a cold server imports torch, statsmodels, shap and MLflow first (slow on busy cores)
BACKTEST_TIMEOUT_MS = 400_000  # the default backtest of all default models (measured ~20-70 s on 2 busy cores)
DEFAULT_MODELS = {"LSTM", "ARIMA", "Lag regression", "Drift", "Moving average", "Naive (last value)"}


def test_forecast_default_backtest_on_sp500(app_page: Any, streamlit_url: str, page_errors: list[str]) -> None:
    page = app_page
    page.goto(streamlit_url)
    expect(page.get_by_role("heading", name="NeuralBench", exact=True)).to_be_visible(timeout=FIRST_LOAD_MS)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Stock forecasting").click()
    expect(page.get_by_role("heading", name="Stock forecasting", exact=True)).to_be_visible(timeout=FIRST_LOAD_MS)
    wait_idle(page, FIRST_LOAD_MS)

    # --- the data: S&P 500 (bundled) and its data view
    page.get_by_test_id("stRadio").get_by_text("S&P 500 (bundled)").click()
    wait_idle(page)
    page.get_by_role("tab", name="Data", exact=True).click()
    data_tab = page.get_by_role("tabpanel", name="Data")
    expect(data_tab.get_by_test_id("stMetric").filter(has_text="rows")).to_contain_text("5,031")
    expect(data_tab.get_by_test_id("stPlotlyChart").first).to_contain_text("candlestick", timeout=LOAD_TIMEOUT_MS)

    # --- the default backtest
    page.get_by_role("tab", name="Backtest", exact=True).click()
    run_tab = page.get_by_role("tabpanel", name="Backtest")
    run_tab.get_by_role("button", name="Run backtest", exact=True).click()
    expect(run_tab.get_by_role("heading", name="Results", exact=True)).to_be_visible(timeout=BACKTEST_TIMEOUT_MS)
    wait_idle(page, BACKTEST_TIMEOUT_MS)
    assert_no_errors(page, page_errors)

    # the verdict on top, in words, with the Diebold-Mariano p-value
    verdict = run_tab.get_by_test_id("stAlert").first
    expect(verdict).to_contain_text("random walk")
    expect(verdict).to_contain_text("Diebold-Mariano p =")
    # the leaderboard: every default model, the naive forecast among them, best MAE first
    board = run_tab.get_by_test_id("stDataFrame").first
    expect(board.locator("table[role=grid] tbody tr")).to_have_count(len(DEFAULT_MODELS))
    rows = grid_rows(board)
    assert {r["model"] for r in rows} == DEFAULT_MODELS, rows
    maes = [float(r["mae"]) for r in rows]
    assert maes == sorted(maes), rows
    # the chart of actual vs forecast on the test period
    chart = run_tab.get_by_test_id("stPlotlyChart").filter(has_text="Actual vs forecast")
    expect(chart).to_have_count(1)
    expect(chart.locator(".main-svg").first).to_be_attached(timeout=LOAD_TIMEOUT_MS)
    expect(run_tab.get_by_test_id("stPlotlyChart").filter(has_text="Forecast of the next")).to_have_count(1)
    full_page_screenshot(page, "forecast.png")
