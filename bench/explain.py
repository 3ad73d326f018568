"""SHAP explanations, computed apart from their display, with capped background sets.

Neural models: shap.GradientExplainer (expected gradients). Logistic regression: shap.LinearExplainer
(exact for a linear model). Other baselines: not offered (Kernel SHAP on 784 pixels is too slow to be honest).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

MAX_BACKGROUND = 100
MAX_EXPLAIN = 16


class ExplanationUnavailable(ValueError):
    """This model has no SHAP explainer here; the message says which ones do."""


def explainable(estimator: Any) -> bool:
    """Whether explain_images supports this estimator."""
    return getattr(estimator, "family", "") == "neural" or getattr(estimator, "name", "") == "logreg"


def explain_images(
    estimator: Any, X_background: np.ndarray, X: np.ndarray, *, nsamples: int = 64, seed: int = 0
) -> dict[str, Any]:
    """SHAP values of every class for images X (N, C, H, W).

    Returns {"values": (N, C, H, W, K) array, "base_values": (K,), "method": str, "predicted": (N,)}.
    The background set is capped at MAX_BACKGROUND images and X at MAX_EXPLAIN.
    """
    import shap

    rng = np.random.default_rng(seed)
    if len(X_background) > MAX_BACKGROUND:
        X_background = X_background[rng.choice(len(X_background), MAX_BACKGROUND, replace=False)]
    X = X[:MAX_EXPLAIN]
    if getattr(estimator, "family", "") == "neural":
        model = estimator.model_.float().eval()
        device = next(model.parameters()).device
        bg = torch.as_tensor(X_background, dtype=torch.float32, device=device)
        xt = torch.as_tensor(X, dtype=torch.float32, device=device)
        explainer = shap.GradientExplainer(model, bg)
        values = np.asarray(explainer.shap_values(xt, nsamples=nsamples, rseed=seed))
        with torch.no_grad():
            base = model(bg).mean(0).cpu().numpy()
        method = f"GradientExplainer (expected gradients, {nsamples} samples, {len(bg)} background images)"
    elif getattr(estimator, "name", "") == "logreg":
        scaler, lr = estimator.estimator_[0], estimator.estimator_[-1]
        flat_bg = scaler.transform(X_background.reshape(len(X_background), -1))
        flat_x = scaler.transform(X.reshape(len(X), -1))
        explainer = shap.LinearExplainer(lr, flat_bg)
        values = np.asarray(explainer.shap_values(flat_x))  # (N, D, K) in the logit space
        if values.ndim == 2:  # binary problems come back as (N, D)
            values = values[..., None]
        values = values.reshape(*X.shape, values.shape[-1])
        base = np.atleast_1d(np.asarray(explainer.expected_value))
        method = f"LinearExplainer (exact for a linear model, {len(flat_bg)} background images)"
    else:
        raise ExplanationUnavailable("SHAP explanations are offered for the neural models and logistic regression")
    return {"values": values, "base_values": base, "method": method, "predicted": estimator.predict(X)}
