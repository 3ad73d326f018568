"""SECURITY.md item 23: heavy jobs are bounded. The job queue has a length limit, and a sweep (which runs its
trials outside a job) holds one of the server's training slots while it runs, instead of running beside them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bench.exec import default as default_executor
from bench.exec import jobs
from data.guard import ServerBusy
from tests import job_targets

ROOT = Path(__file__).resolve().parent.parent
START_S = 120


def _blocking_target(gate: threading.Event):
    def target(request, store, on_event, callbacks=()) -> dict:
        gate.wait(30)
        return {"request": request}

    return target


def test_a_full_queue_refuses_the_next_training_with_a_message(monkeypatch) -> None:
    monkeypatch.setattr(jobs, "MAX_QUEUED_RUNS", 3)
    gate = threading.Event()
    ex = jobs.InlineExecutor(1, target=_blocking_target(gate))
    try:
        running = ex.submit("running", store=False)
        queued = [ex.submit(f"q{i}", store=False) for i in range(3)]
        assert running.status == jobs.RUNNING and all(j.status == jobs.QUEUED for j in queued)
        with pytest.raises(ServerBusy, match="3 trainings are already waiting"):
            ex.submit("one too many", store=False)
        queued[0].cancel()
        ex.submit("fits again", store=False)  # a cancelled job frees its place in the queue
    finally:
        gate.set()
        ex.shutdown()


def test_a_sweep_holds_a_training_slot_while_it_runs() -> None:
    gate = threading.Event()
    ex = jobs.InlineExecutor(1, target=_blocking_target(gate))
    try:
        with ex.hold_slot("sweep", wait=1.0):
            job = ex.submit("waits for the sweep", store=False)
            time.sleep(0.2)
            assert job.status == jobs.QUEUED and job.queue_position == 1
        assert job.status == jobs.RUNNING  # the slot came back when the sweep ended
        with pytest.raises(ServerBusy, match="every training slot of this server is busy"), ex.hold_slot("sweep", 0.3):
            pass  # pragma: no cover - never reached: the job holds the only slot
    finally:
        gate.set()
        ex.shutdown()


def test_worker_processes_respect_a_held_slot() -> None:
    """The same bound in the default executor (worker processes): a job queued behind a sweep starts after it."""
    ex = jobs.LocalProcessExecutor(1)
    try:
        with ex.hold_slot("sweep", wait=5.0):
            job = ex.submit("after the sweep", store=False, target=job_targets.echo)
            time.sleep(1.0)
            assert job.status == jobs.QUEUED
        assert job.wait(START_S) and job.result()["request"] == "after the sweep"
    finally:
        ex.shutdown()


def test_the_page_says_the_queue_is_full(monkeypatch) -> None:
    """Through the image page: with the queue full, pressing Train shows a message and starts nothing."""
    from streamlit.testing.v1 import AppTest

    class Full:
        max_concurrent = 2

        def submit(self, *a, **k):
            raise ServerBusy("8 trainings are already waiting for this server; try again when one has finished")

    monkeypatch.setattr(default_executor, "get_executor", lambda: Full())
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/image.py").run()
    at.button(key="train").click().run()
    assert not at.exception
    assert any("already waiting" in w.value for w in at.warning)
