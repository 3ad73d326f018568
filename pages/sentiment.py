"""Sentiment analysis: fine-tuned MiniLM, frozen MiniLM + head and a net from scratch vs TF-IDF (logistic
regression, linear SVM, naive Bayes), VADER and the majority class; predict and explain texts with SHAP."""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from bench.core.contract import BenchmarkRequest
from bench.run.store import store_error
from bench.tasks import get_task
from data.guard import ServerBusy
from data.paths import CallTimePath, cache_dir
from models.config import ConfigError, TrainConfig, config_from_dict
from models.io import atomic_write
from pages import ui

TASK = get_task("sentiment")
KEY = "sent"
UPLOADS = CallTimePath(lambda: cache_dir() / "uploads")  # under the one state root (data/paths.py)
MAX_TYPED_CHARS = 5000
SHOWN_ROWS = 200


# ---------------------------------------------------------------------------------------------- cached engine calls


@st.cache_data(show_spinner="Loading data ...", max_entries=8)
def load_split(dataset: str, seed: int, max_samples: int = 0, options: tuple = ()) -> Any:
    """The dataset's train / test split (cached per dataset, seed, fast path and upload)."""
    return TASK.datasets[dataset].loader(seed=seed, max_samples=max_samples, **dict(options))


@st.cache_resource(show_spinner=False)
def shap_warm_up() -> threading.Thread:
    """Compile SHAP's Partition kernels in the background once per server process (the first explanation is
    otherwise slow)."""
    from bench.core.explain import warm_up_text_shap

    thread = threading.Thread(target=warm_up_text_shap, name="shap-warm-up", daemon=True)
    thread.start()
    return thread


@st.cache_data(show_spinner=False, ttl=600)
def hub_status() -> tuple[bool, str]:
    """Whether the hub model is reachable (checked with a short timeout, remembered for 10 minutes)."""
    from bench.tasks.sentiment.estimators import hub_availability

    return hub_availability()


@st.cache_resource(show_spinner="Loading the model ...", max_entries=24)
def stored_model(run_id: str, name: str) -> Any:
    """One model of a stored run (shared read-only between sessions: never mutated)."""
    return ui.run_store().load_model(run_id, name)


@st.cache_data(show_spinner=False, max_entries=16)
def token_lengths(texts: tuple[str, ...]) -> np.ndarray:
    """MiniLM tokens per text (without [CLS]/[SEP]), for the length histogram."""
    from models.text import encode, lengths

    return lengths(encode(np.array(texts, dtype=object), 256)) - 2


@st.cache_data(show_spinner="Computing SHAP values ...", max_entries=64)
def explain_cached(run_id: str, name: str, text: str, background: tuple[str, ...]) -> dict[str, Any]:
    """SHAP token values of one text for one stored model."""
    from bench.core.explain import explain_text

    out = explain_text(stored_model(run_id, name), text, background=np.array(background, dtype=object))
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()}


@st.cache_data(show_spinner="Scoring the test texts ...", max_entries=16)
def test_confidence(run_id: str, name: str, texts: tuple[str, ...]) -> np.ndarray:
    """Each test text's predicted-class probability under a stored model."""
    proba = stored_model(run_id, name).predict_proba(np.array(texts, dtype=object))
    return np.asarray(proba).max(1)


# ---------------------------------------------------------------------------------------------- helpers


def highlight(tokens: list[str], values: list[float]) -> str:
    """Markdown of the tokens with red (towards the class) / blue (away) backgrounds; bold when strong."""
    limit = max((abs(v) for v in values), default=0.0) or 1.0
    parts = []
    for tok, v in zip(tokens, values, strict=True):
        word = ui.md(tok.strip())
        space = " " if tok.endswith(" ") else ""
        if not word:
            parts.append(space)
            continue
        strength = abs(v) / limit
        if strength < 0.1:
            parts.append(word + space)
            continue
        color = "red" if v > 0 else "blue"
        inner = f"**{word}**" if strength >= 0.5 else word
        parts.append(f":{color}-background[{inner}]{space}")
    return "".join(parts)


def save_upload(raw: bytes) -> tuple[Path, str]:
    """Keep a validated upload in the git-ignored cache under its content hash; returns (path, sha256)."""
    sha = hashlib.sha256(raw).hexdigest()
    path = UPLOADS / f"{sha}.csv"
    if not path.is_file():
        UPLOADS.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: Path(p).write_bytes(raw))
    return path, sha


