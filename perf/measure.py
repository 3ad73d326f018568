"""The measurements: the calibrated execution path, matmul peak, training throughput (interleaved rounds),
time to a test accuracy on MNIST-5k, and the Fashion-MNIST default's time to 92.5%.

Other processes may share the CPU, so each throughput round runs one product epoch, one product epoch forced
to plain fp32 eager, and one reference epoch back to back; the reported ratios are medians of these paired
ratios, throughputs are medians over rounds.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from bench.core.calibrate import Candidate, Plan, resolve_plan
from bench.core.train import as_input_tensor, scale_inputs, select_device
from models.config import TrainConfig
from models.nets import CNNConfig
from perf.loops import (
    PRODUCT_BATCH,
    AccuracyTrace,
    ReferenceLoop,
    StopAtAccuracy,
    product_epoch,
    product_trace,
    reference_trace,
)
from perf.report import Result
from perf.workload import REFERENCE_CNN, Workload, clone, make_cnn, product_cnn_config, train_flops_per_image

FASHION_TARGET = 0.925


@dataclass
class PerfSettings:
    """Sizes of one perf run; `full()` is `python -m perf`, `quick()` the ~20 s smoke run."""

    matmul_size: int = 2048
    matmul_reps: int = 5
    rounds: int = 10  # timed throughput rounds (after one untimed warm-up round)
    reference_epochs: int = 5  # the accuracy target is the reference's accuracy after this many epochs...
    margin: float = 0.005  # ...minus this margin
    # product loop epochs (its one-cycle schedule, sized for time to accuracy: a 12-epoch plan keeps the learning
    # rate high for too long and reaches the target later); it stops as soon as the target is hit
    max_epochs: int = 3
    tta_seeds: int = 3  # time to accuracy is measured for seeds seed, seed+1, ... (medians reported)
    seed: int = 0
    fashion_reference_epochs: int = 3  # reference-loop epochs on Fashion-MNIST (the wall-clock budget compared)
    fashion_max_epochs: int = 0  # 0: the dataset default's epochs (quick runs cut this)

    @classmethod
    def full(cls) -> PerfSettings:
        return cls()

    @classmethod
    def quick(cls) -> PerfSettings:
        return cls(
            matmul_size=1024, matmul_reps=3, rounds=3, reference_epochs=2, margin=0.02, max_epochs=3, tta_seeds=1,
            fashion_reference_epochs=1, fashion_max_epochs=2,
        )  # fmt: skip


@dataclass
class Throughput:
    """Images per second of both loops over the timed rounds."""

    product: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    eager: list[float] = field(default_factory=list)  # the product loop forced to fp32 NCHW, default threads

    @property
    def ratios(self) -> list[float]:
        return [p / r for p, r in zip(self.product, self.reference, strict=True)]

    @property
    def eager_ratios(self) -> list[float]:
        """Chosen path / plain fp32 eager, paired per round (>= 1: the choice pays)."""
        return [p / e for p, e in zip(self.product, self.eager, strict=True)]


@dataclass
class TimeToAccuracy:
    """Per seed: the target (the reference loop's accuracy on the standard CNN after N epochs, minus a margin),
    and each loop's training seconds and epochs until its test accuracy first reached it (None where the product
    loop never did). `same_model_*`: the reference loop trained on the product's own CNN to the same target (the
    loops compared like for like; None where it did not reach it in its N epochs)."""

    reference_final: list[float] = field(default_factory=list)
    target: list[float] = field(default_factory=list)
    reference_seconds: list[float] = field(default_factory=list)
    reference_epochs: list[int] = field(default_factory=list)
    product_seconds: list[float | None] = field(default_factory=list)
    product_epochs: list[int | None] = field(default_factory=list)
    product_spent: list[float] = field(default_factory=list)  # seconds trained, reached or not
    same_model_seconds: list[float | None] = field(default_factory=list)
    same_model_epochs: list[int | None] = field(default_factory=list)

    @property
    def all_reached(self) -> bool:
        return all(t is not None for t in self.product_seconds)


def measure_matmul(size: int = 2048, dtype: torch.dtype = torch.float32, reps: int = 5, max_s: float = 0.5) -> float:
    """GFLOP/s of torch.matmul on two size x size matrices of `dtype` (median of `reps` after one warm-up).

    The size grows from 256 by doubling up to `size` while one multiplication stays within `max_s` (bf16
    without native support can run at <1 GFLOP/s: a 2048 product would take a minute); the rate is reported.
    """
    gen = torch.Generator().manual_seed(0)
    n = min(size, 256)
    while True:
        a = torch.randn(n, n, generator=gen).to(dtype)
        b = torch.randn(n, n, generator=gen).to(dtype)
        t0 = time.perf_counter()
        torch.matmul(a, b)  # warm-up, and the cost of this size
        if n >= size or (time.perf_counter() - t0) * 8 > max_s:  # doubling n costs 8x
            break
        n *= 2
    size = n
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times) / 1e9


def fp32_eager() -> Plan:
    """The baseline every path is judged against: fp32, NCHW, torch's default thread count."""
    return Plan(Candidate("fp32", False, torch.get_num_threads()), "fp32 eager baseline")


