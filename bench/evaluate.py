"""Evaluation written once: every model's predictions go through these functions."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint


def accuracy_ci(n_correct: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for an accuracy of n_correct / n (95% by default)."""
    if n == 0:
        return (float("nan"), float("nan"))
    lo, hi = proportion_confint(n_correct, n, alpha=alpha, method="wilson")
    p = n_correct / n  # guard float round-off at 0 and 1 so the interval always holds the estimate
    return float(min(lo, p)), float(max(hi, p))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Accuracy with its 95% CI, macro-F1, per-class precision / recall / F1, confusion matrix."""
    labels = list(range(n_classes))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    acc = float(accuracy_score(y_true, y_pred))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": acc,
        "accuracy_ci": list(accuracy_ci(int((y_true == y_pred).sum()), len(y_true))),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            "precision": p.round(6).tolist(),
            "recall": r.round(6).tolist(),
            "f1": f.round(6).tolist(),
            "support": s.tolist(),
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def mcnemar_test(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict[str, Any]:
    """McNemar's test on paired correctness: exact binomial when fewer than 25 discordant pairs."""
    a_ok = np.asarray(pred_a) == np.asarray(y_true)
    b_ok = np.asarray(pred_b) == np.asarray(y_true)
    table = np.array([[np.sum(a_ok & b_ok), np.sum(a_ok & ~b_ok)], [np.sum(~a_ok & b_ok), np.sum(~a_ok & ~b_ok)]])
    discordant = int(table[0, 1] + table[1, 0])
    exact = discordant < 25
    res = mcnemar(table, exact=exact, correction=True)
    return {
        "test": "mcnemar-exact" if exact else "mcnemar-chi2",
        "p_value": float(res.pvalue) if discordant else 1.0,
        "statistic": float(res.statistic) if discordant else 0.0,
        "a_only_correct": int(table[0, 1]),
        "b_only_correct": int(table[1, 0]),
    }


def error_analysis(cm: list[list[int]] | np.ndarray, class_names: list[str], top: int = 10) -> dict[str, Any]:
    """False positives / negatives per class and the most confused (true, predicted) pairs."""
    cm = np.asarray(cm)
    diag = np.diag(cm)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    pairs = [
        {"true": class_names[i], "predicted": class_names[j], "count": int(off[i, j])}
        for i, j in zip(*np.unravel_index(np.argsort(off, axis=None)[::-1], off.shape), strict=True)
        if off[i, j] > 0
    ][:top]
    return {
        "per_class": [
            {
                "class": name,
                "support": int(cm[k].sum()),
                "correct": int(diag[k]),
                "false_negatives": int(cm[k].sum() - diag[k]),
                "false_positives": int(cm[:, k].sum() - diag[k]),
            }
            for k, name in enumerate(class_names)
        ],
        "most_confused": pairs,
    }


def timed_predict(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray) -> tuple[np.ndarray, float]:
    """Predictions and the seconds per 1,000 samples it took."""
    t0 = time.perf_counter()
    pred = predict(X)
    seconds = time.perf_counter() - t0
    return np.asarray(pred), seconds * 1000.0 / max(1, len(X))


def significance_verdict(comparison: dict[str, Any], acc_a: float, acc_b: float, alpha: float = 0.05) -> str:
    """The McNemar result in plain words."""
    a = comparison.get("a_label", comparison["a"])
    b = comparison.get("b_label", comparison["b"])
    p = comparison["p_value"]
    better, worse = (a, b) if acc_a >= acc_b else (b, a)
    diff = abs(acc_a - acc_b) * 100
    if p < alpha:
        return (
            f"{better} is more accurate than {worse} by {diff:.1f} points, and the difference is "
            f"statistically significant (McNemar p = {p:.3g} < {alpha})."
        )
    return (
        f"{better} scores {diff:.1f} points above {worse}, but the difference is not statistically "
        f"significant on this test set (McNemar p = {p:.3g} >= {alpha})."
    )
