"""Stock forecasting: LSTM vs naive, drift, moving average, lag regression and ARIMA, by walk-forward backtest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from bench.core.contract import BenchmarkRequest
from bench.run.runner import leaderboard_rows
from bench.tasks import get_task
from bench.tasks.forecast.backtest import ForecastSetup, first_test_index
from data import prices
from data.guard import ServerBusy
from data.prices import PriceDataError, PriceSeries
from models.config import ConfigError, TrainConfig, config_from_dict
from pages import ui

TASK = get_task("forecast")
UPLOADS = prices.CACHE / "uploads"
SOURCES = {"sp500": "S&P 500 (bundled)", "nasdaq": "NASDAQ (bundled)", "msft": "MSFT (bundled)",
           "ticker": "Ticker (Yahoo Finance)", "csv": "Upload a CSV"}  # fmt: skip


# ---------------------------------------------------------------- data


@st.cache_data(show_spinner="Loading prices ...", max_entries=8)
def bundled(name: str) -> PriceSeries:
    """A bundled series (cached per server)."""
    return prices.load_bundled(name)


@st.cache_data(show_spinner="Fetching from Yahoo Finance ...", max_entries=16, ttl=3600)
def ticker_series(ticker: str) -> PriceSeries:
    """A ticker's prices: the disk cache when fresh, else yfinance (then cached), else the stale cache."""
    return prices.fetch_ticker(ticker)


def save_upload(raw: bytes) -> Path:
    """Keep a validated upload under a generated name (its hash): the job reads it by path, never by user text."""
    UPLOADS.mkdir(parents=True, exist_ok=True)
    path = UPLOADS / f"{hashlib.sha256(raw).hexdigest()[:32]}.csv"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(raw)
        tmp.replace(path)
    return path


def choose_data() -> tuple[str, dict[str, Any], PriceSeries] | None:
    """The data source widgets; returns (dataset, data_options, series) or None (with a message)."""
    source = st.radio("Data", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="fc.source")
    if source in prices.BUNDLED:
        return source, {}, bundled(source)
    if source == "ticker":
        c1, c2 = st.columns([3, 1])
        text = c1.text_input("Ticker", value=st.session_state.get("fc.ticker_loaded", ""), key="fc.ticker",
                             placeholder="e.g. AAPL, MSFT, ^GSPC")  # fmt: skip
        c2.write("")
        if c2.button("Load", key="fc.ticker_load"):
            st.session_state["fc.ticker_loaded"] = text
        wanted = st.session_state.get("fc.ticker_loaded", "")
        if not wanted:
            st.info("Enter a ticker symbol and press Load. Offline, use a bundled series.")
            return None
        try:
            t = prices.validate_ticker(wanted)
            series = ticker_series(t)
        except PriceDataError as exc:
            st.error(ui.say(exc))
            return None
        if "cached" in series.source and "ago" in series.source and "just now" not in series.source:
            st.info(f"Served from the disk cache: {ui.md(series.notes[0] if series.notes else series.source)}")
        return "ticker", {"ticker": t}, series
    upload = st.file_uploader("Price table (CSV: a date column and a price column)", type=["csv", "txt"],
                              key="fc.upload")  # fmt: skip
    if upload is None:
        st.info("Upload a CSV with a date column and a price column (daily, weekly or monthly).")
        return None
    raw = upload.getvalue()
    try:
        table = prices.read_csv_table(raw)  # linear, in one of the server's few upload slots (data.guard)
    except (PriceDataError, ServerBusy) as exc:
        st.error(f"Cannot read this file: {ui.say(exc)}")
        return None
    cols = list(table.columns)
    guess_date, guess_price = prices.guess_columns(cols)
    c1, c2 = st.columns(2)
    date_col = c1.selectbox("Date column", cols, index=cols.index(guess_date) if guess_date else 0, key="fc.date_col")
    price_col = c2.selectbox("Price column", cols, index=cols.index(guess_price) if guess_price else min(1, len(cols) - 1),
                             key="fc.price_col")  # fmt: skip
    try:
        series = prices.load_csv(raw, date_col, price_col, name="csv")
    except (PriceDataError, ServerBusy) as exc:
        st.error(f"Cannot use this file: {ui.say(exc)}")
        return None
    path = save_upload(raw)
    return "csv", {"path": str(path), "date_col": date_col, "price_col": price_col}, series


