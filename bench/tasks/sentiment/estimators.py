"""Text estimators: bind the text modules of models/text.py to the ONE training loop (bench/core/train.py) and wrap
the text baselines behind the same interface (fit(X, y, callbacks) -> self, predict, predict_proba, save, load).

X is always a 1-D array of raw strings; every estimator cleans and caps the texts itself before tokenising,
so the evaluator, the page and the CLI hand texts over as they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from bench.core.train import Callback, EarlyStopping, EpochRecord, seed_everything, select_device, train
from data.paths import CallTimePath, cache_dir
from data.text import clean_texts, grouped_split
from models import text as mt
from models.config import ConfigError, TrainConfig, config_from_dict
from models.io import atomic_write as _atomic_write
from models.io import (
    load_skops,
    load_state,
    load_weights,
    module_tensors,
    read_meta,
    read_weights,
    register_skops_model,
    skops_writer,
    write_model_folder,
)

CACHE = CallTimePath(cache_dir)  # NEURALBENCH_CACHE, else <state root>/cache, decided at every use
INFER_BATCH = 128
HUB_TIMEOUT_S = 3.0


def _subset(texts: np.ndarray, y: np.ndarray, cap: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified training subset of at most `cap` texts (0 = all)."""
    from data.text import _subsample

    return _subsample(texts, y, cap, seed)


