"""Calibration of the execution path: choice logic with a fake timer, the per-machine cache, the overrides,
and the training loop's use of the plan (uint8 inputs, old configs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.core import calibrate as cal
from bench.core.calibrate import Candidate, Plan
from bench.core.train import predict_logits, train
from models.config import ConfigError, TrainConfig, config_from_dict
from models.nets import MLP, MLPConfig

BASE = Candidate("fp32", False, 2)
FAST = Candidate("bf16", True, 2)
ONE = Candidate("fp32", False, 1)


class FakeClock:
    """A timer that only moves when a fake step runs: each candidate's step costs a fixed amount."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_steps(clock: FakeClock, cost: dict[Candidate, float], broken: tuple[Candidate, ...] = ()):
    runs: dict[Candidate, int] = {}

    def make_step(c: Candidate):
        if c in broken:
            raise RuntimeError("no bf16 kernels here")

        def step() -> None:
            runs[c] = runs.get(c, 0) + 1
            clock.now += cost[c]

        return step

    return make_step, runs


def test_faster_candidate_wins() -> None:
    clock = FakeClock()
    make_step, _ = fake_steps(clock, {BASE: 0.010, FAST: 0.004, ONE: 0.008})
    plan = cal.calibrate([BASE, FAST, ONE], make_step, timer=clock)
    assert plan.candidate == FAST and plan.source == "calibrated"
    assert plan.step_ms == pytest.approx({BASE.label: 10.0, FAST.label: 4.0, ONE.label: 8.0})
    assert plan.speedup == pytest.approx(2.5)
    assert plan.baseline == BASE.label


def test_gain_within_noise_keeps_fp32_eager() -> None:
    clock = FakeClock()
    make_step, _ = fake_steps(clock, {BASE: 0.0100, FAST: 0.0099})
    assert cal.calibrate([BASE, FAST], make_step, timer=clock).candidate == BASE


def test_failing_candidate_is_skipped() -> None:
    clock = FakeClock()
    make_step, runs = fake_steps(clock, {BASE: 0.010, FAST: 0.001, ONE: 0.008}, broken=(FAST,))
    plan = cal.calibrate([BASE, FAST, ONE], make_step, timer=clock)
    assert plan.candidate == ONE
    assert plan.step_ms[FAST.label] is None and "no bf16 kernels" in plan.notes[FAST.label]
    assert FAST not in runs


def test_candidate_failing_mid_run_is_skipped() -> None:
    clock = FakeClock()
    calls = {"n": 0}

    def make_step(c: Candidate):
        def step() -> None:
            clock.now += {BASE: 0.01, FAST: 0.001}[c]
            if c == FAST:
                calls["n"] += 1
                if calls["n"] > 2:
                    raise RuntimeError("out of memory")

        return step

    plan = cal.calibrate([BASE, FAST], make_step, timer=clock)
    assert plan.candidate == BASE and "out of memory" in plan.notes[FAST.label]


def test_very_slow_candidate_is_dropped_but_baseline_never() -> None:
    clock = FakeClock()
    make_step, runs = fake_steps(clock, {BASE: 0.050, FAST: 0.001, ONE: 0.500})
    plan = cal.calibrate([BASE, FAST, ONE], make_step, timer=clock, rounds=6)
    assert plan.candidate == FAST
    assert runs[BASE] == 7  # warm-up + 6 rounds although 50x slower than the fastest
    assert runs[ONE] < 7 and "dropped" in plan.notes[ONE.label]


def test_skip_list_is_not_run() -> None:
    clock = FakeClock()
    make_step, runs = fake_steps(clock, {BASE: 0.01, FAST: 0.001})
    plan = cal.calibrate([BASE, FAST], make_step, timer=clock, skip={FAST: "skipped: gate"})
    assert plan.candidate == BASE and FAST not in runs and plan.notes[FAST.label] == "skipped: gate"


MACHINE = {"cpu": "Test CPU", "cores": 2, "torch": "2.0", "device": "cpu"}


