"""AppTest per page: the pages render, train on the fast path, reload saved runs, refuse bad settings."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def image_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("pages/image.py").run()
    assert not at.exception
    return at


def k(name: str, dataset: str = "mnist-5k") -> str:
    """Widget key of a dataset-dependent setting of the image form (pages/image.py form_key)."""
    return f"{dataset}.{name}"


def fast(at: AppTest, models: list[str], dataset: str = "mnist-5k") -> AppTest:
    at.multiselect(key="models").set_value(models)
    at.number_input(key="max_samples").set_value(300)
    at.number_input(key=k("train.epochs", dataset)).set_value(2)
    return at


@pytest.fixture
def inline_jobs():
    """Jobs in threads of this process, so that a monkeypatched engine applies (no worker isolation)."""
    from bench.exec import default as default_executor
    from bench.exec import jobs

    previous = default_executor.set_executor(jobs.InlineExecutor())
    yield
    default_executor.set_executor(previous)


def leaderboard(at: AppTest):
    """The leaderboard table (AppTest does not expose dataframe keys: find it by its CI columns)."""
    boards = [d.value for d in at.dataframe if "ci_low" in d.value.columns]
    assert len(boards) == 1, f"expected one leaderboard, found {len(boards)}"
    return boards[0]


def test_home_renders() -> None:
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert at.title[0].value == "NeuralBench"
    headers = [h.value for h in at.header]
    assert "Latest results" in headers and "Data sources" in headers
    assert any(m.label == "torch" for m in at.metric)


def test_image_page_fast_training_shows_leaderboard() -> None:
    at = fast(image_page(), ["cnn", "logreg", "majority"])
    at.button(key="train").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    board = leaderboard(at)
    assert set(board["model"]) == {"CNN", "Logistic regression", "Majority class"}
    assert board["accuracy"].between(0, 1).all()
    assert (board["ci_low"] <= board["accuracy"]).all() and (board["accuracy"] <= board["ci_high"]).all()
    per_class = next(d.value for d in at.dataframe if "precision" in d.value.columns)
    assert {"recall", "false_positives", "false_negatives"} <= set(per_class.columns) and len(per_class) == 10
    verdicts = [m.value for m in at.markdown if "McNemar" in m.value]
    assert verdicts, "the significance verdict must be shown in words"
    assert at.success or at.warning  # who won, said plainly


def test_saved_run_is_shown_without_retraining() -> None:
    from bench.run.runner import leaderboard_rows
    from bench.run.store import RunStore

    at = fast(image_page(), ["mlp", "majority"])
    at.button(key="train").click().run()
    assert not at.exception
    trained = leaderboard(at)
    run_id = at.session_state["image.report"]["run_id"]
    at = image_page()  # a fresh session: nothing trained in it
    at.selectbox(key="saved_run").select(run_id).run()
    at.button(key="load_run").click().run()
    assert not at.exception
    saved = leaderboard(at)
    assert list(saved.columns) == list(trained.columns)
    stored = pd.DataFrame(leaderboard_rows(RunStore().load_report(run_id)))
    # the reloaded table shows the stored numbers (and the ones the training session showed)
    shared = [c for c in saved.columns if c in stored.columns]  # the table adds display-only columns (x 100)
    pd.testing.assert_frame_equal(saved[shared].reset_index(drop=True), stored[shared], check_dtype=False)
    pd.testing.assert_frame_equal(saved.reset_index(drop=True), trained.reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (k("train.val_fraction"), 0.9, "Validation share must be at most 0.5"),
        (k("cnn.kernel_size"), 4, "Kernel size must be odd"),
        (k("mlp.dropout"), 2.0, "Dropout must be at most"),
    ],
)
def test_invalid_settings_are_refused_with_a_message(key: str, value, message: str) -> None:
    at = fast(image_page(), ["cnn", "mlp"])
    at.number_input(key=key).set_value(value)
    at.button(key="train").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(message in e for e in errors), errors


def test_no_model_chosen_is_refused() -> None:
    at = fast(image_page(), [])
    at.button(key="train").click().run()
    assert not at.exception
    assert any("at least one model" in e.value for e in at.error)


def test_data_tab_shows_counts_and_samples() -> None:
    at = image_page()
    at.selectbox(key="dataset").select("digits").run()
    assert not at.exception
    assert any(m.label == "training images" and m.value == "1,437" for m in at.metric)


def test_unavailable_dataset_is_disabled_with_reason(tmp_path, monkeypatch) -> None:
    """Without the Debian files and offline, Fashion-MNIST says why and the download fails with a message."""
    import torchvision.datasets

    from data import images

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(images, "DEBIAN_FASHION", tmp_path / "none")
    monkeypatch.setattr(images, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    at = image_page()
    at.selectbox(key="dataset").select("fashion-mnist").run()
    assert not at.exception
    assert any("dataset-fashion-mnist" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "train"], "training must be disabled"
    at.button(key="download").click().run()
    assert not at.exception
    assert any("offline" in e.value for e in at.error)


def test_shap_explanation_of_a_trained_model() -> None:
    at = fast(image_page(), ["cnn", "logreg"])
    at.button(key="train").click().run()
    assert not at.exception
    index = next(n for n in at.number_input if (n.key or "").startswith("image.result.shap_index"))
    index.set_value(3)
    at.button(key="image.result.explain").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("GradientExplainer" in c.value for c in at.caption)
    at.selectbox(key="image.result.shap_model").select("logreg")
    at.button(key="image.result.explain").click().run()
    assert any("LinearExplainer" in c.value for c in at.caption)


def test_home_shows_the_latest_stored_run() -> None:
    from bench.run.store import RunStore
    from tests.helpers import bench_run

    bench_run("image", "digits", ["knn", "majority"], store=RunStore())
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    boards = [d.value for d in at.dataframe if "ci_low" in d.value.columns]  # one per task and dataset
    assert any("k-nearest neighbours" in set(board["model"]) for board in boards)
    assert any("digits" in m.value for m in at.markdown)


def test_nan_loss_is_reported_and_the_page_survives(monkeypatch, inline_jobs) -> None:
    """A diverging run aborts with a message (here forced by a NaN pixel in the training data)."""
    import numpy as np

    from data import images

    real = images.load_mnist_5k

    def poisoned(seed: int = 0, max_samples: int = 0):
        split = real(seed=seed, max_samples=max_samples)
        X = split.X_train.copy()
        X[:100, 0, 0, 0] = np.nan  # some of these always land in the training part
        split.X_train = X
        return split

    import dataclasses

    from bench.tasks.image.task import TASK as IMAGE_TASK

    spec = IMAGE_TASK.datasets["mnist-5k"]
    monkeypatch.setitem(IMAGE_TASK.datasets, "mnist-5k", dataclasses.replace(spec, loader=poisoned))
    at = fast(image_page(), ["mlp"])
    at.number_input(key=k("train.batch_size")).set_value(1024)  # the poisoned image is in the only batch
    at.button(key="train").click().run()
    assert not at.exception
    assert any("loss became nan" in e.value for e in at.error), [e.value for e in at.error]


def test_seeds_per_model_show_their_spread() -> None:
    at = fast(image_page(), ["mlp", "logreg"])
    at.number_input(key="repeats").set_value(2)
    at.button(key="train").click().run()
    assert not at.exception
    board = leaderboard(at).set_index("model")
    assert board.loc["Deep MLP", "seeds"] == 2 and board.loc["Logistic regression", "seeds"] == 1
    runs = {m["name"]: m["metrics"]["seed_runs"] for m in at.session_state["image.report"]["models"]}
    assert [r["seed"] for r in runs["mlp"]] == [0, 1]
    # the second seed really retrained: another model, another score, so a spread above zero
    assert runs["mlp"][0]["accuracy"] != runs["mlp"][1]["accuracy"]
    assert board.loc["Deep MLP", "seed_sd"] > 0
    assert pd.isna(board.loc["Logistic regression", "seed_sd"])  # deterministic: not repeated
