"""Forecasting: the set-up, the walk-forward backtest (written once, every forecaster goes through it),
the torch forecaster trained by the one loop, SHAP over lags, the fan chart of the next steps, and
the scoring of a backtest against the naive forecast.

No look-ahead: on every fold a fresh copy of the model (with its scalers) is fitted on prices up to the
fold's first forecast origin only, and it forecasts from arrays that end at the fold's last origin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import StandardScaler

from bench.core.contract import Evaluator, MetricSpec, ModelOutcome, RunContext
from bench.core.stats import diebold_mariano, forecast_errors, forecast_metrics, mae, naive_scale
from bench.core.train import Callback, EarlyStopping, predict_logits, seed_everything, train
from data.prices import PriceSeries
from models.config import ConfigError, TrainConfig, check_fields, opt
from models.forecast import (
    TARGETS,
    Forecaster,
    RNNConfig,
    RNNForecaster,
    SeriesSetup,
    _training_origins,
    cumulative_target,
    lag_windows,
    rebuild,
    saved_config,
    saved_numbers,
    saved_scaler,
    state_fields,
    to_returns,
)
from models.io import WEIGHTS_FILE, load_weights, module_tensors

MIN_TEST_POINTS = 10
# the LSTM's training defaults on price series (bf16 off: returns are small numbers)
DEFAULT_TRAIN = TrainConfig(epochs=6, batch_size=256, lr=3e-3, patience=2, val_fraction=0.1, bf16=False)
SHAP_BACKGROUND = 100
SHAP_EXPLAIN = 120
SHAP_SAMPLES = 16


@dataclass
class ForecastSetup:
    """The forecasting problem and how it is backtested (one set-up for every model of a run)."""

    horizon: int = opt(1, "Forecast the closing price this many steps ahead", min=1, max=20)
    window: int = opt(30, "Lookback window: past returns the LSTM and the lag regression see", min=2, max=250)
    test_start: str = opt("", "First test date (YYYY-MM-DD); empty: the dataset's default, else the last 20%")
    scheme: str = opt("expanding", "Training window of each fold: all the past, or a rolling window",
                      choices=("expanding", "rolling"))  # fmt: skip
    train_size: int = opt(1000, "Rolling scheme: training window length in steps", min=50, max=100_000)
    refit_every: int = opt(250, "Refit every model every k test steps (walk-forward folds)", min=1, max=100_000)
    target: str = opt("log_returns", "What the learned models predict (prices are rebuilt from it)", choices=TARGETS)
    forecast_steps: int = opt(20, "Fan chart: steps forecast beyond the end of the series", min=1, max=60)
    explain: bool = opt(True, "SHAP over the lags for the LSTM and the lag regression")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.test_start:
            try:
                pd.Timestamp(self.test_start)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"test start {self.test_start!r} is not a date (YYYY-MM-DD)") from exc

    def series_setup(self) -> SeriesSetup:
        """The part every forecaster needs."""
        return SeriesSetup(horizon=self.horizon, window=self.window, target=self.target)


def first_test_index(series: PriceSeries, setup: ForecastSetup) -> int:
    """Index of the first test target, checked against the series' length and the set-up."""
    n = len(series)
    start = setup.test_start or series.default_test_start
    if start:
        ts = pd.Timestamp(start)
        idx = int(series.dates.searchsorted(ts))
        if setup.test_start and not 0 < idx < n:
            raise ConfigError(
                f"test start {ts.date()} is outside the series ({series.dates[0].date()} .. {series.dates[-1].date()})"
            )
        if not 0 < idx < n:
            idx = int(n * 0.8)
    else:
        idx = int(n * 0.8)
    need = setup.window + setup.horizon + 10 + 1
    if idx - setup.horizon + 1 < need:
        raise ConfigError(
            f"not enough history before the test start: {idx} prices, but a window of {setup.window} returns "
            f"and a horizon of {setup.horizon} need at least {need}; move the test start later or shorten the window"
        )
    if n - idx < MIN_TEST_POINTS:
        raise ConfigError(f"only {n - idx} test points after the test start: at least {MIN_TEST_POINTS} are needed")
    return idx


