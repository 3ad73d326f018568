"""The task registry: the one place that knows which tasks exist. Filled one way: `register(task)`.

Every task is a package here that declares everything about itself in one `TaskSpec` (its `task.TASK`):
datasets, models (how each is built, and how its stored form loads), its evaluator, its metrics (name, direction,
bounds, format), its set-up and CLI options. The built-in tasks are registered lazily, on the first look-up, so
importing the registry costs nothing; a new task is its own package plus one line in BUILTIN (or a `register`
call, as the toy task of tests/test_new_task.py does without editing any file of the engine).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping

from bench.core.contract import TaskSpec

# name -> the module whose TASK declares it; imported on first use (each pulls in torch, scikit-learn, ...)
BUILTIN: dict[str, str] = {
    "image": "bench.tasks.image.task",
    "sentiment": "bench.tasks.sentiment.task",
    "forecast": "bench.tasks.forecast.task",
}


class TaskRegistry(Mapping[str, TaskSpec]):
    """name -> TaskSpec, the built-in tasks first (in BUILTIN's order), then the registered ones."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskSpec] = {}
        self._extra: dict[str, TaskSpec] = {}
        self._lock = threading.RLock()
        self._loaded = False

    def _load(self) -> dict[str, TaskSpec]:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    for name, module in BUILTIN.items():
                        # deferred: a task's module imports its models (torch, transformers, statsmodels)
                        self._tasks[name] = importlib.import_module(module).TASK
                    self._loaded = True
        return {**self._tasks, **self._extra}

    def __getitem__(self, name: str) -> TaskSpec:
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def register(self, task: TaskSpec) -> TaskSpec:
        """Add (or replace) a task that is not built in; returns it."""
        if task.name in BUILTIN:
            raise ValueError(f"{task.name!r} is a built-in task")
        with self._lock:
            self._extra[task.name] = task
        return task

    def unregister(self, name: str) -> None:
        """Remove a registered (not built-in) task."""
        with self._lock:
            self._extra.pop(name, None)


REGISTRY = TaskRegistry()


def register(task: TaskSpec) -> TaskSpec:
    """Make `task` known to the runner, the store, the CLI, sweeps and the pages."""
    return REGISTRY.register(task)


def get_task(name: str) -> TaskSpec:
    """Look up a task, with a clear error for unknown names."""
    if name not in REGISTRY:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]
