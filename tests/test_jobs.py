"""Jobs in worker processes: events and results come back, crashes and stops close the run, the queue is bounded.

The job bodies are in tests/job_targets.py (a worker imports them by name); the real benchmark runs as a job in
tests/test_jobs_bench.py.
"""

from __future__ import annotations

import os
import time

import pytest

from bench.exec import default as default_executor
from bench.exec import jobs
from bench.run.store import RunStore
from tests import job_targets

START_S = 120.0  # the first job of the session waits for the forkserver to import the engine


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    return RunStore(root=tmp_path_factory.mktemp("jobs-store"))


@pytest.fixture
def executor():
    ex = jobs.LocalProcessExecutor(2)
    yield ex
    ex.shutdown()


def wait_for(predicate, timeout: float = START_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_events_and_result_come_back(executor) -> None:
    job = executor.submit({"a": 1}, store=False, target=job_targets.echo)
    assert job.wait(START_S) and job.status == jobs.DONE, job.error
    assert [e for e in job.events()] == [("step", {"i": 0}), ("step", {"i": 1}), ("step", {"i": 2})]
    report = job.result()
    assert report["request"] == {"a": 1}
    assert report["pid"] != os.getpid()  # it ran in another process
    assert job.queue_position is None and job.error is None


def test_every_job_has_its_own_process_and_fresh_random_state(executor) -> None:
    a = executor.submit(None, store=False, target=job_targets.echo)
    b = executor.submit(None, store=False, target=job_targets.echo)
    assert a.wait(START_S) and b.wait(START_S)
    ra, rb = a.result(), b.result()
    assert ra["pid"] != rb["pid"]
    # workers forked from one forkserver would otherwise inherit the same global generators
    assert ra["numpy"] != rb["numpy"] and ra["torch"] != rb["torch"]


def test_fork_is_refused() -> None:
    with pytest.raises(ValueError, match="fork"):
        jobs.LocalProcessExecutor(1, start_method="fork")


def test_cancel_terminates_the_worker_and_closes_the_run_killed(executor, store) -> None:
    job = executor.submit(None, store=store, target=job_targets.sleep_forever)
    wait_for(lambda: job.run_id is not None)
    pid = job.pid
    t0 = time.monotonic()
    assert job.cancel()
    assert job.wait(10)
    assert time.monotonic() - t0 < jobs.TERMINATE_GRACE_SECONDS + 2
    assert job.status == jobs.CANCELLED and job.result() is None
    assert not os.path.exists(f"/proc/{pid}")
    assert store.status(job.run_id) == "KILLED"
    assert not job.cancel(), "a second cancel is a no-op"


@pytest.mark.parametrize(
    ("target", "message"),
    [(job_targets.segfault, "segmentation fault"), (job_targets.oom_killed, "out of memory")],
)
def test_a_dying_worker_fails_its_run_and_the_executor_goes_on(executor, store, target, message) -> None:
    job = executor.submit(None, store=store, target=target)
    assert job.wait(START_S)
    assert job.status == jobs.FAILED and job.error_kind == "crashed"
    assert message in job.error
    assert store.status(job.run_id) == "FAILED"
    tags = store.client.get_run(job.run_id).data.tags
    assert message in tags["neuralbench.abort_reason"]
    after = executor.submit("still here", store=False, target=job_targets.echo)
    assert after.wait(START_S) and after.result()["request"] == "still here"


def test_user_errors_keep_their_message_internal_errors_do_not_leak(executor) -> None:
    user = executor.submit("config", store=False, target=job_targets.raise_error)
    internal = executor.submit("internal", store=False, target=job_targets.raise_error)
    assert user.wait(START_S) and internal.wait(START_S)
    assert user.status == jobs.FAILED and user.error_kind == "user"
    assert user.error == "lr must be at least 1e-06, got 0.0"
    assert internal.status == jobs.FAILED and internal.error_kind == "internal"
    assert "RuntimeError" in internal.error and "server log" in internal.error
    assert "secret" not in internal.error and "token" not in internal.error


def test_at_most_n_jobs_run_the_rest_queue_with_their_position() -> None:
    ex = jobs.LocalProcessExecutor(1)
    try:
        first = ex.submit(None, store=False, target=job_targets.sleep_forever)
        second = ex.submit("two", store=False, target=job_targets.echo)
        third = ex.submit("three", store=False, target=job_targets.echo)
        wait_for(lambda: first.status == jobs.RUNNING)
        time.sleep(0.3)
        assert ex.running() == 1
        assert (first.queue_position, second.queue_position, third.queue_position) == (None, 1, 2)
        assert second.status == jobs.QUEUED
        assert second.cancel() and second.status == jobs.CANCELLED  # a queued job never starts
        assert third.queue_position == 1
        first.cancel()
        assert third.wait(START_S) and third.result()["request"] == "three"
        assert second.result() is None
    finally:
        ex.shutdown()


def test_memory_goes_back_to_the_os_when_the_job_ends(executor) -> None:
    def rss_kib() -> int:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS"))

    before = rss_kib()
    job = executor.submit(400, store=False, target=job_targets.hog_memory)
    assert job.wait(START_S), job.error
    report = job.result()
    assert report["peak_kib"] > 400 * 1024  # the worker really held the memory ...
    assert not os.path.exists(f"/proc/{report['pid']}")  # ... and is gone with it
    assert rss_kib() - before < 100 * 1024  # the server never held it


def test_events_wait_for_the_first_event_with_a_timeout(executor) -> None:
    job = executor.submit(None, store=False, target=job_targets.sleep_forever)
    try:
        t0 = time.monotonic()
        assert job.events(timeout=0.3) == [] or job.status == jobs.RUNNING
        assert time.monotonic() - t0 < 5
    finally:
        job.cancel()
        job.wait(10)


def test_inline_executor_runs_in_this_process() -> None:
    ex = jobs.InlineExecutor(1, target=job_targets.echo)
    job = ex.submit("x", store=False)
    assert job.wait(60) and job.result()["pid"] == os.getpid()
    assert len(job.events()) == 3


def test_default_executor_is_a_process_executor_and_replaceable() -> None:
    previous = default_executor.set_executor(None)
    try:
        ex = default_executor.get_executor()
        assert isinstance(ex, jobs.LocalProcessExecutor) and default_executor.get_executor() is ex
        assert ex.max_concurrent == jobs.MAX_CONCURRENT_RUNS
        inline = jobs.InlineExecutor()
        default_executor.set_executor(inline)
        assert default_executor.get_executor() is inline
    finally:
        default_executor.set_executor(previous)
