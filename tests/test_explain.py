"""SHAP adapters: shapes, exact additivity for the linear model, approximate completeness for the nets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.core.explain import ExplanationUnavailable, explain_images
from bench.tasks.image.neural import NeuralClassifier
from models.classical import SklearnClassifier
from models.config import TrainConfig
from models.nets import MLPConfig


def test_linear_explainer_is_additive(tiny_mnist) -> None:
    est = SklearnClassifier("logreg").fit(tiny_mnist.X_train, tiny_mnist.y_train)
    X = tiny_mnist.X_test[:5]
    out = explain_images(est, tiny_mnist.X_train, X)
    assert out["values"].shape == (5, 1, 28, 28, 10)
    scaler, lr = est.estimator_[0], est.estimator_[-1]
    margin = lr.decision_function(scaler.transform(X.reshape(5, -1)))
    total = out["values"].reshape(5, -1, 10).sum(1) + out["base_values"]
    np.testing.assert_allclose(total, margin, atol=1e-4)


def test_gradient_explainer_is_roughly_complete(tiny_mnist) -> None:
    est = NeuralClassifier("mlp", MLPConfig(layers=1, neurons=32, dropout=0.0), TrainConfig(epochs=2, bf16=False))
    est.fit(tiny_mnist.X_train, tiny_mnist.y_train)
    X = tiny_mnist.X_test[:6]
    out = explain_images(est, tiny_mnist.X_train, X, nsamples=400)
    assert out["values"].shape == (6, 1, 28, 28, 10)
    with torch.no_grad():
        fx = est.model_(torch.as_tensor(X)).numpy()
    total = out["values"].reshape(6, -1, 10).sum(1) + out["base_values"]
    # expected gradients satisfy completeness in expectation: close, not exact
    err = np.abs(total - fx).mean() / np.abs(fx - out["base_values"]).mean()
    assert err < 0.25, err
    np.testing.assert_array_equal(out["predicted"], est.predict(X))


def test_unsupported_models_say_so(tiny_mnist) -> None:
    est = SklearnClassifier("majority").fit(tiny_mnist.X_train, tiny_mnist.y_train)
    with pytest.raises(ExplanationUnavailable, match="logistic regression"):
        explain_images(est, tiny_mnist.X_train, tiny_mnist.X_test[:2])
