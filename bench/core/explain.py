"""SHAP explanations, computed apart from their display, with capped background sets.

Neural models: shap.GradientExplainer (expected gradients). Logistic regression: shap.LinearExplainer
(exact for a linear model). Other baselines: not offered (Kernel SHAP on 784 pixels is too slow to be honest).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

MAX_BACKGROUND = 100
MAX_EXPLAIN = 16
PRETRAINED_BACKGROUND = 8
PRETRAINED_SAMPLES = 8
# Every explanation is bounded in time as well as in size (SECURITY.md item 26): the model calls it makes check a
# deadline and stop the explanation when it has passed, so one slow model or long text cannot hold a server thread.
MAX_EXPLAIN_SECONDS = float(os.environ.get("NEURALBENCH_SHAP_SECONDS", "30"))
MAX_TEXT_TOKENS = 128  # words explained (texts are capped at MAX_CHARS before); the rest is left out, and said so


class ExplanationUnavailable(ValueError):
    """This model has no SHAP explainer here; the message says which ones do."""


class ExplanationTimeout(ExplanationUnavailable):
    """The explanation ran past its time limit and was stopped; the message says so."""


def _deadline(seconds: float | None = None) -> Callable[[], None]:
    """A check to call before each model evaluation: raises ExplanationTimeout once `seconds` have passed."""
    limit = MAX_EXPLAIN_SECONDS if seconds is None else seconds
    end = time.perf_counter() + limit

    def check() -> None:
        if time.perf_counter() > end:
            raise ExplanationTimeout(
                f"the explanation was stopped after its limit of {limit:g} s (the model is too slow here for SHAP); "
                "the prediction itself is unaffected"
            )

    return check


class _Bounded(torch.nn.Module):
    """`module`, with the deadline checked before every forward pass (shap's explainers call it in batches)."""

    def __init__(self, module: torch.nn.Module, check: Callable[[], None]) -> None:
        super().__init__()
        self.module, self.check = module, check

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check()
        return self.module(x)


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
        explainer = shap.GradientExplainer(_Bounded(model, _deadline()), bg)
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
    explainer = shap.GradientExplainer(_Bounded(model, _deadline()), torch.from_numpy(background))
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


# ---------------------------------------------------------------------------------------------- text (issue 7)

MAX_TEXT_EVALS = 300
MAX_TEXT_BACKGROUND = 100


def text_explainable(estimator: Any) -> bool:
    """Whether explain_text supports this estimator (anything with class probabilities)."""
    return hasattr(estimator, "predict_proba")


def explain_text(
    estimator: Any,
    text: str,
    *,
    background: Any = None,
    max_evals: int = MAX_TEXT_EVALS,
    seed: int = 0,
) -> dict[str, Any]:
    """SHAP attributions of one text's tokens for every class.

    TF-IDF + logistic regression: shap.LinearExplainer on the TF-IDF features (exact for a linear model; the
    background is at most MAX_TEXT_BACKGROUND training texts); each present n-gram's value is shared among the
    words it covers, and absent n-grams are summed into `other`. Any other text model: shap's Partition
    explainer with a Text masker (MiniLM's WordPiece tokenizer for the MiniLM models, words otherwise), at
    most `max_evals` model calls. Values are in the model's output space (logits for the linear model,
    probabilities otherwise).

    Returns {"tokens": [str], "values": (T, K), "base_values": (K,), "other": (K,), "method", "predicted",
    "proba": (K,), "seconds"}.
    """
    from data.text import clean_text

    t0 = time.perf_counter()
    text = clean_text(text)
    if not text:
        raise ExplanationUnavailable("there is no text to explain (empty or only whitespace)")
    if not text_explainable(estimator):
        raise ExplanationUnavailable("SHAP text explanations need a model with class probabilities")
    proba = np.asarray(estimator.predict_proba(np.array([text], dtype=object)))[0]
    if getattr(estimator, "name", "") == "tfidf_lr":
        out = _explain_tfidf_linear(estimator, text, background, seed)
    else:
        out = _explain_partition(estimator, text, max_evals)
    out.update(predicted=int(proba.argmax()), proba=proba, seconds=time.perf_counter() - t0)
    return out


def _explain_partition(estimator: Any, text: str, max_evals: int) -> dict[str, Any]:
    import shap

    words = text.split()
    cut = len(words) > MAX_TEXT_TOKENS
    if cut:  # the partition tree and the model calls grow with the text: explain its first MAX_TEXT_TOKENS words
        text = " ".join(words[:MAX_TEXT_TOKENS])
    check = _deadline()

    if getattr(estimator, "name", "") in ("minilm", "minilm_frozen"):
        from transformers import AutoTokenizer

        from models.text import hub_offline, minilm_path

        with hub_offline():  # a private instance: the masker calls it outside the encode lock
            tok = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True, trust_remote_code=False)
        masker = shap.maskers.Text(tok)
        how = "MiniLM WordPiece tokens"
    else:
        masker = shap.maskers.Text(r"\W+")
        how = "words"

    def f(texts: Any) -> np.ndarray:
        check()
        return np.asarray(estimator.predict_proba(np.array([str(t) for t in texts], dtype=object)))

    explainer = shap.Explainer(f, masker, algorithm="partition")
    evals = max(2 * len(text.split()) + 1, min(max_evals, MAX_TEXT_EVALS * 4))
    sv = explainer(np.array([text], dtype=object), max_evals=evals, batch_size=64, silent=True)
    values = np.asarray(sv.values[0], dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    tokens = [str(t) for t in sv.data[0]]
    base = np.atleast_1d(np.asarray(sv.base_values[0], dtype=float))
    return {
        "tokens": tokens,
        "values": values,
        "base_values": base,
        "other": np.zeros(values.shape[1]),
        "method": f"Partition explainer with a text masker over {how} (at most {evals} model calls; "
        "values in probability)" + (f"; only the first {MAX_TEXT_TOKENS} words are explained" if cut else ""),
    }


def _explain_tfidf_linear(estimator: Any, text: str, background: Any, seed: int) -> dict[str, Any]:
    import re

    import scipy.sparse as sp
    import shap

    vec, clf = estimator.pipeline_[0], estimator.pipeline_[-1]
    if background is None or len(background) == 0:
        background = np.array([""], dtype=object)
    rng = np.random.default_rng(seed)
    background = np.asarray(background, dtype=object)
    if len(background) > MAX_TEXT_BACKGROUND:
        background = background[rng.choice(len(background), MAX_TEXT_BACKGROUND, replace=False)]
    bg = vec.transform(background)
    x = vec.transform([text])
    explainer = shap.LinearExplainer(clf, sp.csr_matrix(bg))
    values = np.asarray(explainer.shap_values(x))
    values = values[0] if values.ndim == 3 else values  # (F, K) or, for binary, (1, F) -> (F,)
    if values.ndim == 1 or values.shape[0] == 1:
        v = np.ravel(values)
        values = np.stack([-v, v], 1)  # binary logistic regression: class 1's logit, class 0 is its negative
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    if base.size == 1:
        base = np.array([-base[0], base[0]])
    n_classes = values.shape[1]
    words = [m.group(0) for m in re.finditer(vec.token_pattern, text)]
    lower = [w.lower() for w in words]
    token_values = np.zeros((len(words), n_classes))
    present = x.nonzero()[1]
    names = vec.get_feature_names_out()
    covered = np.zeros(values.shape[0], dtype=bool)
    for j in present:
        gram = names[j].split(" ")
        n = len(gram)
        positions = sorted({i + k for i in range(len(lower) - n + 1) if lower[i : i + n] == gram for k in range(n)})
        if positions:
            token_values[positions] += values[j] / len(positions)
            covered[j] = True
    other = values[~covered].sum(0)
    return {
        "tokens": [w + " " for w in words],
        "values": token_values,
        "base_values": base,
        "other": other,
        "method": f"LinearExplainer on TF-IDF n-grams (exact for a linear model; {bg.shape[0]} background texts; "
        "values in logits; absent n-grams summed as 'other')",
    }


def warm_up_text_shap() -> None:
    """Compile shap's numba kernels of the Partition explainer once (tens of seconds on a busy 2-core CPU), so
    the first real text explanation of a server process is quick. Safe to call from a background thread."""
    import shap

    def f(texts: Any) -> np.ndarray:
        n = np.array([len(str(t)) for t in texts], dtype=float)
        return np.stack([n / (n + 1), 1 / (n + 1)], 1)

    explainer = shap.Explainer(f, shap.maskers.Text(r"\W+"), algorithm="partition")
    explainer(np.array(["warm up the explainer"], dtype=object), max_evals=20, silent=True)
