"""How the TF-IDF baselines' defaults were chosen: on a validation split carved from the TRAINING split
(grouped by identical text, like the neural models' early-stopping split), never on the test split.

    python -m perf.text_tuning [--seed 0] [--val 0.1]

Prints macro-F1 on the validation split for each value of the grid; the registry defaults
(`models/text.py`) are the winners of this run.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from sklearn.metrics import f1_score

from bench.tasks.sentiment.estimators import TFIDF_CONFIGS
from data.text import grouped_split, load_tweets
from models import text as mt

GRID: dict[str, tuple[str, tuple[float, ...]]] = {
    "tfidf_lr": ("C", (1.0, 2.0, 4.0, 8.0, 16.0)),
    "tfidf_svm": ("C", (0.05, 0.1, 0.3, 1.0, 3.0)),
    "tfidf_nb": ("alpha", (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)),
}


def tune(seed: int = 0, val_fraction: float = 0.1) -> dict[str, dict[float, float]]:
    """Validation macro-F1 per model and grid value."""
    split = load_tweets(seed=seed)
    tr, va = grouped_split(split.X_train, split.y_train, val_fraction, seed)
    out: dict[str, dict[float, float]] = {}
    for name, (field, values) in GRID.items():
        out[name] = {}
        for v in values:
            cfg = dataclasses.replace(TFIDF_CONFIGS[name](), **{field: v})
            t0 = time.perf_counter()
            pipe = mt.tfidf_pipeline(name, cfg, seed).fit(split.X_train[tr], split.y_train[tr])
            f1 = float(f1_score(split.y_train[va], pipe.predict(split.X_train[va]), average="macro"))
            out[name][v] = f1
            print(f"{name:10s} {field}={v:<6g} validation macro-F1 {100 * f1:.2f}  ({time.perf_counter() - t0:.1f} s)")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val", type=float, default=0.1)
    args = p.parse_args()
    res = tune(args.seed, args.val)
    for name, scores in res.items():
        best = max(scores, key=lambda v: scores[v])
        field = GRID[name][0]
        default = getattr(TFIDF_CONFIGS[name](), field)
        print(f"{name}: best {field}={best:g} ({100 * scores[best]:.2f}); registry default {field}={default:g}")


if __name__ == "__main__":
    main()
