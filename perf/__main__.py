"""Command line: `python -m perf [--quick] [--dataset mnist-5k|fashion-mnist] [--no-fashion] [--sections ...]`.

Runs the image-training benchmarks (calibrated path, throughput, time to accuracy, GFLOP/s, the Fashion-MNIST
default's time to 92.5%), then every optional section present: a module `perf/<name>.py` that defines

    def run_section(quick: bool, seed: int, log: Callable[[str], None]) -> list[perf.report.Result]

(perf/forecast.py, perf/sentiment.py, perf/predict.py, perf/sweep.py). A missing module is skipped; one that fails is
reported and the exit code becomes 1, the other sections still run.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from collections.abc import Callable

import torch

from bench.core.calibrate import cpu_name
from perf.measure import PerfSettings, measure_calibration, measure_compile, run_benchmarks
from perf.report import RESULTS_PATH, Result, format_table, summary, write_json
from perf.workload import Workload, load_fashion_full, load_workload

QUICK_TRAIN, QUICK_TEST = 1_500, 500
QUICK_FASHION_TRAIN, QUICK_FASHION_TEST = 2_000, 500
OPTIONAL_SECTIONS = ("forecast", "sentiment", "predict", "sweep")


def run_optional_sections(
    names: list[str], quick: bool, seed: int, log: Callable[[str], None]
) -> tuple[list[Result], list[str]]:
    """Rows of every optional section that exists (names prefixed "<section>."), and the failures."""
    rows: list[Result] = []
    failed: list[str] = []
    for name in names:
        if importlib.util.find_spec(f"perf.{name}") is None:
            log(f"section {name}: not present (perf/{name}.py), skipped")
            continue
        log(f"section {name} ...")
        try:
            module = importlib.import_module(f"perf.{name}")
            if not hasattr(module, "run_section"):
                log(f"section {name}: perf/{name}.py defines no run_section(); run it alone: python -m perf.{name}")
                continue
            section_rows = module.run_section(quick=quick, seed=seed, log=log)
        except Exception as exc:  # one broken section must not hide the others' numbers
            log(f"section {name} FAILED: {type(exc).__name__}: {exc}")
            failed.append(name)
            continue
        for r in section_rows:
            if not r.name.startswith(f"{name}."):
                r.name = f"{name}.{r.name}"
            rows.append(r)
    return rows, failed


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table and the key ratios, write the JSON results; returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m perf", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run on subsets (numbers are rough)")
    ap.add_argument("--dataset", default="mnist-5k", choices=("mnist-5k", "fashion-mnist"))
    ap.add_argument("--no-fashion", action="store_true", help="skip the Fashion-MNIST default section")
    ap.add_argument(
        "--sections", default=",".join(OPTIONAL_SECTIONS), help="optional sections to run (comma list; '' for none)"
    )
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (its compile time included)")
    ap.add_argument("--out", default=str(RESULTS_PATH), help="where to write the JSON results")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    print(f"CPU: {cpu_name()}", flush=True)
    settings = PerfSettings.quick() if args.quick else PerfSettings.full()
    settings.seed = args.seed
    limits = (QUICK_TRAIN, QUICK_TEST) if args.quick else (0, 0)
    work = load_workload(args.dataset, args.seed, *limits)
    fashion: Workload | None = None
    if not args.no_fashion:
        flimits = (QUICK_FASHION_TRAIN, QUICK_FASHION_TEST) if args.quick else (0, 0)
        fashion = load_fashion_full(args.seed, *flimits)
        if fashion is None:
            print("Fashion-MNIST is not installed here (make system-data): its section is skipped", flush=True)
    results = run_benchmarks(work, settings, log=True, fashion=fashion)
    if args.compile:
        print("torch.compile of the product CNN in the chosen path ...", flush=True)
        try:
            results += measure_compile(work, measure_calibration(work, seed=args.seed, refresh=False), seed=args.seed)
        except Exception as exc:  # no C++ compiler, unsupported platform...
            print(f"torch.compile could not run here: {type(exc).__name__}: {exc}", flush=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    names = [n.strip() for n in args.sections.split(",") if n.strip()]
    extra, failed = run_optional_sections(names, args.quick, args.seed, log)
    results += extra
    path = write_json(results, args.out)
    print()
    print(format_table(results))
    print()
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(summary(results))
    mode = " (quick mode: rough numbers)" if args.quick else ""
    print(f"\nwrote {path} in {time.perf_counter() - t0:.0f} s{mode}")
    if failed:
        print(f"FAILED sections: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
