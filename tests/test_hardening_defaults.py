"""SECURITY.md safe defaults (`.streamlit/config.toml`) and item 26 (SHAP bounded in size AND in time)."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from bench import explain

ROOT = Path(__file__).resolve().parent.parent


def test_streamlit_config_has_the_safe_defaults() -> None:
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server, client, browser = cfg["server"], cfg["client"], cfg["browser"]
    assert server["headless"] is True
    assert server["enableXsrfProtection"] is True
    assert 1 <= server["maxUploadSize"] <= 200  # MB: what the app needs, not Streamlit's unbounded default use
    assert server["enableStaticServing"] is False
    assert server["fileWatcherType"] == "none"
    assert server.get("address") in ("127.0.0.1", "localhost")  # served to this machine unless asked otherwise
    assert client["showErrorDetails"] in (False, "none")
    assert client["toolbarMode"] == "viewer"
    assert browser["gatherUsageStats"] is False


def test_streamlit_reads_those_defaults() -> None:
    """The file is the one Streamlit really loads from the repository (not a look-alike elsewhere)."""
    import subprocess
    import sys

    code = (
        "import os; os.chdir(%r)\n"
        "from streamlit import config\n"
        "config.get_config_options(force_reparse=True)\n"
        "print(config.get_option('server.enableXsrfProtection'), config.get_option('client.showErrorDetails'),"
        " config.get_option('server.maxUploadSize'), config.get_option('browser.gatherUsageStats'))\n"
    ) % str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    xsrf, details, upload, stats = out.stdout.split()[-4:]
    assert (xsrf, details, stats) == ("True", "False", "False") or (xsrf, details, stats) == ("True", "none", "False")
    assert int(upload) <= 200


class _SlowText:
    """A text model that takes 50 ms per call: SHAP would call it hundreds of times."""

    name = "slow"
    family = "neural"

    calls = 0

    def predict_proba(self, X):
        self.calls += 1
        time.sleep(0.05)
        return np.tile([0.3, 0.7], (len(X), 1))


def test_a_text_explanation_stops_at_its_time_limit(monkeypatch) -> None:
    monkeypatch.setattr(explain, "MAX_EXPLAIN_SECONDS", 0.5)
    model = _SlowText()
    with pytest.raises(explain.ExplanationTimeout, match=r"stopped after its limit of 0\.5 s"):
        explain.explain_text(model, " ".join(f"word{i}" for i in range(200)))
    # 0.5 s of 50 ms calls (plus the prediction itself): the model is not called past the deadline; unbounded,
    # the 200 words would take about 400 calls
    assert model.calls <= 12


def test_a_long_text_is_explained_on_its_first_words_only(monkeypatch) -> None:
    class Fast(_SlowText):
        def predict_proba(self, X):
            return np.tile([0.3, 0.7], (len(X), 1))

    out = explain.explain_text(Fast(), " ".join(f"w{i}" for i in range(explain.MAX_TEXT_TOKENS * 4)))
    assert len(out["tokens"]) <= explain.MAX_TEXT_TOKENS + 2
    assert f"only the first {explain.MAX_TEXT_TOKENS} words" in out["method"]


def test_an_image_explanation_stops_at_its_time_limit(monkeypatch, tiny_mnist) -> None:
    import torch

    class Slow(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(784, 10)

        def forward(self, x):
            time.sleep(0.2)
            return self.lin(x.reshape(len(x), -1))

    class Est:
        family = "neural"
        model_ = Slow()

        def predict(self, X):
            return np.zeros(len(X), int)

    monkeypatch.setattr(explain, "MAX_EXPLAIN_SECONDS", 0.3)
    with pytest.raises(explain.ExplanationTimeout):
        explain.explain_images(Est(), tiny_mnist.X_train[:20], tiny_mnist.X_test[:2], nsamples=64)
