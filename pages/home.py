"""Home: what NeuralBench does, the reference results per task and dataset, where the data comes from, the machine.

Built over the task registry only: a task added there shows up here with its evaluator's headline and leaderboard.
"""

import logging

import pandas as pd
import streamlit as st

from bench.run.runner import environment
from bench.run.store import store_error, store_unreachable
from bench.tasks import REGISTRY
from pages import ui

RUNS_SCANNED = 200  # newest finished runs looked at per task when choosing what to show
logger = logging.getLogger(__name__)

st.title("NeuralBench")
st.markdown(
    "Where do neural networks beat classical methods, and where do they not? Every number here comes from "
    "a run this app did on real data, with its split, seed and data source shown. Baselines, the naive ones "
    "included, always stand beside the neural nets, with 95% confidence intervals and significance tests."
)

env = environment()
c1, c2, c3 = st.columns([2, 1, 5])
c1.metric("torch", env["torch"])
c2.metric("threads", env["threads"])
c3.markdown(f"**Device**  \n{env['device']}")  # as text: a metric would cut a long CPU / GPU name

st.header("Latest results")
st.caption(
    "Per task and dataset: the latest run on the full training split with the dataset's default settings. "
    "Where there is none yet, the latest run is shown and marked for what it is."
)
store = ui.run_store()
for name, task in REGISTRY.items():
    st.subheader(task.label)
    try:
        runs = store.list_runs(name, max_results=RUNS_SCANNED)
    except Exception as exc:  # a broken store must not take the page down; its text may hold credentials
        logger.warning("listing the %s runs failed", name, exc_info=True)  # redacted by bench.run.store' log filter
        st.error(f"The run store could not be read: {ui.md(store_error(exc, store))}")
        if store_unreachable(exc):
            break  # the other tasks would only wait for the same server again
        continue
    if not runs:
        st.info(f"No finished {task.label.lower()} run yet: open its page and train.")
        continue
    for dataset, ds in task.datasets.items():
        mine = [r for r in runs if r["dataset"] == dataset]
        if not mine:
            continue
        reference = next((r for r in mine if ui.run_summary(r)["default"] and ui.run_summary(r)["full_data"]), None)
        shown = reference or mine[0]
        st.markdown(f"#### {ds.label}")
        if reference is None:
            st.warning(
                f"Not a reference run: {ui.run_summary(shown)['summary']}. No run with the default settings on "
                "the full training split yet, so these numbers are not the benchmark's."
            )
        elif mine[0] is not reference:
            newer = sum(1 for r in mine if r["start_time"] > reference["start_time"])
            st.caption(
                f"{newer} newer run(s) with other settings (latest: {ui.run_summary(mine[0])['summary']}, "
                f"{ui.format_time(mine[0]['start_time'])}) are in the task page's Saved runs."
            )
        try:
            report = ui.load_report(shown["run_id"])
        except Exception as exc:  # a missing artifact is a message, not a crash
            logger.warning("loading run %s failed", shown["run_id"], exc_info=True)
            st.error(f"Could not load run {shown['run_id'][:8]}: {ui.md(store_error(exc, store))}")
            continue
        ui.provenance(report)
        ui.headline(report)
        ui.leaderboard(report, f"home.{name}.{dataset}")

st.header("Data sources")
rows = []
for task in REGISTRY.values():
    for ds in task.datasets.values():
        ok, reason = ds.availability()
        rows.append({"task": task.label, "dataset": ds.label, "available offline": ok, "source": reason,
                     "about": ds.description})  # fmt: skip
ui.table(pd.DataFrame(rows), hide_index=True, key="home.data")
st.caption(f"Runs are tracked with MLflow at `{store.display_uri}`.")  # credentials redacted
