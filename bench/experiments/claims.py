"""The claims report: a popular article's tables about neural nets, each reproduced from real stored runs.

For every table the report puts the article's figure beside the measured one (with its 95% interval and
the run ids it comes from) and says plainly where they disagree. Measurements are found in the run store
by their recipe tag (`neuralbench.claim`), and run when missing (`python -m bench report`). Tasks that are
not in this build's registry are reported as "not measured".

Every measured number carries a `source` that `trace()` recomputes from the stored runs alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from bench.experiments.report import render_html, safe_csv, slug, sweep_figures
from bench.experiments.sweep import load_sweep, run_sweep
from bench.experiments.trials import TAG_LABEL, SweepSpec, primary_metric, run_once, tag_run
from bench.tasks import REGISTRY, get_task
from models.config import TrainConfig
from models.redact import redact

TAG_CLAIM = "neuralbench.claim"
Log = Callable[[str], None]


@dataclass(frozen=True)
class Profile:
    """How much is run for the report. `standard` is the documented setting; `fast` is for tests."""

    name: str
    seeds: tuple[int, ...]
    max_samples: int  # 0 = the whole training split
    epochs: int  # 0 = the dataset's default
    size_dataset: str
    sizes: tuple[int, ...]  # 0 = full
    size_epochs: int
    curve_epochs: int
    image_repeats: int
    text_max_samples: int
    forecast_max_samples: int
    text_neural: str = ""  # the sentiment net to measure ("" = the task's default neural model)
    text_neural_full: bool = False  # fine-tune it on the whole training split, not the page's quick subset


PROFILES = {
    "standard": Profile("standard", (0, 1, 2), 0, 0, "fashion-mnist", (1_000, 10_000, 0), 3, 100, 3, 0, 0),
    "fast": Profile("fast", (0, 1), 300, 1, "mnist-5k", (100, 300), 1, 3, 1, 400, 600, "scratch"),
}
# standard, with the sentiment net fine-tuned on all 27k training texts (~17 more minutes on 2 cores)
PROFILES["full"] = dataclasses.replace(PROFILES["standard"], name="full", text_neural_full=True)
IMAGE_MODELS = ("cnn", "mlp", "logreg", "svm", "rf", "knn", "majority")


class Ctx:
    """Store, profile, backend and a log line printer shared by every section."""

    def __init__(self, store: Any, profile: Profile, backend: str, run_missing: bool, log: Log | None) -> None:
        self.store, self.profile, self.backend, self.run_missing = store, profile, backend, run_missing
        self.log = log or (lambda _msg: None)
        self.missing: list[str] = []

    def key(self, name: str) -> str:
        return f"{self.profile.name}:{name}"


class NotMeasured(Exception):
    """The measurement is not in the store and was not run (or cannot be run here)."""


# ------------------------------------------------------------------------------ finding or running runs


def _search(store: Any, filter_string: str, max_results: int = 1) -> list[Any]:
    from mlflow.entities import ViewType

    exps = [e.experiment_id for e in store.client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
            if e.name.startswith("neuralbench-")]  # fmt: skip
    if not exps:
        return []
    return store.client.search_runs(
        exps, filter_string=f"attributes.status = 'FINISHED' and {filter_string}",
        order_by=["attributes.start_time DESC"], max_results=max_results,
    )  # fmt: skip


def claim_run(ctx: Ctx, name: str, task: str, dataset: str, models: list[str], **kw: Any) -> dict[str, Any]:
    """The latest stored run of this recipe, or a new one when missing (and allowed)."""
    key = ctx.key(name)
    found = _search(ctx.store, f"tags.\"{TAG_CLAIM}\" = '{key}'")
    if found:
        return ctx.store.load_report(found[0].info.run_id)
    if not ctx.run_missing:
        ctx.missing.append(key)
        raise NotMeasured(f"no stored run for {key} (run `python -m bench report` to measure it)")
    ctx.log(f"running {key}: {task}/{dataset} {', '.join(models)}")
    report = run_once(task, dataset, models, store=ctx.store, seed=kw.pop("seed", 0), configs=kw.pop("configs", {}),
                         **kw)  # fmt: skip
    tag_run(ctx.store, report["run_id"], {TAG_CLAIM: key})
    return report


def claim_sweep(ctx: Ctx, name: str, spec_kw: dict[str, Any]) -> dict[str, Any]:
    """The latest complete stored sweep of this recipe, or a new one when missing (and allowed)."""
    key = ctx.key(name)
    found = _search(ctx.store, f"tags.\"{TAG_LABEL}\" = 'claims:{key}'", max_results=50)
    for sid in dict.fromkeys(r.data.tags["neuralbench.sweep"] for r in found):
        summary = load_sweep(ctx.store, sid)
        if summary["status"] == "complete":
            return summary
    if not ctx.run_missing:
        ctx.missing.append(key)
        raise NotMeasured(f"no complete stored sweep for {key} (run `python -m bench report` to measure it)")
    spec = SweepSpec.build(label=f"claims:{key}", **spec_kw)
    ctx.log(f"running sweep {key}: {spec.n_trials} trials on {ctx.backend}")
    return run_sweep(spec, backend=ctx.backend, store=ctx.store)


def _train(ctx: Ctx, dataset: str, task: str = "image", **changes: Any) -> TrainConfig:
    tcfg = get_task(task).datasets[dataset].default_train_config(0)
    if ctx.profile.epochs:
        changes.setdefault("epochs", ctx.profile.epochs)
    return dataclasses.replace(tcfg, **changes)


# -------------------------------------------------------------------------------------- rows and verdicts


def pct(v: float | None) -> str:
    return "" if v is None else f"{v:.1%}"


def row(item: str, article: str, article_value: float | None, measured: float | None, text: str,
        source: dict[str, Any] | None, ci: tuple[float | None, float | None] = (None, None), n: int | None = None,
        verdict: str | None = None, run_ids: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """One line of a claims table."""
    ids = run_ids or ([source["run_id"]] if source and "run_id" in source else (source or {}).get("run_ids", []))
    return {
        "item": item, "article": article, "article_value": article_value, "measured": measured,
        "measured_text": text, "ci_low": ci[0], "ci_high": ci[1], "n": n,
        "verdict": verdict if verdict is not None else accuracy_verdict(article_value, measured, ci),
        "run_ids": " ".join(i for i in ids if i), "source": source,
    }  # fmt: skip


def accuracy_verdict(article: float | None, measured: float | None, ci: tuple[float | None, float | None]) -> str:
    """Agrees when the article's figure lies inside the measured 95% interval; otherwise by how much it misses."""
    if measured is None:
        return "not measured"
    if article is None:
        return "no figure in the article to compare"
    lo, hi = ci
    if lo is not None and hi is not None and lo <= article <= hi:
        return "agrees (the article's figure is inside the measured 95% interval)"
    diff = (measured - article) * 100
    where = "no interval" if lo is None else f"95% interval {lo:.1%} to {hi:.1%}"
    return f"disagrees: measured {abs(diff):.1f} points {'higher' if diff > 0 else 'lower'} ({where})"


