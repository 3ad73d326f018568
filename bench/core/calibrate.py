"""Choose how a model trains on this machine by measuring it, never by CPU flags.

A short calibration times a few training steps of the *actual* model on a real batch in each candidate
execution path (fp32 or bf16 autocast, channels-last or NCHW memory layout, thread count), interleaved
round by round so that a noisy neighbour slows all candidates alike, and takes the fastest median.
The baseline is plain fp32 eager (NCHW, torch's default thread count): another path is chosen only if it
measures at least `MIN_GAIN` faster, so the choice is never slower than the baseline by more than noise.

Choices are cached per machine (CPU model, core count, torch version, device) and per workload (model
class, parameter count, input shape and dtype, batch size) in `<run folder>/calibration.json`; a new
machine, a new torch or a new cache scheme version means a new calibration. The setting
`TrainConfig.precision` ("fp32" / "bf16") or the environment variable NEURALBENCH_PRECISION overrides it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16")
CACHE_VERSION = 1
CACHE_NAME = "calibration.json"
MIN_GAIN = 0.03  # a path must be >= 3% faster than fp32 eager to be chosen (below that it is noise)
PRUNE_FACTOR = 2.5  # a candidate this much slower than the best after a round is dropped (no more steps)
BF16_GATE = 0.5  # bf16 candidates are skipped where a bf16 matmul runs below this share of the fp32 rate
MAX_AGE_DAYS = 30  # older cached choices are measured again (drivers, BIOS, neighbours change)
ROOT = Path(__file__).resolve().parent.parent

Timer = Callable[[], float]
_RECENT: dict[str, Plan] = {}  # workload key -> the plan last resolved in this process (for reports)


@dataclass(frozen=True)
class Candidate:
    """One execution path: autocast precision, memory layout of 4-D inputs, and torch's intra-op threads."""

    precision: str = "fp32"
    channels_last: bool = False
    threads: int = 1

    @property
    def label(self) -> str:
        """Short human name, e.g. 'bf16 channels-last 2 threads'."""
        layout = "channels-last" if self.channels_last else "NCHW"
        return f"{self.precision} {layout} {self.threads} thread{'s' if self.threads != 1 else ''}"


@dataclass
class Plan:
    """The path a training uses, where the choice came from, and what every candidate measured.

    source: "calibrated" (measured just now), "cached" (measured earlier on this machine), "setting"
    (TrainConfig.precision or NEURALBENCH_PRECISION), "default" (nothing to measure, e.g. a GPU-less
    plain path). step_ms: candidate label -> median step time in ms (None: it failed or was dropped).
    """

    candidate: Candidate
    source: str = "default"
    step_ms: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    baseline: str = ""
    calibration_seconds: float = 0.0
    loadavg: float | None = None  # 1-minute load average when measured: busy neighbours favour fewer threads

    @property
    def autocast(self) -> bool:
        return self.candidate.precision == "bf16"

    @property
    def speedup(self) -> float | None:
        """Baseline step time / chosen step time, where both were measured."""
        base, chosen = self.step_ms.get(self.baseline), self.step_ms.get(self.candidate.label)
        return base / chosen if base and chosen else None

    def describe(self) -> str:
        """One line for reports, e.g. 'fp32 channels-last 1 thread (calibrated; 1.31x fp32 eager)'."""
        extra = f"; {self.speedup:.2f}x fp32 eager" if self.speedup else ""
        return f"{self.candidate.label} ({self.source}{extra})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": asdict(self.candidate),
            "source": self.source,
            "step_ms": dict(self.step_ms),
            "notes": dict(self.notes),
            "baseline": self.baseline,
            "calibration_seconds": round(self.calibration_seconds, 3),
            "loadavg": self.loadavg,
            "label": self.candidate.label,
            "speedup": None if self.speedup is None else round(self.speedup, 3),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        c = d["candidate"]
        cand = Candidate(str(c["precision"]), bool(c["channels_last"]), int(c["threads"]))
        if cand.precision not in ("fp32", "bf16") or cand.threads < 1:
            raise ValueError(f"bad cached candidate {c!r}")
        return cls(
            cand,
            str(d.get("source", "cached")),
            {str(k): (None if v is None else float(v)) for k, v in dict(d.get("step_ms", {})).items()},
            {str(k): str(v) for k, v in dict(d.get("notes", {})).items()},
            str(d.get("baseline", "")),
            float(d.get("calibration_seconds", 0.0)),
            None if d.get("loadavg") is None else float(d["loadavg"]),
        )


