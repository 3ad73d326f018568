"""The measurements: matmul peak, training throughput (interleaved rounds), time to a test accuracy.

Other processes may share the CPU, so each throughput round runs one product epoch and one reference epoch
back to back; the reported ratio is the median of these paired ratios, throughputs are medians over rounds.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

from perf.loops import ReferenceLoop, product_bf16_active, product_epoch, product_trace, reference_trace
from perf.report import Result
from perf.workload import Workload, clone, make_cnn, train_flops_per_image


@dataclass
class PerfSettings:
    """Sizes of one perf run; `full()` is `python -m perf`, `quick()` the ~20 s smoke run."""

    matmul_size: int = 2048
    matmul_reps: int = 5
    rounds: int = 5  # timed throughput rounds (after one untimed warm-up round)
    reference_epochs: int = 5  # the accuracy target is the reference's accuracy after this many epochs...
    margin: float = 0.005  # ...minus this margin
    max_epochs: int = 12  # product loop epochs (its one-cycle schedule); it stops as soon as the target is hit
    seed: int = 0

    @classmethod
    def full(cls) -> PerfSettings:
        return cls()

    @classmethod
    def quick(cls) -> PerfSettings:
        return cls(matmul_size=1024, matmul_reps=3, rounds=2, reference_epochs=2, margin=0.02, max_epochs=6)


@dataclass
class Throughput:
    """Images per second of both loops over the timed rounds."""

    product: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [p / r for p, r in zip(self.product, self.reference, strict=True)]


def measure_matmul(size: int = 2048, dtype: torch.dtype = torch.float32, reps: int = 5) -> float:
    """GFLOP/s of torch.matmul on two size x size matrices of `dtype` (median of `reps` after one warm-up)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(dtype)
    b = torch.randn(size, size, generator=gen).to(dtype)
    torch.matmul(a, b)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times) / 1e9


def measure_throughput(work: Workload, rounds: int = 5, seed: int = 0) -> Throughput:
    """Training images/s of the product loop and the reference loop on the same data and the same CNN.

    One untimed warm-up round (oneDNN primitive creation), then `rounds` rounds of one product epoch
    (a call of `bench.train.train`) followed by one reference epoch.
    """
    base = make_cnn(work, seed=seed)
    ours, ref = clone(base), clone(base)
    ref_loop = ReferenceLoop(ref, work.X_train, work.y_train, seed)
    n = len(work.y_train)
    out = Throughput()
    for r in range(rounds + 1):
        t_ours = product_epoch(ours, work.X_train, work.y_train, seed + r)
        t_ref = ref_loop.train_epoch()
        if r > 0:
            out.product.append(n / t_ours)
            out.reference.append(n / t_ref)
    return out


def run_benchmarks(work: Workload, settings: PerfSettings | None = None, log: bool = False) -> list[Result]:
    """Every measurement on `work`; returns the result rows (see perf.report.Result for the columns)."""
    s = settings or PerfSettings.full()

    def say(msg: str) -> None:
        if log:
            print(msg, flush=True)

    bf16 = product_bf16_active()
    say(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, product bf16 autocast: {'on' if bf16 else 'off'}; "
        f"data {work.name}: {len(work.y_train):,} train / {len(work.y_test):,} test ({work.note})"
    )
    say(f"matmul {s.matmul_size}x{s.matmul_size} ...")
    mm32 = [measure_matmul(s.matmul_size, torch.float32, s.matmul_reps)]
    mm16 = [measure_matmul(s.matmul_size, torch.bfloat16, s.matmul_reps)]

    say(f"throughput: {s.rounds} interleaved rounds of one epoch each ...")
    tp = measure_throughput(work, s.rounds, s.seed)
    mm32.append(measure_matmul(s.matmul_size, torch.float32, s.matmul_reps))
    mm16.append(measure_matmul(s.matmul_size, torch.bfloat16, s.matmul_reps))
    gf32, gf16 = statistics.median(mm32), statistics.median(mm16)
    ours_ips, ref_ips = statistics.median(tp.product), statistics.median(tp.reference)
    speedup = statistics.median(tp.ratios)

    base = make_cnn(work, seed=s.seed)
    flops = train_flops_per_image(base, work.in_shape)
    ours_gf, ref_gf = flops * ours_ips / 1e9, flops * ref_ips / 1e9

    say(f"time to accuracy: reference for {s.reference_epochs} epochs ...")
    ref_tr = reference_trace(
        clone(base), work.X_train, work.y_train, work.X_test, work.y_test, s.reference_epochs, s.seed
    )
    target = max(0.0, ref_tr.accuracy[-1] - s.margin)
    i_ref = ref_tr.first_reaching(target)
    assert i_ref is not None  # the target is below the reference's last accuracy
    t_ref = ref_tr.seconds[i_ref]
    say(f"  reference accuracies {[round(a, 4) for a in ref_tr.accuracy]} -> target {target:.4f}")
    say(f"time to accuracy: product loop, at most {s.max_epochs} epochs ...")
    ours_tr = product_trace(
        clone(base), work.X_train, work.y_train, work.X_test, work.y_test, target, s.max_epochs, s.seed
    )
    say(f"  product accuracies {[round(a, 4) for a in ours_tr.accuracy]}")
    i_ours = ours_tr.first_reaching(target)

    rows = [
        Result("train_images_per_s", ours_ips, "images/s", ref_ips, speedup),
        Result("train_images_per_s_reference", ref_ips, "images/s", None, None),
        Result("train_flops_per_image", flops / 1e6, "MFLOP/image", None, None),
        Result("train_gflops_vs_matmul_fp32", ours_gf, "GFLOP/s", gf32, ours_gf / gf32),
        Result("train_gflops_vs_matmul_bf16", ours_gf, "GFLOP/s", gf16, ours_gf / gf16),
        Result("train_gflops_reference_vs_matmul_fp32", ref_gf, "GFLOP/s", gf32, ref_gf / gf32),
        Result("matmul_fp32_gflops", gf32, "GFLOP/s", None, None),
        Result("matmul_bf16_gflops", gf16, "GFLOP/s", gf32, gf16 / gf32),
        Result("target_test_accuracy", target, "accuracy", ref_tr.accuracy[-1], None),
    ]
    if i_ours is None:
        spent = ours_tr.seconds[-1] if ours_tr.seconds else float("nan")
        rows += [
            Result("time_to_accuracy_s", spent, "s (target not reached)", t_ref, None),
            Result("epochs_to_accuracy", float(len(ours_tr.accuracy)), "epochs (target not reached)", i_ref + 1, None),
        ]
    else:
        t_ours = ours_tr.seconds[i_ours]
        rows += [
            Result("time_to_accuracy_s", t_ours, "s", t_ref, t_ref / t_ours),
            Result("epochs_to_accuracy", float(i_ours + 1), "epochs", i_ref + 1, (i_ref + 1) / (i_ours + 1)),
        ]
    return rows
