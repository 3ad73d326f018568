"""Experiment sweeps: a grid over settings x several seeds, every trial a normal run of the ONE runner.

A grid is `{factor: [values]}`; a factor is a field of the swept model's config (`activation`, `dropout`,
...), a field of TrainConfig (`lr`, `epochs`, ...), or one of the aliases `layers`, `width` (mapped onto the
model's own field: MLP `layers`/`neurons`, CNN `conv_blocks`/`channels`) and `size` (training samples,
`full` = all). Every trial is `run_benchmark(...)` logged to the run store and tagged with the sweep id, so
the Runs page, the Experiments page and the claims report all read the same stored runs (specs and trials:
bench/experiments/trials.py).

Aggregation: per cell mean, sd and a 95% t-interval over seeds (cut to the metric's range, e.g. [0, 1] for
accuracy); per factor the same, pooled over the other factors; the best cell tested against every other one (paired t-test on the seeds both cells ran, Welch's
t-test otherwise); training time against dataset size fitted on log-log axes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from bench.experiments.trials import (
    MAX_TRIALS,
    SIZE,
    SWEEP_ID,
    TAG_CELL,
    TAG_LABEL,
    TAG_SPEC,
    TAG_SWEEP,
    Progress,
    SweepControl,
    SweepSpec,
    cell_label,
    failed_record,
    primary_metric,
    run_trial,
    trial_record,
)
from bench.tasks import get_task
from models.config import ConfigError


def _local_trials(
    spec: SweepSpec, store: Any, control: SweepControl, on_progress: Progress | None
) -> list[dict[str, Any]]:
    """Every trial one after the other in this process (the reference for the Ray speed-up, and a fallback)."""
    from bench.core.train import Callback, TrainingAborted, TrainingCancelled

    class _Stop(Callback):
        def on_batch_end(self, state: Any) -> None:
            if control.stopped:
                raise TrainingCancelled("sweep stopped")

    records: list[dict[str, Any]] = []
    trials = spec.trials()
    control.counts.update(total=len(trials), queued=len(trials))
    for i, cell, seed in trials:
        if control.stopped:
            break
        control.counts.update(running=1, queued=control.counts["queued"] - 1)
        _notify(on_progress, control, None)
        try:
            rec = run_trial(spec, i, cell, seed, store, callbacks=[_Stop()])
        except TrainingCancelled:
            break
        except (TrainingAborted, ConfigError) as exc:
            rec = failed_record(i, cell, seed, f"{type(exc).__name__}: {exc}")
        records.append(rec)
        control.counts.update(running=0, done=control.counts["done"] + 1,
                              failed=control.counts["failed"] + (rec["status"] == "failed"))  # fmt: skip
        _notify(on_progress, control, rec)
    control.counts["running"] = 0
    return records


def _notify(on_progress: Progress | None, control: SweepControl, record: dict[str, Any] | None) -> None:
    if on_progress is not None:
        on_progress({**control.counts, "record": record})


def run_sweep(
    spec: SweepSpec,
    *,
    backend: str = "ray",
    store: Any = None,
    on_progress: Progress | None = None,
    control: SweepControl | None = None,
    max_concurrent: int | None = None,
) -> dict[str, Any]:
    """Run every trial of `spec` (on Ray Tune, or "local": sequentially in this process); return the summary.

    Stopping (control.stop()) ends the sweep early; finished trials are kept and summarised with
    status "stopped".
    """
    if backend not in ("ray", "local"):
        raise ConfigError(f"backend must be 'ray' or 'local', got {backend!r}")
    task = get_task(spec.task)
    ok, reason = task.datasets[spec.dataset].availability()
    if not ok:
        raise ConfigError(reason)
    control = control or SweepControl()
    t0 = time.perf_counter()
    if backend == "ray":
        from bench.experiments import ray_tune  # deferred: ray (and Tune) are heavy imports

        records = ray_tune.run_trials(spec, store=store, control=control, on_progress=on_progress,
                                         max_concurrent=max_concurrent)  # fmt: skip
    else:
        records = _local_trials(spec, store, control, on_progress)
    wall = time.perf_counter() - t0
    summary = summarize(spec, records)
    summary.update(
        backend=backend, wall_seconds=round(wall, 3),
        status="stopped" if control.stopped or len(records) < spec.n_trials else "complete",
    )  # fmt: skip
    return summary


# ---------------------------------------------------------------------------------------- aggregation


def clip_ci(row: dict[str, Any], bounds: tuple[float | None, float | None]) -> dict[str, Any]:
    """The interval cut to the metric's range (a t-interval over 2-3 seeds can pass 100% accuracy)."""
    lo, hi = bounds
    if row.get("ci_low") is not None:
        if lo is not None:
            row["ci_low"] = max(lo, row["ci_low"])
        if hi is not None:
            row["ci_high"] = min(hi, row["ci_high"])
    return row


