"""Run store on MLflow: a stored run loads back with identical predictions; unfinished runs never list."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.cli.main import main as cli_main
from bench.core.train import Callback, TrainingCancelled
from bench.run.store import RunNotFound, RunStore
from data.images import load_mnist_5k
from models.config import ConfigError, TrainConfig
from tests.helpers import bench_run

FAST = TrainConfig(epochs=2, batch_size=64, lr=2e-3)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    return RunStore(root=tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def stored_report(store) -> dict:
    return bench_run("image", "mnist-5k", ["cnn", "logreg", "majority"], seed=0, train_config=FAST,
                         max_samples=400, store=store)  # fmt: skip


def test_report_schema(stored_report) -> None:
    r = stored_report
    assert r["task"] == "image" and r["dataset"] == "mnist-5k" and r["seed"] == 0
    assert set(r["split"]) == {"train", "val", "test"} and r["split"]["train"] == 400
    names = [m["name"] for m in r["models"]]
    assert names == ["cnn", "logreg", "majority"]
    for m in r["models"]:
        assert m["family"] in ("neural", "classical", "naive", "pretrained")
        assert {"accuracy", "accuracy_ci", "macro_f1"} <= set(m["metrics"])
        lo, hi = m["metrics"]["accuracy_ci"]
        assert lo <= m["metrics"]["accuracy"] <= hi
        assert m["train_seconds"] >= 0 and m["predict_seconds_per_1k"] > 0 and m["n_params"] > 0
    cnn = r["models"][0]
    assert [h["epoch"] for h in cnn["history"]] == [1, 2]
    assert {"epoch", "train_loss", "train_accuracy", "val_accuracy"} <= set(cnn["history"][0])
    comp = r["comparisons"][0]
    assert comp["a"] == "cnn" and comp["b"] == "logreg" and comp["test"].startswith("mcnemar")
    assert 0.0 <= comp["p_value"] <= 1.0
    json.dumps(r)  # JSON-ready


def test_stored_run_loads_back_identically(store, stored_report) -> None:
    run_id = stored_report["run_id"]
    assert any(r["run_id"] == run_id for r in store.list_runs("image"))
    assert store.load_report(run_id) == json.loads(json.dumps(stored_report))
    preds = store.load_predictions(run_id)
    split = load_mnist_5k(seed=0, max_samples=400)
    for name in ("cnn", "logreg", "majority"):
        model = store.load_model(run_id, name)
        np.testing.assert_array_equal(model.predict(split.X_test), preds[name])


def test_cancelled_run_is_closed_and_not_listed(store) -> None:
    class Cancel(Callback):
        def on_batch_end(self, state) -> None:
            raise TrainingCancelled("stop pressed")

    before = {r["run_id"] for r in store.list_runs("image")}
    with pytest.raises(TrainingCancelled):
        bench_run("image", "mnist-5k", ["cnn"], train_config=FAST, max_samples=200, store=store,
                      callbacks=[Cancel()])  # fmt: skip
    after = {r["run_id"] for r in store.list_runs("image")}
    assert after == before
    runs = store.client.search_runs([store._experiment("image")], filter_string="attributes.status = 'KILLED'")
    assert runs, "the interrupted run must be marked KILLED"


@pytest.mark.parametrize("bad", ["", "../../etc/passwd", "0" * 31, "Z" * 32, "0" * 32])
def test_bad_run_ids_are_refused(store, bad) -> None:
    with pytest.raises(RunNotFound):
        store.load_report(bad)


def test_model_names_cannot_escape_the_run(store, stored_report) -> None:
    with pytest.raises(RunNotFound):
        store.load_model(stored_report["run_id"], "../report.json")


def test_unknown_inputs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown dataset"):
        bench_run("image", "cifar-1m", ["cnn"])
    with pytest.raises(ConfigError, match="unknown model"):
        bench_run("image", "mnist-5k", ["transformer"])
    with pytest.raises(ConfigError):
        bench_run("image", "mnist-5k", [])


def test_cli_writes_json_report(tmp_path, capsys) -> None:
    out = tmp_path / "report.json"
    code = cli_main(["image", "--dataset", "digits", "--models", "mlp,knn,majority", "--epochs", "2",
                     "--max-samples", "300", "--no-store", "--json", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "k-nearest neighbours" in printed and "Majority class" in printed
    report = json.loads(out.read_text())
    assert report["dataset"] == "digits" and report["split"]["train"] == 300
    assert {m["name"] for m in report["models"]} == {"mlp", "knn", "majority"}
    assert report["comparisons"][0]["b"] == "knn"


def test_cli_reports_bad_model_without_traceback(capsys) -> None:
    assert cli_main(["image", "--models", "cnn,nonsense", "--no-store"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_heavy_jobs_are_bounded(monkeypatch) -> None:
    import threading

    from bench.run import runner

    monkeypatch.setattr(runner, "_SLOTS", threading.BoundedSemaphore(1))
    monkeypatch.setattr(runner, "SLOT_WAIT_SECONDS", 0.05)
    runner._SLOTS.acquire()  # another session is training
    try:
        with pytest.raises(ConfigError, match="busy"):
            bench_run("image", "digits", ["majority"])
    finally:
        runner._SLOTS.release()
    assert bench_run("image", "digits", ["majority"])["models"][0]["name"] == "majority"


def test_cli_config_overrides(tmp_path) -> None:
    out = tmp_path / "r.json"
    code = cli_main(["image", "--dataset", "digits", "--models", "knn,majority", "--set", "knn.n_neighbors=7",
                     "--set", "knn.max_train_samples=200", "--no-store", "--json", str(out)])  # fmt: skip
    assert code == 0
    knn = json.loads(out.read_text())["models"][0]
    assert knn["config"]["n_neighbors"] == 7 and knn["train_samples"] == 200


@pytest.mark.parametrize(
    "bad", ["knn.n_neighbors", "knn.nope=1", "zzz.k=1", "knn.n_neighbors=abc", "knn.n_neighbors=0"]
)
def test_cli_bad_overrides_are_refused(bad, capsys) -> None:
    assert cli_main(["image", "--models", "knn", "--set", bad, "--no-store"]) == 2
    assert "error:" in capsys.readouterr().err


def test_repeats_measure_the_spread_over_seeds(tmp_path) -> None:
    out = tmp_path / "r.json"
    code = cli_main(["image", "--dataset", "digits", "--models", "mlp,rf,knn", "--epochs", "3", "--repeats", "3",
                     "--set", "rf.n_estimators=20", "--no-store", "--json", str(out)])  # fmt: skip
    assert code == 0
    by = {m["name"]: m["metrics"] for m in json.loads(out.read_text())["models"]}
    for name in ("mlp", "rf"):  # seed-dependent: three seeds, the first is the reported model
        runs = by[name]["seed_runs"]
        assert [r["seed"] for r in runs] == [0, 1, 2]
        assert runs[0]["accuracy"] == by[name]["accuracy"]
        accs = np.array([r["accuracy"] for r in runs])
        assert by[name]["accuracy_seed_sd"] == pytest.approx(accs.std(ddof=1))
        assert by[name]["accuracy_seed_mean"] == pytest.approx(accs.mean())
    assert len(by["knn"]["seed_runs"]) == 1 and by["knn"]["accuracy_seed_sd"] is None  # deterministic


def test_repeats_are_bounded() -> None:
    with pytest.raises(ConfigError, match="repeats"):
        bench_run("image", "digits", ["majority"], repeats=50)
