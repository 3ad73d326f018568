"""Forecasting engine: metrics against hand computations, the Diebold-Mariano test against a known case, the
walk-forward backtest (no look-ahead), every registered forecaster on its fast path, the evaluator through the
one runner, the run store and the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy import stats

from bench.core import stats as ev
from bench.core.contract import BenchmarkRequest
from bench.run.runner import run_benchmark
from bench.tasks import get_task
from bench.tasks.forecast.backtest import ForecastEvaluator, ForecastSetup, first_test_index, fold_plan, walk_forward
from data.prices import PriceSeries, load_prices
from models.config import ConfigError, TrainConfig
from models.forecast import (
    TARGETS,
    ARIMAConfig,
    ARIMAForecaster,
    SeriesSetup,
    cumulative_target,
    rebuild,
    to_returns,
)

TASK = get_task("forecast")
FAST_TRAIN = TrainConfig(epochs=2, batch_size=64, lr=3e-3, patience=2, bf16=False)
FAST_SETUP = ForecastSetup(window=10, refit_every=40, explain=False, forecast_steps=5)


@pytest.fixture(scope="module")
def series() -> PriceSeries:
    """The last 320 real S&P 500 closes (test: the last 20%, 64 forecasts, 2 folds)."""
    return load_prices("sp500", max_samples=320)


def make(name: str, setup: ForecastSetup = FAST_SETUP, seed: int = 0):
    spec = TASK.models[name]
    ctx = type("Ctx", (), {"setup": setup})()
    return spec.factory(spec.default_config("sp500"), dataclasses.replace(FAST_TRAIN, seed=seed), seed, ctx)


# ---------------------------------------------------------------- metrics by hand


def test_point_metrics_by_hand() -> None:
    last = np.array([10.0, 10.0, 10.0, 10.0])
    true = np.array([11.0, 9.0, 10.0, 12.0])
    pred = np.array([10.5, 10.5, 9.0, 11.0])
    assert ev.mae(true, pred) == pytest.approx((0.5 + 1.5 + 1 + 1) / 4)
    assert ev.rmse(true, pred) == pytest.approx(np.sqrt((0.25 + 2.25 + 1 + 1) / 4))
    assert ev.mape(true, pred) == pytest.approx(100 * (0.5 / 11 + 1.5 / 9 + 1 / 10 + 1 / 12) / 4)
    assert ev.naive_scale(np.array([1.0, 3.0, 2.0, 5.0]), 1) == pytest.approx((2 + 1 + 3) / 3)
    assert ev.naive_scale(np.array([1.0, 3.0, 2.0, 5.0]), 2) == pytest.approx((1 + 2) / 2)
    assert ev.mase(true, pred, 2.0) == pytest.approx(ev.mae(true, pred) / 2)
    # directions: actual up, down, flat (ignored), up; called up, up, down, up -> 2 right of 3 counted
    assert ev.directional_accuracy(last, true, pred) == pytest.approx(2 / 3)
    assert ev.directional_accuracy(last, true, last) is None  # the naive forecast calls no move
    # persistence: mean |pred - last| = (0.5+0.5+1+1)/4 = 0.75; mean |true - last| = (1+1+0+2)/4 = 1
    assert ev.persistence(last, true, pred) == pytest.approx(0.25)
    assert ev.persistence(last, true, last) == 1.0


def test_diebold_mariano_h1_is_the_one_sample_t_test() -> None:
    rng = np.random.default_rng(1)
    e_a, e_b = rng.normal(0, 1.0, 300), rng.normal(0, 1.1, 300)
    dm = ev.diebold_mariano(e_a, e_b, horizon=1)
    t = stats.ttest_1samp(np.abs(e_a) - np.abs(e_b), 0.0)
    assert dm["statistic"] == pytest.approx(t.statistic, rel=1e-10)
    assert dm["p_value"] == pytest.approx(t.pvalue, rel=1e-10)


def test_diebold_mariano_known_cases() -> None:
    rng = np.random.default_rng(2)
    e = rng.normal(size=200)
    assert ev.diebold_mariano(e, e)["p_value"] == 1.0  # identical forecasts
    better = ev.diebold_mariano(e * 0.5, e)  # half the error everywhere
    assert better["statistic"] < 0 and better["p_value"] < 1e-6
    swapped = ev.diebold_mariano(e, e * 0.5)
    assert swapped["statistic"] == pytest.approx(-better["statistic"])
    # horizon 3 by hand: long-run variance with lags 1 and 2, HLN factor, t(n-1)
    a, b = rng.normal(size=50), rng.normal(size=50) * 1.2
    d = np.abs(a) - np.abs(b)
    n, dc = 50, d - d.mean()
    g = [np.dot(dc[k:], dc[: n - k]) / n for k in range(3)]
    stat = d.mean() / np.sqrt((g[0] + 2 * (g[1] + g[2])) / n) * np.sqrt((n + 1 - 6 + 3 * 2 / n) / n)
    dm3 = ev.diebold_mariano(a, b, horizon=3)
    assert dm3["statistic"] == pytest.approx(stat)
    assert dm3["p_value"] == pytest.approx(2 * stats.t.sf(abs(stat), n - 1))


@pytest.mark.parametrize("kind", TARGETS)
def test_returns_round_trip_to_prices(kind, series) -> None:
    y = series.close
    o = np.arange(5, len(y) - 3)
    assert np.allclose(rebuild(y[o], cumulative_target(y, o, 3, kind), kind), y[o + 3])
    r = to_returns(y, kind)
    assert r[0] == 0 and np.isclose(r[1], np.log(y[1] / y[0]) if kind == "log_returns" else y[1] / y[0] - 1)


# ---------------------------------------------------------------- the backtest


def test_fold_plan_expanding_and_rolling() -> None:
    plan = fold_plan(300, 200, ForecastSetup(horizon=2, refit_every=40))
    assert plan[0] == (0, 198, 237) and plan[-1][2] == 297
    origins = np.concatenate([np.arange(f, last + 1) for _, f, last in plan])
    assert np.array_equal(origins, np.arange(198, 298))  # every target 200..299 exactly once
    rolling = fold_plan(300, 200, ForecastSetup(scheme="rolling", train_size=100, refit_every=40))
    assert all(f + 1 - lo == 100 for lo, f, _ in rolling)
    short_tail = fold_plan(300, 200, ForecastSetup(refit_every=48))  # 100 targets = 48 + 48 + 4: the 4 join
    assert [(f, last) for _, f, last in short_tail] == [(199, 246), (247, 298)]


@pytest.mark.parametrize("name", list(TASK.models))
def test_every_forecaster_fast_path(name, series) -> None:
    start = first_test_index(series, FAST_SETUP)
    bt = walk_forward(make(name), series.close, start, FAST_SETUP)
    y = series.close
    assert len(bt.forecasts) == len(y) - start and np.all(np.isfinite(bt.forecasts))
    assert np.array_equal(bt.targets, np.arange(start, len(y)))
    naive_mae = ev.mae(y[bt.targets], y[bt.origins])
    ceiling = 3.0 if name == "moving_average" else 1.5  # an error ceiling, relative to the random walk
    assert ev.mae(y[bt.targets], bt.forecasts) < ceiling * naive_mae


@pytest.mark.parametrize("name", list(TASK.models))
def test_no_look_ahead(name, series) -> None:
    """Poison every price after t (inside the second fold) with huge values: no forecast made at or before t
    may change. A model or scaler that sees its fold's future, or anything past its origin, fails this."""
    y = series.close
    start = first_test_index(series, FAST_SETUP)
    clean = walk_forward(make(name), y, start, FAST_SETUP)
    t = clean.folds[1]["first_origin"] + 7
    poisoned = y.copy()
    poisoned[t + 1 :] *= 1000.0
    dirty = walk_forward(make(name), poisoned, start, FAST_SETUP)
    known = clean.origins <= t
    assert known.sum() > 40
    np.testing.assert_allclose(dirty.forecasts[known], clean.forecasts[known], rtol=1e-9)
    # and predicting with NaN after t from the fitted last-fold model: forecasts at origins <= t stay finite
    nan_tail = y.copy()
    nan_tail[t + 1 :] = np.nan
    lo = clean.folds[1]["train_start"]
    o = np.arange(clean.folds[1]["first_origin"], t + 1)
    assert np.all(np.isfinite(clean.model.predict(nan_tail[lo:], o - lo)))


