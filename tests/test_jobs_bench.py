"""The real benchmark as jobs: two jobs at once with the same seed give the solo result, Stop closes the run
KILLED, a failure closes it FAILED, and neither is ever listed."""

from __future__ import annotations

import time

import pytest

from bench.core.contract import BenchmarkRequest
from bench.exec import jobs
from bench.run.store import RunStore
from models.classical import RFConfig
from models.config import TrainConfig
from tests import job_targets
from tests.test_image_form import comparable

START_S = 300.0
# scikit-learn digits, a small CNN and a random forest (both seed-dependent), fast settings
REQUEST = BenchmarkRequest(
    "image", "digits", ("cnn", "rf"), seed=0, configs={"rf": RFConfig(n_estimators=30)},
    train_config=TrainConfig(epochs=3, batch_size=32, lr=3e-3, patience=8), max_samples=600,
)  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    return RunStore(root=tmp_path_factory.mktemp("jobs-bench-store"))


@pytest.mark.slow
def test_two_jobs_at_once_with_the_same_seed_equal_the_solo_run() -> None:
    """The issue's measurement: in threads of one process the two runs interleave their random draws and differ
    (97.78% vs 99.17% for 98.33% alone); in worker processes both equal the solo run, number for number."""
    ex = jobs.LocalProcessExecutor(2)
    try:
        solo = ex.submit(REQUEST, store=False)
        assert solo.wait(START_S) and solo.status == jobs.DONE, solo.error
        a, b = ex.submit(REQUEST, store=False), ex.submit(REQUEST, store=False)
        assert a.wait(START_S) and b.wait(START_S)
        assert a.status == b.status == jobs.DONE, (a.error, b.error)
        assert a.started_at < b.ended_at and b.started_at < a.ended_at, "the two jobs must have overlapped"
    finally:
        ex.shutdown()
    expected = comparable(solo.result())
    assert comparable(a.result()) == expected
    assert comparable(b.result()) == expected


def test_stop_closes_the_real_run_killed_and_it_is_never_listed(store) -> None:
    ex = jobs.LocalProcessExecutor(1)
    request = BenchmarkRequest("image", "digits", ("cnn",), train_config=TrainConfig(epochs=200, patience=200))
    try:
        job = ex.submit(request, store=store)
        kinds: list[str] = []
        deadline = time.monotonic() + START_S
        while "epoch" not in kinds:  # stopped in the middle of the training
            assert time.monotonic() < deadline and not job.done, (job.status, job.error)
            kinds += [k for k, _ in job.events(timeout=0.5)]
        assert job.run_id is not None and store.status(job.run_id) == "RUNNING"
        assert job.run_id not in {r["run_id"] for r in store.list_runs("image")}  # RUNNING: not listed
        assert job.cancel() and job.wait(15)
    finally:
        ex.shutdown()
    assert job.status == jobs.CANCELLED and job.result() is None
    assert store.status(job.run_id) == "KILLED"
    assert job.run_id not in {r["run_id"] for r in store.list_runs("image")}


def test_a_failing_run_is_closed_failed_not_killed(store) -> None:
    ex = jobs.LocalProcessExecutor(1)
    try:
        job = ex.submit(BenchmarkRequest("image", "digits", ("mlp",), max_samples=200), store=store,
                        target=job_targets.fail_in_training)  # fmt: skip
        assert job.wait(START_S)
    finally:
        ex.shutdown()
    assert job.status == jobs.FAILED and job.error_kind == "internal" and "a bug" not in job.error
    assert store.status(job.run_id) == "FAILED"
    assert "a bug in a callback" in store.client.get_run(job.run_id).data.tags["neuralbench.abort_reason"]
    assert job.run_id not in {r["run_id"] for r in store.list_runs("image")}
