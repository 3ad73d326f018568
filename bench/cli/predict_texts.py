"""`python -m bench predict --run ID --csv FILE`: batch prediction of texts with every model of a stored
sentiment run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.run.store import RunNotFound, RunStore, store_error
from bench.tasks.sentiment.estimators import predict_run
from data.text import safe_csv_bytes, texts_from_upload
from models.config import ConfigError


def add_predict_parser(sub: Any) -> None:
    """The `predict` sub-command: batch prediction from a stored sentiment run."""
    p = sub.add_parser("predict", help="predict texts with every model of a stored sentiment run")
    p.add_argument("--run", required=True, help="run id (see the Saved runs tab or mlflow ui)")
    p.add_argument("--csv", type=Path, required=True, help="a CSV of texts (or a .txt file, one text per line)")
    p.add_argument("--text-col", default="", help="the column holding the texts (default: the longest one)")
    p.add_argument("--model", default="", help="only this model of the run (default: every model)")
    p.add_argument("--json", type=Path, help="write the predictions here")
    p.add_argument("--out-csv", type=Path, help="write the predictions as CSV here (cells neutralised)")


def run_predict(args: argparse.Namespace, store: Any = None) -> int:
    """Load the run's models and predict the file's texts; prints a table, returns an exit code."""

    try:
        path = Path(args.csv)
        if not path.is_file():
            raise ConfigError(f"no such file: {path}")
        texts, column = texts_from_upload(path.read_bytes(), path.name, args.text_col or None)
        frame, meta = predict_run(store or RunStore(), args.run, texts, [args.model] if args.model else None)
    except (ConfigError, RunNotFound) as exc:
        print(f"error: {store_error(exc)}", file=sys.stderr)
        return 2
    print(f"run {args.run}: {meta['task']} / {meta['dataset']}, models {', '.join(meta['models'])}")
    print(f"{len(texts)} texts from {path.name}" + (f" (column {column!r})" if column else ""))
    with __import__("pandas").option_context("display.max_colwidth", 60, "display.width", 200):
        print(frame.head(20).to_string(index=False))
    if args.json:
        args.json.write_text(json.dumps({**meta, "predictions": frame.to_dict(orient="records")}, indent=1))
        print(f"predictions written to {args.json}")
    if args.out_csv:
        args.out_csv.write_bytes(safe_csv_bytes(frame))
        print(f"predictions written to {args.out_csv}")
    return 0
