"""Hardening: skops allow-lists per model, no pickle, atomic writes, runs closed FAILED when the end of a run
fails, no temp folders left behind, credentials never shown, capped SHAP work."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from bench.run import runner
from bench.run.store import RunStore, redact_uri
from data.images import load_digits_8x8
from models.classical import CONFIGS, SklearnClassifier
from models.config import ConfigError
from models.io import atomic_write
from tests.helpers import bench_run


@pytest.fixture(scope="module")
def digits():
    return load_digits_8x8(seed=0, max_samples=300)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    return RunStore(root=tmp_path_factory.mktemp("hardening-store"))


def saved_as(folder: Path, name: str, estimator) -> Path:
    """Write `estimator` with the config.json of model `name` (what a tampered run folder would hold)."""
    folder.mkdir(parents=True, exist_ok=True)
    sio.dump(estimator, folder / "model.skops")
    meta = {"kind": "classical", "name": name, "config": {"max_train_samples": 0}, "seed": 0}
    (folder / "config.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_classical_model_round_trips(tmp_path, digits, name) -> None:
    est = SklearnClassifier(name).fit(digits.X_train, digits.y_train)
    est.save(tmp_path / name)
    back = SklearnClassifier.load(tmp_path / name)
    np.testing.assert_array_equal(back.predict(digits.X_test), est.predict(digits.X_test))


def test_a_function_transformer_around_numpy_save_is_refused(tmp_path, digits) -> None:
    """sklearn and numpy types only is not enough: this file would write a file on every predict."""
    target = tmp_path / "written-by-the-model"
    evil = Pipeline([("f", FunctionTransformer(np.save, kw_args={"arr": 0}))])
    folder = saved_as(tmp_path / "evil", "majority", evil)
    with pytest.raises(ConfigError, match=r"allow-list.*numpy\.save"):
        SklearnClassifier.load(folder)
    assert not target.exists()


def test_a_model_of_another_kind_is_refused(tmp_path, digits) -> None:
    X = digits.X_train.reshape(len(digits.X_train), -1)
    svc = SVC().fit(X, digits.y_train)
    with pytest.raises(ConfigError, match="allow-list"):  # an SVC's types are not a majority model's
        SklearnClassifier.load(saved_as(tmp_path / "svc", "majority", svc))
    scaler_only = Pipeline([("s", StandardScaler().fit(X))])  # only allowed types, but not a logistic regression
    with pytest.raises(ConfigError, match="is not a saved 'logreg' model"):
        SklearnClassifier.load(saved_as(tmp_path / "scaler", "logreg", scaler_only))


def test_atomic_write_keeps_the_previous_file_when_the_writer_crashes(tmp_path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"previous complete file")

    def crash_half_way(tmp: str) -> None:
        Path(tmp).write_bytes(b"half of the new fi")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, crash_half_way)
    assert path.read_bytes() == b"previous complete file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]  # no temp file left


class _Boom:
    """Pickled into an object array: unpickling it would run os.system."""

    def __reduce__(self):
        return (os.system, (f"touch {tempfile.gettempdir()}/neuralbench-pwned",))


def test_object_arrays_in_stored_predictions_are_refused(store, tmp_path) -> None:
    pwned = Path(tempfile.gettempdir()) / "neuralbench-pwned"
    pwned.unlink(missing_ok=True)
    run_id = store.start("image", "digits", 0, {})
    np.savez(tmp_path / "predictions.npz", knn=np.array([_Boom()], dtype=object))
    store.client.log_artifact(run_id, str(tmp_path / "predictions.npz"))
    with pytest.raises(ValueError, match="allow_pickle"):
        store.load_predictions(run_id)
    assert not pwned.exists()


def test_loading_artifacts_leaves_no_temp_folders(store, digits) -> None:
    report = bench_run("image", "digits", ["logreg", "majority"], store=store, max_samples=300)
    # the store's own scratch folder (not the shared temp folder, where another test run may be working)
    tmp = store.scratch_dir()
    assert tmp.is_relative_to(store.root)
    before = set(tmp.iterdir())
    for _ in range(3):
        store.load_report(report["run_id"])
        store.load_predictions(report["run_id"])
        store.load_model(report["run_id"], "logreg")
    assert set(tmp.iterdir()) - before == set()


@pytest.mark.parametrize("where", ["compare", "environment", "finish"])
def test_a_failure_at_the_end_of_a_run_closes_it_failed(store, monkeypatch, where) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError(f"{where} broke")

    if where == "compare":
        monkeypatch.setattr(type(runner.get_task("image").evaluator), "compare", boom)
    elif where == "environment":
        monkeypatch.setattr(runner, "environment", boom)
    else:
        monkeypatch.setattr(RunStore, "finish", boom)
    events: list = []
    with pytest.raises(RuntimeError, match="broke"):
        bench_run("image", "digits", ["majority"], store=store, on_event=lambda k, p: events.append((k, p)))
    run_id = next(p["run_id"] for k, p in events if k == "run_started")
    assert store.status(run_id) == "FAILED"
    assert run_id not in {r["run_id"] for r in store.list_runs("image")}


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://alice:s3cret@mlflow.example:5000", "http://***@mlflow.example:5000"),
        ("https://token@host/path?a=1", "https://***@host/path?a=1"),
        ("https://host/api?access_token=abc&x=1", "https://host/api?access_token=***&x=1"),
        ("sqlite:////home/u/runs/mlflow.db", "sqlite:////home/u/runs/mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_tracking_uri_is_shown_without_credentials(uri, shown) -> None:
    assert redact_uri(uri) == shown


def test_shap_work_is_capped(tiny_mnist) -> None:
    from bench.core.explain import MAX_BACKGROUND, MAX_EXPLAIN, explain_images

    est = SklearnClassifier("logreg").fit(tiny_mnist.X_train, tiny_mnist.y_train)
    assert len(tiny_mnist.X_train) > MAX_BACKGROUND and len(tiny_mnist.X_test) > MAX_EXPLAIN
    out = explain_images(est, tiny_mnist.X_train, tiny_mnist.X_test)
    assert out["values"].shape[0] == MAX_EXPLAIN and len(out["predicted"]) == MAX_EXPLAIN
    assert f"{MAX_BACKGROUND} background images" in out["method"]