def data_view(series: PriceSeries) -> None:
    """Price chart (candlestick where OHLC exists), returns histogram, date range and gaps."""
    d = series.dates
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("rows", f"{len(series):,}")
    c2.metric("from", str(d[0].date()))
    c3.metric("to", str(d[-1].date()))
    c4.metric("frequency", series.frequency)
    st.caption(ui.md(f"Source: {series.source}" + (f" · {'; '.join(series.notes)}" if series.notes else "")))
    f = series.frame
    if series.has_ohlc:
        fig = go.Figure(go.Candlestick(x=f.index, open=f["open"], high=f["high"], low=f["low"], close=f["close"],
                                       name=series.name))  # fmt: skip
    else:
        fig = go.Figure(go.Scatter(x=f.index, y=f["close"], mode="lines", name="close"))
    fig.update_layout(title="Price" + (" (candlestick: open / high / low / close)" if series.has_ohlc else ""),
                      height=420, xaxis_rangeslider_visible=True)  # fmt: skip
    st.plotly_chart(fig, key="fc.price_chart")
    left, right = st.columns(2)
    r = np.diff(np.log(series.close)) * 100
    hist = px.histogram(x=r, nbins=100, title=f"{series.frequency.capitalize()} log returns (%)",
                        labels={"x": "log return (%)"})  # fmt: skip
    hist.update_layout(height=340, showlegend=False)
    left.plotly_chart(hist, key="fc.returns_hist")
    with right:
        st.markdown(f"**Returns:** mean {r.mean():.3f}%, sd {r.std(ddof=1):.3f}%, "
                    f"min {r.min():.2f}%, max {r.max():.2f}% ({len(r):,} returns)")  # fmt: skip
        g = prices.gaps(series)
        if g:
            st.markdown("**Largest gaps between dates** (longer than usual for the frequency)")
            ui.table(pd.DataFrame(g), hide_index=True, key="fc.gaps")
        else:
            st.markdown("No gaps longer than usual for the frequency.")


# ---------------------------------------------------------------- set-up and run


def settings_form(dataset: str, series: PriceSeries) -> tuple[bool, dict[str, Any]]:
    """Models, forecast set-up, training and model settings; returns (submitted, raw values)."""
    raw: dict[str, Any] = {}
    ds = TASK.datasets[dataset]
    fkey = f"fc.{dataset}"  # defaults depend on the data source: keys include it
    with st.form("fc.form"):
        labels = {m: s.label for m, s in TASK.models.items()}
        raw["models"] = st.multiselect("Models", list(labels), default=list(TASK.default_models),
                                       format_func=labels.get, key="fc.models")  # fmt: skip
        st.markdown("**Set-up** (one for every model; the backtest refits each model on each fold's past only)")
        defaults = ForecastSetup(test_start=series.default_test_start)
        cols = st.columns(3)
        setup_raw: dict[str, Any] = {}
        fields = ["horizon", "window", "test_start", "scheme", "train_size", "refit_every", "target",
                  "forecast_steps", "explain"]  # fmt: skip
        for i, name in enumerate(fields):
            with cols[i % 3]:
                setup_raw.update(ui.config_form(ForecastSetup, defaults, f"{fkey}.setup",
                                                exclude=tuple(f for f in fields if f != name)))  # fmt: skip
        raw["setup"] = setup_raw
        raw["default_test_start"] = series.default_test_start
        c1, c2 = st.columns(2)
        raw["seed"] = int(c1.number_input("Seed", value=0, min_value=0, step=1, key="fc.seed"))
        raw["repeats"] = int(c2.number_input("Seeds per neural model", value=1, min_value=1, max_value=10, step=1,
                                             key="fc.repeats",
                                             help="Retrain the LSTM / GRU with seeds seed, seed+1, ...: the spread of "
                                                  "their MAE over seeds"))  # fmt: skip
        with st.expander("Training (LSTM / GRU)"):
            raw["train"] = ui.config_form(TrainConfig, ds.default_train_config(), f"{fkey}.train",
                                          exclude=("seed", "max_samples", "hflip", "label_smoothing"))  # fmt: skip
        for name, spec in TASK.models.items():
            if not [f for f in spec.config_cls.__dataclass_fields__]:
                continue
            with st.expander(f"{spec.label} settings"):
                st.caption(spec.description)
                raw[name] = ui.config_form(spec.config_cls, spec.default_config(dataset), f"{fkey}.{name}")
        submitted = st.form_submit_button("Run backtest", type="primary", key="fc.run")
    return submitted, raw