def _model(report: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((m for m in report["models"] if m["name"] == name), None)


def _metric_row(report: dict, name: str, item: str, article: str, value: float | None, metric: str) -> dict:
    m = _model(report, name)
    if m is None:
        return row(item, article, value, None, "model not in the run", None, verdict="not measured")
    v = float(m["metrics"][metric])
    ci = m["metrics"].get(f"{metric}_ci") or (None, None)
    seeds = m["metrics"].get("seed_runs") or []
    text = pct(v) if metric == "accuracy" else f"{v:.4g}"
    if len(seeds) > 1 and m["metrics"].get("accuracy_seed_sd") is not None and metric == "accuracy":
        text += f" (over {len(seeds)} seeds: {m['metrics']['accuracy_seed_mean']:.1%} ± {m['metrics']['accuracy_seed_sd']:.1%} sd)"
    src = {"kind": "metric", "run_id": report["run_id"], "model": name, "key": metric}
    return row(f"{item}: {m['label']}", article, value, v, text, src, (ci[0], ci[1]), len(seeds) or 1)


def _sweep_rows(summary: dict, factor: str, article: dict[Any, float | None], fmt: Callable[[Any], str]) -> list[dict]:
    rows = []
    metric = summary["metric"]
    for c in summary["cells"]:
        value = c[factor]
        a = article.get(value)
        src = {"kind": "mean", "run_ids": c["run_ids"], "model": summary["spec"]["model"], "key": metric}
        text = "no finished trial" if c["mean"] is None else (
            f"{c['mean']:.1%} ± {c['sd']:.1%} sd" if c["sd"] is not None else f"{c['mean']:.1%}")
        if c["failed"]:
            text += f"; {c['failed']} trial(s) failed"
        rows.append(row(fmt(value), pct(a) if a is not None else "", a, c["mean"], text, src if c["run_ids"] else None,
                        (c["ci_low"], c["ci_high"]), c["n"]))  # fmt: skip
    return rows


def _tests_text(summary: dict[str, Any]) -> list[str]:
    out = [f"Best setting: {summary['best']} ({summary['finished']} trials over seeds {summary['spec']['seeds']})."]
    for t in summary["tests"]:
        if t["p_value"] is None:
            out.append(f"{t['best']} vs {t['other']}: {t['test']}.")
        else:
            sig = "significant" if t["significant"] else "not significant"
            out.append(f"{t['best']} vs {t['other']}: {t['difference'] * 100:+.1f} points, {t['test']} p = "
                       f"{t['p_value']:.3g} ({sig} at 0.05).")  # fmt: skip
    return out


def _article_vs_measured_figure(rows: list[dict], title: str, percent: bool = True) -> go.Figure:
    df = pd.DataFrame([r for r in rows if r["measured"] is not None or r["article_value"] is not None])
    fig = go.Figure()
    if df.empty:
        return fig
    err_plus = (df["ci_high"] - df["measured"]).where(df["ci_high"].notna(), 0)
    err_minus = (df["measured"] - df["ci_low"]).where(df["ci_low"].notna(), 0)
    fig.add_bar(x=df["item"], y=df["measured"], name="measured",
                error_y={"type": "data", "array": err_plus, "arrayminus": err_minus})  # fmt: skip
    fig.add_scatter(x=df["item"], y=df["article_value"], mode="markers", name="article",
                    marker={"symbol": "diamond", "size": 12, "color": "crimson"})  # fmt: skip
    fig.update_layout(title=title, height=420, yaxis_tickformat=".0%" if percent else None)
    return fig


# ------------------------------------------------------------------------------------------------ sections


def _section(key: str, title: str, claim: str) -> dict[str, Any]:
    return {"key": key, "title": title, "claim": claim, "status": "measured", "rows": [], "paragraphs": [],
            "figures": []}  # fmt: skip


def image_section(ctx: Ctx) -> list[dict[str, Any]]:
    """Image recognition, model comparison and error analysis: one stored image run."""
    p = ctx.profile
    report = claim_run(ctx, "image-models", "image", "mnist-5k", list(IMAGE_MODELS), repeats=p.image_repeats,
                       train_config=_train(ctx, "mnist-5k"), max_samples=p.max_samples)  # fmt: skip
    setting = (f"MNIST-5k ({report['split']['train']} training / {report['split']['test']} test digits, "
               f"{report['data_source']}), seed {report['seed']}, {report.get('repeats', 1)} seed(s) for the "
               "seed-dependent models. The article does not say which data its figures come from.")  # fmt: skip
    s1 = _section("image", "Image recognition", "traditional ML 85%, CNN 98%, deep neural network 99.5%")
    for name in ("logreg", "svm", "rf", "knn"):
        s1["rows"].append(_metric_row(report, name, "traditional ML", "85%", 0.85, "accuracy"))
    s1["rows"].append(_metric_row(report, "cnn", "CNN", "98%", 0.98, "accuracy"))
    s1["rows"].append(_metric_row(report, "mlp", "deep neural network", "99.5%", 0.995, "accuracy"))
    s1["paragraphs"].append(setting)
    s1["figures"].append(_article_vs_measured_figure(s1["rows"], "Image recognition: measured (95% CI) vs article"))

    s2 = _section("comparison", "Test performance / model comparison",
                  "neural network 94%, random forest 88%, logistic regression 80%")  # fmt: skip
    s2["rows"] += [
        _metric_row(report, "cnn", "neural network", "94%", 0.94, "accuracy"),
        _metric_row(report, "mlp", "neural network", "94%", 0.94, "accuracy"),
        _metric_row(report, "rf", "random forest", "88%", 0.88, "accuracy"),
        _metric_row(report, "logreg", "logistic regression", "80%", 0.80, "accuracy"),
    ]
    s2["paragraphs"].append(setting + " The significance of the best neural vs the best classical model: "
                            + " ".join(c["verdict"] for c in report.get("comparisons", []) if c.get("primary")))
    s2["figures"].append(_article_vs_measured_figure(s2["rows"], "Model comparison: measured vs article"))

    s3 = _section("errors", "Error analysis", "false positives 25, false negatives 18, misclassifications 11")
    cnn = _model(report, "cnn")
    if cnn is not None:
        n_test = report["split"]["test"]
        cm = np.asarray(cnn["metrics"]["confusion_matrix"])
        wrong = int(cm.sum() - np.trace(cm))
        per = cnn["errors"]["per_class"]
        worst = max(per, key=lambda r: r["false_positives"] + r["false_negatives"])
        rid = report["run_id"]
        s3["rows"] += [
            row("misclassifications (CNN, whole test set)", "11", 11, wrong, f"{wrong} of {n_test}",
                {"kind": "count", "run_id": rid, "model": "cnn", "what": "wrong"},
                verdict=_count_verdict(11, wrong)),
            row("false positives (summed over classes)", "25", 25, wrong, f"{wrong}",
                {"kind": "count", "run_id": rid, "model": "cnn", "what": "fp_total"},
                verdict="in a multi-class task every error is one false positive and one false negative"),
            row(f"false positives of the worst class ('{worst['class']}')", "25", 25, worst["false_positives"],
                str(worst["false_positives"]),
                {"kind": "count", "run_id": rid, "model": "cnn", "what": "fp", "class": worst["class"]},
                verdict=_count_verdict(25, worst["false_positives"])),
            row(f"false negatives of the worst class ('{worst['class']}')", "18", 18, worst["false_negatives"],
                str(worst["false_negatives"]),
                {"kind": "count", "run_id": rid, "model": "cnn", "what": "fn", "class": worst["class"]},
                verdict=_count_verdict(18, worst["false_negatives"])),
        ]  # fmt: skip
        s3["paragraphs"] += [
            "The article's three figures cannot all hold for one classifier: in a two-class problem the "
            "misclassifications are the false positives plus the false negatives (25 + 18 = 43, not 11), and "
            "raw counts mean nothing without the test-set size, which the article does not give.",
            setting,
        ]
    return [s1, s2, s3]


def _count_verdict(article: int, measured: int) -> str:
    return "same count" if article == measured else f"differs by {measured - article:+d} (counts depend on the test size)"


def _role(task: Any, words: tuple[str, ...], family: str | None = None) -> str | None:
    for name, m in task.models.items():
        if family is not None and m.family != family:
            continue
        if not words or any(w in name.lower() or w in m.label.lower() for w in words):
            return name
    return None


def sentiment_section(ctx: Ctx) -> list[dict[str, Any]]:
    """Sentiment: logistic regression, SVM and the neural net of the sentiment task, when it exists."""
    s = _section("sentiment", "Sentiment", "logistic regression 80%, SVM 84%, neural network 92%")
    if "sentiment" not in REGISTRY:
        return [_not_measured(s, "the sentiment task is not in this build's registry")]
    task = REGISTRY["sentiment"]
    roles = [("logistic regression", "80%", 0.80, _role(task, ("logreg", "logistic"), "classical")),
             ("SVM", "84%", 0.84, _role(task, ("svm",), "classical")),
             ("neural network", "92%", 0.92, ctx.profile.text_neural if ctx.profile.text_neural in task.models
              else _neural_pick(task))]  # fmt: skip
    models = [m for _, _, _, m in roles if m]
    if not models:
        return [_not_measured(s, "the sentiment task has none of these models")]
    dataset = next(iter(task.datasets))
    configs = {}
    neural = roles[2][3]
    if neural and ctx.profile.text_neural_full and not ctx.profile.text_max_samples:  # not the page's subset
        cfg = task.models[neural].default_config(dataset)
        if getattr(cfg, "max_train_samples", 0):
            configs[neural] = dataclasses.replace(cfg, max_train_samples=0)
    report = claim_run(ctx, "sentiment-models", "sentiment", dataset, models, max_samples=ctx.profile.text_max_samples,
                       train_config=_train(ctx, dataset, "sentiment") if _has_neural(task, models) else None,
                       configs=configs)  # fmt: skip
    metric, _ = primary_metric("sentiment")
    for item, art, val, name in roles:
        if name is None:
            s["rows"].append(row(item, art, val, None, "no such model in the sentiment task", None,
                                 verdict="not measured"))  # fmt: skip
        else:
            s["rows"].append(_metric_row(report, name, item, art, val, metric))
    s["paragraphs"].append(f"{report['dataset']}: {report.get('data_source', '')}; split {report.get('split')}, "
                           f"seed {report['seed']}.")  # fmt: skip
    s["paragraphs"].append("Training texts per model: " + ", ".join(
        f"{m['label']} {m.get('train_samples') or 0:,}" for m in report["models"]) + ".")  # fmt: skip
    s["figures"].append(_article_vs_measured_figure(s["rows"], "Sentiment: measured vs article"))
    return [s]


def _neural_pick(task: Any) -> str | None:
    """The task's default neural model (the first neural model in its default list)."""
    for name in getattr(task, "default_models", ()):
        if task.models[name].family == "neural":
            return name
    return _role(task, (), "neural")


def _has_neural(task: Any, models: list[str]) -> bool:
    return any(task.models[m].family == "neural" for m in models)


def forecast_section(ctx: Ctx) -> list[dict[str, Any]]:
    """Stock prediction MAE: linear regression, ARIMA, LSTM of the forecast task, when it exists."""
    s = _section("forecast", "Stock prediction (MAE)", "linear regression 0.15, ARIMA 0.12, LSTM 0.08")
    if "forecast" not in REGISTRY:
        return [_not_measured(s, "the forecast task is not in this build's registry")]
    task = REGISTRY["forecast"]
    roles = [("linear regression", 0.15, _role(task, ("linear", "linreg"))), ("ARIMA", 0.12, _role(task, ("arima",))),
             ("LSTM", 0.08, _role(task, ("lstm",), "neural") or _neural_pick(task))]  # fmt: skip
    naive = _role(task, ("naive", "last"), "naive") or _role(task, (), "naive")
    models = list(dict.fromkeys(m for m in [*(r[2] for r in roles), naive] if m))
    if not models:
        return [_not_measured(s, "the forecast task has none of these models")]
    dataset = next(iter(task.datasets))
    report = claim_run(ctx, "forecast-models", "forecast", dataset, models,
                       max_samples=ctx.profile.forecast_max_samples,
                       train_config=_train(ctx, dataset, "forecast") if _has_neural(task, models) else None)  # fmt: skip
    metric, _ = primary_metric("forecast")
    naive_mae = None
    if naive and _model(report, naive):
        naive_mae = float(_model(report, naive)["metrics"][metric])
    for item, val, name in roles:
        m = _model(report, name) if name else None
        if m is None:
            s["rows"].append(row(item, f"{val}", val, None, "no such model", None, verdict="not measured"))
            continue
        v = float(m["metrics"][metric])
        rel = f"; {v / naive_mae:.3f}x the naive forecast's" if naive_mae else ""
        s["rows"].append(row(f"{item}: {m['label']}", f"{val}", val, v, f"{metric} {v:.4g}{rel}",
                             {"kind": "metric", "run_id": report["run_id"], "model": name, "key": metric},
                             verdict="not comparable as a number: the article gives no units, asset or period"))  # fmt: skip
    measured = [(r["item"], r["measured"]) for r in s["rows"] if r["measured"] is not None]
    if measured:
        order = " < ".join(i for i, _ in sorted(measured, key=lambda t: t[1]))
        s["paragraphs"].append(f"The article ranks LSTM < ARIMA < linear regression (lower is better). Measured "
                               f"ranking: {order}." + (f" The naive last-value forecast scores {naive_mae:.4g}."
                                                         if naive_mae else ""))  # fmt: skip
    s["paragraphs"].append(f"{report['dataset']}: {report.get('data_source', '')}; seed {report['seed']}.")
    s["paragraphs"] += [c["verdict"] for c in report.get("comparisons", []) if c.get("verdict")]
    return [s]


def _not_measured(s: dict[str, Any], why: str) -> dict[str, Any]:
    s["status"] = "not measured"
    s["paragraphs"].append(f"Not measured: {redact(why)}.")
    return s


def _mlp_sweep(ctx: Ctx, name: str, grid: dict, **kw: Any) -> dict[str, Any]:
    p = ctx.profile
    train = dict(kw.pop("train_overrides", {}))
    if p.epochs:
        train.setdefault("epochs", p.epochs)
    spec_kw = {"task": "image", "dataset": "mnist-5k", "model": "mlp", "grid": grid, "seeds": p.seeds,
               "max_samples": p.max_samples, "train_overrides": train, **kw}  # fmt: skip
    return claim_sweep(ctx, name, spec_kw)


def activation_section(ctx: Ctx) -> list[dict[str, Any]]:
    s = _section("activation", "Activation function", "ReLU 89%, Sigmoid 82%, Tanh 87%")
    summary = _mlp_sweep(ctx, "activation", {"activation": ["relu", "sigmoid", "tanh"]})
    s["rows"] = _sweep_rows(summary, "activation", {"relu": 0.89, "sigmoid": 0.82, "tanh": 0.87}, str)
    s["paragraphs"] += [_sweep_setting(summary), *_tests_text(summary)]
    s["figures"] += [_article_vs_measured_figure(s["rows"], "Activation: measured (mean, 95% CI) vs article"),
                     *sweep_figures(summary).values()]  # fmt: skip
    return [s]


def layers_section(ctx: Ctx) -> list[dict[str, Any]]:
    s = _section("layers", "Layers", "input 4, hidden 8, hidden 6, output 1")
    summary = _mlp_sweep(ctx, "layers", {"width": [8, 64, 256]}, model_overrides={"layers": 2})
    s["rows"] = _sweep_rows(summary, "width", {}, lambda w: f"2 hidden layers of {w}")
    for r in s["rows"]:
        r["article"] = "4-8-6-1"
        r["verdict"] = "the article gives a shape, not a result" if r["measured"] is not None else "not measured"
    s["paragraphs"] += [
        "The article's table describes a network shape (4 inputs, hidden layers of 8 and 6, 1 output), not a "
        "measurement: it fits a 4-feature binary problem. For 28x28 digits the input is 784 and the output 10; "
        "measured instead: a 2-hidden-layer MLP at the article's width (8) and wider.",
        _sweep_setting(summary), *_tests_text(summary),
    ]  # fmt: skip
    s["figures"] += list(sweep_figures(summary).values())
    return [s]


def lr_section(ctx: Ctx) -> list[dict[str, Any]]:
    s = _section("lr", "Learning rate", "0.1: 92%, 0.01: 84%, 0.001: 79%")
    summary = _mlp_sweep(ctx, "lr", {"lr": [0.1, 0.01, 0.001]}, train_overrides={"optimizer": "sgd"})
    s["rows"] = _sweep_rows(summary, "lr", {0.1: 0.92, 0.01: 0.84, 0.001: 0.79}, lambda v: f"lr {v}")
    s["paragraphs"] += [
        "SGD with Nesterov momentum 0.9 and a one-cycle schedule peaking at the given rate (the article names no "
        "optimizer; with Adam-type optimizers 0.1 is far too high).", _sweep_setting(summary), *_tests_text(summary),
    ]  # fmt: skip
    s["figures"] += [_article_vs_measured_figure(s["rows"], "Learning rate: measured vs article"),
                     *sweep_figures(summary).values()]  # fmt: skip
    return [s]


def _sweep_setting(summary: dict[str, Any]) -> str:
    sp = summary["spec"]
    size = f"{sp['max_samples']} training samples" if sp["max_samples"] else "the whole training split"
    return (f"Sweep {summary['sweep_id']}: {sp['model']} on {sp['dataset']}, {size}, seeds {sp['seeds']}, "
            f"train overrides {sp['train_overrides'] or 'none'}, model overrides {sp['model_overrides'] or 'none'}; "
            f"{summary['finished']} of {summary['n_trials']} trials finished. Mean over seeds with a 95% t-interval.")


def duration_section(ctx: Ctx) -> list[dict[str, Any]]:
    s = _section("duration", "Training duration", "1,000 samples 2 min, 10,000 15 min, 100,000 2 h")
    p = ctx.profile
    dataset = p.size_dataset
    if not get_task("image").datasets[dataset].availability()[0]:
        dataset = "mnist-5k"
    epochs = p.size_epochs
    summary = claim_sweep(ctx, f"duration-{dataset}", {
        "task": "image", "dataset": dataset, "model": "cnn", "grid": {"size": list(p.sizes)}, "seeds": p.seeds[:1],
        "baselines": ("logreg", "rf"), "train_overrides": {"epochs": epochs, "patience": epochs},
    })  # fmt: skip
    fit = (summary["scaling"] or {}).get("fits", {}).get("cnn")
    article = {1_000: 120.0, 10_000: 900.0, 100_000: 7_200.0}
    trials = sorted((t for t in summary["trials"] if t["status"] == "finished"), key=lambda t: t["train_samples"])
    requested = set()
    for t in trials:
        n = t["params"]["size"] or t["train_samples"]  # the requested subset (the net holds out validation)
        requested.add(n)
        a = article.get(n)
        s["rows"].append(row(f"CNN, {n:,} samples, {t['epochs']} epochs", f"{a / 60:g} min" if a else "", a,
                             t["train_seconds"], f"{t['train_seconds']:.1f} s",
                             {"kind": "metric", "run_id": t["run_id"], "model": "cnn", "key": "train_seconds"},
                             verdict=_time_verdict(a, t["train_seconds"])))  # fmt: skip
    if fit:
        for n in (1_000, 10_000, 100_000):
            if n in requested:
                continue
            est = 10 ** fit["intercept"] * n ** fit["slope"]
            s["rows"].append(row(f"CNN, {n:,} samples (extrapolated)", f"{article[n] / 60:g} min", article[n], est,
                                 f"{est:.1f} s (log-log fit, slope {fit['slope']:.2f})",
                                 {"kind": "extrapolated", "run_ids": [t["run_id"] for t in trials], "model": "cnn",
                                  "size": n}, verdict=_time_verdict(article[n], est)))  # fmt: skip
    s["paragraphs"] += [
        f"CNN trained for a fixed {epochs} epoch(s) (no early stop) on stratified subsets of {dataset}; logistic "
        "regression and a random forest fitted on the same subsets. Times are wall-clock seconds on this machine "
        "(see the environment line); the article names neither hardware, model size nor epochs, so only the "
        "growth rate is comparable: its figures grow as size^"
        f"{math.log10(7200 / 120) / 2:.2f} from 1,000 to 100,000 samples.",
        _sweep_setting(summary),
    ]  # fmt: skip
    s["figures"] += [f for k, f in sweep_figures(summary).items() if k in ("time_vs_size", "metric_vs_size")]
    return [s]


def _time_verdict(article: float | None, seconds: float) -> str:
    if article is None:
        return "no figure in the article for this size"
    ratio = article / seconds if seconds > 0 else float("inf")
    return f"disagrees: {ratio:,.0f}x faster than the article" if ratio > 2 else (
        "agrees within 2x" if ratio >= 0.5 else f"disagrees: {1 / ratio:,.1f}x slower than the article")


def epochs_section(ctx: Ctx) -> list[dict[str, Any]]:
    s = _section("epochs", "Accuracy by epoch", "1: 65%, 10: 85%, 50: 92%, 100: 94%")
    p = ctx.profile
    n = p.curve_epochs
    tcfg = _train(ctx, "mnist-5k", epochs=n, patience=min(200, n))
    report = claim_run(ctx, f"epochs-{n}", "image", "mnist-5k", ["mlp"], train_config=tcfg, max_samples=p.max_samples)
    hist = {h["epoch"]: h for h in _model(report, "mlp")["history"]}
    for epoch, art in ((1, 0.65), (10, 0.85), (50, 0.92), (100, 0.94)):
        h = hist.get(epoch)
        if h is None:
            s["rows"].append(row(f"epoch {epoch}", pct(art), art, None, f"not reached (this profile trains {n} epochs)",
                                 None, verdict="not measured"))  # fmt: skip
            continue
        v = float(h["val_accuracy"])
        s["rows"].append(row(f"epoch {epoch}", pct(art), art, v, pct(v),
                             {"kind": "history", "run_id": report["run_id"], "model": "mlp", "epoch": epoch,
                              "key": "val_accuracy"}, verdict=_epoch_verdict(art, v)))  # fmt: skip
    s["paragraphs"].append(
        f"Deep MLP on MNIST-5k trained for {n} epochs without early stopping; validation accuracy (a stratified "
        f"{report['train_config']['val_fraction']:.0%} of the training split, never the test set) after each epoch. "
        f"Run {report['run_id']}."
    )
    df = pd.DataFrame([{"epoch": e, "validation accuracy": h["val_accuracy"]} for e, h in sorted(hist.items())])
    fig = px.line(df, x="epoch", y="validation accuracy", markers=True, title="Accuracy by epoch: measured vs article")
    fig.add_scatter(x=[1, 10, 50, 100], y=[0.65, 0.85, 0.92, 0.94], mode="markers", name="article",
                    marker={"symbol": "diamond", "size": 12, "color": "crimson"})  # fmt: skip
    s["figures"].append(fig)
    return [s]


def _epoch_verdict(article: float, measured: float) -> str:
    diff = (measured - article) * 100
    return "agrees within 1 point" if abs(diff) <= 1 else f"disagrees: measured {abs(diff):.1f} points {'higher' if diff > 0 else 'lower'}"


SECTIONS: dict[str, Callable[[Ctx], list[dict[str, Any]]]] = {
    "image": image_section,
    "sentiment": sentiment_section,
    "forecast": forecast_section,
    "activation": activation_section,
    "layers": layers_section,
    "lr": lr_section,
    "duration": duration_section,
    "epochs": epochs_section,
}
TITLES = {"image": "Image recognition", "comparison": "Test performance / model comparison",
          "errors": "Error analysis", "sentiment": "Sentiment", "forecast": "Stock prediction (MAE)",
          "activation": "Activation function", "layers": "Layers", "lr": "Learning rate",
          "duration": "Training duration", "epochs": "Accuracy by epoch"}  # fmt: skip
ORDER = ("image", "sentiment", "forecast", "activation", "layers", "lr", "comparison", "duration", "errors", "epochs")


def build_report(
    store: Any,
    profile: str = "standard",
    backend: str = "ray",
    run_missing: bool = True,
    only: tuple[str, ...] = (),
    log: Log | None = None,
) -> dict[str, Any]:
    """Every section (found in the store or measured now), in the article's order; JSON-ready except figures."""
    ctx = Ctx(store, PROFILES[profile], backend, run_missing, log)
    sections: list[dict[str, Any]] = []

    def run_all() -> None:
        for key, fn in SECTIONS.items():
            if only and key not in only:
                continue
            try:
                sections.extend(fn(ctx))
            except NotMeasured as exc:
                for k in ("image", "comparison", "errors") if key == "image" else (key,):
                    sections.append(_not_measured(_section(k, TITLES[k], ""), redact(exc)))

    if backend == "ray" and run_missing:
        from bench.exec import ray_jobs as ray_backend

        with ray_backend.session(store):
            run_all()
    else:
        run_all()
    sections.sort(key=lambda s: ORDER.index(s["key"]) if s["key"] in ORDER else len(ORDER))
    from bench.run.runner import environment

    return {"profile": dataclasses.asdict(ctx.profile), "backend": backend, "sections": sections,
            "environment": environment(), "missing": ctx.missing}  # fmt: skip


# ------------------------------------------------------------------------------------- tracing numbers


def trace(store: Any, source: dict[str, Any]) -> float:
    """Recompute a measured number from the stored runs alone (the report's own tables are not used)."""
    kind = source["kind"]
    if kind == "metric":
        m = _model(store.load_report(source["run_id"]), source["model"])
        return float(m["train_seconds"] if source["key"] == "train_seconds" else m["metrics"][source["key"]])
    if kind == "mean":
        vals = [float(_model(store.load_report(r), source["model"])["metrics"][source["key"]]) for r in source["run_ids"]]
        return float(np.mean(vals))
    if kind == "history":
        m = _model(store.load_report(source["run_id"]), source["model"])
        return float(next(h for h in m["history"] if h["epoch"] == source["epoch"])[source["key"]])
    if kind == "count":
        m = _model(store.load_report(source["run_id"]), source["model"])
        cm = np.asarray(m["metrics"]["confusion_matrix"])
        if source["what"] in ("wrong", "fp_total"):
            return float(cm.sum() - np.trace(cm))
        k = int(np.flatnonzero(np.asarray(store.load_report(source["run_id"])["class_names"]) == source["class"])[0])
        return float(cm[:, k].sum() - cm[k, k]) if source["what"] == "fp" else float(cm[k].sum() - cm[k, k])
    if kind == "extrapolated":
        ms = [_model(store.load_report(r), source["model"]) for r in source["run_ids"]]
        lx = np.log10([m["train_samples"] for m in ms])
        ly = np.log10([m["train_seconds"] for m in ms])
        slope, intercept = np.polyfit(lx, ly, 1)
        return float(10 ** (intercept + slope * math.log10(source["size"])))
    raise ValueError(f"unknown source kind {kind!r}")


# ------------------------------------------------------------------------------------------------ output


def section_table(s: dict[str, Any]) -> pd.DataFrame:
    """A section's rows as a table (sources flattened away; run ids kept)."""
    cols = ["item", "article", "measured_text", "ci_low", "ci_high", "n", "verdict", "run_ids"]
    return pd.DataFrame(s["rows"], columns=[*cols, "measured", "article_value", "source"])[cols].rename(
        columns={"measured_text": "measured", "ci_low": "95% CI low", "ci_high": "95% CI high", "n": "seeds"}
    )


def summary_table(report: dict[str, Any]) -> pd.DataFrame:
    """All sections' rows in one table."""
    frames = [section_table(s).assign(claim=s["title"]) for s in report["sections"] if s["rows"]]
    missing = [pd.DataFrame([{"claim": s["title"], "item": "", "verdict": "not measured: " + " ".join(s["paragraphs"])}])
               for s in report["sections"] if not s["rows"]]  # fmt: skip
    df = pd.concat([*frames, *missing], ignore_index=True) if frames or missing else pd.DataFrame()
    return df[["claim", *[c for c in df.columns if c != "claim"]]] if not df.empty else df


def to_html(report: dict[str, Any]) -> str:
    """The claims report as one self-contained HTML page."""
    env = report["environment"]
    prof = report["profile"]
    intro = [
        "A popular article on neural networks in Python asserts the tables below without saying how they were "
        "obtained. Each is reproduced here from real runs stored in this NeuralBench's run store; the article's "
        "figure stands beside the measured one, with the 95% interval and the run ids the number comes from.",
        f"Settings: profile '{prof['name']}' (seeds {prof['seeds']}; "
        f"{'whole training splits' if not prof['max_samples'] else str(prof['max_samples']) + ' training samples'}; "
        f"{'dataset default epochs with early stopping' if not prof['epochs'] else str(prof['epochs']) + ' epoch(s)'}). "
        f"Measured with torch {env.get('torch')} on {env.get('device')}, {env.get('threads')} threads.",
    ]
    parts = []
    for s in report["sections"]:
        paragraphs = [f"The article: {s['claim']}."] if s["claim"] else []
        paragraphs += s["paragraphs"]
        tables = {f"{s['title']}: article vs measured": section_table(s)} if s["rows"] else {}
        parts.append({"title": s["title"], "paragraphs": paragraphs, "tables": tables, "figures": s["figures"]})
    return render_html("Checking the classic claims about neural networks", intro, parts)


def write_report(report: dict[str, Any], out: str | Path) -> list[Path]:
    """Write out.html and, beside it, out_tables/<section>.csv plus claims.csv and out.json (no figures)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_html(report), encoding="utf-8")
    folder = out.with_name(out.stem + "_tables")
    folder.mkdir(exist_ok=True)
    written = [out]
    for s in report["sections"]:
        if s["rows"]:
            path = folder / f"{slug(s['key'])}.csv"
            path.write_text(safe_csv(section_table(s)), encoding="utf-8")
            written.append(path)
    path = folder / "claims.csv"
    path.write_text(safe_csv(summary_table(report)), encoding="utf-8")
    written.append(path)
    js = out.with_suffix(".json")
    js.write_text(json.dumps(to_json(report), indent=1, default=str), encoding="utf-8")
    written.append(js)
    return written


def to_json(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its figures."""
    return {**report, "sections": [{k: v for k, v in s.items() if k != "figures"} for s in report["sections"]]}