# ---------------------------------------------------------------- the torch forecaster (one training loop)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run a small recurrent net on one torch thread: measured 11x faster than two threads on a busy
    2-core machine (LSTM, batch 256, window 30: 52 ms vs 894 ms per step), where thread hand-offs dominate."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)



class NeuralForecaster(Forecaster):
    """LSTM / GRU on scaled returns, trained by bench.core.train.train(objective="regression"); prices rebuilt.

    Both scalers (inputs: one-step returns; targets: horizon returns) are fitted on the training part of the
    fold only; the validation part for early stopping is the last `val_fraction` of the fold, in time order.
    """

    family = "neural"
    name = "lstm"

    def __init__(self, config: RNNConfig | None = None, setup: SeriesSetup | None = None,
                 train_config: TrainConfig | None = None) -> None:  # fmt: skip
        super().__init__(config or RNNConfig(), setup)
        self.train_config = train_config or DEFAULT_TRAIN
        self.name = self.config.cell  # "lstm" / "gru": the model name it is saved (and loaded back) as

    warm_state_: dict[str, torch.Tensor] | None = None

    def clone(self) -> NeuralForecaster:
        return type(self)(self.config, self.setup, self.train_config)

    def warm_from(self, previous: NeuralForecaster) -> None:
        """Start the next fit from a previous fold's weights (trained `refit_epochs` epochs instead)."""
        self.warm_state_ = {k: v.detach().clone() for k, v in previous.model_.state_dict().items()}

    def fit(self, y: np.ndarray, callbacks: Sequence[Callback] = ()) -> NeuralForecaster:
        s, cfg = self.setup, self.train_config
        y = np.asarray(y, dtype=np.float64)
        r = to_returns(y, s.target)
        origins = _training_origins(len(y), s)
        n_val = round(len(origins) * cfg.val_fraction) if len(origins) >= 50 else 0
        train_o, val_o = origins[: len(origins) - n_val], origins[len(origins) - n_val :]
        # scalers see the training part only: returns up to the last training origin, its targets
        self.x_scaler_ = StandardScaler().fit(r[1 : train_o[-1] + 1, None])
        z_train = cumulative_target(y, train_o, s.horizon, s.target)
        self.z_scaler_ = StandardScaler().fit(z_train[:, None])
        X, z = self._scaled_windows(r, train_o), self._scale_z(z_train)
        X_val = self._scaled_windows(r, val_o) if n_val else None
        z_val = self._scale_z(cumulative_target(y, val_o, s.horizon, s.target)) if n_val else None
        seed_everything(cfg.seed)
        self.model_ = RNNForecaster(self.config)
        warm = self.warm_state_ is not None and self.config.refit_epochs > 0
        if warm:  # weights of the previous fold (trained on an earlier past only)
            self.model_.load_state_dict(self.warm_state_)
            cfg = replace(cfg, epochs=self.config.refit_epochs)
        cbs = list(callbacks)
        if n_val:
            cbs.insert(0, EarlyStopping(cfg.patience, monitor="val_loss", mode="min"))
        with single_thread():
            records = train(self.model_, X, z, cfg, X_val=X_val, y_val=z_val, objective="regression", callbacks=cbs)
        self.history_ = [{**h.to_dict(), "warm_start": warm} for h in records]
        self.n_train_, self.n_val_ = len(train_o), n_val
        return self

    def _scaled_windows(self, r: np.ndarray, origins: np.ndarray) -> np.ndarray:
        W = lag_windows(r, origins, self.setup.window)
        return ((W - self.x_scaler_.mean_[0]) / self.x_scaler_.scale_[0]).astype(np.float32)

    def _scale_z(self, z: np.ndarray) -> np.ndarray:
        return ((z - self.z_scaler_.mean_[0]) / self.z_scaler_.scale_[0]).astype(np.float32)

    def features(self, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """The scaled input windows at each origin (oldest lag first)."""
        return self._scaled_windows(to_returns(np.asarray(y, dtype=np.float64), self.setup.target), np.asarray(origins))

    def predict(self, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        with single_thread():
            out = predict_logits(self.model_, self.features(y, origins)).astype(np.float64).reshape(-1)
        z = out * self.z_scaler_.scale_[0] + self.z_scaler_.mean_[0]
        return rebuild(y[np.asarray(origins)], z, self.setup.target)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model_.parameters() if p.requires_grad)

    # saved as config.json (settings, training config, both scalers' mean and scale) + model.safetensors; no pickle

    def _tensors(self) -> dict[str, torch.Tensor]:
        return module_tensors(self.model_)

    def _state(self) -> dict[str, Any]:
        return {"train_config": asdict(self.train_config),
                "x_scaler": [float(self.x_scaler_.mean_[0]), float(self.x_scaler_.scale_[0])],
                "z_scaler": [float(self.z_scaler_.mean_[0]), float(self.z_scaler_.scale_[0])]}  # fmt: skip

    def _restore(self, state: dict[str, Any], folder: Path) -> None:
        """Training config and scalers from the state, the network from model.safetensors (strict: a weight of
        another name or shape than the saved config builds raises ConfigError)."""
        train_config, x_scaler, z_scaler = state_fields(state, self.name, "train_config", "x_scaler", "z_scaler")
        self.train_config = saved_config(TrainConfig, train_config, "train_config")

        def scaler(pair: Any, what: str) -> StandardScaler:
            mean, scale = saved_numbers(pair, f"{what} [mean, scale]", 2).tolist()
            return saved_scaler([mean], [scale], what, 1)

        self.x_scaler_, self.z_scaler_ = scaler(x_scaler, "x_scaler"), scaler(z_scaler, "z_scaler")
        if not (Path(folder) / WEIGHTS_FILE).is_file():
            raise ConfigError(f"saved {self.name!r} forecaster has no {WEIGHTS_FILE}")
        self.model_ = RNNForecaster(self.config)
        try:
            load_weights(self.model_, folder, strict=True)
        except ConfigError:
            raise
        except Exception as exc:  # safetensors' own error on a damaged file
            raise ConfigError(f"{WEIGHTS_FILE} of the saved {self.name!r} forecaster is unreadable") from exc
        self.model_.eval()


# ---------------------------------------------------------------- the walk-forward backtest (written once)


@dataclass
class Backtest:
    """Forecasts of one model over the test period, fold by fold."""

    origins: np.ndarray  # index of the last known price of each forecast
    targets: np.ndarray  # index of the forecast price (origin + horizon)
    forecasts: np.ndarray
    fold: np.ndarray  # fold number of each forecast
    folds: list[dict[str, Any]] = field(default_factory=list)
    model: Any = None  # the last fold's fitted model
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def fold_plan(n: int, start: int, setup: ForecastSetup) -> list[tuple[int, int, int]]:
    """(train_start, first_origin, last_origin) per fold; a fold trains on y[train_start : first_origin + 1].

    Folds start every `refit_every` origins; a last fold shorter than max(10, k / 4) is merged into the one before.
    """
    h, k = setup.horizon, setup.refit_every
    first, last = start - h, n - 1 - h
    plan = []
    for o in range(first, last + 1, k):
        lo = 0 if setup.scheme == "expanding" else max(0, o + 1 - setup.train_size)
        plan.append((lo, o, min(o + k - 1, last)))
    if len(plan) > 1 and plan[-1][2] - plan[-1][1] + 1 < max(10, k // 4):
        # a last fold of a handful of forecasts gives a meaningless per-fold MAE: the previous fold runs on
        lo, o, _ = plan[-2]
        plan[-2:] = [(lo, o, last)]
    return plan


def walk_forward(
    template: Forecaster,
    y: np.ndarray,
    start: int,
    setup: ForecastSetup,
    *,
    callbacks: Sequence[Callback] = (),
    on_fold: Callable[[int, int], None] | None = None,
) -> Backtest:
    """Backtest `template` on y: forecasts of y[start:] from origins t - horizon, refitting every k steps."""
    y = np.asarray(y, dtype=np.float64)
    plan = fold_plan(len(y), start, setup)
    origins, forecasts, fold_ids, folds, history = [], [], [], [], []
    fit_s = pred_s = 0.0
    model: Forecaster | None = None
    for f, (lo, first, last) in enumerate(plan):
        if on_fold is not None:
            on_fold(f, len(plan))
        previous, model = model, template.clone()
        if previous is not None and hasattr(model, "warm_from"):
            model.warm_from(previous)
        t0 = time.perf_counter()
        model.fit(y[lo : first + 1], callbacks=callbacks)  # the past of the fold only
        t1 = time.perf_counter()
        o = np.arange(first, last + 1)
        pred = model.predict(y[lo : last + 1], o - lo)  # the array ends at the fold's last origin
        t2 = time.perf_counter()
        fit_s, pred_s = fit_s + t1 - t0, pred_s + t2 - t1
        origins.append(o)
        forecasts.append(np.asarray(pred, dtype=np.float64))
        fold_ids.append(np.full(len(o), f))
        folds.append({"fold": f, "train_start": lo, "train_end": first, "first_origin": first, "last_origin": last,
                      "fit_seconds": round(t1 - t0, 4)})  # fmt: skip
        history += [{"fold": f, **rec} for rec in getattr(model, "history_", [])]
    o_all = np.concatenate(origins)
    return Backtest(o_all, o_all + setup.horizon, np.concatenate(forecasts), np.concatenate(fold_ids), folds,
                    model, fit_s, pred_s, history)  # fmt: skip


# ---------------------------------------------------------------- scoring


def score_backtest(series: PriceSeries, start: int, setup: ForecastSetup, bt: Backtest) -> dict[str, Any]:
    """Metrics of a backtest against the actual prices and the naive forecast, plus the spread over folds."""
    y = series.close
    y_true, y_last = y[bt.targets], y[bt.origins]
    if not np.all(np.isfinite(bt.forecasts)):
        bad = int((~np.isfinite(bt.forecasts)).sum())
        raise ConfigError(f"the model produced {bad} non-finite forecasts; try other settings")
    metrics = forecast_metrics(y_last, y_true, bt.forecasts, scale=naive_scale(y[:start], setup.horizon),
                               horizon=setup.horizon)  # fmt: skip
    per_fold = [mae(y_true[bt.fold == f], bt.forecasts[bt.fold == f]) for f in np.unique(bt.fold)]
    metrics["mae_folds"] = [float(v) for v in per_fold]
    metrics["mae_fold_sd"] = float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else None
    return metrics


def interval_quantiles(series: PriceSeries, bt: Backtest) -> dict[str, float]:
    """Quantiles of the backtest's log forecast errors log(actual / forecast) (for prediction intervals)."""
    y = series.close
    err = np.log(y[bt.targets] / bt.forecasts)
    return {str(q): float(np.quantile(err, q)) for q in (0.025, 0.1, 0.9, 0.975)}


def future_dates(series: PriceSeries, steps: int) -> list[str]:
    """The next `steps` dates after the series: business days, weeks or months."""
    last = series.dates[-1]
    if series.frequency == "daily":
        idx = pd.bdate_range(last + pd.offsets.BDay(1), periods=steps)
    elif series.frequency == "weekly":
        idx = pd.DatetimeIndex([last + pd.Timedelta(weeks=k) for k in range(1, steps + 1)])
    else:
        idx = pd.DatetimeIndex([last + pd.DateOffset(months=k) for k in range(1, steps + 1)])
    return [d.date().isoformat() for d in idx]


def fan_chart(series: PriceSeries, setup: ForecastSetup, bt: Backtest) -> dict[str, Any]:
    """The next `forecast_steps` prices from the last fold's model, with 80% and 95% intervals.

    The path is the model applied recursively to its own forecasts (h steps at a time, prices in between
    interpolated); the intervals are the backtest's log-error quantiles at horizon h scaled by sqrt(k / h)
    for step k (a random-walk assumption, said on the chart).
    """
    y = list(series.close)
    h, steps = setup.horizon, setup.forecast_steps
    path: list[float] = []
    if hasattr(bt.model, "path"):  # ARIMA: its own multi-step recursion
        path = list(bt.model.path(np.asarray(y), steps))
    while len(path) < steps:
        arr = np.asarray(y)
        nxt = float(bt.model.predict(arr, np.array([len(arr) - 1]))[0])
        seg = list(np.linspace(arr[-1], nxt, h + 1)[1:])
        path += seg
        y += seg
    path = path[:steps]
    q = interval_quantiles(series, bt)
    scale = np.sqrt(np.arange(1, steps + 1) / h)
    p = np.asarray(path)
    return {
        "dates": future_dates(series, steps),
        "forecast": p.tolist(),
        "lo95": (p * np.exp(q["0.025"] * scale)).tolist(),
        "lo80": (p * np.exp(q["0.1"] * scale)).tolist(),
        "hi80": (p * np.exp(q["0.9"] * scale)).tolist(),
        "hi95": (p * np.exp(q["0.975"] * scale)).tolist(),
        "fitted_until": series.dates[bt.folds[-1]["train_end"]].date().isoformat(),
        "method": f"backtest log-error quantiles at horizon {h}, widened by sqrt(step / {h})",
    }


# ---------------------------------------------------------------- SHAP over lags


def explain_lags(est: Forecaster, y: np.ndarray, bt: Backtest, *, seed: int = 0) -> dict[str, Any] | None:
    """SHAP values per lag of the last fold's model on (at most SHAP_EXPLAIN) origins spread over the test period.

    LSTM: shap.GradientExplainer on the scaled windows; lag regression: shap.LinearExplainer (exact).
    Values are in units of the predicted horizon return (percent). Background: training windows (capped).
    Returns None for models without a lag input.
    """
    import shap

    model = bt.model
    if not hasattr(model, "features"):
        return None
    y = np.asarray(y, dtype=np.float64)
    last_fold = bt.folds[-1]
    lo = last_fold["train_start"]
    window = model.setup.window
    rng = np.random.default_rng(seed)
    train_o = np.arange(lo + window, last_fold["train_end"] - model.setup.horizon + 1)
    bg_o = np.sort(rng.choice(train_o, min(SHAP_BACKGROUND, len(train_o)), replace=False))
    test_o = bt.origins
    test_o = test_o[np.linspace(0, len(test_o) - 1, min(SHAP_EXPLAIN, len(test_o))).astype(int)]
    arr = y[lo : bt.origins.max() + 1]
    bg, X = model.features(arr, bg_o - lo), model.features(arr, test_o - lo)
    if getattr(model, "family", "") == "neural":
        net = torch.nn.Sequential(model.model_.float().eval(), torch.nn.Unflatten(0, (-1, 1)))  # (B,) -> (B, 1)
        explainer = shap.GradientExplainer(net, torch.as_tensor(bg))
        with single_thread():
            raw = explainer.shap_values(torch.as_tensor(X), nsamples=SHAP_SAMPLES, rseed=seed)
        values = np.asarray(raw).reshape(len(X), -1)
        values = values * model.z_scaler_.scale_[0]  # back to return units
        method = f"GradientExplainer (expected gradients, {SHAP_SAMPLES} samples, {len(bg)} background windows)"
    else:
        scaler, reg = model.pipeline_[0], model.pipeline_[-1]
        explainer = shap.LinearExplainer(reg, scaler.transform(bg))
        values = np.asarray(explainer.shap_values(scaler.transform(X))).reshape(len(X), -1)
        method = f"LinearExplainer (exact for a linear model, {len(bg)} background windows)"
    values = values[:, ::-1] * 100.0  # lag 1 (most recent) first; percent of return
    return {
        "lags": list(range(1, window + 1)),
        "mean_abs": np.abs(values).mean(0).round(6).tolist(),
        "values": values.round(6).tolist(),
        "origins": test_o.tolist(),
        "method": method,
    }


# ---------------------------------------------------------------- the report's forecast parts


def naive_errors(series: PriceSeries, bt: Backtest) -> np.ndarray:
    """Errors of the naive forecast on the same targets."""
    y = series.close
    return forecast_errors(y[bt.targets], y[bt.origins])


# ---------------------------------------------------------------- the forecasting evaluator (one runner, this objective)


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


class ForecastEvaluator(Evaluator):
    """Walk-forward backtest of every forecaster; MAE first, Diebold-Mariano against the naive forecast."""

    objective = "forecasting"
    primary_metric = "mae"
    primary_label = "MAE"
    higher_is_better = False
    metrics = (
        MetricSpec("mae", "MAE", False, (0.0, None), ".3f"),
        MetricSpec("rmse", "RMSE", False, (0.0, None), ".3f"),
        MetricSpec("mase", "MASE", False, (0.0, None), ".3f"),
    )
    ALPHA = 0.05

    @staticmethod
    def _setup(ctx: RunContext) -> ForecastSetup:
        return ctx.setup if ctx.setup is not None else ForecastSetup()

    def fit_and_score(self, ctx: RunContext, mspec: Any, estimator: Any, callbacks: Sequence[Any]) -> ModelOutcome:
        series: PriceSeries = ctx.data
        setup = self._setup(ctx)
        start = first_test_index(series, setup)
        cbs = list(callbacks) if getattr(estimator, "family", "") == "neural" else []
        bt = walk_forward(estimator, series.close, start, setup, callbacks=cbs)
        metrics = score_backtest(series, start, setup, bt)
        extras: dict[str, Any] = {}
        for key, make in (("shap", lambda: explain_lags(estimator, series.close, bt, seed=ctx.seed)
                           if setup.explain else None),
                          ("fan", lambda: fan_chart(series, setup, bt))):  # fmt: skip
            try:
                extras[key] = make()
            except Exception as exc:  # an explanation or a fan chart must never sink the backtest
                extras[key] = {"error": f"{type(exc).__name__}: {exc}"}
        model = bt.model
        result = {
            "metrics": metrics,
            "train_seconds": round(bt.fit_seconds, 4),
            "predict_seconds_per_1k": round(bt.predict_seconds * 1000.0 / max(1, len(bt.forecasts)), 6),
            "n_params": int(model.n_params),
            "train_samples": int(model.n_train_),
            "val_samples": int(getattr(model, "n_val_", 0)),
            "history": bt.history,
            "folds": bt.folds,
            "forecasts": bt.forecasts.round(6).tolist(),
            **extras,
        }
        return ModelOutcome(result, bt.forecasts.astype(np.float64), model)

    def _naive(self, ctx: RunContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        series: PriceSeries = ctx.data
        setup = self._setup(ctx)
        start = first_test_index(series, setup)
        y = series.close
        targets = np.arange(start, len(y))
        return y[targets], y[targets - setup.horizon], targets

    def compare(self, ctx: RunContext, results: list[dict[str, Any]], predictions: dict[str, np.ndarray]) -> list[dict]:
        """Diebold-Mariano (absolute loss) of every model against the naive last-value forecast.
        The primary row: the best neural model, else the best model."""
        y_true, y_last, _ = self._naive(ctx)
        h = self._setup(ctx).horizon
        rows = []
        for r in results:
            if r["name"] == "naive":
                continue
            dm = diebold_mariano(forecast_errors(y_true, predictions[r["name"]]), forecast_errors(y_true, y_last), h)
            ratio = r["metrics"]["mae_vs_naive"]
            rows.append({"a": r["name"], "b": "naive", "a_label": r["label"], "b_label": "Naive (last value)",
                         "mae_a": r["metrics"]["mae"], "mae_b": mae(y_true, y_last), "mae_ratio": ratio, **dm,
                         "verdict": self._verdict(r["label"], ratio, dm["p_value"])})  # fmt: skip
        by_mae = sorted(rows, key=lambda c: c["mae_a"])
        neural = [c for c in by_mae if next(r for r in results if r["name"] == c["a"])["family"] == "neural"]
        primary = (neural or by_mae or [None])[0]
        for c in rows:
            c["primary"] = c is primary
        return sorted(rows, key=lambda c: (not c["primary"], c["mae_a"]))

    def _verdict(self, label: str, ratio: float, p: float) -> str:
        pct = abs(1.0 - ratio) * 100
        if p < self.ALPHA:
            if ratio < 1:
                return (f"{label} beats the naive last-value forecast: MAE {pct:.1f}% lower, statistically "
                        f"significant (Diebold-Mariano p = {_fmt_p(p)} < {self.ALPHA}).")  # fmt: skip
            return (f"{label} is worse than the naive last-value forecast: MAE {pct:.1f}% higher "
                    f"(Diebold-Mariano p = {_fmt_p(p)}).")  # fmt: skip
        side = "lower" if ratio < 1 else "higher"
        return (f"{label}'s MAE is {pct:.2f}% {side} than the naive forecast's, but the difference is not "
                f"statistically significant (Diebold-Mariano p = {_fmt_p(p)} >= {self.ALPHA}).")  # fmt: skip

    def report_fields(self, ctx: RunContext, results: list[dict[str, Any]]) -> dict[str, Any]:
        series: PriceSeries = ctx.data
        setup = self._setup(ctx)
        y_true, y_last, targets = self._naive(ctx)
        start = int(targets[0])
        dates = series.dates
        n_folds = len(fold_plan(len(series), start, setup))
        n_val = max((r["val_samples"] for r in results if r["family"] == "neural"), default=0)
        window = "all the past (expanding)" if setup.scheme == "expanding" else f"the last {setup.train_size} steps"
        note = (
            f"walk-forward backtest: test {dates[start].date()} .. {dates[-1].date()} ({len(targets)} forecasts "
            f"{setup.horizon} step(s) ahead); each of the {n_folds} folds trains on {window} before its first "
            f"forecast and refits every {setup.refit_every} steps; scalers fitted on each fold's past only"
        )
        if n_val:
            note += f"; the LSTM's early stopping uses the last {n_val} windows of its fold"
        source = series.source + (f" ({'; '.join(series.notes)})" if series.notes else "")
        return {
            "split": {"train": start, "val": int(n_val), "test": len(targets)},
            "split_note": note,
            "data_source": source,
            "class_names": [],
            "series": {"name": series.name, "frequency": series.frequency, "rows": len(series),
                       "first": dates[0].date().isoformat(), "last": dates[-1].date().isoformat()},
            "backtest": {
                "dates": [d.date().isoformat() for d in dates[targets]],
                "actual": y_true.round(6).tolist(),
                "last": y_last.round(6).tolist(),
                "naive_mae": mae(y_true, y_last),
                "folds": n_folds,
            },
        }

    def leaderboard_rows(self, report: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for m in report["models"]:
            met = m["metrics"]
            rows.append({
                "model": m["label"],
                "family": m["family"],
                "mae": met["mae"],
                "mae_vs_naive": met["mae_vs_naive"],
                "dm_p_value": None if m["name"] == "naive" else met["dm_p_value"],
                "rmse": met["rmse"],
                "mape": met["mape"],
                "mase": met["mase"],
                "directional_accuracy": met["directional_accuracy"],
                "persistence": met["persistence"],
                "mae_fold_sd": met.get("mae_fold_sd"),
                "train_s": m["train_seconds"],
                "params": m["n_params"],
                "train_samples": m["train_samples"],
                "epochs": len(m["history"]) or None,
                "seeds": len(met.get("seed_runs", [])) or 1,
                "seed_mean": met.get("mae_seed_mean"),
                "seed_sd": met.get("mae_seed_sd"),
            })  # fmt: skip
        return sorted(rows, key=lambda r: r["mae"])

    def leaderboard_text(self, report: dict[str, Any]) -> str:
        """MAE vs naive with its Diebold-Mariano test, one model a line (module function leaderboard_text)."""
        return leaderboard_text(report)

    def headline(self, report: dict[str, Any]) -> dict[str, str]:
        models = [m for m in report["models"] if m["name"] != "naive"]
        if not models:
            return {"level": "info", "text": "Only the naive forecast was run: add a model to compare it with."}
        sig = {c["a"]: c for c in report.get("comparisons", [])}
        winners = [m for m in models if m["metrics"]["mae_vs_naive"] < 1 and sig.get(m["name"], {}).get(
            "p_value", 1.0) < self.ALPHA]  # fmt: skip
        best = min(models, key=lambda m: m["metrics"]["mae"])
        neural = [m for m in models if m["family"] == "neural"]
        if not winners:
            p = sig.get(best["name"], {}).get("p_value", float("nan"))
            if best["metrics"]["mae_vs_naive"] >= 1:
                text = (f"No model beats the random walk on this series: the naive last-value forecast has the lowest "
                        f"MAE ({report['backtest']['naive_mae']:.4g}); the closest, {best['label']}, is "
                        f"{best['metrics']['mae_vs_naive']:.3f}x naive (Diebold-Mariano p = {_fmt_p(p)}).")  # fmt: skip
            else:
                text = (f"No model beats the random walk on this series: the best, {best['label']}, has an MAE "
                        f"{best['metrics']['mae_vs_naive']:.4f}x naive, a difference indistinguishable from chance "
                        f"(Diebold-Mariano p = {_fmt_p(p)}).")  # fmt: skip
            return {"level": "warning", "text": text}
        w = min(winners, key=lambda m: m["metrics"]["mae"])
        text = (f"{w['label']} beats the random walk: MAE {w['metrics']['mae']:.4g} vs naive "
                f"{report['backtest']['naive_mae']:.4g} ({w['metrics']['mae_vs_naive']:.3f}x, Diebold-Mariano "
                f"p = {_fmt_p(sig[w['name']]['p_value'])}).")  # fmt: skip
        neural_wins = [m for m in winners if m["family"] == "neural"]
        if neural_wins:
            return {"level": "success", "text": text}
        if neural:
            bn = min(neural, key=lambda m: m["metrics"]["mae"])
            text += (f" The neural net does not: {bn['label']} is {bn['metrics']['mae_vs_naive']:.3f}x naive "
                     f"(p = {_fmt_p(sig.get(bn['name'], {}).get('p_value', float('nan')))}).")  # fmt: skip
        return {"level": "warning" if neural else "info", "text": text}


# ---------------------------------------------------------------- command line (python -m bench forecast ...)


def add_cli_args(p: Any) -> None:
    """The forecast sub-command's own options (data source and set-up)."""
    d = ForecastSetup()
    p.add_argument("--ticker", help="a Yahoo Finance ticker (online; cached), e.g. AAPL; implies --dataset ticker")
    p.add_argument("--csv", type=str, help="your price CSV; implies --dataset csv")
    p.add_argument("--date-col", help="date column of the CSV (default: guessed from the header)")
    p.add_argument("--price-col", help="price column of the CSV (default: guessed, e.g. Close)")
    p.add_argument("--horizon", type=int, default=d.horizon, help="steps ahead (1..20)")
    p.add_argument("--window", type=int, default=d.window, help="lookback window in steps")
    p.add_argument("--test-start", default=d.test_start, help="first test date YYYY-MM-DD (default: per dataset)")
    p.add_argument("--refit-every", type=int, default=d.refit_every, help="refit every k test steps")
    p.add_argument("--scheme", choices=("expanding", "rolling"), default=d.scheme)
    p.add_argument("--train-size", type=int, default=d.train_size, help="rolling training window length")
    p.add_argument("--target", choices=TARGETS, default=d.target)
    p.add_argument("--no-explain", action="store_true", help="skip SHAP over the lags")


def cli_request_parts(args: Any) -> tuple[str, ForecastSetup, dict[str, Any]]:
    """(dataset, set-up, data_options) from the parsed forecast arguments; ConfigError on bad values."""
    setup = ForecastSetup(horizon=args.horizon, window=args.window, test_start=args.test_start,
                          refit_every=args.refit_every, scheme=args.scheme, train_size=args.train_size,
                          target=args.target, explain=not args.no_explain)  # fmt: skip
    if args.ticker:
        return "ticker", setup, {"ticker": args.ticker}
    if args.csv:
        return "csv", setup, {"path": args.csv, "date_col": args.date_col, "price_col": args.price_col}
    return args.dataset, setup, {}


def leaderboard_text(report: dict[str, Any]) -> str:
    """The forecast leaderboard as plain text (CLI)."""
    rows = ForecastEvaluator().leaderboard_rows(report)

    def num(v: Any, fmt: str) -> str:
        return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)

    header = (f"{'model':20} {'family':9} {'MAE':>10} {'vs naive':>8} {'DM p':>7} {'RMSE':>10} {'MAPE %':>7} "
              f"{'MASE':>6} {'dir acc':>7} {'persist':>7} {'train s':>8}")  # fmt: skip
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['model']:20} {r['family']:9} {num(r['mae'], '10.4f')} {num(r['mae_vs_naive'], '8.4f')} "
            f"{num(r['dm_p_value'], '7.3f')} {num(r['rmse'], '10.4f')} {num(r['mape'], '7.3f')} "
            f"{num(r['mase'], '6.3f')} {num(r['directional_accuracy'], '7.3f')} {num(r['persistence'], '7.3f')} "
            f"{num(r['train_s'], '8.2f')}"
        )
    lines.append(ForecastEvaluator().headline(report)["text"])
    return "\n".join(lines)
