"""Sweeps: grid parsing and expansion, aggregation checked against independent arithmetic, and a real local
sweep whose every trial is a stored, tagged run of the one runner."""

from __future__ import annotations

import json
import math

import pytest

from bench.experiments import sweep, trials
from bench.experiments.trials import SweepControl, SweepSpec
from bench.run.store import RunStore
from models.config import ConfigError

T975 = {2: 4.302652729911275, 3: 3.182446305284263, 1: 12.706204736174698}  # Student t, 97.5% quantile, by df


def test_parse_grid_maps_factors_onto_model_and_training_fields() -> None:
    grid = trials.parse_grid("image", "mlp", ["activation=relu,sigmoid,tanh", "lr=0.1,0.01", "size=1k,full", "layers=1,2"])
    assert grid == {"activation": ["relu", "sigmoid", "tanh"], "lr": [0.1, 0.01], "size": [1000, 0], "layers": [1, 2]}
    assert trials.resolve_factor("image", "cnn", "layers")[:2] == ("model", "conv_blocks")
    assert trials.resolve_factor("image", "cnn", "width")[:2] == ("model", "channels")
    assert trials.resolve_factor("image", "mlp", "width")[:2] == ("model", "neurons")
    assert trials.resolve_factor("image", "mlp", "epochs")[:2] == ("train", "epochs")


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["bogus=1,2"], "cannot sweep 'bogus'"),
        (["lr=fast"], "not a valid float"),
        (["lr=nan"], "not a valid float"),
        (["size=-5"], "not a valid"),
        (["activation"], "FACTOR=V1,V2"),
        (["lr=0.1", "lr=0.2"], "twice"),
        (["layers=1.5"], "not a valid int"),
    ],
)
def test_bad_grids_are_refused_with_a_message(items, message) -> None:
    with pytest.raises(ConfigError, match=message):
        trials.parse_grid("image", "mlp", items)


def test_invalid_cell_values_are_refused_before_anything_trains() -> None:
    with pytest.raises(ConfigError, match="activation=foo"):
        SweepSpec.build("image", "mnist-5k", "mlp", {"activation": ["relu", "foo"]}, seeds=(0,))
    with pytest.raises(ConfigError, match=r"lr=0\.0: .*must be at least"):
        SweepSpec.build("image", "mnist-5k", "mlp", {"lr": [0.0]}, seeds=(0,))
    with pytest.raises(ConfigError, match="too many"):
        SweepSpec.build("image", "mnist-5k", "mlp", {"lr": [1e-3 * (i + 1) for i in range(100)]}, seeds=(0, 1, 2))


def test_expand_grid_is_the_cartesian_product_first_factor_slowest() -> None:
    cells = trials.expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(cells) == 6
    assert cells[0] == {"a": 1, "b": "x"} and cells[1] == {"a": 1, "b": "y"} and cells[3] == {"a": 2, "b": "x"}
    assert len({json.dumps(c, sort_keys=True) for c in cells}) == 6
    assert trials.expand_grid({}) == [{}]
    spec = SweepSpec.build("image", "mnist-5k", "mlp", {"activation": ["relu", "tanh"]}, seeds=(0, 1, 2))
    assert spec.n_trials == 6 and [s for _, _, s in spec.trials()] == [0, 0, 1, 1, 2, 2]


def _independent(values: list[float]) -> tuple[float, float, float]:
    n = len(values)
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    return m, sd, T975[n - 1] * sd / math.sqrt(n)


def _records(spec: SweepSpec, table: dict[str, list[float]]) -> list[dict]:
    out = []
    for i, cell in enumerate(spec.cells):
        for seed, v in zip(spec.seeds, table[cell["activation"]], strict=True):
            out.append({"cell": i, "params": cell, "label": trials.cell_label(cell), "seed": seed, "run_id": f"r{i}{seed}",
                        "status": "finished", "metric": v, "train_seconds": 1.0 + seed, "train_samples": 100,
                        "history": [{"epoch": 1, "value": v - 0.1}, {"epoch": 2, "value": v}], "baselines": {}})
    return out


