"""End-to-end, in Debian's Chromium: predict a photo with the pretrained model; upload a zip of class folders,
train the custom models with fast settings and predict an upload with them. Screenshots: see full_page_screenshot.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.e2e.test_browser import (
    assert_no_errors,
    full_page_screenshot,
    grid_rows,
    set_number,
    wait_idle,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")
expect = sync_api.expect

pytestmark = pytest.mark.e2e

LOAD_TIMEOUT_MS = 180_000  # the first visit loads torch, MLflow and EfficientNet on 2 shared cores
TRAIN_TIMEOUT_MS = 400_000
CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat"}


def open_tab(page: Any, url: str, tab: str) -> Any:
    page.goto(f"{url}/image")
    expect(page.get_by_role("heading", name="Image recognition", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page, LOAD_TIMEOUT_MS)
    page.get_by_role("tab", name=tab, exact=True).click()
    panel = page.get_by_role("tabpanel", name=tab)
    expect(panel).to_be_visible()
    return panel


def test_pretrained_model_sees_a_cat(app_page: Any, streamlit_url: str, page_errors: list[str], tmp_path: Path) -> None:
    from skimage import data as skdata

    page = app_page
    photo = tmp_path / "chelsea.jpg"
    Image.fromarray(skdata.chelsea()).save(photo, format="JPEG", quality=92)
    panel = open_tab(page, streamlit_url, "Predict")
    panel.get_by_text("ImageNet-pretrained EfficientNet-Lite0").click()
    # the uploader of the pretrained mode replaces the stored-run one: upload only once it is there
    expect(panel.get_by_text("EfficientNet-Lite0 trained on ImageNet", exact=False)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page, LOAD_TIMEOUT_MS)
    panel.locator('input[type="file"]').first.set_input_files(str(photo))
    expect(panel.get_by_text("chelsea.jpg").first).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    table = panel.get_by_test_id("stDataFrame").first
    expect(table.get_by_test_id("data-grid-canvas")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page, LOAD_TIMEOUT_MS)
    top3 = [r["label"] for r in grid_rows(table)[:3]]
    assert CAT_LABELS & set(top3), top3
    expect(panel.get_by_text(" ms", exact=False).first).to_be_visible()
    assert_no_errors(page, page_errors)
    full_page_screenshot(page, "image-predict-pretrained.png")


def colours_zip(path: Path) -> Path:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for name, rgb in {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}.items():
            for i in range(8):
                a = np.clip(np.array(rgb) + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
                buf = io.BytesIO()
                Image.fromarray(a).save(buf, format="PNG")
                zf.writestr(f"colours/{name}/{i}.png", buf.getvalue())
        zf.writestr("colours/red/readme.txt", b"not an image")
    return path


def test_transfer_learning_on_a_zip_then_predict(
    app_page: Any, streamlit_url: str, page_errors: list[str], tmp_path: Path
) -> None:
    page = app_page
    panel = open_tab(page, streamlit_url, "Transfer")
    panel.locator('input[type="file"]').first.set_input_files(str(colours_zip(tmp_path / "colours.zip")))
    expect(panel.get_by_role("heading", name="Validation report")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page, LOAD_TIMEOUT_MS)
    classes = panel.get_by_test_id("stDataFrame").first
    expect(classes.get_by_test_id("data-grid-canvas")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    assert {r["class"]: r["images"] for r in grid_rows(classes)} == {"red": "8", "green": "8", "blue": "8"}
    expect(panel.get_by_text("1 skipped entries")).to_be_visible()

    # fast settings: three models, two epochs
    models = panel.get_by_test_id("stMultiSelect").filter(has_text="Models")
    tags = models.locator("[data-tag]")
    for label in tags.all_inner_texts():
        if label not in ("EfficientNet-Lite0 features + new head", "CNN", "Random forest"):
            models.get_by_role("button", name=f"Remove {label}", exact=True).click()
    expect(tags).to_have_count(3)
    set_number(page, "Epochs (neural)", 2)
    panel.get_by_role("button", name="Train on my images").click()

    expect(panel.get_by_role("heading", name="Results on your images")).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page, TRAIN_TIMEOUT_MS)
    assert_no_errors(page, page_errors)
    expect(panel.get_by_role("heading", name="Does pretraining help on your images?")).to_be_visible()
    board = panel.get_by_test_id("stDataFrame").filter(has=page.locator("table[role=grid]")).nth(2)
    expect(board.get_by_test_id("data-grid-canvas")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    full_page_screenshot(page, "image-transfer.png")

    # the Predict tab preselects the new run; one upload goes through its models
    page.get_by_role("tab", name="Predict", exact=True).click()
    predict_panel = page.get_by_role("tabpanel", name="Predict")
    expect(predict_panel.get_by_text("Dataset custom")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    red = tmp_path / "red.png"
    Image.new("RGB", (40, 40), (210, 40, 35)).save(red)
    predict_panel.locator('input[type="file"]').first.set_input_files(str(red))
    expect(predict_panel.get_by_text("the run's most accurate model, says")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page, LOAD_TIMEOUT_MS)
    table = predict_panel.get_by_test_id("stDataFrame").last
    rows = grid_rows(table)
    assert len(rows) == 3 and {r["prediction"] for r in rows} <= {"red", "green", "blue"}, rows
    assert_no_errors(page, page_errors)
    full_page_screenshot(page, "image-predict-custom.png")
