"""Sentiment speed: MiniLM fine-tuning through the product path vs a plain fp32 loop, inference, one SHAP text.

    python -m perf.sentiment [--samples N] [--quick] [--out FILE.json]

1. One epoch of all-MiniLM-L6-v2 fine-tuning (all layers, max length 64) on N training tweets through the product
   path (bench/core/train.py: dynamic padding inside the module, length bucketing, the training setting's precision,
   fused AdamW, the embedding layer fine-tuned as by default; a second product epoch with the embeddings frozen
   (the train_embeddings setting off) shows what freezing them adds)
   against a plain reference loop in the same process: fp32, every batch padded to 64 tokens, batch 32, random
   order. Same texts, same optimizer; the ratio is reference seconds / product epoch seconds (both timers start
   after the model is built and the texts are encoded; the product's one-time set-up is a row of its own). With N below the full
   training split (30,296 texts) the epoch time is also projected to the full split (linear in batches).
2. Inference: texts per second of the fine-tuned model on the test tweets (product predict path).
3. One SHAP text explanation (Partition explainer, MiniLM tokens, at most 300 model calls): seconds of the first
   call (includes shap's one-time start-up) and of a typical later call.

Also a section of `python -m perf` (`run_section`). Timings on shared CPUs are noisy: the ratios are measured in
the same process, back to back.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.core.calibrate import cpu_name
from perf.report import Result

FULL_TRAIN = 30_296  # training split of the bundled tweets, seed 0
MAX_LENGTH = 64
BATCH = 32


def _row(name: str, value: float, unit: str, reference: float | None = None, ratio: float | None = None,
         note: str = "") -> Result:  # fmt: skip
    fields = {f.name for f in dataclasses.fields(Result)}
    kwargs: dict[str, Any] = {"name": name, "value": value, "unit": unit, "reference": reference, "ratio": ratio}
    if "note" in fields:
        kwargs["note"] = note
    return Result(**kwargs)


def plain_epoch(ids: np.ndarray, y: np.ndarray, seed: int) -> float:
    """The reference: fp32, padded to MAX_LENGTH, batch 32, random order, AdamW; seconds for one epoch."""
    from models.text import MiniLMClassifier, MiniLMConfig

    torch.manual_seed(seed)
    model = MiniLMClassifier(MiniLMConfig(max_length=MAX_LENGTH), int(y.max()) + 1)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    X, Y = torch.as_tensor(ids), torch.as_tensor(y)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    for s in range(0, len(X), BATCH):
        idx = perm[s : s + BATCH]
        xb = X[idx]
        mask = (xb != 0).long()
        hidden = model.encoder(input_ids=xb, attention_mask=mask).last_hidden_state  # (B, 64, H): no trimming
        m = mask.unsqueeze(-1).float()
        logits = model.head(model.dropout((hidden * m).sum(1) / m.sum(1).clamp(min=1.0)))
        loss = F.cross_entropy(logits, Y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def product_fit(texts: np.ndarray, y: np.ndarray, seed: int, train_layers: int | None = None,
                train_embeddings: bool | None = None) -> tuple[Any, float]:  # fmt: skip
    """The product path: TextNeuralClassifier (bucketing, dynamic padding, the shared loop), one epoch, no
    validation split (the reference has none either), the registry default's fine-tuned layers unless
    `train_layers` is given; returns (estimator, seconds)."""
    from bench.tasks.sentiment.estimators import TextNeuralClassifier
    from models.config import TrainConfig
    from models.text import MiniLMConfig

    default = MiniLMConfig()
    layers = default.train_layers if train_layers is None else train_layers
    embeddings = default.train_embeddings if train_embeddings is None else train_embeddings
    cfg = MiniLMConfig(max_length=MAX_LENGTH, train_layers=layers, train_embeddings=embeddings, lr=5e-5)
    tcfg = TrainConfig(batch_size=BATCH, epochs=1, lr=5e-5, val_fraction=0.0, seed=seed)
    est = TextNeuralClassifier("minilm", cfg, tcfg)
    t0 = time.perf_counter()
    est.fit(texts, y)
    return est, time.perf_counter() - t0


def run_section(quick: bool = False, seed: int = 0, log: Callable[[str], None] = print,
                samples: int = 0, train_layers: int | None = None) -> list[Result]:  # fmt: skip
    """Measure and return the rows (names prefixed "sentiment.")."""
    from bench.core.explain import explain_text
    from data.text import load_tweets
    from models.text import MINILM_LAYERS, encode

    n = samples or (320 if quick else 1_600)
    split = load_tweets(seed=seed, max_samples=n, test_samples=1000)
    texts, y = split.X_train, split.y_train
    log(f"sentiment: MiniLM one epoch on {len(y):,} tweets, product path vs plain fp32 pad-64 loop ...")
    ids = encode(texts, MAX_LENGTH)
    est, total_s = product_fit(texts, y, seed, train_layers)
    layers = est.config.train_layers
    # like for like with the reference, whose timer also starts after the model is built and the texts are
    # encoded: the epoch itself; the one-time set-up (weights, tokenizer, precision calibration) is reported apart
    product_s = float(est.history_[0].seconds)
    log(f"  product path {product_s:.1f} s for the epoch ({layers} of 6 layers fine-tuned), "
        f"{total_s - product_s:.1f} s one-time set-up")
    plain_s = plain_epoch(ids, y, seed)
    log(f"  plain loop   {plain_s:.1f} s")
    emb_s = None
    if layers == MINILM_LAYERS and est.config.train_embeddings:
        emb_s = float(product_fit(texts, y, seed, train_layers, train_embeddings=False)[0].history_[0].seconds)
        log(f"  product path with the embeddings frozen {emb_s:.1f} s")
    scale = FULL_TRAIN / len(y)
    rows = [
        _row("sentiment.minilm_setup", total_s - product_s, "s",
             note="one-time: weights, tokenizer, precision calibration (cached per machine)"),
        _row("sentiment.minilm_epoch", product_s, "s", plain_s, plain_s / product_s,
             f"one epoch on {len(y):,} tweets, top {layers} of 6 layers fine-tuned, embeddings "
             f"{'trained' if est.config.train_embeddings else 'frozen'}; reference = fp32 pad-64 batch-32 loop, all "
             "layers and embeddings, same process"),
        _row("sentiment.minilm_epoch_full_projected", product_s * scale, "s", plain_s * scale, plain_s / product_s,
             f"projected linearly from {len(y):,} to {FULL_TRAIN:,} tweets"),
    ]  # fmt: skip
    if emb_s is not None:
        rows.append(_row("sentiment.minilm_epoch_embeddings_frozen", emb_s, "s", plain_s, plain_s / emb_s,
                         "the product path with train_embeddings off (the reference trains them)"))  # fmt: skip
    test = split.X_test
    est.predict_proba(test[:64])  # warm-up (and the measured precision choice)
    t0 = time.perf_counter()
    est.predict_proba(test)
    infer_s = time.perf_counter() - t0
    rows.append(_row("sentiment.minilm_inference", len(test) / infer_s, "texts/s", note=f"{len(test)} test tweets"))
    log(f"  inference {len(test) / infer_s:.0f} texts/s")
    sentence = "The flight was delayed for hours and the staff were rude, never flying with them again"
    first = explain_text(est, sentence)["seconds"]
    later = [explain_text(est, str(t))["seconds"] for t in test[:3]]
    rows.append(_row("sentiment.shap_first", first, "s", note="first Partition explanation in the process"))
    rows.append(_row("sentiment.shap_typical", float(np.median(later)), "s", note="median of 3 later explanations"))
    log(f"  SHAP first {first:.2f} s, typical {np.median(later):.2f} s")
    return rows


def cli(argv: list[str] | None = None) -> int:
    """`python -m perf.sentiment`: print the rows and write them as JSON."""
    ap = argparse.ArgumentParser(prog="python -m perf.sentiment", description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=0, help="training tweets for the epoch comparison")
    ap.add_argument("--quick", action="store_true", help="320 tweets: a rough smoke run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=None, help="MiniLM layers fine-tuned (default: the registry's)")
    ap.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    rows = run_section(args.quick, args.seed, lambda s: print(s, flush=True), samples=args.samples,
                       train_layers=args.layers)  # fmt: skip
    payload = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "rows": [r.to_dict() for r in rows]}
    for r in rows:
        d = r.to_dict()
        ratio = f"  ratio {d['ratio']:.2f}x (reference {d['reference']:.1f})" if d.get("ratio") else ""
        print(f"{d['name']:42} {d['value']:10.2f} {d['unit']}{ratio}")
    print(f"CPU: {payload['cpu']}, {payload['threads']} threads")
    if args.out:
        args.out.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