def measure_calibration(
    work: Workload, cfg: CNNConfig | None = None, batch: int = PRODUCT_BATCH, seed: int = 0, refresh: bool = True
) -> Plan:
    """A fresh calibration of the product CNN on this workload (cached afterwards, so the trainings use it);
    refresh=False: the cached one where there is one."""
    model = make_cnn(work, cfg, seed=seed).to(select_device())
    n = min(batch, len(work.y_train))
    device = select_device()
    xb, yb = as_input_tensor(work.X_train[:n], device), torch.as_tensor(work.y_train[:n], device=device)
    return resolve_plan(model, xb, yb, F.cross_entropy, "auto", prepare=scale_inputs, refresh=refresh)


def measure_throughput(work: Workload, rounds: int = 5, seed: int = 0) -> Throughput:
    """Training images/s of the product loop (its chosen path, and forced to fp32 eager) and the reference loop
    on the same data and the same CNN.

    One untimed warm-up round (oneDNN primitive creation), then `rounds` rounds of one product epoch
    (a call of `bench.core.train.train`), one fp32-eager product epoch and one reference epoch; the order of the two
    product epochs alternates between rounds.
    """
    base = make_cnn(work, seed=seed)
    ours, eager, ref = clone(base), clone(base), clone(base)
    ref_loop = ReferenceLoop(ref, work.X_train, work.y_train, seed)
    n = len(work.y_train)
    out = Throughput()
    for r in range(rounds + 1):
        if r % 2:
            t_eager = product_epoch(eager, work.X_train, work.y_train, seed + r, plan=fp32_eager())
            t_ours = product_epoch(ours, work.X_train, work.y_train, seed + r)
        else:
            t_ours = product_epoch(ours, work.X_train, work.y_train, seed + r)
            t_eager = product_epoch(eager, work.X_train, work.y_train, seed + r, plan=fp32_eager())
        t_ref = ref_loop.train_epoch()
        if r > 0:
            out.product.append(n / t_ours)
            out.eager.append(n / t_eager)
            out.reference.append(n / t_ref)
    return out


def measure_time_to_accuracy(
    work: Workload,
    reference_epochs: int = 5,
    margin: float = 0.005,
    max_epochs: int = 3,
    seeds: Sequence[int] = (0,),
    log: Callable[[str], None] = lambda _msg: None,
) -> TimeToAccuracy:
    """Wall-clock training time (test evaluations excluded) of each loop to first reach the reference's accuracy.

    Per seed: the reference loop trains the standard CNN (`REFERENCE_CNN`) for `reference_epochs` epochs; the
    target is its final test accuracy minus `margin`, and its time is that of the first epoch reaching the target.
    The product loop (one-cycle schedule planned for `max_epochs`) then trains the product's default CNN for this
    dataset until it reaches the target; and the reference loop trains the product's CNN too (same initial
    weights as the product's), so that the loops alone are also compared on one model.
    """
    out = TimeToAccuracy()
    product_cfg = product_cnn_config(work)
    for seed in seeds:
        ref = reference_trace(make_cnn(work, REFERENCE_CNN, seed), work.X_train, work.y_train, work.X_test,
                              work.y_test, reference_epochs, seed)  # fmt: skip
        target = max(0.0, ref.accuracy[-1] - margin)
        i_ref = ref.first_reaching(target)
        assert i_ref is not None  # the target is below the reference's last accuracy
        base = make_cnn(work, product_cfg, seed)
        same = reference_trace(clone(base), work.X_train, work.y_train, work.X_test, work.y_test, reference_epochs,
                               seed)  # fmt: skip
        i_same = same.first_reaching(target)
        out.same_model_seconds.append(None if i_same is None else same.seconds[i_same])
        out.same_model_epochs.append(None if i_same is None else i_same + 1)
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
        log(f"  seed {seed}: reference {_accs(ref.accuracy)} -> target {target:.4f}; product {_accs(ours.accuracy)} "
            f"at {_secs(ours.seconds)}; reference loop on the product's CNN {_accs(same.accuracy)} "
            f"at {_secs(same.seconds)}")  # fmt: skip
    return out