def test_arima_h1_forecast_is_statsmodels_one_step_prediction(series) -> None:
    y = series.close
    m = ARIMAForecaster(ARIMAConfig(), SeriesSetup()).fit(y[:200])
    r = to_returns(y, "log_returns")[1:] * 100
    fitted = np.asarray(m.res_.apply(r, refit=False).fittedvalues)
    o = np.arange(199, len(y) - 1)
    np.testing.assert_allclose(m.predict(y, o), y[o] * np.exp(fitted[o] / 100), rtol=1e-9)


def test_setup_and_series_checks(series) -> None:
    with pytest.raises(ConfigError, match="not a date"):
        ForecastSetup(test_start="someday")
    with pytest.raises(ConfigError, match=r"(?i)horizon"):
        ForecastSetup(horizon=0)
    with pytest.raises(ConfigError, match="outside the series"):
        first_test_index(series, ForecastSetup(test_start="1990-01-01"))
    with pytest.raises(ConfigError, match="not enough history"):
        first_test_index(series, ForecastSetup(window=250))
    short = PriceSeries("s", series.frame.iloc[:40], "test", "daily")
    with pytest.raises(ConfigError, match="not enough history"):
        first_test_index(short, ForecastSetup(window=30))


# ---------------------------------------------------------------- through the one runner


