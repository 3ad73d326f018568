"""Every run in the store as a table, side-by-side comparison of chosen runs, and deleting runs.

The Runs page is a thin layer over these functions (no Streamlit here)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from bench.run.store import RUN_ID, RunNotFound
from bench.tasks import REGISTRY


def test_metrics() -> set[str]:
    """Every metric some task's evaluator reports (the `<model>.test_<metric>` columns of a comparison)."""
    return {m.name for task in REGISTRY.values() for m in task.evaluator.metrics}


def all_runs(store: Any, max_results: int = 1000) -> pd.DataFrame:
    """Finished runs of every task, newest first: id, time, task, dataset, seed, models, sweep / claim tags,
    and each model's stored test metrics (`<model>.test_<metric>` columns)."""
    from mlflow.entities import ViewType

    exps = [e.experiment_id for e in store.client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
            if e.name.startswith("neuralbench-")]  # fmt: skip
    if not exps:
        return pd.DataFrame(columns=["run_id", "started", "task", "dataset", "seed", "models"])
    runs = store.client.search_runs(exps, filter_string="attributes.status = 'FINISHED'",
                                    order_by=["attributes.start_time DESC"], max_results=max_results)  # fmt: skip
    known = test_metrics()
    rows = []
    for r in runs:
        tags, params = r.data.tags, r.data.params
        row = {
            "run_id": r.info.run_id,
            "started": datetime.fromtimestamp(r.info.start_time / 1000, tz=UTC).replace(tzinfo=None),
            "task": tags.get("neuralbench.task", ""),
            "dataset": tags.get("neuralbench.dataset", ""),
            "seed": tags.get("neuralbench.seed", ""),
            "models": params.get("models", ""),
            "sweep": tags.get("neuralbench.sweep", ""),
            "claim": tags.get("neuralbench.claim", ""),
        }
        for k, v in sorted(r.data.metrics.items()):
            _, _, name = k.partition(".")
            if name.startswith("test_") and name[5:] in known:
                row[k] = v
        rows.append(row)
    return pd.DataFrame(rows)


def filter_runs(
    df: pd.DataFrame,
    tasks: list[str] | None = None,
    datasets: list[str] | None = None,
    models: list[str] | None = None,
    since: Any = None,
    until: Any = None,
) -> pd.DataFrame:
    """Rows matching every given filter (models: the run has at least one of them; dates inclusive)."""
    out = df
    if tasks:
        out = out[out["task"].isin(tasks)]
    if datasets:
        out = out[out["dataset"].isin(datasets)]
    if models:
        wanted = set(models)
        out = out[out["models"].map(lambda s: bool(wanted & set(str(s).split(","))))]
    if since is not None:
        out = out[out["started"].dt.date >= since]
    if until is not None:
        out = out[out["started"].dt.date <= until]
    return out


def _flat(prefix: str, d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(f"{prefix}{k}.", v))
        else:
            out[f"{prefix}{k}"] = json.dumps(v) if isinstance(v, list) else v
    return out


def compare(reports: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """Side by side: a metrics table (one row per run and model), the per-epoch curves of every neural model,
    and the settings that differ between the runs (identical settings are left out)."""
    metrics_rows, curve_rows, settings = [], [], {}
    for rep in reports:
        rid = str(rep.get("run_id") or "")[:8]
        metric = rep.get("primary_metric", "accuracy")
        for m in rep["models"]:
            mm = m["metrics"]
            ci = mm.get(f"{metric}_ci") or [None, None]
            metrics_rows.append({
                "run": rid, "task": rep["task"], "dataset": rep["dataset"], "seed": rep["seed"], "model": m["label"],
                "family": m["family"], "metric": metric, "value": mm.get(metric), "ci_low": ci[0], "ci_high": ci[1],
                "train_s": m.get("train_seconds"), "train_samples": m.get("train_samples"),
                "epochs": len(m.get("history") or []) or None,
            })  # fmt: skip
            for h in m.get("history") or []:
                curve_rows.append({"run": rid, "model": m["label"], "series": f"{rid} {m['label']}", **h})
        flat = {"task": rep["task"], "dataset": rep["dataset"], "seed": rep["seed"], "repeats": rep.get("repeats"),
                **_flat("train.", rep.get("train_config") or {}), **_flat("setup.", rep.get("setup") or {})}  # fmt: skip
        for m in rep["models"]:
            flat.update(_flat(f"{m['name']}.", m.get("config") or {}))
        settings[rid] = flat
    table = pd.DataFrame(settings).astype(object)
    if not table.empty:
        same = table.apply(lambda r: r.map(repr).nunique(dropna=False) <= 1, axis=1)
        table = table[~same]
        table.index.name = "setting"
        table = table.reset_index()
    return {"metrics": pd.DataFrame(metrics_rows), "curves": pd.DataFrame(curve_rows), "differences": table}


def delete_runs(store: Any, run_ids: list[str]) -> int:
    """Delete runs from the store (MLflow marks them deleted) and, for the local store, their artifact folders
    (only ever inside the store's own folder). Returns how many were deleted."""
    n = 0
    root = Path(store.root).resolve()
    for rid in run_ids:
        if not RUN_ID.match(rid or ""):
            raise RunNotFound(f"not a run id: {rid!r}")
        try:
            run = store.client.get_run(rid)
        except Exception as exc:
            raise RunNotFound(f"no run {rid}") from exc
        store.client.delete_run(rid)
        n += 1
        uri = run.info.artifact_uri or ""
        if store.local and uri.startswith("file:"):
            folder = Path(unquote(urlparse(uri).path)).resolve().parent  # .../<run_id>/artifacts -> .../<run_id>
            if folder.name == rid and folder.is_relative_to(root) and folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
    return n
