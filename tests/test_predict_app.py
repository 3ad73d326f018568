"""AppTests of the image page's Predict and Transfer tabs: upload, batch, canvas, pretrained, transfer, bad input."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from bench.run.store import RunStore
from models.config import TrainConfig
from tests.conftest import ROOT
from tests.helpers import bench_run

APP = str(ROOT / "app.py")


def png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def digit_png(x: np.ndarray) -> bytes:
    return png(Image.fromarray((255 - x * 255).astype(np.uint8), "L").resize((112, 112)))


@pytest.fixture(scope="module")
def digit_run_id(tiny_mnist) -> str:
    report = bench_run(
        "image", "mnist-5k", ["cnn", "logreg", "svm"], store=RunStore(), max_samples=300,
        train_config=TrainConfig(epochs=1, batch_size=64, bf16=False),
    )  # fmt: skip
    return report["run_id"]


def image_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240).run()
    at.switch_page("pages/image.py").run()
    assert not at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [
        e.value for kind in ("markdown", "caption", "error", "warning", "info", "success") for e in getattr(at, kind)
    ]
    return "\n".join(map(str, parts))


def test_upload_one_digit_shows_steps_and_every_models_probabilities(digit_run_id, tiny_mnist) -> None:
    at = image_page()
    at.selectbox(key="predict.run").set_value(digit_run_id).run()
    at.file_uploader(key="predict.files").set_value(
        ("seven.png", digit_png(tiny_mnist.X_test[0, 0]), "image/png")
    ).run()
    assert not at.exception, at.exception
    body = texts(at)
    assert "server-side time" in body and "Warning threshold" in body
    table = next(d.value for d in at.dataframe if "prediction" in d.value.columns)
    assert set(table["model"]) == {"CNN", "Logistic regression", "SVM (RBF)"}
    assert any("most accurate model" in s.value for s in [*at.success, *at.info])
    at.button(key="predict.explain").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]


def test_batch_upload_table_csv_and_bad_files(digit_run_id, tiny_mnist) -> None:
    at = image_page()
    at.selectbox(key="predict.run").set_value(digit_run_id).run()
    files = [
        ("a.png", digit_png(tiny_mnist.X_test[1, 0]), "image/png"),
        ("=evil.png", digit_png(tiny_mnist.X_test[2, 0]), "image/png"),
        ("fake.png", b"%PDF-1.4 definitely not an image", "image/png"),
        ("empty.png", b"", "image/png"),
    ]
    at.file_uploader(key="predict.files").set_value(files).run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "not an image this app reads" in errors and "empty" in errors
    table = next(d.value for d in at.dataframe if "prediction" in d.value.columns)
    # the table's own "Download as CSV" must not hand out a formula: the shown cell is neutralised (item 12)
    assert len(table) == 6 and set(table["file"]) == {"a.png", "'=evil.png"}
    assert at.get("download_button"), "the CSV download must be offered"


def test_canvas_and_camera_widgets_render(digit_run_id) -> None:
    at = image_page()
    at.selectbox(key="predict.run").set_value(digit_run_id).run()
    at.toggle(key="predict.draw").set_value(True).run()
    at.toggle(key="predict.use_camera").set_value(True).run()
    assert not at.exception, at.exception
    assert not [w.value for w in at.warning if "canvas is not available" in w.value]


def test_canvas_drawing_becomes_an_upload() -> None:
    import base64

    from streamlit_drawable_canvas import CanvasResult

    from bench.run.predict import decode_all
    from pages.predict_ui import canvas_png

    drawn = np.zeros((50, 50, 4), np.uint8)
    drawn[10:40, 20:26] = (0, 0, 0, 255)
    url = "data:image/png;base64," + base64.b64encode(png(Image.fromarray(drawn, "RGBA"))).decode()
    assert canvas_png(None) is None
    assert canvas_png(CanvasResult({"objects": []}, url, True)) is None  # nothing drawn: no prediction
    data = canvas_png(CanvasResult({"objects": [{"type": "path"}]}, url, True))
    (img,), bad = decode_all([("drawing.png", data)])
    assert not bad and img.image.size == (50, 50)
    assert np.asarray(img.image)[0, 0].tolist() == [255, 255, 255]  # transparent canvas -> white paper


def test_pretrained_sample_photo_gets_a_cat_label() -> None:
    at = image_page()
    at.radio(key="predict.source").set_value("ImageNet-pretrained EfficientNet-Lite0").run()
    at.multiselect(key="pretrained.samples").set_value(["chelsea"]).run()
    assert not at.exception, at.exception
    assert any(lab in texts(at) for lab in ("tabby", "tiger cat", "Egyptian cat"))


def make_zip(classes: dict[str, list[bytes]], extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c, imgs in classes.items():
            for i, data in enumerate(imgs):
                zf.writestr(f"{c}/{i}.png", data)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def colour_images(rgb: tuple[int, int, int], n: int) -> list[bytes]:
    rng = np.random.default_rng(sum(rgb))
    out = []
    for _ in range(n):
        a = np.clip(np.array(rgb) + rng.normal(0, 25, (24, 24, 3)), 0, 255).astype(np.uint8)
        out.append(png(Image.fromarray(a)))
    return out


def test_transfer_flow_trains_compares_and_predicts() -> None:
    at = image_page()
    data = make_zip(
        {"red": colour_images((220, 30, 30), 8), "green": colour_images((30, 200, 40), 8),
         "blue": colour_images((30, 40, 220), 8)},
        extra={"../../escape.png": colour_images((1, 2, 3), 1)[0], "red/notes.txt": b"hi"},
    )  # fmt: skip
    at.file_uploader(key="transfer.zip").set_value(("colours.zip", data, "application/zip")).run()
    assert not at.exception, at.exception
    classes = next(d.value for d in at.dataframe if "images" in d.value.columns and "class" in d.value.columns)
    assert dict(zip(classes["class"], classes["images"], strict=True)) == {"red": 8, "green": 8, "blue": 8}
    skipped = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert any("unsafe path" in r for r in skipped["reason"])
    at.multiselect(key="transfer.models").set_value(["effnet", "cnn", "rf"])
    at.select_slider(key="transfer.image_size").set_value(32)
    at.select_slider(key="transfer.eff_size").set_value(64)
    at.number_input(key="transfer.epochs").set_value(2)
    at.button(key="transfer.train").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    board = next(d.value for d in at.dataframe if "ci_low" in d.value.columns)
    assert set(board["model"]) == {"EfficientNet-Lite0 features + new head", "CNN", "Random forest"}
    assert any("Does pretraining help" in h.value for h in at.subheader)
    assert any("McNemar" in m.value for m in at.markdown)
    # the Predict tab now offers the custom run (preselected) and predicts an upload with its models
    assert at.selectbox(key="predict.run").value == at.session_state["transfer.report"]["run_id"]
    at.file_uploader(key="predict.files").set_value(("new.png", colour_images((200, 20, 20), 1)[0], "image/png")).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "prediction" in d.value.columns)
    assert len(table) == 3 and set(table["prediction"]) <= {"red", "green", "blue"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is not a zip", "not a readable zip"),
        (make_zip({"only": colour_images((0, 0, 0), 5)}), "at least two classes"),
    ],
    ids=["empty", "not-zip", "one-class"],
)
def test_bad_zips_get_a_clear_message(data: bytes, message: str) -> None:
    at = image_page()
    at.file_uploader(key="transfer.zip").set_value(("bad.zip", data, "application/zip")).run()
    assert not at.exception, at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not at.get("form") or not any(b.key == "transfer.train" for b in at.button)


def test_error_gallery_shows_a_confusion_cell_and_explains_it(digit_run_id) -> None:
    at = image_page()
    at.selectbox(key="predict.run").set_value(digit_run_id).run()
    at.toggle(key="gallery.show").set_value(True).run()
    at.selectbox(key="gallery.model").set_value("cnn").run()
    cell = at.selectbox(key="gallery.cell.cnn")
    true_k, pred_k = cell.value
    assert true_k != pred_k and "true" in cell.format_func(cell.value)
    shown = [c for img in at.get("image") for c in img.proto.imgs if c.caption.startswith("#")]
    assert shown, "the misclassified test images are shown"
    at.button(key="gallery.explain").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("Red pixels pushed" in c.value for c in at.caption)