@dataclass
class FashionResult:
    """The product default (as the app trains it) and the reference loop on Fashion-MNIST, each with the test
    accuracy after every epoch and the training seconds up to it (evaluations excluded)."""

    product: AccuracyTrace
    reference: AccuracyTrace
    target: float
    product_epochs_planned: int
    plan: Plan

    def product_accuracy_at(self, seconds: float) -> float | None:
        """Test accuracy of the last product epoch finished within `seconds` of training (None: none was)."""
        done = [a for a, t in zip(self.product.accuracy, self.product.seconds, strict=True) if t <= seconds]
        return done[-1] if done else None


def fashion_defaults(seed: int = 0) -> tuple[TrainConfig, CNNConfig]:
    """The image task's Fashion-MNIST defaults for the CNN: what a user gets when pressing Train."""
    from bench.tasks import get_task

    task = get_task("image")
    return task.datasets["fashion-mnist"].default_train_config(seed), task.models["cnn"].default_config("fashion-mnist")


def measure_fashion(
    work: Workload,
    seed: int = 0,
    reference_epochs: int = 3,
    max_epochs: int = 0,
    target: float = FASHION_TARGET,
    log: Callable[[str], None] = lambda _msg: None,
) -> FashionResult:
    """The Fashion-MNIST default CNN trained as the app does (NeuralClassifier: validation split, early stopping,
    the dataset's TrainConfig), test accuracy after every epoch; then the reference loop on the same CNN
    (same initial weights are not possible here: the product carves a validation split and re-initialises)."""
    from bench.tasks.image.neural import NeuralClassifier

    tcfg, ccfg = fashion_defaults(seed)
    if max_epochs:
        tcfg = dataclasses.replace(tcfg, epochs=min(tcfg.epochs, max_epochs))
    plan = measure_calibration(work, ccfg, tcfg.batch_size, seed)
    log(f"  calibrated path for the Fashion default CNN: {plan.describe()}")
    stopper = StopAtAccuracy(work.X_test, work.y_test, 2.0)  # never stops: records every epoch
    est = NeuralClassifier("cnn", ccfg, tcfg)
    stopper.t0 = time.perf_counter()
    est.fit(work.X_train, work.y_train, callbacks=[stopper])
    log(f"  product default ({tcfg.epochs} epochs planned): {_accs(stopper.trace.accuracy)} "
        f"at {_secs(stopper.trace.seconds)}")  # fmt: skip
    ref = reference_trace(
        make_cnn(work, ccfg, seed=seed), work.X_train, work.y_train, work.X_test, work.y_test, reference_epochs, seed
    )
    log(f"  reference loop ({reference_epochs} epochs): {_accs(ref.accuracy)} at {_secs(ref.seconds)}")
    return FashionResult(stopper.trace, ref, target, tcfg.epochs, plan)


def _describe_cnn(cfg: CNNConfig) -> str:
    widths = "/".join(str(cfg.channels * 2**i) for i in range(cfg.conv_blocks))
    return f"{cfg.conv_blocks} {cfg.downsample} blocks {widths}, dense {cfg.hidden}"


def _secs(values: list[float]) -> str:
    return "[" + " ".join(f"{v:.1f}" for v in values) + "] s"


def _accs(values: list[float]) -> str:
    return "[" + " ".join(f"{v:.3f}" for v in values) + "]"


def calibration_rows(plan: Plan, prefix: str = "") -> list[Result]:
    """One row per candidate: its median step time, against the fp32-eager baseline (ratio > 1: faster)."""
    base = plan.step_ms.get(plan.baseline)
    rows = []
    for label, ms in plan.step_ms.items():
        chosen = " (chosen)" if label == plan.candidate.label else ""
        note = plan.notes.get(label, "") + chosen
        if ms is None:
            rows.append(Result(f"{prefix}step_ms[{label}]", float("nan"), "ms", base, None, note.strip()))
        else:
            rows.append(Result(f"{prefix}step_ms[{label}]", ms, "ms", base, base / ms if base else None, note.strip()))
    rows.append(Result(f"{prefix}calibration_seconds", plan.calibration_seconds, "s (one-time, cached)", None, None,
                       f"chosen: {plan.describe()}; load average {plan.loadavg} when measured"))  # fmt: skip
    return rows


