"""Command line: `python -m perf [--quick] [--dataset mnist-5k|fashion-mnist] [--out PATH] [--threads N]`."""

from __future__ import annotations

import argparse
import sys
import time

import torch

from perf.measure import PerfSettings, run_benchmarks
from perf.report import RESULTS_PATH, format_table, summary, write_json
from perf.workload import load_workload

QUICK_TRAIN, QUICK_TEST = 1_500, 500


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table and the key ratios, write the JSON results; returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m perf", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="~20 s smoke run on a subset (numbers are rough)")
    ap.add_argument("--dataset", default="mnist-5k", choices=("mnist-5k", "fashion-mnist"))
    ap.add_argument("--out", default=str(RESULTS_PATH), help="where to write the JSON results")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    settings = PerfSettings.quick() if args.quick else PerfSettings.full()
    settings.seed = args.seed
    limits = (QUICK_TRAIN, QUICK_TEST) if args.quick else (0, 0)
    work = load_workload(args.dataset, args.seed, *limits)
    results = run_benchmarks(work, settings, log=True)
    path = write_json(results, args.out)
    print()
    print(format_table(results))
    print()
    print(summary(results))
    print(f"\nwrote {path} in {time.perf_counter() - t0:.0f} s{' (quick mode: rough numbers)' if args.quick else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
