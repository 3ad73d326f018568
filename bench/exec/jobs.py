"""Trainings as jobs in worker processes: submit a request, read its progress events, get the report, cancel.

Why processes: `torch.manual_seed` / `np.random.seed` set process-wide state that every thread of a server
shares, so two sessions training at once in one process interleave their random draws and get different
models. A job runs `run_benchmark` in a worker process of its own, started by a forkserver (never a fork of
the threaded server), with a fresh random state; its memory goes back to the OS when it exits.

    job = get_executor().submit(request)          # -> Job, queued or running
    while not job.done:
        for kind, payload in job.events(timeout=0.25): ...   # "run_started", "model_start", "epoch", ...
    job.result()                                  # the report (status "done"), else None and job.error

`Executor` and `Job` are the whole interface: `LocalProcessExecutor` is the default, `InlineExecutor` runs a
job in a thread of this process (tests that monkeypatch the engine; no isolation), and a Ray backend can sit
behind the same two classes (`RAY_ADDRESS`).
"""

from __future__ import annotations

import abc
import collections
import contextlib
import logging
import multiprocessing
import multiprocessing.connection as mpc
import multiprocessing.spawn
import os
import random
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.run.runner import MAX_CONCURRENT_RUNS  # the one bound, also kept by the runner itself
from data.guard import ServerBusy  # the one "no room for more work now" error, with a message for the user
from models.redact import install_log_redaction, redact

if TYPE_CHECKING:
    from bench.run.store import RunStore

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
TERMINAL = frozenset({DONE, FAILED, CANCELLED})
Event = tuple[str, dict[str, Any]]
# A job's body: (request, store or None, on_event, callbacks) -> report. The default runs the benchmark.
Target = Callable[..., dict[str, Any]]

# Trainings that may wait for a slot at once (all sessions together); one more is refused with a message.
MAX_QUEUED_RUNS = int(os.environ.get("NEURALBENCH_MAX_QUEUED_RUNS", "8"))
# Modules the forkserver imports once, so that a worker starts in well under a second instead of re-importing
# torch, scikit-learn and MLflow for every job.
PRELOAD = ["bench.exec.jobs", "bench.run.runner", "bench.run.store", "mlflow", "mlflow.tracking"]
# Settings a worker takes from the submitting process at submit time (the forkserver's own copy may be older).
ENV_PREFIXES = ("NEURALBENCH_", "MLFLOW_", "OMP_", "MKL_", "CUDA_", "HF_", "TRANSFORMERS_")
TERMINATE_GRACE_SECONDS = 3.0


class JobCancelled(BaseException):  # a BaseException like KeyboardInterrupt: `except Exception` lets it pass
    """The worker was asked to stop (SIGTERM from `Job.cancel`)."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is meant for the user (bad settings, missing data, a diverging run)."""
    from bench.core.train import TrainingAborted
    from data.images import DatasetUnavailable
    from models.config import ConfigError

    return (ConfigError, DatasetUnavailable, TrainingAborted, ServerBusy)


def human_error(exc: BaseException) -> tuple[str, str]:
    """(kind, message) for the page: the user's own message for user errors, a short generic one otherwise.

    The full traceback of an internal error is logged where it happened (the server log), never shown.
    """
    if isinstance(exc, user_errors()):
        return "user", redact(exc)  # a user's message may still quote a URI or header: no credential in it
    from bench.run.store import store_error, store_unreachable

    if store_unreachable(exc):  # MLflow's text names the URI with its password: say it in words instead
        return "internal", f"the training could not record its run: {store_error(exc)}"
    return "internal", (
        f"the training failed because of an internal error ({type(exc).__name__}); the details are in the server log"
    )


def benchmark_job(
    request: Any, store: RunStore | None, on_event: Callable[[str, dict], None], callbacks: Any = ()
) -> dict:
    """The default job body: one benchmark run (the same call the CLI made before jobs existed)."""
    from bench.run.runner import run_benchmark

    return run_benchmark(request, store=store, on_event=on_event, callbacks=callbacks)