def run_benchmarks(
    work: Workload, settings: PerfSettings | None = None, log: bool = False, fashion: Workload | None = None
) -> list[Result]:
    """Every measurement on `work` (and the Fashion-MNIST section on `fashion` when given); returns the rows
    (see perf.report.Result for the columns)."""
    s = settings or PerfSettings.full()
    med = statistics.median

    def say(msg: str) -> None:
        if log:
            print(msg, flush=True)

    say(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"data {work.name}: {len(work.y_train):,} train / {len(work.y_test):,} test ({work.note})"
    )
    say("calibration of the product CNN (fresh; every candidate's median step time) ...")
    plan = measure_calibration(work, batch=PRODUCT_BATCH, seed=s.seed)
    say(f"  measured in {plan.calibration_seconds:.1f} s at a 1-minute load average of {plan.loadavg}")
    for label, ms in plan.step_ms.items():
        mark = "  <- chosen" if label == plan.candidate.label else ""
        say(f"  {label:32} {'-' if ms is None else f'{ms:8.1f} ms'}  {plan.notes.get(label, '')}{mark}")
    rows = calibration_rows(plan)

    say(f"matmul {s.matmul_size}x{s.matmul_size} fp32 and bf16 ...")
    mm32 = [measure_matmul(s.matmul_size, torch.float32, s.matmul_reps)]
    mm16 = [measure_matmul(s.matmul_size, torch.bfloat16, s.matmul_reps)]
    product_cnn = _describe_cnn(product_cnn_config(work))
    say(f"throughput: {s.rounds} interleaved rounds of one epoch per loop (after a warm-up round), both loops on "
        f"the product CNN ({product_cnn}) ...")  # fmt: skip
    tp = measure_throughput(work, s.rounds, s.seed)
    mm32.append(measure_matmul(s.matmul_size, torch.float32, s.matmul_reps))
    mm16.append(measure_matmul(s.matmul_size, torch.bfloat16, s.matmul_reps))
    gf32, gf16 = med(mm32), med(mm16)
    ours_ips, ref_ips, eager_ips = med(tp.product), med(tp.reference), med(tp.eager)
    say(f"  images/s product {[round(v) for v in tp.product]}, fp32 eager {[round(v) for v in tp.eager]}, "
        f"reference {[round(v) for v in tp.reference]}")  # fmt: skip
    flops = train_flops_per_image(make_cnn(work, seed=s.seed), work.in_shape)
    ours_gf, ref_gf = flops * ours_ips / 1e9, flops * ref_ips / 1e9

    say(
        f"time to accuracy: reference {s.reference_epochs} epochs, product at most {s.max_epochs}, "
        f"{s.tta_seeds} seed(s); the target from the reference loop on the standard CNN ({_describe_cnn(REFERENCE_CNN)}) ..."
    )
    tta = measure_time_to_accuracy(
        work, s.reference_epochs, s.margin, s.max_epochs, range(s.seed, s.seed + s.tta_seeds), say
    )
    rows += [
        Result("chosen_path_vs_fp32_eager", ours_ips, "images/s", eager_ips, med(tp.eager_ratios), plan.describe()),
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
            Result("time_to_accuracy_s", med(t_ours), "s", t_ref, med(ratios),
                   f"product CNN ({product_cnn}) in the product loop vs the reference "
                   f"loop on the standard CNN ({_describe_cnn(REFERENCE_CNN)}), median of {len(ratios)} seeds"),
            Result("epochs_to_accuracy", float(med(e_ours)), "epochs", e_ref, med(e_ratios)),
        ]  # fmt: skip
    else:
        missed = sum(t is None for t in tta.product_seconds)
        note = f"(target missed, {missed}/{len(tta.product_seconds)} seeds)"
        rows += [
            Result("time_to_accuracy_s", med(tta.product_spent), f"s {note}", t_ref, None),
            Result("epochs_to_accuracy", float(s.max_epochs), f"epochs {note}", e_ref, None),
        ]
    same = [t for t in tta.same_model_seconds if t is not None]
    same_ratio = None
    if tta.all_reached and len(same) == len(tta.same_model_seconds):
        same_ratio = med([r / o for r, o in zip(same, tta.product_seconds, strict=True) if o is not None])
    rows.append(Result(
        "time_to_accuracy_same_model_s", rows[-2].value, rows[-2].unit, med(same) if same else None, same_ratio,
        "the loops alone: the reference loop trains the product's CNN too (same initial weights)"
        + ("" if len(same) == len(tta.same_model_seconds) else
           f"; it missed the target in {s.reference_epochs} epochs on {len(tta.same_model_seconds) - len(same)} seed(s)"),
    ))  # fmt: skip
    if fashion is not None:
        say(f"Fashion-MNIST default CNN: {len(fashion.y_train):,} train / {len(fashion.y_test):,} test "
            f"({fashion.note}); target {FASHION_TARGET:.1%} ...")  # fmt: skip
        rows += fashion_rows(measure_fashion(
            fashion, s.seed, s.fashion_reference_epochs, s.fashion_max_epochs, FASHION_TARGET, say
        ))  # fmt: skip
    return rows


