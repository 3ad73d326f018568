"""Image recognition: CNN and deep MLP vs logistic regression, SVM, random forest, kNN and the majority class."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from bench.core.contract import BenchmarkRequest
from bench.tasks import get_task
from data.images import DatasetUnavailable
from models.config import ConfigError, TrainConfig, config_from_dict
from pages import predict_ui, ui

TASK = get_task("image")


@st.cache_data(show_spinner="Loading data ...", max_entries=4)
def load_split(dataset: str, seed: int) -> Any:
    """The dataset's train/test split (cached per dataset and seed)."""
    return TASK.datasets[dataset].loader(seed=seed)


def sample_grid(split: Any, per_class: int = 8) -> np.ndarray:
    """(n_classes * H, per_class * W) mosaic: one row of training images per class."""
    rows = []
    for k in range(len(split.class_names)):
        idx = np.flatnonzero(split.y_train == k)[:per_class]
        imgs = [split.X_train[i, 0] for i in idx]
        imgs += [np.zeros_like(split.X_train[0, 0])] * (per_class - len(imgs))
        rows.append(np.concatenate(imgs, axis=1))
    return np.concatenate(rows, axis=0)


def data_view(split: Any) -> None:
    """Sample grid per class, class counts and split sizes."""
    h = split.X_train.shape[2]
    c1, c2, c3 = st.columns(3)
    c1.metric("training images", f"{len(split.y_train):,}")
    c2.metric("test images", f"{len(split.y_test):,}")
    c3.metric("image size", f"{split.X_train.shape[2]} × {split.X_train.shape[3]} pixels")
    st.caption(
        f"Source: {split.source} · split: {split.split_note} · the whole split is shown here; the fast path caps "
        "only the training images and always tests on the whole test split."
    )
    left, right = st.columns(2)
    with left:
        fig = px.imshow(sample_grid(split), color_continuous_scale="gray_r", title="Training samples per class")
        fig.update_layout(coloraxis_showscale=False, height=420)
        fig.update_xaxes(showticklabels=False)
        fig.update_yaxes(tickvals=[h * k + h / 2 for k in range(len(split.class_names))], ticktext=split.class_names)
        st.plotly_chart(fig, key="image.grid")
    with right:
        counts = pd.DataFrame(
            {
                "class": split.class_names * 2,
                "split": ["train"] * len(split.class_names) + ["test"] * len(split.class_names),
                "images": np.concatenate(
                    [np.bincount(split.y_train, minlength=len(split.class_names)),
                     np.bincount(split.y_test, minlength=len(split.class_names))]
                ),
            }
        )  # fmt: skip
        fig = px.bar(counts, x="class", y="images", color="split", barmode="group", title="Images per class",
                     color_discrete_map={"train": "#1f4e9c", "test": "#9cc3ea"})  # fmt: skip
        fig.update_layout(height=420, xaxis={"type": "category", "tickangle": -45 if len(split.class_names) > 6 else 0})
        st.plotly_chart(fig, key="image.counts")


# widgets whose defaults do not depend on the dataset; everything else is keyed by dataset (`form_key`)
SHARED_KEYS = ("models", "seed", "repeats", "max_samples")


def form_key(dataset: str, name: str) -> str:
    """Widget key of a dataset-dependent setting ("digits.train.lr"): Streamlit keeps a widget's value by its
    key, so each dataset needs its own keys for its own defaults to reach the form."""
    return f"{dataset}.{name}"


def reset_form(dataset: str) -> None:
    """Forget the form values of `dataset` (and the shared ones): the widgets start again from the defaults."""
    for k in list(st.session_state):
        if str(k).startswith(f"{dataset}.") or k in SHARED_KEYS:
            del st.session_state[k]


