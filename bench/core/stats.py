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
    """The McNemar result in plain words (ties and differences inside the noise said as such)."""
    a = comparison.get("a_label", comparison["a"])
    b = comparison.get("b_label", comparison["b"])
    p = comparison["p_value"]
    which = f" on the seed-{comparison['seed']} predictions" if comparison.get("seed") is not None else ""
    test = f"McNemar p = {fmt_p(p)}{which}"
    if abs(acc_a - acc_b) <= TIE_TOLERANCE:
        return (
            f"{a} and {b} have the same accuracy ({fmt_pct(acc_a)}): no winner, and their errors differ "
            f"no more than chance allows ({test}, not statistically significant)."
        )
    better, worse = (a, b) if acc_a >= acc_b else (b, a)
    diff = fmt_points(acc_a - acc_b)
    if p < alpha:
        return (
            f"{better} is more accurate than {worse} by {diff}, and the difference is "
            f"statistically significant ({test} < {alpha})."
        )
    return (
        f"{better} scores {diff} above {worse}, but the difference is not statistically "
        f"significant on this test set ({test} ≥ {alpha}): no clear winner."
    )


# --- number formats: one format per quantity, used by the engine's texts and by every page -----------------


def fmt_pct(x: float | None) -> str:
    """A share (accuracy, F1, recall) as a percentage with two decimals: 0.983 -> '98.30%'."""
    if x is None or x != x:
        return "—"
    return f"{x:.2%}"


def fmt_points(diff: float | None) -> str:
    """A difference of two shares in percentage points: 0.012 -> '1.20 points'."""
    if diff is None or diff != diff:
        return "—"
    return f"{abs(diff) * 100:.2f} points"


def fmt_ci(lo: float | None, hi: float | None) -> str:
    """A confidence interval of a share: '97.12 – 98.83%'."""
    if lo is None or hi is None or lo != lo or hi != hi:
        return "—"
    return f"{lo * 100:.2f} – {hi * 100:.2f}%"


def fmt_p(p: float | None) -> str:
    """A p-value with two significant digits; scientific below 0.001: '0.025', '4.9e-05'."""
    if p is None or p != p:
        return "—"
    if p < 1e-3:
        return f"{p:.1e}"
    return f"{p:.2g}"


def fmt_int(n: float | None) -> str:
    """A count with thousands separators: 3136000 -> '3,136,000'."""
    if n is None or n != n:
        return "—"
    return f"{round(float(n)):,}"


def fmt_seconds(s: float | None) -> str:
    """A duration in seconds with two decimals: '7.70 s'."""
    if s is None or s != s:
        return "—"
    return f"{s:,.2f} s"


# --- verdicts: who won, and whether the difference is larger than the noise --------------------------------

TIE_TOLERANCE = 1e-12


def seed_score(metrics: dict[str, Any], metric: str = "accuracy") -> tuple[float, int]:
    """(score used for ranking, number of seeds): the mean over seeds when a model was run with several."""
    runs = metrics.get("seed_runs") or []
    if len(runs) > 1 and metrics.get(f"{metric}_seed_mean") is not None:
        return float(metrics[f"{metric}_seed_mean"]), len(runs)
    return float(metrics[metric]), 1


