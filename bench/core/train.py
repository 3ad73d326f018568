"""ONE training loop for every torch model, with callbacks.

Data are preloaded tensors indexed by a shuffled permutation each epoch (no DataLoader workers, no
per-sample Python): on 2 CPU cores this is what makes training quick. Images may be kept as uint8 (4x less
memory and gather traffic) and are scaled to [0, 1] per batch. How the arithmetic runs (fp32 or bf16
autocast, memory layout, threads) is measured per machine by `bench.core.calibrate`, not guessed from CPU flags.
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

from bench.core.calibrate import Plan, num_threads, resolve_plan
from models.config import TrainConfig


class TrainingAborted(RuntimeError):
    """Training stopped because it went wrong (e.g. NaN loss); the message is meant for the user."""


class TrainingCancelled(RuntimeError):
    """Training was stopped on request."""


def select_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bf16_supported(device: torch.device) -> bool:
    """Whether the CPU *claims* bf16 support (AVX-512 BF16 / AMX) or the GPU has it.

    Not used to decide anything: a claimed flag can still mean a slowdown (bench.core.calibrate measures instead).
    """
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
    plan: Plan | None = None  # the execution path this training runs in (bench.core.calibrate)
    lr: float = float("nan")  # the learning rate of the batch just trained (the one-cycle schedule's)

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


def scale_inputs(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (on the fly, per batch); anything else unchanged."""
    return x.float().mul_(1.0 / 255.0) if x.dtype == torch.uint8 else x


def as_input_tensor(X: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Model inputs on `device`: uint8 stays uint8 (scaled per batch), integers int64 (token ids), else float32."""
    t = torch.as_tensor(X)
    if t.dtype == torch.uint8:
        return t.to(device)
    if not t.is_floating_point() and t.dtype != torch.bool:
        return t.to(device=device, dtype=torch.long)
    return t.to(device=device, dtype=torch.float32)


def _forward_in_batches(model: nn.Module, X: torch.Tensor, batch: int, autocast: bool) -> torch.Tensor:
    outs = []
    device_type = X.device.type
    with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
        for i in range(0, len(X), batch):
            outs.append(model(scale_inputs(X[i : i + batch])).float())
    return torch.cat(outs) if outs else torch.empty(0)


def predict_logits(
    model: nn.Module,
    X: np.ndarray | torch.Tensor,
    bf16: bool | None = None,
    batch: int = 2048,
    precision: str | None = None,
) -> np.ndarray:
    """Model outputs for X in eval mode, in batches; returns float32 numpy.

    Runs in the execution plan chosen when the model was trained (`model.execution_plan`), fp32 NCHW for a
    model without one. precision "fp32"/"bf16" forces the arithmetic; the old `bf16=False` means fp32.
    """
    device = next(model.parameters()).device
    plan: Plan | None = getattr(model, "execution_plan", None)
    if precision is None:
        precision = "fp32" if bf16 is False or plan is None else plan.candidate.precision
    Xt = as_input_tensor(X, device)
    if Xt.dim() == 4 and plan is not None and plan.candidate.channels_last:
        Xt = Xt.contiguous(memory_format=torch.channels_last)
    model.eval()
    with num_threads(plan.candidate.threads if plan is not None else None):
        return _forward_in_batches(model, Xt, batch, precision == "bf16").cpu().numpy()


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
    plan: Plan | None = None,
    order: Callable[[torch.Generator], torch.Tensor] | None = None,
) -> list[EpochRecord]:
    """Train `model` in place with AdamW/Adam/SGD and a one-cycle schedule; return the per-epoch history.

    objective: "classification" (cross-entropy on integer labels) or "regression" (MSE on floats).
    X: float32 features/images, uint8 images (scaled to [0, 1] per batch) or integer token ids (kept int64).
    The execution path (cfg.precision, layout, threads) is resolved by `bench.calibrate.resolve_plan` and
    recorded as `model.execution_plan` (predictions then use it too); `plan` imposes one (benchmarks).
    order(generator) -> permutation of range(len(X)) sets each epoch's sample order (e.g. length
    bucketing); the default is a fresh random permutation.
    Raises TrainingAborted on a non-finite loss, TrainingCancelled when a callback cancels.
    """
    device = select_device()
    model.to(device)
    classify = objective == "classification"
    Xt = as_input_tensor(X, device)
    yt = torch.as_tensor(y, dtype=torch.long if classify else torch.float32, device=device)
    Xv = None if X_val is None or len(X_val) == 0 else as_input_tensor(X_val, device)
    yv = None if Xv is None else torch.as_tensor(y_val, dtype=yt.dtype, device=device)
    n = len(Xt)
    bs = min(cfg.batch_size, n)
    steps = math.ceil(n / bs)
    if classify:

        def loss_fn(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(out, target, label_smoothing=cfg.label_smoothing)
    else:
        loss_fn = F.mse_loss
    # measured before seeding: calibration runs on private copies under a forked random state anyway
    if plan is None:
        plan = resolve_plan(model, Xt[:bs], yt[:bs], loss_fn, cfg.precision, prepare=scale_inputs)
    model.execution_plan = plan
    seed_everything(cfg.seed)
    if Xt.dim() == 4 and plan.candidate.channels_last:  # NHWC: often the fast layout for oneDNN / cuDNN
        model.to(memory_format=torch.channels_last)
        Xt = Xt.contiguous(memory_format=torch.channels_last)
        if Xv is not None:
            Xv = Xv.contiguous(memory_format=torch.channels_last)
    elif Xt.dim() == 4:
        model.to(memory_format=torch.contiguous_format)
    autocast = plan.autocast
    with num_threads(plan.candidate.threads):
        return _train_loop(
            model, Xt, yt, Xv, yv, cfg, classify, loss_fn, autocast, plan, bs, steps, callbacks, order
        )  # fmt: skip


def make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of `cfg`: SGD (Nesterov momentum 0.9), Adam or AdamW. Adam and AdamW use torch's fused
    kernel (one pass over all parameters instead of a loop of small ops: a median 3% faster per MNIST-5k CNN
    epoch over 12 paired epochs on a 2-core AMD EPYC) where this torch build has it."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    fused = (params[0].device.type if params else "cpu") in ("cpu", "cuda")
    try:
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)
    except (RuntimeError, TypeError):  # a build without the fused kernel for this device
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _train_loop(
    model: nn.Module,
    Xt: torch.Tensor,
    yt: torch.Tensor,
    Xv: torch.Tensor | None,
    yv: torch.Tensor | None,
    cfg: TrainConfig,
    classify: bool,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    autocast: bool,
    plan: Plan,
    bs: int,
    steps: int,
    callbacks: Sequence[Callback],
    order: Callable[[torch.Generator], torch.Tensor] | None,
) -> list[EpochRecord]:
    device = Xt.device
    n = len(Xt)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps, pct_start=cfg.warmup
    )
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)

    state = TrainState(model=model, cfg=cfg, epochs=cfg.epochs, batches_per_epoch=steps, plan=plan)
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
                xb, yb = scale_inputs(Xt[idx]), yt[idx]
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
                state.lr = optimizer.param_groups[0]["lr"]
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
