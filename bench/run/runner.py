"""One benchmark run, for every task: load a dataset, fit every chosen model, evaluate all of them the
same way, compare the best neural model with the best baseline, and store the run.

The page and the CLI both call `run_benchmark` with a `BenchmarkRequest`; nothing else trains models.
What differs by objective (fitting and scoring, metrics, significance test, leaderboard, headline) is
the task's evaluator (bench/core/contract.py and bench/core/classification.py).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

from bench.core.calibrate import cpu_name, execution_summary
from bench.core.contract import BenchmarkRequest, ModelOutcome, RunContext
from bench.core.train import Callback, TrainingCancelled, select_device
from bench.run.store import RunStore
from bench.tasks import get_task
from models.config import ConfigError

Event = Callable[[str, dict[str, Any]], None]

# Heavy jobs are bounded: at most this many benchmark runs train at once in one server process.
MAX_CONCURRENT_RUNS = int(os.environ.get("NEURALBENCH_MAX_CONCURRENT_RUNS", "2"))
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_RUNS)
SLOT_WAIT_SECONDS = 300.0


def environment() -> dict[str, Any]:
    """Versions and hardware the numbers were measured on."""
    device = select_device()
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU ({cpu_name()})",
        "python": platform.python_version(),
        "execution": execution_summary(),  # precision / layout / threads as measured (bench.core.calibrate)
    }


class _EpochLogger(Callback):
    """Forwards every finished epoch to the run store and the event listener."""

    BATCH_EVENT_SECONDS = 0.5

    def __init__(self, model: str, store: RunStore | None, run_id: str | None, on_event: Event | None) -> None:
        self.model, self.store, self.run_id, self.on_event = model, store, run_id, on_event
        self.last = time.perf_counter()

    def on_batch_end(self, state: Any) -> None:
        # throttled: progress for the UI (and, in Streamlit, the point where a Stop interrupts the run)
        if self.on_event is not None and time.perf_counter() - self.last >= self.BATCH_EVENT_SECONDS:
            self.last = time.perf_counter()
            self.on_event("batch", {"model": self.model, "progress": state.progress})

    def on_epoch_end(self, state: Any) -> None:
        record = state.history[-1].to_dict()
        if self.store is not None and self.run_id is not None:
            self.store.log_epoch(self.run_id, self.model, record)
        if self.on_event is not None:
            self.on_event("epoch", {"model": self.model, "record": record, "progress": state.progress})


def run_benchmark(
    request: BenchmarkRequest,
    *,
    store: RunStore | None = None,
    on_event: Event | None = None,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Run and evaluate the request's models; returns the JSON-ready report (with `run_id` when stored).

    repeats > 1 retrains every seed-dependent model (neural nets, random forest) with seeds seed+1, ...
    on the same split and reports the spread of the primary metric over seeds; the first seed's model is
    the one stored, shown and compared.

    on_event(kind, payload) receives "run_started" (with the store's run_id), "model_start", "batch",
    "epoch" and "model_end" events for progress display; `callbacks` are added to every neural model's
    training loop (e.g. a CancelToken).
    At most MAX_CONCURRENT_RUNS runs train at once; a further one waits, then gives up with ConfigError.
    """
    if not _SLOTS.acquire(timeout=SLOT_WAIT_SECONDS):
        raise ConfigError(
            f"the server is busy: {MAX_CONCURRENT_RUNS} trainings are running; try again in a few minutes"
        )
    try:
        return _run(request, store, on_event, callbacks)
    finally:
        _SLOTS.release()


def _validate(request: BenchmarkRequest) -> tuple[Any, Any]:
    if not 1 <= request.repeats <= 10:
        raise ConfigError(f"repeats must be between 1 and 10, got {request.repeats}")
    try:
        spec = get_task(request.task)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from exc
    if request.dataset not in spec.datasets:
        raise ConfigError(
            f"unknown dataset {request.dataset!r} for task {request.task}; known: {', '.join(spec.datasets)}"
        )
    unknown = [m for m in request.models if m not in spec.models]
    if unknown or not request.models:
        raise ConfigError(f"unknown model(s) {unknown or 'none chosen'}; known: {', '.join(spec.models)}")
    ds = spec.datasets[request.dataset]
    ok, reason = ds.availability()
    if not ok:
        raise ConfigError(reason)
    return spec, ds


