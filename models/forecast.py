"""Forecasters of a price series behind one interface, and the LSTM / GRU module.

Interface (every forecaster): `fit(y) -> self` on past prices only; `predict(y, origins) -> prices`
forecasts y[o + horizon] for every origin o using y[: o + 1] only; `clone()` gives an unfitted copy
with the same settings (the walk-forward backtest refits a fresh copy on every fold).

Learned models work on returns (`log_returns`: log(P_t / P_t-1), or simple `returns`), never on price
levels, and rebuild prices from the predicted cumulative return over the horizon: on raw levels a
network cannot extrapolate beyond the training range.
The torch estimator that trains `RNNForecaster` through the one loop lives in bench/tasks/forecast/backtest.py.

A fitted forecaster is stored as a folder (`save`): `config.json` with its settings, the series set-up and its
learned numbers (`_state()`), plus `model.safetensors` for the networks; no pickle. `_restore(state, folder)` is
the inverse of `_state()`; bench/tasks/forecast/saved.py `load_forecaster` rebuilds a saved folder.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from models.config import ConfigError, check_fields, config_from_dict, opt
from models.io import write_model_folder

TARGETS = ("log_returns", "returns")
CELLS = ("lstm", "gru")


# ---------------------------------------------------------------- returns <-> prices


def to_returns(y: np.ndarray, kind: str) -> np.ndarray:
    """One-step returns r[t] = f(y[t] / y[t-1]) for t >= 1; r[0] = 0 (same length as y)."""
    y = np.asarray(y, dtype=np.float64)
    ratio = np.ones_like(y)
    ratio[1:] = y[1:] / y[:-1]
    return np.log(ratio) if kind == "log_returns" else ratio - 1.0


def cumulative_target(y: np.ndarray, origins: np.ndarray, horizon: int, kind: str) -> np.ndarray:
    """The return from y[o] to y[o + horizon] for each origin (log or simple)."""
    ratio = y[origins + horizon] / y[origins]
    return np.log(ratio) if kind == "log_returns" else ratio - 1.0


def rebuild(last: np.ndarray, cum_return: np.ndarray, kind: str) -> np.ndarray:
    """Prices from the last known price and a predicted cumulative return."""
    return last * (np.exp(cum_return) if kind == "log_returns" else 1.0 + cum_return)


def lag_windows(r: np.ndarray, origins: np.ndarray, window: int) -> np.ndarray:
    """(N, window) matrix of the returns r[o - window + 1 .. o] (oldest first) for each origin."""
    idx = np.asarray(origins)[:, None] + np.arange(-window + 1, 1)[None, :]
    return r[idx]


@dataclass(frozen=True)
class SeriesSetup:
    """What every forecaster must know about the problem (set by the forecast set-up, not by the user per model)."""

    horizon: int = 1
    window: int = 30
    target: str = "log_returns"

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError(f"target must be one of {', '.join(TARGETS)}")
        if not 1 <= self.horizon <= 20 or not 2 <= self.window <= 250:
            raise ConfigError("horizon must be 1..20 and window 2..250")


# ---------------------------------------------------------------- configs


@dataclass
class NaiveConfig:
    """Random walk: tomorrow's price is today's. No settings."""


@dataclass
class DriftConfig:
    """Random walk with drift estimated on the fold's training window. No settings."""


@dataclass
class MovingAverageConfig:
    """Mean of the last k prices."""

    k: int = opt(5, "Number of most recent prices averaged", min=1, max=250)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class LagRegressionConfig:
    """Linear regression of the next cumulative return on the last `window` returns."""

    ridge_alpha: float = opt(0.0, "L2 penalty (0 = ordinary least squares)", min=0.0, max=1e6)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class ARIMAConfig:
    """ARIMA(p, 1, q) on log prices with drift, i.e. ARMA(p, q) with a constant on returns."""

    p: int = opt(1, "Autoregressive order", min=0, max=5)
    q: int = opt(1, "Moving-average order", min=0, max=5)
    auto: bool = opt(False, "Choose p and q (0..2 each) by AIC on each fold instead")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class RNNConfig:
    """Recurrent network over the window of scaled returns."""

    cell: str = opt("lstm", "Recurrent cell", choices=CELLS)
    hidden: int = opt(32, "Hidden units per layer", min=2, max=512)
    layers: int = opt(1, "Stacked recurrent layers", min=1, max=4)
    dropout: float = opt(0.1, "Dropout before the output layer (and between layers)", min=0.0, max=0.8)
    refit_epochs: int = opt(
        2, "Epochs on each later fold, starting from the previous fold's weights (0 = train every fold from scratch)",
        min=0, max=200,
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)


