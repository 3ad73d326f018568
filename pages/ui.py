"""Shared Streamlit widgets (not a page): config forms, progress, leaderboard, charts, verdicts."""

from __future__ import annotations

import dataclasses
import time
import typing
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from bench.explain import explain_images
from bench.runner import headline as engine_headline
from bench.runner import leaderboard_rows
from bench.runs import RunStore
from bench.tasks import get_task


@st.cache_resource(show_spinner=False)
def run_store() -> RunStore:
    """One MLflow-backed store per server process (the client is thread-safe; never mutated)."""
    return RunStore()


@st.cache_data(show_spinner=False, max_entries=32)
def load_report(run_id: str) -> dict[str, Any]:
    """A stored report, cached by run id (reports never change once finished)."""
    return run_store().load_report(run_id)


@st.cache_data(show_spinner="Computing SHAP values ...", max_entries=64)
def image_shap(run_id: str, model: str, task: str, dataset: str, seed: int, max_samples: int, index: int) -> dict:
    """SHAP values of one test image for a stored model (the model and split are rebuilt from the run)."""
    est = run_store().load_model(run_id, model)
    split = get_task(task).datasets[dataset].loader(seed=seed, max_samples=max_samples)
    out = explain_images(est, split.X_train, split.X_test[index : index + 1], seed=seed)
    return {
        "values": out["values"][0],  # (C, H, W, K)
        "image": split.X_test[index],  # (C, H, W)
        "true": int(split.y_test[index]),
        "predicted": int(out["predicted"][0]),
        "method": out["method"],
    }


def shap_section(report: dict[str, Any], key: str) -> None:
    """Pick a model and a test image; show which pixels pushed the prediction up or down."""
    models = [m for m in report["models"] if m["family"] == "neural" or m["name"] == "logreg"]
    if not report.get("run_id") or not models:
        st.info("SHAP explanations need a stored run with a neural model or logistic regression.")
        return
    labels = {m["name"]: m["label"] for m in models}
    c1, c2 = st.columns(2)
    name = c1.selectbox("Model to explain", list(labels), format_func=labels.get, key=f"{key}.shap_model")
    n_test = report["split"]["test"]
    index = int(c2.number_input(f"Test image (0 to {n_test - 1})", 0, n_test - 1, 0, key=f"{key}.shap_index"))
    if not st.button("Explain", key=f"{key}.explain"):
        return
    try:
        out = image_shap(
            report["run_id"], name, report["task"], report["dataset"], int(report["seed"]),
            int(report.get("train_config", {}).get("max_samples", 0)), index,
        )  # fmt: skip
    except Exception as exc:  # an explanation must never take the page down
        st.error(f"Could not compute the explanation: {exc}")
        return
    classes = report["class_names"]
    vals = out["values"].sum(0)  # over channels: (H, W, K)
    shown = [("predicted", out["predicted"]), ("true", out["true"])]
    cols = st.columns(3)
    fig = px.imshow(out["image"][0], color_continuous_scale="gray_r", title="test image")
    fig.update_layout(coloraxis_showscale=False, height=320)
    cols[0].plotly_chart(fig, key=f"{key}.shap_img")
    limit = float(np.abs(vals).max()) or 1.0
    for col, (what, k) in zip(cols[1:], shown, strict=True):
        fig = px.imshow(vals[:, :, k], color_continuous_scale="RdBu_r", zmin=-limit, zmax=limit,
                        title=f"SHAP for {what} class: {classes[k]}")  # fmt: skip
        fig.update_layout(height=320)
        col.plotly_chart(fig, key=f"{key}.shap_{what}")
    verdict = "correct" if out["predicted"] == out["true"] else "wrong"
    st.caption(
        f"{labels[name]} predicts {classes[out['predicted']]} (true: {classes[out['true']]}, {verdict}). "
        f"Red pixels push towards the class, blue away. {out['method']}."
    )