def store_location(store: RunStore | bool | None) -> dict[str, Any] | None:
    """What a worker needs to open the same run store (a RunStore itself holds a client and is not sent)."""
    if store is None or store is False:
        return None
    if store is True:
        from bench.run.store import DEFAULT_DIR

        root = os.environ.get("NEURALBENCH_RUNS") or str(DEFAULT_DIR)
        return {"tracking_uri": os.environ.get("MLFLOW_TRACKING_URI"), "root": root}
    return store.location()


def open_store(location: dict[str, Any] | None) -> RunStore | None:
    """The RunStore at `location` (None: no store)."""
    if location is None:
        return None
    from bench.run.store import RunStore

    return RunStore(**location)


@dataclass
class _State:
    """A job's mutable state, shared between the job's owner and the executor's thread (guarded by `cond`)."""

    status: str = QUEUED
    events: collections.deque = field(default_factory=collections.deque)
    report: dict | None = None
    error: str | None = None
    error_kind: str | None = None
    run_id: str | None = None
    cancel_requested: bool = False
    finished: threading.Event = field(default_factory=threading.Event)
    cond: threading.Condition = field(default_factory=threading.Condition)


class Job(abc.ABC):
    """A submitted training. Thread-safe; the page polls it, the executor's thread fills it."""

    def __init__(self, request: Any) -> None:
        self.id = uuid.uuid4().hex
        self.request = request
        self.submitted_at = time.time()
        self._s = _State()

    # --- read side ---------------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        """queued | running | done | failed | cancelled."""
        return self._s.status

    @property
    def done(self) -> bool:
        """Finished one way or another (done, failed or cancelled)."""
        return self._s.status in TERMINAL

    @property
    def error(self) -> str | None:
        """A short human message when the job failed (details are in the server log)."""
        return self._s.error

    @property
    def error_kind(self) -> str | None:
        """Kind of failure: "user" (bad settings or data; the message says what), "internal", "crashed" (the worker died)."""
        return self._s.error_kind

    @property
    def run_id(self) -> str | None:
        """The run store's id of this job's run, once the worker has opened it."""
        return self._s.run_id

    @property
    @abc.abstractmethod
    def queue_position(self) -> int | None:
        """1 for the next job to start, 2 after it, ...; None once the job runs or ended."""

    def events(self, timeout: float = 0.0) -> list[Event]:
        """All progress events received since the last call; waits up to `timeout` s for the first one."""
        s = self._s
        with s.cond:
            if not s.events and timeout > 0 and s.status not in TERMINAL:
                s.cond.wait(timeout)
            out = list(s.events)
            s.events.clear()
        return out

    def result(self) -> dict[str, Any] | None:
        """The report of a finished job, else None."""
        return self._s.report if self._s.status == DONE else None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended and its worker is cleaned up; True if it did within `timeout`."""
        return self._s.finished.wait(timeout)

    @abc.abstractmethod
    def cancel(self) -> bool:
        """Stop the job now (a queued job never starts). False if it had already ended.

        The final status tells what happened: "cancelled", or "done" when the run finished before the stop
        reached it (its report is then kept). `wait()` returns once that is settled.
        """

    # --- write side (executors) --------------------------------------------------------------------------
    def _push(self, kind: str, payload: dict[str, Any]) -> None:
        s = self._s
        with s.cond:
            if kind == "run_started":
                s.run_id = payload.get("run_id")
            s.events.append((kind, payload))
            s.cond.notify_all()

    def _end(self, status: str, report: dict | None = None, error: str | None = None, kind: str | None = None) -> None:
        s = self._s
        with s.cond:
            s.status, s.report, s.error, s.error_kind = status, report, error, kind
            s.cond.notify_all()
        s.finished.set()


class Executor(abc.ABC):
    """Runs jobs; at most `max_concurrent` at once, the others wait in a first-in first-out queue."""

    max_concurrent: int

    @abc.abstractmethod
    def submit(self, request: Any, *, store: RunStore | bool | None = True) -> Job:
        """Queue a benchmark request; store=True: the default run store, False/None: no store."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Cancel every job and release the executor's resources."""


# ----------------------------------------------------------------------------------------------------------
# Worker side (runs in the child process)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise JobCancelled("stopped by the user")


