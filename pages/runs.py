"""Runs: every stored run, filtered; several side by side; delete (with confirmation); download a model."""

from __future__ import annotations

import tempfile
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from bench.experiments.report import render_html, tables_zip
from bench.run.compare import all_runs, compare, delete_runs, filter_runs
from bench.run.store import store_error
from pages import ui

st.title("Runs")
st.markdown(
    "Every finished run in the run store, whichever page, sweep or report made it. Filter them, compare several "
    "side by side, delete what you no longer need, or download a trained model."
)

store = ui.run_store()
try:
    runs = all_runs(store)
except Exception as exc:  # a broken store is a message, not a crash
    st.error(f"The run store could not be read: {ui.md(store_error(exc, store))}")  # never the raw text: it names the URI
    st.stop()

notice = st.session_state.pop("runs.notice", None)
if notice:
    st.success(notice)
if runs.empty:
    st.info("No finished runs yet: train on a task page or run a sweep on the Experiments page.")
    st.stop()

# ------------------------------------------------------------------------------------------------ filter
c1, c2, c3, c4 = st.columns(4)
tasks = c1.multiselect("Task", sorted(runs["task"].unique()), key="runs.tasks")
datasets = c2.multiselect("Dataset", sorted(runs["dataset"].unique()), key="runs.datasets")
all_models = sorted({m for s in runs["models"] for m in str(s).split(",") if m})
models = c3.multiselect("Model", all_models, key="runs.models")
first, last = runs["started"].min().date(), runs["started"].max().date()
dates = c4.date_input("Started between", (first, last), min_value=first, max_value=last, key="runs.dates")
since, until = (dates if isinstance(dates, tuple) and len(dates) == 2 else (None, None))
shown = filter_runs(runs, tasks, datasets, models, since, until)
st.caption(f"{len(shown)} of {len(runs)} runs")
ui.table(shown, hide_index=True, key="runs.table",
             column_config={"started": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm")})


def run_label(rid: str) -> str:
    r = runs[runs["run_id"] == rid].iloc[0]
    return f"{rid[:8]} · {r['task']}/{r['dataset']} · seed {r['seed']} · {r['models']} · {r['started']:%Y-%m-%d %H:%M}"


ids = list(shown["run_id"])
tab_cmp, tab_dl, tab_del = st.tabs(["Compare", "Download a model", "Delete"])

# ------------------------------------------------------------------------------------------------ compare
with tab_cmp:
    chosen = st.multiselect("Runs to compare", ids, format_func=run_label, key="runs.compare",
                            help="Pick two or more runs.")  # fmt: skip
    if len(chosen) >= 2:
        try:
            reports = [ui.load_report(r) for r in chosen]
        except Exception as exc:
            st.error(f"Could not load the runs: {ui.md(store_error(exc, store))}")
            reports = []
        if reports:
            cmp = compare(reports)
            st.subheader("Metrics")
            ui.table(cmp["metrics"], hide_index=True, key="runs.cmp_metrics")
            if not cmp["curves"].empty:
                y = "val_accuracy" if cmp["curves"]["val_accuracy"].notna().any() else "val_loss"
                fig = px.line(cmp["curves"], x="epoch", y=y, color="series", markers=True,
                              title=f"{y.replace('_', ' ')} by epoch, overlaid")  # fmt: skip
                st.plotly_chart(fig, key="runs.cmp_curves")
            st.subheader("Settings that differ")
            diff = cmp["differences"]
            if diff.empty:
                st.info("The chosen runs have the same settings.")
            else:
                st.caption("Only settings that differ between the runs are listed; a highlighted cell differs from "
                           "the first run's value.")  # fmt: skip
                first_col = diff.columns[1]

                def highlight(row: pd.Series) -> list[str]:
                    return ["" if c in ("setting", first_col) or repr(row[c]) == repr(row[first_col])
                            else "background-color: #fff3b0" for c in row.index]  # fmt: skip

                ui.table(diff.astype(str).style.apply(highlight, axis=1), hide_index=True, key="runs.cmp_diff")
            tables = {"metrics": cmp["metrics"], "curves": cmp["curves"], "differences": diff}
            page = render_html("NeuralBench run comparison", [f"Runs: {', '.join(chosen)}"], [
                {"title": "Comparison", "tables": tables,
                 "figures": [fig] if not cmp["curves"].empty else []}])  # fmt: skip
            d1, d2 = st.columns(2)
            d1.download_button("Download the comparison (HTML)", page, "comparison.html", "text/html",
                               key="runs.cmp_html")  # fmt: skip
            d2.download_button("Download the tables (CSV, zip)", tables_zip(tables), "comparison.zip",
                               "application/zip", key="runs.cmp_csv")  # fmt: skip
    else:
        st.info("Pick two or more runs to compare them.")

# ------------------------------------------------------------------------------------------------ download
with tab_dl:
    rid = st.selectbox("Run", ids, format_func=run_label, key="runs.dl_run")
    report: dict[str, Any] | None = None
    if rid:
        try:
            report = ui.load_report(rid)
        except Exception as exc:
            st.error(f"Could not load run {rid[:8]}: {ui.md(store_error(exc, store))}")
    if report:
        labels = {m["name"]: f"{m['label']} ({m['family']})" for m in report["models"]}
        model = st.selectbox("Model", list(labels), format_func=labels.get, key="runs.dl_model")
        if st.button("Prepare the download", key="runs.dl_go"):
            from bench.run.export import ExportError, export_model, zip_folder

            try:
                with st.spinner("Exporting (and checking the ONNX file with ONNX Runtime) ..."), \
                        tempfile.TemporaryDirectory(prefix="neuralbench-export-") as tmp:  # fmt: skip
                    info = export_model(store, rid, model, tmp, onnx=True)
                    st.session_state["runs.dl"] = {"info": info, "zip": zip_folder(f"{tmp}/{model}")}
            except (ExportError, LookupError) as exc:
                st.session_state.pop("runs.dl", None)
                st.error(f"Export failed: {ui.say(exc)}")
        done = st.session_state.get("runs.dl")
        if done and done["info"]["run_id"] == rid and done["info"]["model"] == model:
            info = done["info"]
            st.write(f"Files: {ui.md(', '.join(info['files']))} (weights as safetensors or skops, settings as JSON; "
                     "nothing is pickled).")  # fmt: skip
            check = info["onnx"]
            if check and "passed" in check:
                msg = (f"ONNX check: {check['samples']} real test inputs through ONNX Runtime and torch; largest "
                       f"difference {check['max_abs_diff']:.2e} (tolerance {check['tolerance']:g}); same predicted "
                       f"class for {check['argmax_agreement']:.1%}. {check['runtime']}.")  # fmt: skip
                (st.success if check["passed"] else st.error)(msg)
            elif check:
                st.info(check["skipped"])
            st.download_button(f"Download {model} (zip)", done["zip"], f"{model}-{rid[:8]}.zip", "application/zip",
                               key="runs.dl_file")  # fmt: skip

# ------------------------------------------------------------------------------------------------ delete
with tab_del:
    doomed = st.multiselect("Runs to delete", ids, format_func=run_label, key="runs.delete")
    if st.button("Delete", key="runs.delete_go", disabled=not doomed):
        st.session_state["runs.confirm"] = list(doomed)
    pending = st.session_state.get("runs.confirm")
    if pending:
        st.warning(f"Delete {len(pending)} run(s) for good? Their metrics, predictions and models are removed.")
        y, n = st.columns(2)
        if y.button("Yes, delete", type="primary", key="runs.delete_yes"):
            try:
                count = delete_runs(store, pending)
            except LookupError as exc:
                st.error(ui.say(exc))
            else:
                st.session_state.pop("runs.confirm", None)
                st.session_state["runs.notice"] = f"Deleted {count} run(s)."
                st.session_state.pop("runs.delete", None)
                ui.load_report.clear()
                st.rerun()
        if n.button("Cancel", key="runs.delete_no"):
            st.session_state.pop("runs.confirm", None)
            st.rerun()
