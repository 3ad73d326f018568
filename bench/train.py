"""ONE training loop for every torch model, with callbacks.

Data are preloaded tensors indexed by a shuffled permutation each epoch (no DataLoader workers, no
per-sample Python): on 2 CPU cores this is what makes training quick.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.config import TrainConfig


class TrainingAborted(RuntimeError):
    """Training stopped because it went wrong (e.g. NaN loss); the message is meant for the user."""


class TrainingCancelled(RuntimeError):
    """Training was stopped on request."""


def select_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 autocast is fast here (GPU, or a CPU with AVX-512 BF16 / AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    checker = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((checker and checker()) or (amx and amx()))


def seed_everything(seed: int) -> None:
    """Seed torch and numpy so a run is repeatable."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


@dataclass
class EpochRecord:
    """One row of the per-epoch history."""

    epoch: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainState:
    """What callbacks see: progress counters, the model, the history so far, and a stop flag."""

    model: nn.Module
    cfg: TrainConfig
    epochs: int
    batches_per_epoch: int
    epoch: int = 0
    batch: int = 0
    loss: float = float("nan")
    history: list[EpochRecord] = field(default_factory=list)
    stop: bool = False
    stop_reason: str = ""
    started: float = field(default_factory=time.perf_counter)

    @property
    def progress(self) -> float:
        """Fraction of all planned batches done, in [0, 1]."""
        done = (self.epoch - 1) * self.batches_per_epoch + self.batch
        return min(1.0, max(0.0, done / max(1, self.epochs * self.batches_per_epoch)))


class Callback:
    """Hooks of the training loop; subclass and override what you need."""

    def on_train_start(self, state: TrainState) -> None:
        pass

    def on_batch_end(self, state: TrainState) -> None:
        pass

    def on_epoch_end(self, state: TrainState) -> None:
        pass

    def on_train_end(self, state: TrainState) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when the validation score has not improved for `patience` epochs; restore the best weights."""

    def __init__(self, patience: int, monitor: str = "val_accuracy", mode: str = "max") -> None:
        self.patience, self.monitor, self.mode = patience, monitor, mode
        self.best: float | None = None
        self.best_epoch = 0
        self.best_state: dict | None = None

    def on_epoch_end(self, state: TrainState) -> None:
        value = getattr(state.history[-1], self.monitor)
        if value is None:
            return
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better:
            self.best, self.best_epoch = value, state.epoch
            self.best_state = copy.deepcopy(state.model.state_dict())
        elif state.epoch - self.best_epoch >= self.patience:
            state.stop = True
            state.stop_reason = f"early stop: no {self.monitor} improvement for {self.patience} epochs"

    def on_train_end(self, state: TrainState) -> None:
        if self.best_state is not None and self.best_epoch != state.epoch:
            state.model.load_state_dict(self.best_state)


class CancelToken(Callback):
    """Thread-safe stop request, checked after every batch."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def cancel(self) -> None:
        self.event.set()

    def on_batch_end(self, state: TrainState) -> None:
        if self.event.is_set():
            raise TrainingCancelled(f"training stopped by request in epoch {state.epoch}")


def _forward_in_batches(model: nn.Module, X: torch.Tensor, batch: int, autocast: bool) -> torch.Tensor:
    outs = []
    device_type = X.device.type
    with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
        for i in range(0, len(X), batch):
            outs.append(model(X[i : i + batch]).float())
    return torch.cat(outs) if outs else torch.empty(0)