def test_aggregation_matches_independent_arithmetic() -> None:
    spec = SweepSpec.build("image", "mnist-5k", "mlp", {"activation": ["relu", "sigmoid", "tanh"]}, seeds=(0, 1, 2))
    table = {"relu": [0.91, 0.93, 0.92], "sigmoid": [0.80, 0.85, 0.83], "tanh": [0.90, 0.92, 0.93]}
    summary = sweep.summarize(spec, _records(spec, table))
    for c in summary["cells"]:
        m, sd, half = _independent(table[c["activation"]])
        assert c["n"] == 3
        assert c["mean"] == pytest.approx(m, abs=1e-12) and c["sd"] == pytest.approx(sd, abs=1e-12)
        assert c["ci_low"] == pytest.approx(m - half, abs=1e-8) and c["ci_high"] == pytest.approx(m + half, abs=1e-8)
    assert summary["best"] == "activation=relu"
    # paired t-test by hand: relu vs sigmoid, differences over the same seeds
    test = next(t for t in summary["tests"] if t["other"] == "activation=sigmoid")
    d = [a - b for a, b in zip(table["relu"], table["sigmoid"], strict=True)]
    dm, dsd, _ = _independent(d)
    t_stat = dm / (dsd / math.sqrt(3))
    from scipy import stats

    assert test["test"] == "paired t-test"
    assert test["p_value"] == pytest.approx(2 * stats.t.sf(abs(t_stat), 2), rel=1e-9)
    assert test["difference"] == pytest.approx(dm)
    # the factor table pools over other factors: one factor here, so it equals the cells
    assert [r["mean"] for r in summary["factors"]["activation"]] == [c["mean"] for c in summary["cells"]]
    curves = {(c["setting"], c["epoch"]): c["value"] for c in summary["curves"]}
    assert curves[("activation=relu", 2)] == pytest.approx(0.92)


def test_factor_tables_pool_over_the_other_factor_and_failed_trials_are_not_averaged() -> None:
    spec = SweepSpec.build("image", "mnist-5k", "mlp", {"activation": ["relu", "tanh"], "lr": [0.01, 0.001]},
                           seeds=(0, 1))
    recs = []
    values = {("relu", 0.01): [0.9, 0.8], ("relu", 0.001): [0.7, 0.6], ("tanh", 0.01): [0.5, 0.4],
              ("tanh", 0.001): [0.3, 0.2]}
    for i, cell in enumerate(spec.cells):
        for seed, v in zip((0, 1), values[(cell["activation"], cell["lr"])], strict=True):
            recs.append({"cell": i, "params": cell, "label": trials.cell_label(cell), "seed": seed, "run_id": "x",
                         "status": "finished", "metric": v, "train_seconds": 1.0, "train_samples": 10, "history": []})
    recs.append(trials.failed_record(0, spec.cells[0], 2, "TrainingAborted: loss became nan"))
    summary = sweep.summarize(spec, recs)
    relu = next(r for r in summary["factors"]["activation"] if r["value"] == "relu")
    m, sd, _ = _independent([0.9, 0.8, 0.7, 0.6])
    assert relu["n"] == 4 and relu["mean"] == pytest.approx(m) and relu["sd"] == pytest.approx(sd)
    assert summary["failed"] == 1 and summary["cells"][0]["failed"] == 1 and summary["cells"][0]["n"] == 2


def test_single_seed_has_no_interval_and_no_test() -> None:
    assert sweep.mean_sd_ci([0.5]) == {"n": 1, "mean": 0.5, "sd": None, "ci_low": None, "ci_high": None}
    assert sweep.significance({0: 0.9}, {0: 0.8})["p_value"] is None


