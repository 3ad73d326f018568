"""Headless CLI on the same code path as the dashboard.

python -m bench image --dataset mnist-5k --models cnn,mlp,logreg,svm,rf,knn --seed 0 --json report.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any

from bench import text_cli
from bench.runner import BenchmarkRequest, leaderboard_rows, run_benchmark
from bench.tasks import REGISTRY, TaskSpec
from bench.train import TrainingAborted, TrainingCancelled
from data.images import DatasetUnavailable
from models.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    """Argument parser: one sub-command per registered task."""
    parser = argparse.ArgumentParser(prog="python -m bench", description="NeuralBench: neural nets vs baselines")
    sub = parser.add_subparsers(dest="task", required=True)
    for name, spec in REGISTRY.items():
        p = sub.add_parser(name, help=spec.label)
        p.add_argument("--dataset", default=next(iter(spec.datasets)), choices=list(spec.datasets))
        p.add_argument(
            "--models", default=",".join(spec.default_models), help=f"comma list of {', '.join(spec.models)}"
        )
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--epochs", type=int, default=0, help="override the dataset's default epochs")
        p.add_argument("--max-samples", type=int, default=0, help="fast path: cap the training samples")
        p.add_argument("--repeats", type=int, default=1, help="seeds per seed-dependent model (spread over seeds)")
        p.add_argument(
            "--set", action="append", default=[], metavar="MODEL.FIELD=VALUE",
            help="override one config field, e.g. --set svm.max_train_samples=0 --set cnn.channels=32",
        )  # fmt: skip
        p.add_argument("--json", type=Path, help="write the report here")
        p.add_argument("--no-store", action="store_true", help="do not record the run in the MLflow store")
        text_cli.add_task_arguments(name, p)
    text_cli.add_predict_parser(sub)
    return parser


def parse_overrides(spec: TaskSpec, dataset: str, items: list[str]) -> dict[str, Any]:
    """`MODEL.FIELD=VALUE` strings -> validated config objects per model (unknown names are ConfigErrors)."""
    changes: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        model, dot, name = key.partition(".")
        if not sep or not dot or model not in spec.models:
            raise ConfigError(f"--set expects MODEL.FIELD=VALUE with MODEL in {', '.join(spec.models)}; got {item!r}")
        cls = spec.models[model].config_cls
        kinds = typing.get_type_hints(cls)
        if name not in kinds:
            raise ConfigError(f"{model} has no setting {name!r}")
        kind = kinds[name]
        try:
            if kind is bool:
                parsed: Any = value.lower() in ("1", "true", "yes", "on")
            else:
                parsed = kind(value) if kind in (int, float) else value
        except ValueError as exc:
            raise ConfigError(f"{model}.{name}: {value!r} is not a valid {kind.__name__}") from exc
        changes.setdefault(model, {})[name] = parsed
    return {m: dataclasses.replace(spec.models[m].default_config(dataset), **c) for m, c in changes.items()}


def main(argv: list[str] | None = None) -> int:
    """Run a benchmark from the command line; prints a leaderboard, returns an exit code."""
    from bench.runs import RunStore

    args = build_parser().parse_args(argv)
    if args.task == "predict":
        return text_cli.run_predict(args)
    spec = REGISTRY[args.task]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        tcfg = spec.datasets[args.dataset].default_train_config(args.seed)
        if args.epochs:
            tcfg = dataclasses.replace(tcfg, epochs=args.epochs)  # re-validated by __post_init__

        def on_event(kind: str, payload: dict) -> None:
            if kind == "model_start":
                print(
                    f"[{payload['index'] + 1}/{payload['total']}] {payload['label']} ...", file=sys.stderr, flush=True
                )

        configs = parse_overrides(spec, args.dataset, args.set)
        request = BenchmarkRequest(
            args.task, args.dataset, tuple(models), seed=args.seed, configs=configs, train_config=tcfg,
            max_samples=args.max_samples, repeats=args.repeats, data_options=text_cli.data_options(args),
        )  # fmt: skip
        report = run_benchmark(request, store=None if args.no_store else RunStore(), on_event=on_event)
    except (ConfigError, DatasetUnavailable, TrainingAborted, TrainingCancelled) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{report['task']} / {report['dataset']}  seed {report['seed']}  split {report['split']}")
    print(f"data: {report['data_source']}")
    header = (
        f"{'model':24} {'family':10} {'accuracy':>8} {'95% CI':>15} {'macro-F1':>8} {'train s':>8} {'ms/1k':>8} "
        f"{'params':>10} {'seeds: mean ± sd':>18}"
    )
    print(header)
    print("-" * len(header))
    for r in leaderboard_rows(report):
        ci = f"[{r['ci_low']:.3f},{r['ci_high']:.3f}]"
        print(
            f"{r['model']:24} {r['family']:10} {r['accuracy']:8.4f} {ci:>15} {r['macro_f1']:8.4f} "
            f"{r['train_s']:8.2f} {r['predict_ms_per_1k']:8.1f} {r['params']:10d} "
            + (f"{r['seed_mean']:.4f} ± {r['seed_sd']:.4f} (n={r['seeds']})" if r["seed_sd"] is not None else "")
        )
    for c in report["comparisons"]:
        print(c["verdict"])
    if report.get("run_id"):
        print(f"run id: {report['run_id']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"report written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
