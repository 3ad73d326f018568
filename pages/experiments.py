"""Experiments: sweep a grid of settings x seeds (on Ray Tune), with live progress, Stop, and the results per
factor (mean ± sd, 95% CI, best vs rest), curves by epoch, and time / accuracy against dataset size."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import pandas as pd
import streamlit as st

from bench.experiments.report import sweep_figures, sweep_html, sweep_tables, tables_zip
from bench.experiments.sweep import list_sweeps, load_sweep, run_sweep
from bench.experiments.trials import SweepControl, SweepSpec, parse_grid, primary_metric
from bench.run.store import store_error
from bench.tasks import REGISTRY
from models.config import ConfigError
from pages import ui

logger = logging.getLogger(__name__)

FACTORS = {
    "activation": ("relu,sigmoid,tanh", "activation function (ReLU, Sigmoid, Tanh, GELU)"),
    "lr": ("0.01,0.001", "peak learning rate"),
    "layers": ("1,2,3", "depth: hidden layers (MLP) or conv blocks (CNN)"),
    "width": ("64,256", "width: neurons per hidden layer (MLP) or first-block channels (CNN)"),
    "size": ("1k,2k,full", "training samples (1k = 1,000; full = the whole training split)"),
    "epochs": ("1,5,10", "maximum epochs"),
}
BACKENDS = {"ray": "Ray Tune (a local Ray instance, or the cluster at RAY_ADDRESS)",
            "local": "one after another in this server process (small sweeps)"}  # fmt: skip
_LOCAL_LOCK = threading.Lock()  # in-process sweeps share torch's global state: one at a time per server
_LIVE_SWEEPS: dict[str, Any] = {}  # sweep id -> its SweepControl, while the sweep runs (any session of this server)


def sweep_form() -> tuple[bool, dict[str, Any]]:
    """Task, dataset, model, grid, seeds, baselines, fast path, backend."""
    raw: dict[str, Any] = {}
    c1, c2, c3 = st.columns(3)
    tasks = {n: t.label for n, t in REGISTRY.items()}
    raw["task"] = c1.selectbox("Task", list(tasks), format_func=tasks.get, key="exp.task")
    task = REGISTRY[raw["task"]]
    datasets = {n: d.label for n, d in task.datasets.items() if not d.user_data}  # sweeps run on bundled data
    raw["dataset"] = c2.selectbox("Dataset", list(datasets), format_func=datasets.get, key=f"exp.dataset.{raw['task']}")
    models = {n: f"{m.label} ({m.family})" for n, m in task.models.items()}
    neural = [n for n, m in task.models.items() if m.family == "neural"] or list(models)
    raw["model"] = c3.selectbox("Model to sweep", neural + [m for m in models if m not in neural],
                                format_func=models.get, key=f"exp.model.{raw['task']}")  # fmt: skip
    raw["factors"] = st.multiselect("Factors of the grid", list(FACTORS), default=["activation"], key="exp.factors",
                                    help="Every combination of the chosen values is one cell.")  # fmt: skip
    raw["grid"] = []
    for f in raw["factors"]:
        default, help_text = FACTORS[f]
        values = st.text_input(f"{f}: values, comma separated", default, help=help_text, key=f"exp.values.{f}")
        raw["grid"].append(f"{f}={values}")
    c1, c2, c3, c4 = st.columns(4)
    raw["seeds"] = int(c1.number_input("Seeds per cell", 1, 10, 3, key="exp.seeds"))
    raw["max_samples"] = int(c2.number_input("Fast path: training samples (0 = all)", 0, step=100,
                                             key="exp.max_samples"))  # fmt: skip
    raw["epochs"] = int(c3.number_input("Epochs (0 = the dataset's default)", 0, 200, 0, key="exp.epochs"))
    raw["backend"] = c4.radio("Run on", list(BACKENDS), format_func=BACKENDS.get, key="exp.backend")
    baselines = [n for n in task.models if task.models[n].family in ("classical", "naive") and n != raw["model"]]
    raw["baselines"] = st.multiselect("Baselines trained beside the net in every trial (for accuracy against size)",
                                      baselines, key=f"exp.baselines.{raw['task']}")  # fmt: skip
    go = st.button("Run sweep", type="primary", key="exp.run")
    return go, raw


def build_spec(raw: dict[str, Any]) -> SweepSpec:
    """A validated SweepSpec from the form; ConfigError with a readable message otherwise."""
    grid = parse_grid(raw["task"], raw["model"], raw["grid"])
    train = {"epochs": raw["epochs"]} if raw["epochs"] else {}
    return SweepSpec.build(raw["task"], raw["dataset"], raw["model"], grid, seeds=tuple(range(raw["seeds"])),
                           baselines=tuple(raw["baselines"]), train_overrides=train,
                           max_samples=raw["max_samples"])  # fmt: skip


def run_live(spec: SweepSpec, backend: str) -> dict[str, Any] | None:
    """Run the sweep in a background thread; show cells done / running / queued and finished trials; Stop (or
    any rerun of the page) stops it and keeps the finished trials."""
    control = SweepControl()
    store = ui.run_store()  # resolved here: the worker thread has no Streamlit context
    # a Ray cluster (RAY_ADDRESS) schedules its own CPUs; the local executors bound the server's trainings
    slot = getattr(ui.job_executor(), "hold_slot", None) or (lambda *a, **k: contextlib.nullcontext())
    out: dict[str, Any] = {}
    trials: list[dict[str, Any]] = []

    def work() -> None:
        try:
            if backend == "local" and not _LOCAL_LOCK.acquire(timeout=1):
                raise ConfigError("another in-process sweep is running on this server; use Ray or wait")
            try:
                # a sweep's trials count as one training of this server's job slots (SECURITY.md item 23)
                with slot("sweep", wait=30.0):
                    out["summary"] = run_sweep(
                        spec, backend=backend, store=store, control=control,
                        on_progress=lambda p: trials.append(p["record"]) if p["record"] else None,
                    )  # fmt: skip
            finally:
                if backend == "local":
                    _LOCAL_LOCK.release()
        except Exception as exc:  # shown as a message below
            out["error"] = exc

    thread = threading.Thread(target=work, name=f"sweep-{spec.sweep_id}", daemon=True)
    # written before the loop: a value set while Streamlit interrupts the script may not survive the rerun
    st.session_state["exp.running"] = spec.sweep_id
    _LIVE_SWEEPS[spec.sweep_id] = control
    stop_slot = st.empty()
    stop_slot.button("Stop sweep", key="exp.stop", help="Stops the running trials; finished trials are kept.")
    progress = st.progress(0.0, text="Starting ...")
    table = st.empty()
    started = time.monotonic()
    thread.start()
    finished = False
    try:
        shown = 0
        while thread.is_alive():
            c = control.counts
            total = c["total"] or spec.n_trials
            text = (f"{c['done']} of {total} trials done ({c['failed']} failed), {c['running']} running, "
                    f"{c['queued']} queued · {time.monotonic() - started:.0f} s")  # fmt: skip
            progress.progress(min(1.0, c["done"] / max(1, total)), text=text)  # where Stop / a rerun interrupts
            if len(trials) != shown:
                shown = len(trials)
                table.dataframe(pd.DataFrame([{k: t.get(k) for k in ("label", "seed", "status", "metric",
                                               "train_seconds", "run_id")} for t in trials]),
                                hide_index=True)  # fmt: skip
            thread.join(0.3)
        finished = True
    finally:
        if not finished:  # Stop pressed, another widget touched, or the tab closed
            control.stop()  # the sweep's thread winds down by itself; waiting here would hold up the next run
        _LIVE_SWEEPS.pop(spec.sweep_id, None)
    st.session_state.pop("exp.running", None)
    stop_slot.empty()
    progress.empty()
    table.empty()
    if "error" in out:
        st.error(f"The sweep could not run: {ui.say(out['error'])}")
        return None
    return out.get("summary")


def show_sweep(summary: dict[str, Any], key: str) -> None:
    """A sweep's results: tables per factor, best vs rest, charts, downloads."""
    spec = summary["spec"]
    metric = summary["metric"]
    if summary["status"] != "complete":
        st.warning(f"Partial results: {summary['finished']} of {summary['n_trials']} trials finished "
                   f"({summary['status']}).")  # fmt: skip
    if summary["failed"]:
        st.warning(f"{summary['failed']} trial(s) failed (e.g. the loss diverged) and are not averaged.")
    st.caption(f"Sweep {summary['sweep_id']} · {spec['task']} / {spec['dataset']} · {spec['model']} · seeds "
               f"{spec['seeds']} · backend {summary['backend']}"
               + (f" · {summary['wall_seconds']:.0f} s" if summary.get("wall_seconds") else ""))  # fmt: skip
    if summary["best"]:
        st.success(f"Best setting by mean {metric}: {summary['best']}.")
    tables = sweep_tables(summary)
    for name, rows in summary["factors"].items():
        st.subheader(f"By {name}")
        ui.table(pd.DataFrame(rows), hide_index=True, key=f"{key}.factor.{name}",
                     column_config={"mean": st.column_config.NumberColumn(f"{metric} mean", format="%.4f"),
                                    "sd": st.column_config.NumberColumn("sd", format="%.4f"),
                                    "ci_low": st.column_config.NumberColumn("95% CI low", format="%.4f"),
                                    "ci_high": st.column_config.NumberColumn("95% CI high", format="%.4f")})
    st.subheader("Cells")
    ui.table(tables["cells"], hide_index=True, key=f"{key}.cells")
    if summary["tests"]:
        st.subheader("Best vs the rest")
        for t in summary["tests"]:
            if t["p_value"] is None:
                st.markdown(f"- {t['best']} vs {t['other']}: {t['difference']:+.4f}; {t['test']}.")
            else:
                word = "significant" if t["significant"] else "not significant"
                st.markdown(f"- {t['best']} vs {t['other']}: {t['difference']:+.4f} {metric}, {t['test']} "
                            f"p = {t['p_value']:.3g} (**{word}** at 0.05).")  # fmt: skip
    figs = sweep_figures(summary)
    for name, fig in figs.items():
        st.plotly_chart(fig, key=f"{key}.fig.{name}")
    fits = (summary.get("scaling") or {}).get("fits", {})
    for model, fit in fits.items():
        if fit:
            st.markdown(f"**{model}**: training time grows as size^{fit['slope']:.2f}; extrapolated to "
                        f"{fit['extrapolated_size']:,} samples: {fit['extrapolated_seconds']:.1f} s.")  # fmt: skip
    d1, d2 = st.columns(2)
    d1.download_button("Download the sweep (HTML)", sweep_html(summary), f"sweep-{summary['sweep_id']}.html",
                       "text/html", key=f"{key}.html")  # fmt: skip
    d2.download_button("Download the tables (CSV, zip)", tables_zip(tables), f"sweep-{summary['sweep_id']}.zip",
                       "application/zip", key=f"{key}.csv")  # fmt: skip


