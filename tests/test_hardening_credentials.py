"""No credential ever shown or stored (SECURITY.md item 27).

A tracking URI with user:password@ in the environment and the server down (a closed port: MLflow's own
exception text then quotes the whole URI): the pages, the CLI, the logs and Ray Tune's trial files must
never show `alice` or `s3cret`, and the pages say in words that the run store is unreachable.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from models.redact import install_log_redaction, redact, redact_uri
from tests.conftest import ROOT

APP = str(ROOT / "app.py")
SECRET_URI = "http://alice:s3cret@127.0.0.1:9"  # port 9 (discard) is closed: connection refused at once
LEAKS = ("s3cret", "alice")


def leaks(text: str) -> list[str]:
    return [w for w in LEAKS if w in text]


@pytest.fixture
def unreachable_store(monkeypatch):
    """MLFLOW_TRACKING_URI with credentials, its server down; MLflow told not to retry (else ~4 min a call)."""
    from pages import ui

    monkeypatch.setenv("MLFLOW_TRACKING_URI", SECRET_URI)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ui.run_store.clear()  # the page's store is cached per process: open it again with this environment
    yield
    ui.run_store.clear()


def page_text(at: AppTest) -> str:
    """Everything the page shows: every element's proto (text, markdown, labels, options, values, table bytes)
    and every table's cells."""
    parts: list[str] = []

    def walk(node: object) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                walk(child)

    walk(at._tree)
    parts += [d.value.to_csv() for d in at.dataframe]
    return "\n".join(parts)


@pytest.mark.parametrize("page_file", [None, "pages/runs.py", "pages/image.py", "pages/sentiment.py"],
                         ids=["home", "runs", "image-predict", "sentiment"])  # fmt: skip
def test_pages_never_show_the_tracking_credentials(unreachable_store, page_file, caplog) -> None:
    caplog.set_level(logging.WARNING)
    at = AppTest.from_file(APP, default_timeout=300).run()
    if page_file:
        at.switch_page(page_file).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = page_text(at)
    assert not leaks(shown), [line for line in shown.splitlines() if leaks(line)][:5]
    errors = [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]  # as the user reads them (Markdown escapes off)
    assert any("run store is unreachable" in e and "127.0.0.1:9" in e for e in errors), errors
    assert not any("HTTPConnectionPool" in e or "api/2.0" in e for e in errors), errors  # words, not MLflow's text
    assert not leaks(caplog.text), "the server log must not hold the password either"


def test_home_names_the_store_without_credentials(unreachable_store) -> None:
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert any("http://***@127.0.0.1:9" in c.value for c in at.caption), [c.value for c in at.caption]
    assert len(at.error) == 1, ["an unreachable store is said once, not once per task", *(e.value for e in at.error)]


# ------------------------------------------------------------------------------------------- Ray Tune


def test_trial_config_holds_no_tracking_uri() -> None:
    pytest.importorskip("ray")
    from bench.experiments import ray_tune
    from bench.experiments.trials import SweepSpec
    from bench.run.store import RunStore

    spec = SweepSpec.build("image", "digits", "mlp", {"activation": ["relu", "tanh"]}, seeds=(0,),
                           train_overrides={"epochs": 1}, max_samples=100)  # fmt: skip
    config = ray_tune.trial_config(spec, RunStore(tracking_uri=SECRET_URI), Path("/tmp/runs"))
    text = json.dumps(config)
    assert not leaks(text) and "127.0.0.1" not in text and "tracking_uri" not in config
    assert config["store"] is True and config["local_store"] is False


