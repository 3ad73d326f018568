"""What the benchmarks train on: a fixed image workload, one CNN initialisation, and its FLOP count."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from data.images import DatasetUnavailable, ImageSplit, load_fashion_mnist, load_mnist_5k
from models.nets import CNN, CNNConfig

FASHION_SUBSET = 10_000  # fixed-size Fashion-MNIST training subset (test subset: a quarter of it)


@dataclass
class Workload:
    """Training and test images (N, 1, 28, 28) float32 in [0, 1] with int64 labels, and where they came from."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    note: str = ""

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def in_shape(self) -> tuple[int, int, int]:
        c, h, w = self.X_train.shape[1:]
        return int(c), int(h), int(w)


def from_split(split: ImageSplit, max_train: int = 0, max_test: int = 0) -> Workload:
    """A Workload from a loader's ImageSplit, optionally cut to the first `max_train` / `max_test` images."""
    n_tr = max_train or len(split.y_train)
    n_te = max_test or len(split.y_test)
    return Workload(
        split.name,
        np.ascontiguousarray(split.X_train[:n_tr]),
        np.ascontiguousarray(split.y_train[:n_tr]),
        np.ascontiguousarray(split.X_test[:n_te]),
        np.ascontiguousarray(split.y_test[:n_te]),
        note=split.split_note,
    )


def load_workload(dataset: str = "mnist-5k", seed: int = 0, max_train: int = 0, max_test: int = 0) -> Workload:
    """MNIST-5k (always available) or a fixed 10,000 / 2,500 subset of Fashion-MNIST (falls back to MNIST-5k)."""
    if dataset == "fashion-mnist":
        try:
            split = load_fashion_mnist(seed, max_samples=FASHION_SUBSET)
            split.split_note = f"stratified subset {len(split.y_train):,} / {len(split.y_test):,}, seed {seed}"
            return from_split(split, max_train, max_test)
        except DatasetUnavailable as exc:
            work = from_split(load_mnist_5k(seed), max_train, max_test)
            work.note += f" (Fashion-MNIST unavailable: {exc})"
            return work
    if dataset != "mnist-5k":
        raise ValueError(f"unknown perf dataset {dataset!r}: use mnist-5k or fashion-mnist")
    return from_split(load_mnist_5k(seed), max_train, max_test)


def load_fashion_full(seed: int = 0, max_train: int = 0, max_test: int = 0) -> Workload | None:
    """The official Fashion-MNIST 60,000 / 10,000 split (optionally cut), or None where it is not installed."""
    try:
        split = load_fashion_mnist(seed)
    except DatasetUnavailable:
        return None
    return from_split(split, max_train, max_test)


# The reference loop's network: the standard CNN (two max-pool blocks of 32 / 64 channels, dense 128), the model
# the figures and the pytorch/examples MNIST net are built like. The product trains its own default.
REFERENCE_CNN = CNNConfig()


def product_cnn_config(work: Workload) -> CNNConfig:
    """The CNN the app trains by default on this workload's dataset (the registry's per-dataset defaults)."""
    from bench.tasks import get_task

    return get_task("image").models["cnn"].default_config(work.name)


def make_cnn(work: Workload, cfg: CNNConfig | None = None, seed: int = 0) -> nn.Module:
    """A CNN (default: the product's for this dataset) with NeuralClassifier's input standardisation; the same
    seed gives the same weights."""
    torch.manual_seed(seed)
    model = CNN(cfg or product_cnn_config(work), work.in_shape, work.n_classes)
    model.norm.mean.fill_(float(work.X_train.mean()))
    model.norm.std.fill_(float(work.X_train.std()) or 1.0)
    return model


def clone(model: nn.Module) -> nn.Module:
    """An independent copy (same weights) so that both loops start from the same initialisation."""
    return copy.deepcopy(model)


def forward_flops_per_image(model: nn.Module, in_shape: tuple[int, int, int]) -> int:
    """Forward FLOPs for one image, counted analytically over Conv2d and Linear layers only.

    conv: 2 * Cin/groups * Cout * kh * kw * Hout * Wout; linear: 2 * in * out. Output sizes come from one
    forward pass of a single dummy image (hooks record the shapes; nothing is timed).
    """
    total = 0

    def conv_hook(mod: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = mod.kernel_size
        h_out, w_out = out.shape[-2:]
        total += 2 * (mod.in_channels // mod.groups) * mod.out_channels * kh * kw * h_out * w_out

    def linear_hook(mod: nn.Linear, _inp: tuple, _out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * mod.in_features * mod.out_features

    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            handles.append(mod.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *in_shape)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def train_flops_per_image(model: nn.Module, in_shape: tuple[int, int, int]) -> int:
    """Training FLOPs per image ≈ 3x forward (forward + gradients w.r.t. inputs and weights)."""
    return 3 * forward_flops_per_image(model, in_shape)