@st.cache_data(show_spinner="Loading the sweep ...", max_entries=16, ttl=60)
def stored_sweep(sweep_id: str) -> dict[str, Any]:
    """A stored sweep rebuilt from its runs (cached briefly: a running sweep still gains trials)."""
    return load_sweep(ui.run_store(), sweep_id)


st.title("Experiments")
st.markdown(
    "Sweep a grid of settings with several seeds per cell. Every trial is a normal stored run (see the Runs page), "
    "so partial results survive a Stop. Results give the mean, standard deviation and a 95% t-interval over seeds, "
    "and test the best setting against every other one."
)
tab_new, tab_stored, tab_claims = st.tabs(["New sweep", "Stored sweeps", "Claims report"])
with tab_new:
    go, raw = sweep_form()
    interrupted = st.session_state.pop("exp.running", None)  # set while a sweep ran: this run interrupted it
    if interrupted:
        control = _LIVE_SWEEPS.get(interrupted)
        if control is not None:
            control.stop()  # idempotent; the interrupted run stops the trials too
        st.session_state["exp.stopped"] = interrupted
    if go:
        st.session_state.pop("exp.stopped", None)  # the notice of an earlier Stop stays until the next sweep
        try:
            spec = build_spec(raw)
        except ConfigError as exc:
            st.error(f"Invalid sweep: {ui.say(exc)}")
        else:
            metric, _ = primary_metric(spec.task)
            st.info(f"{len(spec.cells)} cell(s) x {len(spec.seeds)} seed(s) = {spec.n_trials} trials, scored by {metric}.")
            summary = run_live(spec, raw["backend"])
            if summary is not None:
                st.session_state["exp.summary"] = summary
    elif st.session_state.get("exp.stopped"):
        sid = st.session_state["exp.stopped"]
        st.info(f"Sweep {sid} stopped; its finished trials are kept (tab Stored sweeps).")
    summary = st.session_state.get("exp.summary")
    if summary is not None:
        st.header("Results")
        show_sweep(summary, "exp.result")