def _run(
    request: BenchmarkRequest, store: RunStore | None, on_event: Event | None, callbacks: Sequence[Callback]
) -> dict[str, Any]:
    spec, ds = _validate(request)
    evaluator = spec.evaluator
    seed, models = request.seed, request.models
    tcfg = request.train_config or ds.default_train_config(seed)
    tcfg = dataclasses.replace(tcfg, seed=seed, max_samples=request.max_samples or tcfg.max_samples)
    setup = request.setup
    if setup is None and spec.setup_cls is not None:
        setup = spec.setup_cls()
    data = ds.loader(seed=seed, max_samples=tcfg.max_samples, **dict(request.data_options))

    cfgs = {m: request.configs.get(m) or spec.models[m].default_config(request.dataset) for m in models}
    params: dict[str, Any] = {"task": request.task, "dataset": request.dataset, "seed": seed, "models": ",".join(models)}
    params.update({f"train.{k}": v for k, v in dataclasses.asdict(tcfg).items()})
    if setup is not None:
        params.update({f"setup.{k}": v for k, v in dataclasses.asdict(setup).items()})
    for m, c in cfgs.items():
        params.update({f"{m}.{k}": v for k, v in dataclasses.asdict(c).items()})
    run_id = store.start(request.task, request.dataset, seed, params) if store is not None else None
    if on_event and run_id:
        on_event("run_started", {"run_id": run_id})

    def callbacks_for(name: str, log: bool = True) -> list[Callback]:
        return [_EpochLogger(name, store if log else None, run_id if log else None, on_event), *callbacks]

    ctx = RunContext(request=request, spec=spec, data=data, train_config=tcfg, setup=setup,
                     callbacks_for=callbacks_for)  # fmt: skip
    metric = evaluator.primary_metric
    results: list[dict[str, Any]] = []
    predictions: dict[str, np.ndarray] = {}
    estimators: dict[str, Any] = {}
    try:
        for i, name in enumerate(models):
            mspec = spec.models[name]
            if on_event:
                on_event("model_start", {"model": name, "label": mspec.label, "index": i, "total": len(models)})
            est = mspec.factory(cfgs[name], tcfg, seed, ctx)
            outcome: ModelOutcome = evaluator.fit_and_score(ctx, mspec, est, callbacks_for(name))
            first = evaluator.score(outcome.result)
            seed_runs = [{"seed": seed, metric: first}]
            if request.repeats > 1 and mspec.seed_dependent:
                for r in range(1, request.repeats):
                    if on_event:
                        on_event("model_start", {"model": name, "label": f"{mspec.label} (seed {seed + r})",
                                                 "index": i, "total": len(models)})  # fmt: skip
                    tcfg_r = dataclasses.replace(tcfg, seed=seed + r)
                    ctx_r = dataclasses.replace(ctx, train_config=tcfg_r)
                    extra = mspec.factory(cfgs[name], tcfg_r, seed + r, ctx_r)
                    again = evaluator.fit_and_score(ctx_r, mspec, extra, callbacks_for(name, log=False))
                    seed_runs.append({"seed": seed + r, metric: evaluator.score(again.result)})
            values = np.array([r[metric] for r in seed_runs], dtype=float)
            result = {
                "name": name,
                "label": mspec.label,
                "family": mspec.family,
                **outcome.result,
                "config": dataclasses.asdict(cfgs[name]),
            }
            result["metrics"] = {
                **outcome.result["metrics"],
                "seed_runs": seed_runs,
                f"{metric}_seed_mean": float(values.mean()),
                f"{metric}_seed_sd": float(values.std(ddof=1)) if len(values) > 1 else None,
            }
            results.append(result)
            predictions[name] = outcome.predictions
            estimators[name] = outcome.estimator
            if on_event:
                on_event("model_end", {"model": name, "result": result})

        report = {
            "task": request.task,
            "dataset": request.dataset,
            "objective": evaluator.objective,
            "primary_metric": metric,
            "seed": seed,
            **evaluator.report_fields(ctx, results),
            "train_config": dataclasses.asdict(tcfg),
            "setup": dataclasses.asdict(setup) if setup is not None else None,
            "data_options": {k: v for k, v in request.data_options.items() if k != "path"},
            "repeats": request.repeats,
            "models": results,
            "comparisons": evaluator.compare(ctx, results, predictions),
            "environment": environment(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "run_id": run_id,
        }
        if store is not None and run_id is not None:
            store.finish(run_id, report, predictions, estimators)
    except BaseException as exc:  # Streamlit's stop/rerun is a BaseException too: close the run cleanly
        if store is not None and run_id is not None:
            # stopped on purpose (cancel, Ctrl-C, a Streamlit stop/rerun: BaseExceptions) vs. went wrong
            stopped = isinstance(exc, TrainingCancelled) or not isinstance(exc, Exception)
            status = "KILLED" if stopped else "FAILED"
            store.abort(run_id, status, f"{type(exc).__name__}: {exc}")
        raise
    return report


def leaderboard_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows for a table, best first, as the report's task evaluator defines them."""
    return get_task(report["task"]).evaluator.leaderboard_rows(report)


def headline(report: dict[str, Any]) -> dict[str, str]:
    """The plain-words verdict of a report: {"level", "text"}."""
    return get_task(report["task"]).evaluator.headline(report)