def build_request(dataset: str, options: dict[str, Any], raw: dict[str, Any]) -> BenchmarkRequest:
    """A validated request from the form values (ConfigError with a readable message otherwise)."""
    values = dict(raw["setup"])
    if values.get("test_start", "") == raw.get("default_test_start", ""):
        values["test_start"] = ""  # the dataset's default: the run counts as one with default settings
    setup = config_from_dict(ForecastSetup, values)
    tcfg = config_from_dict(TrainConfig, {**raw["train"], "seed": raw["seed"]})
    configs = {}
    for name in raw["models"]:
        try:
            configs[name] = config_from_dict(TASK.models[name].config_cls, raw.get(name, {}))
        except ConfigError as exc:
            raise ConfigError(f"{TASK.models[name].label}: {exc}") from exc
    return BenchmarkRequest("forecast", dataset, tuple(raw["models"]), seed=raw["seed"], configs=configs,
                            train_config=tcfg, repeats=raw["repeats"], setup=setup, data_options=options)  # fmt: skip


def run_and_show(dataset: str, options: dict[str, Any], series: PriceSeries, raw: dict[str, Any]) -> None:
    """Check the request against the series, run it as a job, keep the report in the session."""
    if not raw["models"]:
        st.error("Choose at least one model.")
        return
    try:
        request = build_request(dataset, options, raw)
        first_test_index(series, request.setup)  # too few rows, a test start outside the series: say so now
    except (ConfigError, TypeError, ValueError) as exc:
        st.error(f"Invalid settings: {ui.say(exc)}")
        return
    st.session_state.pop("fc.report", None)
    report = ui.run_job(request, "fc.job")
    if report is not None:
        st.session_state["fc.report"] = report


# ---------------------------------------------------------------- results


def _frame(report: dict[str, Any]) -> pd.DataFrame:
    bt = report["backtest"]
    df = pd.DataFrame({"date": pd.to_datetime(bt["dates"]), "actual": bt["actual"], "last": bt["last"]})
    for m in report["models"]:
        df[m["label"]] = m["forecasts"]
    return df


