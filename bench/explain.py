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
PRETRAINED_BACKGROUND = 8
PRETRAINED_SAMPLES = 8


class ExplanationUnavailable(ValueError):
    """This model has no SHAP explainer here; the message says which ones do."""


def explainable(estimator: Any) -> bool:
    """Whether explain_images supports this estimator."""
    return getattr(estimator, "family", "") == "neural" or getattr(estimator, "name", "") == "logreg"


def _torch_module(estimator: Any) -> torch.nn.Module:
    """The module that maps images to logits: the whole pretrained model for transfer heads, else model_."""
    full = getattr(estimator, "full_module", None)
    return full() if callable(full) else estimator.model_


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
        model = _torch_module(estimator).float().eval()
        if hasattr(estimator, "full_module"):  # a pretrained backbone at up to 224 px: keep it to seconds
            X_background, nsamples = X_background[:PRETRAINED_BACKGROUND], min(nsamples, PRETRAINED_SAMPLES)
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


def runner_up(proba: np.ndarray) -> tuple[int, int]:
    """(predicted, runner-up) class indices of one probability vector."""
    order = np.argsort(-np.asarray(proba))
    return int(order[0]), int(order[1]) if len(order) > 1 else int(order[0])


def explain_photo(image: Any, *, nsamples: int = PRETRAINED_SAMPLES, seed: int = 0, size: int = 224) -> dict[str, Any]:
    """Expected-gradients SHAP of EfficientNet-Lite0's top ImageNet label for one photo (PIL image).

    Background: the photo heavily blurred and a flat grey image (what "no detail" looks like), so the map
    shows which details pushed the label up. Returns {"values": (H, W) summed over colour channels,
    "image": (H, W, 3) in [0, 1] as the model saw it, "label", "probability", "method", "seconds"}.
    """
    import time

    import shap
    from PIL import ImageFilter, ImageOps

    from models.pretrained import Normalised, imagenet_classes, shared_model

    t0 = time.perf_counter()
    photo = ImageOps.fit(image.convert("RGB"), (size, size))
    x = np.asarray(photo, dtype=np.float32)[None].transpose(0, 3, 1, 2) / 255.0
    blurred = np.asarray(photo.filter(ImageFilter.GaussianBlur(size / 12)), dtype=np.float32)
    background = np.stack([blurred.transpose(2, 0, 1) / 255.0, np.full_like(x[0], 0.5)])
    model = Normalised(shared_model(), size).eval()
    with torch.no_grad():
        proba = torch.softmax(model(torch.from_numpy(x)), 1)[0].numpy()
    top = int(proba.argmax())
    explainer = shap.GradientExplainer(model, torch.from_numpy(background))
    values, _ = explainer.shap_values(torch.from_numpy(x), nsamples=nsamples, rseed=seed, ranked_outputs=1)
    vals = np.asarray(values)
    # shap puts the ranked outputs last, (N, C, H, W, 1); older releases returned a list, (1, N, C, H, W)
    vals = vals[0, ..., 0] if vals.shape[-1] == 1 else vals[0, 0]
    return {
        "values": vals.sum(0),
        "image": x[0].transpose(1, 2, 0),
        "label": imagenet_classes()[top],
        "probability": float(proba[top]),
        "method": f"GradientExplainer (expected gradients, {nsamples} samples; background: the photo blurred "
        "and a flat grey image)",
        "seconds": time.perf_counter() - t0,
    }