def test_ray_sweep_writes_no_credential_into_trial_files(unreachable_store, monkeypatch, tmp_path) -> None:
    """A real local Ray Tune sweep against the unreachable store: the trials fail (their records say why, in
    words), and nothing under Tune's experiment folder or Ray's session folder holds the password."""
    pytest.importorskip("ray")
    from bench.exec import ray_jobs as ray_backend
    from bench.experiments import sweep
    from bench.experiments.trials import SweepSpec
    from bench.run.store import RunStore

    store = RunStore(root=tmp_path / "runs")
    assert not store.local
    monkeypatch.setattr(store, "_experiment", lambda task: "0")  # the driver's one call: the trials go on to fail
    spec = SweepSpec.build("image", "digits", "mlp", {"activation": ["relu", "tanh"]}, seeds=(0,),
                           train_overrides={"epochs": 1}, max_samples=100)  # fmt: skip
    ray_temp = ray_backend.temp_dir(ray_backend.runs_root(store))
    before = set(ray_temp.glob("session_*"))
    summary = sweep.run_sweep(spec, backend="ray", store=store)
    assert len(summary["trials"]) == 2
    for t in summary["trials"]:
        assert t["status"] == "failed" and "unreachable" in t["error"] and not leaks(t["error"]), t
    tune_dir = ray_backend.runs_root(store) / "ray-tune" / f"sweep-{spec.sweep_id}"
    params = list(tune_dir.rglob("params.json"))
    assert len(params) == 2, f"no trial params.json under {tune_dir}"
    searched = [p for p in tune_dir.rglob("*") if p.is_file()]
    sessions = [d for d in ray_temp.glob("session_*") if d not in before and not d.is_symlink()]
    assert sessions, f"no new Ray session under {ray_temp}"
    searched += [p for d in sessions for p in d.rglob("*")  # Ray's own logs: runtime env, workers, GCS
                 if p.is_file() and not p.is_symlink() and p.stat().st_size < 50_000_000]  # fmt: skip
    found = [str(p) for p in searched if any(w.encode() in p.read_bytes() for w in ("s3cret", "alice:"))]
    assert not found, found


# ------------------------------------------------------------------------------------------------ CLI


def run_cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": SECRET_URI, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
           "NEURALBENCH_RUNS": str(tmp_path / "runs"), "MLFLOW_TRACKING_PASSWORD": "hunter22pw"}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


@pytest.mark.parametrize("args", [
    ("image", "--dataset", "digits", "--models", "majority"),
    ("sweep", "--task", "image", "--dataset", "digits", "--model", "mlp", "--grid", "activation=relu",
     "--epochs", "1", "--max-samples", "100", "--backend", "local"),
    ("predict", "--run", "ab" * 16, "--csv", "{texts}"),
], ids=["train", "sweep", "predict-texts"])  # fmt: skip
def test_cli_errors_name_no_credential(args, tmp_path) -> None:
    (tmp_path / "texts.txt").write_text("great flight\nawful delay\n")
    out = run_cli(*(a.format(texts=tmp_path / "texts.txt") for a in args), tmp_path=tmp_path)
    assert out.returncode != 0
    both = out.stdout + out.stderr
    assert not leaks(both) and "hunter22pw" not in both, [line for line in both.splitlines() if leaks(line)][:5]
    last = out.stderr.strip().splitlines()
    assert any(line.startswith(("error:", "cannot load run")) and "unreachable" in line for line in last), last[-5:]


# ------------------------------------------------------------------------------------------ redact()


@pytest.mark.parametrize(("text", "shown"), [
    ("API request to http://alice:s3cret@127.0.0.1:9/api/2.0/x failed", "API request to http://***@127.0.0.1:9/api/2.0/x failed"),
    ("see https://tok_123@host/path", "see https://***@host/path"),
    ("ftp://u:p@ss@host/f", "ftp://***@host/f"),  # an '@' inside the password
    ("'https://user:pw@h:5000'", "'https://***@h:5000'"),
    ("GET https://h/api?access_token=abc&x=1&api_key=zz#top", "GET https://h/api?access_token=***&x=1&api_key=***#top"),
    ("u?token=t1&password=p2&secret=s3&key=k4&n=5", "u?token=***&password=***&secret=***&key=***&n=5"),
    ('headers {"Authorization": "Bearer abc.def-ghi"}', 'headers {"Authorization": "Bearer ***"}'),
    ("Authorization: Basic YWxpY2U6czNjcmV0", "Authorization: Basic ***"),
    ("sent bearer eyJhbGciOi.x.y", "sent bearer ***"),
    ("MLFLOW_TRACKING_PASSWORD=s3cret MLFLOW_TRACKING_TOKEN=tok1 next", "MLFLOW_TRACKING_PASSWORD=*** MLFLOW_TRACKING_TOKEN=*** next"),
    ("env {'MLFLOW_TRACKING_PASSWORD': 's3 cret', 'n': 1}", "env {'MLFLOW_TRACKING_PASSWORD': '***', 'n': 1}"),
    ("AWS_SECRET_ACCESS_KEY=abc123 api_key: \"xyz\"", "AWS_SECRET_ACCESS_KEY=*** api_key: \"***\""),
])  # fmt: skip
def test_redact_scrubs_credentials_inside_longer_texts(text, shown) -> None:
    assert redact(text) == shown
    assert redact(shown) == shown  # idempotent