def config_form(cls: type, defaults: Any, key: str, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Widgets for every field of a config dataclass (inside a st.form); returns the raw values."""
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        meta, default = f.metadata, getattr(defaults, f.name)
        label, help_text, wkey = f.name.replace("_", " "), meta.get("help"), f"{key}.{f.name}"
        kind = hints.get(f.name)
        if "choices" in meta:
            choices = list(meta["choices"])
            values[f.name] = st.selectbox(label, choices, index=choices.index(default), help=help_text, key=wkey)
        elif kind is bool:
            values[f.name] = st.checkbox(label, value=default, help=help_text, key=wkey)
        elif kind is int:
            values[f.name] = int(st.number_input(label, value=int(default), step=1, help=help_text, key=wkey))
        elif kind is float:
            values[f.name] = float(st.number_input(label, value=float(default), format="%g", help=help_text, key=wkey))
        else:
            values[f.name] = st.text_input(label, value=str(default), help=help_text, key=wkey)
    return values


def format_time(ms: int | None) -> str:
    """Milliseconds since the epoch as a short UTC time."""
    if not ms:
        return "?"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def leaderboard(report: dict[str, Any], key: str) -> None:
    """Leaderboard table, best first, with the 95% CI."""
    df = pd.DataFrame(leaderboard_rows(report))
    st.dataframe(
        df,
        hide_index=True,
        key=f"{key}.leaderboard",
        column_config={
            "accuracy": st.column_config.NumberColumn("accuracy", format="%.4f"),
            "ci_low": st.column_config.NumberColumn("95% CI low", format="%.4f"),
            "ci_high": st.column_config.NumberColumn("95% CI high", format="%.4f"),
            "macro_f1": st.column_config.NumberColumn("macro-F1", format="%.4f"),
            "train_s": st.column_config.NumberColumn("train s", format="%.2f"),
            "predict_ms_per_1k": st.column_config.NumberColumn("predict ms / 1k", format="%.1f"),
            "params": st.column_config.NumberColumn("parameters", help="weights, or stored values for kNN / SVM"),
            "train_samples": st.column_config.NumberColumn("train samples"),
            "seed_mean": st.column_config.NumberColumn("mean over seeds", format="%.4f"),
            "seed_sd": st.column_config.NumberColumn("sd over seeds", format="%.4f"),
        },
    )


def accuracy_bars(report: dict[str, Any]) -> go.Figure:
    """Bar chart of accuracy with 95% CI error bars, coloured by family."""
    rows = leaderboard_rows(report)
    df = pd.DataFrame(rows)
    df["err_plus"] = df["ci_high"] - df["accuracy"]
    df["err_minus"] = df["accuracy"] - df["ci_low"]
    fig = px.bar(
        df, x="model", y="accuracy", color="family", error_y="err_plus", error_y_minus="err_minus",
        title="Test accuracy with 95% confidence intervals (Wilson)",
    )  # fmt: skip
    fig.update_layout(yaxis_range=[max(0.0, float(df["ci_low"].min()) - 0.05), 1.0], height=380)
    return fig


def history_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Per-epoch history of every neural model as one long table."""
    rows = [{"model": m["label"], **h} for m in report["models"] for h in m["history"]]
    return pd.DataFrame(rows)


def curves(history: pd.DataFrame, title: str) -> go.Figure:
    """Train vs validation accuracy and train loss per epoch."""
    long = history.melt(
        id_vars=["model", "epoch"],
        value_vars=[c for c in ("train_accuracy", "val_accuracy", "train_loss") if c in history],
        var_name="metric",
    ).dropna()
    fig = px.line(long, x="epoch", y="value", color="model", line_dash="metric", facet_col="metric",
                  markers=True, title=title)  # fmt: skip
    fig.update_yaxes(matches=None, showticklabels=True)
    fig.update_layout(height=360)
    return fig


def confusion(cm: list[list[int]], class_names: list[str], title: str) -> go.Figure:
    """Confusion matrix heatmap (rows: true class, columns: predicted)."""
    fig = px.imshow(
        np.asarray(cm), x=class_names, y=class_names, text_auto=True, color_continuous_scale="Blues",
        labels={"x": "predicted", "y": "true", "color": "count"}, title=title, aspect="auto",
    )  # fmt: skip
    fig.update_layout(height=480)
    return fig


def headline(report: dict[str, Any]) -> None:
    """Who won, said plainly (the task's evaluator words it), including when the neural nets lose."""
    verdict = engine_headline(report)
    {"success": st.success, "warning": st.warning}.get(verdict["level"], st.info)(verdict["text"])
    for c in report.get("comparisons", []):
        if c.get("primary"):
            st.markdown(f"**Significance.** {c['verdict']}")


def provenance(report: dict[str, Any]) -> None:
    """Where the numbers come from: data source, split, seed, run id, environment."""
    env = report.get("environment", {})
    split = report["split"]
    st.caption(
        f"Data: {report['data_source']} · split: {report['split_note']} "
        f"(train {split['train']}, validation {split['val']}, test {split['test']}) · seed {report['seed']} · "
        f"run {report.get('run_id') or 'not stored'} · {report.get('created_at', '')} · "
        f"torch {env.get('torch', '?')} on {env.get('device', '?')}, {env.get('threads', '?')} threads"
    )


def show_report(report: dict[str, Any], key: str) -> None:
    """The full results view of one benchmark report."""
    provenance(report)
    headline(report)
    leaderboard(report, key)
    st.plotly_chart(accuracy_bars(report), key=f"{key}.bars")
    seeds = [
        {"model": m["label"], "seed": r["seed"], "accuracy": r["accuracy"]}
        for m in report["models"]
        for r in m["metrics"].get("seed_runs", [])
    ]
    if len(seeds) > len(report["models"]):
        fig = px.strip(pd.DataFrame(seeds), x="model", y="accuracy", hover_data=["seed"],
                       title="Test accuracy over seeds (same split; one dot per seed)")  # fmt: skip
        st.plotly_chart(fig, key=f"{key}.seeds")
    hist = history_frame(report)
    if not hist.empty:
        st.subheader("Accuracy by epoch")
        st.plotly_chart(curves(hist, "Training curves (validation carved from the training split)"),
                        key=f"{key}.curves")  # fmt: skip
        st.dataframe(hist, hide_index=True, key=f"{key}.history")
    st.subheader("Confusion matrix and errors")
    labels = {m["name"]: m["label"] for m in report["models"]}
    name = st.selectbox("Model", list(labels), format_func=labels.get, key=f"{key}.cm_model")
    model = next(m for m in report["models"] if m["name"] == name)
    classes = report["class_names"]
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(confusion(model["metrics"]["confusion_matrix"], classes, f"{model['label']}: confusion matrix"),
                        key=f"{key}.cm")  # fmt: skip
    with right:
        st.markdown("**Per class: precision, recall, false positives / negatives**")
        per_class = pd.DataFrame(model["errors"]["per_class"])
        for metric in ("precision", "recall", "f1"):
            per_class.insert(len(per_class.columns) - 2, metric, model["metrics"]["per_class"][metric])
        st.dataframe(per_class, hide_index=True, key=f"{key}.errors")
        st.markdown("**Most confused pairs**")
        st.dataframe(pd.DataFrame(model["errors"]["most_confused"]), hide_index=True, key=f"{key}.pairs")
    if report.get("task", "image") == "image":  # text explanations live on the sentiment page
        st.subheader("Explain a prediction (SHAP)")
        shap_section(report, key)
    if report.get("comparisons"):
        st.subheader("Significance tests")
        tests = pd.DataFrame(report["comparisons"])
        tests = tests[["a_label", "b_label", "test", "p_value", "a_only_correct", "b_only_correct"]].rename(
            columns={"a_label": "model A", "b_label": "model B", "a_only_correct": "only A right",
                     "b_only_correct": "only B right"}
        )  # fmt: skip
        st.dataframe(tests, hide_index=True, key=f"{key}.tests")
        for c in report["comparisons"]:
            st.markdown(f"- {c['verdict']}")


# --- Jobs: submit a benchmark request and follow it live (bench/jobs.py) ------------------------------------


def job_executor() -> Any:
    """The process-wide job executor (bench.jobs.get_executor); its forkserver is warmed up on first use."""
    from bench.jobs import get_executor

    executor = get_executor()
    warm_up = getattr(executor, "warm_up", None)
    if warm_up is not None:
        warm_up()
    return executor


def _job_progress_text(job: Any, state: dict[str, Any], started: float) -> str:
    from bench.jobs import QUEUED

    if job.status == QUEUED:
        position = job.queue_position or 1
        return (
            f"Waiting for a free training slot: number {position} in the queue "
            f"(at most {job_executor().max_concurrent} trainings run at once on this server)"
        )
    return f"{state['text']} · {time.monotonic() - started:.0f} s"


def run_job(request: Any, key: str, *, store: bool = True) -> dict[str, Any] | None:
    """Submit `request` (a BenchmarkRequest) as a job and follow it live; returns its report, or None.

    Shows the queue position, a progress bar, live training curves and a Stop button. Stop, any rerun of the
    page and closing the tab cancel the job at once (its worker is terminated, its run closed KILLED); the
    next run of the page says what happened through `job_notice(key)`. Errors are shown as short messages.
    """
    from bench.jobs import DONE, RUNNING

    stop_slot = st.empty()
    stop_slot.button(
        "Stop training", key=f"{key}.stop", icon=":material/stop_circle:",
        help="Stops at once; the unfinished run is discarded.",
    )  # fmt: skip
    progress = st.progress(0.0, text="Starting ...")
    live = st.empty()
    job = job_executor().submit(request, store=run_store() if store else False)
    state: dict[str, Any] = {"done": 0.0, "index": 0, "total": max(1, len(getattr(request, "models", ()))),
                             "text": "Starting the training process ...", "label": ""}  # fmt: skip
    epochs: list[dict[str, Any]] = []
    started = time.monotonic()
    finished = False
    try:
        while True:
            for kind, payload in job.events(timeout=0.3):
                if kind == "model_start":
                    state["label"] = payload.get("label", payload.get("model", ""))
                    state["index"], state["total"] = payload.get("index", 0), max(1, payload.get("total", 1))
                    state["done"] = state["index"] / state["total"]
                    state["text"] = f"Training {state['label']} ..."
                elif kind in ("batch", "epoch"):
                    state["done"] = (state["index"] + float(payload.get("progress", 0.0))) / state["total"]
                    rec = payload.get("record")
                    if kind == "epoch" and rec:
                        epochs.append({"model": state["label"], **rec})
                        val = rec.get("val_accuracy")
                        state["text"] = f"{state['label']}: epoch {rec['epoch']}, train loss {rec['train_loss']:.4f}" + (
                            f", validation accuracy {val:.4f}" if val is not None else ""
                        )
                        live.plotly_chart(curves(pd.DataFrame(epochs), "Live training curves"),
                                          key=f"{key}.live.{len(epochs)}")  # fmt: skip
                elif kind == "model_end":
                    state["done"] = (state["index"] + 1) / state["total"]
                    state["text"] = f"{state['label']} done"
            if job.done:
                break
            # a Streamlit call on every tick: that is where Stop, a rerun or a closed tab interrupts this loop
            value = min(state["done"], 1.0) if job.status == RUNNING else 0.0
            progress.progress(value, text=_job_progress_text(job, state, started))
        # kept until this function returns: if Stop lands in the few calls below, the next run still shows it
        st.session_state[f"{key}.outcome"] = {"status": job.status, "report": job.result(), "error": job.error,
                                              "error_kind": job.error_kind}  # fmt: skip
        finished = True
    finally:
        if not finished:  # interrupted: Stop, another widget, or the tab was closed
            job.cancel()
            job.wait(10)
            st.session_state[f"{key}.outcome"] = {"status": job.status, "report": job.result(), "error": job.error,
                                                  "error_kind": job.error_kind, "interrupted": True}  # fmt: skip
    stop_slot.empty()
    live.empty()
    if job.status == DONE:
        progress.progress(1.0, text="Done")
    else:
        progress.empty()
        _show_job_end(job.status, job.error, job.error_kind)
    st.session_state.pop(f"{key}.outcome", None)
    return job.result()


def _show_job_end(status: str, error: str | None, kind: str | None) -> None:
    from bench.jobs import CANCELLED

    if status == CANCELLED:
        st.info("Training stopped; the unfinished run was discarded.", icon=":material/stop_circle:")
    elif kind == "user":
        st.error(f"Cannot train: {error}", icon=":material/error:")
    else:
        st.error(f"Training failed: {error}", icon=":material/error:")


def job_notice(key: str) -> dict[str, Any] | None:
    """After `run_job(..., key)` was interrupted (Stop, a rerun, a closed tab): say what really happened.

    Returns the report when the job had finished before the stop reached it (the caller shows it), else None.
    """
    from bench.jobs import DONE

    outcome = st.session_state.pop(f"{key}.outcome", None)
    if outcome is None:
        return None
    if outcome["status"] == DONE:
        st.info("The training had already finished when it was stopped: its results are shown below.",
                icon=":material/check_circle:")  # fmt: skip
        return outcome["report"]
    _show_job_end(outcome["status"], outcome.get("error"), outcome.get("error_kind"))
    return None