def _fresh_random_state() -> None:
    """Workers forked from one forkserver would share its global random state: draw new seeds from the OS."""
    import numpy as np
    import torch

    seed = int.from_bytes(os.urandom(8), "little")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _worker_main(
    target: Target, request: Any, location: dict | None, env: dict[str, str], threads: int, conn: mpc.Connection
) -> None:
    """Entry point of a worker process: run one job and send ("event" | "result" | "error", ...) messages."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal goes to the parent, which cancels
    os.environ.update(env)
    install_log_redaction()  # the worker's own log lines (tracebacks from MLflow name the tracking URI)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s [worker %(process)d] %(message)s")
    try:
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        _fresh_random_state()

        def on_event(kind: str, payload: dict[str, Any]) -> None:
            conn.send(("event", kind, payload))

        report = target(request, open_store(location), on_event)
        conn.send(("result", report))
    except JobCancelled:
        pass  # the runner has closed its run KILLED; the parent knows it asked for this
    except BaseException as exc:
        kind, message = human_error(exc)
        if kind == "internal":
            log.error("job failed:\n%s", redact(traceback.format_exc()))
        with contextlib.suppress(OSError, ValueError):
            conn.send(("error", kind, message))
    finally:
        conn.close()


# ----------------------------------------------------------------------------------------------------------
# Parent side


def _exit_message(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        why = {"SIGKILL": "killed, most likely out of memory", "SIGSEGV": "crashed (segmentation fault)"}.get(
            name, f"ended by {name}"
        )
        return f"the training process {why}; the run was closed as failed"
    return f"the training process exited unexpectedly (exit code {code}); the run was closed as failed"


def _preparation_data_without_main_script(original: Callable[[str], dict]) -> Callable[[str], dict]:
    """multiprocessing re-runs the parent's __main__ *file* in every worker before the job starts. Under
    `streamlit run` that file is the app script (Streamlit sets sys.modules["__main__"] to it), so each worker
    would execute the whole app in bare mode. Our workers only need importable modules: drop it for them."""

    def get_preparation_data(name: str) -> dict:
        data = original(name)
        if name.startswith(WORKER_PREFIX):
            data.pop("init_main_from_path", None)
        return data

    get_preparation_data.__wrapped__ = original  # type: ignore[attr-defined]
    return get_preparation_data


WORKER_PREFIX = "neuralbench-job-"
if not hasattr(multiprocessing.spawn.get_preparation_data, "__wrapped__"):
    multiprocessing.spawn.get_preparation_data = _preparation_data_without_main_script(
        multiprocessing.spawn.get_preparation_data
    )


class _QueuedJob(Job):
    """A job of an executor that queues jobs itself (first in, first out): it answers position and cancel."""

    def __init__(self, executor: _QueueingExecutor, request: Any, location: dict | None) -> None:
        super().__init__(request)
        self._executor = executor
        self.location = location

    @property
    def queue_position(self) -> int | None:
        return self._executor._position(self)

    def cancel(self) -> bool:
        return self._executor._cancel(self)


class _QueueingExecutor(Executor):
    """An executor with its own first-in first-out queue `_queue`, guarded by `_lock` (both set by __init__)."""

    _queue: collections.deque
    _lock: threading.RLock

    def _position(self, job: _QueuedJob) -> int | None:
        with self._lock:
            try:
                return self._queue.index(job) + 1
            except ValueError:
                return None

    def _cancel_queued(self, job: _QueuedJob) -> bool | None:
        """The part of cancelling shared by every queue; call it holding `_lock`. False: the job had ended;
        True: it was still queued and is now ended; None: it runs, marked cancel-requested for the caller to stop."""
        if job.done:
            return False
        if job in self._queue:
            self._queue.remove(job)
            job._end(CANCELLED, error="stopped before it started")
            return True
        job._s.cancel_requested = True
        return None

    @abc.abstractmethod
    def _cancel(self, job: Any) -> bool:
        """Stop `job` (see Job.cancel)."""

    # --- bounds shared by every queue (SECURITY.md item 23) -------------------------------------------------
    _reserved = 0  # slots held by work that runs outside a job (a sweep), see hold_slot

    def _n_running(self) -> int:
        raise NotImplementedError

    def _kick(self) -> None:
        """Start queued jobs that now fit."""

    def _room_to_start(self) -> bool:
        """Whether one more job (or a slot holder) may start now; call holding `_lock`."""
        return self._n_running() + self._reserved < self.max_concurrent

    def _check_queue_room(self) -> None:
        """Refuse a new job when MAX_QUEUED_RUNS wait already; call holding `_lock`."""
        if len(self._queue) >= MAX_QUEUED_RUNS:
            raise ServerBusy(
                f"{len(self._queue)} trainings are already waiting for this server; try again when one has finished"
            )

    @contextlib.contextmanager
    def hold_slot(self, what: str = "sweep", wait: float = 60.0) -> Any:
        """Count work that runs outside a job (a sweep's trials) as one running job while the block runs, so
        it waits its turn behind queued jobs and other jobs wait for it; ServerBusy after `wait` seconds."""
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                if not self._queue and self._room_to_start():
                    self._reserved += 1
                    break
            if time.monotonic() > deadline:
                raise ServerBusy(f"every training slot of this server is busy; the {what} did not start, try again")
            time.sleep(0.2)
        try:
            yield
        finally:
            with self._lock:
                self._reserved -= 1
            self._kick()


class LocalJob(_QueuedJob):
    """A job of a LocalProcessExecutor."""

    def __init__(self, executor: LocalProcessExecutor, request: Any, location: dict | None, target: Target) -> None:
        super().__init__(executor, request, location)
        self.target = target
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: mpc.Connection | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._killed_at: float | None = None
        self._result: dict | None = None
        self._error: tuple[str, str] | None = None

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self.process.pid if self.process is not None else None


class LocalProcessExecutor(_QueueingExecutor):
    """One worker process per job, started by a forkserver that has the engine preloaded.

    Each worker runs exactly one job and exits, so nothing (random state, memory, a crash) is shared between
    jobs. One monitor thread starts queued jobs, forwards the workers' messages to their Job objects and
    reaps the workers; a worker that dies has its run closed FAILED here.
    """

    def __init__(
        self,
        max_concurrent: int | None = None,
        *,
        start_method: str = "forkserver",
        threads: int | None = None,
        target: Target = benchmark_job,
    ) -> None:
        if start_method == "fork":
            raise ValueError("fork is unsafe in a threaded server (OpenMP threads can hang): use forkserver or spawn")
        self.max_concurrent = max(1, max_concurrent or MAX_CONCURRENT_RUNS)
        env_threads = os.environ.get("NEURALBENCH_WORKER_THREADS")
        # torch threads per worker: fixed (not adapted to the load) so that a run's numbers never depend on
        # how many other jobs were running; 0 keeps torch's default (all cores)
        self.threads = int(env_threads) if env_threads else (threads or 0)
        self.target = target
        self._ctx = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._ctx.set_forkserver_preload(PRELOAD)
        self._queue: collections.deque[LocalJob] = collections.deque()
        self._running: list[LocalJob] = []
        self._lock = threading.RLock()
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._warmed = False

    # --- interface -------------------------------------------------------------------------------------
    def submit(self, request: Any, *, store: RunStore | bool | None = True, target: Target | None = None) -> LocalJob:
        """Queue `request`; it starts as soon as fewer than `max_concurrent` jobs run."""
        if self._closed:
            raise RuntimeError("the executor was shut down")
        job = LocalJob(self, request, store_location(store), target or self.target)
        with self._lock:
            self._check_queue_room()
            self._queue.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._monitor, name="neuralbench-jobs", daemon=True)
                self._thread.start()
        self._wake()
        return job

    def shutdown(self) -> None:
        """Cancel everything; wait briefly for the workers to go."""
        self._closed = True
        with self._lock:
            jobs = list(self._queue) + list(self._running)
        for job in jobs:
            job.cancel()
        for job in jobs:
            job.wait(TERMINATE_GRACE_SECONDS + 2)

    def warm_up(self) -> None:
        """Start the forkserver (it imports the engine once, tens of seconds on 2 busy cores) in the background,
        so that the first job starts as fast as the next ones (about 0.3 s)."""
        if self._ctx.get_start_method() != "forkserver" or self._warmed:
            return
        self._warmed = True
        from multiprocessing import forkserver

        threading.Thread(target=forkserver.ensure_running, name="neuralbench-forkserver", daemon=True).start()

    def _n_running(self) -> int:
        return len(self._running)

    def _kick(self) -> None:
        with self._lock:
            if self._queue and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._monitor, name="neuralbench-jobs", daemon=True)
                self._thread.start()
        self._wake()

    def running(self) -> int:
        """How many jobs run now."""
        with self._lock:
            return len(self._running)

    # --- internals -------------------------------------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"x")

    def _cancel(self, job: LocalJob) -> bool:
        with self._lock:
            stopped = self._cancel_queued(job)
            if stopped is not None:
                return stopped
            proc = job.process
        if proc is not None and proc.pid is not None and job._killed_at is None:
            job._killed_at = time.monotonic()
            with contextlib.suppress(OSError, ValueError):
                proc.terminate()  # SIGTERM: the worker's runner closes its run KILLED and exits
        self._wake()
        return True

    def _start(self, job: LocalJob) -> None:
        reader, writer = self._ctx.Pipe(duplex=False)
        env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
        proc = self._ctx.Process(
            target=_worker_main,
            args=(job.target, job.request, job.location, env, self.threads, writer),
            name=f"{WORKER_PREFIX}{job.id[:8]}",
            daemon=True,
        )
        job.started_at = time.monotonic()
        proc.start()
        writer.close()  # the child holds its own copy; EOF on the reader then means the child is gone
        job.process, job.conn = proc, reader

    def _monitor(self) -> None:
        while True:
            with self._lock:
                while self._queue and self._room_to_start():
                    job = self._queue.popleft()
                    with job._s.cond:  # "queued" means "in the queue": no gap without a status or a position
                        job._s.status = RUNNING
                        job._s.cond.notify_all()
                    try:
                        self._start(job)
                    except Exception:  # could not start a process: the job fails, the server goes on
                        log.exception("could not start a worker")
                        job._end(FAILED, error="the training process could not be started", kind="internal")
                        continue
                    self._running.append(job)
                running = list(self._running)
                if not running and not self._queue:
                    self._thread = None
                    return
            waitables: list[Any] = [self._wake_r]
            for job in running:
                waitables.append(job.process.sentinel)
                if job.conn is not None and not job.conn.closed:
                    waitables.append(job.conn)
            ready = mpc.wait(waitables, timeout=0.5)
            if self._wake_r in ready:
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()
            for job in running:
                self._drain(job)
                proc = job.process
                killed_at = job._killed_at
                if (
                    proc.exitcode is None
                    and killed_at is not None
                    and time.monotonic() - killed_at > TERMINATE_GRACE_SECONDS
                ):
                    proc.kill()
                if proc.exitcode is not None or proc.sentinel in ready:
                    proc.join(timeout=1)
                    if proc.exitcode is None:
                        continue
                    self._drain(job)
                    self._finish(job)
                    with self._lock:
                        self._running.remove(job)

    def _drain(self, job: LocalJob) -> None:
        """Move every message the worker sent so far into the job (never blocks)."""
        conn = job.conn
        try:
            while conn is not None and not conn.closed and conn.poll():
                msg = conn.recv()
                if msg[0] == "event":
                    job._push(msg[1], msg[2])
                elif msg[0] == "result":
                    job._result = msg[1]
                elif msg[0] == "error":
                    job._error = (msg[1], msg[2])
        except (EOFError, OSError):
            conn.close()
        except Exception:  # a message cut in half by a kill: the rest is lost, the job is judged by its exit
            log.warning("unreadable message from worker of job %s", job.id, exc_info=True)
            conn.close()

    def _finish(self, job: LocalJob) -> None:
        """Decide the final status from what the worker sent and how it ended; close a run left RUNNING."""
        job.ended_at = time.monotonic()
        report, error = job._result, job._error
        code = job.process.exitcode
        if job.conn is not None:
            job.conn.close()
        store = None
        if job.run_id is not None and job.location is not None:
            try:
                store = open_store(job.location)
            except Exception:
                log.exception("could not open the run store to close run %s", job.run_id)
        if report is None and store is not None and job._s.cancel_requested:
            # the stop may have come after the run was stored: then it finished, and says so
            report = store.finished_report(job.run_id)
        if report is not None:
            job._end(DONE, report=report)
        elif job._s.cancel_requested:
            if store is not None:
                store.close_if_running(job.run_id, "KILLED", "stopped by the user")
            job._end(CANCELLED, error="stopped by the user")
        elif error is not None:
            if store is not None:
                store.close_if_running(job.run_id, "FAILED", error[1])
            job._end(FAILED, error=error[1], kind=error[0])
        else:
            message = _exit_message(code)
            log.error("worker of job %s ended with exit code %s and no result", job.id, code)
            if store is not None:
                store.close_if_running(job.run_id, "FAILED", message)
            job._end(FAILED, error=message, kind="crashed")
        job.process.close()


class InlineJob(_QueuedJob):
    """A job of an InlineExecutor."""

    def __init__(self, executor: InlineExecutor, request: Any, location: dict | None) -> None:
        super().__init__(executor, request, location)
        from bench.core.train import CancelToken

        self.token = CancelToken()


class InlineExecutor(_QueueingExecutor):
    """Jobs in threads of this process: no isolation (shared random state), but monkeypatches apply.

    For tests that replace parts of the engine, and for debugging. Cancelling stops a neural model at its next
    batch (a CancelToken), a classical model only when its fit returns.
    """

    def __init__(self, max_concurrent: int | None = None, *, target: Target = benchmark_job) -> None:
        self.max_concurrent = max(1, max_concurrent or MAX_CONCURRENT_RUNS)
        self.target = target
        self._queue: collections.deque[InlineJob] = collections.deque()
        self._running = 0
        self._lock = threading.RLock()

    def submit(self, request: Any, *, store: RunStore | bool | None = True) -> InlineJob:
        job = InlineJob(self, request, store_location(store))
        with self._lock:
            self._check_queue_room()
            self._queue.append(job)
        self._pump()
        return job

    def _n_running(self) -> int:
        return self._running

    def _kick(self) -> None:
        self._pump()

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._queue)
        for job in jobs:
            job.cancel()

    def _cancel(self, job: InlineJob) -> bool:
        with self._lock:
            stopped = self._cancel_queued(job)
            if stopped is not None:
                return stopped
        job.token.cancel()
        return True

    def _pump(self) -> None:
        with self._lock:
            while self._queue and self._room_to_start():
                job = self._queue.popleft()
                self._running += 1
                with job._s.cond:
                    job._s.status = RUNNING
                threading.Thread(target=self._run, args=(job,), daemon=True).start()

    def _run(self, job: InlineJob) -> None:
        from bench.core.train import TrainingCancelled

        try:
            report = self.target(job.request, open_store(job.location), job._push, (job.token,))
            job._end(DONE, report=report)
        except TrainingCancelled:
            job._end(CANCELLED, error="stopped by the user")
        except BaseException as exc:
            kind, message = human_error(exc)
            if kind == "internal":
                log.error("job failed:\n%s", redact(traceback.format_exc()))
            job._end(FAILED, error=message, kind=kind)
        finally:
            with self._lock:
                self._running -= 1
            self._pump()


def _noop(request: Any, store: Any, on_event: Callable[[str, dict], None], callbacks: Any = ()) -> dict:
    """A job that does nothing (measures the cost of starting a worker)."""
    return {"pid": os.getpid()}


def measure_start(start_method: str, jobs: int = 5) -> list[float]:
    """Seconds from submit to result of `jobs` empty jobs in a row (the first includes starting a forkserver)."""
    executor = LocalProcessExecutor(1, start_method=start_method, target=_noop)
    out = []
    try:
        for _ in range(jobs):
            t0 = time.perf_counter()
            job = executor.submit(None, store=False)
            job.wait(600)
            out.append(time.perf_counter() - t0)
    finally:
        executor.shutdown()
    return out


if __name__ == "__main__":  # python -m bench.exec.jobs: how long a worker takes to start, by start method
    import platform

    for method in ("forkserver", "spawn"):
        times = measure_start(method)
        print(f"{method:10} first {times[0]:.2f} s, then {', '.join(f'{t:.2f}' for t in times[1:])} s "
              f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)")  # fmt: skip
