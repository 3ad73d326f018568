"""Every registered model, on the fast path: trains, beats chance, and round-trips through save/load."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from bench.tasks import REGISTRY, get_task
from bench.tasks.image.neural import NeuralClassifier
from models.classical import SklearnClassifier
from models.config import ConfigError, TrainConfig
from models.nets import CNNConfig, MLPConfig

IMAGE = get_task("image")
MODEL_NAMES = list(IMAGE.models)


def fit_fast(name: str, split, train_cfg: TrainConfig):
    spec = IMAGE.models[name]
    cfg = spec.default_config("mnist-5k")
    if name == "cnn":
        cfg = dataclasses.replace(cfg, channels=8)
    if name == "rf":
        cfg = dataclasses.replace(cfg, n_estimators=20)
    return spec.factory(cfg, train_cfg, 0, None).fit(split.X_train, split.y_train)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_trains_and_round_trips(name: str, tiny_mnist, fast_train, tmp_path) -> None:
    est = fit_fast(name, tiny_mnist, fast_train)
    pred = est.predict(tiny_mnist.X_test)
    assert pred.shape == tiny_mnist.y_test.shape
    acc = float((pred == tiny_mnist.y_test).mean())
    if IMAGE.models[name].family == "naive":
        assert np.all(pred == np.bincount(tiny_mnist.y_train).argmax())
    else:
        assert acc > 0.5, f"{name} is not better than chance (10%) by a margin: {acc:.3f}"
    assert est.n_params > 0
    est.save(tmp_path / name)
    loaded = type(est).load(tmp_path / name)
    np.testing.assert_array_equal(loaded.predict(tiny_mnist.X_test), pred)


def test_registry_is_consistent() -> None:
    for task in REGISTRY.values():
        assert set(task.default_models) <= set(task.models)
        families = {s.family for s in task.models.values()}
        assert "neural" in families and "naive" in families
        for ds in task.datasets:
            for spec in task.models.values():
                spec.default_config(ds)  # every default validates
            task.datasets[ds].default_train_config()


@pytest.mark.parametrize(
    ("cls", "values", "message"),
    [
        (CNNConfig, {"kernel_size": 4}, "odd"),
        (CNNConfig, {"activation": "swish"}, "(?i)activation"),
        (CNNConfig, {"dropout": 1.5}, "at most"),
        (MLPConfig, {"layers": 0}, "at least"),
        (TrainConfig, {"lr": 0.0}, "at least"),
        (TrainConfig, {"optimizer": "lion"}, "(?i)optimizer"),
        (TrainConfig, {"lr": float("nan")}, "NaN"),
    ],
)
def test_invalid_configs_are_refused(cls, values, message) -> None:
    with pytest.raises(ConfigError, match=message):
        cls(**values)


def test_too_many_conv_blocks_for_8x8_images() -> None:
    with pytest.raises(ConfigError, match="too many"):
        NeuralClassifier("cnn", CNNConfig(conv_blocks=4, channels=4)).fit(
            np.zeros((20, 1, 8, 8), np.float32), np.arange(20) % 2
        )


def test_mismatched_weights_are_refused(tiny_mnist, fast_train, tmp_path) -> None:
    est = NeuralClassifier("mlp", MLPConfig(layers=1, neurons=16), fast_train).fit(
        tiny_mnist.X_train, tiny_mnist.y_train
    )
    est.save(tmp_path)
    cfg = (tmp_path / "config.json").read_text().replace('"neurons": 16', '"neurons": 32')
    (tmp_path / "config.json").write_text(cfg)
    with pytest.raises(ConfigError, match="do not match"):
        NeuralClassifier.load(tmp_path)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/neuralbench-pwned",))


def test_malicious_pickle_never_runs(tmp_path) -> None:
    """A pickle smuggled in as weights is rejected by safetensors; its payload never executes."""
    import os

    marker = "/tmp/neuralbench-pwned"
    if os.path.exists(marker):
        os.unlink(marker)
    est = NeuralClassifier("mlp", MLPConfig(layers=1, neurons=4), TrainConfig(epochs=1, val_fraction=0.0))
    est.fit(np.random.rand(20, 1, 4, 4).astype(np.float32), np.arange(20) % 2)
    est.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(Exception):  # noqa: B017 - any refusal is fine, as long as nothing runs
        NeuralClassifier.load(tmp_path / "m")
    assert not os.path.exists(marker)


def test_skops_refuses_foreign_types(tmp_path) -> None:
    import json

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    est = SklearnClassifier("majority").fit(np.zeros((10, 1, 2, 2), np.float32), np.arange(10) % 2)
    est.save(tmp_path)
    # replace the model by an object that references an arbitrary function
    sio.dump(FunctionTransformer(func=print), tmp_path / "model.skops")
    assert json.loads((tmp_path / "config.json").read_text())["name"] == "majority"
    with pytest.raises(ConfigError, match="allow-list"):
        SklearnClassifier.load(tmp_path)