# ---------------------------------------------------------------- the network


class RNNForecaster(nn.Module):
    """LSTM / GRU over a window: (B, W) scaled returns -> (B,) scaled cumulative return."""

    def __init__(self, cfg: RNNConfig) -> None:
        super().__init__()
        rnn = nn.LSTM if cfg.cell == "lstm" else nn.GRU
        self.rnn = rnn(1, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                       dropout=cfg.dropout if cfg.layers > 1 else 0.0)  # fmt: skip
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.unsqueeze(-1))  # (B, W, H)
        return self.head(self.drop(out[:, -1])).squeeze(-1)  # (B,)


# ---------------------------------------------------------------- baselines


class Forecaster:
    """Shared parts: settings, clone, bookkeeping attributes the runner reports."""

    family = "classical"
    name = "forecaster"

    def __init__(self, config: Any = None, setup: SeriesSetup | None = None) -> None:
        self.config = config
        self.setup = setup or SeriesSetup()
        self.history_: list = []
        self.n_train_ = 0
        self.n_val_ = 0

    def clone(self) -> Forecaster:
        """A fresh, unfitted copy with the same settings."""
        return type(self)(self.config, self.setup)

    @property
    def n_params(self) -> int:
        return 0

    def fit(self, y: np.ndarray, callbacks: Any = ()) -> Forecaster:
        self.n_train_ = len(y)
        return self

    def predict(self, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def save(self, folder: str | Path) -> None:
        """Write `config.json` (settings and learned numbers only; no pickle), and the weights of a network,
        atomically file by file (models.io.write_model_folder)."""
        meta = {"kind": "forecast", "name": self.name, "config": asdict(self.config) if self.config else {},
                "setup": asdict(self.setup), "state": self._state(), "n_train": int(self.n_train_),
                "n_val": int(self.n_val_)}  # fmt: skip
        write_model_folder(folder, meta, tensors=self._tensors())

    def _state(self) -> dict[str, Any]:
        """The learned numbers, as JSON values (the inverse is `_restore`)."""
        return {}

    def _tensors(self) -> dict[str, torch.Tensor] | None:
        """Weights stored beside the config in model.safetensors (None: the config holds everything)."""
        return None

    def _restore(self, state: dict[str, Any], folder: Path) -> None:
        """Set the fitted attributes from a saved `_state()` (and the folder's weights); ConfigError when unusable."""
        state_fields(state, self.name)


def state_fields(state: Any, name: str, *fields: str) -> list[Any]:
    """The values of exactly `fields` in a saved state, in that order; ConfigError on a missing or extra field."""
    if not isinstance(state, dict):
        raise ConfigError(f"saved {name!r} forecaster: state must be a JSON object")
    missing, extra = sorted(set(fields) - set(state)), sorted(set(state) - set(fields))
    if missing or extra:
        what = "; ".join(([f"missing {', '.join(missing)}"] if missing else [])
                         + ([f"unknown {', '.join(extra)}"] if extra else []))  # fmt: skip
        raise ConfigError(f"saved {name!r} forecaster: state fields do not match ({what})")
    return [state[f] for f in fields]


def saved_config(cls: type, values: Any, what: str) -> Any:
    """A config dataclass rebuilt from a saved dict: unknown keys refused (config_from_dict), and every value of
    the JSON type of its field's default (a `k` of "5" or a `window` of 10.5 is refused here, not when predicting)."""
    if not isinstance(values, dict):
        raise ConfigError(f"saved forecaster: {what} must be a JSON object")
    for f in dataclasses.fields(cls):
        if f.name not in values or f.default is dataclasses.MISSING:
            continue
        v, want = values[f.name], type(f.default)
        if want is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        elif want is int:
            ok = isinstance(v, int) and not isinstance(v, bool)
        else:
            ok = isinstance(v, want)
        if not ok:
            raise ConfigError(f"saved forecaster: {what}.{f.name} must be a {want.__name__}, got {v!r}")
    return config_from_dict(cls, values)


def saved_numbers(value: Any, what: str, size: int | None = None, positive: bool = False) -> np.ndarray:
    """A saved number (size None) or list of `size` numbers as float64, all finite (and > 0 if `positive`)."""
    values = [value] if size is None else value
    if not isinstance(values, list) or (size is not None and len(values) != size):
        raise ConfigError(f"saved forecaster: {what} must be a list of {size} numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise ConfigError(f"saved forecaster: {what} must hold finite numbers only")
    out = np.asarray(values, dtype=np.float64)
    if positive and not np.all(out > 0):
        raise ConfigError(f"saved forecaster: {what} must be positive")
    return out


def saved_scaler(mean: Any, scale: Any, what: str, size: int) -> StandardScaler:
    """A fitted StandardScaler rebuilt from its saved per-feature mean and scale."""
    scaler = StandardScaler()
    scaler.mean_ = saved_numbers(mean, f"{what} mean", size)
    scaler.scale_ = saved_numbers(scale, f"{what} scale", size, positive=True)
    scaler.var_ = scaler.scale_**2
    scaler.n_features_in_ = size
    scaler.n_samples_seen_ = 0
    return scaler


class NaiveForecaster(Forecaster):
    """Last value: the random walk every forecaster must beat."""

    family = "naive"
    name = "naive"

    def predict(self, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float64)[np.asarray(origins)]


class MovingAverageForecaster(Forecaster):
    """Mean of the last k prices."""

    family = "naive"
    name = "moving_average"

    def predict(self, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        k = self.config.k
        csum = np.concatenate([[0.0], np.cumsum(y)])
        o = np.asarray(origins)
        lo = np.maximum(o + 1 - k, 0)
        return (csum[o + 1] - csum[lo]) / (o + 1 - lo)


class DriftForecaster(Forecaster):
    """Random walk with drift: the average change over the fold's training window, times the horizon."""

    family = "naive"
    name = "drift"

    def fit(self, y: np.ndarray, callbacks: Any = ()) -> DriftForecaster:
        y = np.asarray(y, dtype=np.float64)
        self.n_train_ = len(y)
        self.slope_ = float((y[-1] - y[0]) / max(1, len(y) - 1))
        return self

    def predict(self, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float64)[np.asarray(origins)] + self.setup.horizon * self.slope_

    def _state(self) -> dict[str, Any]:
        return {"slope": self.slope_}

    def _restore(self, state: dict[str, Any], folder: Path) -> None:
        (slope,) = state_fields(state, self.name, "slope")
        self.slope_ = float(saved_numbers(slope, "slope")[0])


def _training_origins(n: int, setup: SeriesSetup) -> np.ndarray:
    """Origins inside a training array of length n whose window and target both lie inside it."""
    origins = np.arange(setup.window, n - setup.horizon)
    if len(origins) < 10:
        raise ConfigError(
            f"too few rows to train: {n} prices give {max(0, len(origins))} training windows of "
            f"{setup.window} returns with horizon {setup.horizon}; lower the window or move the test start later"
        )
    return origins


class LagRegressionForecaster(Forecaster):
    """Linear regression of the cumulative return over the horizon on the last `window` returns.

    The scaler and the regression are fitted on the fold's training window only (one sklearn pipeline).
    """

    name = "linreg"

    def fit(self, y: np.ndarray, callbacks: Any = ()) -> LagRegressionForecaster:
        s = self.setup
        y = np.asarray(y, dtype=np.float64)
        r = to_returns(y, s.target)
        origins = _training_origins(len(y), s)
        X, z = lag_windows(r, origins, s.window), cumulative_target(y, origins, s.horizon, s.target)
        reg = Ridge(alpha=self.config.ridge_alpha) if self.config.ridge_alpha > 0 else LinearRegression()
        self.pipeline_: Pipeline = make_pipeline(StandardScaler(), reg).fit(X, z)
        self.n_train_ = len(z)
        return self

    def features(self, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """The lag matrix the model sees at each origin (oldest lag first)."""
        return lag_windows(to_returns(y, self.setup.target), np.asarray(origins), self.setup.window)

    def predict(self, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        z = self.pipeline_.predict(self.features(y, origins))
        return rebuild(y[np.asarray(origins)], z, self.setup.target)

    @property
    def n_params(self) -> int:
        return self.setup.window + 1

    def _state(self) -> dict[str, Any]:
        scaler, reg = self.pipeline_[0], self.pipeline_[-1]
        return {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(), "coef": reg.coef_.tolist(),
                "intercept": float(reg.intercept_)}  # fmt: skip

    def _restore(self, state: dict[str, Any], folder: Path) -> None:
        mean, scale, coef, intercept = state_fields(state, self.name, "mean", "scale", "coef", "intercept")
        w = self.setup.window  # one scaler mean / scale and one coefficient per lag
        reg = Ridge(alpha=self.config.ridge_alpha) if self.config.ridge_alpha > 0 else LinearRegression()
        reg.coef_ = saved_numbers(coef, "coef", w)
        reg.intercept_ = float(saved_numbers(intercept, "intercept")[0])
        reg.n_features_in_ = w
        self.pipeline_ = make_pipeline(saved_scaler(mean, scale, "scaler", w), reg)


class ARIMAForecaster(Forecaster):
    """ARMA(p, q) with a constant on (100x) returns = ARIMA(p, 1, q) with drift on (log) prices (statsmodels).

    Fitted once per fold; between refits the fitted parameters are applied to the longer series with
    `res.apply(..., refit=False)` (one Kalman filter pass, ~100x faster than refitting), and h-step
    forecasts are the ARMA recursion from each origin's filtered residuals.
    """

    name = "arima"
    SCALE = 100.0
    BURN_IN = 500

    def _fit_order(self, r: np.ndarray, p: int, q: int) -> Any:
        from statsmodels.tsa.arima.model import ARIMA

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; the AIC / errors tell the story
            # innovations MLE: the same estimates as the state-space MLE here, ~8x faster (measured)
            return ARIMA(r, order=(p, 0, q), trend="c").fit(method="innovations_mle", cov_type="none")

    def fit(self, y: np.ndarray, callbacks: Any = ()) -> ARIMAForecaster:
        y = np.asarray(y, dtype=np.float64)
        r = to_returns(y, self.setup.target)[1:] * self.SCALE
        if len(r) < 30:
            raise ConfigError(f"ARIMA needs at least 30 training prices, got {len(y)}")
        if self.config.auto:
            fits = [self._fit_order(r, p, q) for p in range(3) for q in range(3)]
            self.res_ = min(fits, key=lambda f: f.aic)
        else:
            self.res_ = self._fit_order(r, self.config.p, self.config.q)
        self.order_ = (len(self.res_.arparams), 1, len(self.res_.maparams))
        self.aic_ = float(self.res_.aic)
        self.n_train_ = len(r)
        return self

    def _filter(self, y: np.ndarray, first_origin: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Demeaned scaled returns and one-step residuals of y[lo:], lo = BURN_IN returns before the first
        origin (the filtered residuals forget where the filter starts), by `res.apply(..., refit=False)`."""
        lo = max(0, first_origin - self.BURN_IN)
        r = to_returns(y[lo:], self.setup.target)[1:] * self.SCALE  # r[j] = return into y[lo + j + 1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            applied = self.res_.apply(r, refit=False)
        mu = float(self.res_.params[0])
        return r - mu, np.asarray(applied.resid), mu

    def predict(self, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        o = np.asarray(origins)
        lo = max(0, int(o.min()) - self.BURN_IN)
        x, resid, mu = self._filter(y[: o.max() + 1], int(o.min()))
        y, o = y[lo : o.max() + 1], o - lo
        h = self.setup.horizon
        out = np.empty(len(o))
        for n, origin in enumerate(o):
            out[n] = self._recurse(x, resid, origin, h, mu)[-1] * y[origin]
        return out

    def _recurse(self, x: np.ndarray, resid: np.ndarray, origin: int, steps: int, mu: float) -> np.ndarray:
        """Price ratios y[origin + k] / y[origin] for k = 1..steps from the ARMA recursion."""
        phi, theta = np.asarray(self.res_.arparams), np.asarray(self.res_.maparams)
        p, q = len(phi), len(theta)
        last = origin - 1  # index in r of the return into y[origin]
        xs = [0.0] * p + list(x[max(0, last - p + 1) : last + 1])
        es = [0.0] * q + list(resid[max(0, last - q + 1) : last + 1])
        rets = []
        for _ in range(steps):
            nxt = sum(phi[i] * xs[-1 - i] for i in range(p)) + sum(theta[j] * es[-1 - j] for j in range(q))
            xs.append(nxt)
            es.append(0.0)  # future shocks have mean zero
            rets.append((nxt + mu) / self.SCALE)
        r = np.asarray(rets)
        return np.exp(np.cumsum(r)) if self.setup.target == "log_returns" else np.cumprod(1.0 + r)

    def path(self, y: np.ndarray, steps: int) -> np.ndarray:
        """Prices for the next `steps` steps after the end of y (one filter pass, then the recursion)."""
        y = np.asarray(y, dtype=np.float64)
        x, resid, mu = self._filter(y, len(y) - 1)
        origin = len(y) - 1 - max(0, len(y) - 1 - self.BURN_IN)
        return self._recurse(x, resid, origin, steps, mu) * y[-1]

    @property
    def n_params(self) -> int:
        return len(self.res_.params)

    def _state(self) -> dict[str, Any]:
        return {"order": list(self.order_), "params": np.asarray(self.res_.params).tolist(), "aic": self.aic_}

    def _restore(self, state: dict[str, Any], folder: Path) -> None:
        """Rebuild the statsmodels results from the fitted parameters: the same model specification smoothed
        with them (`ARIMA(...).smooth(params)`, as the fit ends). Forecasting only needs the specification and
        the parameters: `_filter` applies them to the series it is given, never to the training data."""
        from statsmodels.tsa.arima.model import ARIMA

        order, params, aic = state_fields(state, self.name, "order", "params", "aic")
        if (
            not isinstance(order, list)
            or len(order) != 3
            or order[1] != 1
            or not all(isinstance(k, int) and not isinstance(k, bool) and 0 <= k <= 5 for k in order)
        ):
            raise ConfigError(f"saved 'arima' forecaster: order must be [p, 1, q] with p, q in 0..5, got {order!r}")
        p, q = order[0], order[2]
        values = saved_numbers(params, f"params of ARIMA({p},1,{q}) (const, {p} AR, {q} MA, sigma2)", p + q + 2)
        if values[-1] <= 0:
            raise ConfigError("saved 'arima' forecaster: the innovation variance sigma2 must be positive")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ARIMA(np.zeros(2 * (p + q) + 2), order=(p, 0, q), trend="c")  # placeholder data, never used
            try:
                self.res_ = model.smooth(values, cov_type="none")
            except (ValueError, np.linalg.LinAlgError) as exc:
                raise ConfigError(
                    f"saved 'arima' forecaster: its parameters do not define a usable model ({exc})"
                ) from exc
        self.order_ = (p, 1, q)
        if isinstance(aic, bool) or not isinstance(aic, (int, float)):
            raise ConfigError("saved 'arima' forecaster: aic must be a number")
        self.aic_ = float(aic)  # reported only; may be inf for a degenerate fit


@dataclass
class GRUConfig(RNNConfig):
    """The same recurrent forecaster with a GRU cell."""

    cell: str = opt("gru", "Recurrent cell", choices=CELLS)
