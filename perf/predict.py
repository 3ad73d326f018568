"""Speed and accuracy of the Predict / Transfer features (issue 8 targets), on this machine's CPU.

    python -m perf --sections predict          # as a section of `make perf` (rows prefixed "predict.")
    python -m perf.predict [--quick] [--threads 2] [--out perf/predict-results.json]

Measures, in one process:
- upload-to-prediction: decode one PNG upload + MNIST-style preprocessing + every model of an MNIST-5k run
  (CNN, MLP, logistic regression, SVM, random forest, kNN, majority), median ms (target <= 100 ms);
- EfficientNet-Lite0 on one 224 px photo, median ms (target <= 60 ms on 2 threads), and its ratio to the CNN;
- one SHAP explanation: the pretrained model's top label on a photo, and the CNN on one upload (target <= 2 s);
- transfer learning on the offline sample (10 Fashion-MNIST classes x 100 images, 800 train / 200 test):
  accuracy with 95% CI of the pretrained-features models, the CNN from scratch and pixel baselines, and McNemar
  of the pretrained model against the CNN and the best pixel model.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perf.report import Result, format_table, write_json

TRANSFER_MODELS = ("effnet", "embed_lr", "cnn", "rf", "logreg", "majority")


def _median_ms(fn: Callable[[], Any], reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def measure_upload(quick: bool, seed: int, log: Callable[[str], None]) -> list[Result]:
    """Decode + preprocess + every model of an MNIST-5k run, for one 28x28 upload."""
    from bench.run.predict import LoadedRun, predict_decoded
    from bench.tasks import get_task
    from data.uploads import decode_image, input_spec
    from models.config import TrainConfig

    models = ("cnn", "mlp", "logreg", "svm", "rf", "knn", "majority")
    log("upload-to-prediction: fitting every image model on MNIST-5k ...")
    tcfg = TrainConfig(epochs=1 if quick else 3, batch_size=64, seed=seed)
    task = get_task("image")
    split = task.datasets["mnist-5k"].loader(seed=seed, max_samples=1000 if quick else 0)
    holder: dict[str, Any] = {}
    for name in models:  # the registry's factories, as the runner builds them
        spec = task.models[name]
        holder[name] = spec.factory(spec.default_config("mnist-5k"), tcfg, seed, None).fit(split.X_train, split.y_train)
    report = {
        "task": "image", "dataset": "mnist-5k", "class_names": split.class_names,
        "models": [{"name": n, "label": task.models[n].label,
                    "metrics": {"accuracy": float((holder[n].predict(split.X_test) == split.y_test).mean())}}
                   for n in models],
    }  # fmt: skip
    run = LoadedRun("perf", report, holder, input_spec("mnist-5k"))
    digit = (255 - split.X_test[0, 0] * 255).astype(np.uint8)
    data = _png(digit)

    def once() -> None:
        predict_decoded(run, [decode_image(data, "digit.png")])

    ms = _median_ms(once, 10 if quick else 30)
    cnn = holder["cnn"]
    x = split.X_test[:1]
    cnn_ms = _median_ms(lambda: cnn.predict_proba(x), 10 if quick else 30)
    return [
        Result("upload_to_prediction_ms", ms, "ms", 100.0, ms / 100.0,
               f"decode + preprocess + {len(models)} models, one 28x28 PNG; reference = the 100 ms target"),
        Result("cnn_one_image_ms", cnn_ms, "ms", None, None, "the CNN alone on one preprocessed image"),
    ]  # fmt: skip


def measure_pretrained(quick: bool, log: Callable[[str], None]) -> list[Result]:
    """EfficientNet-Lite0 on one 224 px photo (median), and SHAP of its top label."""
    from PIL import Image
    from skimage import data as skdata

    from bench.core.explain import explain_photo
    from models.pretrained import classify, shared_model

    photo = Image.fromarray(skdata.chelsea())
    model = shared_model()
    log("EfficientNet-Lite0 on one 224 px photo ...")
    ms = _median_ms(lambda: classify([photo], model=model), 10 if quick else 30)
    top = classify([photo], model=model)[0]
    log("SHAP of the top label ...")
    explain_photo(photo, nsamples=4)  # warm-up (imports, first backward)
    t0 = time.perf_counter()
    out = explain_photo(photo)
    shap_s = time.perf_counter() - t0
    return [
        Result("efficientnet_lite0_224px_ms", ms, "ms", 60.0, ms / 60.0,
               f"median, one chelsea photo incl. resize; top-1 {top[0][0]} {top[0][1]:.2f}; reference = 60 ms target"),
        Result("shap_pretrained_photo_s", shap_s, "s", 2.0, shap_s / 2.0, out["method"] + "; reference = 2 s target"),
    ]  # fmt: skip


def measure_shap_cnn(quick: bool, seed: int) -> list[Result]:
    """SHAP (GradientExplainer) of a small CNN for one upload, every class, as the Predict tab runs it."""
    from bench.core.explain import explain_images
    from bench.tasks import get_task
    from models.config import TrainConfig

    task = get_task("image")
    split = task.datasets["mnist-5k"].loader(seed=seed, max_samples=1000)
    est = task.models["cnn"].factory(task.models["cnn"].default_config("mnist-5k"), TrainConfig(epochs=1), seed, None)
    est.fit(split.X_train, split.y_train)
    explain_images(est, split.X_train, split.X_test[:1], seed=seed)  # warm-up
    t0 = time.perf_counter()
    explain_images(est, split.X_train, split.X_test[1:2], seed=seed)
    s = time.perf_counter() - t0
    return [Result("shap_cnn_upload_s", s, "s", 2.0, s / 2.0, "GradientExplainer, 64 samples, 100 background images")]


def measure_augment(quick: bool, seed: int, log: Callable[[str], None]) -> list[Result]:
    """The CNN with and without random affine augmentation: test accuracy, and accuracy on the test images
    moved like careless uploads (fixed random rotations up to 15 degrees, shifts up to 15%, scaling 0.85-1.15)."""
    import dataclasses

    from bench.tasks import get_task
    from models.nets import RandomAffine

    log("augmentation: CNN with and without random affine ...")
    task = get_task("image")
    ds = task.datasets["mnist-5k"]
    split = ds.loader(seed=seed, max_samples=1500 if quick else 0)
    tcfg = dataclasses.replace(ds.default_train_config(seed), epochs=3 if quick else 15)
    torch.manual_seed(seed + 1)
    shaker = RandomAffine(degrees=15.0, shift=0.15, scale=(0.85, 1.15)).train()
    with torch.no_grad():
        moved = shaker(torch.as_tensor(split.X_test)).numpy()
    rows = []
    for augment in (False, True):
        cfg = dataclasses.replace(task.models["cnn"].default_config("mnist-5k"), augment=augment)
        est = task.models["cnn"].factory(cfg, tcfg, seed, None).fit(split.X_train, split.y_train)
        acc = float((est.predict(split.X_test) == split.y_test).mean())
        acc_moved = float((est.predict(moved) == split.y_test).mean())
        tag = "augmented" if augment else "plain"
        rows.append(
            Result(f"cnn_{tag}_test_accuracy", acc, "accuracy", None, None, f"CNN ({tag}), MNIST-5k test split")
        )
        rows.append(Result(f"cnn_{tag}_moved_test_accuracy", acc_moved, "accuracy", None, None,
                           f"CNN ({tag}) on the same test images randomly rotated/shifted/scaled"))  # fmt: skip
    return rows


def measure_transfer(quick: bool, seed: int, log: Callable[[str], None]) -> tuple[list[Result], dict[str, Any]]:
    """Every transfer model on the offline sample, through the one runner; McNemar effnet vs CNN / best pixel."""
    from bench.core.contract import BenchmarkRequest
    from bench.core.stats import mcnemar_test
    from bench.run.runner import run_benchmark
    from bench.run.store import RunStore
    from data.custom import load_custom, sample_zip
    from data.uploads import extract_image_zip
    from models.pretrained import EffNetConfig, EmbedLRConfig

    per_class = 30 if quick else 100
    data, what = sample_zip(per_class=per_class, seed=seed)
    root = Path(tempfile.mkdtemp(prefix="neuralbench-perf-"))
    rep = extract_image_zip(data, root)
    size = 128 if quick else 224
    log(f"transfer learning on the offline sample ({what}; EfficientNet at {size} px) ...")
    request = BenchmarkRequest(
        "image", "custom", TRANSFER_MODELS, seed=seed,
        configs={"effnet": EffNetConfig(image_size=size), "embed_lr": EmbedLRConfig(image_size=size)},
        data_options={"path": str(rep.folder), "image_size": 64},
    )  # fmt: skip
    store = RunStore(root=tempfile.mkdtemp(prefix="neuralbench-perf-runs-"))
    t0 = time.perf_counter()
    report = run_benchmark(request, store=store)
    total_s = time.perf_counter() - t0
    preds = store.load_predictions(report["run_id"])
    split = load_custom(seed=seed, path=rep.folder, image_size=64)
    by = {m["name"]: m for m in report["models"]}
    rows = []
    for m in report["models"]:
        lo, hi = m["metrics"]["accuracy_ci"]
        rows.append(Result(f"transfer_{m['name']}_accuracy", m["metrics"]["accuracy"], "accuracy", None, None,
                           f"{m['label']}: 95% CI [{lo:.3f}, {hi:.3f}], train {m['train_seconds']:.1f} s"))  # fmt: skip
    comparisons = {}
    pixel = max((m for m in report["models"] if m["family"] == "classical"), key=lambda m: m["metrics"]["accuracy"])
    for rival in ("cnn", pixel["name"]):
        t = mcnemar_test(split.y_test, preds["effnet"], preds[rival])
        comparisons[f"effnet_vs_{rival}"] = t
        rows.append(Result(f"transfer_mcnemar_effnet_vs_{rival}_p", t["p_value"], "p", None, None,
                           f"{by['effnet']['label']} {by['effnet']['metrics']['accuracy']:.3f} vs "
                           f"{by[rival]['label']} {by[rival]['metrics']['accuracy']:.3f}"))  # fmt: skip
    rows.append(Result("transfer_total_s", total_s, "s", None, None, f"{len(TRANSFER_MODELS)} models, {what}"))
    return rows, {"report": report, "comparisons": comparisons, "sample": what}


def run_section(quick: bool, seed: int, log: Callable[[str], None]) -> list[Result]:
    """The `predict` section of `python -m perf`."""
    rows = measure_upload(quick, seed, log)
    rows += measure_pretrained(quick, log)
    rows += measure_shap_cnn(quick, seed)
    rows += measure_augment(quick, seed, log)
    transfer, _ = measure_transfer(quick, seed, log)
    return rows + transfer


def main(argv: list[str] | None = None) -> int:
    """Standalone: print the table and write the JSON rows."""
    from bench.core.calibrate import cpu_name

    ap = argparse.ArgumentParser(prog="python -m perf.predict", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sample and fewer repetitions")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the targets are for 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-transfer", action="store_true")
    ap.add_argument("--out", default="perf/predict-results.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_name()} · torch threads {torch.get_num_threads()}", flush=True)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    rows = measure_upload(args.quick, args.seed, log) + measure_pretrained(args.quick, log)
    rows += measure_shap_cnn(args.quick, args.seed)
    rows += measure_augment(args.quick, args.seed, log)
    extra: dict[str, Any] = {}
    if not args.skip_transfer:
        transfer, extra = measure_transfer(args.quick, args.seed, log)
        rows += transfer
    print(format_table(rows))
    path = write_json(rows, args.out)
    if extra:
        Path(path).with_suffix(".transfer.json").write_text(json.dumps(extra, indent=1, default=str))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
