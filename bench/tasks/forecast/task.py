"""The stock forecasting task, declared in one place: bundled / ticker / CSV price series, forecasters scored by
walk-forward backtest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from typing import Any

from bench.core.contract import DatasetSpec, ModelSpec, TaskSpec, always_available
from bench.tasks.forecast.backtest import (
    DEFAULT_TRAIN,
    ForecastEvaluator,
    ForecastSetup,
    NeuralForecaster,
    add_cli_args,
    cli_request_parts,
)
from bench.tasks.forecast.saved import load_forecaster
from data import prices
from models import forecast as fc
from models.config import TrainConfig


def _build_forecast_task() -> TaskSpec:
    """The forecasting task: bundled / ticker / CSV price series, forecasters scored by walk-forward backtest."""

    def forecaster(cls: type) -> Callable[[Any, TrainConfig, int, Any], Any]:
        def factory(cfg: Any, train_cfg: TrainConfig, seed: int, ctx: Any = None) -> Any:
            setup = (getattr(ctx, "setup", None) or ForecastSetup()).series_setup()  # horizon, window, target
            return NeuralForecaster(cfg, setup, train_cfg) if cls is NeuralForecaster else cls(cfg, setup)

        return factory

    def dataset(name: str, label: str, description: str) -> DatasetSpec:
        return DatasetSpec(name, label, partial(prices.load_prices, name), always_available, description,
                           train_defaults=asdict(DEFAULT_TRAIN), user_data=name not in prices.BUNDLED)  # fmt: skip

    datasets = {n: dataset(n, m["label"], m["source"]) for n, m in prices.BUNDLED.items()}
    datasets["ticker"] = dataset(
        "ticker", "A ticker from Yahoo Finance", "Daily closes of any ticker via yfinance when online; cached on disk."
    )
    datasets["csv"] = dataset(
        "csv", "Your CSV", "Your own price table: choose the date and price columns; daily, weekly or monthly."
    )
    models = [
        ModelSpec("lstm", "LSTM", "neural", fc.RNNConfig, forecaster(NeuralForecaster),
                  "LSTM over the window of scaled returns, trained by the one loop; prices rebuilt.",
                  loader=load_forecaster),
        ModelSpec("gru", "GRU", "neural", fc.GRUConfig, forecaster(NeuralForecaster),
                  "The same recurrent forecaster with a GRU cell.", loader=load_forecaster),
        ModelSpec("arima", "ARIMA", "classical", fc.ARIMAConfig, forecaster(fc.ARIMAForecaster),
                  "ARIMA(p,1,q) with drift on log prices (statsmodels), refitted per fold.", loader=load_forecaster),
        ModelSpec("linreg", "Lag regression", "classical", fc.LagRegressionConfig,
                  forecaster(fc.LagRegressionForecaster),
                  "Linear regression of the horizon return on the window of past returns.", loader=load_forecaster),
        ModelSpec("drift", "Drift", "naive", fc.DriftConfig, forecaster(fc.DriftForecaster),
                  "Last value plus the average change over the training window.", loader=load_forecaster),
        ModelSpec("moving_average", "Moving average", "naive", fc.MovingAverageConfig,
                  forecaster(fc.MovingAverageForecaster), "Mean of the last k prices.", loader=load_forecaster),
        ModelSpec("naive", "Naive (last value)", "naive", fc.NaiveConfig, forecaster(fc.NaiveForecaster),
                  "The random walk: tomorrow's price is today's.", loader=load_forecaster),
    ]  # fmt: skip
    return TaskSpec(
        name="forecast",
        label="Stock forecasting",
        evaluator=ForecastEvaluator(),
        setup_cls=ForecastSetup,
        datasets=datasets,
        models={m.name: m for m in models},
        default_models=("lstm", "arima", "linreg", "drift", "moving_average", "naive"),
        cli_arguments=add_cli_args,
        cli_request=cli_request_parts,
    )



TASK = _build_forecast_task()