@pytest.fixture(scope="module")
def fast_report():
    req = BenchmarkRequest(
        "forecast", "sp500", ("lstm", "arima", "linreg", "drift", "naive"), max_samples=320, train_config=FAST_TRAIN,
        setup=dataclasses.replace(FAST_SETUP, explain=True),
    )  # fmt: skip
    return run_benchmark(req)


def test_report_schema(fast_report) -> None:
    rep = fast_report
    assert rep["objective"] == "forecasting" and rep["primary_metric"] == "mae"
    json.dumps(rep)  # JSON-ready
    assert rep["split"]["test"] == 64 == len(rep["backtest"]["actual"]) == len(rep["backtest"]["dates"])
    for m in rep["models"]:
        met = m["metrics"]
        assert {"mae", "rmse", "mape", "mase", "mae_vs_naive", "directional_accuracy", "dm_p_value",
                "persistence", "mae_folds"} <= set(met)  # fmt: skip
        assert len(m["forecasts"]) == 64 and len(m["fan"]["forecast"]) == 5
        assert m["fan"]["lo95"][0] < m["fan"]["forecast"][0] < m["fan"]["hi95"][0]
    naive = next(m for m in rep["models"] if m["name"] == "naive")
    assert naive["metrics"]["mae_vs_naive"] == 1.0 and naive["metrics"]["persistence"] == 1.0
    assert {c["a"] for c in rep["comparisons"]} == {"lstm", "arima", "linreg", "drift"}
    assert sum(c["primary"] for c in rep["comparisons"]) == 1 and rep["comparisons"][0]["a"] == "lstm"
    lstm = next(m for m in rep["models"] if m["name"] == "lstm")
    assert lstm["history"] and {"fold", "train_loss", "val_loss"} <= set(lstm["history"][0])
    shap_lstm, shap_lin = lstm["shap"], next(m for m in rep["models"] if m["name"] == "linreg")["shap"]
    assert len(shap_lstm["mean_abs"]) == 10 == len(shap_lin["mean_abs"]) and "Gradient" in shap_lstm["method"]