def csv_source() -> dict[str, Any] | None:
    """Upload + column choice for the user's CSV; returns the loader's data_options, or None (with a message)."""
    from data.text import guess_columns, labelled_texts, read_csv_text

    up = st.file_uploader("CSV of labelled texts", type=["csv"], key=f"{KEY}.upload",
                          help="UTF-8 (with or without BOM), UTF-16 or latin-1; delimiter , ; tab or |")  # fmt: skip
    if up is None:
        st.info("Upload a CSV with a text column and a label column (any label set, at least two classes).")
        return None
    raw = up.getvalue()
    try:
        df, encoding = read_csv_text(raw)  # linear, in one of the server's few upload slots (data.guard)
    except (ConfigError, ServerBusy) as exc:
        st.error(f"This file cannot be used: {ui.say(exc)}")
        return None
    text_guess, label_guess = guess_columns(df)
    cols = list(df.columns)
    c1, c2 = st.columns(2)
    text_col = c1.selectbox("Text column", cols, index=cols.index(text_guess) if text_guess in cols else 0,
                            key=f"{KEY}.text_col")  # fmt: skip
    label_col = c2.selectbox("Label column", cols, index=cols.index(label_guess) if label_guess in cols else 0,
                             key=f"{KEY}.label_col")  # fmt: skip
    try:
        texts, y, classes, note = labelled_texts(df, text_col, label_col)
    except ConfigError as exc:
        st.error(f"These columns cannot be used: {ui.say(exc)}")
        return None
    counts = ", ".join(f"{c}: {n:,}" for c, n in zip(classes, np.bincount(y), strict=True))
    st.caption(f"{len(texts):,} labelled texts ({encoding}); classes {ui.md(counts)}" + (f"; {ui.md(note)}" if note else ""))
    path, sha = save_upload(raw)
    return {"path": str(path), "sha256": sha, "text_col": text_col, "label_col": label_col}


# ---------------------------------------------------------------------------------------------- training


def settings_form(dataset: str) -> tuple[bool, dict[str, Any]]:
    """The training form with `dataset`'s defaults (keys per dataset); returns (submitted, raw values)."""
    raw: dict[str, Any] = {}
    ds = TASK.datasets[dataset]
    hub_ok, hub_reason = hub_status()
    choices = {m: s.label for m, s in TASK.models.items() if m != "hub_sst2" or hub_ok}
    if not hub_ok:
        st.caption(f"{TASK.models['hub_sst2'].label}: unavailable here: {hub_reason}")
    with st.form(f"{KEY}.form"):
        raw["models"] = st.multiselect("Models", list(choices), default=list(TASK.default_models),
                                       format_func=choices.get, key=f"{KEY}.models")  # fmt: skip
        c1, c2, c3 = st.columns(3)
        raw["seed"] = int(c1.number_input("Seed", value=0, min_value=0, step=1, key=f"{KEY}.seed"))
        raw["max_samples"] = int(
            c2.number_input(
                "Fast path: training texts (0 = all)", value=0, min_value=0, step=500, key=f"{KEY}.max_samples",
                help="Caps the training split (stratified) for a quick look; the test split shrinks to a quarter.",
            )
        )  # fmt: skip
        raw["repeats"] = int(c3.number_input("Seeds per model", value=1, min_value=1, max_value=5, step=1,
                                             key=f"{KEY}.repeats"))  # fmt: skip
        st.caption(
            "CPU speed: MiniLM fine-tuning is the slow part. Its settings below hold the levers: max length, "
            "training subset, layers fine-tuned and length bucketing; the epochs are in 'Training'."
        )
        with st.expander("Training (neural models)"):
            raw["train"] = ui.config_form(TrainConfig, ds.default_train_config(), f"{KEY}.{dataset}.train",
                                          exclude=("seed", "max_samples"))  # fmt: skip
        for name, spec in TASK.models.items():
            if name not in choices:
                continue
            with st.expander(f"{spec.label} settings"):
                st.caption(spec.description)
                raw[name] = ui.config_form(spec.config_cls, spec.default_config(dataset), f"{KEY}.{dataset}.{name}")
        submitted = st.form_submit_button("Train", type="primary", key=f"{KEY}.train")
    return submitted, raw


