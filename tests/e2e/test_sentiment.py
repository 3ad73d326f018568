"""End-to-end: the sentiment page in Debian's Chromium. Train a few models on the fast path, type a clearly
negative sentence, see every model's prediction and the highlighted words (screenshot for the README)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from models.config import TrainConfig, setting_label
from models.text import MiniLMConfig
from tests.e2e.test_browser import (
    LOAD_TIMEOUT_MS,
    assert_no_errors,
    expect,
    full_page_screenshot,
    grid_rows,
    keep_models,
    set_number,
    wait_idle,
)

pytestmark = pytest.mark.e2e

TRAIN_TIMEOUT_MS = 900_000  # MiniLM on a busy 2-core CPU
MODELS = ["MiniLM fine-tuned", "TF-IDF + logistic regression", "VADER (rules)", "Majority class"]
NEGATIVE = "This is the worst airline ever: rude staff, four hours late and they lost my bag. Terrible!"


def set_in_expander(page: Any, expander: str, label: str, value: int) -> None:
    """Fill a number input of one settings expander (several expanders share field names)."""
    box = page.get_by_test_id("stExpander").filter(has_text=expander)
    if box.locator("details").first.get_attribute("open") is None:  # a second click would close it again
        box.locator("summary").first.click()
    field = box.get_by_test_id("stNumberInput").filter(
        has=page.get_by_test_id("stWidgetLabel").filter(has_text=re.compile(rf"^{re.escape(label)}$"))
    )
    expect(field).to_have_count(1)
    field.locator("input[type=number]").fill(str(value))
    field.locator("input[type=number]").press("Tab")
    expect(field.locator("input[type=number]")).to_have_value(str(value))


def test_sentiment_predict_and_explain_a_negative_sentence(
    app_page: Any, streamlit_url: str, page_errors: list[str]
) -> None:
    page = app_page
    page.goto(streamlit_url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Sentiment analysis").click()
    expect(page.get_by_role("heading", name="Sentiment analysis", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page)
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)

    # --- the fast path: four models, 300 tweets, MiniLM on 96 of them, 32 tokens, top layer only, one epoch
    keep_models(page, MODELS)
    set_number(page, "Fast path: training texts (0 = all)", 300)
    set_in_expander(page, "Training (neural models)", setting_label(TrainConfig, "epochs"), 1)
    set_in_expander(page, "MiniLM fine-tuned settings", setting_label(MiniLMConfig, "max_length"), 32)
    set_in_expander(page, "MiniLM fine-tuned settings", setting_label(MiniLMConfig, "train_layers"), 1)
    set_in_expander(page, "MiniLM fine-tuned settings", setting_label(MiniLMConfig, "max_train_samples"), 96)
    page.get_by_role("button", name="Train", exact=True).click()

    train_tab = page.get_by_role("tabpanel", name="Train & compare")
    expect(train_tab.get_by_role("heading", name="Results", exact=True)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page, TRAIN_TIMEOUT_MS)
    assert_no_errors(page, page_errors)
    rows = grid_rows(train_tab.get_by_test_id("stDataFrame").first)
    assert sorted(r["model"] for r in rows) == sorted(MODELS), rows

    # --- Predict & explain: a clearly negative sentence
    page.get_by_role("tab", name="Predict & explain", exact=True).click()
    tab = page.get_by_role("tabpanel", name="Predict & explain")
    tab.get_by_role("textbox", name="Text").fill(NEGATIVE)
    tab.get_by_role("button", name="Predict and explain").click()
    expect(tab.get_by_text("words pushing towards it").first).to_be_visible(timeout=LOAD_TIMEOUT_MS * 5)
    wait_idle(page, LOAD_TIMEOUT_MS * 5)
    assert_no_errors(page, page_errors)
    predictions = {r["model"]: r for r in grid_rows(tab.get_by_test_id("stDataFrame").first)}
    assert sorted(predictions) == sorted(MODELS), predictions  # one row per model of the run
    assert predictions["TF-IDF + logistic regression"]["prediction"] == "negative", predictions
    assert predictions["VADER (rules)"]["prediction"] == "negative", predictions
    # two explanations side by side (MiniLM and TF-IDF + LR), each with highlighted words
    expect(tab.get_by_text("words pushing towards it")).to_have_count(2)
    highlighted = tab.locator("[data-testid=stMarkdownContainer] span[style*=background]")
    assert highlighted.count() >= 2, "no highlighted words"
    expect(tab.get_by_role("button", name="Download predictions (CSV)")).to_be_visible()
    full_page_screenshot(page, "sentiment.png")
