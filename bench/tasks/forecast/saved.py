"""Loading a stored forecaster: the inverse of `Forecaster.save` (models/forecast.py), for every model of the task.

A saved forecaster is a folder: `config.json` (kind "forecast", its name, config, series set-up and learned
state) plus `model.safetensors` for the networks. The saved name picks the class from the fixed table below,
never from anything in the file taken as code; settings go through `config_from_dict`, weights load strictly.
Anything unusable (unknown name, a missing or extra state field, weights of another shape) is a ConfigError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.tasks.forecast.backtest import NeuralForecaster
from models import forecast as fc
from models.config import ConfigError
from models.io import read_meta

# saved name -> (the forecaster class, its config class); a new forecaster adds one row here
FORECASTERS: dict[str, tuple[type[fc.Forecaster], type]] = {
    "naive": (fc.NaiveForecaster, fc.NaiveConfig),
    "drift": (fc.DriftForecaster, fc.DriftConfig),
    "moving_average": (fc.MovingAverageForecaster, fc.MovingAverageConfig),
    "linreg": (fc.LagRegressionForecaster, fc.LagRegressionConfig),
    "arima": (fc.ARIMAForecaster, fc.ARIMAConfig),
    "lstm": (NeuralForecaster, fc.RNNConfig),
    "gru": (NeuralForecaster, fc.GRUConfig),
}
META_KEYS = frozenset({"kind", "name", "config", "setup", "state", "n_train", "n_val"})


def load_forecaster(folder: str | Path) -> fc.Forecaster:
    """Rebuild the fitted forecaster saved in `folder` by its `save`; ConfigError when the folder is unusable."""
    folder = Path(folder)
    meta = read_meta(folder)  # size- and dimension-checked JSON
    if meta.get("kind") != "forecast":
        raise ConfigError(f"saved model is of kind {meta.get('kind')!r}, not a forecaster")
    name = meta.get("name")
    if not isinstance(name, str) or name not in FORECASTERS:
        raise ConfigError(f"unknown forecaster {name!r} in saved config (known: {', '.join(FORECASTERS)})")
    extra = sorted(set(meta) - META_KEYS)
    if extra:
        raise ConfigError(f"saved {name!r} forecaster: unknown field(s) {', '.join(extra)}")
    cls, config_cls = FORECASTERS[name]
    try:
        config = fc.saved_config(config_cls, meta.get("config"), "config")
        setup = fc.saved_config(fc.SeriesSetup, meta.get("setup"), "setup")
        est: Any = cls(config, setup)
        est.n_train_, est.n_val_ = int(meta.get("n_train", 0)), int(meta.get("n_val", 0))
        est._restore(meta.get("state"), folder)
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError, OSError) as exc:
        # right name and kind, but fields that do not fit together (edited or damaged)
        raise ConfigError(f"saved {name!r} forecaster is damaged or incomplete ({type(exc).__name__}: {exc})") from exc
    return est