def test_cache_is_keyed_by_machine_and_workload(tmp_path) -> None:
    path = tmp_path / "calibration.json"
    plan = Plan(FAST, "calibrated", {BASE.label: 10.0, FAST.label: 4.0}, {}, BASE.label)
    cal.save_cached(MACHINE, "CNN|w1", plan, path)
    got = cal.load_cached(MACHINE, "CNN|w1", path)
    assert got is not None and got.candidate == FAST and got.source == "cached"
    assert got.step_ms == plan.step_ms
    assert cal.load_cached({**MACHINE, "torch": "2.1"}, "CNN|w1", path) is None  # new torch: measure again
    assert cal.load_cached({**MACHINE, "cpu": "Other CPU"}, "CNN|w1", path) is None
    assert cal.load_cached({**MACHINE, "cores": 16}, "CNN|w1", path) is None
    assert cal.load_cached(MACHINE, "CNN|w2", path) is None
    cal.save_cached({**MACHINE, "torch": "2.1"}, "CNN|w1", Plan(ONE, "calibrated"), path)  # both machines kept
    assert cal.load_cached(MACHINE, "CNN|w1", path).candidate == FAST
    assert cal.load_cached({**MACHINE, "torch": "2.1"}, "CNN|w1", path).candidate == ONE


def test_cache_invalidated_by_version_age_and_damage(tmp_path) -> None:
    path = tmp_path / "calibration.json"
    cal.save_cached(MACHINE, "w", Plan(FAST, "calibrated"), path)
    data = json.loads(path.read_text())
    key = next(iter(data["machines"]))
    old = datetime.now(UTC) - timedelta(days=cal.MAX_AGE_DAYS + 1)
    data["machines"][key]["workloads"]["w"]["measured_at"] = old.isoformat()
    path.write_text(json.dumps(data))
    assert cal.load_cached(MACHINE, "w", path) is None  # too old
    cal.save_cached(MACHINE, "w", Plan(FAST, "calibrated"), path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "version": cal.CACHE_VERSION + 1}))
    assert cal.load_cached(MACHINE, "w", path) is None  # another scheme version
    data["machines"][key]["workloads"]["w"]["candidate"]["precision"] = "fp8"
    path.write_text(json.dumps(data))
    assert cal.load_cached(MACHINE, "w", path) is None  # damaged entry
    path.write_text("{not json")
    assert cal.load_cached(MACHINE, "w", path) is None
    cal.save_cached(MACHINE, "w", Plan(ONE, "calibrated"), path)  # a damaged file is replaced
    assert cal.load_cached(MACHINE, "w", path).candidate == ONE
    cal.clear_cache(path)
    assert not path.exists()


def _tiny() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = MLP(MLPConfig(layers=1, neurons=8, dropout=0.0), (1, 4, 4), 3)
    return model, torch.rand(16, 1, 4, 4), torch.arange(16) % 3


def test_resolve_measures_once_then_uses_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("NEURALBENCH_PRECISION", raising=False)
    path = tmp_path / "calibration.json"
    model, xb, yb = _tiny()
    before = [p.detach().clone() for p in model.parameters()]
    rng_before = torch.get_rng_state()
    first = cal.resolve_plan(model, xb, yb, F.cross_entropy, "auto", path=path)
    assert first.source == "calibrated" and first.step_ms[first.baseline] is not None
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # weights untouched
    assert torch.equal(rng_before, torch.get_rng_state())  # and the global random stream too

    def no_calibration(*_a: object, **_k: object) -> Plan:
        raise AssertionError("measured again although cached")

    monkeypatch.setattr(cal, "calibrate", no_calibration)
    second = cal.resolve_plan(model, xb, yb, F.cross_entropy, "auto", path=path)
    assert second.source == "cached" and second.candidate == first.candidate
    assert path.exists() and "MLP|" in path.read_text()


