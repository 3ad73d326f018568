"""CNN block designs (stride-2 / max-pool / mixed) and loading models saved before `downsample` and
`precision` existed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bench.tasks.image.neural import NeuralClassifier
from models.config import TrainConfig
from models.nets import CNN, CNNConfig


@pytest.mark.parametrize("design", ["stride", "maxpool", "mixed"])
@pytest.mark.parametrize("size", [28, 8, 7])
def test_every_design_builds_and_halves(design: str, size: int) -> None:
    model = CNN(CNNConfig(downsample=design, conv_blocks=2, channels=4, hidden=8), (1, size, size), 10)
    assert model(torch.zeros(3, 1, size, size)).shape == (3, 10)
    pools = sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    strided = sum(isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2) for m in model.modules())
    assert (pools, strided) == {"stride": (0, 2), "maxpool": (2, 0), "mixed": (1, 1)}[design]


def test_model_saved_before_downsample_and_precision_loads_as_it_was(tiny_mnist, tmp_path) -> None:
    """An old config.json has no `downsample` (it was a max-pool net: same weight shapes as a stride-2 one, so a
    silent default would change the function) and carries `bf16` instead of `precision`."""
    est = NeuralClassifier(
        "cnn", CNNConfig(downsample="maxpool", channels=4, hidden=16), TrainConfig(epochs=1, precision="fp32")
    ).fit(tiny_mnist.X_train[:200], tiny_mnist.y_train[:200])
    est.save(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    del meta["config"]["downsample"]
    del meta["train_config"]["precision"]
    meta["train_config"]["bf16"] = True
    (tmp_path / "config.json").write_text(json.dumps(meta))
    old = NeuralClassifier.load(tmp_path)
    assert old.config.downsample == "maxpool" and old.train_config.precision == "auto"
    np.testing.assert_allclose(
        old.predict_proba(tiny_mnist.X_test[:50]), est.predict_proba(tiny_mnist.X_test[:50]), atol=1e-5
    )