with tab_stored:
    try:
        sweeps = list_sweeps(ui.run_store())
    except Exception:
        logger.exception("listing the stored sweeps failed")
        sweeps = []
        st.error("The run store could not be read; the details are in the server log.")
    if not sweeps:
        st.info("No stored sweeps yet.")
    else:
        labels = {s["sweep_id"]: f"{s['sweep_id']} · {s['spec'].get('task')}/{s['spec'].get('dataset')} · "
                  f"{s['spec'].get('model')} · grid {s['spec'].get('grid')} · {s['trials']} trials · "
                  f"{ui.format_time(s['start_time'])}" + (f" · {s['label']}" if s["label"] else "")
                  for s in sweeps}  # fmt: skip
        sid = st.selectbox("Sweep", list(labels), format_func=labels.get, key="exp.stored")
        if st.button("Show sweep", key="exp.show"):
            st.session_state["exp.shown"] = sid
        shown_id = st.session_state.get("exp.shown")
        if shown_id:
            try:
                show_sweep(stored_sweep(shown_id), "exp.stored_view")
            except Exception:
                logger.exception("showing stored sweep %s failed", shown_id)
                st.error(f"Could not load sweep {shown_id}; the details are in the server log.")

with tab_claims:
    st.markdown(
        "A popular article asserts figures about neural nets without saying how they were obtained. The claims "
        "report puts each beside the measured figure from stored runs, with run ids, and says where they disagree. "
        "`python -m bench report --out report.html` measures what is missing (about 15-30 minutes on 2 cores); "
        "here the report is built from what is already stored."
    )
    if st.button("Build the claims report from stored runs", key="exp.claims"):
        from bench.experiments.claims import build_report, summary_table, to_html

        try:
            with st.spinner("Reading the stored runs ..."):
                rep = build_report(ui.run_store(), run_missing=False)
            st.session_state["exp.claims_report"] = {"table": summary_table(rep), "html": to_html(rep),
                                                     "missing": rep["missing"]}  # fmt: skip
        except Exception as exc:
            st.error(f"Could not build the report: {ui.md(store_error(exc, ui.run_store()))}")
    built = st.session_state.get("exp.claims_report")
    if built:
        if built["missing"]:
            st.warning(f"Not measured yet: {', '.join(built['missing'])}. Run `python -m bench report` to measure them.")
        ui.table(built["table"], hide_index=True, key="exp.claims_table")
        c1, c2 = st.columns(2)
        c1.download_button("Download the claims report (HTML)", built["html"], "claims-report.html", "text/html",
                           key="exp.claims_html")  # fmt: skip
        c2.download_button("Download the table (CSV, zip)", tables_zip({"claims": built["table"]}), "claims.zip",
                           "application/zip", key="exp.claims_csv")  # fmt: skip
