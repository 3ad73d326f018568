"""The one place that decides where NeuralBench writes (SECURITY.md item 29: all writable state under one root).

- `state_root()`: `NEURALBENCH_RUNS` when set, else `<repository>/runs` (git-ignored). The run store, the
  calibration cache and everything below live here.
- `cache_dir()`: `NEURALBENCH_CACHE` when set, else `state_root()/cache`: downloads (torchvision's
  Fashion-MNIST), price caches, embeddings, uploaded CSVs and extracted image datasets.

Both are read from the environment at call time, so a test or a worker that sets the variables after this
module was imported is obeyed. Read-only data elsewhere (Debian's /usr/share/datasets) is not state and is
looked up by its own loaders.

`CallTimePath` is a path-like stand-in for module constants that used to be computed at import time
(`data.images.CACHE`, `bench.tasks.sentiment.estimators.CACHE`, `bench.run.store.DEFAULT_DIR`): every use resolves it anew, and
`/` gives another call-time path, so `CACHE / "prices"` also follows the environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def state_root() -> Path:
    """The root of all writable state: NEURALBENCH_RUNS, else <repository>/runs."""
    env = os.environ.get("NEURALBENCH_RUNS")
    return Path(env) if env else REPO_ROOT / "runs"


def cache_dir() -> Path:
    """Caches and uploads: NEURALBENCH_CACHE, else <state root>/cache."""
    env = os.environ.get("NEURALBENCH_CACHE")
    return Path(env) if env else state_root() / "cache"


class CallTimePath(os.PathLike):
    """A path decided each time it is used (by `resolve_now()`); attributes are those of that `Path`."""

    __slots__ = ("_resolve",)

    def __init__(self, resolve: Callable[[], str | os.PathLike]) -> None:
        object.__setattr__(self, "_resolve", resolve)

    def resolve_now(self) -> Path:
        """The path this stands for now."""
        return Path(self._resolve())

    def __fspath__(self) -> str:
        return str(self.resolve_now())

    def __str__(self) -> str:
        return str(self.resolve_now())

    def __repr__(self) -> str:
        return f"CallTimePath({str(self.resolve_now())!r})"

    def __truediv__(self, other: str | os.PathLike) -> CallTimePath:
        return CallTimePath(lambda: self.resolve_now() / other)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CallTimePath):
            other = other.resolve_now()
        return self.resolve_now() == other

    def __hash__(self) -> int:
        return hash(self.resolve_now())

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (Path, (str(self.resolve_now()),))  # pickled (a cache, another process) as the path it is now

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_resolve":  # copy/pickle probes, and before __init__
            raise AttributeError(name)
        return getattr(self.resolve_now(), name)