def mean_sd_ci(values: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """n, mean, sample sd (ddof=1) and the t-interval of the mean; sd and CI are None for a single value."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci_low": None, "ci_high": None}
    mean = float(x.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "sd": None, "ci_low": None, "ci_high": None}
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half}


def significance(best: dict[int, float], other: dict[int, float], alpha: float = 0.05) -> dict[str, Any]:
    """Best cell vs another, over seeds: paired t-test on shared seeds (>= 2), else Welch's t-test."""
    shared = sorted(set(best) & set(other))
    if len(shared) >= 2 and len(shared) == len(best) == len(other):
        a, b = [best[s] for s in shared], [other[s] for s in shared]
        if np.allclose(np.subtract(a, b), np.subtract(a, b)[0]):  # constant differences: t undefined
            p = 0.0 if a[0] != b[0] else 1.0
        else:
            p = float(stats.ttest_rel(a, b).pvalue)
        test = "paired t-test"
    elif len(best) >= 2 and len(other) >= 2:
        a, b = list(best.values()), list(other.values())
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
        test = "Welch t-test"
    else:
        return {"test": "none (needs 2+ seeds per cell)", "p_value": None, "significant": None}
    if not math.isfinite(p):
        p = 1.0
    return {"test": test, "p_value": p, "significant": p < alpha}


def _group(records: list[dict[str, Any]], key: Callable[[dict], Any]) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(key(r), []).append(r)
    return out


def summarize(spec: SweepSpec, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Cells (mean, sd, CI), factor tables, best vs rest tests, curves by epoch, time and metric vs size."""
    metric, higher = primary_metric(spec.task)
    bounds = get_task(spec.task).evaluator.metric(metric).bounds
    ok = [r for r in records if r["status"] == "finished"]
    cells = []
    for i, cell in enumerate(spec.cells):
        rs = [r for r in ok if r["cell"] == i]
        row = {"cell": i, "label": cell_label(cell), **cell, **clip_ci(mean_sd_ci([r["metric"] for r in rs]), bounds)}
        row["seeds"] = sorted(r["seed"] for r in rs)
        row["failed"] = sum(1 for r in records if r["cell"] == i and r["status"] == "failed")
        row["train_seconds_mean"] = float(np.mean([r["train_seconds"] for r in rs])) if rs else None
        row["run_ids"] = [r["run_id"] for r in rs if r["run_id"]]
        cells.append(row)
    scored = [c for c in cells if c["mean"] is not None]
    tests: list[dict[str, Any]] = []
    best = None
    if scored:
        best = max(scored, key=lambda c: c["mean"] if higher else -c["mean"])
        best_vals = {r["seed"]: r["metric"] for r in ok if r["cell"] == best["cell"]}
        for c in scored:
            if c["cell"] == best["cell"]:
                continue
            vals = {r["seed"]: r["metric"] for r in ok if r["cell"] == c["cell"]}
            t = significance(best_vals, vals)
            tests.append({"best": best["label"], "other": c["label"], "best_mean": best["mean"],
                          "other_mean": c["mean"], "difference": best["mean"] - c["mean"], **t})  # fmt: skip
    factors = {}
    for name, values in spec.grid:
        rows = []
        for v in values:
            rs = [r for r in ok if r["params"].get(name) == v]
            rows.append({"factor": name, "value": v, **clip_ci(mean_sd_ci([r["metric"] for r in rs]), bounds),
                         "train_seconds_mean": float(np.mean([r["train_seconds"] for r in rs])) if rs else None})
        factors[name] = rows
    return {
        "sweep_id": spec.sweep_id,
        "spec": spec.to_json(),
        "metric": metric,
        "higher_is_better": higher,
        "n_trials": spec.n_trials,
        "finished": len(ok),
        "failed": len(records) - len(ok),
        "trials": records,
        "cells": cells,
        "best": best["label"] if best else None,
        "tests": tests,
        "factors": factors,
        "curves": epoch_curves(ok),
        "scaling": size_scaling(spec, ok),
    }


def epoch_curves(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean validation metric per epoch and setting (over the seeds that reached that epoch)."""
    out = []
    for label, rs in _group(records, lambda r: r["label"]).items():
        by_epoch = _group([{**h, "seed": r["seed"]} for r in rs for h in r.get("history", [])], lambda h: h["epoch"])
        for epoch in sorted(by_epoch):
            vals = [h["value"] for h in by_epoch[epoch] if h["value"] is not None]
            if vals:
                out.append({"setting": label, "epoch": epoch, "value": float(np.mean(vals)), "n": len(vals)})
    return out


def loglog_fit(sizes: Sequence[float], seconds: Sequence[float]) -> dict[str, Any] | None:
    """Least-squares line through (log10 size, log10 seconds): slope, intercept, and the time at 10x the largest size."""
    pts = [(n, s) for n, s in zip(sizes, seconds, strict=True) if n and n > 0 and s and s > 0]
    if len({n for n, _ in pts}) < 2:
        return None
    lx, ly = np.log10([p[0] for p in pts]), np.log10([p[1] for p in pts])
    slope, intercept = np.polyfit(lx, ly, 1)
    largest = max(p[0] for p in pts)
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "largest_size": int(largest),
        "extrapolated_size": int(largest * 10),
        "extrapolated_seconds": float(10 ** (intercept + slope * math.log10(largest * 10))),
    }


def size_scaling(spec: SweepSpec, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Metric and training time against the actual training-set size, for the net and every baseline."""
    if SIZE not in spec.grid_dict or not records:
        return None
    points = []
    for r in records:
        points.append({"model": spec.model, "size": r["train_samples"], "metric": r["metric"],
                       "train_seconds": r["train_seconds"], "seed": r["seed"], "run_id": r["run_id"]})  # fmt: skip
        for b, v in r.get("baselines", {}).items():
            points.append({"model": b, "size": v["train_samples"], "metric": v["metric"],
                           "train_seconds": v["train_seconds"], "seed": r["seed"], "run_id": r["run_id"]})  # fmt: skip
    fits = {}
    for model, ps in _group(points, lambda p: p["model"]).items():
        fits[model] = loglog_fit([p["size"] for p in ps], [p["train_seconds"] for p in ps])
    return {"points": points, "fits": fits}


# --------------------------------------------------------------------------------- reading back sweeps


def list_sweeps(store: Any, max_results: int = 500) -> list[dict[str, Any]]:
    """Sweeps found in the store (newest first): id, label, spec, number of finished trials."""
    from mlflow.entities import ViewType

    exps = [e.experiment_id for e in store.client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
            if e.name.startswith("neuralbench-")]  # fmt: skip
    if not exps:
        return []
    runs = store.client.search_runs(
        exps, filter_string=f"attributes.status = 'FINISHED' and tags.\"{TAG_SWEEP}\" != ''",
        order_by=["attributes.start_time DESC"], max_results=max_results,
    )  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for r in runs:
        sid = r.data.tags.get(TAG_SWEEP)
        if sid not in out:
            spec = json.loads(r.data.tags.get(TAG_SPEC, "{}"))
            out[sid] = {"sweep_id": sid, "label": r.data.tags.get(TAG_LABEL, ""), "spec": spec, "trials": 0,
                        "start_time": r.info.start_time}  # fmt: skip
        out[sid]["trials"] += 1
        out[sid]["start_time"] = min(out[sid]["start_time"], r.info.start_time)
    return sorted(out.values(), key=lambda s: -s["start_time"])


def load_sweep(store: Any, sweep_id: str) -> dict[str, Any]:
    """Rebuild a sweep's summary from its stored runs (each trial's report.json)."""
    if not SWEEP_ID.match(sweep_id or ""):
        raise ConfigError(f"not a sweep id: {sweep_id!r}")
    from mlflow.entities import ViewType

    exps = [e.experiment_id for e in store.client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
            if e.name.startswith("neuralbench-")]  # fmt: skip
    runs = store.client.search_runs(
        exps, filter_string=f"attributes.status = 'FINISHED' and tags.\"{TAG_SWEEP}\" = '{sweep_id}'",
        max_results=MAX_TRIALS,
    ) if exps else []  # fmt: skip
    if not runs:
        raise ConfigError(f"no finished trials of sweep {sweep_id}")
    spec = SweepSpec.from_json(json.loads(runs[0].data.tags[TAG_SPEC]))
    index = {json.dumps(c, sort_keys=True): i for i, c in enumerate(spec.cells)}
    records = []
    for r in runs:
        cell = json.loads(r.data.tags[TAG_CELL])
        report = store.load_report(r.info.run_id)
        records.append(trial_record(spec, index[json.dumps(cell, sort_keys=True)], cell, int(report["seed"]), report))
    records.sort(key=lambda r: (r["seed"], r["cell"]))
    summary = summarize(spec, records)
    summary.update(backend="stored", wall_seconds=None,
                   status="complete" if len(records) == spec.n_trials else "partial")  # fmt: skip
    return summary
