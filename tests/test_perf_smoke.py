"""`make perf` smoke test: the benchmark functions run in quick mode on a tiny subset and return well-formed
rows. Timing is never asserted (speed depends on the machine and on whatever else runs on it)."""

from __future__ import annotations

import json
import math

import torch

from perf import PerfSettings, format_table, forward_flops_per_image, measure_matmul, run_benchmarks, write_json
from perf.workload import from_split, make_cnn

EXPECTED = {
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
}


def test_flop_count_is_analytic(tiny_mnist) -> None:
    """Default CNN: conv 1->32 and 32->64 (3x3, same padding, 2x2 pools), dense 3136->128->10."""
    model = make_cnn(from_split(tiny_mnist))
    expected = 2 * 1 * 32 * 9 * 28 * 28 + 2 * 32 * 64 * 9 * 14 * 14 + 2 * 3136 * 128 + 2 * 128 * 10
    assert forward_flops_per_image(model, (1, 28, 28)) == expected


def test_matmul_rate_is_positive() -> None:
    assert measure_matmul(64, torch.float32, reps=1) > 0
    assert measure_matmul(64, torch.bfloat16, reps=1) > 0


def test_quick_run_structure(tiny_mnist, tmp_path) -> None:
    work = from_split(tiny_mnist, max_train=256, max_test=100)
    settings = PerfSettings.quick()
    settings.matmul_size, settings.rounds, settings.max_epochs = 128, 1, 2
    results = run_benchmarks(work, settings)
    names = [r.name for r in results]
    assert set(names) == EXPECTED and len(names) == len(set(names))
    for r in results:
        assert math.isfinite(r.value) and r.value > 0, r
        assert r.unit
        for extra in (r.reference, r.ratio):
            assert extra is None or (math.isfinite(extra) and extra > 0), r
    path = write_json(results, tmp_path / "results.json")
    rows = json.loads(path.read_text())
    assert [row["name"] for row in rows] == names
    assert all(set(row) == {"name", "value", "unit", "reference", "ratio"} for row in rows)
    assert all(name in format_table(results) for name in names)