def build_request(dataset: str, raw: dict[str, Any], options: dict[str, Any]) -> BenchmarkRequest:
    """The benchmark request the form describes (the CLI builds the same one from its arguments)."""
    tcfg = config_from_dict(TrainConfig, {**raw["train"], "seed": raw["seed"], "max_samples": raw["max_samples"]})
    configs = {}
    for name in raw["models"]:
        try:
            configs[name] = config_from_dict(TASK.models[name].config_cls, raw[name])
        except ConfigError as exc:
            raise ConfigError(f"{TASK.models[name].label}: {exc}") from exc
    return BenchmarkRequest(
        "sentiment", dataset, tuple(raw["models"]), seed=raw["seed"], configs=configs, train_config=tcfg,
        max_samples=raw["max_samples"], repeats=raw["repeats"], data_options=options,
    )  # fmt: skip


def train_and_show(dataset: str, raw: dict[str, Any], options: dict[str, Any]) -> None:
    """Train as a job in a worker process with live progress and Stop; keep the report in the session."""
    if not raw["models"]:
        st.error("Choose at least one model.")
        return
    try:
        request = build_request(dataset, raw, options)
    except (ConfigError, TypeError, ValueError) as exc:
        st.error(f"Invalid settings: {ui.say(exc)}")
        return
    st.session_state.pop(f"{KEY}.report", None)
    report = ui.run_job(request, f"{KEY}.job")
    if report is not None:
        st.session_state[f"{KEY}.report"] = report
        st.session_state[f"{KEY}.options"] = options


# ---------------------------------------------------------------------------------------------- results (text)


def split_of(report: dict[str, Any], options: dict[str, Any] | None) -> Any:
    """The run's train / test split, rebuilt from its dataset, seed and fast path (uploads: from the cache)."""
    opts = dict(options or {})
    if report["dataset"] == "csv" and "path" not in opts:
        saved = report.get("data_options") or {}
        path = UPLOADS / f"{saved.get('sha256', '')}.csv"
        if not re.fullmatch(r"[0-9a-f]{64}", str(saved.get("sha256", ""))) or not path.is_file():
            raise ConfigError("the uploaded CSV of this run is no longer on the server: upload it again")
        opts = {**saved, "path": str(path)}
    max_samples = int(report.get("train_config", {}).get("max_samples", 0))
    return load_split(report["dataset"], int(report["seed"]), max_samples, tuple(sorted(opts.items())))


def misclassified_browser(report: dict[str, Any], key: str, options: dict[str, Any] | None) -> None:
    """Test texts a model got wrong: text, true, predicted, confidence; pick one to explain."""
    st.subheader("Misclassified texts")
    run_id = report.get("run_id")
    if not run_id:
        st.info("The browser of misclassified texts needs a stored run.")
        return
    try:
        split = split_of(report, options)
        preds = ui.run_store().load_predictions(run_id)
    except Exception as exc:  # a missing upload or artifact is a message
        st.warning(f"Misclassified texts are not available for this run: {ui.md(store_error(exc, ui.run_store()))}")
        return
    labels = {m["name"]: m["label"] for m in report["models"] if m["name"] in preds}
    classes = report["class_names"]
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("Model", list(labels), format_func=labels.get, key=f"{key}.mis_model")
    true_f = c2.selectbox("True class", ["any", *classes], key=f"{key}.mis_true")
    pred_f = c3.selectbox("Predicted class", ["any", *classes], key=f"{key}.mis_pred")
    pred = preds[name]
    if len(pred) != len(split.y_test):
        st.warning("The stored predictions do not match the rebuilt test split; the data changed since this run.")
        return
    wrong = np.flatnonzero(pred != split.y_test)
    if true_f != "any":
        wrong = wrong[split.y_test[wrong] == classes.index(true_f)]
    if pred_f != "any":
        wrong = wrong[pred[wrong] == classes.index(pred_f)]
    st.caption(f"{len(wrong):,} of {len(split.y_test):,} test texts misclassified by {labels[name]} with these filters"
               + (f"; the first {SHOWN_ROWS} are shown" if len(wrong) > SHOWN_ROWS else ""))  # fmt: skip
    if len(wrong) == 0:
        return
    shown = wrong[:SHOWN_ROWS]
    texts = tuple(str(t) for t in split.X_test[shown])
    try:
        conf = test_confidence(run_id, name, texts)
    except Exception as exc:  # confidence is a bonus: the table still shows
        conf = np.full(len(shown), np.nan)
        st.caption(f"(confidence unavailable: {type(exc).__name__})")
    table = pd.DataFrame({"#": shown, "text": texts, "true": [classes[k] for k in split.y_test[shown]],
                          "predicted": [classes[k] for k in pred[shown]], "confidence": conf})  # fmt: skip
    ui.table(table, hide_index=True, key=f"{key}.mis_table",
                 column_config={"confidence": st.column_config.NumberColumn(format="%.3f")})  # fmt: skip
    pick = st.selectbox("Explain one of them", list(range(len(shown))), key=f"{key}.mis_pick",
                        format_func=lambda i: f"#{shown[i]}: {texts[i][:80]}")  # fmt: skip
    if st.button("Explain this text", key=f"{key}.mis_explain"):
        st.session_state[f"{key}.mis_text"] = texts[pick]
    chosen = st.session_state.get(f"{key}.mis_text")
    if chosen in texts:
        explain_side_by_side(report, chosen, f"{key}.mis", split.X_train, first=name)


