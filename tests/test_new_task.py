"""Adding a task costs two edits: its own declaration and one registration. This toy task (a regression on
scikit-learn's bundled diabetes table) is defined entirely here, registered, and then trained through the
runner, stored, reloaded, listed on Home, run from the command line and exported, without any file of the
engine knowing it exists. docs/adding-a-task.md walks through this same example."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

from bench import tasks
from bench.core.contract import (
    DatasetSpec,
    Evaluator,
    MetricSpec,
    ModelOutcome,
    ModelSpec,
    RunContext,
    TaskSpec,
    always_available,
)
from bench.core.train import TrainConfig
from bench.run.store import RunStore
from models.config import check_fields, opt
from models.io import read_meta, write_model_folder
from tests.helpers import bench_run

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- the toy task, whole


@dataclass
class ToySplit:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    source: str = "scikit-learn's diabetes table (442 patients, 10 features), bundled"
    split_note: str = "random 75 / 25 split"


def load_toy(seed: int = 0, max_samples: int = 0) -> ToySplit:
    X, y = load_diabetes(return_X_y=True)
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.25, random_state=seed)
    if max_samples:
        Xa, ya = Xa[:max_samples], ya[:max_samples]
    return ToySplit(Xa, ya, Xb, yb)


@dataclass
class RidgeConfig:
    """Ridge regression (closed form)."""

    alpha: float = opt(1.0, "L2 penalty", min=0.0, max=1e6)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class MeanConfig:
    """Always the training mean."""


class Ridge:
    family = "classical"

    def __init__(self, config: RidgeConfig | MeanConfig, name: str) -> None:
        self.config, self.name = config, name
        self.history_: list = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> Ridge:
        alpha = getattr(self.config, "alpha", None)
        if alpha is None:  # the mean baseline
            self.coef_, self.intercept_ = np.zeros(X.shape[1]), float(y.mean())
        else:
            Xc = X - X.mean(0)
            self.coef_ = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ (y - y.mean()))
            self.intercept_ = float(y.mean() - X.mean(0) @ self.coef_)
        self.n_train_ = len(y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef_ + self.intercept_

    @property
    def n_params(self) -> int:
        return int(self.coef_.size + 1)

    def save(self, folder: Path) -> None:
        meta = {"kind": "toy", "name": self.name, "config": dataclasses.asdict(self.config),
                "coef": self.coef_.tolist(), "intercept": self.intercept_, "n_train": self.n_train_}  # fmt: skip
        write_model_folder(folder, meta)

    @classmethod
    def load(cls, folder: Path) -> Ridge:
        meta = read_meta(folder)
        config = RidgeConfig(**meta["config"]) if meta["name"] == "ridge" else MeanConfig()
        est = cls(config, meta["name"])
        est.coef_, est.intercept_ = np.asarray(meta["coef"], float), float(meta["intercept"])
        est.n_train_ = int(meta["n_train"])
        return est


class RegressionEvaluator(Evaluator):
    objective = "regression"
    primary_metric = "mae"
    primary_label = "MAE"
    higher_is_better = False
    metrics = (MetricSpec("mae", "MAE", False, (0.0, None), ".2f"),)

    def fit_and_score(self, ctx: RunContext, mspec: ModelSpec, estimator: Any, callbacks: Any) -> ModelOutcome:
        d = ctx.data
        t0 = time.perf_counter()
        estimator.fit(d.X_train, d.y_train)
        pred = estimator.predict(d.X_test)
        result = {"metrics": {"mae": float(np.abs(pred - d.y_test).mean())},
                  "train_seconds": time.perf_counter() - t0, "n_params": estimator.n_params,
                  "train_samples": estimator.n_train_, "val_samples": 0, "history": []}  # fmt: skip
        return ModelOutcome(result, pred, estimator)

    def report_fields(self, ctx: RunContext, results: list[dict[str, Any]]) -> dict[str, Any]:
        d = ctx.data
        return {"split": {"train": len(d.y_train), "val": 0, "test": len(d.y_test)}, "split_note": d.split_note,
                "data_source": d.source}  # fmt: skip

    def leaderboard_rows(self, report: dict[str, Any]) -> list[dict[str, Any]]:
        rows = [{"model": m["label"], "family": m["family"], "MAE": round(m["metrics"]["mae"], 2)}
                for m in report["models"]]  # fmt: skip
        return sorted(rows, key=lambda r: r["MAE"])

    def headline(self, report: dict[str, Any]) -> dict[str, str]:
        best = self.leaderboard_rows(report)[0]
        return {"level": "info", "text": f"{best['model']} has the lowest MAE ({best['MAE']}); no test was run."}


def _factory(name: str) -> Any:
    return lambda cfg, train_cfg, seed, ctx=None: Ridge(cfg, name)


TOY = TaskSpec(
    name="toy",
    label="Toy regression",
    evaluator=RegressionEvaluator(),
    datasets={"diabetes": DatasetSpec("diabetes", "Diabetes (bundled)", load_toy, always_available,
                                      "scikit-learn's diabetes table")},
    models={
        "ridge": ModelSpec("ridge", "Ridge regression", "classical", RidgeConfig, _factory("ridge"),
                           "Closed-form ridge", loader=Ridge.load),
        "mean": ModelSpec("mean", "Training mean", "naive", MeanConfig, _factory("mean"), "The floor",
                          loader=Ridge.load),
    },
    default_models=("ridge", "mean"),
)


# ----------------------------------------------------------------------------- what it gets for free


@pytest.fixture
def toy_task():
    tasks.register(TOY)  # the second edit: one registration
    yield TOY
    tasks.REGISTRY.unregister("toy")


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(root=tmp_path / "runs")


def test_the_toy_task_trains_stores_reloads_and_exports(toy_task, store, tmp_path) -> None:
    report = bench_run("toy", "diabetes", ["ridge", "mean"], store=store)
    maes = {m["name"]: m["metrics"]["mae"] for m in report["models"]}
    assert maes["ridge"] < maes["mean"] * 0.85  # a real fit beats the floor on real data
    run_id = report["run_id"]
    assert run_id in {r["run_id"] for r in store.list_runs("toy")}
    back = store.load_model(run_id, "ridge")
    split = load_toy()
    np.testing.assert_allclose(back.predict(split.X_test), np.asarray(store.load_predictions(run_id)["ridge"]))

    from bench.run.export import export_model

    info = export_model(store, run_id, "ridge", tmp_path / "export")
    assert "config.json" in info["files"] and info["onnx"]["skipped"]
    assert json.loads((tmp_path / "export" / "ridge" / "config.json").read_text())["name"] == "ridge"


def test_the_toy_task_runs_from_the_command_line(toy_task, store, tmp_path, monkeypatch, capsys) -> None:
    from bench.cli.main import main
    from bench.exec import default as default_executor
    from bench.exec import jobs

    monkeypatch.setenv("NEURALBENCH_RUNS", str(store.root))
    previous = default_executor.set_executor(jobs.InlineExecutor())  # the task lives in this process only
    try:
        code = main(["toy", "--dataset", "diabetes", "--models", "ridge,mean", "--json", str(tmp_path / "r.json")])
    finally:
        default_executor.set_executor(previous)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Ridge regression" in out and "MAE" in out
    assert json.loads((tmp_path / "r.json").read_text())["task"] == "toy"


def test_the_toy_task_is_listed_on_home(toy_task) -> None:
    from streamlit.testing.v1 import AppTest

    bench_run("toy", "diabetes", ["ridge", "mean"], store=RunStore())  # the store Home reads (NEURALBENCH_RUNS)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    assert any(h.value == "Toy regression" for h in at.subheader)
    assert not any("No finished toy regression run" in i.value for i in at.info)


def test_no_engine_file_names_the_toy_task() -> None:
    """The two edits are this file's declaration and its `register` call: the engine and pages never name it."""
    for path in [*(ROOT / "bench").rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py"]:
        text = path.read_text()
        assert '"toy"' not in text and "Toy regression" not in text and "RegressionEvaluator" not in text, path


def test_a_sweep_reads_the_direction_and_bounds_from_the_task(toy_task) -> None:
    from bench.experiments.trials import primary_metric

    assert primary_metric("toy") == ("mae", False)
    assert TrainConfig().epochs > 0  # the neural training config is there for tasks that train nets