def forecast_charts(report: dict[str, Any], key: str) -> None:
    """Actual vs forecast, error over time, residual distribution, MAE per fold."""
    df = _frame(report)
    labels = [m["label"] for m in report["models"]]
    ranked = [r["model"] for r in leaderboard_rows(report)]
    default = [x for x in ranked if x != "Naive (last value)"][:2] + (["Naive (last value)"] if
                                                                      "Naive (last value)" in labels else [])  # fmt: skip
    shown = st.multiselect("Models in the charts", labels, default=default, key=f"{key}.chart_models")
    fig = go.Figure(go.Scatter(x=df["date"], y=df["actual"], name="actual", line={"color": "black", "width": 2}))
    for lab in shown:
        fig.add_trace(go.Scatter(x=df["date"], y=df[lab], name=lab, mode="lines", opacity=0.8))
    fig.update_layout(title="Actual vs forecast on the test period (drag to zoom)", height=440,
                      xaxis_rangeslider_visible=True)  # fmt: skip
    st.plotly_chart(fig, key=f"{key}.actual_vs_forecast")
    window = max(5, len(df) // 50)
    err = pd.DataFrame({"date": df["date"]})
    for lab in shown:
        err[lab] = (df["actual"] - df[lab]).abs().rolling(window, min_periods=1).mean()
    long = err.melt(id_vars="date", var_name="model", value_name="abs_error")
    left, right = st.columns(2)
    fig = px.line(long, x="date", y="abs_error", color="model",
                  title=f"Absolute error over time ({window}-step rolling mean)")  # fmt: skip
    fig.update_layout(height=380)
    left.plotly_chart(fig, key=f"{key}.error_time")
    res = pd.DataFrame({lab: df["actual"] - df[lab] for lab in shown}).melt(var_name="model", value_name="residual")
    fig = px.histogram(res, x="residual", color="model", barmode="overlay", nbins=80, opacity=0.55,
                       title="Residuals (actual - forecast)")  # fmt: skip
    fig.update_layout(height=380)
    right.plotly_chart(fig, key=f"{key}.residuals")
    folds = [{"model": m["label"], "fold": i + 1, "mae": v} for m in report["models"]
             for i, v in enumerate(m["metrics"].get("mae_folds", []))]  # fmt: skip
    if folds:
        fig = px.bar(pd.DataFrame(folds), x="fold", y="mae", color="model", barmode="group",
                     title="MAE per walk-forward fold (the spread behind the averages)")  # fmt: skip
        fig.update_layout(height=360)
        st.plotly_chart(fig, key=f"{key}.folds")


def shap_view(report: dict[str, Any], key: str) -> None:
    """SHAP over lags: bars per lag for the LSTM / GRU and the lag regression, and a heatmap over the test period."""
    explained = [m for m in report["models"] if isinstance(m.get("shap"), dict) and "mean_abs" in m["shap"]]
    failed = [m for m in report["models"] if isinstance(m.get("shap"), dict) and "error" in m["shap"]]
    for m in failed:
        st.warning(f"No SHAP values for {m['label']}: {ui.say(m['shap']['error'])}")
    if not explained:
        st.info("SHAP over lags needs the LSTM / GRU or the lag regression, with 'explain' on in the set-up.")
        return
    bars = pd.DataFrame([{"model": m["label"], "lag": lag, "mean |SHAP| (% of return)": v}
                         for m in explained for lag, v in zip(m["shap"]["lags"], m["shap"]["mean_abs"], strict=True)])  # fmt: skip
    fig = px.bar(bars, x="lag", y="mean |SHAP| (% of return)", color="model", barmode="group",
                 title="Which past returns drive the forecast (lag 1 = the most recent step)")  # fmt: skip
    fig.update_layout(height=380)
    st.plotly_chart(fig, key=f"{key}.shap_bars")
    labels = {m["name"]: m["label"] for m in explained}
    name = st.selectbox("Heatmap for", list(labels), format_func=labels.get, key=f"{key}.shap_model")
    m = next(x for x in explained if x["name"] == name)
    vals = np.asarray(m["shap"]["values"])
    dates = report["backtest"]["dates"]
    start = report["split"]["train"] - report["setup"]["horizon"] if report.get("setup") else 0
    when = [dates[o - start] if 0 <= o - start < len(dates) else str(o) for o in m["shap"]["origins"]]
    limit = float(np.abs(vals).max()) or 1.0
    fig = px.imshow(vals.T, x=when, y=m["shap"]["lags"], color_continuous_scale="RdBu_r", zmin=-limit, zmax=limit,
                    aspect="auto", labels={"x": "forecast origin", "y": "lag", "color": "SHAP (%)"},
                    title=f"{m['label']} (the last fold's model): SHAP of each lag over the test period")  # fmt: skip
    fig.update_layout(height=420)
    st.plotly_chart(fig, key=f"{key}.shap_heatmap")
    st.caption(f"{m['shap']['method']}. Red: the lag pushed the forecast return up; blue: down. Values are tiny "
               "where the model has learned that past returns say little about the next one.")  # fmt: skip


def fan_view(report: dict[str, Any], key: str) -> None:
    """The next N steps from a chosen model with 80% / 95% intervals."""
    models = [m for m in report["models"] if isinstance(m.get("fan"), dict) and "forecast" in m["fan"]]
    if not models:
        st.info("No forecast of the next steps in this run.")
        return
    labels = {m["name"]: m["label"] for m in models}
    best = min(models, key=lambda m: m["metrics"]["mae"])["name"]
    name = st.selectbox("Model", list(labels), index=list(labels).index(best), format_func=labels.get,
                        key=f"{key}.fan_model")  # fmt: skip
    fan = next(m for m in models if m["name"] == name)["fan"]
    bt = report["backtest"]
    tail = 120
    dates = pd.to_datetime(fan["dates"])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=pd.to_datetime(bt["dates"][-tail:]), y=bt["actual"][-tail:], name="actual",
                             line={"color": "black"}))  # fmt: skip
    for lo, hi, name_, alpha in (("lo95", "hi95", "95% interval", 0.15), ("lo80", "hi80", "80% interval", 0.3)):
        fig.add_trace(go.Scatter(x=list(dates) + list(dates[::-1]), y=fan[hi] + fan[lo][::-1], fill="toself",
                                 fillcolor=f"rgba(31,119,180,{alpha})", line={"width": 0}, name=name_))  # fmt: skip
    fig.add_trace(go.Scatter(x=dates, y=fan["forecast"], name=f"{labels[name]} forecast", line={"color": "#1f77b4"}))
    fig.update_layout(title=f"Forecast of the next {len(dates)} steps: {labels[name]}", height=420)
    st.plotly_chart(fig, key=f"{key}.fan")
    st.caption(f"From the model of the last fold (fitted on data up to {fan['fitted_until']}). Intervals: "
               f"{fan['method']} (a random-walk assumption).")  # fmt: skip


