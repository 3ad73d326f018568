"""Shared fixtures: an isolated run store and deliberately tiny real data and fitted models."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# The run store must never touch the repository's runs/ folder during tests.
_RUNS = Path(tempfile.mkdtemp(prefix="neuralbench-test-runs-"))
os.environ["NEURALBENCH_RUNS"] = str(_RUNS)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Calibrating the execution path (bench.core.calibrate) is exercised in tests/test_calibrate.py and the perf smoke,
# which unset this; everywhere else it would only add a few timed steps per new model to the fast paths.
os.environ["NEURALBENCH_PRECISION"] = "fp32"

import pytest  # noqa: E402

from data.images import ImageSplit, load_mnist_5k  # noqa: E402
from models.config import TrainConfig  # noqa: E402
from tests.worktree_guard import pytest_configure, pytest_sessionfinish, pytest_terminal_summary  # noqa: E402, F401

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def runs_dir() -> Path:
    return _RUNS


@pytest.fixture(scope="session")
def tiny_mnist() -> ImageSplit:
    """600 real MNIST digits for training (stratified fast path); the whole 1,000-image test split."""
    return load_mnist_5k(seed=0, max_samples=600)


@pytest.fixture
def fast_train() -> TrainConfig:
    """The fast path: few epochs, small batches."""
    return TrainConfig(epochs=3, batch_size=64, lr=2e-3, patience=3)
