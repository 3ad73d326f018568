"""Experiment sweeps: a grid over settings x several seeds, every trial a normal run of the ONE runner.

A grid is `{factor: [values]}`; a factor is a field of the swept model's config (`activation`, `dropout`,
...), a field of TrainConfig (`lr`, `epochs`, ...), or one of the aliases `layers`, `width` (mapped onto the
model's own field: MLP `layers`/`neurons`, CNN `conv_blocks`/`channels`) and `size` (training samples,
`full` = all). Every trial is `run_benchmark(...)` logged to the run store and tagged with the sweep id, so
the Runs page, the Experiments page and the claims report all read the same stored runs.

Aggregation: per cell mean, sd and a 95% t-interval over seeds (cut to the metric's range, e.g. [0, 1] for
accuracy); per factor the same, pooled over the other factors; the best cell tested against every other one (paired t-test on the seeds both cells ran, Welch's
t-test otherwise); training time against dataset size fitted on log-log axes.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import threading
import time
import typing
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from bench.tasks import REGISTRY, get_task
from models.config import ConfigError, TrainConfig
from models.redact import redact

SIZE = "size"
ALIASES: dict[str, tuple[str, ...]] = {
    "layers": ("layers", "conv_blocks", "num_layers", "n_layers"),
    "width": ("neurons", "channels", "hidden", "hidden_size", "units"),
}
TAG_SWEEP = "neuralbench.sweep"
TAG_CELL = "neuralbench.sweep_cell"
TAG_SPEC = "neuralbench.sweep_spec"
TAG_LABEL = "neuralbench.label"
MAX_TRIALS = 200
SWEEP_ID = re.compile(r"^[0-9a-f]{12}$")
LOWER_IS_BETTER = ("mae", "rmse", "mase", "mse", "loss", "smape", "mape")

Progress = Callable[[dict[str, Any]], None]


class SweepStopped(RuntimeError):
    """The sweep was stopped on request; finished trials are kept in the store."""


def primary_metric(task: str) -> tuple[str, bool]:
    """(metric name, higher is better) of a task, from its evaluator when it has one."""
    spec = get_task(task)
    evaluator = getattr(spec, "evaluator", None)
    metric = getattr(evaluator, "primary_metric", None) or spec.primary_metric
    higher = getattr(evaluator, "higher_is_better", None)
    if higher is None:
        higher = metric not in LOWER_IS_BETTER
    return metric, bool(higher)


# ----------------------------------------------------------------------------------------------- the grid


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def resolve_factor(task: str, model: str, factor: str) -> tuple[str, str, Any]:
    """Where a factor lives: ("model" | "train" | "request", field name, type). ConfigError when unknown."""
    spec = get_task(task)
    if model not in spec.models:
        raise ConfigError(f"unknown model {model!r} for task {task}; known: {', '.join(spec.models)}")
    if factor == SIZE:
        return "request", "max_samples", int
    model_fields = _field_types(spec.models[model].config_cls)
    for name in ALIASES.get(factor, (factor,)):
        if name in model_fields:
            return "model", name, model_fields[name]
    train_fields = _field_types(TrainConfig)
    if factor in train_fields and factor not in ("seed", "max_samples"):
        return "train", factor, train_fields[factor]
    known = sorted({*model_fields, *(f for f in train_fields if f not in ("seed", "max_samples")), SIZE, *ALIASES})
    raise ConfigError(f"{spec.models[model].label} cannot sweep {factor!r}; sweepable: {', '.join(known)}")


def parse_value(text: str, kind: Any, factor: str) -> Any:
    """One grid value from text, by the target field's type: `1k` = 1000 and `full` = 0 for the size."""
    t = str(text).strip()
    if not t:
        raise ConfigError(f"{factor}: empty value")
    try:
        if factor == SIZE:
            if t.lower() in ("full", "all", "0"):
                return 0
            mult = {"k": 1_000, "m": 1_000_000}.get(t[-1].lower(), 1)
            value = float(t[:-1] if mult > 1 else t) * mult
            if value < 1 or value != int(value):
                raise ValueError
            return int(value)
        if kind is bool:
            if t.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError
            return t.lower() in ("1", "true", "yes", "on")
        if kind is int:
            return int(t)
        if kind is float:
            value = float(t)
            if not math.isfinite(value):
                raise ValueError
            return value
        return t
    except ValueError as exc:
        raise ConfigError(f"{factor}: {t!r} is not a valid {getattr(kind, '__name__', kind)}") from exc