def fashion_rows(fr: FashionResult) -> list[Result]:
    """Time to the target, final accuracy, and accuracy of both loops at the reference loop's wall-clock time."""
    rows = calibration_rows(fr.plan, "fashion_")[-1:]  # its calibration cost and choice
    i = fr.product.first_reaching(fr.target)
    i_ref = fr.reference.first_reaching(fr.target)
    ref_t = fr.reference.seconds[i_ref] if i_ref is not None else None
    pct = f"{fr.target:.1%}"
    if i is not None:
        t = fr.product.seconds[i]
        rows.append(Result(f"fashion_time_to_{pct}_s", t, "s", ref_t, ref_t / t if ref_t else None,
                           f"epoch {i + 1} of {fr.product_epochs_planned}"
                           + ("" if ref_t else "; the reference loop did not reach it")))  # fmt: skip
    else:
        spent = fr.product.seconds[-1] if fr.product.seconds else float("nan")
        rows.append(Result(f"fashion_time_to_{pct}_s", spent, "s (target NOT reached)", ref_t, None,
                           f"{len(fr.product.accuracy)} epochs"))  # fmt: skip
    final = fr.product.accuracy[-1] if fr.product.accuracy else float("nan")
    t_all = fr.product.seconds[-1] if fr.product.seconds else float("nan")
    rows.append(Result("fashion_final_accuracy", final, "accuracy", fr.reference.accuracy[-1], None,
                       f"product {len(fr.product.accuracy)} epochs in {t_all:.1f} s; reference "
                       f"{len(fr.reference.accuracy)} epochs in {fr.reference.seconds[-1]:.1f} s"))  # fmt: skip
    t_ref = fr.reference.seconds[-1]
    at = fr.product_accuracy_at(t_ref)
    ref_acc = fr.reference.accuracy[-1]
    rows.append(Result("fashion_accuracy_at_reference_time", float("nan") if at is None else at, "accuracy",
                       ref_acc, None if at is None else at / ref_acc,
                       f"within the reference loop's {t_ref:.1f} s of training"))  # fmt: skip
    return rows


def measure_compile(work: Workload, plan: Plan, steps: int = 20, seed: int = 0) -> list[Result]:
    """torch.compile on the product CNN: its one-time compile cost, its steady step time against eager in the
    same path, and how many steps it would take to pay back (opt-in: `python -m perf --compile`)."""
    from bench.core.calibrate import num_threads, training_step_factory

    n = min(PRODUCT_BATCH, len(work.y_train))
    device = select_device()
    xb, yb = as_input_tensor(work.X_train[:n], device), torch.as_tensor(work.y_train[:n], device=device)
    eager_model = make_cnn(work, seed=seed).to(device)
    compiled_model = torch.compile(make_cnn(work, seed=seed).to(device))
    make = training_step_factory(eager_model, xb, yb, F.cross_entropy, scale_inputs)
    make_c = training_step_factory(compiled_model, xb, yb, F.cross_entropy, scale_inputs)
    with num_threads(plan.candidate.threads):
        eager_step = make(plan.candidate)
        eager_step()
        t0 = time.perf_counter()
        compiled_step = make_c(plan.candidate)
        compiled_step()  # compiles forward and backward
        compile_s = time.perf_counter() - t0
        te, tc = [], []
        for _ in range(steps):
            t1 = time.perf_counter()
            eager_step()
            t2 = time.perf_counter()
            compiled_step()
            t3 = time.perf_counter()
            te.append(t2 - t1)
            tc.append(t3 - t2)
    e, c = statistics.median(te), statistics.median(tc)
    payback = compile_s / (e - c) if e > c else float("inf")
    note = f"pays back after {payback:,.0f} steps" if payback != float("inf") else "never pays back (not faster)"
    return [
        Result("compile_step_ms", c * 1000, "ms", e * 1000, e / c, f"compiled vs eager, {plan.candidate.label}"),
        Result("compile_seconds", compile_s, "s (one-time)", None, None, note),
    ]
