"""The claims report: every measured number traces back to stored runs; missing tasks say "not measured";
the HTML is self-contained and escaped; the CSV tables are safe for spreadsheets."""

from __future__ import annotations

import csv
import io

import pytest

from bench.experiments import claims
from bench.experiments.report import safe_csv
from bench.run.store import RunStore
from bench.tasks import REGISTRY

ONLY = ("image", "activation", "epochs", "sentiment", "forecast")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[RunStore, dict]:
    store = RunStore()
    report = claims.build_report(store, profile="fast", backend="local", only=ONLY)
    return store, report


def test_every_measured_number_traces_to_stored_runs(built) -> None:
    store, report = built
    measured = [r for s in report["sections"] for r in s["rows"] if r["measured"] is not None]
    assert len(measured) >= 15
    for r in measured:
        assert r["run_ids"], f"{r['item']} has no run id"
        for rid in r["run_ids"].split():
            assert store.client.get_run(rid).info.status == "FINISHED"
        assert claims.trace(store, r["source"]) == pytest.approx(r["measured"], rel=1e-9), r["item"]


def test_sections_follow_the_article_and_missing_tasks_are_not_measured(built) -> None:
    _, report = built
    keys = [s["key"] for s in report["sections"]]
    assert keys == [k for k in claims.ORDER if k in keys]
    assert {"image", "comparison", "errors", "activation", "epochs", "sentiment", "forecast"} <= set(keys)
    by_key = {s["key"]: s for s in report["sections"]}
    for task in ("sentiment", "forecast"):
        if task not in REGISTRY:
            assert by_key[task]["status"] == "not measured" and not by_key[task]["rows"]
    act = by_key["activation"]
    assert [r["item"] for r in act["rows"]] == ["relu", "sigmoid", "tanh"]
    assert all(r["n"] == 2 and r["ci_low"] <= r["measured"] <= r["ci_high"] for r in act["rows"])
    epochs = {r["item"]: r for r in by_key["epochs"]["rows"]}
    assert epochs["epoch 1"]["measured"] is not None and epochs["epoch 100"]["verdict"] == "not measured"
    # plain words where the measurement disagrees
    assert all(r["verdict"] for s in report["sections"] for r in s["rows"])


def test_second_report_reuses_the_stored_runs(built) -> None:
    store, report = built
    again = claims.build_report(store, profile="fast", backend="local", only=ONLY, run_missing=False)
    assert not again["missing"]
    ids = sorted(r["run_ids"] for s in report["sections"] for r in s["rows"])
    assert sorted(r["run_ids"] for s in again["sections"] for r in s["rows"]) == ids


def test_nothing_stored_and_nothing_run_is_not_measured(tmp_path) -> None:
    empty = RunStore(root=tmp_path / "empty")
    rep = claims.build_report(empty, profile="fast", backend="local", only=("image", "activation"), run_missing=False)
    assert all(s["status"] == "not measured" for s in rep["sections"])
    assert len(rep["missing"]) == 2


def test_html_and_csv_export(built, tmp_path) -> None:
    _, report = built
    paths = claims.write_report(report, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "Plotly" in page and "<script src=" not in page and "<script type=\"text/javascript\" src=" not in page  # offline
    for s in report["sections"]:
        assert s["title"] in page
    csvs = {p.name for p in paths if p.suffix == ".csv"}
    assert {"image.csv", "activation.csv", "claims.csv"} <= csvs
    rows = list(csv.DictReader(io.StringIO((tmp_path / "report_tables" / "claims.csv").read_text())))
    assert any(r["claim"] == "Activation function" and r["run_ids"] for r in rows)


def test_html_escapes_and_csv_neutralises_formulas() -> None:
    import pandas as pd

    from bench.experiments.report import render_html

    page = render_html("t <b>", ["<script>alert(1)</script>"], [{"title": "x", "tables": {
        "tbl": pd.DataFrame({"a": ["<img src=x onerror=alert(1)>"]})}}])
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page and "<img src=x" not in page
    text = safe_csv(pd.DataFrame({"=cmd": ["=1+1", "+x", "-y", "@z", "ok", "\tq"], "n": [-1, 2, 3, 4, 5, 6]}))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "'=cmd"
    assert [r[0] for r in rows[1:]] == ["'=1+1", "'+x", "'-y", "'@z", "ok", "'\tq"]
    assert rows[1][1] == "-1"  # numbers stay numbers
