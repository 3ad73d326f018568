"""Headless CLI on the same code path as the dashboard: the run is submitted as a job (bench/exec/jobs.py).

python -m bench image --dataset mnist-5k --models cnn,mlp,logreg,svm,rf,knn --seed 0 --json report.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
import typing
from pathlib import Path
from typing import Any

from bench.cli import experiments as cli_experiments
from bench.cli import predict_texts
from bench.core.contract import BenchmarkRequest, TaskSpec
from bench.tasks import REGISTRY
from models.config import ConfigError, TrainConfig
from models.redact import install_log_redaction, redact

if typing.TYPE_CHECKING:
    from bench.exec.jobs import Job


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
            help="override one setting of a model or of the neural training (train.FIELD), e.g. "
            "--set svm.max_train_samples=0 --set cnn.channels=32 --set train.lr=0.001",
        )  # fmt: skip
        p.add_argument("--json", type=Path, help="write the report here")
        p.add_argument("--no-store", action="store_true", help="do not record the run in the MLflow store")
        if spec.cli_arguments is not None:
            spec.cli_arguments(p)
    cli_experiments.add_parsers(sub)  # sweep, report, export
    return parser


def _parse_value(cls: type, owner: str, name: str, value: str) -> Any:
    """`value` converted to the type of field `name` of config class `cls` (ConfigError if it cannot be)."""
    kinds = typing.get_type_hints(cls)
    if name not in kinds:
        raise ConfigError(f"{owner} has no setting {name!r}")
    kind = kinds[name]
    try:
        if kind is bool:
            if value.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes", "on")
        return kind(value) if kind in (int, float) else value
    except ValueError as exc:
        raise ConfigError(f"{owner}.{name}: {value!r} is not a valid {kind.__name__}") from exc


def _split(item: str, owners: list[str]) -> tuple[str, str, str]:
    key, sep, value = item.partition("=")
    owner, dot, name = key.partition(".")
    if not sep or not dot or owner not in owners:
        raise ConfigError(f"--set expects OWNER.FIELD=VALUE with OWNER in {', '.join(owners)}; got {item!r}")
    return owner, name, value


def parse_overrides(spec: TaskSpec, dataset: str, items: list[str]) -> dict[str, Any]:
    """`MODEL.FIELD=VALUE` strings -> validated config objects per model (unknown names are ConfigErrors).

    `train.FIELD=VALUE` items are left to `train_overrides`.
    """
    changes: dict[str, dict[str, Any]] = {}
    for item in items:
        model, name, value = _split(item, [*spec.models, "train"])
        if model == "train":
            continue
        changes.setdefault(model, {})[name] = _parse_value(spec.models[model].config_cls, model, name, value)
    return {m: dataclasses.replace(spec.models[m].default_config(dataset), **c) for m, c in changes.items()}


def train_overrides(tcfg: TrainConfig, items: list[str]) -> TrainConfig:
    """Apply the `train.FIELD=VALUE` items to a TrainConfig (validated again by its __post_init__)."""
    changes = {}
    for item in items:
        if item.startswith("train."):
            _, name, value = _split(item, ["train"])
            changes[name] = _parse_value(TrainConfig, "train", name, value)
    return dataclasses.replace(tcfg, **changes) if changes else tcfg


def run_as_job(request: BenchmarkRequest, store: bool) -> Job:
    """Submit `request` to the job executor and print its progress until it ends; Ctrl-C cancels it."""
    from bench.exec.default import get_executor
    from bench.exec.jobs import QUEUED

    job = get_executor().submit(request, store=store)
    said_queued = False
    try:
        while True:
            for kind, payload in job.events(timeout=0.5):
                if kind == "model_start":
                    print(f"[{payload['index'] + 1}/{payload['total']}] {payload['label']} ...", file=sys.stderr,
                          flush=True)  # fmt: skip
            if job.done:
                return job
            if job.status == QUEUED and not said_queued:
                said_queued = True
                print(f"waiting for a free training slot (queue position {job.queue_position})", file=sys.stderr)
    finally:
        if not job.done:  # Ctrl-C (KeyboardInterrupt) or any other way out: stop the worker, close its run
            job.cancel()
            job.wait(10)


def main(argv: list[str] | None = None) -> int:
    """Run a benchmark from the command line as a job in a worker process; prints a leaderboard, returns an exit
    code (0 done, 2 bad settings or data, 1 failed, 130 interrupted).

    Nothing printed names a credential: log lines pass through models.redact, and an unexpected failure (an
    unreachable tracking server, whose MLflow message quotes the URI with its password) is one redacted line;
    NEURALBENCH_DEBUG=1 adds the traceback, redacted too."""
    install_log_redaction()
    try:
        return _main(argv)
    except Exception as exc:
        from bench.run.store import store_error

        print(f"error: {store_error(exc)}", file=sys.stderr)
        if os.environ.get("NEURALBENCH_DEBUG"):
            print(redact(traceback.format_exc()), file=sys.stderr)
        else:
            print("(set NEURALBENCH_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 1


def _main(argv: list[str] | None) -> int:
    from bench.exec.jobs import CANCELLED, DONE

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["predict"]:
        if "--csv" in argv:  # texts: python -m bench predict --run ID --csv FILE [--text-col C]
            parser = argparse.ArgumentParser(prog="python -m bench")
            predict_texts.add_predict_parser(parser.add_subparsers(dest="task", required=True))
            return predict_texts.run_predict(parser.parse_args(argv))
        from bench.run.predict import cli  # images: python -m bench predict --run ID | --pretrained NAME FILE...

        return cli(argv[1:])
    args = build_parser().parse_args(argv)
    if args.task in cli_experiments.COMMANDS:
        return cli_experiments.main(args)
    spec = REGISTRY[args.task]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        tcfg = spec.datasets[args.dataset].default_train_config(args.seed)
        if args.epochs:
            tcfg = dataclasses.replace(tcfg, epochs=args.epochs)  # re-validated by __post_init__
        configs = parse_overrides(spec, args.dataset, args.set)
        tcfg = train_overrides(tcfg, args.set)
        dataset, setup, data_options = args.dataset, None, {}
        if spec.cli_request is not None:
            dataset, setup, data_options = spec.cli_request(args)
        request = BenchmarkRequest(
            args.task, dataset, tuple(models), seed=args.seed, configs=configs, train_config=tcfg,
            max_samples=args.max_samples, repeats=args.repeats, setup=setup,
            data_options=data_options,
        )  # fmt: skip
    except (ConfigError, TypeError) as exc:
        print(f"error: {redact(exc)}", file=sys.stderr)
        return 2
    try:
        job = run_as_job(request, store=not args.no_store)
    except KeyboardInterrupt:
        print("stopped; the unfinished run was discarded", file=sys.stderr)
        return 130
    if job.status == CANCELLED:
        print("stopped; the unfinished run was discarded", file=sys.stderr)
        return 130
    if job.status != DONE:
        print(f"error: {redact(job.error)}", file=sys.stderr)
        return 2 if job.error_kind == "user" else 1
    report = job.result()
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"report written to {args.json}")
    return 0


def print_report(report: dict[str, Any]) -> None:
    """The leaderboard, the significance verdicts and the run id, as plain text."""
    print(f"{report['task']} / {report['dataset']}  seed {report['seed']}  split {report['split']}")
    print(f"data: {report['data_source']}")
    print(f"execution: {report.get('environment', {}).get('execution', '?')}")
    print(REGISTRY[report["task"]].evaluator.leaderboard_text(report))
    for c in report["comparisons"]:
        print(c["verdict"])
    if report.get("run_id"):
        print(f"run id: {report['run_id']}")


if __name__ == "__main__":
    sys.exit(main())
