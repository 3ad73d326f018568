"""One benchmark run: load a dataset, fit every chosen model, evaluate all of them the same way,
compare the best neural model with the best classical one, and store the run.

The page and the CLI both call `run_benchmark`; nothing else trains models.
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

from bench.calibrate import execution_summary
from bench.evaluate import classification_metrics, error_analysis, mcnemar_test, significance_verdict, timed_predict
from bench.runs import RunStore
from bench.tasks import get_task
from bench.train import Callback, TrainingCancelled, select_device
from models.config import ConfigError, TrainConfig

Event = Callable[[str, dict[str, Any]], None]

# Heavy jobs are bounded: at most this many benchmark runs train at once in one server process.
MAX_CONCURRENT_RUNS = int(os.environ.get("NEURALBENCH_MAX_CONCURRENT_RUNS", "2"))
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_RUNS)
SLOT_WAIT_SECONDS = 300.0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Versions and hardware the numbers were measured on."""
    device = select_device()
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU ({_cpu_name()})",
        "python": platform.python_version(),
        "execution": execution_summary(),  # precision / layout / threads as measured (bench.calibrate)
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
    task: str,
    dataset: str,
    models: Sequence[str],
    *,
    seed: int = 0,
    configs: dict[str, Any] | None = None,
    train_config: TrainConfig | None = None,
    max_samples: int = 0,
    store: RunStore | None = None,
    on_event: Event | None = None,
    callbacks: Sequence[Callback] = (),
    repeats: int = 1,
) -> dict[str, Any]:
    """Run and evaluate `models` on `dataset`; returns the JSON-ready report (with `run_id` when stored).

    repeats > 1 retrains every seed-dependent model (neural nets, random forest) with seeds seed+1, ...
    on the same split and reports the spread of test accuracy over seeds; the first seed's model is the
    one stored, shown and compared.

    on_event(kind, payload) receives "model_start", "epoch", "model_end" events for progress display;
    `callbacks` are added to every neural model's training loop (e.g. a CancelToken).
    At most MAX_CONCURRENT_RUNS runs train at once; a further one waits, then gives up with ConfigError.
    """
    if not _SLOTS.acquire(timeout=SLOT_WAIT_SECONDS):
        raise ConfigError(
            f"the server is busy: {MAX_CONCURRENT_RUNS} trainings are running; try again in a few minutes"
        )
    try:
        return _run(
            task, dataset, models, seed, configs, train_config, max_samples, store, on_event, callbacks, repeats
        )  # fmt: skip
    finally:
        _SLOTS.release()


