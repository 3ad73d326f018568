"""Sweep specs and trials: a grid over settings x several seeds, every trial a normal run of the ONE runner,
logged to the run store and tagged with the sweep id (the grid's factors and aliases are described in
bench/experiments/sweep.py, which runs the trials and aggregates them)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import threading
import typing
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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

Progress = Callable[[dict[str, Any]], None]


class SweepStopped(RuntimeError):
    """The sweep was stopped on request; finished trials are kept in the store."""


def primary_metric(task: str) -> tuple[str, bool]:
    """(metric name, higher is better) of a task: its evaluator's primary metric and that metric's direction."""
    evaluator = get_task(task).evaluator
    return evaluator.primary_metric, evaluator.metric(evaluator.primary_metric).higher_is_better


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


def run_once(
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
    from bench.core.contract import BenchmarkRequest
    from bench.run.runner import run_benchmark

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

    report = run_once(spec.task, spec.dataset, seed=seed, store=store, callbacks=callbacks, on_event=on_event,
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
