"""Verdicts and number formats: ties and differences inside the noise never read as wins; means over seeds rank."""

from __future__ import annotations

import pytest

from bench.core.stats import (
    classification_headline,
    comparison_tests,
    decide,
    fmt_ci,
    fmt_int,
    fmt_p,
    fmt_pct,
    fmt_points,
    fmt_seconds,
    significance_verdict,
)


def model(name: str, family: str, acc: float, seeds: list[float] | None = None, ci=None) -> dict:
    metrics = {"accuracy": acc, "accuracy_ci": list(ci or (acc - 0.01, acc + 0.01))}
    if seeds:
        metrics["seed_runs"] = [{"seed": i, "accuracy": a} for i, a in enumerate(seeds)]
        metrics["accuracy_seed_mean"] = sum(seeds) / len(seeds)
    return {"name": name, "label": name.upper(), "family": family, "metrics": metrics}


def comparison(a: str, b: str, p: float, a_only: int, b_only: int, **extra) -> dict:
    return {"a": a, "b": b, "p_value": p, "a_only_correct": a_only, "b_only_correct": b_only, **extra}


def test_formats_one_per_quantity() -> None:
    assert fmt_pct(0.983) == "98.30%"
    assert fmt_points(-0.012) == "1.20 points"
    assert fmt_ci(0.9712, 0.98834) == "97.12 – 98.83%"
    assert fmt_p(0.02512) == "0.025" and fmt_p(1.96e-05) == "2.0e-05" and fmt_p(0.84) == "0.84"
    assert fmt_int(3136000) == "3,136,000"
    assert fmt_seconds(7.7) == "7.70 s"
    assert fmt_pct(None) == fmt_int(None) == fmt_p(float("nan")) == "—"  # never "None" in a cell


def test_decide_tie_unclear_and_winners() -> None:
    assert decide(0.1, 0.1, [1.0], [0]) == "tie"
    assert decide(0.95, 0.94, [0.3], [1]) == "unclear"
    assert decide(0.95, 0.90, [0.001], [1]) == "a"
    assert decide(0.90, 0.95, [0.001], [-1]) == "b"
    # significant for one seed only, or significant the other way round: no clear winner
    assert decide(0.95, 0.90, [0.001, 0.2], [1, 1]) == "unclear"
    assert decide(0.95, 0.90, [0.001], [-1]) == "unclear"
    # without a paired test, overlapping CIs are inside the noise
    assert decide(0.95, 0.94, ci_a=(0.93, 0.97), ci_b=(0.92, 0.96)) == "unclear"
    assert decide(0.95, 0.80, ci_a=(0.93, 0.97), ci_b=(0.78, 0.82)) == "a"
    # lower is better (e.g. an error)
    assert decide(10.0, 12.0, [0.01], [1], higher_is_better=False) == "a"


def test_tie_is_not_announced_as_a_win() -> None:
    report = {
        "seed": 0,
        "models": [model("mlp", "neural", 0.1), model("majority", "naive", 0.1)],
        "comparisons": [comparison("mlp", "majority", 1.0, 0, 0)],
    }
    head = classification_headline(report)
    assert head["level"] == "info"
    assert head["text"].startswith("No winner") and "ties with" in head["text"], head
    assert "beats" not in head["text"]


def test_difference_inside_the_noise_is_no_clear_winner() -> None:
    report = {
        "seed": 0,
        "models": [model("cnn", "neural", 0.95), model("svm", "classical", 0.94)],
        "comparisons": [comparison("cnn", "svm", 0.31, 20, 10)],
    }
    head = classification_headline(report)
    assert head["level"] == "info" and head["text"].startswith("No clear winner"), head
    assert "p = 0.31" in head["text"]


def test_significant_wins_and_losses() -> None:
    win = {
        "seed": 0,
        "models": [model("cnn", "neural", 0.98), model("svm", "classical", 0.95)],
        "comparisons": [comparison("cnn", "svm", 4.9e-05, 40, 10)],
    }
    head = classification_headline(win)
    assert head["level"] == "success" and "beats" in head["text"] and "4.9e-05" in head["text"], head
    lose = {
        "seed": 0,
        "models": [model("mlp", "neural", 0.93), model("svm", "classical", 0.95)],
        "comparisons": [comparison("mlp", "svm", 0.01, 10, 30)],
    }
    head = classification_headline(lose)
    assert head["level"] == "warning" and head["text"].startswith("The neural nets lose"), head


def test_seeds_rank_by_the_mean_and_say_so() -> None:
    """Seed 0 favours the forest, the mean over three seeds the CNN: the headline follows the mean."""
    report = {
        "seed": 0,
        "models": [
            model("cnn", "neural", 0.9750, seeds=[0.9750, 0.9889, 0.9861]),
            model("rf", "classical", 0.9778, seeds=[0.9778, 0.9667, 0.9694]),
        ],
        "comparisons": [comparison("cnn", "rf", 0.8, 4, 5)],
    }
    head = classification_headline(report)
    assert "CNN (98.33%, mean of 3 seeds)" in head["text"], head
    assert "RF (97.13%, mean of 3 seeds)" in head["text"], head
    assert head["text"].index("CNN") < head["text"].index("RF")  # the CNN is ahead on the mean
    assert "seed-0 predictions" in head["text"]  # which seed the paired test compared
    assert head["level"] == "info"  # seed 0 does not even agree on the direction


def test_per_seed_tests_are_all_used() -> None:
    row = comparison("cnn", "rf", 0.01, 30, 5)
    row["per_seed"] = [
        comparison("cnn", "rf", 0.01, 30, 5, seed=0),
        comparison("cnn", "rf", 0.02, 25, 6, seed=1),
        comparison("cnn", "rf", 0.30, 20, 14, seed=2),
    ]
    p, d, s = comparison_tests([row], "rf", "cnn")  # asked the other way round: directions flip
    assert p == [0.01, 0.02, 0.30] and d == [-1, -1, -1] and s == [0, 1, 2]
    report = {
        "seed": 0,
        "models": [
            model("cnn", "neural", 0.98, seeds=[0.98, 0.98, 0.97]),
            model("rf", "classical", 0.95, seeds=[0.95, 0.95, 0.96]),
        ],
        "comparisons": [row],
    }
    head = classification_headline(report)
    assert head["level"] == "info" and "2 of 3 seeds" in head["text"], head


def test_no_baseline_names_the_best_model() -> None:
    head = classification_headline({"models": [model("cnn", "neural", 0.9)], "comparisons": []})
    assert head == {"level": "info", "text": "Best model: CNN (90.00%); no neural-vs-baseline comparison."}


@pytest.mark.parametrize(("acc_a", "acc_b", "p", "phrase"), [
    (0.1, 0.1, 1.0, "same accuracy"),
    (0.95, 0.94, 0.3, "no clear winner"),
    (0.98, 0.95, 1e-5, "statistically significant (McNemar p = 1.0e-05"),
])  # fmt: skip
def test_significance_verdict_words(acc_a: float, acc_b: float, p: float, phrase: str) -> None:
    text = significance_verdict({"a": "cnn", "b": "svm", "p_value": p, "seed": 0}, acc_a, acc_b)
    assert phrase in text and "seed-0 predictions" in text, text
