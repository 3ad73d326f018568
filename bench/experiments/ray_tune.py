"""Sweeps on Ray Tune: every trial one normal run of the runner, scheduled by Tune on the local Ray instance
or the cluster at RAY_ADDRESS (bench/exec/ray_jobs.py starts and ends the session); the tracking URI reaches the
trials through Ray's object store, never through a trial's config (params.json)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from bench.exec.ray_jobs import SESSION_LOCK, runs_root, session
from bench.experiments.trials import Progress, SweepControl, SweepSpec, failed_record, run_trial
from models.config import ConfigError

log = logging.getLogger(__name__)


def trial_config(spec: SweepSpec, store: Any, root: Path) -> dict[str, Any]:
    """What every trial of the sweep gets as its Tune config (Tune writes it, in plain text, into each trial's
    params.json and params.pkl): the spec and where the store is, never its URI or any credential. The URI
    reaches the trials through `tune.with_parameters` (Ray's object store), see `run_trials`."""
    return {"spec": spec.to_json(), "threads": 1, "store": store is not None,
            "local_store": bool(getattr(store, "local", True)), "root": str(root)}  # fmt: skip


def store_uri(store: Any) -> str | None:
    """The tracking URI the workers must open (None: no store, or the local sqlite store under the root)."""
    if store is None or getattr(store, "local", True):
        return None
    return store.tracking_uri


def _worker_store(config: dict[str, Any], tracking_uri: str | None) -> Any:
    """The run store of a trial (the config holds no URI: it comes as a Tune parameter)."""
    from bench.run.store import RunStore

    if not config["store"]:
        return None
    if tracking_uri is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)  # the driver's store is the sqlite file under root
    return RunStore(tracking_uri=tracking_uri, root=config["root"])


def _trainable(config: dict[str, Any], tracking_uri: str | None = None) -> None:
    """One Tune trial: a normal runner run, logged to the store by this worker; reports its record as JSON."""
    import torch
    from ray import tune

    from bench.core.train import TrainingAborted
    from bench.run.store import store_error

    torch.set_num_threads(max(1, int(config["threads"])))
    spec = SweepSpec.from_json(config["spec"])
    cell_index, seed = int(config["cell"]), int(config["seed"])
    cell = spec.cells[cell_index]
    try:
        record = run_trial(spec, cell_index, cell, seed, _worker_store(config, tracking_uri))
    except (TrainingAborted, ConfigError) as exc:
        record = failed_record(cell_index, cell, seed, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # e.g. the store failed: a redacted record, not Tune's error.txt with the URI in it
        logging.getLogger(__name__).exception("trial %s seed %s failed", cell_index, seed)  # redacted log
        record = failed_record(cell_index, cell, seed, f"{type(exc).__name__}: {store_error(exc)}")
    tune.report({"record": json.dumps(record)})


def run_trials(
    spec: SweepSpec,
    *,
    store: Any = None,
    control: SweepControl | None = None,
    on_progress: Progress | None = None,
    max_concurrent: int | None = None,
) -> list[dict[str, Any]]:
    """Run every trial of the sweep on Ray Tune (1 CPU each, as many at once as there are CPUs); returns
    the trial records in completion order. Stopping ends the sweep and keeps the finished trials."""
    from ray import tune

    control = control or SweepControl()
    if store is not None:
        store._experiment(spec.task)  # create the experiment once here, not concurrently in the workers
    if not SESSION_LOCK.acquire(timeout=1.0):
        raise ConfigError("another sweep is running in this server; wait for it to finish")
    try:
        with session(store) as info:
            cpus = max(1, int(info["cpus"] or 1))
            concurrent = max(1, min(max_concurrent or cpus, cpus, spec.n_trials))
            trials = spec.trials()
            root = runs_root(store)
            param_space = {**trial_config(spec, store, root), "trial": tune.grid_search(list(range(len(trials))))}
            callback = _Progress(trials, control, on_progress)
            tuner = tune.Tuner(
                # the URI travels in Ray's object store, not in the config Tune writes into every params.json
                tune.with_resources(tune.with_parameters(_with_trial(trials), tracking_uri=store_uri(store)),
                                    {"cpu": 1}),
                param_space=param_space,
                tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=False,
                                            trial_dirname_creator=lambda t: f"trial-{t.config['trial']}"),
                run_config=tune.RunConfig(
                    name=f"sweep-{spec.sweep_id}", storage_path=str(root / "ray-tune"), verbose=0,
                    stop=_StopAll(control), callbacks=[callback], log_to_file=False,
                ),
            )  # fmt: skip
            tuner.fit()
            if control.stopped and store is not None:
                from bench.experiments.trials import close_unfinished

                close_unfinished(store, spec.sweep_id)  # trials killed mid-run leave their runs RUNNING
            if callback.interrupt is not None:
                raise callback.interrupt
            return callback.records
    finally:
        SESSION_LOCK.release()


