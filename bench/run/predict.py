"""Predictions on the user's own images: from a stored run (every model of it) or from the ImageNet-pretrained
EfficientNet-Lite0. One code path for the page's Predict tab and `python -m bench predict`.

Uploads are decoded and preprocessed by data/uploads.py exactly as the run's training data were made
(MNIST-style centring for digits, box centring for Fashion-MNIST, fitted RGB for custom folders). A
prediction that is far from the training data (low confidence, a colour photo sent to a grayscale model,
an empty drawing) carries a warning instead of passing for a confident answer; the confidence threshold
is calibrated on the run's own test split (the confidence below which a chosen share of test images fall).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data.uploads import DecodedImage, InputSpec, Preprocessed, UploadError, decode_image, input_spec, preprocess

COLOUR_LIMIT = 0.12  # mean chroma above this is a colour photo (grey drawings and scans stay below 0.03)
FLAG_RATE = 0.05  # share of the test split the confidence threshold flags
CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class LoadedRun:
    """A stored run's models, ready to predict uploads."""

    run_id: str
    report: dict[str, Any]
    models: dict[str, Any]
    spec: InputSpec

    @property
    def class_names(self) -> list[str]:
        return list(self.report["class_names"])

    @property
    def labels(self) -> dict[str, str]:
        return {m["name"]: m["label"] for m in self.report["models"] if m["name"] in self.models}

    def ranked(self) -> list[str]:
        """Model names, highest test accuracy first."""
        rows = sorted((m for m in self.report["models"] if m["name"] in self.models),
                      key=lambda m: -m["metrics"].get("accuracy", 0.0))  # fmt: skip
        return [m["name"] for m in rows]

    @property
    def best(self) -> str:
        """The model with the highest test accuracy (the default one to trust)."""
        return self.ranked()[0]

    @property
    def best_with_probabilities(self) -> str | None:
        """The most accurate model that gives probabilities (the one whose confidence the warning uses)."""
        return next((n for n in self.ranked() if has_probabilities(self.models[n])), None)


def has_probabilities(est: Any) -> bool:
    """Whether the model gives class probabilities (not an SVM without Platt scaling, not a bare classifier)."""
    if hasattr(est, "predict_proba"):
        return True
    inner = getattr(est, "estimator_", None)
    return inner is not None and hasattr(inner, "predict_proba") and getattr(inner, "probability", True) is not False


def data_options(report: dict[str, Any]) -> dict[str, Any]:
    """The dataset options a run was trained with (custom folders: path and image size)."""
    opts = report.get("data_options") or {}
    return dict(opts) if isinstance(opts, dict) else {}


def run_input_spec(report: dict[str, Any]) -> InputSpec:
    """How uploads are turned into inputs for this run's models."""
    opts = data_options(report)
    return input_spec(report["dataset"], int(opts.get("image_size", 64)))


def load_run(run_id: str, store: Any = None, models: list[str] | None = None) -> LoadedRun:
    """Load the report and the chosen (default: every) model of a stored run."""
    if store is None:
        from bench.run.store import RunStore

        store = RunStore()
    report = store.load_report(run_id)
    if report.get("task", "image") != "image":
        raise UploadError(f"run {run_id[:8]} is a {report.get('task')} run, not an image run")
    names = [m["name"] for m in report["models"]]
    chosen = names if not models else [m for m in models if m in names]
    if models and len(chosen) != len(models):
        missing = sorted(set(models) - set(names))
        raise UploadError(f"run {run_id[:8]} has no model {', '.join(missing)}; it has {', '.join(names)}")
    loaded = {name: store.load_model(run_id, name) for name in chosen}
    return LoadedRun(run_id, report, loaded, run_input_spec(report))


