"""Shared Streamlit widgets (not a page): config forms, progress, leaderboard, charts, verdicts.

One palette (a fixed colour per model family) and one number format per quantity (the `fmt_*` helpers of
bench.core.stats, re-exported here) are used by every page.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import math
import re
import time
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from bench.core.explain import explain_images
from bench.core.stats import (  # noqa: F401  (re-exported: the one format per quantity for every page)
    fmt_ci,
    fmt_int,
    fmt_p,
    fmt_pct,
    fmt_points,
    fmt_seconds,
)
from bench.run.runner import headline as engine_headline
from bench.run.runner import leaderboard_rows
from bench.run.settings import describe_settings, report_kind
from bench.run.store import RunStore
from bench.tasks import REGISTRY, get_task
from data.text import inert_frame
from models.config import field_label
from models.redact import redact

logger = logging.getLogger(__name__)

# --- palette: one fixed colour per family, everywhere ---------------------------------------------------------

FAMILY_COLORS = {
    "neural": "#1f4e9c",  # dark blue
    "pretrained": "#7b3fa0",  # purple
    "classical": "#e07b00",  # orange
    "naive": "#7f7f7f",  # grey
}
# Shades per family, for charts that show several models of one family side by side (first = the family colour).
FAMILY_SHADES = {
    "neural": ["#1f4e9c", "#5b9bd5", "#0b2a5b", "#9cc3ea"],
    "pretrained": ["#7b3fa0", "#b07cd0", "#4b1f66"],
    "classical": ["#e07b00", "#f5b041", "#a04000", "#c9a227", "#7a4b00"],
    "naive": ["#7f7f7f", "#b0b0b0", "#4d4d4d"],
}
FAMILY_LABELS = {"neural": "neural", "pretrained": "pretrained", "classical": "classical", "naive": "naive"}
OTHER_COLOR = "#2ca02c"



# ------------------------------------------------------------------------------------ user text in the page
# Markdown renders links, images and directives, plotly renders a subset of HTML (<a href>, <b>): every string a
# user chose (file, folder, class and column names, CSV values, typed text, error texts that quote them) goes
# through md() before it reaches st.markdown / st.caption / st.error ..., and through plot_text() before a chart.
# What makes Markdown active: links and images need [ ], autolinks need < >, a scheme's ':' or an e-mail's '@' or
# "www.", Streamlit's directives and icons need ':' and [ ], maths '$', emphasis and code * _ ~ `, tables |,
# headings #. Escaping exactly these keeps user text inert and still readable (dots, dashes, brackets stay).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#!|<>~:$@])")
_WWW = re.compile(r"(?i)\b(www)\.")


def md(text: Any) -> str:
    """User text made inert for Markdown: every Markdown / directive character backslash-escaped, one line."""
    one_line = str(text).replace("\r", " ").replace("\n", " ")
    return _WWW.sub(r"\1\\.", _MD_SPECIAL.sub(r"\\\1", one_line))


def say(error: Any) -> str:
    """An error (or any text that may quote user input or a credential) ready for st.error: redacted, inert."""
    return md(redact(error))


def plot_text(text: Any) -> str:
    """User text for a plotly title, label or tick: HTML-escaped (plotly would render <a href>, <b>, <br>)."""
    return html.escape(str(text), quote=True)


def table(data: Any, **kwargs: Any) -> Any:
    """`st.dataframe` of `data` with every text cell and header neutralised like our CSV downloads (SECURITY.md
    item 12): the table's own "Download as CSV" then cannot hand a user a formula from someone's upload."""
    if hasattr(data, "data") and hasattr(data, "apply") and not isinstance(data, pd.DataFrame):  # a pandas Styler
        data.data = inert_frame(data.data)
    else:
        data = inert_frame(data if isinstance(data, pd.DataFrame) else pd.DataFrame(data))
    return st.dataframe(data, **kwargs)


def family_color(family: str) -> str:
    """The fixed colour of a model family."""
    return FAMILY_COLORS.get(family, OTHER_COLOR)


def model_colors(models: list[dict[str, Any]]) -> dict[str, str]:
    """label -> colour: the family's colour for its first model, further shades of it for the next ones."""
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for m in models:
        fam = m.get("family", "")
        k = seen.get(fam, 0)
        shades = FAMILY_SHADES.get(fam, [OTHER_COLOR])
        out[m["label"]] = shades[k % len(shades)]
        seen[fam] = k + 1
    return out


# --- store, reports ------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def run_store() -> RunStore:
    """One MLflow-backed store per server process (the client is thread-safe; never mutated)."""
    return RunStore()


@st.cache_data(show_spinner=False, max_entries=64)
def load_report(run_id: str) -> dict[str, Any]:
    """A stored report, cached by run id (reports never change once finished)."""
    return run_store().load_report(run_id)


@st.cache_data(show_spinner=False, max_entries=16)
def load_predictions(run_id: str) -> dict[str, np.ndarray]:
    """A stored run's test predictions per model, cached by run id."""
    return run_store().load_predictions(run_id)


def dataset_label(task: str, dataset: str) -> str:
    """The human name of a dataset ('MNIST-5k (bundled, 5,000 digits)'), the raw name when unknown."""
    try:
        ds = get_task(task).datasets.get(dataset)
    except KeyError:
        return dataset
    return ds.label if ds is not None else dataset


