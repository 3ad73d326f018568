"""Stored forecasters load back (issue 16): every model of the forecast task, fitted, saved and rebuilt by its
ModelSpec's loader, forecasts exactly what it forecast before; a tampered folder is refused with ConfigError."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from bench.tasks import get_task
from bench.tasks.forecast.backtest import ForecastSetup
from bench.tasks.forecast.saved import load_forecaster
from data.prices import PriceSeries, load_prices
from models.config import ConfigError, TrainConfig

TASK = get_task("forecast")
FAST_TRAIN = TrainConfig(epochs=2, batch_size=64, lr=3e-3, patience=2, bf16=False)
# not the defaults: a loader that drops the set-up (horizon, window, target) forecasts something else
SETUP = ForecastSetup(horizon=2, window=12, target="returns", refit_every=40, explain=False)
N_TRAIN = 250


@pytest.fixture(scope="module")
def series() -> PriceSeries:
    """The last 320 real S&P 500 closes: fit on the first 250, forecast from every later origin."""
    return load_prices("sp500", max_samples=320)


def fit(name: str, y: np.ndarray) -> Any:
    spec = TASK.models[name]
    est = spec.factory(spec.default_config("sp500"), FAST_TRAIN, 0, SimpleNamespace(setup=SETUP))
    return est.fit(y[:N_TRAIN])


def origins(y: np.ndarray) -> np.ndarray:
    return np.arange(N_TRAIN - 1, len(y) - SETUP.horizon)


@pytest.fixture(scope="module")
def saved(series: PriceSeries, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Any, Path]]:
    """name -> (the fitted forecaster, the folder it was saved to); each model fitted once per module."""
    root, done = tmp_path_factory.mktemp("saved"), {}

    def get(name: str) -> tuple[Any, Path]:
        if name not in done:
            est = fit(name, series.close)
            est.save(root / name)
            done[name] = est, root / name
        return done[name]

    return get


@pytest.mark.parametrize("name", list(TASK.models))
def test_reloaded_forecaster_predicts_the_same(name: str, series: PriceSeries, saved: Any, tmp_path: Path) -> None:
    spec = TASK.models[name]
    assert spec.loader is not None, f"model {name!r} declares no loader: its stored runs cannot be reopened"
    est, folder = saved(name)
    y, o = series.close, origins(series.close)
    before = est.predict(y, o)

    loaded = spec.loader(folder)

    assert type(loaded) is type(est) and loaded.name == name
    assert loaded.config == est.config and type(loaded.config) is type(est.config)
    assert loaded.setup == est.setup == SETUP.series_setup()
    np.testing.assert_allclose(loaded.predict(y, o), before, rtol=1e-12, atol=0)
    assert loaded.n_params == est.n_params and loaded.n_train_ == est.n_train_
    # saved again, it writes the same config (every learned number came back) and the same weights
    loaded.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text()) == json.loads(
        (folder / "config.json").read_text()
    )
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == sorted(p.name for p in folder.iterdir())


def test_reloaded_arima_continues_the_fan_chart(series: PriceSeries, saved: Any) -> None:
    est, folder = saved("arima")
    np.testing.assert_allclose(load_forecaster(folder).path(series.close, 5), est.path(series.close, 5), rtol=1e-12)


Tamper = Callable[[dict[str, Any], Path, Any], None]  # (config.json as a dict, the folder, the saved fixture)


def _edit(key: str, value: Any) -> Tamper:
    """Set meta[key path] = value (a path "state.coef" goes into nested objects; value None deletes)."""

    def edit(meta: dict[str, Any], folder: Path, saved: Any) -> None:
        *parents, last = key.split(".")
        node = meta
        for k in parents:
            node = node[k]
        if value is None:
            del node[last]
        else:
            node[last] = value

    return edit


def _weights_of(other: str) -> Tamper:
    def swap(meta: dict[str, Any], folder: Path, saved: Any) -> None:
        shutil.copy(saved(other)[1] / "model.safetensors", folder / "model.safetensors")

    return swap


TAMPERED = {
    "unknown name": ("naive", _edit("name", "prophet"), "unknown forecaster 'prophet'"),
    "a class path as name": ("naive", _edit("name", "models.forecast:NaiveForecaster"), "unknown forecaster"),
    "another kind": ("drift", _edit("kind", "neural"), "not a forecaster"),
    "state field dropped": ("linreg", _edit("state.coef", None), "missing coef"),
    "state field added": ("drift", _edit("state.extra", 1.0), "unknown extra"),
    "coefficients of another length": ("linreg", _edit("state.coef", [0.1] * 3), "coef must be a list of 12"),
    "non-finite slope": ("drift", _edit("state.slope", float("nan")), "finite"),
    "setting of the wrong type": ("moving_average", _edit("config.k", "5"), "k must be a int"),
    "unknown setting": ("moving_average", _edit("config.window", 3), "unknown setting"),
    "ARIMA order and params disagree": ("arima", _edit("state.order", [2, 1, 1]), "params of ARIMA"),
    "ARIMA order out of range": ("arima", _edit("state.order", [9, 1, 1]), "order must be"),
    "weights of another shape than the config": ("lstm", _edit("config.hidden", 16), "do not match"),
    "weights of another model": ("lstm", _weights_of("gru"), "do not match"),
    "weights missing": ("gru", lambda meta, folder, saved: (folder / "model.safetensors").unlink(), "no model.safetensors"),
    "scaler of another size": ("lstm", _edit("state.x_scaler", [0.0]), "x_scaler"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_folder_is_refused(case: str, saved: Any, tmp_path: Path) -> None:
    name, tamper, message = TAMPERED[case]
    folder = tmp_path / name
    shutil.copytree(saved(name)[1], folder)
    meta = json.loads((folder / "config.json").read_text())
    tamper(meta, folder, saved)
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=message):
        TASK.models[name].loader(folder)


def test_every_saved_name_is_a_model_of_the_task() -> None:
    """The loader's fixed table and the task's models agree: no model is stored under a name nobody loads."""
    from bench.tasks.forecast.saved import FORECASTERS

    assert set(FORECASTERS) == set(TASK.models)
    for name, (_, config_cls) in FORECASTERS.items():
        assert config_cls is TASK.models[name].config_cls
        assert dataclasses.is_dataclass(config_cls)
