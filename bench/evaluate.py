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


# ---------------------------------------------------------------- forecasting (point forecasts of prices)


def forecast_errors(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Forecast errors actual - forecast, as float64."""
    return np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error, in the series' units."""
    return float(np.mean(np.abs(forecast_errors(y_true, y_pred))))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error, in the series' units."""
    return float(np.sqrt(np.mean(forecast_errors(y_true, y_pred) ** 2)))


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error, in percent (prices are positive, so it is defined)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    return float(100.0 * np.mean(np.abs(forecast_errors(y_true, y_pred) / y_true)))


def naive_scale(y_train: np.ndarray, horizon: int = 1) -> float:
    """MASE scale: in-sample MAE of the naive forecast over `horizon` steps on the training series."""
    y_train = np.asarray(y_train, dtype=np.float64)
    if len(y_train) <= horizon:
        return float("nan")
    return float(np.mean(np.abs(y_train[horizon:] - y_train[:-horizon])))


def mase(y_true: np.ndarray, y_pred: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006): MAE / in-sample naive MAE."""
    return mae(y_true, y_pred) / scale if scale and np.isfinite(scale) else float("nan")


def directional_accuracy(y_last: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """Share of the moves called in the right direction, over the points where the series moved and the
    forecast called a move. None when the forecast never calls a move (the naive forecast)."""
    actual = np.sign(np.asarray(y_true, dtype=np.float64) - y_last)
    called = np.sign(np.asarray(y_pred, dtype=np.float64) - y_last)
    mask = (actual != 0) & (called != 0)
    if not mask.any():
        return None
    return float(np.mean(actual[mask] == called[mask]))


def persistence(y_last: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """How much the forecast just repeats the last value: 1 - mean|forecast - last| / mean|actual - last|.

    1.0 = the naive forecast exactly; 0 = the forecast moves as much as the series does; negative = more.
    """
    y_last = np.asarray(y_last, dtype=np.float64)
    moved = float(np.mean(np.abs(np.asarray(y_true, dtype=np.float64) - y_last)))
    if moved == 0:
        return float("nan")
    return 1.0 - float(np.mean(np.abs(np.asarray(y_pred, dtype=np.float64) - y_last))) / moved


def diebold_mariano(e_a: np.ndarray, e_b: np.ndarray, horizon: int = 1, loss: str = "abs") -> dict[str, Any]:
    """Diebold-Mariano test of equal accuracy of two forecasts, with the Harvey-Leybourne-Newbold correction.

    d_t = L(e_a,t) - L(e_b,t); the long-run variance uses the autocovariances up to lag horizon-1; the
    statistic is compared with Student's t on n-1 degrees of freedom (two-sided). A negative statistic means
    forecast a has the smaller loss. For horizon 1 this equals the one-sample t-test of d.
    """
    from scipy import stats

    e_a, e_b = np.asarray(e_a, dtype=np.float64), np.asarray(e_b, dtype=np.float64)
    if loss == "abs":
        d = np.abs(e_a) - np.abs(e_b)
    elif loss == "squared":
        d = e_a**2 - e_b**2
    else:
        raise ValueError(f"loss must be 'abs' or 'squared', got {loss!r}")
    n = len(d)
    h = int(horizon)
    if n < 3:
        return {"test": "diebold-mariano", "statistic": float("nan"), "p_value": float("nan"), "n": n}
    dc = d - d.mean()
    gamma = [float(np.dot(dc[k:], dc[: n - k]) / n) for k in range(h)]
    var = (gamma[0] + 2.0 * sum(gamma[1:])) / n
    hln = np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    if var > 0:
        stat = float(d.mean() / np.sqrt(var) * hln)
    elif d.mean() == 0:  # identical losses everywhere
        stat = 0.0
    else:  # a constant non-zero difference: infinitely significant
        stat = float(np.sign(d.mean()) * np.inf)
    p = float(2.0 * stats.t.sf(abs(stat), df=n - 1)) if np.isfinite(stat) else 0.0
    return {"test": "diebold-mariano", "loss": loss, "statistic": stat, "p_value": p, "n": n,
            "mean_loss_difference": float(d.mean())}  # fmt: skip


def forecast_metrics(
    y_last: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, *, scale: float, horizon: int = 1
) -> dict[str, Any]:
    """Every point-forecast metric of one model, plus the comparison with the naive forecast y_last."""
    naive_mae = mae(y_true, y_last)
    dm = diebold_mariano(forecast_errors(y_true, y_pred), forecast_errors(y_true, y_last), horizon)
    return {
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
        "mape": mape(y_true, y_pred),
        "mase": mase(y_true, y_pred, scale),
        "mae_vs_naive": mae(y_true, y_pred) / naive_mae if naive_mae else float("nan"),
        "directional_accuracy": directional_accuracy(y_last, y_true, y_pred),
        "dm_statistic": dm["statistic"],
        "dm_p_value": dm["p_value"],
        "persistence": persistence(y_last, y_true, y_pred),
    }