def _as_input(X: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Model input on `device`: integer arrays (token ids) as int64, everything else as float32."""
    t = torch.as_tensor(X)
    dtype = torch.long if not t.is_floating_point() and t.dtype != torch.bool else torch.float32
    return t.to(device=device, dtype=dtype)


def predict_logits(model: nn.Module, X: np.ndarray | torch.Tensor, bf16: bool = False, batch: int = 2048) -> np.ndarray:
    """Model outputs for X in eval mode, in batches; returns float32 numpy."""
    device = next(model.parameters()).device
    Xt = _as_input(X, device)
    if Xt.dim() == 4:
        Xt = Xt.contiguous(memory_format=torch.channels_last)
    model.eval()
    return _forward_in_batches(model, Xt, batch, bf16 and bf16_supported(device)).cpu().numpy()


def train(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig,
    *,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    objective: str = "classification",
    callbacks: Sequence[Callback] = (),
    order: Callable[[torch.Generator], torch.Tensor] | None = None,
) -> list[EpochRecord]:
    """Train `model` in place with AdamW/Adam/SGD and a one-cycle schedule; return the per-epoch history.

    objective: "classification" (cross-entropy on integer labels) or "regression" (MSE on floats).
    Integer inputs (token ids) stay int64; float inputs become float32.
    order(generator) -> permutation of range(len(X)) sets each epoch's sample order (e.g. length
    bucketing); the default is a fresh random permutation.
    Raises TrainingAborted on a non-finite loss, TrainingCancelled when a callback cancels.
    """
    device = select_device()
    seed_everything(cfg.seed)
    model.to(device)
    classify = objective == "classification"
    Xt = _as_input(X, device)
    yt = torch.as_tensor(y, dtype=torch.long if classify else torch.float32, device=device)
    Xv = None if X_val is None or len(X_val) == 0 else _as_input(X_val, device)
    yv = None if Xv is None else torch.as_tensor(y_val, dtype=yt.dtype, device=device)
    if Xt.dim() == 4:  # NHWC is the fast layout for oneDNN / cuDNN convolutions
        model.to(memory_format=torch.channels_last)
        Xt = Xt.contiguous(memory_format=torch.channels_last)
        if Xv is not None:
            Xv = Xv.contiguous(memory_format=torch.channels_last)
    autocast = cfg.bf16 and bf16_supported(device)
    n = len(Xt)
    bs = min(cfg.batch_size, n)
    steps = math.ceil(n / bs)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay
        )
    elif cfg.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps)
    if classify:

        def loss_fn(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(out, target, label_smoothing=cfg.label_smoothing)
    else:
        loss_fn = F.mse_loss
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)

    state = TrainState(model=model, cfg=cfg, epochs=cfg.epochs, batches_per_epoch=steps)
    for cb in callbacks:
        cb.on_train_start(state)
    try:
        for epoch in range(1, cfg.epochs + 1):
            state.epoch, state.batch = epoch, 0
            t0 = time.perf_counter()
            model.train()
            perm = (order(gen) if order is not None else torch.randperm(n, generator=gen)).to(device)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            for b in range(steps):
                idx = perm[b * bs : (b + 1) * bs]
                xb, yb = Xt[idx], yt[idx]
                if cfg.hflip and xb.dim() == 4:
                    flip = torch.rand(len(idx), device=device) < 0.5
                    xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    out = model(xb)
                loss = loss_fn(out.float(), yb)
                if not torch.isfinite(loss):
                    raise TrainingAborted(
                        f"loss became {loss.item()} in epoch {epoch}, batch {b + 1}: "
                        "lower the learning rate or check the data"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach() * len(idx)
                if classify:
                    correct += (out.detach().argmax(1) == yb).sum()
                state.batch = b + 1
                for cb in callbacks:
                    cb.on_batch_end(state)
            train_loss = loss_sum.item() / n
            state.loss = train_loss
            val_loss = val_acc = None
            if Xv is not None:
                model.eval()
                out_v = _forward_in_batches(model, Xv, 2048, autocast)
                val_loss = float(loss_fn(out_v, yv))
                if classify:
                    val_acc = float((out_v.argmax(1) == yv).float().mean())
            state.history.append(
                EpochRecord(
                    epoch=epoch,
                    train_loss=train_loss,
                    train_accuracy=correct.item() / n if classify else None,
                    val_loss=val_loss,
                    val_accuracy=val_acc,
                    seconds=time.perf_counter() - t0,
                )
            )
            for cb in callbacks:
                cb.on_epoch_end(state)
            if state.stop:
                break
    finally:
        model.eval()
    for cb in callbacks:
        cb.on_train_end(state)
    return state.history
