"""Home: what NeuralBench does, the latest results per task, where the data comes from, the machine."""

import pandas as pd
import streamlit as st

from bench.runner import environment
from bench.tasks import REGISTRY
from pages import ui

st.title("NeuralBench")
st.markdown(
    "Where do neural networks beat classical methods, and where do they not? Every number here comes from "
    "a run this app did on real data, with its split, seed and data source shown. Baselines, the naive ones "
    "included, always stand beside the neural nets, with 95% confidence intervals and significance tests."
)

env = environment()
c1, c2, c3 = st.columns(3)
c1.metric("torch", env["torch"])
c2.metric("threads", env["threads"])
c3.metric("device", env["device"])

st.header("Latest results")
store = ui.run_store()
for name, task in REGISTRY.items():
    st.subheader(task.label)
    try:
        runs = store.list_runs(name, max_results=1)
    except Exception as exc:  # a broken store must not take the page down
        st.error(f"The run store could not be read: {exc}")
        continue
    if not runs:
        st.info(f"No finished {task.label.lower()} run yet: open its page and press Train.")
        continue
    report = ui.load_report(runs[0]["run_id"])
    st.markdown(f"**{report['dataset']}**, seed {report['seed']}")
    ui.provenance(report)
    ui.headline(report)
    ui.leaderboard(report, f"home.{name}")

st.header("Data sources")
rows = []
for task in REGISTRY.values():
    for ds in task.datasets.values():
        ok, reason = ds.availability()
        rows.append({"task": task.label, "dataset": ds.label, "available offline": ok, "source": reason,
                     "about": ds.description})  # fmt: skip
st.dataframe(pd.DataFrame(rows), hide_index=True, key="home.data")
st.caption(f"Runs are tracked with MLflow at `{store.tracking_uri}`.")