def parse_grid(task: str, model: str, items: Sequence[str]) -> dict[str, list[Any]]:
    """`["activation=relu,tanh", "lr=0.1,0.01"]` -> `{"activation": ["relu", "tanh"], "lr": [0.1, 0.01]}`."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"a grid entry is FACTOR=V1,V2,...; got {item!r}")
        if key in grid:
            raise ConfigError(f"{key} appears twice in the grid")
        _, _, kind = resolve_factor(task, model, key)
        parsed = [parse_value(v, kind, key) for v in values.split(",") if v.strip()]
        if not parsed:
            raise ConfigError(f"{key}: no values")
        grid[key] = list(dict.fromkeys(parsed))  # drop repeats, keep order
    return grid


def expand_grid(grid: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of the grid, first factor varying slowest; an empty grid is one empty cell."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]


def cell_label(cell: dict[str, Any]) -> str:
    """`activation=relu, lr=0.01` (or `default` for the empty cell)."""
    return ", ".join(f"{k}={'full' if k == SIZE and v == 0 else v}" for k, v in cell.items()) or "default"


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs (picklable: it travels to Ray workers)."""

    task: str
    dataset: str
    model: str
    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    baselines: tuple[str, ...] = ()
    train_overrides: tuple[tuple[str, Any], ...] = ()
    model_overrides: tuple[tuple[str, Any], ...] = ()
    max_samples: int = 0
    label: str = ""
    sweep_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        spec = REGISTRY.get(self.task)
        if spec is None:
            raise ConfigError(f"unknown task {self.task!r}; known: {', '.join(REGISTRY)}")
        if self.dataset not in spec.datasets:
            raise ConfigError(f"unknown dataset {self.dataset!r} for {self.task}; known: {', '.join(spec.datasets)}")
        bad = [m for m in (self.model, *self.baselines) if m not in spec.models]
        if bad:
            raise ConfigError(f"unknown model(s) {', '.join(bad)}; known: {', '.join(spec.models)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ConfigError("seeds must be distinct non-negative integers (at least one)")
        if not SWEEP_ID.match(self.sweep_id):
            raise ConfigError("sweep ids are 12 hex digits")
        for name, values in self.grid:
            resolve_factor(self.task, self.model, name)
            if not values:
                raise ConfigError(f"{name}: no values")
        if self.n_trials > MAX_TRIALS:
            raise ConfigError(f"{self.n_trials} trials is too many (at most {MAX_TRIALS}): shrink the grid or the seeds")
        for cell in self.cells:  # every setting is checked before anything trains
            try:
                trial_request(self, cell, self.seeds[0])
            except ConfigError as exc:
                raise ConfigError(f"{cell_label(cell)}: {exc}") from exc

    @classmethod
    def build(cls, task: str, dataset: str, model: str, grid: dict[str, Sequence[Any]], **kw: Any) -> SweepSpec:
        """Convenience constructor from a plain grid dict and dict overrides."""
        for k in ("train_overrides", "model_overrides"):
            if isinstance(kw.get(k), dict):
                kw[k] = tuple(sorted(kw[k].items()))
        for k in ("seeds", "baselines"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(task, dataset, model, tuple((k, tuple(v)) for k, v in grid.items()), **kw)

    @property
    def grid_dict(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in self.grid}

    @property
    def cells(self) -> list[dict[str, Any]]:
        return expand_grid(self.grid_dict)

    @property
    def n_trials(self) -> int:
        return len(self.cells) * len(self.seeds)

    def trials(self) -> list[tuple[int, dict[str, Any], int]]:
        """(cell index, cell, seed) for every trial, seed-major so every cell gets a first seed early."""
        cells = self.cells
        return [(i, cells[i], s) for s in self.seeds for i in range(len(cells))]

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["grid"] = self.grid_dict
        d["train_overrides"] = dict(self.train_overrides)
        d["model_overrides"] = dict(self.model_overrides)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SweepSpec:
        d = dict(d)
        return cls.build(d.pop("task"), d.pop("dataset"), d.pop("model"), d.pop("grid"), **d)


# ------------------------------------------------------------------------------------------ one trial


def trial_request(spec: SweepSpec, cell: dict[str, Any], seed: int) -> dict[str, Any]:
    """The runner arguments of one trial: models, configs, train config, max_samples (validated)."""
    task = get_task(spec.task)
    mspec = task.models[spec.model]
    model_changes = dict(spec.model_overrides)
    train_changes = dict(spec.train_overrides)
    max_samples = spec.max_samples
    for name, value in cell.items():
        where, fname, _ = resolve_factor(spec.task, spec.model, name)
        if where == "model":
            model_changes[fname] = value
        elif where == "train":
            train_changes[fname] = value
        else:
            max_samples = int(value)
    try:
        cfg = dataclasses.replace(mspec.default_config(spec.dataset), **model_changes)
        tcfg = dataclasses.replace(task.datasets[spec.dataset].default_train_config(seed), **train_changes, seed=seed)
    except TypeError as exc:
        raise ConfigError(f"invalid override: {exc}") from exc
    models = (spec.model, *[b for b in spec.baselines if b != spec.model])
    return {"models": models, "configs": {spec.model: cfg}, "train_config": tcfg, "max_samples": max_samples}


def run_request(
    task: str,
    dataset: str,
    models: Sequence[str],
    *,
    seed: int,
    configs: dict[str, Any],
    train_config: TrainConfig | None,
    max_samples: int = 0,
    repeats: int = 1,
    store: Any = None,
    on_event: Any = None,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """One normal run through the ONE runner: `run_benchmark(BenchmarkRequest(...))`."""
    from bench.runner import BenchmarkRequest, run_benchmark

    request = BenchmarkRequest(
        task=task, dataset=dataset, models=tuple(models), seed=seed, configs=dict(configs),
        train_config=train_config, max_samples=max_samples, repeats=repeats,
    )  # fmt: skip
    return run_benchmark(request, store=store, on_event=on_event, callbacks=callbacks)


def tag_run(store: Any, run_id: str, tags: dict[str, str]) -> None:
    """Add tags to a stored run (sweep id, cell, label)."""
    for k, v in tags.items():
        store.client.set_tag(run_id, k, redact(v)[:5000])


def run_trial(
    spec: SweepSpec, cell_index: int, cell: dict[str, Any], seed: int, store: Any, callbacks: Sequence[Any] = ()
) -> dict[str, Any]:
    """Train one trial through the runner, tag its stored run with the sweep, return its record."""
    args = trial_request(spec, cell, seed)
    tags = {TAG_SWEEP: spec.sweep_id, TAG_CELL: json.dumps(cell), TAG_SPEC: json.dumps(spec.to_json())}
    if spec.label:
        tags[TAG_LABEL] = spec.label

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        # tagged as soon as the run opens: a trial killed by a Stop can still be found and closed
        if kind == "run_started" and store is not None and payload.get("run_id"):
            tag_run(store, payload["run_id"], tags)

    report = run_request(spec.task, spec.dataset, seed=seed, store=store, callbacks=callbacks, on_event=on_event,
                         **args)  # fmt: skip
    return trial_record(spec, cell_index, cell, seed, report)


def close_unfinished(store: Any, sweep_id: str, reason: str = "sweep stopped") -> int:
    """Mark the sweep's runs still RUNNING (trials killed by a Stop) KILLED; returns how many."""
    from mlflow.entities import ViewType

    exps = [e.experiment_id for e in store.client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
            if e.name.startswith("neuralbench-")]  # fmt: skip
    if not exps:
        return 0
    runs = store.client.search_runs(
        exps, filter_string=f"attributes.status = 'RUNNING' and tags.\"{TAG_SWEEP}\" = '{sweep_id}'",
        max_results=MAX_TRIALS,
    )  # fmt: skip
    for r in runs:
        store.abort(r.info.run_id, "KILLED", reason)
    return len(runs)


def trial_record(spec: SweepSpec, cell_index: int, cell: dict[str, Any], seed: int, report: dict) -> dict[str, Any]:
    """The few numbers the aggregation needs from a run's report (JSON-ready)."""
    metric, _ = primary_metric(spec.task)
    by_name = {m["name"]: m for m in report["models"]}
    main = by_name[spec.model]
    hist_key = "val_accuracy" if metric == "accuracy" else "val_loss"
    return {
        "cell": cell_index,
        "params": dict(cell),
        "label": cell_label(cell),
        "seed": seed,
        "run_id": report.get("run_id"),
        "status": "finished",
        "metric": float(main["metrics"][metric]),
        "train_seconds": float(main["train_seconds"]),
        "train_samples": int(main.get("train_samples") or report["split"]["train"]),
        "epochs": len(main.get("history") or []),
        "history": [
            {"epoch": h["epoch"], "value": h.get(hist_key), "train_loss": h.get("train_loss")}
            for h in main.get("history") or []
        ],
        "baselines": {
            b: {"metric": float(by_name[b]["metrics"][metric]), "train_seconds": float(by_name[b]["train_seconds"]),
                "train_samples": int(by_name[b].get("train_samples") or report["split"]["train"])}
            for b in spec.baselines if b in by_name and b != spec.model
        },
    }


def failed_record(cell_index: int, cell: dict[str, Any], seed: int, error: str) -> dict[str, Any]:
    """A trial that did not finish (e.g. the loss diverged): kept, counted, never averaged."""
    return {"cell": cell_index, "params": dict(cell), "label": cell_label(cell), "seed": seed, "run_id": None,
            "status": "failed", "error": redact(error)[:500], "metric": None}  # fmt: skip


# -------------------------------------------------------------------------------------------- running


class SweepControl:
    """Shared between the caller and a running sweep: a stop request and live counts."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.counts = {"done": 0, "failed": 0, "running": 0, "queued": 0, "total": 0}

    def stop(self) -> None:
        self.stop_event.set()

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()


def _local_trials(
    spec: SweepSpec, store: Any, control: SweepControl, on_progress: Progress | None
) -> list[dict[str, Any]]:
    """Every trial one after the other in this process (the reference for the Ray speed-up, and a fallback)."""
    from bench.train import Callback, TrainingAborted, TrainingCancelled

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
        from bench import ray_backend

        records = ray_backend.run_trials(spec, store=store, control=control, on_progress=on_progress,
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


BOUNDS = {"accuracy": (0.0, 1.0), "macro_f1": (0.0, 1.0), "mae": (0.0, None), "rmse": (0.0, None)}


def clip_ci(row: dict[str, Any], metric: str) -> dict[str, Any]:
    """The interval cut to the metric's range (a t-interval over 2-3 seeds can pass 100% accuracy)."""
    lo, hi = BOUNDS.get(metric, (None, None))
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
    ok = [r for r in records if r["status"] == "finished"]
    cells = []
    for i, cell in enumerate(spec.cells):
        rs = [r for r in ok if r["cell"] == i]
        row = {"cell": i, "label": cell_label(cell), **cell, **clip_ci(mean_sd_ci([r["metric"] for r in rs]), metric)}
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
            rows.append({"factor": name, "value": v, **clip_ci(mean_sd_ci([r["metric"] for r in rs]), metric),
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
