"""Ray for jobs and sweeps: the Ray session (a local Ray instance on this machine's cores by default, an existing cluster when
RAY_ADDRESS is set (`ray start --head` on the head node, `ray start --address=HEAD:6379` on the others).

Every trial is one normal run of the ONE runner, logged by the worker itself to the run store (MLflow), so
trials on a cluster need a store every node reaches: set MLFLOW_TRACKING_URI to a private tracking server. The
URI reaches the workers as a task argument / Tune parameter, never in a trial's config or Ray's runtime env (both
are written in plain text: params.json, runtime_env_agent.log).
Ray's files (session logs, sockets, Tune's experiment folder) stay under the run folder; no dashboard is
started; the object store is capped (NEURALBENCH_RAY_OBJECT_STORE_MB, default 256 MB).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.exec.jobs import Executor, Job

ROOT = Path(__file__).resolve().parent.parent
OBJECT_STORE_MB = int(os.environ.get("NEURALBENCH_RAY_OBJECT_STORE_MB", "256"))
MAX_TEMP_DIR_CHARS = 40  # Ray's unix sockets live under the temp dir; their paths must stay under 107 bytes
SESSION_LOCK = threading.Lock()  # Ray is process-global: one sweep at a time per server process

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # legacy console output: silent with verbose=0
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "0")


def runs_root(store: Any = None) -> Path:
    """The run folder (the store's root, else NEURALBENCH_RUNS / ./runs)."""
    if store is not None and getattr(store, "root", None) is not None:
        return Path(store.root).resolve()
    from bench.run.store import DEFAULT_DIR

    return Path(DEFAULT_DIR).resolve()


def temp_dir(root: Path) -> Path:
    """Ray's session folder under the run folder (a short /tmp folder when that path is too long for sockets)."""
    path = root / "ray"
    if len(str(path)) > MAX_TEMP_DIR_CHARS:
        path = Path(tempfile.gettempdir()) / f"nb-ray-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cluster_address() -> str | None:
    """RAY_ADDRESS when set (an existing cluster), else None (a local instance is started)."""
    return os.environ.get("RAY_ADDRESS") or None


@contextlib.contextmanager
def session(store: Any = None, num_cpus: int | None = None) -> Iterator[dict[str, Any]]:
    """Ray connected for the duration of the block: starts a local instance (and shuts it down after) unless
    one is already connected; connects to RAY_ADDRESS when set. Yields facts about the instance."""
    import ray

    if ray.is_initialized():
        yield {"address": "already connected", "cpus": ray.cluster_resources().get("CPU", 0), "owned": False}
        return
    root = runs_root(store)
    env = {
        "RAY_AUTH_MODE": "disabled",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        "NEURALBENCH_RUNS": str(root),
    }
    # No MLFLOW_TRACKING_URI here: Ray writes the runtime env, env vars included, in plain text into its session
    # logs (runtime_env_agent.log). The trials get the URI through Tune's object store (run_trials).
    address = cluster_address()
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                              "configure_logging": False}  # fmt: skip
    if address:
        # the code travels to the cluster's workers; data, caches and runs do not
        runtime_env = {"env_vars": env, "working_dir": str(ROOT),
                       "excludes": [".venv", ".git", "runs", "data/cache", "docs", "test-artifacts"]}  # fmt: skip
        ray.init(address=address, runtime_env=runtime_env, **kwargs)
    else:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1, object_store_memory=OBJECT_STORE_MB * 1024**2,
            _temp_dir=str(temp_dir(root)), runtime_env={"env_vars": env}, **kwargs,
        )  # fmt: skip
    try:
        yield {"address": address or "local", "cpus": ray.cluster_resources().get("CPU", 0), "owned": True}
    finally:
        ray.shutdown()


def _init_kwargs(root: Path) -> dict[str, Any]:
    env = {"RAY_AUTH_MODE": "disabled", "MLFLOW_DISABLE_TELEMETRY": "true", "NEURALBENCH_RUNS": str(root),
           "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}  # fmt: skip
    # no MLFLOW_TRACKING_URI in the runtime env (Ray logs it in plain text): each job's store location, an
    # argument of its task, names the server
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                              "configure_logging": False}  # fmt: skip
    address = cluster_address()
    if address:
        kwargs.update(address=address, runtime_env={"env_vars": env, "working_dir": str(ROOT),
                      "excludes": [".venv", ".git", "runs", "data/cache", "docs", "test-artifacts"]})  # fmt: skip
    else:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        kwargs.update(num_cpus=os.cpu_count() or 1, object_store_memory=OBJECT_STORE_MB * 1024**2,
                      _temp_dir=str(temp_dir(root)), runtime_env={"env_vars": env})  # fmt: skip
    return kwargs