def bucket_order(
    lengths: np.ndarray, batch_size: int, chunk_batches: int = 50
) -> Callable[[torch.Generator], torch.Tensor]:
    """Length bucketing for the loop's `order` hook: shuffle, sort chunks of `chunk_batches` batches by length,
    cut into batches, shuffle the batches (the one partial batch stays last so the loop's slicing keeps them)."""
    lens = torch.as_tensor(np.asarray(lengths), dtype=torch.long)

    def order(gen: torch.Generator) -> torch.Tensor:
        n = len(lens)
        bs = max(1, min(batch_size, n))
        perm = torch.randperm(n, generator=gen)
        chunk = bs * chunk_batches
        parts = []
        for s in range(0, n, chunk):
            idx = perm[s : s + chunk]
            parts.append(idx[torch.argsort(lens[idx], stable=True)])
        flat = torch.cat(parts)
        n_full = (n // bs) * bs
        batches = list(flat[:n_full].split(bs))
        shuffled = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        return torch.cat([*shuffled, flat[n_full:]])

    return order


def forward_sorted(
    module: nn.Module, ids: np.ndarray, *, autocast: bool, batch: int = INFER_BATCH, method: str = "forward"
) -> np.ndarray:
    """Outputs of `module` for token ids (N, L), in eval mode, batches sorted by length (dynamic padding makes
    each batch as short as its longest text); returns float32 rows in the original order."""
    n = len(ids)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    device = next(module.parameters()).device
    order = np.argsort(mt.lengths(ids), kind="stable")
    fn = getattr(module, method)
    module.eval()
    outs = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        for s in range(0, n, batch):
            xb = torch.as_tensor(ids[order[s : s + batch]], device=device)
            outs.append(fn(xb).float().cpu())
    out = torch.cat(outs).numpy()
    result = np.empty_like(out)
    result[order] = out
    return result


_MEASURED: dict[tuple[str, str], bool] = {}


def use_bf16(train_config: Any, module: nn.Module, sample: np.ndarray) -> bool:
    """bfloat16 autocast for inference: forced by the training setting ("bf16" / "fp32"), or measured here
    ("auto", the old bf16=True): one batch of `sample` timed in fp32 and bf16, the faster one kept (per model
    class and device, once per process). CPU flags are not trusted: bf16 can be several times slower."""
    precision = getattr(train_config, "precision", None)
    if precision is None:  # before TrainConfig.precision existed: bf16=True meant "where it is fast"
        precision = "auto" if getattr(train_config, "bf16", False) else "fp32"
    if precision in ("fp32", "bf16"):
        return precision == "bf16"
    device = next(module.parameters()).device
    key = (type(module).__name__, device.type)
    if key not in _MEASURED:
        xb = np.asarray(sample[:64])
        times = {}
        for bf16 in (False, True, False, True):  # warm-up then timed, alternating
            t0 = time.perf_counter()
            forward_sorted(module, xb, autocast=bf16, batch=64)
            times[bf16] = time.perf_counter() - t0
        _MEASURED[key] = times[True] < 0.9 * times[False]
    return _MEASURED[key]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


class TextEstimator:
    """Common surface of every text model: `predict` from `predict_proba`, counts for the leaderboard."""

    name = ""
    family = "classical"
    n_train_ = 0
    n_val_ = 0

    def __init__(self) -> None:
        self.history_: list[EpochRecord] = []

    def predict_proba(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class indices, shape (N,)."""
        proba = self.predict_proba(X)
        return proba.argmax(1) if len(proba) else np.zeros(0, dtype=np.int64)

    @classmethod
    def from_saved(cls, folder: Path, meta: dict[str, Any]) -> TextEstimator:
        raise NotImplementedError

    @classmethod
    def load(cls, folder: str | Path) -> TextEstimator:
        """Rebuild any saved text model (the run store calls this for kind "text")."""
        return load_text_model(folder)


# ---------------------------------------------------------------------------------------------- neural


class TextNeuralClassifier(TextEstimator):
    """A token-id network (MiniLM fine-tuned or from scratch) trained by the shared loop.

    fit carves a validation split grouped by identical text (so duplicates never straddle train and validation),
    trains with early stopping and length bucketing, and keeps the best epoch.
    """

    family = "neural"

    def __init__(self, name: str, config: Any, train_config: TrainConfig | None = None) -> None:
        super().__init__()
        if name not in ("minilm", "scratch"):
            raise ConfigError(f"unknown text network {name!r}")
        self.name = name
        self.config = config
        self.train_config = train_config or TrainConfig()

    # -- building
    def _build(self, n_classes: int, pretrained: bool = True) -> nn.Module:
        if self.name == "minilm":
            return mt.MiniLMClassifier(self.config, n_classes, pretrained=pretrained)
        return mt.build_scratch(self.config, int(mt.tokenizer().vocab_size), n_classes)

    def _train_config(self) -> TrainConfig:
        changes: dict[str, Any] = {"lr": self.config.lr}
        if getattr(self.config, "epochs", 0):
            changes["epochs"] = self.config.epochs
        return dataclasses.replace(self.train_config, **changes)

    def fit(self, X: Any, y: np.ndarray, callbacks: Sequence[Callback] = ()) -> TextNeuralClassifier:
        """Tokenise, split off validation (grouped by text), train with the shared loop."""
        tcfg = self._train_config()
        seed_everything(tcfg.seed)
        texts = clean_texts(X)
        y = np.asarray(y, dtype=np.int64)
        self.n_classes_ = int(y.max()) + 1
        texts, y = _subset(texts, y, self.config.max_train_samples, tcfg.seed)
        ids = mt.encode(texts, self.config.max_length)
        ids_val = y_val = None
        if tcfg.val_fraction > 0 and len(y) >= 20:
            tr, va = grouped_split(texts, y, tcfg.val_fraction, tcfg.seed)
            ids, ids_val, y, y_val = ids[tr], ids[va], y[tr], y[va]
        self.n_train_, self.n_val_ = len(y), 0 if y_val is None else len(y_val)
        self.model_ = self._build(self.n_classes_)
        cbs = list(callbacks)
        if ids_val is not None:
            cbs.insert(0, EarlyStopping(tcfg.patience))
        order = bucket_order(mt.lengths(ids), tcfg.batch_size) if self.config.bucket else None
        self.history_ = train(
            self.model_, ids, y, tcfg, X_val=ids_val, y_val=y_val, objective="classification", callbacks=cbs,
            order=order,
        )  # fmt: skip
        return self

    def logits(self, X: Any) -> np.ndarray:
        """Raw class scores (N, K)."""
        ids = mt.encode(clean_texts(X), self.config.max_length)
        if not hasattr(self, "bf16_"):
            self.bf16_ = use_bf16(self.train_config, self.model_, ids) if len(ids) else False
        return forward_sorted(self.model_, ids, autocast=self.bf16_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, K)."""
        return _softmax(self.logits(X))

    @property
    def n_params(self) -> int:
        """Trainable parameters."""
        return sum(p.numel() for p in self.model_.parameters() if p.requires_grad)

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        names = {n for n, p in self.model_.named_parameters() if p.requires_grad}
        return {
            k: v.detach().cpu().contiguous()
            for k, v in self.model_.state_dict().items()
            if k in names or self.name != "minilm"
        }

    def save(self, folder: str | Path) -> None:
        """config.json + model.safetensors; for MiniLM only the trained tensors (the frozen ones are the
        packaged pretrained weights and are rebuilt from them)."""
        meta = {
            "kind": "text", "name": self.name, "config": dataclasses.asdict(self.config),
            "train_config": dataclasses.asdict(self.train_config), "n_classes": self.n_classes_,
            "n_train": self.n_train_, "n_val": self.n_val_,
        }  # fmt: skip
        write_model_folder(folder, meta, tensors=self._trainable_state())

    @classmethod
    def from_saved(cls, folder: Path, meta: dict[str, Any]) -> TextNeuralClassifier:
        """Rebuild from config + safetensors; the saved tensors must be exactly the trainable ones."""
        name = meta["name"]
        cfg_cls = mt.MiniLMConfig if name == "minilm" else mt.ScratchConfig
        est = cls(name, config_from_dict(cfg_cls, meta["config"]), config_from_dict(TrainConfig, meta["train_config"]))
        est.n_classes_ = int(meta["n_classes"])
        est.model_ = est._build(est.n_classes_, pretrained=name == "minilm")
        saved = read_weights(folder)
        expected = set(est._trainable_state())
        if set(saved) != expected:
            missing, extra = sorted(expected - set(saved))[:5], sorted(set(saved) - expected)[:5]
            raise ConfigError(f"saved weights do not match the saved config (missing {missing}, unexpected {extra})")
        load_state(est.model_, saved, strict=name != "minilm")
        est.model_.eval()
        est.n_train_, est.n_val_ = int(meta.get("n_train", 0)), int(meta.get("n_val", 0))
        return est


def _text_key(texts: np.ndarray, max_length: int) -> str:
    h = hashlib.sha256(f"{mt.MINILM_PACKAGE}|{max_length}|".encode())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


_EMBEDDER: dict[str, nn.Module] = {}


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def minilm_embeddings(texts: np.ndarray, max_length: int, train_config: Any) -> np.ndarray:
    """Mean-pooled MiniLM embeddings (N, 384) of cleaned texts, cached on disk by content (npy, no pickle)."""
    key = _text_key(texts, max_length)
    path = CACHE / "embeddings" / f"minilm-{key}.npy"
    if path.is_file():
        try:
            emb = np.load(path, allow_pickle=False)
            if emb.shape == (len(texts), 384):
                return emb
        except (OSError, ValueError):
            pass
    if "minilm" not in _EMBEDDER:
        _EMBEDDER["minilm"] = mt.MiniLMEmbedder().to(select_device())
    ids = mt.encode(texts, max_length)
    embedder = _EMBEDDER["minilm"]
    emb = forward_sorted(embedder, ids, autocast=use_bf16(train_config, embedder, ids) if len(ids) else False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, lambda p: _save_npy(p, emb))
    except OSError:
        pass  # the cache is an optimisation only
    return emb


class FrozenMiniLMClassifier(TextEstimator):
    """MiniLM sentence embeddings (frozen, computed once and cached) + a small head trained by the shared loop."""

    family = "neural"
    name = "minilm_frozen"

    def __init__(self, config: mt.FrozenMiniLMConfig | None = None, train_config: TrainConfig | None = None) -> None:
        super().__init__()
        self.config = config or mt.FrozenMiniLMConfig()
        self.train_config = train_config or TrainConfig()

    def fit(self, X: Any, y: np.ndarray, callbacks: Sequence[Callback] = ()) -> FrozenMiniLMClassifier:
        """Embed the training texts, split off validation (grouped by text), train the head."""
        tcfg = dataclasses.replace(
            self.train_config,
            lr=self.config.lr,
            epochs=self.config.epochs,
            batch_size=max(self.train_config.batch_size, 128),
        )
        seed_everything(tcfg.seed)
        texts = clean_texts(X)
        y = np.asarray(y, dtype=np.int64)
        self.n_classes_ = int(y.max()) + 1
        texts, y = _subset(texts, y, self.config.max_train_samples, tcfg.seed)
        emb = minilm_embeddings(texts, self.config.max_length, self.train_config)
        e_val = y_val = None
        if tcfg.val_fraction > 0 and len(y) >= 20:
            tr, va = grouped_split(texts, y, tcfg.val_fraction, tcfg.seed)
            emb, e_val, y, y_val = emb[tr], emb[va], y[tr], y[va]
        self.n_train_, self.n_val_ = len(y), 0 if y_val is None else len(y_val)
        self.head_ = mt.EmbeddingHead(self.config, emb.shape[1], self.n_classes_)
        cbs = list(callbacks)
        if e_val is not None:
            cbs.insert(0, EarlyStopping(max(tcfg.patience, 5)))
        self.history_ = train(
            self.head_, emb, y, tcfg, X_val=e_val, y_val=y_val, objective="classification", callbacks=cbs
        )
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, K)."""
        emb = minilm_embeddings(clean_texts(X), self.config.max_length, self.train_config)
        self.head_.eval()
        with torch.inference_mode():
            logits = self.head_(torch.as_tensor(emb, device=next(self.head_.parameters()).device)).float().cpu().numpy()
        return _softmax(logits)

    @property
    def n_params(self) -> int:
        """Trainable parameters (the head; the 22.7M encoder weights stay frozen)."""
        return sum(p.numel() for p in self.head_.parameters())

    def save(self, folder: str | Path) -> None:
        """config.json + the head's safetensors (the encoder is the packaged one)."""
        meta = {
            "kind": "text", "name": self.name, "config": dataclasses.asdict(self.config),
            "train_config": dataclasses.asdict(self.train_config), "n_classes": self.n_classes_, "in_dim": 384,
            "n_train": self.n_train_, "n_val": self.n_val_,
        }  # fmt: skip
        write_model_folder(folder, meta, tensors=module_tensors(self.head_))

    @classmethod
    def from_saved(cls, folder: Path, meta: dict[str, Any]) -> FrozenMiniLMClassifier:
        """Rebuild the head (strict) from config + safetensors."""
        est = cls(
            config_from_dict(mt.FrozenMiniLMConfig, meta["config"]), config_from_dict(TrainConfig, meta["train_config"])
        )
        est.n_classes_ = int(meta["n_classes"])
        est.head_ = mt.EmbeddingHead(est.config, int(meta.get("in_dim", 384)), est.n_classes_)
        load_weights(est.head_, folder)
        est.head_.eval()
        est.n_train_, est.n_val_ = int(meta.get("n_train", 0)), int(meta.get("n_val", 0))
        return est


# ---------------------------------------------------------------------------------------------- classical


TFIDF_CONFIGS: dict[str, type] = {
    "tfidf_lr": mt.TfidfLogRegConfig,
    "tfidf_svm": mt.TfidfSVMConfig,
    "tfidf_nb": mt.TfidfNBConfig,
}


# The exact types each stored text pipeline is made of (models.io.load_skops refuses any other type).
_TFIDF = ("sklearn.pipeline.Pipeline", "sklearn.feature_extraction.text.TfidfVectorizer",
          "sklearn.feature_extraction.text.TfidfTransformer")  # fmt: skip
_TFIDF_CLASSIFIER = {"tfidf_lr": "sklearn.linear_model._logistic.LogisticRegression",
                     "tfidf_svm": "sklearn.svm._classes.LinearSVC", "tfidf_nb": "sklearn.naive_bayes.MultinomialNB"}  # fmt: skip


def _is_tfidf_pipeline(classifier: str) -> Callable[[Any], bool]:
    def check(obj: Any) -> bool:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import Pipeline

        steps = getattr(obj, "steps", None) if type(obj) is Pipeline else None
        return (steps is not None and len(steps) == 2 and type(steps[0][1]) is TfidfVectorizer
                and f"{type(steps[1][1]).__module__}.{type(steps[1][1]).__name__}" == classifier)  # fmt: skip

    return check


def _is_logistic_regression(obj: Any) -> bool:
    from sklearn.linear_model import LogisticRegression

    return type(obj) is LogisticRegression


for _name, _clf in _TFIDF_CLASSIFIER.items():
    register_skops_model(_name, {*_TFIDF, _clf}, _is_tfidf_pipeline(_clf))
# VADER's optional score -> label regression
register_skops_model("vader", {"sklearn.linear_model._logistic.LogisticRegression"}, _is_logistic_regression)


class TfidfClassifier(TextEstimator):
    """TF-IDF word n-grams + logistic regression / linear SVM / multinomial naive Bayes (scikit-learn)."""

    family = "classical"

    def __init__(self, name: str, config: Any = None, seed: int = 0) -> None:
        super().__init__()
        if name not in TFIDF_CONFIGS:
            raise ConfigError(f"unknown TF-IDF model {name!r}")
        self.name = name
        self.config = config if config is not None else TFIDF_CONFIGS[name]()
        self.seed = seed

    def fit(self, X: Any, y: np.ndarray, callbacks: Any = ()) -> TfidfClassifier:
        """Fit the vectorizer and the classifier on (a stratified subset of) the training texts."""
        texts, y = _subset(clean_texts(X), np.asarray(y, dtype=np.int64), self.config.max_train_samples, self.seed)
        self.n_classes_ = int(y.max()) + 1
        self.n_train_ = len(y)
        self.pipeline_ = mt.tfidf_pipeline(self.name, self.config, self.seed).fit(texts, y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities; for the SVM a softmax of its decision values (a score, not calibrated)."""
        texts = clean_texts(X)
        clf = self.pipeline_[-1]
        if hasattr(clf, "predict_proba"):
            proba = self.pipeline_.predict_proba(texts)
        else:
            d = self.pipeline_.decision_function(texts)
            d = np.stack([-d, d], 1) if d.ndim == 1 else d
            proba = _softmax(d)
        out = np.zeros((len(texts), self.n_classes_))
        out[:, clf.classes_] = proba
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class indices."""
        return np.asarray(self.pipeline_.predict(clean_texts(X)))

    @property
    def n_params(self) -> int:
        """Learned numbers: one weight per (n-gram, class) plus intercepts / class priors."""
        clf = self.pipeline_[-1]
        if hasattr(clf, "coef_"):
            return int(np.size(clf.coef_) + np.size(clf.intercept_))
        return int(np.size(clf.feature_log_prob_) + np.size(clf.class_log_prior_))

    def top_words(self, class_names: list[str], k: int = 15) -> pd.DataFrame:
        """The k n-grams that push hardest towards each class (linear models only)."""
        clf, vocab = self.pipeline_[-1], self.pipeline_[0].get_feature_names_out()
        if not hasattr(clf, "coef_"):
            raise ConfigError("top words need a linear model with coefficients")
        coef = clf.coef_
        if coef.shape[0] == 1:  # binary: one row for class 1
            coef = np.vstack([-coef[0], coef[0]])
        cols = {}
        for c, name in enumerate(class_names[: coef.shape[0]]):
            top = np.argsort(coef[c])[::-1][:k]
            cols[name] = [f"{vocab[i]} ({coef[c, i]:+.2f})" for i in top]
        return pd.DataFrame(cols)

    def save(self, folder: str | Path) -> None:
        """config.json + model.skops (no pickle)."""
        meta = {"kind": "text", "name": self.name, "config": dataclasses.asdict(self.config), "seed": self.seed,
                "n_classes": self.n_classes_, "n_train": self.n_train_}  # fmt: skip
        write_model_folder(folder, meta, writers={"model.skops": skops_writer(self.pipeline_)})

    @classmethod
    def from_saved(cls, folder: Path, meta: dict[str, Any]) -> TfidfClassifier:
        """Load from skops, trusting exactly the types a saved pipeline of this name is made of."""
        name = meta["name"]
        est = cls(name, config_from_dict(TFIDF_CONFIGS[name], meta["config"]), int(meta.get("seed", 0)))
        est.pipeline_ = load_skops(folder / "model.skops", name)
        est.n_classes_, est.n_train_ = int(meta["n_classes"]), int(meta.get("n_train", 0))
        return est


class VaderClassifier(TextEstimator):
    """VADER (rule-based lexicon) compound score -> class. Labels must be sentiment names (negative / neutral /
    positive); on other label sets a logistic regression on VADER's four scores is fitted instead (stated)."""

    family = "classical"
    name = "vader"

    def __init__(
        self, config: mt.VaderConfig | None = None, class_names: list[str] | None = None, seed: int = 0
    ) -> None:
        super().__init__()
        self.config = config or mt.VaderConfig()
        self.class_names = list(class_names or [])
        self.seed = seed

    def fit(self, X: Any, y: np.ndarray, callbacks: Any = ()) -> VaderClassifier:
        """Nothing to learn when the labels are sentiment names; else fit the score -> label regression."""
        y = np.asarray(y, dtype=np.int64)
        self.n_classes_ = max(int(y.max()) + 1, len(self.class_names))
        names = self.class_names or [str(i) for i in range(self.n_classes_)]
        self.mapping_ = mt.vader_mapping(names)
        self.n_train_ = 0
        self.regression_ = None
        if self.mapping_ is None:
            from sklearn.linear_model import LogisticRegression

            texts, y = _subset(clean_texts(X), y, self.config.max_train_samples or 20000, self.seed)
            self.regression_ = LogisticRegression(max_iter=1000, random_state=self.seed).fit(_vader_features(texts), y)
            self.n_train_ = len(y)
        return self

    @property
    def method(self) -> str:
        """How VADER's output becomes a class here."""
        if self.regression_ is not None:
            return "VADER's 4 scores + logistic regression (the labels are not sentiment names)"
        return (f"rule: compound >= {self.config.positive_above} positive, <= {self.config.negative_below} negative"
                + (", otherwise neutral" if "neutral" in (self.mapping_ or {}) else ""))  # fmt: skip

    def predict_proba(self, X: Any) -> np.ndarray:
        """One-hot rule outputs (VADER gives no probabilities), or the regression's probabilities."""
        texts = clean_texts(X)
        if self.regression_ is not None:
            out = np.zeros((len(texts), self.n_classes_))
            out[:, self.regression_.classes_] = self.regression_.predict_proba(_vader_features(texts))
            return out
        compound = mt.vader_scores(texts)
        m = self.mapping_ or {}
        if "neutral" in m:
            pred = np.full(len(texts), m["neutral"])
            pred[compound >= self.config.positive_above] = m["positive"]
            pred[compound <= self.config.negative_below] = m["negative"]
        else:  # two classes: the midpoint of the thresholds splits them
            mid = (self.config.positive_above + self.config.negative_below) / 2
            pred = np.where(compound >= mid, m["positive"], m["negative"])
        out = np.zeros((len(texts), self.n_classes_))
        out[np.arange(len(texts)), pred] = 1.0
        return out

    @property
    def n_params(self) -> int:
        """VADER's lexicon is fixed: 0 learned numbers (or the regression's weights)."""
        reg = self.regression_
        return 0 if reg is None else int(reg.coef_.size + reg.intercept_.size)

    def save(self, folder: str | Path) -> None:
        """config.json (+ regression.skops when a regression was fitted)."""
        meta = {"kind": "text", "name": self.name, "config": dataclasses.asdict(self.config), "seed": self.seed,
                "class_names": self.class_names, "n_classes": self.n_classes_, "n_train": self.n_train_}  # fmt: skip
        reg = self.regression_
        write_model_folder(folder, meta, writers={"regression.skops": skops_writer(reg)} if reg is not None else None)

    @classmethod
    def from_saved(cls, folder: Path, meta: dict[str, Any]) -> VaderClassifier:
        """Rebuild the rule (or load the regression from skops)."""
        est = cls(
            config_from_dict(mt.VaderConfig, meta["config"]), meta.get("class_names") or [], int(meta.get("seed", 0))
        )
        est.n_classes_ = int(meta["n_classes"])
        names = est.class_names or [str(i) for i in range(est.n_classes_)]
        est.mapping_ = mt.vader_mapping(names)
        est.regression_ = load_skops(folder / "regression.skops", "vader") if (folder / "regression.skops").is_file() else None
        est.n_train_ = int(meta.get("n_train", 0))
        return est


def _vader_features(texts: Any) -> np.ndarray:
    from models.text import _vader

    analyzer = _vader()
    rows = [analyzer.polarity_scores(str(t)) for t in texts]
    return np.array([[r["neg"], r["neu"], r["pos"], r["compound"]] for r in rows], dtype=np.float64)


# ---------------------------------------------------------------------------------------------- hub model


def hub_availability(model_id: str | None = None, timeout: float = HUB_TIMEOUT_S) -> tuple[bool, str]:
    """(reachable, reason) of a Hugging Face hub model, with a short timeout; never raises."""
    model_id = model_id or mt.HubSentimentConfig().model_id
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False, "HF_HUB_OFFLINE=1 is set"
    url = f"https://huggingface.co/api/models/{model_id}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            if resp.status == 200:
                return True, f"{model_id} on the Hugging Face hub"
            return False, f"the hub answered HTTP {resp.status}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"the Hugging Face hub is not reachable from this machine ({reason}); this model needs it"


def load_hub_model(model_id: str) -> tuple[Any, Any]:
    """(tokenizer, model) from the hub: safetensors only, no remote code."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_id, trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(model_id, use_safetensors=True, trust_remote_code=False)
    return tok, model.eval()


class HubSentimentClassifier(TextEstimator):
    """A ready sentiment model from the hub (e.g. SST-2 DistilBERT): not trained here, only mapped to the labels."""

    family = "pretrained"
    name = "hub_sst2"

    def __init__(self, config: mt.HubSentimentConfig | None = None, class_names: list[str] | None = None) -> None:
        super().__init__()
        self.config = config or mt.HubSentimentConfig()
        self.class_names = list(class_names or [])

    def fit(self, X: Any, y: np.ndarray, callbacks: Any = ()) -> HubSentimentClassifier:
        """Load the model (no training); the dataset's labels must be sentiment names."""
        ok, reason = hub_availability(self.config.model_id)
        if not ok:
            raise ConfigError(f"the hub model is unavailable: {reason}")
        self.n_classes_ = max(int(np.max(y)) + 1, len(self.class_names))
        self.mapping_ = mt.vader_mapping(self.class_names or [str(i) for i in range(self.n_classes_)])
        if self.mapping_ is None:
            raise ConfigError("the hub sentiment model needs labels named negative / (neutral) / positive")
        self.tokenizer_, self.model_ = load_hub_model(self.config.model_id)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Map the model's negative / positive probabilities onto the dataset's classes."""
        texts = [str(t) for t in clean_texts(X)]
        probs = []
        with torch.inference_mode():
            for s in range(0, len(texts), 64):
                enc = self.tokenizer_(texts[s : s + 64], truncation=True, max_length=self.config.max_length,
                                      padding=True, return_tensors="pt")  # fmt: skip
                probs.append(torch.softmax(self.model_(**enc).logits.float(), -1).numpy())
        p = np.concatenate(probs) if probs else np.zeros((0, 2))
        labels = {v.lower(): int(k) for k, v in self.model_.config.id2label.items()}
        neg, pos = p[:, labels.get("negative", 0)], p[:, labels.get("positive", 1)]
        m = self.mapping_ or {}
        out = np.zeros((len(texts), self.n_classes_))
        out[:, m["negative"]], out[:, m["positive"]] = neg, pos
        if "neutral" in m:
            unsure = np.maximum(neg, pos) < self.config.neutral_below
            out[unsure] = 0.0
            out[unsure, m["neutral"]] = 1.0
        return out

    @property
    def n_params(self) -> int:
        """Parameters of the downloaded model (none trained here)."""
        return sum(p.numel() for p in self.model_.parameters())

    def save(self, folder: str | Path) -> None:
        """config.json only: the weights stay on the hub (a saved run names the model id)."""
        meta = {"kind": "text", "name": self.name, "config": dataclasses.asdict(self.config),
                "class_names": self.class_names, "n_classes": self.n_classes_}  # fmt: skip
        write_model_folder(folder, meta)

    @classmethod
    def from_saved(cls, folder: Path, meta: dict[str, Any]) -> HubSentimentClassifier:
        """Reload from the hub (needs it reachable)."""
        est = cls(config_from_dict(mt.HubSentimentConfig, meta["config"]), meta.get("class_names") or [])
        return est.fit(np.array([], dtype=object), np.arange(int(meta["n_classes"])))


# ---------------------------------------------------------------------------------------------- loading


def load_text_model(folder: str | Path) -> TextEstimator:
    """Rebuild any text estimator saved by `save` (kind "text"); unknown names are a ConfigError."""
    folder = Path(folder)
    meta = read_meta(folder)
    name = meta.get("name")
    if meta.get("kind") != "text":
        raise ConfigError(f"not a text model: {folder.name}")
    if name in ("minilm", "scratch"):
        return TextNeuralClassifier.from_saved(folder, meta)
    if name == "minilm_frozen":
        return FrozenMiniLMClassifier.from_saved(folder, meta)
    if name in TFIDF_CONFIGS:
        return TfidfClassifier.from_saved(folder, meta)
    if name == "vader":
        return VaderClassifier.from_saved(folder, meta)
    if name == "hub_sst2":
        return HubSentimentClassifier.from_saved(folder, meta)
    raise ConfigError(f"unknown text model {name!r} in saved config")


# ---------------------------------------------------------------------------------------------- predicting


def predict_texts(
    estimators: dict[str, Any], texts: Any, class_names: list[str], labels: dict[str, str] | None = None
) -> pd.DataFrame:
    """Every model's prediction and confidence for each text, side by side (page and CLI share this).

    Columns: text, then per model `<label>: prediction` and `<label>: confidence`. Models without
    probabilities (majority, VADER rules) report 1.0 for their one answer.
    """
    texts = clean_texts(texts)
    frame: dict[str, Any] = {"text": list(texts)}
    for name, est in estimators.items():
        label = (labels or {}).get(name, name)
        if hasattr(est, "predict_proba"):
            proba = np.asarray(est.predict_proba(texts))
            pred = proba.argmax(1) if len(proba) else np.zeros(0, dtype=int)
            conf = proba.max(1) if len(proba) else np.zeros(0)
        else:
            pred = np.asarray(est.predict(texts))
            conf = np.ones(len(pred))
        frame[f"{label}: prediction"] = [class_names[int(k)] if int(k) < len(class_names) else str(k) for k in pred]
        frame[f"{label}: confidence"] = np.round(conf.astype(float), 4)
    return pd.DataFrame(frame)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(result, seconds) of fn()."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def load_run_models(
    store: Any, run_id: str, models: Sequence[str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The models of a stored sentiment run (all, or the named ones) and its report."""
    report = store.load_report(run_id)
    if report.get("task") != "sentiment":
        raise ConfigError(f"run {run_id[:8]} is a {report.get('task')} run, not a sentiment run")
    names = [m["name"] for m in report["models"]]
    chosen = list(models) if models else names
    unknown = [m for m in chosen if m not in names]
    if unknown:
        raise ConfigError(f"the run has no model {unknown[0]!r}; it has {', '.join(names)}")
    return {m: store.load_model(run_id, m) for m in chosen}, report


def predict_run(
    store: Any, run_id: str, texts: Any, models: Sequence[str] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Predictions of a stored run's models for `texts` (the page's Predict tab and the CLI share this)."""
    estimators, report = load_run_models(store, run_id, models)
    labels = {m["name"]: m["label"] for m in report["models"]}
    frame = predict_texts(estimators, texts, report["class_names"], labels)
    meta = {"run_id": run_id, "task": report["task"], "dataset": report["dataset"], "models": list(estimators),
            "class_names": report["class_names"]}  # fmt: skip
    return frame, meta