def test_setting_and_environment_override_without_measuring(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cal, "calibrate", lambda *a, **k: pytest.fail("must not measure"))
    model, xb, yb = _tiny()
    plan = cal.resolve_plan(model, xb, yb, F.cross_entropy, "bf16", path=tmp_path / "c.json")
    assert plan.source == "setting" and plan.candidate.precision == "bf16"
    monkeypatch.setenv("NEURALBENCH_PRECISION", "fp32")
    plan = cal.resolve_plan(model, xb, yb, F.cross_entropy, "auto", path=tmp_path / "c.json")
    assert plan.source == "setting" and plan.candidate.precision == "fp32"
    assert not (tmp_path / "c.json").exists()
    with pytest.raises(ValueError, match="precision"):
        cal.resolve_plan(model, xb, yb, F.cross_entropy, "fp16", path=tmp_path / "c.json")


def test_candidates_baseline_first() -> None:
    cands = cal.candidates_for(torch.device("cpu"), image_input=True, threads=2)
    assert cands[0] == Candidate("fp32", False, 2)
    assert {c.threads for c in cands} == {1, 2} and {c.precision for c in cands} == {"fp32", "bf16"}
    assert len(cands) == 8
    assert all(not c.channels_last for c in cal.candidates_for(torch.device("cpu"), image_input=False, threads=1))


def test_old_configs_still_load() -> None:
    assert config_from_dict(TrainConfig, {"bf16": False, "epochs": 2}).precision == "fp32"
    assert config_from_dict(TrainConfig, {"bf16": True}).precision == "auto"
    assert TrainConfig(bf16=False).precision == "fp32"  # the old keyword still works
    assert TrainConfig().precision == "auto"
    with pytest.raises(ConfigError, match=r"(?i)precision"):
        TrainConfig(precision="fp8")


def test_uint8_images_train_like_scaled_floats(tiny_mnist) -> None:
    """uint8 images are scaled to [0, 1] per batch: same training as with the float images."""
    X8 = np.round(tiny_mnist.X_train[:200] * 255).astype(np.uint8)
    Xf = X8.astype(np.float32) / 255
    y = tiny_mnist.y_train[:200]
    cfg = TrainConfig(epochs=2, batch_size=50, precision="fp32", seed=3)
    nets = []
    for X in (X8, Xf):
        torch.manual_seed(0)
        net = MLP(MLPConfig(layers=1, neurons=16, dropout=0.0), (1, 28, 28), 10)
        train(net, X, y, cfg)
        nets.append(net)
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(predict_logits(nets[0], X8[:20]), predict_logits(nets[1], Xf[:20]), atol=1e-4)


def test_training_records_its_plan(tiny_mnist, monkeypatch) -> None:
    monkeypatch.setenv("NEURALBENCH_PRECISION", "fp32")
    net = MLP(MLPConfig(layers=1, neurons=16), (1, 28, 28), 10)
    train(net, tiny_mnist.X_train[:64], tiny_mnist.y_train[:64], TrainConfig(epochs=1, batch_size=32))
    assert net.execution_plan.source == "setting" and net.execution_plan.candidate.precision == "fp32"


def test_cli_setting_and_environment_show_the_path(monkeypatch) -> None:
    from bench.cli.main import train_overrides
    from bench.run.runner import environment

    assert train_overrides(TrainConfig(), ["train.precision=bf16"]).precision == "bf16"
    with pytest.raises(ConfigError, match=r"(?i)precision"):
        train_overrides(TrainConfig(), ["train.precision=fp8"])
    monkeypatch.setenv("NEURALBENCH_PRECISION", "fp32")
    assert environment()["execution"].startswith("fp32 forced by NEURALBENCH_PRECISION")
    monkeypatch.delenv("NEURALBENCH_PRECISION")
    monkeypatch.setattr(cal, "_RECENT", {"CNN|params=1|in=1x28x28|float32|batch=256": Plan(FAST, "cached")})
    text = environment()["execution"]
    assert text.startswith("auto") and "CNN batch 256: bf16 channels-last 2 threads (cached" in text
