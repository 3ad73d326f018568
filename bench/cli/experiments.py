"""CLI sub-commands `sweep`, `report` and `export` (wired into `python -m bench` by bench/cli/main.py).

python -m bench sweep --task image --dataset mnist-5k --model cnn --grid activation=relu,sigmoid,tanh --seeds 3 --json sweep.json
python -m bench report --out report.html
python -m bench export --run RUN_ID --model cnn --onnx DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from models.config import ConfigError
from models.redact import redact

COMMANDS = ("sweep", "report", "export")


def add_parsers(sub: Any) -> None:
    """Add the three sub-commands to `python -m bench`'s sub-parsers."""
    from bench.experiments.claims import PROFILES, SECTIONS

    p = sub.add_parser("sweep", help="a grid of settings x seeds on Ray Tune; every trial a stored run")
    p.add_argument("--task", dest="sweep_task", default="image")
    p.add_argument("--dataset", default="")
    p.add_argument("--model", required=True)
    p.add_argument("--grid", action="append", default=[], metavar="FACTOR=V1,V2",
                   help="repeatable; factors: activation, lr, layers, width, size (1k, 10k, full), epochs, or any "
                   "config field of the model / of training")  # fmt: skip
    p.add_argument("--seeds", type=int, default=3, help="seeds per cell (0, 1, ...)")
    p.add_argument("--baselines", default="", help="comma list of models run beside the net in every trial")
    p.add_argument("--epochs", type=int, default=0)
    p.add_argument("--max-samples", type=int, default=0)
    p.add_argument("--backend", choices=("ray", "local"), default="ray")
    p.add_argument("--json", type=Path)
    p.add_argument("--html", type=Path, help="also write the sweep as a self-contained HTML report")

    p = sub.add_parser("report", help="the claims report from the latest stored runs, running what is missing")
    p.add_argument("--out", type=Path, default=Path("report.html"))
    p.add_argument("--profile", choices=list(PROFILES), default="standard")
    p.add_argument("--backend", choices=("ray", "local"), default="ray")
    p.add_argument("--only", default="", help=f"comma list of sections: {', '.join(SECTIONS)}")
    p.add_argument("--no-run", action="store_true", help="only report what is stored; run nothing")

    p = sub.add_parser("export", help="export a stored model: safetensors + JSON config, ONNX (checked)")
    p.add_argument("--run", required=True)
    p.add_argument("--model", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--onnx", type=Path, metavar="DIR", help="write config + weights + model.onnx into DIR/MODEL")
    g.add_argument("--out", type=Path, metavar="DIR", help="write config + weights only")


def main(args: argparse.Namespace) -> int:
    """Run one of the sub-commands; returns the exit code (2 with a message on bad input)."""
    from bench.core.train import TrainingAborted
    from bench.run.export import ExportError
    from bench.run.store import RunNotFound
    from data.images import DatasetUnavailable

    try:
        return {"sweep": sweep, "report": report, "export": export}[args.task](args)
    except (ConfigError, DatasetUnavailable, TrainingAborted, RunNotFound, ExportError, KeyError) as exc:
        print(f"error: {redact(exc)}", file=sys.stderr)
        return 2


def sweep(args: argparse.Namespace) -> int:
    from bench.experiments.sweep import run_sweep
    from bench.experiments.trials import SweepSpec, parse_grid
    from bench.run.store import RunStore
    from bench.tasks import get_task

    task = get_task(args.sweep_task)
    dataset = args.dataset or next(iter(task.datasets))
    grid = parse_grid(args.sweep_task, args.model, args.grid)
    train = {"epochs": args.epochs} if args.epochs else {}
    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    spec = SweepSpec.build(args.sweep_task, dataset, args.model, grid, seeds=tuple(range(args.seeds)), baselines=baselines,
                           train_overrides=train, max_samples=args.max_samples)  # fmt: skip
    print(f"sweep {spec.sweep_id}: {len(spec.cells)} cells x {len(spec.seeds)} seeds on {args.backend}", file=sys.stderr)

    def progress(p: dict[str, Any]) -> None:
        rec = p.get("record")
        if rec is not None:
            what = f"{rec['metric']:.4f}" if rec["status"] == "finished" else rec.get("error", "failed")
            print(f"[{p['done']}/{p['total']}] {rec['label']} seed {rec['seed']}: {what}", file=sys.stderr, flush=True)

    summary = run_sweep(spec, backend=args.backend, store=RunStore(), on_progress=progress)
    metric = summary["metric"]
    print(f"{'setting':40} {'n':>3} {metric + ' mean':>14} {'sd':>8} {'95% CI':>19} {'train s':>8}")
    for c in summary["cells"]:
        if c["mean"] is None:
            print(f"{c['label']:40} {0:3d} {'no finished trial':>14}")
            continue
        ci = f"[{c['ci_low']:.4f},{c['ci_high']:.4f}]" if c["ci_low"] is not None else ""
        sd = f"{c['sd']:.4f}" if c["sd"] is not None else ""
        print(f"{c['label']:40} {c['n']:3d} {c['mean']:14.4f} {sd:>8} {ci:>19} {c['train_seconds_mean']:8.2f}")
    for t in summary["tests"]:
        p = "n/a" if t["p_value"] is None else f"{t['p_value']:.3g}"
        print(f"best {t['best']} vs {t['other']}: {t['difference']:+.4f}, {t['test']}, p = {p}")
    print(f"{summary['finished']} of {summary['n_trials']} trials finished in {summary['wall_seconds']:.1f} s "
          f"({summary['status']}); sweep id {summary['sweep_id']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, default=str))
        print(f"written to {args.json}")
    if args.html:
        from bench.experiments.report import sweep_html

        args.html.write_text(sweep_html(summary), encoding="utf-8")
        print(f"written to {args.html}")
    return 0


def report(args: argparse.Namespace) -> int:
    import time

    from bench.experiments.claims import build_report, write_report
    from bench.run.store import RunStore

    t0 = time.perf_counter()
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    rep = build_report(RunStore(), profile=args.profile, backend=args.backend, run_missing=not args.no_run,
                       only=only, log=log)  # fmt: skip
    paths = write_report(rep, args.out)
    for s in rep["sections"]:
        print(f"== {s['title']} ({s['status']})")
        for r in s["rows"]:
            print(f"   {r['item']:55} article {r['article']:>8}  measured {r['measured_text']:<32} {r['verdict']}")
    print(f"written: {', '.join(map(str, paths))} in {time.perf_counter() - t0:.0f} s")
    return 0


def export(args: argparse.Namespace) -> int:
    from bench.run.export import export_model
    from bench.run.store import RunStore

    info = export_model(RunStore(), args.run, args.model, args.onnx or args.out, onnx=args.onnx is not None)
    print(f"exported {args.model} of run {args.run}: {', '.join(info['files'])}")
    check = info["onnx"]
    if check and "passed" in check:
        print(f"ONNX check ({check['runtime']}): {check['samples']} test inputs, max |difference| "
              f"{check['max_abs_diff']:.2e} (tolerance {check['tolerance']:g}), argmax agreement "
              f"{check['argmax_agreement']:.2%}: {'passed' if check['passed'] else 'FAILED'}")  # fmt: skip
    elif check:
        print(check["skipped"])
    return 0
