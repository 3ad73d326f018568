"""The measurements: matmul peak, training throughput (interleaved rounds), time to a test accuracy.

Other processes may share the CPU, so each throughput round runs one product epoch and one reference epoch
back to back; the reported ratio is the median of these paired ratios, throughputs are medians over rounds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
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
    rounds: int = 10  # timed throughput rounds (after one untimed warm-up round)
    reference_epochs: int = 5  # the accuracy target is the reference's accuracy after this many epochs...
    margin: float = 0.005  # ...minus this margin
    max_epochs: int = 12  # product loop epochs (its one-cycle schedule); it stops as soon as the target is hit
    tta_seeds: int = 3  # time to accuracy is measured for seeds seed, seed+1, ... (medians reported)
    seed: int = 0

    @classmethod
    def full(cls) -> PerfSettings:
        return cls()

    @classmethod
    def quick(cls) -> PerfSettings:
        return cls(
            matmul_size=1024, matmul_reps=3, rounds=3, reference_epochs=2, margin=0.02, max_epochs=6, tta_seeds=1
        )


@dataclass
class Throughput:
    """Images per second of both loops over the timed rounds."""

    product: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [p / r for p, r in zip(self.product, self.reference, strict=True)]


@dataclass
class TimeToAccuracy:
    """Per seed: the target (reference accuracy after N epochs minus a margin), and each loop's training seconds
    and epochs until its test accuracy first reached it (None where the product loop never did)."""

    reference_final: list[float] = field(default_factory=list)
    target: list[float] = field(default_factory=list)
    reference_seconds: list[float] = field(default_factory=list)
    reference_epochs: list[int] = field(default_factory=list)
    product_seconds: list[float | None] = field(default_factory=list)
    product_epochs: list[int | None] = field(default_factory=list)
    product_spent: list[float] = field(default_factory=list)  # seconds trained, reached or not

    @property
    def all_reached(self) -> bool:
        return all(t is not None for t in self.product_seconds)


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


def measure_time_to_accuracy(
    work: Workload,
    reference_epochs: int = 5,
    margin: float = 0.005,
    max_epochs: int = 12,
    seeds: Sequence[int] = (0,),
    log: Callable[[str], None] = lambda _msg: None,
) -> TimeToAccuracy:
    """Wall-clock training time (test evaluations excluded) of each loop to first reach the reference's accuracy.

    Per seed both loops start from the same initial weights. The reference trains `reference_epochs` epochs; the
    target is its final test accuracy minus `margin`, and its time is that of the first epoch reaching the target.
    The product loop (one-cycle schedule planned for `max_epochs`) then trains until it reaches the target.
    """
    out = TimeToAccuracy()
    for seed in seeds:
        base = make_cnn(work, seed=seed)
        ref = reference_trace(clone(base), work.X_train, work.y_train, work.X_test, work.y_test, reference_epochs, seed)
        target = max(0.0, ref.accuracy[-1] - margin)
        i_ref = ref.first_reaching(target)
        assert i_ref is not None  # the target is below the reference's last accuracy
        ours = product_trace(
            clone(base), work.X_train, work.y_train, work.X_test, work.y_test, target, max_epochs, seed
        )
        i_ours = ours.first_reaching(target)
        out.reference_final.append(ref.accuracy[-1])
        out.target.append(target)
        out.reference_seconds.append(ref.seconds[i_ref])
        out.reference_epochs.append(i_ref + 1)
        out.product_seconds.append(None if i_ours is None else ours.seconds[i_ours])
        out.product_epochs.append(None if i_ours is None else i_ours + 1)
        out.product_spent.append(ours.seconds[-1] if ours.seconds else float("nan"))
        log(f"  seed {seed}: reference {_accs(ref.accuracy)} -> target {target:.4f}; product {_accs(ours.accuracy)}")
    return out


def _accs(values: list[float]) -> str:
    return "[" + " ".join(f"{v:.3f}" for v in values) + "]"


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
    say(f"matmul {s.matmul_size}x{s.matmul_size} fp32 and bf16 ...")
    mm32 = [measure_matmul(s.matmul_size, torch.float32, s.matmul_reps)]
    mm16 = [measure_matmul(s.matmul_size, torch.bfloat16, s.matmul_reps)]
    say(f"throughput: {s.rounds} interleaved rounds of one epoch per loop (after a warm-up round) ...")
    tp = measure_throughput(work, s.rounds, s.seed)
    mm32.append(measure_matmul(s.matmul_size, torch.float32, s.matmul_reps))
    mm16.append(measure_matmul(s.matmul_size, torch.bfloat16, s.matmul_reps))
    gf32, gf16 = statistics.median(mm32), statistics.median(mm16)
    ours_ips, ref_ips = statistics.median(tp.product), statistics.median(tp.reference)
    say(f"  images/s product {[round(v) for v in tp.product]}, reference {[round(v) for v in tp.reference]}")
    flops = train_flops_per_image(make_cnn(work, seed=s.seed), work.in_shape)
    ours_gf, ref_gf = flops * ours_ips / 1e9, flops * ref_ips / 1e9

    say(
        f"time to accuracy: reference {s.reference_epochs} epochs, product at most {s.max_epochs}, "
        f"{s.tta_seeds} seed(s) ..."
    )
    tta = measure_time_to_accuracy(
        work, s.reference_epochs, s.margin, s.max_epochs, range(s.seed, s.seed + s.tta_seeds), say
    )
    med = statistics.median
    rows = [
        Result("train_images_per_s", ours_ips, "images/s", ref_ips, med(tp.ratios)),
        Result("train_images_per_s_reference", ref_ips, "images/s", None, None),
        Result("train_flops_per_image", flops / 1e6, "MFLOP/image", None, None),
        Result("train_gflops_vs_matmul_fp32", ours_gf, "GFLOP/s", gf32, ours_gf / gf32),
        Result("train_gflops_vs_matmul_bf16", ours_gf, "GFLOP/s", gf16, ours_gf / gf16),
        Result("train_gflops_reference_vs_matmul_fp32", ref_gf, "GFLOP/s", gf32, ref_gf / gf32),
        Result("matmul_fp32_gflops", gf32, "GFLOP/s", None, None),
        Result("matmul_bf16_gflops", gf16, "GFLOP/s", gf32, gf16 / gf32),
        Result("target_test_accuracy", med(tta.target), "accuracy", med(tta.reference_final), None),
    ]
    t_ref, e_ref = med(tta.reference_seconds), float(med(tta.reference_epochs))
    if tta.all_reached:
        t_ours = [t for t in tta.product_seconds if t is not None]
        e_ours = [e for e in tta.product_epochs if e is not None]
        ratios = [r / o for r, o in zip(tta.reference_seconds, t_ours, strict=True)]
        e_ratios = [r / o for r, o in zip(tta.reference_epochs, e_ours, strict=True)]
        rows += [
            Result("time_to_accuracy_s", med(t_ours), "s", t_ref, med(ratios)),
            Result("epochs_to_accuracy", float(med(e_ours)), "epochs", e_ref, med(e_ratios)),
        ]
    else:
        missed = sum(t is None for t in tta.product_seconds)
        note = f"(target missed, {missed}/{len(tta.product_seconds)} seeds)"
        rows += [
            Result("time_to_accuracy_s", med(tta.product_spent), f"s {note}", t_ref, None),
            Result("epochs_to_accuracy", float(s.max_epochs), f"epochs {note}", e_ref, None),
        ]
    return rows