def _run(
    task: str,
    dataset: str,
    models: Sequence[str],
    seed: int,
    configs: dict[str, Any] | None,
    train_config: TrainConfig | None,
    max_samples: int,
    store: RunStore | None,
    on_event: Event | None,
    callbacks: Sequence[Callback],
    repeats: int = 1,
) -> dict[str, Any]:
    if not 1 <= repeats <= 10:
        raise ConfigError(f"repeats must be between 1 and 10, got {repeats}")
    spec = get_task(task)
    if dataset not in spec.datasets:
        raise ConfigError(f"unknown dataset {dataset!r} for task {task}; known: {', '.join(spec.datasets)}")
    unknown = [m for m in models if m not in spec.models]
    if unknown or not models:
        raise ConfigError(f"unknown model(s) {unknown or 'none chosen'}; known: {', '.join(spec.models)}")
    ds = spec.datasets[dataset]
    ok, reason = ds.availability()
    if not ok:
        raise ConfigError(reason)
    configs = dict(configs or {})
    tcfg = train_config or ds.default_train_config(seed)
    tcfg = dataclasses.replace(tcfg, seed=seed, max_samples=max_samples or tcfg.max_samples)
    split = ds.loader(seed=seed, max_samples=tcfg.max_samples)
    n_classes = len(split.class_names)

    cfgs = {m: configs.get(m) or spec.models[m].default_config(dataset) for m in models}
    params: dict[str, Any] = {"task": task, "dataset": dataset, "seed": seed, "models": ",".join(models)}
    params.update({f"train.{k}": v for k, v in dataclasses.asdict(tcfg).items()})
    for m, c in cfgs.items():
        params.update({f"{m}.{k}": v for k, v in dataclasses.asdict(c).items()})
    run_id = store.start(task, dataset, seed, params) if store is not None else None

    results: list[dict[str, Any]] = []
    predictions: dict[str, np.ndarray] = {}
    estimators: dict[str, Any] = {}
    try:
        for i, name in enumerate(models):
            mspec = spec.models[name]
            if on_event:
                on_event("model_start", {"model": name, "label": mspec.label, "index": i, "total": len(models)})
            est = mspec.factory(cfgs[name], tcfg, seed)
            t0 = time.perf_counter()
            if mspec.family == "neural":
                est.fit(
                    split.X_train, split.y_train, callbacks=[_EpochLogger(name, store, run_id, on_event), *callbacks]
                )
            else:
                est.fit(split.X_train, split.y_train)
            train_seconds = time.perf_counter() - t0
            pred, per_1k = timed_predict(est.predict, split.X_test)
            metrics = classification_metrics(split.y_test, pred, n_classes)
            seed_runs = [{"seed": seed, "accuracy": metrics["accuracy"]}]
            if repeats > 1 and mspec.seed_dependent:
                for r in range(1, repeats):
                    if on_event:
                        on_event("model_start", {"model": name, "label": f"{mspec.label} (seed {seed + r})",
                                                 "index": i, "total": len(models)})  # fmt: skip
                    extra = mspec.factory(cfgs[name], dataclasses.replace(tcfg, seed=seed + r), seed + r)
                    if mspec.family == "neural":
                        extra.fit(split.X_train, split.y_train, callbacks=[_EpochLogger(name, None, None, on_event),
                                                                           *callbacks])  # fmt: skip
                    else:
                        extra.fit(split.X_train, split.y_train)
                    acc = float((extra.predict(split.X_test) == split.y_test).mean())
                    seed_runs.append({"seed": seed + r, "accuracy": acc})
            accs = np.array([r["accuracy"] for r in seed_runs])
            metrics["seed_runs"] = seed_runs
            metrics["accuracy_seed_mean"] = float(accs.mean())
            metrics["accuracy_seed_sd"] = float(accs.std(ddof=1)) if len(accs) > 1 else None
            result = {
                "name": name,
                "label": mspec.label,
                "family": mspec.family,
                "metrics": metrics,
                "errors": error_analysis(metrics["confusion_matrix"], split.class_names),
                "train_seconds": round(train_seconds, 4),
                "predict_seconds_per_1k": round(per_1k, 6),
                "n_params": int(est.n_params),
                "train_samples": int(est.n_train_),
                "val_samples": int(est.n_val_),
                "config": dataclasses.asdict(cfgs[name]),
                "history": [h.to_dict() for h in est.history_],
            }
            results.append(result)
            predictions[name] = pred.astype(np.int64)
            estimators[name] = est
            if on_event:
                on_event("model_end", {"model": name, "result": result})
    except BaseException as exc:  # Streamlit's stop/rerun is a BaseException too: close the run cleanly
        if store is not None and run_id is not None:
            # stopped on purpose (cancel, Ctrl-C, a Streamlit stop/rerun: BaseExceptions) vs. went wrong
            stopped = isinstance(exc, TrainingCancelled) or not isinstance(exc, Exception)
            status = "KILLED" if stopped else "FAILED"
            store.abort(run_id, status, f"{type(exc).__name__}: {exc}")
        raise

    comparisons = compare(results, split.y_test, predictions)
    n_val = max((r["val_samples"] for r in results if r["family"] == "neural"), default=0)
    report = {
        "task": task,
        "dataset": dataset,
        "seed": seed,
        "split": {"train": len(split.y_train), "val": int(n_val), "test": len(split.y_test)},
        "split_note": split.split_note
        + (f"; validation = {n_val} samples carved from the training split for early stopping" if n_val else ""),
        "data_source": split.source,
        "class_names": split.class_names,
        "train_config": dataclasses.asdict(tcfg),
        "repeats": repeats,
        "models": results,
        "comparisons": comparisons,
        "environment": environment(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
    }
    if store is not None and run_id is not None:
        store.finish(run_id, report, predictions, estimators)
    return report


def compare(results: list[dict[str, Any]], y_test: np.ndarray, predictions: dict[str, np.ndarray]) -> list[dict]:
    """McNemar tests: best neural vs best classical first, then every other neural model vs that baseline."""
    neural = sorted((r for r in results if r["family"] == "neural"), key=lambda r: -r["metrics"]["accuracy"])
    classic = sorted(
        (r for r in results if r["family"] in ("classical", "naive")),
        key=lambda r: (r["family"] != "classical", -r["metrics"]["accuracy"]),
    )
    if not neural or not classic:
        return []
    base = classic[0]
    out = []
    for k, r in enumerate(neural):
        test = mcnemar_test(y_test, predictions[r["name"]], predictions[base["name"]])
        row = {"a": r["name"], "b": base["name"], "a_label": r["label"], "b_label": base["label"], **test}
        row["primary"] = k == 0
        row["verdict"] = significance_verdict(row, r["metrics"]["accuracy"], base["metrics"]["accuracy"])
        out.append(row)
    return out


def leaderboard_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows for a table, best primary metric first."""
    rows = []
    for m in report["models"]:
        lo, hi = m["metrics"]["accuracy_ci"]
        rows.append(
            {
                "model": m["label"],
                "family": m["family"],
                "accuracy": m["metrics"]["accuracy"],
                "ci_low": lo,
                "ci_high": hi,
                "macro_f1": m["metrics"]["macro_f1"],
                "train_s": m["train_seconds"],
                "predict_ms_per_1k": m["predict_seconds_per_1k"] * 1000,
                "params": m["n_params"],
                "train_samples": m["train_samples"],
                "epochs": len(m["history"]) or None,
                "seeds": len(m["metrics"].get("seed_runs", [])) or 1,
                "seed_mean": m["metrics"].get("accuracy_seed_mean"),
                "seed_sd": m["metrics"].get("accuracy_seed_sd"),
            }
        )
    return sorted(rows, key=lambda r: -r["accuracy"])
