"""The one training loop: history, repeatability, early stopping, cancellation, NaN abort."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.core.train import (
    Callback,
    CancelToken,
    EarlyStopping,
    TrainingAborted,
    TrainingCancelled,
    predict_logits,
    train,
)
from bench.tasks.image.neural import NeuralClassifier
from models.config import TrainConfig
from models.nets import MLP, MLPConfig


def small_net() -> torch.nn.Module:
    return MLP(MLPConfig(layers=1, neurons=32, dropout=0.0), (1, 28, 28), 10)


def test_history_and_learning(tiny_mnist) -> None:
    X, y = tiny_mnist.X_train, tiny_mnist.y_train
    hist = train(small_net(), X[:500], y[:500], TrainConfig(epochs=4, batch_size=50), X_val=X[500:], y_val=y[500:])
    assert [h.epoch for h in hist] == [1, 2, 3, 4]
    assert hist[-1].train_loss < hist[0].train_loss
    assert hist[-1].val_accuracy > 0.5
    assert all(0 <= h.train_accuracy <= 1 for h in hist)


def test_same_seed_same_weights(tiny_mnist) -> None:
    cfg = TrainConfig(epochs=2, batch_size=64, seed=7)
    a = NeuralClassifier("mlp", MLPConfig(layers=1, neurons=16), cfg).fit(tiny_mnist.X_train, tiny_mnist.y_train)
    b = NeuralClassifier("mlp", MLPConfig(layers=1, neurons=16), cfg).fit(tiny_mnist.X_train, tiny_mnist.y_train)
    for (ka, va), (_, vb) in zip(a.model_.state_dict().items(), b.model_.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka
    np.testing.assert_array_equal(a.predict(tiny_mnist.X_test), b.predict(tiny_mnist.X_test))


def test_nan_loss_aborts_with_message() -> None:
    X = np.random.rand(64, 1, 28, 28).astype(np.float32)
    X[3, 0, 0, 0] = np.nan
    with pytest.raises(TrainingAborted, match="loss became nan"):
        train(small_net(), X, np.arange(64) % 10, TrainConfig(epochs=1, batch_size=64))


def test_cancel_token_stops_training(tiny_mnist) -> None:
    token = CancelToken()

    class CancelAfterTwoBatches(Callback):
        def on_batch_end(self, state) -> None:
            if state.batch == 2:
                token.cancel()

    with pytest.raises(TrainingCancelled):
        train(
            small_net(), tiny_mnist.X_train, tiny_mnist.y_train, TrainConfig(epochs=5, batch_size=32),
            callbacks=[CancelAfterTwoBatches(), token],
        )  # fmt: skip


def test_early_stopping_stops_and_restores_best(tiny_mnist) -> None:
    """After two good epochs the weights are wrecked at every epoch's end: validation accuracy drops to about
    chance, training stops after `patience` epochs, and the restored model scores the best epoch's accuracy."""
    X, y = tiny_mnist.X_train, tiny_mnist.y_train
    X_val, y_val = X[450:], y[450:]

    class WreckFromSecondEpoch(Callback):
        def on_epoch_end(self, state) -> None:
            if state.epoch < 2:
                return
            with torch.no_grad():
                for p in state.model.parameters():
                    p.normal_(0.0, 5.0)

    stopper = EarlyStopping(patience=2)
    model = small_net()
    cfg = TrainConfig(epochs=8, batch_size=50, lr=1e-2, bf16=False)
    hist = train(model, X[:450], y[:450], cfg, X_val=X_val, y_val=y_val,
                 callbacks=[stopper, WreckFromSecondEpoch()])  # fmt: skip
    best = hist[1].val_accuracy
    assert len(hist) == 4  # epoch 2 best (the wrecking starts after it), then two epochs without improvement
    assert stopper.best_epoch == 2 and stopper.best == best
    assert best > 0.6 and hist[-1].val_accuracy < best - 0.3  # the last epoch is clearly worse
    restored = float((predict_logits(model, X_val).argmax(1) == y_val).mean())
    assert restored == pytest.approx(best, abs=1e-6)  # float32 in the loop


def test_validation_is_carved_from_training_data(tiny_mnist) -> None:
    est = NeuralClassifier("mlp", MLPConfig(layers=1, neurons=16), TrainConfig(epochs=1, val_fraction=0.2))
    est.fit(tiny_mnist.X_train, tiny_mnist.y_train)
    assert est.n_val_ == round(len(tiny_mnist.y_train) * 0.2)
    assert est.n_train_ + est.n_val_ == len(tiny_mnist.y_train)


@pytest.mark.parametrize("warmup", [0.1, 0.5])
def test_one_cycle_peaks_after_the_configured_warmup(tiny_mnist, warmup) -> None:
    """TrainConfig.warmup is the share of the schedule rising to the peak learning rate (perf's time-to-accuracy
    plan uses 0.15): the largest learning rate is used at that point of the batches, and it is cfg.lr."""
    seen: list[float] = []

    class RecordLR(Callback):
        def on_batch_end(self, state) -> None:
            seen.append(state.lr)

    cfg = TrainConfig(epochs=2, batch_size=20, lr=0.01, warmup=warmup, precision="fp32")
    train(small_net(), tiny_mnist.X_train[:400], tiny_mnist.y_train[:400], cfg, callbacks=[RecordLR()])
    assert len(seen) == 40
    peak = int(np.argmax(seen))
    assert abs(peak - warmup * 40) <= 1.5, (peak, seen)
    assert max(seen) == pytest.approx(0.01)
    assert seen[0] < 0.01 / 10 and seen[-1] < 0.01 / 100


def test_adam_family_uses_the_fused_kernel_where_torch_has_it() -> None:
    """One pass over all parameters per step (measured faster on CPU); SGD keeps its own update."""
    from bench.core.train import make_optimizer

    params = list(small_net().parameters())
    adamw = make_optimizer(params, TrainConfig(optimizer="adamw"))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults.get("fused") is True
    assert make_optimizer(params, TrainConfig(optimizer="adam")).defaults.get("fused") is True
    assert isinstance(make_optimizer(params, TrainConfig(optimizer="sgd")), torch.optim.SGD)
