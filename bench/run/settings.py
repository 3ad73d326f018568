"""Which settings a run used, compared with the dataset's defaults: "default settings, full data", "fast path",
or the list of what was changed. Pure functions over a report (or the flat MLflow params of a run)."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.tasks import get_task
from models.config import setting_label

# Not "settings" in this sense: the seed is shown on its own, the fast path is reported as such.
NOT_SETTINGS = ("seed", "max_samples")
USES_TRAIN_CONFIG = ("neural", "pretrained")


def flat_settings(report: dict[str, Any]) -> dict[str, str]:
    """A report's settings as flat `train.FIELD` / `MODEL.FIELD` -> text, the way the run store logs params."""
    out = {f"train.{k}": str(v) for k, v in (report.get("train_config") or {}).items()}
    out.update({f"setup.{k}": str(v) for k, v in (report.get("setup") or {}).items()})
    for m in report.get("models", []):
        out.update({f"{m['name']}.{k}": str(v) for k, v in (m.get("config") or {}).items()})
    return out


def _text(value: Any) -> str:
    return str(value)


def settings_diff(task: str, dataset: str, models: list[str], settings: dict[str, str]) -> list[dict[str, str]]:
    """Every setting of the run that differs from the dataset's default, as rows
    {"model", "setting", "value", "default"} with human labels. Settings no longer known are skipped."""
    try:
        spec = get_task(task)
    except KeyError:
        return []
    ds = spec.datasets.get(dataset)
    rows: list[dict[str, str]] = []
    known = [m for m in models if m in spec.models]
    if ds is not None and any(spec.models[m].family in USES_TRAIN_CONFIG for m in known):
        try:
            default_train = ds.default_train_config()
        except Exception:  # a task without a TrainConfig: nothing to compare
            default_train = None
        if default_train is not None and dataclasses.is_dataclass(default_train):
            cls = type(default_train)
            for k, d in dataclasses.asdict(default_train).items():
                key = f"train.{k}"
                if k in NOT_SETTINGS or key not in settings or settings[key] == _text(d):
                    continue
                rows.append({"model": "Training (neural models)", "setting": setting_label(cls, k),
                             "value": settings[key], "default": _text(d)})  # fmt: skip
    setup_cls = getattr(spec, "setup_cls", None)
    if setup_cls is not None:
        try:
            default_setup = dataclasses.asdict(setup_cls())
        except Exception:  # a set-up without defaults: nothing to compare
            default_setup = {}
        for k, d in default_setup.items():
            key = f"setup.{k}"
            if key in settings and settings[key] != _text(d):
                rows.append({"model": "Set-up", "setting": setting_label(setup_cls, k), "value": settings[key],
                             "default": _text(d)})  # fmt: skip
    for m in known:
        mspec = spec.models[m]
        try:
            default = mspec.default_config(dataset)
        except Exception:  # a model whose defaults cannot be built here: nothing to compare
            continue
        for k, d in dataclasses.asdict(default).items():
            key = f"{m}.{k}"
            if key in settings and settings[key] != _text(d):
                rows.append({"model": mspec.label, "setting": setting_label(mspec.config_cls, k),
                             "value": settings[key], "default": _text(d)})  # fmt: skip
    return rows


def _int(text: str | None) -> int:
    try:
        return int(float(text or 0))
    except ValueError:
        return 0


def run_kind(task: str, dataset: str, models: list[str], settings: dict[str, str]) -> dict[str, Any]:
    """What kind of run this was: {"full_data", "default", "max_samples", "diffs", "summary"}.

    `summary` is one short phrase for labels: "default settings, full data", "fast path (300 training
    samples)", "custom settings (2 changed)", or both of the last two.
    """
    diffs = settings_diff(task, dataset, models, settings)
    max_samples = _int(settings.get("train.max_samples"))
    parts = []
    if max_samples:
        parts.append(f"fast path ({max_samples:,} training samples)")
    if diffs:
        parts.append(f"custom settings ({len(diffs)} changed)")
    return {
        "full_data": not max_samples,
        "default": not diffs,
        "max_samples": max_samples,
        "diffs": diffs,
        "summary": ", ".join(parts) if parts else "default settings, full data",
    }


def report_kind(report: dict[str, Any]) -> dict[str, Any]:
    """run_kind of a full report."""
    models = [m["name"] for m in report.get("models", [])]
    return run_kind(report.get("task", ""), report.get("dataset", ""), models, flat_settings(report))


def describe_settings(kind: dict[str, Any]) -> str:
    """The settings of a run in one sentence: the default, or what differs from it."""
    if kind["default"] and kind["full_data"]:
        return "Default settings for this dataset, full training split."
    parts = []
    if not kind["full_data"]:
        parts.append(f"Fast path: at most {kind['max_samples']:,} training samples.")
    if kind["diffs"]:
        changed = "; ".join(
            f"{d['model']}: {d['setting']} {d['value']} (default {d['default']})" for d in kind["diffs"]
        )
        parts.append(f"Changed from the defaults: {changed}.")
    else:
        parts.append("Every other setting at its default.")
    return " ".join(parts)
