"""Command-line parts of the sentiment task, kept apart so bench/cli/main.py only calls them:

python -m bench sentiment --dataset tweets --json report.json
python -m bench sentiment --dataset csv --csv reviews.csv --text-col review --label-col stars
python -m bench predict --run RUN_ID --csv texts.csv --text-col text [--model minilm] --json out.json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from models.config import ConfigError


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """Extra options of the sentiment sub-command: the user's CSV for `--dataset csv`."""
    parser.add_argument("--csv", type=Path, help="with --dataset csv: a CSV of labelled texts")
    parser.add_argument("--text-col", default="", help="with --dataset csv: the column holding the texts")
    parser.add_argument("--label-col", default="", help="with --dataset csv: the column holding the labels")


def cli_request(args: argparse.Namespace) -> tuple[str, None, dict[str, Any]]:
    """(dataset, set-up, loader keyword arguments) from the parsed options (the CSV only for `--dataset csv`)."""
    return args.dataset, None, data_options(args)


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """Loader keyword arguments from the parsed options (only for `--dataset csv`)."""
    if getattr(args, "dataset", "") != "csv":
        return {}
    if args.csv is None:
        raise ConfigError("--dataset csv needs --csv FILE --text-col COLUMN --label-col COLUMN")
    return {"path": str(args.csv), "text_col": args.text_col, "label_col": args.label_col}
