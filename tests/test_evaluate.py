"""Metrics, confidence intervals and significance tests checked against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bench.core.stats import accuracy_ci, classification_metrics, error_analysis, mcnemar_test, significance_verdict


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(949, 1000), (50, 100), (0, 20), (20, 20), (9250, 10000)])
def test_accuracy_ci_matches_wilson_formula(k: int, n: int) -> None:
    lo, hi = accuracy_ci(k, n)
    elo, ehi = wilson(k, n)
    assert lo == pytest.approx(elo, abs=1e-9)
    assert hi == pytest.approx(ehi, abs=1e-9)
    assert lo <= k / n <= hi


def test_classification_metrics_against_hand_counts() -> None:
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
    p = np.array([0, 1, 0, 1, 1, 2, 0, 2, 2, 2])
    m = classification_metrics(y, p, 3)
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]
    # per-class precision / recall from the matrix
    assert m["per_class"]["precision"] == pytest.approx([2 / 3, 2 / 3, 3 / 4], abs=1e-6)
    assert m["per_class"]["recall"] == pytest.approx([2 / 3, 2 / 3, 3 / 4], abs=1e-6)
    f1 = [2 * a * b / (a + b) for a, b in zip([2 / 3, 2 / 3, 3 / 4], [2 / 3, 2 / 3, 3 / 4], strict=True)]
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3, abs=1e-6)
    assert m["accuracy_ci"][0] < 0.7 < m["accuracy_ci"][1]


def test_mcnemar_chi2_matches_textbook_formula() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    a = np.where(rng.random(400) < 0.9, y, (y + 1) % 3)
    b = np.where(rng.random(400) < 0.75, y, (y + 1) % 3)
    res = mcnemar_test(y, a, b)
    n01 = int(np.sum((a == y) & (b != y)))
    n10 = int(np.sum((a != y) & (b == y)))
    assert res["a_only_correct"] == n01 and res["b_only_correct"] == n10
    assert n01 + n10 >= 25 and res["test"] == "mcnemar-chi2"
    chi2 = (abs(n01 - n10) - 1) ** 2 / (n01 + n10)
    assert res["statistic"] == pytest.approx(chi2)
    assert res["p_value"] == pytest.approx(stats.chi2.sf(chi2, 1))
    assert res["p_value"] < 0.05


def test_mcnemar_exact_for_few_discordant_pairs() -> None:
    y = np.zeros(50, dtype=int)
    a = y.copy()
    b = y.copy()
    b[:6] = 1  # a right, b wrong on 6; never the other way
    res = mcnemar_test(y, a, b)
    assert res["test"] == "mcnemar-exact"
    assert res["p_value"] == pytest.approx(stats.binomtest(0, 6, 0.5).pvalue)


def test_identical_predictions_are_not_significant() -> None:
    y = np.array([0, 1, 1, 0])
    res = mcnemar_test(y, y, y)
    assert res["p_value"] == 1.0
    text = significance_verdict({"a": "cnn", "b": "svm", **res}, 1.0, 1.0)
    assert "not statistically significant" in text


def test_error_analysis_counts() -> None:
    cm = [[5, 2, 0], [1, 6, 0], [0, 3, 4]]
    ea = error_analysis(cm, ["a", "b", "c"])
    by = {r["class"]: r for r in ea["per_class"]}
    assert by["b"]["false_positives"] == 5 and by["b"]["false_negatives"] == 1
    assert by["c"]["false_negatives"] == 3 and by["c"]["false_positives"] == 0
    assert ea["most_confused"][0] == {"true": "c", "predicted": "b", "count": 3}
