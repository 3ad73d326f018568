"""Job bodies for tests/test_jobs.py. A worker process imports this module by name, so it stays small."""

from __future__ import annotations

import os
import signal
import time
from typing import Any


def _open_run(store: Any, on_event: Any) -> str | None:
    if store is None:
        return None
    run_id = store.start("image", "digits", 0, {"test": "jobs"})
    on_event("run_started", {"run_id": run_id})
    return run_id


def echo(request: Any, store: Any, on_event: Any, callbacks: Any = ()) -> dict:
    """Three events, then a report that carries the request and this worker's identity and random draws."""
    import numpy as np
    import torch

    for i in range(3):
        on_event("step", {"i": i})
    return {"request": request, "pid": os.getpid(), "numpy": float(np.random.rand()), "torch": float(torch.rand(1))}


def sleep_forever(request: Any, store: Any, on_event: Any, callbacks: Any = ()) -> dict:
    """Opens a run and then never finishes (until it is stopped)."""
    _open_run(store, on_event)
    while True:
        time.sleep(0.05)


def segfault(request: Any, store: Any, on_event: Any, callbacks: Any = ()) -> dict:
    """Opens a run, then the process dies as in a crash in native code."""
    _open_run(store, on_event)
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(10)
    return {}


def oom_killed(request: Any, store: Any, on_event: Any, callbacks: Any = ()) -> dict:
    """Opens a run, then the process is killed as the kernel's OOM killer would."""
    _open_run(store, on_event)
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)
    return {}


def raise_error(request: Any, store: Any, on_event: Any, callbacks: Any = ()) -> dict:
    """Raises the exception named by the request."""
    from models.config import ConfigError

    if request == "config":
        raise ConfigError("lr must be at least 1e-06, got 0.0")
    raise RuntimeError("internal detail /secret/path/token=abc")


def hog_memory(request: Any, store: Any, on_event: Any, callbacks: Any = ()) -> dict:
    """Touches `request` MiB and reports this worker's peak resident memory."""
    import numpy as np

    block = np.ones(request * 2**20 // 8)
    with open("/proc/self/status") as fh:
        peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
    return {"pid": os.getpid(), "peak_kib": peak, "sum": float(block[:10].sum())}


def fail_in_training(request: Any, store: Any, on_event: Any, callbacks: Any = ()) -> dict:
    """The real benchmark, with a training loop that breaks at its first batch (an internal error)."""
    from bench.core.train import Callback
    from bench.exec.jobs import benchmark_job

    class Boom(Callback):
        def on_batch_end(self, state: Any) -> None:
            raise RuntimeError("a bug in a callback")

    return benchmark_job(request, store, on_event, callbacks=[Boom()])
