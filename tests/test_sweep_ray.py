"""A real local Ray Tune sweep of a tiny grid: every trial a stored run, Ray's files under the run folder,
and nothing left running afterwards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.exec import ray_jobs as ray_backend
from bench.experiments import sweep, trials
from bench.experiments.trials import SweepSpec
from bench.run.store import RunStore

pytest.importorskip("ray")


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(f"{pid}: {cmd[:120]}")
    return found


def test_tiny_sweep_on_local_ray_stores_every_trial_and_shuts_down() -> None:
    import ray

    store = RunStore()
    spec = SweepSpec.build("image", "mnist-5k", "mlp", {"activation": ["relu", "tanh"]}, seeds=(0,),
                           train_overrides={"epochs": 1}, max_samples=200)
    progress = []
    summary = sweep.run_sweep(spec, backend="ray", store=store, on_progress=progress.append)
    assert summary["backend"] == "ray" and summary["status"] == "complete" and summary["finished"] == 2
    assert {t["label"] for t in summary["trials"]} == {"activation=relu", "activation=tanh"}
    assert max(p["running"] for p in progress) >= 1 and progress[-1]["done"] == 2
    for t in summary["trials"]:
        run = store.client.get_run(t["run_id"])  # logged by the Ray worker into the same store
        assert run.info.status == "FINISHED" and run.data.tags[trials.TAG_SWEEP] == spec.sweep_id
        assert store.load_report(t["run_id"])["models"][0]["metrics"]["accuracy"] == t["metric"]
    # Ray's session files and Tune's experiment folder stay under the run folder (or a short /tmp folder)
    temp = ray_backend.temp_dir(ray_backend.runs_root(store))
    assert any(temp.glob("session_*")), f"no Ray session under {temp}"
    assert (ray_backend.runs_root(store) / "ray-tune" / f"sweep-{spec.sweep_id}").is_dir()
    # shut down, no dashboard, no process left behind
    assert not ray.is_initialized()
    assert not _processes_mentioning(str(temp)), _processes_mentioning(str(temp))
    # include_dashboard=False: Ray keeps a minimal head process but serves no HTTP dashboard
    for log in temp.glob("session_*/logs/dashboard.log"):
        assert "http server disabled" in log.read_text()


def test_single_training_as_a_ray_job_is_a_stored_run() -> None:
    import ray

    from bench.core.contract import BenchmarkRequest
    from bench.exec.jobs import DONE
    from models.config import TrainConfig

    store = RunStore()
    executor = ray_backend.RayExecutor()
    try:
        request = BenchmarkRequest(task="image", dataset="digits", models=("mlp", "majority"), max_samples=200,
                                   train_config=TrainConfig(epochs=1, batch_size=64, patience=1))
        job = executor.submit(request, store=store)
        assert job.wait(600), "the Ray job did not finish"
        assert job.status == DONE, job.error
        kinds = [k for k, _ in job.events()]
        assert "run_started" in kinds and "model_end" in kinds
        report = job.result()
        assert job.run_id == report["run_id"]
        assert store.client.get_run(report["run_id"]).info.status == "FINISHED"
    finally:
        executor.shutdown()
    assert not ray.is_initialized()
