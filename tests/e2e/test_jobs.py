"""End-to-end: two browser sessions training at once get exactly what one session alone gets (each training runs
in a worker process of its own, so no random state is shared)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_browser import LOAD_TIMEOUT_MS, TRAIN_TIMEOUT_MS, grid_rows, keep_models, set_number, wait_idle

sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")
expect = sync_api.expect

pytestmark = pytest.mark.e2e

MODELS = ["CNN", "Logistic regression"]
TIMING_COLUMNS = ("train s", "predict ms / 1k")


def prepare(page: Any, url: str) -> None:
    """Digits, CNN + logistic regression, 400 training images, 3 epochs; everything else at its default."""
    page.goto(f"{url}/image")
    expect(page.get_by_role("heading", name="Image recognition", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page, TRAIN_TIMEOUT_MS)  # a busy machine: switching the dataset loads it
    page.get_by_test_id("stSelectbox").filter(has_text="Dataset").click()
    page.get_by_role("option", name="scikit-learn digits (1,797, 8x8)").click()
    wait_idle(page, TRAIN_TIMEOUT_MS)  # a busy machine: switching the dataset loads it
    keep_models(page, MODELS)
    samples = page.locator(".st-key-max_samples input[type=number]")
    samples.fill("400")
    samples.press("Tab")
    page.get_by_test_id("stExpander").filter(has_text="Training (neural models)").locator("summary").click()
    set_number(page, "Epochs", 3)


def results(page: Any) -> list[dict[str, str]]:
    """The leaderboard once the training is done, without its timing columns."""
    tab = page.get_by_role("tabpanel", name="Train & compare")
    expect(tab.get_by_role("heading", name="Results", exact=True)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page, TRAIN_TIMEOUT_MS)
    # the first visible table of the results (a collapsed settings table may come before it)
    board = next(f for f in tab.get_by_test_id("stDataFrame").all() if f.is_visible())
    board.scroll_into_view_if_needed()
    expect(board.get_by_test_id("data-grid-canvas")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(board.locator("table[role=grid] tbody tr")).to_have_count(len(MODELS), timeout=LOAD_TIMEOUT_MS)
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in grid_rows(board)]


def test_two_sessions_training_at_once_equal_one_alone(chromium_browser: Any, streamlit_url: str) -> None:
    contexts = [chromium_browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(3)]
    try:
        first, second, alone = (c.new_page() for c in contexts)
        prepare(first, streamlit_url)
        prepare(second, streamlit_url)
        first.get_by_role("button", name="Train", exact=True).click()
        second.get_by_role("button", name="Train", exact=True).click()
        together = [results(first), results(second)]
        prepare(alone, streamlit_url)
        alone.get_by_role("button", name="Train", exact=True).click()
        solo = results(alone)
    except Exception:
        for i, c in enumerate(contexts):
            for p in c.pages:
                p.screenshot(path=f"/tmp/e2e-jobs-{i}.png", full_page=True)
        raise
    finally:
        for c in contexts:
            c.close()
    assert sorted(r["model"] for r in solo) == sorted(MODELS), solo
    assert together[0] == solo, (together[0], solo)
    assert together[1] == solo, (together[1], solo)
