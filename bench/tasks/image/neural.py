"""Estimator wrapper around torch modules: fit / predict / save / load like a scikit-learn model."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from bench.core.train import Callback, EarlyStopping, EpochRecord, predict_logits, seed_everything, train
from models.config import ConfigError, TrainConfig, config_from_dict
from models.io import load_weights, module_tensors, read_meta, write_model_folder
from models.nets import CNN, MLP, CNNConfig, MLPConfig

ARCHITECTURES: dict[str, tuple[type, type]] = {"cnn": (CNN, CNNConfig), "mlp": (MLP, MLPConfig)}


class NeuralClassifier:
    """A torch classifier trained by the shared loop. Inputs (N, C, H, W) floats in [0, 1]; labels 0..K-1."""

    family = "neural"

    def __init__(self, arch: str, config: Any = None, train_config: TrainConfig | None = None) -> None:
        if arch not in ARCHITECTURES:
            raise ConfigError(f"unknown architecture {arch!r}")
        self.arch = arch
        self.config = config if config is not None else ARCHITECTURES[arch][1]()
        self.train_config = train_config or TrainConfig()

    def _build(self, in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        module_cls, _ = ARCHITECTURES[self.arch]
        return module_cls(self.config, in_shape, n_classes)

    def fit(self, X: np.ndarray, y: np.ndarray, callbacks: Sequence[Callback] = ()) -> NeuralClassifier:
        """Carve a stratified validation split from (X, y), train with early stopping, keep the best epoch."""
        cfg = self.train_config
        seed_everything(cfg.seed)
        y = np.asarray(y)
        self.n_classes_ = int(y.max()) + 1
        self.in_shape_ = tuple(int(s) for s in X.shape[1:])
        X_val = y_val = None
        if cfg.val_fraction > 0:
            n_val = max(round(len(y) * cfg.val_fraction), self.n_classes_)
            strat = y if np.bincount(y).min() >= 2 else None
            X, X_val, y, y_val = train_test_split(X, y, test_size=n_val, random_state=cfg.seed, stratify=strat)
        self.n_train_, self.n_val_ = len(y), 0 if y_val is None else len(y_val)
        self.model_ = self._build(self.in_shape_, self.n_classes_)
        scale = 1 / 255 if X.dtype == np.uint8 else 1.0  # uint8 images are scaled to [0, 1] by the loop
        self.model_.norm.mean.fill_(float(X.mean()) * scale)
        self.model_.norm.std.fill_(float(X.std()) * scale or 1.0)
        cbs = list(callbacks)
        if X_val is not None:
            cbs.insert(0, EarlyStopping(cfg.patience))
        self.history_: list[EpochRecord] = train(
            self.model_, X, y, cfg, X_val=X_val, y_val=y_val, objective="classification", callbacks=cbs
        )
        plan = getattr(self.model_, "execution_plan", None)
        self.execution_ = plan.to_dict() if plan is not None else None  # how it ran (bench.core.calibrate)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, K)."""
        logits = torch.from_numpy(predict_logits(self.model_, X))
        return torch.softmax(logits, 1).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class indices, shape (N,)."""
        return predict_logits(self.model_, X).argmax(1)

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.model_.parameters() if p.requires_grad)

    def save(self, folder: str | Path) -> None:
        """Write `config.json` and `model.safetensors` into `folder` (atomically, file by file)."""
        meta = {
            "kind": "neural",
            "arch": self.arch,
            "config": dataclasses.asdict(self.config),
            "train_config": dataclasses.asdict(self.train_config),
            "in_shape": list(self.in_shape_),
            "n_classes": self.n_classes_,
        }
        write_model_folder(folder, meta, tensors=module_tensors(self.model_))

    @classmethod
    def load(cls, folder: str | Path) -> NeuralClassifier:
        """Rebuild from `config.json` + `model.safetensors` (no pickle); strict: mismatches raise ConfigError."""
        meta = read_meta(folder)
        arch = meta.get("arch")
        if arch not in ARCHITECTURES:
            raise ConfigError(f"unknown architecture {arch!r} in saved config")
        cfg = config_from_dict(ARCHITECTURES[arch][1], meta["config"])
        est = cls(arch, cfg, config_from_dict(TrainConfig, meta["train_config"]))
        est.in_shape_ = tuple(meta["in_shape"])
        est.n_classes_ = int(meta["n_classes"])
        est.model_ = est._build(est.in_shape_, est.n_classes_)
        load_weights(est.model_, folder)
        est.model_.eval()
        est.history_ = []
        return est