@pytest.mark.parametrize("text", [
    "sqlite:////home/u/runs/mlflow.db", "http://127.0.0.1:5000/api", "write to bob@example.com",
    "max_tokens=5, tokens: 3, key=runs.dl", "the password is wrong", "Basic settings", "db at /secret/path is locked",
    "HTTPConnectionPool(host='127.0.0.1', port=9)", "",
])  # fmt: skip
def test_redact_leaves_ordinary_text_alone(text) -> None:
    assert redact(text) == text


def test_redact_scrubs_secret_values_of_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter22pw")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://bob:pa55word99@mlflow.example")
    assert redact("login failed for hunter22pw / pa55word99") == "login failed for *** / ***"


def test_redact_is_linear_on_hostile_text() -> None:
    import time

    for text in ("a." * 200_000, "http://" * 60_000, "?" + "pass" * 100_000, "password='" * 40_000):
        t0 = time.perf_counter()
        redact(text)
        assert time.perf_counter() - t0 < 5, text[:20]


def test_redact_uri_keeps_its_shape() -> None:
    assert redact_uri(SECRET_URI) == "http://***@127.0.0.1:9"
    assert redact_uri("https://h/x?access_token=abc&x=1") == "https://h/x?access_token=***&x=1"


def test_log_records_and_warnings_are_redacted(caplog) -> None:
    install_log_redaction()
    log = logging.getLogger("tests.credentials")
    with caplog.at_level(logging.INFO):
        log.info("connecting to %s", SECRET_URI)
        try:
            raise ConnectionError(f"API request to {SECRET_URI}/api failed")
        except ConnectionError:
            log.exception("store failed")
    assert "http://***@127.0.0.1:9" in caplog.text and "store failed" in caplog.text
    assert "ConnectionError" in caplog.text  # the traceback is kept, only the credential goes
    assert not leaks(caplog.text)
    printed = warnings.formatwarning(f"slow server {SECRET_URI}", UserWarning, "mlflow/x.py", 1)  # what is printed
    assert "UserWarning: slow server http://***@127.0.0.1:9" in printed and not leaks(printed)


def test_store_params_and_abort_reasons_are_redacted(tmp_path) -> None:
    """Run parameters and tags written to MLflow hold no credential (e.g. a data source URL with a token)."""
    from bench.run.store import RunStore

    store = RunStore(root=tmp_path)
    run_id = store.start("image", "digits", 0, {"data_source": "https://u:pw@data.example/x.csv?token=abc"})
    store.abort(run_id, "FAILED", f"MlflowException: API request to {SECRET_URI} failed")
    run = store.client.get_run(run_id)
    assert run.data.params["data_source"] == "https://***@data.example/x.csv?token=***"
    assert run.data.tags["neuralbench.abort_reason"] == "MlflowException: API request to http://***@127.0.0.1:9 failed"


def test_claims_report_html_is_redacted() -> None:
    import pandas as pd

    from bench.experiments.report import render_html

    page = render_html(f"Report {SECRET_URI}", [f"store {SECRET_URI}"], [
        {"title": "t", "paragraphs": [f"Not measured: {SECRET_URI}"],
         "tables": {"x": pd.DataFrame({"source": [f"{SECRET_URI}/a"], "n": [1.0]})}}])  # fmt: skip
    assert not leaks(page.replace("aliceblue", "")) and "http://***@127.0.0.1:9" in page  # plotly.js names aliceblue