def _with_trial(trials: list[tuple[int, dict[str, Any], int]]) -> Any:
    """The trainable with the trial index resolved into (cell, seed) before it ships to a worker."""
    table = [(i, s) for i, _, s in trials]

    def trainable(config: dict[str, Any], tracking_uri: str | None = None) -> None:
        cell, seed = table[int(config["trial"])]
        _trainable({**config, "cell": cell, "seed": seed}, tracking_uri)

    return trainable


def _stopper_base() -> type:
    from ray import tune

    return tune.Stopper


def _callback_base() -> type:
    from ray import tune

    return tune.Callback


class _StopAll(_stopper_base()):  # type: ignore[misc]
    """Ends the whole Tune run when the sweep's control asks to stop."""

    def __init__(self, control: SweepControl) -> None:
        self.control = control

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.control.stopped

    # Tune pickles its run config for a later restore; the live control (locks, events) stays behind
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.control = SweepControl()


class _Progress(_callback_base()):  # type: ignore[misc]
    """Counts trials (done, running, queued), collects their records, forwards progress to the caller.

    If the caller's progress function raises (Streamlit stops a script that way when Stop is pressed), the
    sweep is stopped cleanly and the exception re-raised after Tune returns."""

    def __init__(self, trials: list, control: SweepControl, on_progress: Progress | None) -> None:
        self.trials, self.control, self.on_progress = trials, control, on_progress
        self.records: list[dict[str, Any]] = []
        self.running: set[str] = set()
        self.interrupt: BaseException | None = None
        control.counts.update(total=len(trials), queued=len(trials), running=0, done=0, failed=0)

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__([], SweepControl(), None)

    def _notify(self, record: dict[str, Any] | None) -> None:
        c = self.control.counts
        c["running"] = len(self.running)
        c["queued"] = max(0, c["total"] - c["done"] - c["running"])
        if self.on_progress is None or self.interrupt is not None:
            return
        try:
            self.on_progress({**c, "record": record})
        except BaseException as exc:  # a Streamlit stop/rerun: end the sweep, re-raise after Tune returns
            self.interrupt = exc
            self.control.stop()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.add(trial.trial_id)
        self._notify(None)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if "record" in result:
            record = json.loads(result["record"])
            self.records.append(record)
            self.control.counts["done"] += 1
            self.control.counts["failed"] += record["status"] == "failed"
            self.running.discard(trial.trial_id)
            self._notify(record)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.discard(trial.trial_id)
        self._notify(None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.discard(trial.trial_id)
        if self.control.stopped:
            return
        i, cell, seed = self.trials[int(trial.config["trial"])]
        record = failed_record(i, cell, seed, f"trial error: {trial.error_file or 'see Ray logs'}")
        self.records.append(record)
        self.control.counts["done"] += 1
        self.control.counts["failed"] += 1
        self._notify(record)


# ----------------------------------------------------------------------------------------------------------
# Single trainings on Ray: the job interface of bench/exec/jobs.py (chosen by get_executor() when RAY_ADDRESS is set)