def probabilities(est: Any, X: np.ndarray, n_classes: int) -> np.ndarray | None:
    """Class probabilities (N, K) when the model has them (not the SVM without Platt scaling)."""
    if hasattr(est, "predict_proba"):
        return np.asarray(est.predict_proba(X), dtype=np.float64)
    inner = getattr(est, "estimator_", None)
    if inner is not None and hasattr(inner, "predict_proba"):
        try:
            p = inner.predict_proba(X.reshape(len(X), -1))
        except AttributeError:  # e.g. SVC(probability=False) exposes the method but refuses to run it
            return None
        out = np.zeros((len(X), n_classes))
        out[:, np.asarray(inner.classes_, dtype=int)] = p
        return out
    return None


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of each row of probabilities."""
    q = np.clip(p, 1e-12, 1.0)
    return -(q * np.log2(q)).sum(-1)


@dataclass
class Threshold:
    """A confidence threshold calibrated on the test split, with what it means there."""

    model: str
    value: float
    flag_rate: float  # share of test images below the threshold
    accuracy_flagged: float | None  # accuracy of the model on those images
    accuracy_kept: float | None
    n_test: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def calibrate_threshold(proba: np.ndarray, y_true: np.ndarray, model: str, rate: float = FLAG_RATE) -> Threshold:
    """The top-probability threshold under which `rate` of the test images fall, with accuracy on each side."""
    top = proba.max(1)
    correct = proba.argmax(1) == y_true
    value = float(np.quantile(top, rate))
    flagged = top < value
    return Threshold(
        model,
        value,
        float(flagged.mean()),
        float(correct[flagged].mean()) if flagged.any() else None,
        float(correct[~flagged].mean()) if (~flagged).any() else None,
        len(y_true),
        f"the confidence below which {rate:.0%} of the {len(y_true):,} test images fall",
    )


def test_split(report: dict[str, Any]) -> Any:
    """Rebuild the run's split (same seed, fast path and dataset options) to calibrate on its test part."""
    from bench.tasks import get_task

    ds = get_task(report["task"]).datasets[report["dataset"]]
    max_samples = int(report.get("train_config", {}).get("max_samples", 0))
    return ds.loader(seed=int(report["seed"]), max_samples=max_samples, **data_options(report))


def calibrate_run(run: LoadedRun, model: str | None = None, rate: float = FLAG_RATE) -> Threshold:
    """Calibrate the warning threshold of `model` (default: the run's best) on the run's test split."""
    model = model or run.best_with_probabilities
    if model is None:
        raise UploadError("no model of this run gives probabilities, so there is no confidence to calibrate")
    split = test_split(run.report)
    proba = probabilities(run.models[model], split.X_test, len(run.class_names))
    if proba is None:
        raise UploadError(f"{run.labels[model]} has no probabilities to calibrate")
    return calibrate_threshold(proba, split.y_test, model, rate)


@dataclass
class ImagePrediction:
    """One upload through every model of a run."""

    name: str
    prep: Preprocessed
    per_model: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def check_input(prep: Preprocessed, spec: InputSpec) -> list[str]:
    """Warnings that do not depend on a model: colour photo to a grayscale model, nothing drawn."""
    out = []
    if prep.empty:
        out.append("no content found in the image (blank or almost blank): any prediction is meaningless")
    if spec.grayscale and prep.colourfulness > COLOUR_LIMIT:
        out.append(
            f"this looks like a colour photo (colourfulness {prep.colourfulness:.2f}); these models were trained "
            f"on {'handwritten digits' if spec.kind == 'digit' else 'grayscale product images'}, so their answer "
            "says little about it"
        )
    return out


def predict_decoded(
    run: LoadedRun, images: list[DecodedImage], threshold: Threshold | None = None
) -> list[ImagePrediction]:
    """Preprocess each image as the run's training data were made, then predict with every model."""
    out = []
    names = run.class_names
    for img in images:
        t0 = time.perf_counter()
        prep = preprocess(img.image, run.spec)
        x = prep.x[None]
        per_model: dict[str, dict[str, Any]] = {}
        for name, est in run.models.items():
            proba = probabilities(est, x, len(names))
            k = int(proba[0].argmax()) if proba is not None else int(est.predict(x)[0])
            per_model[name] = {
                "label": run.labels[name],
                "predicted": names[k],
                "index": k,
                "confidence": float(proba[0, k]) if proba is not None else None,
                "entropy_bits": float(entropy(proba[0])) if proba is not None else None,
                "proba": proba[0].tolist() if proba is not None else None,
            }
        warnings = check_input(prep, run.spec)
        if threshold is not None and threshold.model in per_model:
            conf = per_model[threshold.model]["confidence"]
            if conf is not None and conf < threshold.value:
                warnings.append(
                    f"low confidence: {run.labels[threshold.model]} gives {conf:.0%}, below the threshold "
                    f"{threshold.value:.0%} ({threshold.note}); the image is probably unlike the training data"
                )
        out.append(ImagePrediction(img.name, prep, per_model, warnings, time.perf_counter() - t0))
    return out


def decode_all(files: list[tuple[str, bytes]]) -> tuple[list[DecodedImage], list[tuple[str, str]]]:
    """Decode many uploads; bad ones become (name, message) pairs instead of stopping the batch."""
    good, bad = [], []
    for name, data in files:
        try:
            good.append(decode_image(data, name))
        except UploadError as exc:
            bad.append((name, str(exc)))
    return good, bad


