"""Forecast benchmarks: `python -m perf.forecast [--seeds N] [--quick] [--out PATH]`.

1. The default backtest of all default models on one bundled series (S&P 500, test 2015-2018, one step ahead):
   wall seconds (target <= 30 s on 2 cores) and seconds per model, through the one runner (no run store).
2. The LSTM's MAE relative to naive (target <= 1.00) with its Diebold-Mariano p-value beside every baseline,
   over N seeds.
3. Ratios measured in this process: LSTM training steps on 1 vs the default torch threads, and ARIMA one-step
   forecasts by `res.apply(..., refit=False)` vs refitting at every step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perf.report import Result

RESULTS = Path(__file__).resolve().parent / "forecast_results.json"


def cpu_name() -> str:
    from bench.run.runner import environment

    return str(environment()["device"])


def default_backtest(seed: int = 0, max_samples: int = 0) -> tuple[dict[str, Any], float]:
    """The page's default backtest on the S&P 500: (report, wall seconds)."""
    from bench.core.contract import BenchmarkRequest
    from bench.run.runner import run_benchmark
    from bench.tasks import get_task

    task = get_task("forecast")
    request = BenchmarkRequest("forecast", "sp500", task.default_models, seed=seed, max_samples=max_samples)
    t0 = time.perf_counter()
    report = run_benchmark(request)
    return report, time.perf_counter() - t0


def lstm_seeds(seeds: list[int], max_samples: int = 0) -> list[dict[str, Any]]:
    """LSTM vs naive on S&P 500 2015-2018 for each seed: MAE ratio and DM p-value."""
    from bench.core.contract import BenchmarkRequest
    from bench.run.runner import run_benchmark
    from bench.tasks import get_task

    out = []
    for s in seeds:
        rep = run_benchmark(BenchmarkRequest("forecast", "sp500", ("lstm", "naive"), seed=s, max_samples=max_samples,
                                             setup=get_task("forecast").setup_cls(explain=False)))  # fmt: skip
        m = next(x for x in rep["models"] if x["name"] == "lstm")["metrics"]
        out.append({"seed": s, "mae": m["mae"], "mae_vs_naive": m["mae_vs_naive"], "dm_p_value": m["dm_p_value"]})
    return out


