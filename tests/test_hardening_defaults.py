"""SECURITY.md safe defaults (`.streamlit/config.toml`) and item 26 (SHAP bounded in size AND in time)."""

from __future__ import annotations

import contextlib
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from bench.core import explain

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
        f"import os; os.chdir({str(ROOT)!r})\n"
        "from streamlit import config\n"
        "config.get_config_options(force_reparse=True)\n"
        "print(config.get_option('server.enableXsrfProtection'), config.get_option('client.showErrorDetails'),"
        " config.get_option('server.maxUploadSize'), config.get_option('browser.gatherUsageStats'))\n"
    )
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
        self.calls += len(X)
        time.sleep(0.005 * len(X))  # 5 ms a text (shap sends batches of up to 64)
        return np.tile([0.3, 0.7], (len(X), 1))


def test_a_text_explanation_stops_at_its_time_limit(monkeypatch) -> None:
    monkeypatch.setattr(explain, "MAX_EXPLAIN_SECONDS", 0.5)
    model = _SlowText()
    with pytest.raises(explain.ExplanationTimeout, match=r"stopped after its limit of 0\.5 s"):
        explain.explain_text(model, " ".join(f"word{i}" for i in range(200)))
    # 0.5 s at 5 ms a text is about 100 texts, plus one batch of 64 that started before the deadline; unbounded,
    # the 200 words take about 400 texts (2 s)
    assert model.calls <= 100 + 64 + 1


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


def test_mlflow_never_unpickles_even_when_the_environment_asks_for_it() -> None:
    """An inherited MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true is overridden when the run store is imported."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    code = "import bench.run.store, os; print(os.environ['MLFLOW_ALLOW_PICKLE_DESERIALIZATION'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "false", out.stderr


def test_transformers_loads_only_safetensors_and_no_remote_code(monkeypatch) -> None:
    """SECURITY.md item 19 for the transformers side: every from_pretrained call of the text models passes
    trust_remote_code=False (and use_safetensors=True where weights are read)."""
    import transformers

    from bench.tasks.sentiment import estimators as bt
    from models import text as mt

    calls: list[tuple[str, dict]] = []

    def recorder(cls_name: str, real):
        def from_pretrained(*args, **kwargs):
            calls.append((cls_name, kwargs))
            return real(*args, **kwargs)

        return from_pretrained

    for cls_name in ("AutoModel", "AutoTokenizer", "AutoConfig"):
        cls = getattr(transformers, cls_name)
        monkeypatch.setattr(cls, "from_pretrained", recorder(cls_name, cls.from_pretrained))
    mt.tokenizer.cache_clear()
    try:
        mt.tokenizer()
        mt.load_minilm_encoder(pretrained=True)
        mt.load_minilm_encoder(pretrained=False)
    finally:
        mt.tokenizer.cache_clear()
    hub: list[dict] = []
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: hub.append(k) or None)
    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained",
                        lambda *a, **k: hub.append(k) or None)  # fmt: skip
    with contextlib.suppress(AttributeError):  # the fake returns None (no .eval()); only the arguments matter
        bt.load_hub_model("distilbert-test")
    assert {c for c, _ in calls} == {"AutoModel", "AutoTokenizer", "AutoConfig"}
    assert all(k.get("trust_remote_code") is False for _, k in calls), calls
    assert all(k.get("use_safetensors") is True for c, k in calls if c == "AutoModel"), calls
    assert hub and all(k.get("trust_remote_code") is False for k in hub), hub
    assert any(k.get("use_safetensors") is True for k in hub), hub


def test_a_text_longer_than_the_model_window_is_truncated_not_refused() -> None:
    """SECURITY.md item 14: 5,000 punctuation marks (about 1,000 tokens after the character cap, above MiniLM's
    512) become at most max_length ids, through the same encode every MiniLM model uses."""
    from data.text import clean_text
    from models import text as mt

    ids = mt.encode([clean_text("! " * 5000)], max_length=64)
    assert ids.shape == (1, 64) and (ids != mt.PAD_ID).sum() == 64
    raw = mt.tokenizer()(clean_text("! " * 5000))["input_ids"]
    assert len(raw) > 64  # the text really was longer than the window
