"""Self-contained HTML reports (charts with plotly.js inlined, every text escaped) and CSV tables made safe
for spreadsheets. Used by the claims report, sweep exports and run comparisons."""

from __future__ import annotations

import html
import io
import re
import zipfile
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from data.text import neutralise_cell
from models.redact import redact


def safe_csv(df: pd.DataFrame) -> str:
    """The table as CSV text with formula-like strings (cells and headers) neutralised and credentials redacted."""
    out = df.copy()
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].map(lambda v: neutralise_cell(redact(v) if isinstance(v, str) else v))
    return out.to_csv(index=False)


def slug(text: str) -> str:
    """A file-name-safe short name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "table"


def tables_zip(tables: dict[str, pd.DataFrame]) -> bytes:
    """Every table as `<name>.csv` in one zip archive."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, df in tables.items():
            zf.writestr(f"{slug(name)}.csv", safe_csv(df))
    return buf.getvalue()


def _table_html(df: pd.DataFrame) -> str:
    shown = df.copy()
    for col in shown.columns:
        if shown[col].dtype.kind == "f":
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
        elif shown[col].dtype.kind == "O":  # settings, errors, sources: no credential in a report
            shown[col] = shown[col].map(lambda v: redact(v) if isinstance(v, str) else v)
    return shown.to_html(index=False, escape=True, border=0, classes="t", na_rep="")


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
h1{margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table.t{border-collapse:collapse;font-size:.9rem;margin:.6rem 0} table.t th,table.t td{border:1px solid #ddd;
padding:.25rem .5rem;text-align:left;vertical-align:top} table.t th{background:#f4f4f4}
.note{color:#555;font-size:.9rem} .ok{color:#1a7f37} .bad{color:#b42318} .na{color:#888}
"""


def render_html(title: str, intro: list[str], sections: list[dict[str, Any]]) -> str:
    """One HTML page: sections of {"title", "paragraphs": [str], "tables": {name: DataFrame},
    "figures": [plotly Figure]}. Text is escaped and redacted (no credential, models/redact.py); plotly.js is
    inlined once so the file works offline."""
    from plotly.offline import get_plotlyjs

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(redact(title))}</title><style>{STYLE}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(redact(title))}</h1>",
        f"<p class='note'>Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by NeuralBench.</p>",
    ]
    parts += [f"<p>{html.escape(redact(p))}</p>" for p in intro]
    for s in sections:
        parts.append(f"<h2>{html.escape(redact(s['title']))}</h2>")
        parts += [f"<p>{html.escape(redact(p))}</p>" for p in s.get("paragraphs", [])]
        for name, df in s.get("tables", {}).items():
            parts.append(f"<p class='note'>{html.escape(name)}</p>")
            parts.append(_table_html(df))
        for fig in s.get("figures", []):
            parts.append(fig.to_html(full_html=False, include_plotlyjs=False, default_height=420))
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------- sweep charts


def sweep_tables(summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Cells, per-factor tables, best-vs-rest tests and trials of a sweep summary as DataFrames."""
    metric = summary["metric"]
    cells = pd.DataFrame(summary["cells"])
    if not cells.empty:
        cells = cells.drop(columns=["cell"]).rename(columns={"mean": f"{metric} mean", "sd": f"{metric} sd"})
        cells["run_ids"] = cells["run_ids"].map(lambda ids: " ".join(ids))
        cells["seeds"] = cells["seeds"].map(lambda s: " ".join(map(str, s)))
    out = {"cells": cells}
    for name, rows in summary["factors"].items():
        out[f"factor {name}"] = pd.DataFrame(rows)
    out["best vs rest"] = pd.DataFrame(summary["tests"])
    trials = [{k: v for k, v in t.items() if k not in ("history", "baselines", "params")} for t in summary["trials"]]
    out["trials"] = pd.DataFrame(trials)
    return out


def sweep_figures(summary: dict[str, Any]) -> dict[str, go.Figure]:
    """Metric per cell with CIs, metric by epoch per setting, and (with a size factor) time and metric vs size."""
    metric = summary["metric"]
    figs: dict[str, go.Figure] = {}
    cells = pd.DataFrame([c for c in summary["cells"] if c["mean"] is not None])
    if not cells.empty:
        cells["plus"] = (cells["ci_high"] - cells["mean"]).fillna(0)
        cells["minus"] = (cells["mean"] - cells["ci_low"]).fillna(0)
        fig = px.bar(cells, x="label", y="mean", error_y="plus", error_y_minus="minus", hover_data=["n", "sd"],
                     title=f"{metric}: mean over seeds with 95% t-interval")  # fmt: skip
        fig.update_layout(xaxis_title="setting", yaxis_title=metric, height=400)
        figs["cells"] = fig
    curves = pd.DataFrame(summary["curves"])
    if not curves.empty:
        what = "validation accuracy" if metric == "accuracy" else "validation loss"
        fig = px.line(curves, x="epoch", y="value", color="setting", markers=True,
                      title=f"{what} by epoch (mean over seeds)")  # fmt: skip
        fig.update_layout(yaxis_title=what, height=400)
        figs["curves"] = fig
    scaling = summary.get("scaling")
    if scaling and scaling["points"]:
        pts = pd.DataFrame(scaling["points"])
        fig = px.scatter(pts, x="size", y="train_seconds", color="model", log_x=True, log_y=True,
                         title="training time against training-set size (log-log) with the fitted slope")  # fmt: skip
        for model, fit in scaling["fits"].items():
            if fit:
                xs = [float(pts[pts.model == model]["size"].min()), fit["extrapolated_size"]]
                ys = [10 ** (fit["intercept"]) * x ** fit["slope"] for x in xs]
                fig.add_scatter(x=xs, y=ys, mode="lines", line={"dash": "dot"},
                                name=f"{model}: slope {fit['slope']:.2f}, {fit['extrapolated_size']:,} samples "
                                f"-> {fit['extrapolated_seconds']:.1f} s")  # fmt: skip
        fig.update_layout(xaxis_title="training samples", yaxis_title="train seconds", height=420)
        figs["time_vs_size"] = fig
        mean = pts.groupby(["model", "size"], as_index=False)["metric"].mean()
        fig = px.line(mean, x="size", y="metric", color="model", markers=True, log_x=True,
                      title=f"{metric} against training-set size: the net and the classical baselines")  # fmt: skip
        fig.update_layout(xaxis_title="training samples", yaxis_title=metric, height=420)
        figs["metric_vs_size"] = fig
    return figs


def sweep_html(summary: dict[str, Any]) -> str:
    """A sweep summary as a self-contained HTML page."""
    spec = summary["spec"]
    intro = [
        f"Sweep {summary['sweep_id']}: task {spec['task']}, dataset {spec['dataset']}, model {spec['model']}, "
        f"grid {spec['grid']}, seeds {spec['seeds']}; {summary['finished']} of {summary['n_trials']} trials finished"
        f" ({summary['failed']} failed). Best setting: {summary['best']}. Every trial is a stored run (run ids below).",
    ]
    tests = summary["tests"]
    paragraphs = [
        f"{t['best']} vs {t['other']}: difference {t['difference']:+.4f}, {t['test']}, p = "
        + (f"{t['p_value']:.3g}" + (" (significant)" if t["significant"] else " (not significant)")
           if t["p_value"] is not None else "n/a")
        for t in tests
    ]  # fmt: skip
    fits = (summary.get("scaling") or {}).get("fits", {})
    paragraphs += [
        f"{m}: training time grows as size^{f['slope']:.2f}; extrapolated to {f['extrapolated_size']:,} samples: "
        f"{f['extrapolated_seconds']:.1f} s." for m, f in fits.items() if f
    ]
    section = {"title": "Results", "paragraphs": paragraphs, "tables": sweep_tables(summary),
               "figures": list(sweep_figures(summary).values())}  # fmt: skip
    return render_html(f"NeuralBench sweep {summary['sweep_id']}", intro, [section])
