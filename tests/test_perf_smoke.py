"""`make perf` smoke test: the benchmark functions run in quick mode on a tiny subset and return well-formed
rows. Timing is never asserted (speed depends on the machine and on whatever else runs on it)."""

from __future__ import annotations

import importlib.machinery
import json
import math

import torch

from models.nets import CNNConfig
from perf import PerfSettings, format_table, forward_flops_per_image, measure_matmul, run_benchmarks, write_json
from perf.__main__ import run_optional_sections
from perf.report import Result, summary
from perf.workload import from_split, make_cnn

EXPECTED = {
    "calibration_seconds",
    "chosen_path_vs_fp32_eager",
    "train_images_per_s",
    "train_images_per_s_reference",
    "train_flops_per_image",
    "train_gflops_vs_matmul_fp32",
    "train_gflops_vs_matmul_bf16",
    "train_gflops_reference_vs_matmul_fp32",
    "matmul_fp32_gflops",
    "matmul_bf16_gflops",
    "target_test_accuracy",
    "time_to_accuracy_s",
    "epochs_to_accuracy",
    "time_to_accuracy_same_model_s",
}
FASHION = {
    "fashion_calibration_seconds",
    "fashion_time_to_92.5%_s",
    "fashion_final_accuracy",
    "fashion_accuracy_at_reference_time",
}


def test_flop_count_is_analytic(tiny_mnist) -> None:
    """Max-pool CNN: conv 1->32 and 32->64 (3x3, same padding, 2x2 pools), dense 3136->128->10; the stride-2
    CNN computes its convolutions at half the resolution (a quarter of the conv FLOPs)."""
    work = from_split(tiny_mnist)
    pool = make_cnn(work, CNNConfig(downsample="maxpool"))
    expected = 2 * 1 * 32 * 9 * 28 * 28 + 2 * 32 * 64 * 9 * 14 * 14 + 2 * 3136 * 128 + 2 * 128 * 10
    assert forward_flops_per_image(pool, (1, 28, 28)) == expected
    stride = make_cnn(work, CNNConfig(downsample="stride"))
    expected = 2 * 1 * 32 * 9 * 14 * 14 + 2 * 32 * 64 * 9 * 7 * 7 + 2 * 3136 * 128 + 2 * 128 * 10
    assert forward_flops_per_image(stride, (1, 28, 28)) == expected


def test_matmul_rate_is_positive() -> None:
    assert measure_matmul(64, torch.float32, reps=1) > 0
    assert measure_matmul(64, torch.bfloat16, reps=1) > 0


def test_quick_run_structure(tiny_mnist, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("NEURALBENCH_PRECISION", raising=False)  # measure the path, as `make perf` does
    work = from_split(tiny_mnist, max_train=256, max_test=100)
    settings = PerfSettings.quick()
    settings.matmul_size, settings.rounds, settings.max_epochs = 128, 1, 2
    settings.fashion_max_epochs = 1
    results = run_benchmarks(work, settings, fashion=from_split(tiny_mnist, max_train=200, max_test=100))
    names = [r.name for r in results]
    steps = [r for r in results if r.name.startswith("step_ms[")]
    assert set(names) - {r.name for r in steps} == EXPECTED | FASHION and len(names) == len(set(names))
    # every candidate is reported, the baseline first, exactly one chosen
    assert steps[0].name == f"step_ms[fp32 NCHW {torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''}]"
    assert len(steps) >= 2 and sum("(chosen)" in r.note for r in steps) == 1
    for r in results:
        if r in steps and not math.isfinite(r.value):
            assert "skipped" in r.note or "failed" in r.note, r
            continue
        if r.name == "fashion_accuracy_at_reference_time" and not math.isfinite(r.value):
            continue  # no product epoch finished within the reference's time on this tiny subset
        assert math.isfinite(r.value) and r.value > 0, r
        assert r.unit
        for extra in (r.reference, r.ratio):
            assert extra is None or (math.isfinite(extra) and extra > 0), r
    path = write_json(results, tmp_path / "results.json")
    rows = json.loads(path.read_text())
    assert [row["name"] for row in rows] == names
    assert all(set(row) == {"name", "value", "unit", "reference", "ratio", "note"} for row in rows)
    assert all(name in format_table(results) for name in names)
    text = summary(results)
    assert "execution path:" in text
    assert "time to the reference's accuracy" in text or "NOT reached" in text


def test_optional_sections_are_called_and_isolated(monkeypatch) -> None:
    """perf/<name>.py sections: present ones run (rows prefixed), a missing one is skipped, a failing one reported."""
    import sys
    import types

    good = types.ModuleType("perf.fakegood")
    good.run_section = lambda quick, seed, log: [Result("speed", 2.0, "x", 1.0, 2.0)]
    bad = types.ModuleType("perf.fakebad")

    def boom(quick: bool, seed: int, log: object) -> list:
        raise RuntimeError("no data")

    bad.run_section = boom
    for mod in (good, bad):
        mod.__spec__ = importlib.machinery.ModuleSpec(mod.__name__, None)
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    logged: list[str] = []
    rows, failed = run_optional_sections(["fakegood", "fakebad", "absent"], True, 0, logged.append)
    assert [r.name for r in rows] == ["fakegood.speed"] and failed == ["fakebad"]
    assert any("absent" in m and "skipped" in m for m in logged)
