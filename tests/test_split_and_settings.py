"""The fast path never shrinks the test split silently, and every run says which settings it used."""

from __future__ import annotations

import dataclasses

import pytest

from bench.run.settings import describe_settings, flat_settings, report_kind, run_kind, settings_diff
from bench.tasks import REGISTRY, register
from bench.tasks.image.task import TASK as IMAGE_TASK
from data.images import DatasetUnavailable, fast_path_note
from tests.helpers import bench_run


@pytest.mark.parametrize("dataset", [n for n, d in IMAGE_TASK.datasets.items() if not d.user_data])
def test_fast_path_keeps_the_whole_test_split_and_says_so(dataset: str) -> None:
    ds = IMAGE_TASK.datasets[dataset]
    if not ds.availability()[0]:
        pytest.skip(f"{dataset} is not on this machine")
    try:
        full = ds.loader(seed=0)
    except DatasetUnavailable:
        pytest.skip(f"{dataset} needs an upload (its loader is tested with one in tests/test_upload*.py)")
    fast = ds.loader(seed=0, max_samples=5)
    assert len(fast.y_test) == len(full.y_test)
    assert (fast.y_test == full.y_test).all()
    n_classes = len(full.class_names)
    assert len(fast.y_train) == 2 * n_classes  # raised to two per class ...
    assert "raised from the 5 requested" in fast.split_note  # ... and said
    assert f"test split whole ({len(full.y_test):,} images)" in fast.split_note
    assert fast.extra["fast_path"] == {"requested": 5, "used": 2 * n_classes, "of": len(full.y_train),
                                       "raised": True, "test": len(full.y_test)}  # fmt: skip
    assert "fast path" not in full.split_note and "fast_path" not in full.extra


def test_report_states_the_fast_path() -> None:
    report = bench_run("image", "digits", ["majority"], max_samples=5)
    assert report["split"]["test"] == 360  # the whole 20% test split of 1,797 digits
    assert report["split"]["train"] == 20
    assert "fast path: 20 of 1,437 training images (stratified), raised from the 5 requested" in report["split_note"]
    assert "test split whole (360 images)" in report["split_note"]


def test_fast_path_note_without_raising() -> None:
    note = fast_path_note({"requested": 300, "used": 300, "of": 4000, "raised": False}, 1000)
    assert note == "fast path: 300 of 4,000 training images (stratified); test split whole (1,000 images)"
    assert fast_path_note(None, 1000) == ""


def report_stub(train: dict, models: dict[str, dict]) -> dict:
    return {
        "task": "image",
        "dataset": "mnist-5k",
        "train_config": train,
        "models": [{"name": n, "config": c} for n, c in models.items()],
    }


def defaults(name: str) -> dict:
    return dataclasses.asdict(IMAGE_TASK.models[name].default_config("mnist-5k"))


def test_default_run_has_no_diffs() -> None:
    train = dataclasses.asdict(IMAGE_TASK.datasets["mnist-5k"].default_train_config(seed=7))
    kind = report_kind(report_stub(train, {"cnn": defaults("cnn"), "rf": defaults("rf")}))
    assert kind["default"] and kind["full_data"] and kind["summary"] == "default settings, full data"
    assert describe_settings(kind) == "Default settings for this dataset, full training split."


def test_changed_settings_are_listed_with_human_labels() -> None:
    train = dataclasses.asdict(IMAGE_TASK.datasets["mnist-5k"].default_train_config())
    train.update(lr=0.01, max_samples=300)
    rf = {**defaults("rf"), "n_estimators": 50}
    kind = report_kind(report_stub(train, {"cnn": defaults("cnn"), "rf": rf}))
    assert not kind["default"] and not kind["full_data"]
    assert kind["summary"] == "fast path (300 training samples), custom settings (2 changed)"
    assert {"model": "Training (neural models)", "setting": "Learning rate", "value": "0.01",
            "default": "0.001"} in kind["diffs"]  # fmt: skip
    assert {"model": "Random forest", "setting": "Trees", "value": "50", "default": "200"} in kind["diffs"]
    assert "Random forest: Trees 50 (default 200)" in describe_settings(kind)


def test_training_settings_do_not_matter_without_a_neural_model() -> None:
    flat = {"train.lr": "0.5", "knn.n_neighbors": "3"}
    assert settings_diff("image", "mnist-5k", ["knn"], flat) == []
    assert run_kind("image", "mnist-5k", ["knn", "cnn"], flat)["diffs"][0]["setting"] == "Learning rate"


def test_flat_settings_match_the_logged_params() -> None:
    """A report flattened gives the same text the run store logs as params (so both paths agree)."""
    report = bench_run("image", "digits", ["knn"], max_samples=100)
    flat = flat_settings(report)
    assert flat["train.max_samples"] == "100" and flat["knn.n_neighbors"] == "3"
    assert report_kind(report)["summary"] == "fast path (100 training samples)"


def test_task_setup_changes_are_listed(monkeypatch) -> None:
    """A task with a set-up dataclass (e.g. a forecast horizon) gets its changes listed too, with labels."""
    from models.config import opt

    @dataclasses.dataclass
    class Setup:
        horizon: int = opt(1, "Steps ahead", label="Forecast horizon")

    register(dataclasses.replace(IMAGE_TASK, name="image-with-setup", setup_cls=Setup))
    try:
        rows = settings_diff("image-with-setup", "mnist-5k", ["knn"], {"setup.horizon": "5", "knn.n_neighbors": "3"})
        assert rows == [{"model": "Set-up", "setting": "Forecast horizon", "value": "5", "default": "1"}]
        assert settings_diff("image-with-setup", "mnist-5k", ["knn"], {"setup.horizon": "1"}) == []
    finally:
        REGISTRY.unregister("image-with-setup")


def test_custom_upload_fast_path_is_stated(tmp_path) -> None:
    """An uploaded folder dataset: the fast path caps only its training images, raised to 2 per class, and says so."""
    from data.custom import load_custom
    from data.uploads import extract_image_zip
    from tests.test_uploads import good_entries, make_zip

    rep = extract_image_zip(make_zip(good_entries(("a", "b", "c"), n=10)), tmp_path)
    full = load_custom(seed=0, path=rep.folder, image_size=16)
    fast = load_custom(seed=0, path=rep.folder, image_size=16, max_samples=2)
    assert len(fast.y_test) == len(full.y_test) and len(fast.y_train) == 6
    assert "raised from the 2 requested" in fast.split_note and fast.extra["fast_path"]["used"] == 6
