"""Torch modules for image classification: a small CNN and a plain deep MLP."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.config import ACTIVATIONS, ConfigError, check_fields, opt


def make_activation(name: str) -> nn.Module:
    """A fresh activation module (never functional, never in-place: SHAP's DeepExplainer needs modules)."""
    table = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    if name not in table:
        raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return table[name]()


DOWNSAMPLES = ("stride", "maxpool", "mixed")


@dataclass
class CNNConfig:
    """A stack of conv blocks, each halving the image size, then a dense head.

    downsample "stride": conv with stride 2 -> [batch norm] -> activation (a quarter of the conv arithmetic and
    no pooling pass); "maxpool": conv -> 2x2 max pool -> [batch norm] -> activation (or the pool last);
    "mixed": max pool in the first block (it sees the raw pixels), stride-2 convolutions after it.
    """

    conv_blocks: int = opt(2, "Number of conv blocks; each halves the image size", min=1, max=4)
    channels: int = opt(32, "Channels of the first block (doubled in every further block)", min=1, max=256)
    kernel_size: int = opt(3, "Convolution kernel size (odd)", min=1, max=7)
    activation: str = opt("relu", "Activation function", choices=ACTIVATIONS)
    dropout: float = opt(0.25, "Dropout on the dense hidden layer", min=0.0, max=0.9)
    batch_norm: bool = opt(True, "Batch normalisation after each convolution")
    hidden: int = opt(128, "Units of the dense hidden layer", min=1, max=4096)
    downsample: str = opt(
        "maxpool",
        "How each block halves the image: a stride-2 convolution (cheapest), a 2x2 max pool, or mixed "
        "(max pool in the first block, stride-2 convolutions after)",
        choices=DOWNSAMPLES,
    )
    pool_first: bool = opt(
        True,
        "maxpool only: pool straight after each convolution, before batch norm and activation: normalises a 4x "
        "smaller tensor, about twice as fast on CPU (exactly the same function for ReLU without batch norm)",
    )

    augment: bool = opt(
        False,
        "Augment: a random small rotation (up to 10 degrees), shift (up to 10%) and scaling (0.9-1.1) of every "
        "training image, so the net holds up on real uploads (training only)",
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"Kernel size must be odd, got {self.kernel_size}")

    @staticmethod
    def upgrade_saved(values: dict) -> dict:
        """Configs saved before `downsample` existed were max-pool networks (same weight shapes as stride-2
        ones, so without this an old model would load silently into a different function)."""
        values.setdefault("downsample", "maxpool")
        return values


@dataclass
class MLPConfig:
    """A plain fully connected network on flattened pixels."""

    layers: int = opt(3, "Number of hidden layers", min=1, max=12)
    neurons: int = opt(256, "Neurons per hidden layer", min=1, max=4096)
    activation: str = opt("relu", "Activation function", choices=ACTIVATIONS)
    dropout: float = opt(0.2, "Dropout after each hidden layer", min=0.0, max=0.9)
    batch_norm: bool = opt(False, "Batch normalisation after each hidden layer")
    augment: bool = opt(
        False,
        "Augment: a random small rotation (up to 10 degrees), shift (up to 10%) and scaling (0.9-1.1) of every "
        "training image, so the net holds up on real uploads (training only)",
    )

    def __post_init__(self) -> None:
        check_fields(self)


class Standardize(nn.Module):
    """(x - mean) / std with the statistics of the training split stored as buffers (saved with the weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("std", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class RandomAffine(nn.Module):
    """Training-time augmentation of (B, C, H, W) images: a random rotation, shift and scaling per image
    (zeros fill the uncovered border); the identity in eval mode, so predictions and SHAP never see it."""

    def __init__(self, degrees: float = 10.0, shift: float = 0.1, scale: tuple[float, float] = (0.9, 1.1)) -> None:
        super().__init__()
        self.degrees, self.shift, self.scale = degrees, shift, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.dim() != 4:
            return x
        n, dev = x.shape[0], x.device
        angle = (torch.rand(n, device=dev) * 2 - 1) * math.radians(self.degrees)
        zoom = torch.empty(n, device=dev).uniform_(*self.scale)
        move = (torch.rand(n, 2, device=dev) * 2 - 1) * self.shift * 2  # grid coordinates span [-1, 1]
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, move[:, 0]], 1), torch.stack([sin, cos, move[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x.float(), grid, padding_mode="zeros", align_corners=False).to(x.dtype)


class CNN(nn.Module):
    """Input (B, C, H, W) floats in [0, 1]; output (B, n_classes) logits."""

    def __init__(self, cfg: CNNConfig, in_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        c, h, w = in_shape
        self.augment = RandomAffine() if getattr(cfg, "augment", False) else nn.Identity()
        self.norm = Standardize()
        blocks: list[nn.Module] = []
        ch = cfg.channels
        for i in range(cfg.conv_blocks):
            strided = cfg.downsample == "stride" or (cfg.downsample == "mixed" and i > 0)
            if min(h, w) < 2:
                raise ConfigError(f"{cfg.conv_blocks} conv blocks are too many for {in_shape[1]}x{in_shape[2]} images")
            pad = cfg.kernel_size // 2
            if strided:
                blocks.append(nn.Conv2d(c, ch, cfg.kernel_size, stride=2, padding=pad, bias=not cfg.batch_norm))
                h, w = (h + 2 * pad - cfg.kernel_size) // 2 + 1, (w + 2 * pad - cfg.kernel_size) // 2 + 1
            else:
                blocks.append(nn.Conv2d(c, ch, cfg.kernel_size, padding=pad, bias=not cfg.batch_norm))
                h, w = h // 2, w // 2
            pool = [] if strided else [nn.MaxPool2d(2)]
            if cfg.pool_first:
                blocks += pool
            if cfg.batch_norm:
                blocks.append(nn.BatchNorm2d(ch))
            blocks.append(make_activation(cfg.activation))
            if not cfg.pool_first:
                blocks += pool
            c = ch
            ch *= 2
        self.features = nn.Sequential(*blocks)
        # dropout on the hidden units, not the flattened maps: 25x fewer random numbers per batch on 28x28 input
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * h * w, cfg.hidden),
            make_activation(cfg.activation),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.norm(self.augment(x))))


class MLP(nn.Module):
    """Input (B, C, H, W) or (B, D); flattened, then `layers` hidden layers; output (B, n_classes) logits."""

    def __init__(self, cfg: MLPConfig, in_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        d = 1
        for s in in_shape:
            d *= s
        self.augment = RandomAffine() if getattr(cfg, "augment", False) and len(in_shape) == 3 else nn.Identity()
        self.norm = Standardize()
        layers: list[nn.Module] = [nn.Flatten()]
        for _ in range(cfg.layers):
            layers.append(nn.Linear(d, cfg.neurons))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(cfg.neurons))
            layers += [make_activation(cfg.activation), nn.Dropout(cfg.dropout)]
            d = cfg.neurons
        layers.append(nn.Linear(d, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(self.augment(x)))