def test_loglog_fit_recovers_a_power_law() -> None:
    sizes = [1000, 10_000, 100_000]
    fit = sweep.loglog_fit(sizes, [0.002 * n**1.5 for n in sizes])
    assert fit["slope"] == pytest.approx(1.5) and fit["extrapolated_size"] == 1_000_000
    assert fit["extrapolated_seconds"] == pytest.approx(0.002 * 1e6**1.5, rel=1e-9)
    assert sweep.loglog_fit([100, 100], [1.0, 2.0]) is None


@pytest.fixture(scope="module")
def store() -> RunStore:
    return RunStore()


def test_local_sweep_every_trial_is_a_tagged_stored_run(store) -> None:
    spec = SweepSpec.build("image", "mnist-5k", "mlp", {"activation": ["relu", "tanh"]}, seeds=(0, 1),
                           train_overrides={"epochs": 1}, max_samples=200)
    seen = []
    summary = sweep.run_sweep(spec, backend="local", store=store, on_progress=seen.append)
    assert summary["status"] == "complete" and summary["finished"] == 4
    assert seen[-1]["done"] == 4 and seen[-1]["queued"] == 0
    for t in summary["trials"]:
        run = store.client.get_run(t["run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.tags[trials.TAG_SWEEP] == spec.sweep_id
        assert json.loads(run.data.tags[trials.TAG_CELL]) == t["params"]
        stored = store.load_report(t["run_id"])
        assert stored["models"][0]["metrics"]["accuracy"] == t["metric"] and stored["seed"] == t["seed"]
    again = sweep.load_sweep(store, spec.sweep_id)
    assert again["status"] == "complete"
    assert [c["mean"] for c in again["cells"]] == pytest.approx([c["mean"] for c in summary["cells"]])
    assert spec.sweep_id in {s["sweep_id"] for s in sweep.list_sweeps(store)}


def test_stopping_keeps_the_finished_trials(store) -> None:
    spec = SweepSpec.build("image", "mnist-5k", "mlp", {"activation": ["relu", "tanh"]}, seeds=(0, 1),
                           train_overrides={"epochs": 1}, max_samples=200)
    control = SweepControl()

    def stop_after_first(p: dict) -> None:
        if p["record"] is not None:
            control.stop()

    summary = sweep.run_sweep(spec, backend="local", store=store, control=control, on_progress=stop_after_first)
    assert summary["status"] == "stopped" and summary["finished"] == 1
    assert sweep.load_sweep(store, spec.sweep_id)["status"] == "partial"


def test_interval_is_cut_to_the_metric_range() -> None:
    spec = SweepSpec.build("image", "mnist-5k", "mlp", {"activation": ["relu"]}, seeds=(0, 1))
    summary = sweep.summarize(spec, _records_two(spec, [0.99, 0.60]))
    cell = summary["cells"][0]
    m, _, half = _independent([0.99, 0.60])
    assert m + half > 1 and m - half < 0  # the raw t-interval leaves [0, 1] ...
    assert cell["ci_high"] == 1.0 and cell["ci_low"] == 0.0  # ... the reported one does not


def _records_two(spec: SweepSpec, values: list[float]) -> list[dict]:
    cell = spec.cells[0]
    return [{"cell": 0, "params": cell, "label": trials.cell_label(cell), "seed": s, "run_id": "x", "status": "finished",
             "metric": v, "train_seconds": 1.0, "train_samples": 10, "history": []} for s, v in zip((0, 1), values, strict=True)]


def test_trials_killed_by_a_stop_are_closed(store) -> None:
    run_id = store.start("image", "mnist-5k", 0, {"models": "mlp"})  # a trial whose worker was killed
    trials.tag_run(store, run_id, {trials.TAG_SWEEP: "abcdef012345"})
    assert trials.close_unfinished(store, "abcdef012345") == 1
    assert store.client.get_run(run_id).info.status == "KILLED"
    assert trials.close_unfinished(store, "abcdef012345") == 0