def settings_form(dataset: str) -> tuple[bool, dict[str, Any]]:
    """The training form with `dataset`'s defaults; returns (submitted, raw values)."""
    raw: dict[str, Any] = {}
    ds = TASK.datasets[dataset]
    left, right = st.columns([4, 1])
    left.caption(f"Settings start at the defaults tuned for {ds.label}; the form keeps your changes per dataset.")
    right.button("Reset to defaults", key="reset", on_click=reset_form, args=(dataset,), icon=":material/restart_alt:")
    with st.form("image.form"):
        labels = {m: s.label for m, s in TASK.models.items()}
        raw["models"] = st.multiselect(
            "Models", list(labels), default=list(TASK.default_models), format_func=labels.get, key="models"
        )
        c1, c2, c3 = st.columns(3)
        raw["seed"] = int(c1.number_input("Seed", value=0, min_value=0, step=1, key="seed"))
        raw["repeats"] = int(
            c3.number_input(
                "Seeds per model", value=1, min_value=1, max_value=10, step=1, key="repeats",
                help="Retrain the neural nets and the random forest with seeds seed, seed+1, ... on the same "
                "split and show the spread of their test accuracy.",
            )
        )  # fmt: skip
        raw["max_samples"] = int(
            c2.number_input(
                "Fast path: training samples (0 = all)", value=0, min_value=0, step=100, key="max_samples",
                help="Caps the training split (stratified, at least 2 images per class: a smaller request is raised) "
                "for a quick look; the test split stays whole. The results say so.",
            )
        )  # fmt: skip
        with st.expander("Training (neural models)"):
            # seed and the fast path are the top-level fields above
            raw["train"] = ui.config_form(
                TrainConfig, ds.default_train_config(), form_key(dataset, "train"), exclude=("seed", "max_samples")
            )
        for name, spec in TASK.models.items():
            with st.expander(f"{spec.label} settings"):
                caption = st.empty()
                raw[name] = ui.config_form(spec.config_cls, spec.default_config(dataset), form_key(dataset, name))
                caption.caption(f"{spec.description} Settings: {ui.describe_config(spec.config_cls, raw[name])}.")
        submitted = st.form_submit_button("Train", type="primary", key="train", icon=":material/play_arrow:")
    return submitted, raw


def build_configs(raw: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
    """Validated configs from the form values; raises ConfigError with a readable message."""
    tcfg = config_from_dict(TrainConfig, {**raw["train"], "seed": raw["seed"], "max_samples": raw["max_samples"]})
    configs = {}
    for name in raw["models"]:
        try:
            configs[name] = config_from_dict(TASK.models[name].config_cls, raw[name])
        except ConfigError as exc:
            raise ConfigError(f"{TASK.models[name].label}: {exc}") from exc
    return tcfg, configs


def build_request(dataset: str, raw: dict[str, Any]) -> BenchmarkRequest:
    """The benchmark request the form describes (the CLI builds the same one from its arguments)."""
    tcfg, configs = build_configs(raw)
    return BenchmarkRequest(
        "image", dataset, tuple(raw["models"]), seed=raw["seed"], configs=configs, train_config=tcfg,
        max_samples=raw["max_samples"], repeats=raw["repeats"],
    )  # fmt: skip


def train_and_show(dataset: str, raw: dict[str, Any]) -> None:
    """Train as a job in a worker process with live progress and Stop; keep the report in the session."""
    if not raw["models"]:
        st.error("Choose at least one model.")
        return
    try:
        request = build_request(dataset, raw)
    except (ConfigError, TypeError, ValueError) as exc:
        st.error(f"Invalid settings: {ui.say(exc)}")
        return
    st.session_state.pop("image.report", None)  # the results below always belong to the last training
    report = ui.run_job(request, "image.job")
    if report is not None:
        st.session_state["image.report"] = report


st.title("Image recognition")
st.markdown(
    "A CNN and a plain deep MLP against logistic regression, an RBF SVM, a random forest, k-nearest neighbours "
    "and the majority class, all on the same split and scored by the same evaluation code."
)

dataset_labels = {n: d.label for n, d in TASK.datasets.items() if not d.user_data}  # custom: Transfer tab
dataset = st.selectbox("Dataset", list(dataset_labels), format_func=dataset_labels.get, key="dataset")
available, reason = TASK.datasets[dataset].availability()

tab_train, tab_data, tab_saved, tab_predict, tab_transfer = st.tabs(
    ["Train & compare", "Data", "Saved runs", "Predict", "Transfer"]
)
with tab_predict:
    predict_ui.predict_tab(dataset)
with tab_transfer:
    predict_ui.transfer_tab()
with tab_data:
    if available:
        data_view(load_split(dataset, 0))
    else:
        st.warning(reason)

with tab_train:
    if not available:
        st.warning(f"This dataset is not available here. {reason}")
        download = TASK.datasets[dataset].download
        if download is not None and st.button("Try the online download", key="download"):
            try:
                with st.spinner("Downloading ..."):
                    download()
                st.success("Downloaded and cached; reload the page to use it.")
            except DatasetUnavailable as exc:
                st.error(ui.say(exc))
    else:
        submitted, raw = settings_form(dataset)
        if submitted:
            train_and_show(dataset, raw)
        else:
            # the previous script run was interrupted mid-training (Stop, a rerun): say what really happened
            finished = ui.job_notice("image.job")
            if finished is not None:
                st.session_state["image.report"] = finished
        report = st.session_state.get("image.report")
        if report is not None:
            st.header("Results")
            ui.show_report(report, "image.result")

with tab_saved:
    ui.saved_runs_tab("image", "image", ui.show_report, label=ui.saved_run_label, widget_prefix="")
