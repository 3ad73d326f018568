"""Predictions on uploads from a stored run and from the pretrained EfficientNet-Lite0; CLI on the same path."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.run import predict
from bench.run.store import RunStore
from data.uploads import decode_image, preprocess_gray
from models.config import TrainConfig
from tests.helpers import bench_run


def to_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def as_upload(digit: np.ndarray, size: int = 240, at: tuple[int, int] = (20, 110), scale: int = 4) -> Image.Image:
    """An MNIST digit (28x28 in [0, 1], white on black) drawn dark on a white page, larger and off-centre."""
    ink = Image.fromarray((255 - digit * 255).astype(np.uint8), "L").resize((28 * scale, 28 * scale))
    page = Image.new("L", (size, size), 255)
    page.paste(ink, at)
    return page.convert("RGB")


@pytest.fixture(scope="module")
def digit_run(tiny_mnist) -> dict:
    store = RunStore()
    report = bench_run(
        "image", "mnist-5k", ["cnn", "logreg", "svm"], store=store, max_samples=600,
        train_config=TrainConfig(epochs=2, batch_size=64, lr=2e-3, bf16=False),
    )  # fmt: skip
    return {"store": store, "report": report}


def test_preprocessing_reproduces_mnist_inputs(tiny_mnist) -> None:
    """An MNIST digit drawn bigger, off-centre and dark-on-white comes back close to the original."""
    corr = []
    for x in tiny_mnist.X_test[:20]:
        prep = preprocess_gray(as_upload(x[0]))
        corr.append(np.corrcoef(prep.x[0].ravel(), x[0].ravel())[0, 1])
    assert np.median(corr) > 0.85, corr


def test_every_model_of_a_run_predicts_an_upload(digit_run, tiny_mnist) -> None:
    run = predict.load_run(digit_run["report"]["run_id"], digit_run["store"])
    assert set(run.models) == {"cnn", "logreg", "svm"}
    images = [decode_image(to_png(as_upload(x[0])), f"digit{i}.png") for i, x in enumerate(tiny_mnist.X_test[:12])]
    preds = predict.predict_decoded(run, images)
    for p in preds:
        assert set(p.per_model) == {"cnn", "logreg", "svm"}
        cnn = p.per_model["cnn"]
        assert np.isclose(sum(cnn["proba"]), 1.0) and cnn["confidence"] == max(cnn["proba"])
        assert p.per_model["svm"]["confidence"] is None  # no Platt scaling: no made-up probability
    hits = np.mean(
        [int(p.per_model["logreg"]["predicted"]) == y for p, y in zip(preds, tiny_mnist.y_test[:12], strict=True)]
    )
    assert hits >= 0.6, hits
    table = predict.rows(run, preds)
    assert len(table) == 36 and {"file", "model", "prediction", "confidence", "warning"} <= set(table[0])


def test_colour_photo_to_a_digit_model_is_flagged(digit_run) -> None:
    from skimage import data as skdata

    run = predict.load_run(digit_run["report"]["run_id"], digit_run["store"], models=["logreg"])
    cat = decode_image(to_png(Image.fromarray(skdata.chelsea())), "chelsea.png")
    digit = decode_image(to_png(as_upload(np.eye(28, dtype=np.float32))), "line.png")
    warned, clean = predict.predict_decoded(run, [cat, digit])
    assert any("colour photo" in w for w in warned.warnings)
    assert not any("colour photo" in w for w in clean.warnings)


def test_threshold_is_calibrated_on_the_test_split(digit_run) -> None:
    run = predict.load_run(digit_run["report"]["run_id"], digit_run["store"], models=["cnn"])
    th = predict.calibrate_run(run, "cnn", rate=0.1)
    assert th.n_test == digit_run["report"]["split"]["test"]
    assert 0.05 <= th.flag_rate <= 0.15
    assert th.accuracy_kept is not None and th.accuracy_flagged is not None
    assert th.accuracy_kept >= th.accuracy_flagged  # low confidence really is less reliable here
    blank = decode_image(to_png(Image.new("RGB", (50, 50), "white")), "blank.png")
    (p,) = predict.predict_decoded(run, [blank], threshold=th)
    assert any("no content" in w for w in p.warnings)


def test_calibration_flags_the_requested_share() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(10) * 0.3, size=1000)
    y = proba.argmax(1)
    th = predict.calibrate_threshold(proba, y, "m", rate=0.05)
    assert abs(th.flag_rate - 0.05) < 0.01 and th.accuracy_kept == 1.0


def test_unknown_model_or_run_is_a_clear_error(digit_run) -> None:
    with pytest.raises(ValueError, match="has no model"):
        predict.load_run(digit_run["report"]["run_id"], digit_run["store"], models=["rf"])
    assert predict.cli(["--run", "0" * 32, str(Path(__file__))]) == 1  # nothing decodes: this is not an image


def test_csv_export_neutralises_formulas() -> None:
    table = [{"file": '=HYPERLINK("http://x")', "model": "CNN", "prediction": "-1", "confidence": 0.5}]
    text = predict.to_csv(table)
    assert "'=HYPERLINK" in text and "'-1" in text
    assert "\n=" not in text


def test_cli_predicts_files_from_a_stored_run(digit_run, tiny_mnist, tmp_path, capsys) -> None:
    from bench.cli.main import main

    files = []
    for i in range(2):
        f = tmp_path / f"d{i}.png"
        f.write_bytes(to_png(as_upload(tiny_mnist.X_test[i, 0])))
        files.append(str(f))
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    out = tmp_path / "out.json"
    rc = main(
        ["predict", "--run", digit_run["report"]["run_id"], "--model", "cnn", *files, str(bad), "--json", str(out)]
    )
    assert rc == 0
    result = json.loads(out.read_text())
    assert [p["file"] for p in result["predictions"]] == ["d0.png", "d1.png"]
    assert set(result["predictions"][0]["models"]) == {"cnn"}
    assert result["skipped"][0]["file"] == "notes.png" and result["threshold"]["model"] == "cnn"
    assert "not an image" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ pretrained


def test_pretrained_recognises_the_bundled_photos() -> None:
    from skimage import data as skdata

    photos = {"chelsea": skdata.chelsea(), "coffee": skdata.coffee()}
    images = [decode_image(to_png(Image.fromarray(a)), f"{n}.png") for n, a in photos.items()]
    cat, coffee = predict.predict_pretrained(images, top=3)
    assert {"tabby", "tiger cat", "Egyptian cat"} & {t["label"] for t in cat["top"]}
    assert coffee["top"][0]["label"] == "espresso"
    assert cat["milliseconds"] > 0


def test_pretrained_cli(tmp_path, capsys) -> None:
    from skimage import data as skdata

    from bench.cli.main import main

    f = tmp_path / "cat.jpg"
    Image.fromarray(skdata.chelsea()).save(f, format="JPEG")
    assert main(["predict", "--pretrained", "efficientnet-lite0", str(f), "--top", "3"]) == 0
    assert "cat" in capsys.readouterr().out


class Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/neuralbench-pwned",))


def test_weights_loader_never_unpickles_code(tmp_path) -> None:
    from models.pretrained import PretrainedUnavailable, load_state_dict_file

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"w": Exploit()}))
    marker = Path("/tmp/neuralbench-pwned")
    marker.unlink(missing_ok=True)
    with pytest.raises(PretrainedUnavailable, match="refusing to load"):
        load_state_dict_file(path)
    assert not marker.exists()


def test_weights_that_do_not_match_are_refused(tmp_path) -> None:
    import torch

    from models.pretrained import PretrainedUnavailable, build_efficientnet_lite0

    path = tmp_path / "other.pth"
    torch.save({"_conv_stem.weight": torch.zeros(3)}, path)
    with pytest.raises(PretrainedUnavailable, match="do not match"):
        build_efficientnet_lite0(path)


def test_random_affine_augmentation_only_in_training(tiny_mnist, tmp_path) -> None:
    import torch

    from bench.tasks.image.neural import NeuralClassifier
    from models.nets import CNNConfig, RandomAffine

    aug = RandomAffine()
    x = torch.as_tensor(tiny_mnist.X_test[:8])
    aug.train()
    moved = aug(x)
    assert moved.shape == x.shape and not torch.allclose(moved, x)
    aug.eval()
    assert torch.equal(aug(x), x)  # predictions and SHAP never see it
    est = NeuralClassifier("cnn", CNNConfig(channels=8, augment=True), TrainConfig(epochs=1, bf16=False))
    est.fit(tiny_mnist.X_train, tiny_mnist.y_train)
    pred = est.predict(tiny_mnist.X_test)
    est.save(tmp_path / "cnn")
    np.testing.assert_array_equal(NeuralClassifier.load(tmp_path / "cnn").predict(tiny_mnist.X_test), pred)
