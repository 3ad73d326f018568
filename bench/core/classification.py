"""Classification as an objective (images, text, and any task that predicts classes): fitting and scoring,
accuracy / macro-F1 with intervals, McNemar tests, the leaderboard and the headline."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.core.contract import Evaluator, MetricSpec, ModelOutcome, ModelSpec, RunContext
from bench.core.stats import (
    classification_headline,
    classification_leaderboard_rows,
    classification_metrics,
    error_analysis,
    mcnemar_test,
    significance_verdict,
    timed_predict,
)


class ClassificationEvaluator(Evaluator):
    """Accuracy with a Wilson CI, macro-F1, per-class errors, McNemar between paired predictions."""

    objective = "classification"
    primary_metric = "accuracy"
    primary_label = "accuracy"
    higher_is_better = True
    metrics = (
        MetricSpec("accuracy", "accuracy", True, (0.0, 1.0), ".4f"),
        MetricSpec("macro_f1", "macro-F1", True, (0.0, 1.0), ".4f"),
    )

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
        """Best first by the mean accuracy over seeds where a model has several (bench.core.stats)."""
        return classification_leaderboard_rows(report)

    def headline(self, report: dict[str, Any]) -> dict[str, str]:
        """Best neural vs best baseline; a winner only beyond the noise (McNemar), ties said as such."""
        return classification_headline(report)

    def leaderboard_text(self, report: dict[str, Any]) -> str:
        """Accuracy with its interval, macro-F1, time, size and the spread over seeds, one model a line."""
        header = (
            f"{'model':24} {'family':10} {'accuracy':>8} {'95% CI':>15} {'macro-F1':>8} {'train s':>8} {'ms/1k':>8} "
            f"{'params':>10} {'seeds: mean ± sd':>18}"
        )
        lines = [header, "-" * len(header)]
        for r in self.leaderboard_rows(report):
            ci = f"[{r['ci_low']:.3f},{r['ci_high']:.3f}]"
            lines.append(
                f"{r['model']:24} {r['family']:10} {r['accuracy']:8.4f} {ci:>15} {r['macro_f1']:8.4f} "
                f"{r['train_s']:8.2f} {r['predict_ms_per_1k']:8.1f} {r['params']:10d} "
                + (f"{r['seed_mean']:.4f} ± {r['seed_sd']:.4f} (n={r['seeds']})" if r["seed_sd"] is not None else "")
            )
        return "\n".join(lines)
