"""Small helpers shared by tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.core.contract import BenchmarkRequest
from bench.run.runner import run_benchmark


def bench_run(
    task: str,
    dataset: str,
    models: Sequence[str],
    *,
    store: Any = None,
    on_event: Any = None,
    callbacks: Sequence[Any] = (),
    **request: Any,
) -> dict[str, Any]:
    """run_benchmark with the request's fields as keyword arguments."""
    return run_benchmark(BenchmarkRequest(task, dataset, tuple(models), **request), store=store, on_event=on_event,
                         callbacks=callbacks)  # fmt: skip
