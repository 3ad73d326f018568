"""What differs by objective, in one place: how a model is fitted and scored, its metrics, its significance
test, its leaderboard columns and its headline. The runner (bench/runner.py) is the same for every task;
each task's registry entry names its evaluator.

Classification (images, text) lives here; forecasting adds its evaluator in bench/forecasting.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.evaluate import (
    classification_headline,
    classification_leaderboard_rows,
    classification_metrics,
    error_analysis,
    mcnemar_test,
    significance_verdict,
    timed_predict,
)

if TYPE_CHECKING:
    from bench.runner import BenchmarkRequest
    from bench.tasks import ModelSpec, TaskSpec
    from bench.train import Callback
    from models.config import TrainConfig


@dataclass
class RunContext:
    """Everything an evaluator may need about the run in progress (built once by the runner)."""

    request: BenchmarkRequest
    spec: TaskSpec
    data: Any  # whatever the dataset loader returned (ImageSplit, TextSplit, a price series, ...)
    train_config: TrainConfig
    setup: Any = None  # the task's set-up dataclass (e.g. forecast horizon), None where the task has none
    callbacks_for: Callable[[str], list[Callback]] = field(default=lambda name: [])

    @property
    def seed(self) -> int:
        return self.request.seed


@dataclass
class ModelOutcome:
    """One fitted and scored model: the report entry, its test predictions and the estimator to store."""

    result: dict[str, Any]
    predictions: np.ndarray
    estimator: Any


class Evaluator:
    """Base class: one instance per objective, named by the task's registry entry."""

    objective: str = ""
    primary_metric: str = ""
    primary_label: str = ""
    higher_is_better: bool = True

    def fit_and_score(
        self, ctx: RunContext, mspec: ModelSpec, estimator: Any, callbacks: Sequence[Any]
    ) -> ModelOutcome:
        """Fit `estimator` on ctx.data and score it on the test part; `callbacks` go to neural training loops."""
        raise NotImplementedError

    def compare(self, ctx: RunContext, results: list[dict[str, Any]], predictions: dict[str, np.ndarray]) -> list[dict]:
        """Significance tests between models (best neural vs best baseline first)."""
        return []

    def report_fields(self, ctx: RunContext, results: list[dict[str, Any]]) -> dict[str, Any]:
        """Report keys that describe the data: split sizes, split note, data source, class names, ..."""
        return {}

    def leaderboard_rows(self, report: dict[str, Any]) -> list[dict[str, Any]]:
        """Flat rows for a table, best first."""
        raise NotImplementedError

    def headline(self, report: dict[str, Any]) -> dict[str, str]:
        """Who won, said plainly: {"level": "success" | "warning" | "info", "text": ...}."""
        raise NotImplementedError

    def score(self, result: dict[str, Any]) -> float:
        """The primary metric of one model's result (for ranking and the spread over seeds)."""
        return float(result["metrics"][self.primary_metric])

    def rank(self, results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Results best first by the primary metric (mean over seeds where there are several)."""
        sign = -1.0 if self.higher_is_better else 1.0

        def key(r: dict[str, Any]) -> float:
            m = r["metrics"]
            return sign * float(m.get(f"{self.primary_metric}_seed_mean") or m[self.primary_metric])

        return sorted(results, key=key)


class ClassificationEvaluator(Evaluator):
    """Accuracy with a Wilson CI, macro-F1, per-class errors, McNemar between paired predictions."""

    objective = "classification"
    primary_metric = "accuracy"
    primary_label = "accuracy"
    higher_is_better = True

    def fit_and_score(
        self, ctx: RunContext, mspec: ModelSpec, estimator: Any, callbacks: Sequence[Any]
    ) -> ModelOutcome:
        split = ctx.data
        t0 = time.perf_counter()
        if mspec.family == "neural":
            estimator.fit(split.X_train, split.y_train, callbacks=list(callbacks))
        else:
            estimator.fit(split.X_train, split.y_train)
        train_seconds = time.perf_counter() - t0
        pred, per_1k = timed_predict(estimator.predict, split.X_test)
        metrics = classification_metrics(split.y_test, pred, len(split.class_names))
        result = {
            "metrics": metrics,
            "errors": error_analysis(metrics["confusion_matrix"], split.class_names),
            "train_seconds": round(train_seconds, 4),
            "predict_seconds_per_1k": round(per_1k, 6),
            "n_params": int(estimator.n_params),
            "train_samples": int(estimator.n_train_),
            "val_samples": int(getattr(estimator, "n_val_", 0)),
            "history": [h.to_dict() for h in getattr(estimator, "history_", [])],
            "execution": getattr(estimator, "execution_", None),  # measured precision/layout/threads (calibrate)
        }
        return ModelOutcome(result, np.asarray(pred).astype(np.int64), estimator)

    def compare(self, ctx: RunContext, results: list[dict[str, Any]], predictions: dict[str, np.ndarray]) -> list[dict]:
        """McNemar tests: best neural vs best classical first, then every other neural model vs that baseline."""
        y_test = ctx.data.y_test
        # ranked as the headline ranks them: by the mean over seeds where a model has several
        neural = [r for r in self.rank(results) if r["family"] == "neural"]
        classic = [r for r in self.rank(results) if r["family"] in ("classical", "naive")]
        if not neural or not classic:
            return []
        base = classic[0]
        out = []
        for k, r in enumerate(neural):
            test = mcnemar_test(y_test, predictions[r["name"]], predictions[base["name"]])
            row = {"a": r["name"], "b": base["name"], "a_label": r["label"], "b_label": base["label"], **test}
            row["primary"] = k == 0
            if ctx.request.repeats > 1:
                row["seed"] = ctx.seed  # the test compares this seed's predictions: say so
            row["verdict"] = significance_verdict(row, r["metrics"]["accuracy"], base["metrics"]["accuracy"])
            out.append(row)
        return out

    def report_fields(self, ctx: RunContext, results: list[dict[str, Any]]) -> dict[str, Any]:
        split = ctx.data
        n_val = max((r["val_samples"] for r in results if r["family"] == "neural"), default=0)
        note = split.split_note
        if n_val:
            note += f"; validation = {n_val} samples carved from the training split for early stopping"
        return {
            "split": {"train": len(split.y_train), "val": int(n_val), "test": len(split.y_test)},
            "split_note": note,
            "data_source": split.source,
            "class_names": list(split.class_names),
            "fast_path": (getattr(split, "extra", None) or {}).get("fast_path"),
        }

    def leaderboard_rows(self, report: dict[str, Any]) -> list[dict[str, Any]]:
        """Best first by the mean accuracy over seeds where a model has several (bench.evaluate)."""
        return classification_leaderboard_rows(report)

    def headline(self, report: dict[str, Any]) -> dict[str, str]:
        """Best neural vs best baseline; a winner only beyond the noise (McNemar), ties said as such."""
        return classification_headline(report)
