"""The process-wide executor every page and the CLI submit to: worker processes on this machine by default,
Ray when RAY_ADDRESS names a cluster, threads when NEURALBENCH_EXECUTOR=inline (tests, debugging)."""

from __future__ import annotations

import logging
import os
import threading

from bench.exec.jobs import Executor, InlineExecutor, LocalProcessExecutor

log = logging.getLogger(__name__)


_DEFAULT: Executor | None = None
_DEFAULT_LOCK = threading.Lock()


def _make_default() -> Executor:
    if os.environ.get("RAY_ADDRESS"):
        try:
            from bench.exec.ray_jobs import RayExecutor  # deferred: ray is a heavy import, only for a cluster
        except ImportError:
            log.warning("RAY_ADDRESS is set but no Ray backend is installed: jobs run in local worker processes")
        else:
            return RayExecutor()
    if os.environ.get("NEURALBENCH_EXECUTOR") == "inline":
        return InlineExecutor()
    return LocalProcessExecutor()


def get_executor() -> Executor:
    """The process-wide executor every page and the CLI submit to (created on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = _make_default()
        return _DEFAULT


def set_executor(executor: Executor | None) -> Executor | None:
    """Replace the process-wide executor (tests); returns the previous one, which is not shut down."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        previous, _DEFAULT = _DEFAULT, executor
    return previous