def thread_ratio(steps: int = 20) -> dict[str, float]:
    """Seconds per LSTM training step (batch 256, window 30) on 1 thread vs torch's default, same process."""
    from models.forecast import RNNConfig, RNNForecaster

    default = torch.get_num_threads()
    res = {}
    for threads in sorted({1, default}):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        m = RNNForecaster(RNNConfig())
        opt = torch.optim.AdamW(m.parameters(), 1e-3)
        x, y = torch.randn(256, 30), torch.randn(256)
        for i in range(steps + 3):
            if i == 3:
                t0 = time.perf_counter()
            loss = ((m(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        res[f"ms_per_step_{threads}_threads"] = (time.perf_counter() - t0) / steps * 1000
    torch.set_num_threads(default)
    res["speedup_1_thread"] = res[f"ms_per_step_{default}_threads"] / res["ms_per_step_1_threads"]
    return res


def arima_apply_ratio(steps: int = 10) -> dict[str, float]:
    """One-step ARIMA forecasts: refit at every step vs the fitted parameters applied (`refit=False`)."""
    import warnings

    from statsmodels.tsa.arima.model import ARIMA

    from data.prices import load_bundled
    from models.forecast import to_returns

    r = to_returns(load_bundled("sp500").close, "log_returns")[1:] * 100
    cut = 4024
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    res = ARIMA(r[:cut], order=(1, 0, 1), trend="c").fit(method="innovations_mle", cov_type="none")
    for k in range(steps):
        ARIMA(r[: cut + k], order=(1, 0, 1), trend="c").fit(method="innovations_mle", cov_type="none").forecast(1)
    refit = (time.perf_counter() - t0) / (steps + 1)
    t0 = time.perf_counter()
    for _ in range(3):
        res.apply(r[: cut + steps], refit=False)
    apply_all = (time.perf_counter() - t0) / 3
    per_step_apply = apply_all / steps  # one apply gives every one-step forecast of the block
    return {"refit_s_per_step": refit, "apply_s_per_block": apply_all, "speedup_apply": refit / per_step_apply}


def main(argv: list[str] | None = None) -> int:
    """Run the forecast benchmarks, print them and write JSON; returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m perf.forecast", description=__doc__)
    ap.add_argument("--seeds", type=int, default=3, help="LSTM seeds for the MAE-vs-naive target")
    ap.add_argument("--quick", action="store_true", help="the last 1,500 rows only (rough numbers)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    max_samples = 1500 if args.quick else 0
    print(f"CPU: {cpu_name()}, torch threads {torch.get_num_threads()}", flush=True)
    report, seconds = default_backtest(0, max_samples)
    print(f"\n1. default backtest of all default models on the S&P 500: {seconds:.1f} s wall (target <= 30 s)")
    for m in report["models"]:
        met = m["metrics"]
        print(f"   {m['label']:20} fit {m['train_seconds']:6.2f} s  MAE {met['mae']:8.3f}  "
              f"vs naive {met['mae_vs_naive']:.4f}  DM p {met['dm_p_value']:.3f}")  # fmt: skip
    print(f"   verdict: {get_headline(report)}")
    seeds = lstm_seeds(list(range(args.seeds)), max_samples)
    ratios = np.array([s["mae_vs_naive"] for s in seeds])
    print(f"\n2. LSTM MAE / naive over {len(seeds)} seeds: mean {ratios.mean():.4f}, min {ratios.min():.4f}, "
          f"max {ratios.max():.4f} (target <= 1.00)")  # fmt: skip
    for s in seeds:
        print(f"   seed {s['seed']}: MAE {s['mae']:.3f}, ratio {s['mae_vs_naive']:.4f}, DM p {s['dm_p_value']:.3f}")
    threads = thread_ratio()
    arima = arima_apply_ratio()
    print(f"\n3. LSTM step on 1 thread is {threads['speedup_1_thread']:.1f}x the default threads' speed "
          f"({threads}); ARIMA apply(refit=False) is {arima['speedup_apply']:.0f}x refitting per step")  # fmt: skip
    out = {"cpu": cpu_name(), "quick": args.quick, "default_backtest_seconds": seconds,
           "models": {m["name"]: {"train_seconds": m["train_seconds"], **{k: m["metrics"][k] for k in
                                  ("mae", "mae_vs_naive", "dm_p_value")}} for m in report["models"]},
           "headline": get_headline(report), "lstm_seeds": seeds, "threads": threads, "arima": arima}  # fmt: skip
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print(f"\nwrote {args.out}")
    return 0


def run_section(quick: bool, seed: int, log: Callable[[str], None]) -> list[Result]:
    """The `make perf` rows: the default backtest's wall time (target <= 30 s), LSTM MAE vs naive (one seed),
    the LSTM's 1-thread speed-up and ARIMA's apply-vs-refit speed-up."""
    max_samples = 1500 if quick else 0
    log("forecast: default backtest of the default models on the S&P 500 ...")
    report, seconds = default_backtest(seed, max_samples)
    lstm = next(m for m in report["models"] if m["name"] == "lstm")
    threads = thread_ratio()
    arima = arima_apply_ratio()
    what = "quick: last 1,500 rows" if quick else "whole series, test 2015-2018"
    return [
        Result("forecast.default_backtest", seconds, "s", 30.0, 30.0 / seconds,
               f"all default models, walk-forward ({what}); reference = the 30 s target"),
        Result("forecast.lstm_mae_vs_naive", lstm["metrics"]["mae_vs_naive"], "ratio", 1.0, None,
               f"seed {seed}; Diebold-Mariano p {lstm['metrics']['dm_p_value']:.2f}; below 1 beats the random walk"),
        Result("forecast.lstm_step_1_thread", threads["ms_per_step_1_threads"], "ms",
               threads[f"ms_per_step_{torch.get_num_threads()}_threads"], threads["speedup_1_thread"],
               f"LSTM training step, 1 thread vs {torch.get_num_threads()}"),
        Result("forecast.arima_apply", arima["apply_s_per_block"] / 10, "s/step", arima["refit_s_per_step"],
               arima["speedup_apply"], "ARIMA one-step forecasts: fitted parameters applied vs refit per step"),
    ]  # fmt: skip


def get_headline(report: dict[str, Any]) -> str:
    from bench.run.runner import headline

    return headline(report)["text"]


if __name__ == "__main__":
    sys.exit(main())