def explain_side_by_side(
    report: dict[str, Any], text: str, key: str, background: Any, first: str | None = None
) -> None:
    """SHAP highlights of `text` for a chosen model beside the TF-IDF logistic regression's."""
    run_id = report["run_id"]
    names = [m["name"] for m in report["models"] if m["name"] != "majority"]
    labels = {m["name"]: m["label"] for m in report["models"]}
    if not names:
        st.info("No model of this run can be explained (the majority class has nothing to explain).")
        return
    default = (
        first if first in names else next((n for n in ("minilm", "minilm_frozen", "scratch") if n in names), names[0])
    )
    shown = [default] + (["tfidf_lr"] if "tfidf_lr" in names and default != "tfidf_lr" else [])
    rng = np.random.default_rng(0)
    bg = tuple(str(t) for t in rng.choice(np.asarray(background, dtype=object), min(100, len(background)),
                                          replace=False)) if len(background) else ()  # fmt: skip
    classes = report["class_names"]
    for col, name in zip(st.columns(len(shown)), shown, strict=True):
        with col:
            st.markdown(f"**{ui.md(labels[name])}**")
            try:
                out = explain_cached(run_id, name, text, bg if name == "tfidf_lr" else ())
            except Exception as exc:  # an explanation must never take the page down
                st.error(f"Could not explain with {labels[name]}: {ui.say(exc)}")
                continue
            k = int(out["predicted"])
            values = np.asarray(out["values"])
            st.markdown(f"predicts **{ui.md(classes[k])}** ({out['proba'][k]:.1%}); "
                        f"words pushing towards it in red, away in blue:")  # fmt: skip
            st.markdown(highlight(out["tokens"], values[:, k].tolist()))
            st.caption(f"{out['method']} · {out['seconds']:.2f} s")
            top = pd.DataFrame({"token": [t.strip() for t in out["tokens"]], "SHAP value": values[:, k]})
            top = top[top["token"] != ""].sort_values("SHAP value", key=np.abs, ascending=False).head(10)
            ui.table(top, hide_index=True, key=f"{key}.{name}.top")


def top_words_section(report: dict[str, Any], key: str) -> None:
    """The n-grams the TF-IDF logistic regression weighs most per class."""
    if not report.get("run_id") or "tfidf_lr" not in {m["name"] for m in report["models"]}:
        return
    st.subheader("Top words per class (TF-IDF + logistic regression)")
    try:
        table = stored_model(report["run_id"], "tfidf_lr").top_words(report["class_names"], 15)
    except Exception as exc:
        st.warning(f"Top words unavailable: {ui.say(exc)}")
        return
    ui.table(table, hide_index=True, key=f"{key}.top_words")


def show_text_report(report: dict[str, Any], key: str, options: dict[str, Any] | None = None) -> None:
    """The shared results view, then what is specific to text."""
    ui.show_report(report, key)
    top_words_section(report, key)
    misclassified_browser(report, key, options)