def decide(
    score_a: float,
    score_b: float,
    p_values: list[float] | None = None,
    directions: list[int] | None = None,
    ci_a: tuple[float, float] | None = None,
    ci_b: tuple[float, float] | None = None,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> str:
    """Outcome of A vs B: 'a' or 'b' (a clear winner), 'tie' (equal scores) or 'unclear' (inside the noise).

    `p_values` are paired tests (McNemar), one per seed compared; `directions[i]` is +1 when A was ahead in
    that comparison, -1 when B was, 0 on a tie. A winner needs every test significant at `alpha`, each in
    the direction of the (mean) scores. Without tests, overlapping confidence intervals mean 'unclear'.
    """
    if abs(score_a - score_b) <= TIE_TOLERANCE:
        return "tie"
    a_ahead = (score_a > score_b) == higher_is_better
    want = 1 if a_ahead else -1
    if p_values:
        dirs = directions if directions is not None else [want] * len(p_values)
        if all(p < alpha for p in p_values) and all(d == want for d in dirs):
            return "a" if a_ahead else "b"
        return "unclear"
    if ci_a is not None and ci_b is not None:
        overlap = ci_a[0] <= ci_b[1] and ci_b[0] <= ci_a[1]
        if overlap:
            return "unclear"
    return "a" if a_ahead else "b"


def significance_note(p_values: list[float], seeds: list[int] | None = None, alpha: float = 0.05) -> str:
    """How the McNemar test(s) came out, in words: one seed, or how many of several were significant."""
    if not p_values:
        return "no paired test available; judged by the 95% confidence intervals"
    if len(p_values) == 1:
        which = f" on the seed-{seeds[0]} predictions" if seeds else ""
        return f"McNemar p = {fmt_p(p_values[0])}{which}"
    k = sum(p < alpha for p in p_values)
    return (
        f"McNemar significant at {alpha} for {k} of {len(p_values)} seeds "
        f"(p from {fmt_p(min(p_values))} to {fmt_p(max(p_values))})"
    )


def _named(m: dict[str, Any], fmt: Callable[[float], str]) -> str:
    seeds = int(m.get("seeds", 1))
    mean = f", mean of {seeds} seeds" if seeds > 1 else ""
    return f"{m['label']} ({fmt(m['score'])}{mean})"


def headline_verdict(
    neural: dict[str, Any] | None,
    baseline: dict[str, Any] | None,
    outcome: str,
    note: str,
    *,
    fmt: Callable[[float], str] = fmt_pct,
    best: dict[str, Any] | None = None,
    higher_is_better: bool = True,
) -> dict[str, str]:
    """The headline as {"level", "text"} from the best neural model, the best baseline and `decide`'s outcome.

    `neural` / `baseline` / `best` are {"label", "score", "seeds"}; with seeds > 1 the score is the mean over
    that many seeds and the text says so. Levels: "success" (the net wins clearly), "warning" (the net loses
    clearly), "info" (a tie, no clear winner, or nothing to compare).
    """
    if neural is None or baseline is None:
        if best is None:
            return {"level": "info", "text": "No model was evaluated."}
        return {"level": "info", "text": f"Best model: {_named(best, fmt)}; no neural-vs-baseline comparison."}
    n, b = _named(neural, fmt), _named(baseline, fmt)
    if outcome == "tie":
        return {
            "level": "info",
            "text": f"No winner: the best neural model, {n}, ties with the best baseline, {b} ({note}).",
        }
    if outcome == "unclear":
        neural_ahead = (neural["score"] >= baseline["score"]) == higher_is_better
        ahead, behind = (n, b) if neural_ahead else (b, n)
        return {
            "level": "info",
            "text": f"No clear winner: {ahead} is ahead of {behind}, but the difference is within the noise ({note}).",
        }
    if outcome == "a":
        return {
            "level": "success",
            "text": f"The best neural model, {n}, beats the best baseline, {b}; the difference is significant ({note}).",
        }
    return {
        "level": "warning",
        "text": f"The neural nets lose: the best baseline, {b}, beats the best neural model, {n}; the difference is "
        f"significant ({note}).",
    }


NEURAL_FAMILIES = ("neural", "pretrained")
BASELINE_FAMILIES = ("classical", "naive")


def classification_headline(report: dict[str, Any], alpha: float = 0.05) -> dict[str, str]:
    """Who won a classification run, said plainly: best neural vs best baseline by accuracy (the mean over
    seeds for models run with several), a winner only when McNemar says the difference is beyond the noise."""
    scored = []
    for m in report.get("models", []):
        score, seeds = seed_score(m["metrics"])
        scored.append({"name": m["name"], "label": m["label"], "family": m["family"], "score": score,
                       "seeds": seeds, "ci": tuple(m["metrics"].get("accuracy_ci") or (score, score))})  # fmt: skip
    if not scored:
        return headline_verdict(None, None, "tie", "")
    by_score = sorted(scored, key=lambda r: -r["score"])
    neural = next((r for r in by_score if r["family"] in NEURAL_FAMILIES), None)
    baseline = next((r for r in by_score if r["family"] in BASELINE_FAMILIES), None)
    if neural is None or baseline is None:
        return headline_verdict(None, None, "tie", "", best=by_score[0])
    p_values, directions, seeds = comparison_tests(
        report.get("comparisons", []), neural["name"], baseline["name"], int(report.get("seed", 0) or 0)
    )
    if p_values:
        note = significance_note(p_values, seeds if max(neural["seeds"], baseline["seeds"]) > 1 else None, alpha)
        outcome = decide(neural["score"], baseline["score"], p_values, directions, alpha=alpha)
    else:
        note = significance_note([], None, alpha)
        outcome = decide(neural["score"], baseline["score"], ci_a=neural["ci"], ci_b=baseline["ci"], alpha=alpha)
        if max(neural["seeds"], baseline["seeds"]) > 1 and outcome in ("a", "b"):
            outcome = "unclear"  # the intervals are those of one seed: they cannot vouch for a mean
            note = "no paired test of these two models on the same predictions"
    return headline_verdict(neural, baseline, outcome, note)


def comparison_tests(
    comparisons: list[dict[str, Any]], a: str, b: str, default_seed: int = 0
) -> tuple[list[float], list[int], list[int]]:
    """(p-values, directions, seeds) of the paired tests of model `a` vs model `b` among `comparisons`.

    A comparison row may hold one test ("p_value", "a_only_correct", "b_only_correct", optional "seed") or one
    per seed ("per_seed": a list of such rows). Directions are +1 when `a` was right more often than `b`.
    """
    out: tuple[list[float], list[int], list[int]] = ([], [], [])
    for c in comparisons:
        if {c.get("a"), c.get("b")} != {a, b}:
            continue
        flip = c.get("a") != a
        for t in c.get("per_seed") or [c]:
            d = int(np.sign(t.get("a_only_correct", 0) - t.get("b_only_correct", 0)))
            out[0].append(float(t["p_value"]))
            out[1].append(-d if flip else d)
            seed = t.get("seed", c.get("seed"))
            out[2].append(int(default_seed if seed is None else seed))
        break
    return out


def classification_leaderboard_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat leaderboard rows, best first: by the mean test accuracy over seeds where a model has several."""
    rows = []
    for m in report["models"]:
        lo, hi = m["metrics"]["accuracy_ci"]
        score, seeds = seed_score(m["metrics"])
        sd = m["metrics"].get("accuracy_seed_sd")
        rows.append(
            {
                "model": m["label"],
                "family": m["family"],
                "seed_text": f"{fmt_pct(score)} ± {sd * 100:.2f} ({seeds} seeds)"
                if seeds > 1 and sd is not None
                else "one run (deterministic)"
                if m["family"] in ("classical", "naive")
                else "one seed",
                "accuracy": m["metrics"]["accuracy"],
                "ci": fmt_ci(lo, hi),
                "ci_low": lo,
                "ci_high": hi,
                "macro_f1": m["metrics"]["macro_f1"],
                "train_samples": m["train_samples"],
                "epochs": len(m["history"]) or None,
                "train_s": m["train_seconds"],
                "predict_ms_per_1k": m["predict_seconds_per_1k"] * 1000,
                "params": m["n_params"],
                "seeds": seeds,
                "seed_mean": m["metrics"].get("accuracy_seed_mean"),
                "seed_sd": sd,
                "score": score,
            }
        )
    return sorted(rows, key=lambda r: (-r["score"], -r["accuracy"]))

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