def format_time(ms: int | None) -> str:
    """Milliseconds since the epoch as a short UTC time."""
    if not ms:
        return "?"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- forms ---------------------------------------------------------------------------------------------------


def log_choices(lo: float, hi: float, default: float) -> list[float]:
    """1-2-5 steps per decade between lo and hi, with the default included (for log-scale settings)."""
    out = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = float(f"{m}e{e}")
            if lo <= v <= hi:
                out.append(v)
    if default not in out:
        out.append(float(default))
    return sorted(out)


def _log_scale(meta: Any) -> bool:
    if meta.get("scale") == "log":
        return True
    lo, hi = meta.get("min"), meta.get("max")
    return bool(lo and hi and lo > 0 and hi / lo >= 1e3)


def config_form(cls: type, defaults: Any, key: str, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Widgets for every field of a config dataclass (inside a st.form), with human labels; returns the values.

    Floats spanning several decades (e.g. the learning rate) are chosen on a log scale.
    """
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        meta, default = f.metadata, getattr(defaults, f.name)
        label, help_text, wkey = field_label(f), meta.get("help"), f"{key}.{f.name}"
        kind = hints.get(f.name)
        if "choices" in meta:
            choices = list(meta["choices"])
            values[f.name] = st.selectbox(label, choices, index=choices.index(default), help=help_text, key=wkey)
        elif kind is bool:
            values[f.name] = st.checkbox(label, value=default, help=help_text, key=wkey)
        elif kind is int:
            values[f.name] = int(st.number_input(label, value=int(default), step=1, help=help_text, key=wkey))
        elif kind is float and _log_scale(meta):
            values[f.name] = float(
                st.select_slider(label, options=log_choices(meta["min"], meta["max"], float(default)),
                                 value=float(default), format_func=lambda v: f"{v:g}", help=help_text, key=wkey)
            )  # fmt: skip
        elif kind is float:
            values[f.name] = float(st.number_input(label, value=float(default), format="%g", help=help_text, key=wkey))
        else:
            values[f.name] = st.text_input(label, value=str(default), help=help_text, key=wkey)
    return values


def describe_config(cls: type, values: dict[str, Any] | Any) -> str:
    """The settings of one model in words: 'Trees 200 · Maximum depth (0 = unlimited) 0'."""
    if dataclasses.is_dataclass(values) and not isinstance(values, type):
        values = dataclasses.asdict(values)
    parts = []
    for f in dataclasses.fields(cls):
        if f.name in values:
            v = values[f.name]
            text = f"{v:g}" if isinstance(v, float) else ("yes" if v is True else "no" if v is False else str(v))
            parts.append(f"{field_label(f)} {text}")
    return " · ".join(parts)


# --- verdicts and tables -------------------------------------------------------------------------------------


def headline_of(report: dict[str, Any]) -> dict[str, str]:
    """{"level", "text"} of a report, worded by its task's evaluator."""
    return engine_headline(report)


def headline(report: dict[str, Any]) -> None:
    """Who won, said plainly: a clear win, a clear loss, or no clear winner."""
    head = headline_of(report)
    {"success": st.success, "warning": st.warning}.get(head["level"], st.info)(head["text"])


# Display label, format and help of the leaderboard columns every evaluator may return; others are shown as is.
COLUMNS: dict[str, dict[str, Any]] = {
    "model": {"label": "model", "pinned": True},
    "family": {"label": "family"},
    "seed_text": {"label": "mean ± sd over seeds", "help": "Test accuracy over the seeds the model was run with"},
    "accuracy": {"label": "accuracy", "format": "percent", "help": "Test accuracy (first seed)"},
    "ci": {"label": "95% CI", "help": "Wilson 95% confidence interval of the test accuracy"},
    "macro_f1": {"label": "macro-F1", "format": "percent"},
    "train_samples": {"label": "train samples", "format": "%,d"},
    "epochs": {"label": "epochs", "format": "%d"},
    "train_s": {"label": "train s", "format": "%.2f"},
    "predict_ms_per_1k": {"label": "predict ms / 1k", "format": "%.2f"},
    "params": {"label": "parameters", "format": "%,d", "help": "weights, or stored values for kNN / SVM"},
}
PERCENT = "%.2f%%"  # a share x 100, as fmt_pct writes it
HIDDEN = ("ci_low", "ci_high", "seed_mean", "seed_sd", "seeds", "score", "name")


def leaderboard_frame(report: dict[str, Any]) -> pd.DataFrame:
    """The leaderboard rows of a report as a table, best first (by the mean over seeds when there are several)."""
    return pd.DataFrame(leaderboard_rows(report))


def _plain(column: str, v: Any) -> str:
    """A cell of a column the table has no format for: p-values as fmt_p, other numbers to 4 digits."""
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return fmt_p(float(v)) if "p_value" in column else f"{float(v):.4g}"
    return str(v)


def _printf(fmt: str, v: Any) -> str:
    """One cell as the column's printf format would show it; a dash for a missing value."""
    if v is None or v != v:
        return "—"
    if fmt == "%,d":
        return fmt_int(v)
    return fmt % (int(v) if fmt == "%d" else v)


def leaderboard(report: dict[str, Any], key: str) -> None:
    """Leaderboard table, best first, with the columns that matter first and every number in its one format."""
    df = leaderboard_frame(report)
    if df.empty:
        st.info("No model results in this run.")
        return
    if "seed_text" in df and df["seeds"].max() <= 1:
        df = df.drop(columns=["seed_text"])
    order = [c for c in COLUMNS if c in df] + [c for c in df if c not in COLUMNS and c not in HIDDEN]
    config: dict[str, Any] = {}
    for i, c in enumerate(order):
        spec = COLUMNS.get(c, {"label": c.replace("_", " ")})
        if c not in COLUMNS and df[c].isna().any():  # another task's column with gaps: text, a dash for none
            df[f"{c}_text"] = [_plain(c, v) for v in df[c]]
            order[i] = c = f"{c}_text"
        if spec.get("format") == "percent":
            df[f"{c}_pct"] = df[c] * 100  # shown as '89.00%'; the raw share stays in the frame
            order[i] = c = f"{c}_pct"
            spec = {**spec, "format": PERCENT}
        if "format" in spec and df[c].isna().any():  # never "None" in a cell: a dash where there is no number
            df[f"{c}_text"] = [_printf(spec["format"], v) for v in df[c]]
            order[i] = c = f"{c}_text"
            config[c] = st.column_config.Column(spec["label"], help=spec.get("help"), pinned=spec.get("pinned"))
        elif "format" in spec:
            config[c] = st.column_config.NumberColumn(spec["label"], format=spec["format"], help=spec.get("help"),
                                                      pinned=spec.get("pinned"))  # fmt: skip
        else:
            config[c] = st.column_config.Column(spec["label"], help=spec.get("help"), pinned=spec.get("pinned"))
    table(df, hide_index=True, key=f"{key}.leaderboard", column_order=order, column_config=config)
    if "seed_text" in df:
        st.caption("Ranked by the mean test accuracy over seeds where a model was run with several seeds.")


def accuracy_chart(report: dict[str, Any]) -> go.Figure:
    """Dot + interval plot of test accuracy (95% Wilson CI), one fixed colour per family, on a scale that
    shows the real models; the naive baseline is a reference line. With several seeds: one small dot per
    seed and a diamond at the mean."""
    models = report["models"]
    naive = [m for m in models if m["family"] == "naive"]
    shown = [m for m in models if m["family"] != "naive"] or naive
    shown = sorted(shown, key=lambda m: m["metrics"].get("accuracy_seed_mean") or m["metrics"]["accuracy"])
    fig = go.Figure()
    for fam in dict.fromkeys(m["family"] for m in shown):
        ms = [m for m in shown if m["family"] == fam]
        acc = np.array([m["metrics"]["accuracy"] for m in ms])
        lo = np.array([m["metrics"]["accuracy_ci"][0] for m in ms])
        hi = np.array([m["metrics"]["accuracy_ci"][1] for m in ms])
        fig.add_trace(go.Scatter(
            x=acc, y=[m["label"] for m in ms], mode="markers", name=FAMILY_LABELS.get(fam, fam),
            marker={"color": family_color(fam), "size": 11},
            error_x={"type": "data", "symmetric": False, "array": hi - acc, "arrayminus": acc - lo,
                     "color": family_color(fam), "thickness": 2, "width": 6},
            customdata=np.stack([lo, hi], axis=1),
            hovertemplate="%{y}: %{x:.2%} (95% CI %{customdata[0]:.2%} – %{customdata[1]:.2%})<extra></extra>",
        ))  # fmt: skip
        seeds = [(m["label"], r["seed"], r["accuracy"]) for m in ms for r in m["metrics"].get("seed_runs", [])]
        if len(seeds) > len(ms):
            fig.add_trace(go.Scatter(
                x=[s[2] for s in seeds], y=[s[0] for s in seeds], mode="markers", showlegend=False,
                marker={"color": family_color(fam), "size": 6, "symbol": "circle-open"},
                customdata=[s[1] for s in seeds], hovertemplate="%{y}, seed %{customdata}: %{x:.2%}<extra></extra>",
            ))  # fmt: skip
            means = [m for m in ms if len(m["metrics"].get("seed_runs", [])) > 1]
            fig.add_trace(go.Scatter(
                x=[m["metrics"]["accuracy_seed_mean"] for m in means], y=[m["label"] for m in means],
                mode="markers", name=f"{FAMILY_LABELS.get(fam, fam)}: mean over seeds",
                marker={"color": family_color(fam), "size": 12, "symbol": "diamond-open", "line": {"width": 2}},
                hovertemplate="%{y}: mean over seeds %{x:.2%}<extra></extra>",
            ))  # fmt: skip
    xs = [v for m in shown for v in (*m["metrics"]["accuracy_ci"], *(r["accuracy"] for r in m["metrics"].get(
        "seed_runs", [])))]  # fmt: skip
    lo_x, hi_x = min(xs), max(xs)
    pad = max(0.01, (hi_x - lo_x) * 0.08)
    lo_x, hi_x = max(0.0, lo_x - pad), min(1.0, hi_x + pad)
    for m in naive if shown is not naive else []:
        acc = m["metrics"]["accuracy"]
        if lo_x <= acc <= hi_x:
            fig.add_vline(x=acc, line_dash="dash", line_color=family_color("naive"),
                          annotation_text=f"{m['label']} {fmt_pct(acc)}", annotation_position="top")  # fmt: skip
        else:
            side = "left" if acc < lo_x else "right"
            fig.add_annotation(
                x=lo_x if side == "left" else hi_x, y=1.0, xref="x", yref="paper", showarrow=False,
                xanchor=side, yanchor="bottom", text=f"{'◀ ' if side == 'left' else ''}{m['label']}: {fmt_pct(acc)} (off this scale)"
                f"{' ▶' if side == 'right' else ''}", font={"color": family_color("naive")},
            )  # fmt: skip
    title = "Test accuracy with 95% confidence intervals (Wilson)"
    if any(len(m["metrics"].get("seed_runs", [])) > 1 for m in shown):
        title += f"<br><sup>dot and bar: seed {report.get('seed', 0)} with its CI · rings: other seeds · diamond: mean "
        title += "over seeds</sup>"
    fig.update_layout(
        title=title, height=160 + 46 * len(shown), legend_title_text="family",
        xaxis={"title": "test accuracy", "tickformat": ".1%", "range": [lo_x, hi_x]},
        yaxis={"title": None}, margin={"t": 100},
    )  # fmt: skip
    return fig


def history_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Per-epoch history of every neural model as one long table."""
    rows = [{"model": m["label"], "family": m["family"], **h} for m in report["models"] for h in m["history"]]
    return pd.DataFrame(rows)


CURVES = (
    ("accuracy", "Accuracy", (("train_accuracy", "training"), ("val_accuracy", "validation"))),
    ("loss", "Loss (cross-entropy)", (("train_loss", "training"), ("val_loss", "validation"))),
)


def curves(history: pd.DataFrame, title: str) -> go.Figure:
    """Accuracy and loss per epoch, training (solid) vs validation (dashed), one colour per model."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[c[1] for c in CURVES], horizontal_spacing=0.08)
    if history.empty:
        return fig
    fams = history.groupby("model", sort=False)["family"].first() if "family" in history else None
    labels = list(dict.fromkeys(history["model"]))
    colors = model_colors([{"label": m, "family": fams[m] if fams is not None else "neural"} for m in labels])
    for col, (_, _, series) in enumerate(CURVES, start=1):
        for m in labels:
            h = history[history["model"] == m]
            for field, split in series:
                if field not in h or h[field].isna().all():
                    continue
                fig.add_trace(go.Scatter(
                    x=h["epoch"], y=h[field], mode="lines+markers", name=f"{m} · {split}", legendgroup=m,
                    showlegend=col == 1,
                    line={"color": colors[m], "dash": "solid" if split == "training" else "dash"},
                ), row=1, col=col)  # fmt: skip
    fig.update_xaxes(title_text="epoch", dtick=1 if history["epoch"].max() <= 20 else None)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", row=1, col=1)
    fig.update_yaxes(title_text="loss", row=1, col=2)
    fig.update_layout(title=title, height=380, legend_title_text="model · split")
    return fig


def confusion(cm: list[list[int]], class_names: list[str], title: str) -> go.Figure:
    """Confusion matrix heatmap (rows: true class, columns: predicted), every class labelled on both axes."""
    n = len(class_names)
    class_names = [plot_text(c) for c in class_names]  # user-chosen names (folders, CSV labels): no HTML in charts
    fig = go.Figure(go.Heatmap(
        z=np.asarray(cm), x=list(range(n)), y=list(range(n)), colorscale="Blues", texttemplate="%{z}",
        hovertemplate="true %{customdata[0]}, predicted %{customdata[1]}: %{z}<extra></extra>",
        customdata=[[(class_names[i], class_names[j]) for j in range(n)] for i in range(n)],
        colorbar={"title": "images"},
    ))  # fmt: skip
    ticks = {"tickmode": "array", "tickvals": list(range(n)), "ticktext": class_names}
    fig.update_xaxes(title_text="predicted class", side="bottom", tickangle=-45 if n > 6 else 0, **ticks)
    fig.update_yaxes(title_text="true class", autorange="reversed", **ticks)
    fig.update_layout(title=title, height=max(420, 36 * n + 160))
    return fig


def provenance(report: dict[str, Any]) -> None:
    """Where the numbers come from: dataset, data source, split, seed, run id, environment."""
    env = report.get("environment", {})
    split = report.get("split") or {}
    sizes = ", ".join(f"{k.replace('val', 'validation')} {fmt_int(v)}" for k, v in split.items()
                      if isinstance(v, (int, float)))  # fmt: skip
    st.caption(
        f"**{dataset_label(report.get('task', ''), report.get('dataset', ''))}** · data: "
        f"{report.get('data_source', '?')} · split: {report.get('split_note', '?')}"
        + (f" ({sizes})" if sizes else "")
        + f" · seed {report.get('seed', '?')} · run {report.get('run_id') or 'not stored'} · "
        f"{report.get('created_at', '')} · torch {env.get('torch', '?')} on {env.get('device', '?')}, "
        f"{env.get('threads', '?')} threads"
        + (f" · execution: {env['execution']}" if env.get("execution") else "")
    )


def settings_used(report: dict[str, Any], key: str) -> None:
    """What differs from the dataset's defaults (or that nothing does), and each model's settings."""
    kind = report_kind(report)
    split = report.get("split", {})
    text = describe_settings(kind)
    fast = (report.get("fast_path") or {}) if isinstance(report.get("fast_path"), dict) else {}
    if not kind["full_data"] and split:
        used = fast.get("used", split.get("train"))
        text = text.replace(
            f"at most {kind['max_samples']:,} training samples.",
            f"{fmt_int(used)} training samples used (requested {kind['max_samples']:,}); the test split is whole "
            f"({fmt_int(split.get('test'))} {'texts' if report.get('task') == 'sentiment' else 'images'}).",
        )
    repeats = int(report.get("repeats", 1) or 1)
    if repeats > 1:
        text += f" Seeds per model: {repeats} (seeds {report['seed']} to {report['seed'] + repeats - 1})."
    st.markdown(f"**Settings used.** {text}")


def model_settings(report: dict[str, Any], key: str) -> None:
    """An expander with what changed from the defaults and every model's settings, in words."""
    kind = report_kind(report)
    with st.expander("Every model's settings"):
        spec = REGISTRY.get(report.get("task", ""))
        rows = []
        for m in report["models"]:
            mspec = spec.models.get(m["name"]) if spec is not None else None
            desc = describe_config(mspec.config_cls, m.get("config") or {}) if mspec is not None else ""
            rows.append({"model": m["label"], "what it is": mspec.description if mspec else "", "settings": desc})
        if kind["diffs"]:
            table(pd.DataFrame(kind["diffs"]), hide_index=True, key=f"{key}.diffs")
        table(pd.DataFrame(rows), hide_index=True, key=f"{key}.model_settings")


def per_class_table(model: dict[str, Any], key: str) -> None:
    """Precision, recall, F1, false positives / negatives per class: narrow enough to show without scrolling."""
    per_class = pd.DataFrame(model["errors"]["per_class"])
    for metric in ("precision", "recall", "f1"):
        per_class[metric] = model["metrics"]["per_class"][metric]
        per_class[f"{metric}_pct"] = per_class[metric] * 100
    cols = ["class", "precision_pct", "recall_pct", "f1_pct", "false_positives", "false_negatives", "support"]
    table(
        per_class, hide_index=True, key=f"{key}.errors", column_order=cols,
        column_config={
            "class": st.column_config.Column("class", width="small"),
            "precision_pct": st.column_config.NumberColumn("precision", format=PERCENT, width="small"),
            "recall_pct": st.column_config.NumberColumn("recall", format=PERCENT, width="small"),
            "f1_pct": st.column_config.NumberColumn("F1", format=PERCENT, width="small"),
            "false_positives": st.column_config.NumberColumn("false pos.", format="%,d", width="small",
                                                             help="other classes predicted as this one"),
            "false_negatives": st.column_config.NumberColumn("false neg.", format="%,d", width="small",
                                                             help="this class predicted as another"),
            "support": st.column_config.NumberColumn("images", format="%,d", width="small"),
        },
    )  # fmt: skip


def significance_table(report: dict[str, Any], key: str) -> None:
    """The McNemar tests with p-values in their one format, then each verdict in words."""
    rows = []
    for c in report["comparisons"]:
        for t in c.get("per_seed") or [c]:
            rows.append({
                "model A": c.get("a_label", c["a"]), "model B": c.get("b_label", c["b"]),
                "seed": t.get("seed", c.get("seed", report.get("seed"))), "test": t["test"],
                "p-value": fmt_p(t["p_value"]), "only A right": t["a_only_correct"],
                "only B right": t["b_only_correct"],
            })  # fmt: skip
    table(pd.DataFrame(rows), hide_index=True, key=f"{key}.tests")
    for c in report["comparisons"]:
        st.markdown(f"- {c['verdict']}")


# --- SHAP ------------------------------------------------------------------------------------------------------


@st.cache_data(show_spinner="Computing SHAP values ...", max_entries=64)
def image_shap(run_id: str, model: str, task: str, dataset: str, seed: int, max_samples: int, index: int,
               data_options: dict | None = None) -> dict:  # fmt: skip
    """SHAP values of one test image for a stored model (the model and split are rebuilt from the run)."""
    est = run_store().load_model(run_id, model)
    split = get_task(task).datasets[dataset].loader(seed=seed, max_samples=max_samples, **(data_options or {}))
    if not 0 <= index < len(split.y_test):
        raise IndexError(f"test image {index} does not exist: the test split has {len(split.y_test):,} images")
    x = split.X_test[index : index + 1]
    out = explain_images(est, split.X_train, x, seed=seed)
    values = out["values"][0]  # (C, H, W, K)
    scores = _class_scores(est, x)
    if scores is None:  # rank the classes by their SHAP-reconstructed outputs
        scores = np.asarray(out["base_values"], dtype=float) + values.reshape(-1, values.shape[-1]).sum(0)
    ranked = [int(k) for k in np.argsort(-scores)]
    predicted = int(out["predicted"][0])
    runner_up = next(k for k in ranked if k != predicted)
    return {
        "values": values,
        "image": split.X_test[index],  # (C, H, W)
        "true": int(split.y_test[index]),
        "predicted": predicted,
        "runner_up": runner_up,
        "n_test": len(split.y_test),
        "method": out["method"],
    }


def _class_scores(est: Any, x: np.ndarray) -> np.ndarray | None:
    """Class probabilities of one image when the estimator offers them."""
    try:
        if hasattr(est, "predict_proba"):
            return np.asarray(est.predict_proba(x))[0]
        inner = getattr(est, "estimator_", None)
        if inner is not None and hasattr(inner, "predict_proba"):
            return np.asarray(inner.predict_proba(x.reshape(len(x), -1)))[0]
    except Exception:  # scores are a nicety: fall back to the SHAP values
        return None
    return None


@st.cache_data(show_spinner=False, max_entries=16)
def test_labels(task: str, dataset: str, seed: int) -> np.ndarray:
    """The true labels of a dataset's test split (the test split never depends on the fast path)."""
    return get_task(task).datasets[dataset].loader(seed=seed).y_test


def misclassified(report: dict[str, Any], model: str) -> np.ndarray:
    """Test-image indices the model got wrong (empty when the stored run cannot tell)."""
    try:
        pred = load_predictions(report["run_id"])[model]
        y = test_labels(report["task"], report["dataset"], int(report["seed"]))
    except Exception:  # a missing artifact or dataset: no list, the rest of the section still works
        return np.array([], dtype=int)
    if len(pred) != len(y):
        return np.array([], dtype=int)
    return np.flatnonzero(pred != y)


def shap_section(report: dict[str, Any], key: str) -> None:
    """Pick a model and a test image; show which pixels pushed the prediction up or down. The explanation stays
    on screen until the model or the image changes."""
    models = [m for m in report["models"] if m["family"] == "neural" or m["name"] == "logreg"]
    if not report.get("run_id") or not models:
        st.info("SHAP explanations need a stored run with a neural model or logistic regression.")
        return
    labels = {m["name"]: m["label"] for m in models}
    n_test = int(report["split"]["test"])
    run = report["run_id"]
    index_key = f"{key}.shap_index.{run}"  # per run: an index from another run's test split never carries over
    c1, c2, c3 = st.columns([2, 2, 1])
    name = c1.selectbox("Model to explain", list(labels), format_func=labels.get, key=f"{key}.shap_model")
    wrong = misclassified(report, name)

    def next_wrong() -> None:
        current = int(st.session_state.get(index_key, 0))
        later = wrong[wrong > current]
        st.session_state[index_key] = int(later[0] if len(later) else wrong[0])

    index = int(c2.number_input(f"Test image (0 to {n_test - 1:,})", min_value=0, max_value=n_test - 1, value=0,
                                step=1, key=index_key))  # fmt: skip
    c3.button(
        "Next misclassified image", key=f"{key}.shap_wrong", on_click=next_wrong, disabled=not len(wrong),
        help=f"{labels[name]} got {len(wrong):,} of {n_test:,} test images wrong" if len(wrong) else
        "no misclassified test image (or the stored predictions are unavailable)",
    )  # fmt: skip
    inputs = (run, name, index)
    state_key = f"{key}.shap_result"
    if st.button("Explain", key=f"{key}.explain"):
        try:
            out = image_shap(
                run, name, report["task"], report["dataset"], int(report["seed"]),
                int(report.get("train_config", {}).get("max_samples", 0)), index, report.get("data_options"),
            )  # fmt: skip
            if out["n_test"] != n_test:
                raise ValueError(
                    f"the run's test split had {n_test:,} images, the dataset now gives {out['n_test']:,}: this "
                    "older run's images cannot be matched any more"
                )
        except Exception as exc:  # an explanation must never take the page down
            st.session_state.pop(state_key, None)
            st.error(f"Could not compute the explanation: {say(exc)}")
            return
        st.session_state[state_key] = {"inputs": inputs, "out": out}
    saved = st.session_state.get(state_key)
    if not saved or saved["inputs"] != inputs:
        return
    _show_shap(saved["out"], report["class_names"], labels[name], key)


def _show_shap(out: dict[str, Any], classes: list[str], label: str, key: str) -> None:
    vals = out["values"].sum(0)  # over channels: (H, W, K)
    right = out["predicted"] == out["true"]
    second = ("runner-up", out["runner_up"]) if right else ("true", out["true"])
    shown = [("predicted", out["predicted"]), second]
    cols = st.columns(3)
    img = go.Figure(go.Heatmap(z=out["image"][0], colorscale="gray_r", showscale=False))
    img.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    img.update_xaxes(showticklabels=False)
    img.update_layout(title="test image", height=320, margin={"l": 10, "r": 10})
    cols[0].plotly_chart(img, key=f"{key}.shap_img")
    limit = float(np.abs(vals).max()) or 1.0
    for col, (what, k) in zip(cols[1:], shown, strict=True):
        fig = go.Figure(go.Heatmap(z=vals[:, :, k], colorscale="RdBu_r", zmin=-limit, zmax=limit,
                                   colorbar={"title": "SHAP"}))  # fmt: skip
        fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
        fig.update_xaxes(showticklabels=False)
        fig.update_layout(title=f"SHAP for the {what} class: {plot_text(classes[k])}", height=320, margin={"l": 10, "r": 10})
        col.plotly_chart(fig, key=f"{key}.shap_{what}")
    verdict = "correct" if right else "wrong"
    extra = f"; runner-up: {classes[out['runner_up']]}" if right else ""
    st.caption(
        f"{label} predicts {classes[out['predicted']]} (true: {classes[out['true']]}, {verdict}{extra}). "
        f"Red pixels push towards the class, blue away. {out['method']}."
    )


# --- the results view ------------------------------------------------------------------------------------------


def show_report(report: dict[str, Any], key: str) -> None:
    """The full results view of one benchmark report."""
    provenance(report)
    settings_used(report, key)
    headline(report)
    leaderboard(report, key)
    st.plotly_chart(accuracy_chart(report), key=f"{key}.bars")
    model_settings(report, key)
    hist = history_frame(report)
    if not hist.empty:
        st.subheader("Accuracy by epoch")
        st.plotly_chart(curves(hist, "Training vs validation (validation carved from the training split)"),
                        key=f"{key}.curves")  # fmt: skip
        with st.expander("Every epoch as a table"):
            table(history_table(hist), hide_index=True, key=f"{key}.history")
    st.subheader("Confusion matrix and errors")
    labels = {m["name"]: m["label"] for m in report["models"]}
    name = st.selectbox("Model", list(labels), format_func=labels.get, key=f"{key}.cm_model")
    model = next(m for m in report["models"] if m["name"] == name)
    classes = report["class_names"]
    left, right = st.columns([1, 1])
    with left:
        st.plotly_chart(confusion(model["metrics"]["confusion_matrix"], classes, f"{model['label']}: confusion matrix"),
                        key=f"{key}.cm")  # fmt: skip
    with right:
        st.markdown("**Per class: precision, recall, F1, false positives / negatives**")
        per_class_table(model, key)
        st.markdown("**Most confused pairs**")
        table(pd.DataFrame(model["errors"]["most_confused"]), hide_index=True, key=f"{key}.pairs")
    if report.get("task", "image") == "image":  # text explanations live on the sentiment page
        st.subheader("Explain a prediction (SHAP)")
        shap_section(report, key)
    if report.get("comparisons"):
        st.subheader("Significance tests")
        significance_table(report, key)


HISTORY_COLUMNS = {
    "train_loss": ("training loss", "%.4f"),
    "val_loss": ("validation loss", "%.4f"),
    "train_accuracy": ("training accuracy", "percent"),
    "val_accuracy": ("validation accuracy", "percent"),
    "seconds": ("seconds", "%.2f"),
}


def history_table(hist: pd.DataFrame) -> Any:
    """The per-epoch table with human column names and the one format per quantity."""
    df = hist.drop(columns=[c for c in ("family",) if c in hist])
    out = pd.DataFrame({"model": df["model"], "epoch": df["epoch"]})
    for c, (label, fmt) in HISTORY_COLUMNS.items():
        if c in df:
            out[label] = [fmt_pct(v) if fmt == "percent" else ("—" if v is None or v != v else fmt % v) for v in df[c]]
    return out


# --- saved runs ------------------------------------------------------------------------------------------------


def run_models(run: dict[str, Any]) -> list[str]:
    """The model names of a listed run: from its params, else from its test metrics."""
    listed = (run.get("params") or {}).get("models", "")
    if listed:
        return [m for m in listed.split(",") if m]
    return sorted({k.split(".", 1)[0] for k in run.get("metrics", {}) if ".test_" in k})


def run_best(run: dict[str, Any], models: list[str]) -> tuple[str, float] | None:
    """(model, accuracy) of the best model of a listed run, by the mean over seeds where it was logged."""
    metrics = run.get("metrics", {})
    scores = {}
    for m in models:
        v = metrics.get(f"{m}.test_accuracy_seed_mean", metrics.get(f"{m}.test_accuracy"))
        if v is not None:
            scores[m] = float(v)
    if not scores:
        return None
    best = max(scores, key=scores.get)
    return best, scores[best]


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """What kind of run a listed run is (bench.settings.run_kind), from its logged params."""
    from bench.run.settings import run_kind

    params = run.get("params")
    if params is None:
        return {"full_data": None, "default": None, "summary": "settings unknown", "diffs": [], "max_samples": 0}
    return run_kind(run.get("task", ""), run.get("dataset", ""), run_models(run), params)


def prefer_new_run(widget_key: str, run_id: str | None, options: list[str]) -> None:
    """Preselect `run_id` in the run picker `widget_key` once, when it is new to this session (the user just
    trained it): a picker drawn before the training otherwise keeps its older choice across reruns."""
    seen = f"{widget_key}.preferred"
    if run_id and run_id in options and st.session_state.get(seen) != run_id:
        st.session_state[widget_key] = run_id
        st.session_state[seen] = run_id


def saved_run_label(run: dict[str, Any]) -> str:
    """One line per saved run: dataset, best model with its accuracy, settings, models, seed, time, id."""
    task = run.get("task", "")
    spec = REGISTRY.get(task)
    models = run_models(run)
    names = [spec.models[m].label if spec and m in spec.models else m for m in models]
    best = run_best(run, models)
    best_text = ""
    if best is not None:
        label = spec.models[best[0]].label if spec and best[0] in spec.models else best[0]
        best_text = f"best {label} {fmt_pct(best[1])} · "
    shown = ", ".join(names[:4]) + (f" +{len(names) - 4}" if len(names) > 4 else "")
    return (
        f"{dataset_label(task, run.get('dataset', ''))} · {best_text}{run_summary(run)['summary']} · "
        f"{len(names)} models ({shown}) · seed {run.get('seed', '?')} · {format_time(run.get('start_time'))} · "
        f"{run['run_id'][:8]}"
    )


def short_run_label(run: dict[str, Any]) -> str:
    """One short line per saved run: dataset, seed, time, id."""
    return f"{run['dataset']} · seed {run['seed']} · {format_time(run['start_time'])} · {run['run_id'][:8]}"


def saved_runs_tab(
    task: str,
    key: str,
    show: Callable[[dict[str, Any], str], None],
    label: Callable[[dict[str, Any]], str] = short_run_label,
    widget_prefix: str | None = None,
) -> None:
    """A task page's Saved runs tab: pick one of the task's stored runs and show its report.

    The chosen run id is kept in session state `<key>.saved`; `show(report, "<key>.saved")` draws it. The
    select box and button are `<widget_prefix>saved_run` / `<widget_prefix>load_run` (prefix: `<key>.`).
    A store or report that cannot be read is a short message; the details go to the server log.
    """
    prefix = f"{key}." if widget_prefix is None else widget_prefix
    try:
        runs = run_store().list_runs(task)
    except Exception:  # the store is optional for the rest of the page
        logger.exception("listing the saved %s runs failed", task)
        runs = []
        st.error("The run store could not be read; the details are in the server log.")
    if not runs:
        st.info(f"No saved {task} runs yet.")
        return
    options = {r["run_id"]: label(r) for r in runs}
    run_id = st.selectbox("Saved run", list(options), format_func=options.get, key=f"{prefix}saved_run")
    if st.button("Show saved run", key=f"{prefix}load_run"):
        st.session_state[f"{key}.saved"] = run_id
    chosen = st.session_state.get(f"{key}.saved")
    if chosen:
        try:
            show(load_report(chosen), f"{key}.saved")
        except Exception:  # a missing artifact is a message, not a crash
            logger.exception("showing saved run %s failed", chosen)
            st.error(f"Could not load run {chosen[:8]}; the details are in the server log.")


# --- Jobs: submit a benchmark request and follow it live (bench/exec/jobs.py) ------------------------------------


def job_executor() -> Any:
    """The process-wide job executor (bench.default_executor.get_executor); its forkserver is warmed up on first use."""
    from bench.exec.default import get_executor

    executor = get_executor()
    warm_up = getattr(executor, "warm_up", None)
    if warm_up is not None:
        warm_up()
    return executor


# jobs followed by a script run, by id: a later run of the same session finds the one it was interrupted in
_LIVE_JOBS: dict[str, Any] = {}


def _job_progress_text(job: Any, state: dict[str, Any], started: float) -> str:
    from bench.exec.jobs import QUEUED

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
    from bench.exec.jobs import CANCELLED, DONE, RUNNING

    stop_slot = st.empty()
    stop_slot.button(
        "Stop training", key=f"{key}.stop", icon=":material/stop_circle:",
        help="Stops at once; the unfinished run is discarded.",
    )  # fmt: skip
    progress = st.progress(0.0, text="Starting ...")
    live = st.empty()
    from data.guard import ServerBusy

    try:
        job = job_executor().submit(request, store=run_store() if store else False)
    except ServerBusy as exc:  # the queue is full: say so, start nothing
        stop_slot.empty()
        progress.empty()
        st.warning(str(exc), icon=":material/hourglass_top:")
        return None
    _LIVE_JOBS[job.id] = job
    # written before the loop (a value set while Streamlit interrupts the script may not survive the rerun)
    st.session_state[f"{key}.running"] = job.id
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
            ended = job.wait(10)  # the worker is stopping; a slow store only delays the final bookkeeping
            st.session_state[f"{key}.outcome"] = {"status": job.status if ended else CANCELLED, "report": job.result(),
                                                  "error": job.error, "error_kind": job.error_kind}  # fmt: skip
    stop_slot.empty()
    live.empty()
    if job.status == DONE:
        progress.progress(1.0, text="Done")
    else:
        progress.empty()
        _show_job_end(job.status, job.error, job.error_kind)
    st.session_state.pop(f"{key}.outcome", None)
    st.session_state.pop(f"{key}.running", None)
    _LIVE_JOBS.pop(job.id, None)
    return job.result()


def _show_job_end(status: str, error: str | None, kind: str | None) -> None:
    from bench.exec.jobs import CANCELLED

    if status == CANCELLED:
        st.info("Training stopped; the unfinished run was discarded.", icon=":material/stop_circle:")
    elif kind == "user":
        st.error(f"Cannot train: {say(error)}", icon=":material/error:")
    else:
        st.error(f"Training failed: {say(error)}", icon=":material/error:")


def job_notice(key: str) -> dict[str, Any] | None:
    """After `run_job(..., key)` was interrupted (Stop, a rerun, a closed tab): say what really happened.

    Returns the report when the job had finished before the stop reached it (the caller shows it), else None.
    """
    from bench.exec.jobs import CANCELLED, DONE

    outcome = st.session_state.pop(f"{key}.outcome", None)
    running = _LIVE_JOBS.pop(st.session_state.pop(f"{key}.running", None) or "", None)
    if outcome is None and running is not None:  # interrupted, and the outcome was not kept: ask the job itself
        running.cancel()
        ended = running.wait(10)
        outcome = {"status": running.status if ended else CANCELLED, "report": running.result(),
                   "error": running.error, "error_kind": running.error_kind}  # fmt: skip
    if outcome is None:
        return None
    if outcome["status"] == DONE:
        st.info("The training had already finished when it was stopped: its results are shown below.",
                icon=":material/check_circle:")  # fmt: skip
        return outcome["report"]
    _show_job_end(outcome["status"], outcome.get("error"), outcome.get("error_kind"))
    return None