def rows(run: LoadedRun, preds: list[ImagePrediction], model: str | None = None) -> list[dict[str, Any]]:
    """A flat table: one row per image and model (or only `model`), with confidence and warnings."""
    out = []
    for p in preds:
        for name, r in p.per_model.items():
            if model and name != model:
                continue
            out.append(
                {
                    "file": p.name,
                    "model": r["label"],
                    "prediction": r["predicted"],
                    "confidence": None if r["confidence"] is None else round(r["confidence"], 4),
                    "warning": "; ".join(p.warnings),
                }
            )
    return out


def csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas in user-controlled text (CSV injection): prefix with a quote."""
    if isinstance(value, str) and value.startswith(CSV_DANGEROUS):
        return "'" + value
    return value


def to_csv(table: list[dict[str, Any]]) -> str:
    """CSV text of a predictions table, safe to open in a spreadsheet."""
    import csv
    import io

    if not table:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(table[0]))
    writer.writeheader()
    for row in table:
        writer.writerow({k: csv_safe(v) for k, v in row.items()})
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ pretrained


def predict_pretrained(images: list[DecodedImage], top: int = 5) -> list[dict[str, Any]]:
    """Top-`top` ImageNet labels of EfficientNet-Lite0 for each photo, with the milliseconds it took."""
    from models.pretrained import classify

    out = []
    for img in images:
        t0 = time.perf_counter()
        labels = classify([img.image], top=top)[0]
        out.append(
            {
                "file": img.name,
                "top": [{"label": lab, "probability": round(p, 4)} for lab, p in labels],
                "milliseconds": round((time.perf_counter() - t0) * 1000, 1),
            }
        )
    return out


# ------------------------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    """`python -m bench predict` arguments."""
    p = argparse.ArgumentParser(prog="python -m bench predict", description="Predict images with a stored run "
                                "or the ImageNet-pretrained EfficientNet-Lite0")  # fmt: skip
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="id of a stored image run (see the page's Saved runs tab)")
    src.add_argument("--pretrained", choices=["efficientnet-lite0"], help="an ImageNet-pretrained model")
    p.add_argument("--model", help="only this model of the run (default: every model)")
    p.add_argument("--top", type=int, default=5, help="labels per photo for --pretrained")
    p.add_argument("--json", type=Path, help="write the predictions here")
    p.add_argument("files", nargs="+", type=Path, help="image files (PNG, JPEG, WebP, GIF, BMP)")
    return p


def cli(argv: list[str] | None = None) -> int:
    """Predict files from the command line; prints a table, returns an exit code (1 when nothing decoded)."""
    args = build_parser().parse_args(argv)
    files = []
    for f in args.files:
        try:
            with open(f, "rb") as fh:
                from data.uploads import read_limited

                files.append((f.name, read_limited(fh)))
        except (OSError, UploadError) as exc:
            print(f"{f}: {exc}", file=sys.stderr)
    images, bad = decode_all(files)
    for name, msg in bad:
        print(f"skipped {msg}" if msg.startswith(name) else f"skipped {name}: {msg}", file=sys.stderr)
    if not images:
        print("no image could be read", file=sys.stderr)
        return 1
    result: dict[str, Any]
    if args.pretrained:
        preds = predict_pretrained(images, top=args.top)
        for r in preds:
            tops = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in r["top"])
            print(f"{r['file']}: {tops}  ({r['milliseconds']:.0f} ms)")
        result = {"model": args.pretrained, "predictions": preds}
    else:
        try:
            run = load_run(args.run, models=[args.model] if args.model else None)
        except Exception as exc:  # unknown run, missing artifact: a message, not a traceback
            from bench.run.store import store_error

            print(f"cannot load run {args.run}: {store_error(exc)}", file=sys.stderr)  # no raw URI or password
            return 2
        try:
            threshold: Threshold | None = calibrate_run(run, args.model)
        except Exception as exc:  # the dataset may be gone (custom upload) or the model has no probabilities
            from models.redact import redact

            print(f"note: no calibrated warning threshold ({redact(exc)})", file=sys.stderr)
            threshold = None
        preds_run = predict_decoded(run, images, threshold)
        table = rows(run, preds_run)
        for r in table:
            conf = "" if r["confidence"] is None else f"{r['confidence']:.1%}"
            print(f"{r['file']:24} {r['model']:22} {r['prediction']:>14} {conf:>7}  {r['warning']}")
        result = {
            "run_id": run.run_id,
            "dataset": run.report["dataset"],
            "threshold": threshold.to_dict() if threshold else None,
            "predictions": [
                {"file": p.name, "warnings": p.warnings, "milliseconds": round(p.seconds * 1000, 2),
                 "models": p.per_model}
                for p in preds_run
            ],
        }  # fmt: skip
    result["skipped"] = [{"file": n, "reason": m} for n, m in bad]
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
        print(f"predictions written to {args.json}")
    return 0
