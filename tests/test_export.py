"""Model export: safetensors + JSON config as stored, ONNX checked against torch with ONNX Runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.experiments.trials import run_once
from bench.run import export
from bench.run.store import RunNotFound, RunStore
from models.config import TrainConfig


@pytest.fixture(scope="module")
def stored_run() -> tuple[RunStore, dict]:
    store = RunStore()
    report = run_once(
        "image", "mnist-5k", ["cnn", "logreg"], seed=0, configs={}, store=store,
        train_config=TrainConfig(epochs=1, batch_size=64, patience=1), max_samples=300,
    )
    return store, report


def test_onnx_round_trip_matches_torch(stored_run, tmp_path) -> None:
    import onnxruntime as ort

    store, report = stored_run
    info = export.export_model(store, report["run_id"], "cnn", tmp_path)
    folder = tmp_path / "cnn"
    assert {"config.json", "model.safetensors", "model.onnx", "export.json"} <= {p.name for p in folder.iterdir()}
    check = info["onnx"]
    assert check["passed"] and check["max_abs_diff"] <= export.ATOL and check["argmax_agreement"] == 1.0
    assert check["samples"] == min(export.CHECK_SAMPLES, report["split"]["test"])  # the run's real test images
    assert json.loads((folder / "export.json").read_text())["onnx"]["passed"] is True
    # independent check: the exported file predicts what the stored model predicts
    est = store.load_model(report["run_id"], "cnn")
    X = export.check_inputs(report)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_pred = session.run(None, {"input": X.astype(np.float32)})[0].argmax(1)
    stored = store.load_predictions(report["run_id"])["cnn"]
    assert (onnx_pred == stored[: len(X)]).mean() >= 0.98  # stored predictions ran under bf16 autocast
    assert (onnx_pred == est.predict(X)).mean() >= 0.98
    # the safetensors + JSON export rebuilds the same model
    from bench.tasks.image.neural import NeuralClassifier

    again = NeuralClassifier.load(folder)
    np.testing.assert_allclose(again.predict_proba(X[:16]), est.predict_proba(X[:16]), atol=1e-5)


def test_classical_model_exports_without_onnx(stored_run, tmp_path) -> None:
    store, report = stored_run
    info = export.export_model(store, report["run_id"], "logreg", tmp_path)
    assert "skipped" in info["onnx"]
    assert {"config.json", "model.skops"} <= set(info["files"])
    assert export.zip_folder(tmp_path / "logreg")[:2] == b"PK"


def test_failed_onnx_check_is_an_error(stored_run, tmp_path, monkeypatch) -> None:
    store, report = stored_run
    monkeypatch.setattr(export, "ATOL", -1.0)  # no difference can pass: the check must say so
    with pytest.raises(export.ExportError, match="ONNX check failed"):
        export.export_model(store, report["run_id"], "cnn", tmp_path)


@pytest.mark.parametrize(("run_id", "model"), [("../../etc", "cnn"), ("0" * 32, "cnn"), (None, "../x")])
def test_bad_run_or_model_is_refused(stored_run, tmp_path, run_id, model) -> None:
    store, report = stored_run
    with pytest.raises((RunNotFound, export.ExportError)):
        export.export_model(store, run_id or report["run_id"], model, tmp_path)
