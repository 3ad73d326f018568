"""Config dataclasses shared by every model: field metadata drives the page forms and the CLI."""

from __future__ import annotations

import dataclasses
from dataclasses import InitVar, dataclass, field
from typing import Any

ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid")
PRECISIONS = ("auto", "fp32", "bf16")
OPTIMIZERS = ("adamw", "adam", "sgd")


def opt(default: Any, help: str, label: str | None = None, **extra: Any) -> Any:
    """A dataclass field with help text, an optional human `label` and optional `choices`, `min`, `max`,
    `scale="log"` for forms and messages."""
    meta = {"help": help, **extra}
    if label is not None:
        meta["label"] = label
    return field(default=default, metadata=meta)


# Human names of the settings, for forms, charts and messages; a field's own `label` metadata wins.
LABELS = {
    "optimizer": "Optimizer",
    "lr": "Learning rate",
    "batch_size": "Batch size",
    "epochs": "Epochs",
    "weight_decay": "Weight decay",
    "seed": "Seed",
    "val_fraction": "Validation share",
    "patience": "Early-stopping patience (epochs)",
    "label_smoothing": "Label smoothing",
    "hflip": "Random left-right flips",
    "bf16": "bfloat16 autocast",
    "max_samples": "Fast path: training samples",
    "max_train_samples": "Training subset (0 = all)",
    "max_iter": "Maximum iterations",
    "gamma": "Kernel coefficient (gamma)",
    "n_estimators": "Trees",
    "max_depth": "Maximum depth (0 = unlimited)",
    "n_neighbors": "Neighbours (k)",
    "weights": "Vote weighting",
    "conv_blocks": "Conv blocks",
    "channels": "Channels (first block)",
    "kernel_size": "Kernel size",
    "activation": "Activation",
    "dropout": "Dropout",
    "batch_norm": "Batch normalisation",
    "hidden": "Dense hidden units",
    "layers": "Hidden layers",
    "neurons": "Neurons per layer",
}


def field_label(f: dataclasses.Field) -> str:
    """The human label of a config field: its `label` metadata, else LABELS, else the name in words."""
    return f.metadata.get("label") or LABELS.get(f.name) or f.name.replace("_", " ").capitalize()


def setting_label(cls: type, name: str) -> str:
    """The human label of the field `name` of config dataclass `cls` (the name itself when unknown)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return field_label(f)
    return LABELS.get(name, name)


class ConfigError(ValueError):
    """A configuration value is out of range; the message is meant for the user."""


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None) -> None:
    """Raise ConfigError when `value` is outside [lo, hi]."""
    if value != value:  # NaN
        raise ConfigError(f"{name} must be a number, got NaN")
    if lo is not None and value < lo:
        raise ConfigError(f"{name} must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise ConfigError(f"{name} must be at most {hi}, got {value}")


def check_fields(cfg: Any) -> None:
    """Validate every field of a config dataclass against its `choices`, `min` and `max` metadata."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        meta, label = f.metadata, field_label(f)
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{label} must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            check_range(label, value, meta.get("min"), meta.get("max"))


def config_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build a config dataclass from a dict, refusing unknown keys with a clear message.

    A class may define `upgrade_saved(values) -> values` to read configs saved by older versions
    (renamed fields, or defaults that changed meaning).
    """
    upgrade = getattr(cls, "upgrade_saved", None)
    if upgrade is not None:
        values = upgrade(dict(values))
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown setting(s) for {cls.__name__}: {', '.join(unknown)}")
    return cls(**values)


@dataclass
class TrainConfig:
    """How a torch model is trained: one config for every neural model."""

    optimizer: str = opt("adamw", "Optimizer", choices=OPTIMIZERS)
    lr: float = opt(3e-3, "Peak learning rate (one-cycle schedule)", min=1e-6, max=1.0)
    batch_size: int = opt(256, "Mini-batch size", min=1, max=8192)
    epochs: int = opt(12, "Maximum number of epochs", min=1, max=200)
    weight_decay: float = opt(1e-4, "Weight decay (L2 penalty)", min=0.0, max=1.0)
    seed: int = opt(0, "Random seed for initialisation, shuffling and the validation split", min=0, max=2**31 - 1)
    val_fraction: float = opt(
        0.1, "Share of the training split held out for validation (early stopping)", min=0.0, max=0.5
    )
    patience: int = opt(4, "Early stopping: epochs without validation improvement", min=1, max=200)
    label_smoothing: float = opt(0.0, "Label smoothing of the cross-entropy loss", min=0.0, max=0.5)
    warmup: float = opt(
        0.3, "Share of the one-cycle schedule spent rising to the peak learning rate", min=0.01, max=0.9
    )
    hflip: bool = opt(False, "Augment: flip training images left-right at random (only where labels allow it)")
    precision: str = opt(
        "auto",
        "Arithmetic: auto = measured on this machine (a few steps of the model in fp32 and bf16, memory layouts "
        "and thread counts; the fastest is kept, never slower than fp32), or force fp32 / bf16 autocast",
        choices=PRECISIONS,
    )
    max_samples: int = opt(0, "Fast path: use at most this many training samples (0 = all)", min=0)
    # old spelling, accepted by the constructor only: bf16=True -> precision "auto", bf16=False -> "fp32"
    bf16: InitVar[bool | None] = None

    def __post_init__(self, bf16: bool | None) -> None:
        if bf16 is not None:
            self.precision = "auto" if bf16 else "fp32"
        check_fields(self)

    @staticmethod
    def upgrade_saved(values: dict[str, Any]) -> dict[str, Any]:
        """Configs saved before `precision` existed carry `bf16`: True meant "bf16 where the CPU flags say so",
        now "auto" (measured); False meant fp32."""
        if "bf16" in values:
            old = values.pop("bf16")
            values.setdefault("precision", "auto" if old else "fp32")
        return values