# ---------------------------------------------------------------------------------------------- predict tab


def predict_tab(report: dict[str, Any] | None) -> None:
    """Typed text or an uploaded CSV / TXT: every model of a stored run side by side, CSV download, SHAP."""
    from bench.tasks.sentiment.estimators import predict_texts
    from data.text import clean_text, safe_csv_bytes, texts_from_upload

    runs = []
    try:
        runs = ui.run_store().list_runs("sentiment")
    except Exception as exc:
        st.error(f"The run store could not be read: {ui.md(store_error(exc, ui.run_store()))}")
    options = {r["run_id"]: ui.short_run_label(r) for r in runs}
    if report is not None and report.get("run_id"):  # this session's run first: it is what the user just trained
        mine = report["run_id"]
        options = {mine: f"this session's run · {mine[:8]}", **{k: v for k, v in options.items() if k != mine}}
    if not options:
        st.info("Train the models first (tab 'Train & compare'), or open a saved run: predictions use stored models.")
        return
    ui.prefer_new_run(f"{KEY}.predict_run", (report or {}).get("run_id"), list(options))
    run_id = st.selectbox("Models of run", list(options), format_func=options.get, key=f"{KEY}.predict_run")
    try:
        run_report = ui.load_report(run_id)
    except Exception as exc:
        st.error(f"Could not load run {run_id[:8]}: {ui.md(store_error(exc, ui.run_store()))}")
        return
    mode = st.radio("Input", ["Type a text", "Upload a CSV / TXT"], horizontal=True, key=f"{KEY}.predict_mode")
    texts: np.ndarray | None = None
    if mode == "Type a text":
        typed = st.text_area("Text", max_chars=MAX_TYPED_CHARS, key=f"{KEY}.text",
                             placeholder="e.g. The flight was delayed for hours and the staff were rude.")  # fmt: skip
        go = st.button("Predict and explain", type="primary", key=f"{KEY}.predict")
        if go:
            text = clean_text(typed)
            if not text:
                st.warning("Type a text first (it is empty or only whitespace).")
            else:
                st.session_state[f"{KEY}.typed"] = text
        text = st.session_state.get(f"{KEY}.typed")
        if text:
            texts = np.array([text], dtype=object)
    else:
        up = st.file_uploader("Texts to predict", type=["csv", "txt"], key=f"{KEY}.predict_upload",
                              help="TXT: one text per line. CSV: choose the text column.")  # fmt: skip
        if up is not None:
            try:
                texts, column = texts_from_upload(up.getvalue(), up.name)
                st.caption(f"{len(texts):,} texts" + (f" from column {ui.md(repr(column))}" if column else ""))
            except (ConfigError, ServerBusy) as exc:
                st.error(f"This file cannot be used: {ui.say(exc)}")
                texts = None
    if texts is None:
        return
    labels = {m["name"]: m["label"] for m in run_report["models"]}
    try:
        estimators = {m: stored_model(run_id, m) for m in labels}
        frame = predict_texts(estimators, texts, run_report["class_names"], labels)
    except Exception as exc:
        st.error(f"Prediction failed: {ui.md(store_error(exc, ui.run_store()))}")
        return
    if len(texts) == 1:  # one text: a model per row reads better than a wide row (the CSV keeps the wide form)
        ui.table(
            pd.DataFrame({"model": list(labels.values()),
                          "prediction": [frame[f"{lab}: prediction"].iloc[0] for lab in labels.values()],
                          "confidence": [frame[f"{lab}: confidence"].iloc[0] for lab in labels.values()]}),
            hide_index=True, key=f"{KEY}.predictions",
            column_config={"confidence": st.column_config.NumberColumn(
                format="%.3f", help="Top class probability (1.0 for rule-based / majority answers)")},
        )  # fmt: skip
    else:
        ui.table(frame, hide_index=True, key=f"{KEY}.predictions")
    st.download_button("Download predictions (CSV)", safe_csv_bytes(frame), file_name="predictions.csv",
                       mime="text/csv", key=f"{KEY}.download")  # fmt: skip
    if mode == "Type a text":
        st.subheader("Why? (SHAP)")
        try:
            split = split_of(run_report, st.session_state.get(f"{KEY}.options"))
            background = split.X_train
        except Exception:  # no training texts (upload gone): the linear explainer uses an empty background
            background = np.array([], dtype=object)
        explain_side_by_side(run_report, str(texts[0]), f"{KEY}.typed", background)