def test_linear_shap_is_additive(series) -> None:
    from bench.tasks.forecast.backtest import explain_lags

    setup = dataclasses.replace(FAST_SETUP, explain=True)
    bt = walk_forward(make("linreg", setup), series.close, first_test_index(series, setup), setup)
    out = explain_lags(bt.model, series.close, bt)
    m = bt.model
    lo = bt.folds[-1]["train_start"]
    X = m.features(series.close[lo:], np.asarray(out["origins"]) - lo)
    z = m.pipeline_.predict(X)
    base = z - np.asarray(out["values"]).sum(1) / 100.0
    assert np.allclose(base, base[0], atol=1e-6)  # prediction = constant + sum of SHAP values (rounded to 1e-6 %)


def test_headline_says_when_nothing_beats_the_random_walk() -> None:
    ev_ = ForecastEvaluator()
    rep = {"backtest": {"naive_mae": 10.0}, "models": [
        {"name": "lstm", "label": "LSTM", "family": "neural", "metrics": {"mae": 10.1, "mae_vs_naive": 1.01}},
        {"name": "naive", "label": "Naive", "family": "naive", "metrics": {"mae": 10.0, "mae_vs_naive": 1.0}},
    ], "comparisons": [{"a": "lstm", "p_value": 0.41}]}  # fmt: skip
    h = ev_.headline(rep)
    assert h["level"] == "warning" and "No model beats the random walk" in h["text"] and "p = 0.41" in h["text"]
    rep["models"][0]["metrics"] = {"mae": 9.0, "mae_vs_naive": 0.9}
    rep["comparisons"][0]["p_value"] = 0.001
    h = ev_.headline(rep)
    assert h["level"] == "success" and h["text"].startswith("LSTM beats the random walk")


def test_stored_forecast_run_round_trip(tmp_path, series) -> None:
    from bench.run.store import RunStore

    store = RunStore(root=tmp_path)
    req = BenchmarkRequest("forecast", "sp500", ("drift", "naive"), max_samples=320, setup=FAST_SETUP)
    rep = run_benchmark(req, store=store)
    runs = store.list_runs("forecast")
    assert runs and runs[0]["run_id"] == rep["run_id"]
    assert "drift.test_mae" in runs[0]["metrics"]
    loaded = store.load_report(rep["run_id"])
    assert loaded["models"][0]["metrics"]["mae"] == pytest.approx(rep["models"][0]["metrics"]["mae"])
    assert store.load_predictions(rep["run_id"])["drift"].shape == (64,)


def test_cli_forecast(tmp_path, capsys) -> None:
    from bench.cli.main import main

    out = tmp_path / "r.json"
    code = main(["forecast", "--dataset", "msft", "--models", "naive,drift,linreg", "--max-samples", "300",
                 "--window", "10", "--horizon", "2", "--no-store", "--no-explain", "--json", str(out)])  # fmt: skip
    assert code == 0
    rep = json.loads(out.read_text())
    assert rep["dataset"] == "msft" and rep["setup"]["horizon"] == 2
    text = capsys.readouterr().out
    assert "MAE" in text and "Naive (last value)" in text and "random walk" in text


def test_cli_bad_input_is_a_message(tmp_path, capsys) -> None:
    from bench.cli.main import main

    assert main(["forecast", "--ticker", "AAPL;rm", "--no-store"]) == 2
    assert "ticker" in capsys.readouterr().err
    bad = tmp_path / "p.csv"
    bad.write_text("Date,Close\n2020-01-01,1\n")
    assert main(["forecast", "--csv", str(bad), "--no-store"]) == 2
    assert "at least 30" in capsys.readouterr().err


def test_changed_setup_counts_as_custom_settings() -> None:
    from bench.run.settings import run_kind

    base = {f"setup.{k}": str(v) for k, v in dataclasses.asdict(ForecastSetup()).items()}
    assert run_kind("forecast", "sp500", ["naive"], base)["default"]
    changed = run_kind("forecast", "sp500", ["naive"], {**base, "setup.horizon": "5"})
    assert not changed["default"] and changed["diffs"][0]["model"] == "Set-up"
