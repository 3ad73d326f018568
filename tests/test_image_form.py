"""The image page trains what it shows: each dataset's defaults reach the form, a reset restores them, and the
page and the CLI give the same report for the same dataset, seed and settings."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from bench.cli.main import main as cli_main
from bench.tasks.image.task import TASK as IMAGE_TASK
from tests.conftest import ROOT

APP = str(ROOT / "app.py")
DIGITS_TRAIN = {"lr": 3e-3, "batch_size": 32, "epochs": 30, "patience": 8}  # the CLI's digits defaults
MNIST_TRAIN = {"lr": 1e-3, "batch_size": 64, "epochs": 15, "patience": 5}


def image_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/image.py").run()
    assert not at.exception
    return at


def field(at: AppTest, key: str):
    """A form field by key: a number input, or a log-scale slider (the learning rate)."""
    for kind in (at.number_input, at.select_slider):
        try:
            return kind(key=key)
        except KeyError:
            continue
    raise KeyError(key)


def form_values(at: AppTest, dataset: str, names: list[str]) -> dict:
    return {n: field(at, f"{dataset}.{n}").value for n in names}


def test_switching_the_dataset_shows_its_own_defaults() -> None:
    at = image_page()
    fields = ["train.lr", "train.batch_size", "train.epochs", "train.patience", "cnn.channels", "cnn.conv_blocks",
              "cnn.dropout"]  # fmt: skip
    mnist = form_values(at, "mnist-5k", fields)
    assert mnist == {**{f"train.{k}": v for k, v in MNIST_TRAIN.items()}, "cnn.channels": 16, "cnn.conv_blocks": 3,
                     "cnn.dropout": 0.5}  # fmt: skip
    at.selectbox(key="dataset").select("digits").run()
    assert not at.exception
    digits = form_values(at, "digits", fields)
    assert digits == {**{f"train.{k}": v for k, v in DIGITS_TRAIN.items()}, "cnn.channels": 16, "cnn.conv_blocks": 2,
                      "cnn.dropout": 0.25}  # fmt: skip
    # and they are exactly the registry's (what the CLI uses)
    cnn = IMAGE_TASK.models["cnn"].default_config("digits")
    assert (digits["cnn.channels"], digits["cnn.dropout"]) == (cnn.channels, cnn.dropout)


def test_reset_to_defaults_restores_the_datasets_settings() -> None:
    at = image_page()
    at.selectbox(key="dataset").select("digits").run()
    field(at, "digits.train.lr").set_value(0.05)
    at.number_input(key="digits.cnn.channels").set_value(40)
    at.number_input(key="seed").set_value(7)
    at.multiselect(key="models").set_value([])
    at.button(key="train").click().run()  # commits the form's values (no model: nothing trains)
    assert any("at least one model" in e.value for e in at.error)
    assert field(at, "digits.train.lr").value == 0.05
    at.button(key="reset").click().run()
    assert not at.exception
    assert field(at, "digits.train.lr").value == DIGITS_TRAIN["lr"]
    assert at.number_input(key="digits.cnn.channels").value == 16
    assert at.number_input(key="seed").value == 0
    assert at.multiselect(key="models").value == list(IMAGE_TASK.default_models)


def comparable(report: dict) -> dict:
    """What must agree between two runs of the same request: everything but times, ids and the machine."""
    models = []
    for m in report["models"]:
        metrics = {k: v for k, v in m["metrics"].items()}
        models.append(
            {
                "name": m["name"],
                "config": m["config"],
                "metrics": metrics,
                "train_samples": m["train_samples"],
                "history": [{k: v for k, v in h.items() if k != "seconds"} for h in m["history"]],
            }
        )
    keep = ("task", "dataset", "seed", "split", "train_config", "repeats", "class_names")
    return {**{k: report[k] for k in keep}, "models": models,
            "comparisons": [{k: v for k, v in c.items()} for c in report["comparisons"]]}  # fmt: skip


@pytest.mark.slow
def test_page_and_cli_give_the_same_report(tmp_path) -> None:
    """Digits, seed 0, the dataset's defaults except a fast path: the page's run equals the CLI's, number for
    number (both run as jobs in worker processes)."""
    at = image_page()
    at.selectbox(key="dataset").select("digits").run()
    at.multiselect(key="models").set_value(["cnn", "logreg"])
    at.number_input(key="max_samples").set_value(400)
    at.number_input(key="digits.train.epochs").set_value(4)
    at.button(key="train").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    page = at.session_state["image.report"]
    assert page["train_config"]["lr"] == DIGITS_TRAIN["lr"] and page["models"][0]["config"]["channels"] == 16

    out = tmp_path / "cli.json"
    code = cli_main(["image", "--dataset", "digits", "--models", "cnn,logreg", "--seed", "0", "--max-samples", "400",
                     "--epochs", "4", "--no-store", "--json", str(out)])  # fmt: skip
    assert code == 0
    cli = json.loads(out.read_text())
    assert comparable(page) == comparable(cli)
