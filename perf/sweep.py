"""Sweep speed: a 4-cell x 3-seed MNIST-5k CNN sweep on local Ray (one trial per core, 1 torch thread each)
against the same 12 trainings one after another in one process (torch's default threads), same store kind.

    python -m perf.sweep [--quick] [--epochs N] [--max-samples N] [--out PATH]

Prints both wall times and their ratio (sequential / Ray; > 1 means Ray is faster) with the CPU name. The runs
go to a temporary run store, never the user's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perf.report import Result


def measure(epochs: int, max_samples: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Both ways on a temporary run store (never the user's): wall times, train-time sums, cell means, ratio."""
    import torch

    from bench.core.calibrate import cpu_name
    from bench.experiments.sweep import run_sweep
    from bench.experiments.trials import SweepSpec
    from bench.run.store import RunStore

    store = RunStore(root=tempfile.mkdtemp(prefix="nb-perf-sweep-"))
    grid = {"activation": ["relu", "gelu", "tanh", "sigmoid"]}
    common = {"seeds": (0, 1, 2), "train_overrides": {"epochs": epochs, "patience": epochs}, "max_samples": max_samples}
    results: dict[str, Any] = {}
    for backend in ("local", "ray"):
        spec = SweepSpec.build("image", "mnist-5k", "cnn", grid, **common)
        log(f"sweep {backend}: {spec.n_trials} trainings ...")
        t0 = time.perf_counter()
        summary = run_sweep(spec, backend=backend, store=store)
        wall = time.perf_counter() - t0
        train = sum(t["train_seconds"] for t in summary["trials"] if t["status"] == "finished")
        results[backend] = {"wall_seconds": round(wall, 2), "sum_train_seconds": round(train, 2),
                            "finished": summary["finished"], "status": summary["status"],
                            "cells": {c["label"]: c["mean"] for c in summary["cells"]}}  # fmt: skip
    ratio = results["local"]["wall_seconds"] / results["ray"]["wall_seconds"]
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads_sequential": torch.get_num_threads(),
            "epochs": epochs, "max_samples": max_samples, "trainings": 12, **results,
            "ratio_sequential_over_ray": round(ratio, 3)}  # fmt: skip


def run_section(quick: bool, seed: int, log: Callable[[str], None]) -> list[Result]:
    """The `make perf` rows: Ray wall time against the sequential one (ratio > 1: Ray is faster)."""
    epochs, max_samples = (2, 1000) if quick else (5, 0)
    out = measure(epochs, max_samples, log)
    what = f"4 cells x 3 seeds, MNIST-5k CNN, {epochs} epochs, {max_samples or 'all'} samples; {out['cpu']}"
    return [
        Result("sweep.wall_ray", out["ray"]["wall_seconds"], "s", out["local"]["wall_seconds"],
               out["ratio_sequential_over_ray"], f"local Ray vs the same 12 trainings in sequence ({what})"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run both ways, print the table, optionally write JSON; returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m perf.sweep", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2 epochs on 1,000 samples (rough numbers)")
    ap.add_argument("--epochs", type=int, default=5, help="fixed epochs per training (no early stop)")
    ap.add_argument("--max-samples", type=int, default=0, help="training samples (0 = all 4,000)")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)
    epochs, max_samples = (2, 1000) if args.quick else (args.epochs, args.max_samples)
    out = measure(epochs, max_samples, lambda m: print(m, file=sys.stderr, flush=True))
    results = {b: out[b] for b in ("local", "ray")}
    ratio = out["ratio_sequential_over_ray"]
    print(f"{'backend':10} {'wall s':>8} {'sum train s':>12} {'finished':>9}")
    for b in ("local", "ray"):
        r = results[b]
        print(f"{b:10} {r['wall_seconds']:8.1f} {r['sum_train_seconds']:12.1f} {r['finished']:9d}")
    print(f"sequential / Ray wall time: {ratio:.2f}x on {out['cpu']} ({out['cores']} cores); 4 cells x 3 seeds, "
          f"MNIST-5k CNN, {epochs} epochs, {max_samples or 'all'} training samples")
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