# --------------------------------------------------------------------------- the machine and the cache


def cpu_name() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key(device: torch.device | None = None) -> dict[str, Any]:
    """What a calibration depends on besides the workload: CPU model, core count, torch version, device."""
    device = device or torch.device("cpu")
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"cpu": cpu_name(), "cores": os.cpu_count() or 1, "torch": torch.__version__, "device": dev}


def _key_string(d: dict[str, Any]) -> str:
    return "|".join(f"{k}={d[k]}" for k in sorted(d))


def workload_key(model: nn.Module, x: torch.Tensor, batch_size: int) -> str:
    """Model class, trainable parameter count, per-sample input shape and dtype, batch size."""
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    shape = "x".join(str(s) for s in x.shape[1:])
    return f"{type(model).__name__}|params={n_params}|in={shape}|{str(x.dtype).removeprefix('torch.')}|batch={batch_size}"


def cache_path() -> Path:
    """`calibration.json` in the run folder (NEURALBENCH_RUNS, default ./runs), read at call time."""
    from data.paths import state_root

    return state_root() / CACHE_NAME


def _read_cache(path: Path) -> dict[str, Any]:
    """The cache file, or an empty one when missing, unreadable, corrupt or of another scheme version."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"version": CACHE_VERSION, "machines": {}}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("machines"), dict):
        return {"version": CACHE_VERSION, "machines": {}}
    return data


def load_cached(machine: dict[str, Any], workload: str, path: Path | None = None) -> Plan | None:
    """The cached plan for this machine and workload, or None (a damaged entry counts as missing)."""
    entry = _read_cache(path or cache_path())["machines"].get(_key_string(machine), {})
    found = entry.get("workloads", {}).get(workload) if isinstance(entry, dict) else None
    if not isinstance(found, dict):
        return None
    try:
        plan = Plan.from_dict(found)
        age = datetime.now(UTC) - datetime.fromisoformat(str(found["measured_at"]))
    except (KeyError, TypeError, ValueError):
        return None
    if age.days >= MAX_AGE_DAYS:
        return None
    plan.source = "cached"
    return plan


def save_cached(machine: dict[str, Any], workload: str, plan: Plan, path: Path | None = None) -> None:
    """Store `plan` for this machine and workload (atomic replace; a read-only run folder is tolerated)."""
    path = path or cache_path()
    data = _read_cache(path)
    entry = data["machines"].setdefault(_key_string(machine), {"machine": machine, "workloads": {}})
    entry.setdefault("workloads", {})[workload] = {**plan.to_dict(), "measured_at": datetime.now(UTC).isoformat()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)


def cached_plans(path: Path | None = None, device: torch.device | None = None) -> dict[str, dict[str, Any]]:
    """Every cached plan of *this* machine: workload key -> plan dict (for the environment panel)."""
    entry = _read_cache(path or cache_path())["machines"].get(_key_string(machine_key(device)), {})
    workloads = entry.get("workloads", {}) if isinstance(entry, dict) else {}
    return {k: v for k, v in workloads.items() if isinstance(v, dict)}


def clear_cache(path: Path | None = None) -> None:
    """Forget every calibration (the next training measures again)."""
    with contextlib.suppress(FileNotFoundError):
        (path or cache_path()).unlink()


# --------------------------------------------------------------------------- measuring and choosing


def candidates_for(device: torch.device, image_input: bool, threads: int | None = None) -> list[Candidate]:
    """The candidate paths, baseline (fp32 NCHW at torch's thread count) first.

    Threads: the current count and half of it (on 2 cores: 2 and 1); on a GPU the thread count is not varied.
    """
    threads = threads or torch.get_num_threads()
    thread_options = [threads] if device.type == "cuda" else sorted({threads, max(1, threads // 2)}, reverse=True)
    layouts = [False, True] if image_input else [False]
    out = [Candidate(p, cl, t) for p in ("fp32", "bf16") for cl in layouts for t in thread_options]
    return out  # out[0] is fp32, NCHW, `threads`


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to `n` (restored afterwards; None: unchanged)."""
    before = torch.get_num_threads()
    if n and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def measure(
    candidates: Sequence[Candidate],
    make_step: Callable[[Candidate], Callable[[], None]],
    *,
    rounds: int = 5,
    warmup: int = 1,
    budget_s: float = 4.0,
    timer: Timer = time.perf_counter,
) -> tuple[dict[Candidate, list[float]], dict[Candidate, str]]:
    """Time one step of every candidate per round, interleaved; returns (seconds per candidate, failures).

    `make_step(c)` builds a callable doing one training step in path `c`; building or running it may raise:
    that candidate is then skipped with the error as its note. After `warmup` untimed steps, `rounds` timed
    rounds run; a candidate slower than PRUNE_FACTOR x the best median so far is dropped, and once
    `budget_s` is spent (after at least two timed rounds) measuring stops. The first candidate is the
    baseline: it is never dropped.
    """
    times: dict[Candidate, list[float]] = {}
    notes: dict[Candidate, str] = {}
    steps: dict[Candidate, Callable[[], None]] = {}
    baseline = candidates[0] if candidates else None
    start = timer()
    for c in candidates:
        try:
            step = make_step(c)
            with num_threads(c.threads):
                for _ in range(warmup):
                    step()
        except Exception as exc:  # a path this machine cannot run is skipped, not fatal
            notes[c] = f"failed: {type(exc).__name__}: {exc}"[:300]
            continue
        steps[c], times[c] = step, []
    for r in range(rounds):
        for c in list(steps):
            try:
                with num_threads(c.threads):
                    t0 = timer()
                    steps[c]()
                    times[c].append(timer() - t0)
            except Exception as exc:
                notes[c] = f"failed: {type(exc).__name__}: {exc}"[:300]
                del steps[c], times[c]
        if not steps:
            break
        best = min(statistics.median(times[c]) for c in steps)
        for c in list(steps):
            # the baseline always runs every round: it is what every other path is judged against
            if c != baseline and statistics.median(times[c]) > PRUNE_FACTOR * best:
                notes[c] = f"dropped after {r + 1} round(s): more than {PRUNE_FACTOR:g}x the fastest"
                del steps[c]
        if r >= 1 and timer() - start > budget_s:
            break
    return times, notes


def choose(times: dict[Candidate, list[float]], baseline: Candidate, min_gain: float = MIN_GAIN) -> Candidate:
    """The fastest candidate by median step time, unless it beats `baseline` by less than `min_gain`.

    If the baseline itself failed, the fastest candidate that ran; if none ran, the baseline anyway.
    """
    medians = {c: statistics.median(v) for c, v in times.items() if v}
    if not medians:
        return baseline
    fastest = min(medians, key=lambda c: medians[c])
    if baseline in medians and medians[fastest] > medians[baseline] * (1 - min_gain):
        return baseline
    return fastest


def calibrate(
    candidates: Sequence[Candidate],
    make_step: Callable[[Candidate], Callable[[], None]],
    *,
    timer: Timer = time.perf_counter,
    rounds: int = 5,
    budget_s: float = 4.0,
    skip: dict[Candidate, str] | None = None,
) -> Plan:
    """Measure `candidates` (the first is the baseline) and return the chosen Plan with every measurement.

    `skip` names candidates not to run at all, with the reason (e.g. a failed bf16 gate).
    """
    t0 = time.perf_counter()
    baseline = candidates[0]
    skip = skip or {}
    times, notes = measure(
        [c for c in candidates if c not in skip], make_step, rounds=rounds, budget_s=budget_s, timer=timer
    )
    notes.update(skip)
    chosen = choose(times, baseline)
    # a dropped candidate still shows what it measured; one that failed shows None
    step_ms = {c.label: statistics.median(times[c]) * 1000 if times.get(c) else None for c in candidates}
    load = None
    with contextlib.suppress(OSError, AttributeError):
        load = round(os.getloadavg()[0], 2)
    return Plan(
        chosen,
        "calibrated",
        step_ms,
        {c.label: n for c, n in notes.items()},
        baseline.label,
        time.perf_counter() - t0,
        load,
    )


def training_step_factory(
    model: nn.Module,
    xb: torch.Tensor,
    yb: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    prepare: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
) -> Callable[[Candidate], Callable[[], None]]:
    """make_step for `measure`: one forward/backward/AdamW step on a private copy of `model` in path `c`.

    The real model's weights, and the global random state, are never touched.
    """
    device_type = xb.device.type

    def make_step(c: Candidate) -> Callable[[], None]:
        m = copy.deepcopy(model)
        m.train()
        x = xb
        if c.channels_last and x.dim() == 4:
            m = m.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        elif x.dim() == 4:
            x = x.contiguous()
        params = [p for p in m.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4)
        autocast = c.precision == "bf16"

        def step() -> None:
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
                out = m(prepare(x))
            loss = loss_fn(out.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if device_type == "cuda":
                torch.cuda.synchronize()

        return step

    return make_step


def bf16_matmul_ratio(size: int = 256, reps: int = 5, timer: Timer = time.perf_counter) -> float:
    """bf16 / fp32 speed of a size x size CPU matmul, measured interleaved (median of `reps`).

    A cheap gate before timing whole bf16 training steps: on CPUs without native bf16 arithmetic a bf16
    step can be 10-50x slower, and one such step would cost more than the whole calibration.
    """
    gen = torch.Generator().manual_seed(0)
    a32, b32 = torch.randn(size, size, generator=gen), torch.randn(size, size, generator=gen)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    t32, t16 = [], []
    for i in range(reps + 1):
        t0 = timer()
        torch.matmul(a32, b32)
        t1 = timer()
        torch.matmul(a16, b16)
        t2 = timer()
        if i:  # the first round is a warm-up
            t32.append(t1 - t0)
            t16.append(t2 - t1)
    return statistics.median(t32) / max(statistics.median(t16), 1e-12)


def setting_override(precision: str) -> str:
    """The precision forced by the setting, else by NEURALBENCH_PRECISION, else "auto"."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    env = os.environ.get("NEURALBENCH_PRECISION", "auto").strip().lower() or "auto"
    return env if env in PRECISIONS else "auto"


def resolve_plan(
    model: nn.Module,
    xb: torch.Tensor,
    yb: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    precision: str = "auto",
    *,
    prepare: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
    timer: Timer = time.perf_counter,
    path: Path | None = None,
    refresh: bool = False,
) -> Plan:
    """The execution plan for training `model` on batches like `xb`: setting, cache, or a fresh calibration
    (`refresh` measures again even when cached, and caches the new result).

    With a forced precision ("fp32"/"bf16") nothing is measured: that precision, channels-last for image
    batches (the layout oneDNN and cuDNN convolutions prefer), torch's thread count.
    """
    device = xb.device
    image = xb.dim() == 4
    work = workload_key(model, xb, len(xb))
    forced = setting_override(precision)
    if forced != "auto":
        _RECENT[work] = Plan(Candidate(forced, image, torch.get_num_threads()), "setting")
        return _RECENT[work]
    machine = machine_key(device)
    cached = None if refresh else load_cached(machine, work, path)
    if cached is not None:
        _RECENT[work] = cached
        return cached
    cands = candidates_for(device, image)
    skip: dict[Candidate, str] = {}
    if device.type == "cpu":
        ratio = bf16_matmul_ratio()
        if ratio < BF16_GATE:
            note = f"skipped: a bf16 matmul ran at {ratio:.2f}x the fp32 rate here (gate {BF16_GATE:g}x)"
            skip = {c: note for c in cands if c.precision == "bf16"}
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        plan = calibrate(cands, training_step_factory(model, xb, yb, loss_fn, prepare), timer=timer, skip=skip)
    save_cached(machine, work, plan, path)
    _RECENT[work] = plan
    return plan


def execution_summary() -> str:
    """One line for the environment panel and reports: the override, or the paths used in this process,
    or this machine's cached choices."""
    env = os.environ.get("NEURALBENCH_PRECISION", "").strip().lower()
    head = f"{env} forced by NEURALBENCH_PRECISION" if env in ("fp32", "bf16") else "auto: measured per model"
    plans = dict(_RECENT)
    if not plans:
        with contextlib.suppress(Exception):
            plans = {k: Plan.from_dict(v) for k, v in cached_plans().items()}
    if not plans:
        return f"{head} (nothing measured yet on this machine)"
    parts = [f"{k.split('|')[0]} batch {k.rsplit('=', 1)[-1]}: {p.describe()}" for k, p in list(plans.items())[-4:]]
    return f"{head}; " + "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.core.calibrate [--clear]`: show (or forget) this machine's measured execution paths."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.core.calibrate", description=main.__doc__)
    ap.add_argument("--clear", action="store_true", help="forget every cached calibration (measure again on next use)")
    args = ap.parse_args(argv)
    path = cache_path()
    if args.clear:
        clear_cache(path)
        print(f"cleared {path}")
        return 0
    print(f"machine: {_key_string(machine_key())}\ncache: {path}")
    print(execution_summary())
    for work, d in cached_plans(path).items():
        print(f"\n{work}  (measured {d.get('measured_at', '?')}, load average {d.get('loadavg', '?')})")
        for label, ms in dict(d.get("step_ms", {})).items():
            mark = "  <- chosen" if label == d.get("label") else ""
            note = dict(d.get("notes", {})).get(label, "")
            print(f"  {label:30} {'-' if ms is None else f'{ms:9.2f} ms'}  {note}{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