def _remote_body(request: Any, location: dict | None, queue: Any) -> dict[str, Any]:
    """Runs on a Ray worker: one benchmark run, its progress events pushed to the driver's queue."""
    from bench.exec.jobs import benchmark_job, open_store

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind in ("run_started", "model_start", "epoch", "model_end"):  # "batch" is too chatty for an actor queue
            queue.put((kind, payload))

    return benchmark_job(request, open_store(location), on_event)


class RayJob(Job):
    """A training submitted to Ray."""

    def __init__(self, executor: RayExecutor, request: Any, location: dict | None) -> None:
        super().__init__(request)
        self._executor = executor
        self.location = location
        self.ref: Any = None
        self.queue: Any = None

    @property
    def queue_position(self) -> int | None:
        return None  # Ray queues tasks beyond the cluster's free CPUs itself

    def cancel(self) -> bool:
        return self._executor._cancel(self)


class RayExecutor(Executor):
    """Jobs as Ray tasks (1 CPU each) on the local instance or the cluster at RAY_ADDRESS. Events come back
    through a Ray queue; Stop cancels the task (force) and closes its run KILLED."""

    def __init__(self, max_concurrent: int | None = None) -> None:
        self.max_concurrent = max_concurrent or 0  # Ray itself queues tasks beyond the cluster's CPUs
        self._owned = False
        self._lock = threading.Lock()
        self._jobs: list[RayJob] = []

    def _ensure_ray(self, location: dict | None) -> None:
        import ray

        with self._lock:
            if not ray.is_initialized():
                root = Path(location["root"]).resolve() if location else runs_root()
                ray.init(**_init_kwargs(root))
                self._owned = True

    def submit(self, request: Any, *, store: Any = True) -> RayJob:
        import ray
        from ray.util.queue import Queue

        from bench.exec.jobs import RUNNING, store_location

        location = store_location(store)
        self._ensure_ray(location)
        job = RayJob(self, request, location)
        job.queue = Queue(maxsize=10_000)
        job.ref = ray.remote(num_cpus=1, max_retries=0)(_remote_body).remote(request, location, job.queue)
        with job._s.cond:
            job._s.status = RUNNING
        self._jobs.append(job)
        threading.Thread(target=self._follow, args=(job,), name=f"ray-job-{job.id[:8]}", daemon=True).start()
        return job

    def _drain(self, job: RayJob) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            while not job.queue.empty():
                kind, payload = job.queue.get_nowait()
                job._push(kind, payload)

    def _follow(self, job: RayJob) -> None:
        import ray

        from bench.exec.jobs import CANCELLED, DONE, FAILED, human_error, open_store

        while True:
            ready, _ = ray.wait([job.ref], timeout=0.3)
            self._drain(job)
            if ready:
                break
        try:
            report = ray.get(job.ref)
            job._end(DONE, report=report)
        except BaseException as exc:  # Ray wraps the worker's exception; a cancelled task raises too
            cause = getattr(exc, "cause", None) or exc
            store = open_store(job.location) if job.run_id and job.location else None
            if job._s.cancel_requested:
                if store is not None:
                    store.close_if_running(job.run_id, "KILLED", "stopped by the user")
                job._end(CANCELLED, error="stopped by the user")
            else:
                kind, message = human_error(cause)
                if store is not None:
                    store.close_if_running(job.run_id, "FAILED", message)
                job._end(FAILED, error=message, kind=kind)
        finally:
            import contextlib

            with contextlib.suppress(Exception):
                ray.kill(job.queue.actor)

    def _cancel(self, job: RayJob) -> bool:
        import ray

        if job.done:
            return False
        job._s.cancel_requested = True
        ray.cancel(job.ref, force=True)
        return True

    def shutdown(self) -> None:
        """Cancel every job; disconnect from Ray (a local instance started here is stopped)."""
        import ray

        for job in list(self._jobs):
            job.cancel()
        for job in list(self._jobs):
            job.wait(10)
        if self._owned and ray.is_initialized():
            ray.shutdown()
        self._owned = False