def show_forecast_report(report: dict[str, Any], key: str) -> None:
    """Verdict on top, leaderboard, charts, SHAP, fan chart, significance tests, training curves."""
    ui.provenance(report)
    ui.headline(report)
    ui.leaderboard(report, key)
    st.caption("MAE, RMSE in price units; MAPE in %; MASE: MAE / in-sample naive MAE; mae_vs_naive < 1 beats the "
               "random walk; dm_p_value: Diebold-Mariano test against the naive forecast (absolute errors); "
               "directional_accuracy: share of moves called in the right direction (none for naive); persistence: "
               "1 = the forecast just repeats the last value.")  # fmt: skip
    st.subheader("Forecasts on the test period")
    forecast_charts(report, key)
    st.subheader("Explanations (SHAP over lags)")
    shap_view(report, key)
    st.subheader("The next steps")
    fan_view(report, key)
    if report.get("comparisons"):
        st.subheader("Significance against the naive forecast")
        tests = pd.DataFrame(report["comparisons"])[["a_label", "mae_a", "mae_b", "mae_ratio", "statistic", "p_value"]]
        ui.table(tests.rename(columns={"a_label": "model", "mae_a": "MAE", "mae_b": "naive MAE",
                                           "mae_ratio": "MAE / naive", "statistic": "DM statistic",
                                           "p_value": "p-value"}), hide_index=True, key=f"{key}.tests")  # fmt: skip
        for c in report["comparisons"]:
            st.markdown(f"- {c['verdict']}")
    hist = ui.history_frame(report)
    if not hist.empty:
        with st.expander("LSTM / GRU training curves (per fold)"):
            ui.table(hist, hide_index=True, key=f"{key}.history")


# ---------------------------------------------------------------- the page

st.title("Stock forecasting")
st.markdown(
    "An LSTM against the random walk (naive last value), drift, a moving average, a linear regression on lags and "
    "ARIMA, scored by a **walk-forward backtest**: every model and every scaler is refitted on each fold's past "
    "only, forecasts are made out of sample, and the verdict is a Diebold-Mariano test against the naive "
    "forecast. Daily stock prices are close to a random walk: expect the honest answer to be that nothing beats it."
)

chosen = choose_data()
tab_run, tab_data, tab_saved = st.tabs(["Backtest", "Data", "Saved runs"])
with tab_data:
    if chosen is not None:
        data_view(chosen[2])
    else:
        st.info("Choose a data source above.")
with tab_run:
    if chosen is not None:
        dataset, options, series = chosen
        submitted, raw = settings_form(dataset, series)
        if submitted:
            run_and_show(dataset, options, series, raw)
        else:
            finished = ui.job_notice("fc.job")
            if finished is not None:
                st.session_state["fc.report"] = finished
    report = st.session_state.get("fc.report")
    if report is not None:
        st.header("Results")
        show_forecast_report(report, "fc.result")
with tab_saved:
    ui.saved_runs_tab("forecast", "fc", show_forecast_report)