# ---------------------------------------------------------------------------------------------- data tab


def data_view(split: Any) -> None:
    """Class balance, length distribution in tokens, sample rows and the topic caveat."""
    from data.text import TOPIC_NOTE

    c1, c2, c3 = st.columns(3)
    c1.metric("training texts", f"{len(split.y_train):,}")
    c2.metric("test texts", f"{len(split.y_test):,}")
    c3.metric("classes", len(split.class_names))
    st.caption(f"Source: {ui.md(split.source)} · split: {ui.md(split.split_note)}")
    if split.name.startswith("tweets"):
        st.info(TOPIC_NOTE)
    left, right = st.columns(2)
    with left:
        counts = pd.DataFrame({
            "class": [ui.plot_text(c) for c in split.class_names] * 2,
            "split": ["train"] * len(split.class_names) + ["test"] * len(split.class_names),
            "texts": np.concatenate([np.bincount(split.y_train, minlength=len(split.class_names)),
                                     np.bincount(split.y_test, minlength=len(split.class_names))]),
        })  # fmt: skip
        fig = px.bar(counts, x="class", y="texts", color="split", barmode="group", title="Class balance")
        st.plotly_chart(fig, key=f"{KEY}.counts")
    with right:
        rng = np.random.default_rng(0)
        sample = split.X_train[rng.choice(len(split.X_train), min(3000, len(split.X_train)), replace=False)]
        lens = token_lengths(tuple(str(t) for t in sample))
        fig = px.histogram(x=lens, nbins=40, title="Length in MiniLM tokens (sample of training texts)",
                           labels={"x": "tokens"})  # fmt: skip
        st.plotly_chart(fig, key=f"{KEY}.lengths")
        st.caption(f"mean {lens.mean():.0f}, 95th percentile {np.percentile(lens, 95):.0f}, max {lens.max()} tokens")
    rows = pd.DataFrame({"text": split.X_train[:50], "label": [split.class_names[k] for k in split.y_train[:50]]})
    ui.table(rows, hide_index=True, key=f"{KEY}.samples")


# ---------------------------------------------------------------------------------------------- page

st.title("Sentiment analysis")
st.markdown(
    "A fine-tuned transformer (all-MiniLM-L6-v2), a head on frozen MiniLM embeddings and a network trained from "
    "scratch against TF-IDF with logistic regression, a linear SVM and naive Bayes, the VADER lexicon and the "
    "majority class: same split, same evaluation code."
)

shap_warm_up()
dataset_labels = {n: d.label for n, d in TASK.datasets.items()}
dataset = st.selectbox("Dataset", list(dataset_labels), format_func=dataset_labels.get, key=f"{KEY}.dataset")
available, reason = TASK.datasets[dataset].availability()
data_options: dict[str, Any] | None = {}
if dataset == "csv":
    data_options = csv_source()

tab_train, tab_predict, tab_data, tab_saved = st.tabs(["Train & compare", "Predict & explain", "Data", "Saved runs"])

with tab_train:
    if not available:
        st.warning(f"This dataset is not available here. {reason}")
    elif data_options is None:
        st.info("Upload a CSV above to train on it.")
    else:
        submitted, raw = settings_form(dataset)
        if submitted:
            train_and_show(dataset, raw, data_options)
        else:
            finished = ui.job_notice(f"{KEY}.job")
            if finished is not None:
                st.session_state[f"{KEY}.report"] = finished
        current = st.session_state.get(f"{KEY}.report")
        if current is not None:
            st.header("Results")
            show_text_report(current, f"{KEY}.result", st.session_state.get(f"{KEY}.options"))

with tab_predict:
    predict_tab(st.session_state.get(f"{KEY}.report"))

with tab_data:
    if not available:
        st.warning(reason)
    elif data_options is None:
        st.info("Upload a CSV above to see its data.")
    else:
        try:
            data_view(load_split(dataset, 0, 0, tuple(sorted(data_options.items()))))
        except ConfigError as exc:
            st.error(f"Cannot load this dataset: {ui.say(exc)}")

with tab_saved:
    ui.saved_runs_tab("sentiment", KEY, show_text_report)
