"""Every sentiment model on the fast path (parametrized from the registry), save/load round trips, the hub model
with a monkeypatched client, length bucketing, text SHAP, prediction of hostile input, and the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from bench.tasks import get_task
from bench.tasks.sentiment import estimators as bt
from data.text import load_tweets
from models import text as mt
from models.config import ConfigError, TrainConfig

TASK = get_task("sentiment")
OFFLINE_MODELS = [m for m in TASK.models if m != "hub_sst2"]
# the fast path: a few hundred tweets, short sequences, one epoch, only the top MiniLM layer trained
FAST = {
    "minilm": {"max_length": 32, "train_layers": 1, "max_train_samples": 96, "lr": 2e-4},
    "minilm_frozen": {"max_length": 32, "epochs": 15},
    "scratch": {"max_length": 32, "epochs": 6},
}
FAST_TRAIN = TrainConfig(batch_size=32, epochs=1, lr=1e-3, patience=2, val_fraction=0.1, bf16=False)


class Ctx:
    def __init__(self, split) -> None:
        self.data = split


@pytest.fixture(scope="module")
def tiny_tweets():
    """300 training tweets (stratified, grouped by text) and 75 test tweets."""
    return load_tweets(seed=0, max_samples=300, test_samples=75)


@pytest.fixture(scope="module")
def fitted(tiny_tweets, tmp_path_factory):
    """Every offline model fitted once on the tiny tweets (module-scoped: MiniLM is the slow one)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bt, "CACHE", tmp_path_factory.mktemp("cache"))  # embeddings cache away from the repository
        out = {}
        for name in OFFLINE_MODELS:
            spec = TASK.models[name]
            cfg = dataclasses.replace(spec.default_config("tweets"), **FAST.get(name, {}))
            est = spec.factory(cfg, FAST_TRAIN, 0, Ctx(tiny_tweets))
            out[name] = est.fit(tiny_tweets.X_train, tiny_tweets.y_train)
        yield out


@pytest.mark.parametrize("name", OFFLINE_MODELS)
def test_model_fast_path_predicts_and_round_trips(name, fitted, tiny_tweets, tmp_path) -> None:
    est = fitted[name]
    proba = est.predict_proba(tiny_tweets.X_test) if hasattr(est, "predict_proba") else None
    pred = est.predict(tiny_tweets.X_test)
    assert pred.shape == tiny_tweets.y_test.shape
    if proba is not None:
        assert proba.shape == (len(tiny_tweets.y_test), 3)
        np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-4)
        np.testing.assert_array_equal(proba.argmax(1), pred)
    acc = float((pred == tiny_tweets.y_test).mean())
    majority = float((tiny_tweets.y_test == np.bincount(tiny_tweets.y_train).argmax()).mean())
    family = TASK.models[name].family
    if family == "naive":
        assert acc == pytest.approx(majority)
    elif name in ("tfidf_lr", "tfidf_nb", "tfidf_svm"):
        assert acc > majority + 0.05, f"{name}: {acc:.3f} vs majority {majority:.3f}"
    else:
        assert acc > 1 / 3, f"{name} is not above chance: {acc:.3f}"
    est.save(tmp_path / name)
    loaded = bt.load_text_model(tmp_path / name) if name != "majority" else type(est).load(tmp_path / name)
    np.testing.assert_array_equal(loaded.predict(tiny_tweets.X_test), pred)


def test_neural_models_learn_and_record_history(fitted) -> None:
    for name in ("minilm", "minilm_frozen", "scratch"):
        est = fitted[name]
        assert est.history_, name
        assert est.n_val_ > 0 and est.n_train_ > 0
    scratch = fitted["scratch"].history_
    assert scratch[-1].train_loss < scratch[0].train_loss, "the from-scratch net does not learn"
    minilm = fitted["minilm"]
    assert minilm.n_train_ + minilm.n_val_ == 96  # the MiniLM training subset is honoured
    trainable = {n for n, p in minilm.model_.named_parameters() if p.requires_grad}
    assert all(".layer.5." in n or n.startswith("head") for n in trainable), "only the top layer + head train"


def test_minilm_weights_that_do_not_match_the_config_are_refused(fitted, tmp_path) -> None:
    est = fitted["minilm"]
    est.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["config"]["train_layers"] = 2  # the saved tensors hold one layer only
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="do not match"):
        bt.load_text_model(tmp_path / "m")


def test_minilm_embeddings_setting_and_old_runs_still_load(tmp_path) -> None:
    """All layers fine-tuned: the embedding layer trains too unless train_embeddings is off; a run saved before
    the setting existed (embeddings trained and saved) still loads, with its fine-tuned embeddings."""
    frozen = bt.TextNeuralClassifier("minilm", mt.MiniLMConfig(train_layers=6, train_embeddings=False))
    frozen.model_ = frozen._build(3)
    trainable = {n for n, p in frozen.model_.named_parameters() if p.requires_grad}
    assert ".layer.0." in " ".join(trainable) and not any("embeddings" in n for n in trainable)
    old = bt.TextNeuralClassifier("minilm", mt.MiniLMConfig(train_layers=6))
    old.model_, old.n_classes_, old.n_train_, old.n_val_ = old._build(3), 3, 10, 0
    assert old.model_.encoder.embeddings.word_embeddings.weight.requires_grad
    with torch.no_grad():
        old.model_.encoder.embeddings.word_embeddings.weight[5].fill_(0.5)  # "fine-tuned"
    old.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["config"].pop("train_embeddings") is True  # as written before the setting existed
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    loaded = bt.load_text_model(tmp_path / "m")
    assert loaded.config.train_embeddings is True
    assert torch.all(loaded.model_.encoder.embeddings.word_embeddings.weight[5] == 0.5)


def test_unknown_saved_kind_is_refused(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"kind": "text", "name": "os.system"}))
    with pytest.raises(ConfigError, match="unknown text model"):
        bt.load_text_model(tmp_path)


def test_vader_rule_and_fallback_regression(tiny_tweets) -> None:
    rule = bt.VaderClassifier(class_names=["negative", "neutral", "positive"]).fit(
        tiny_tweets.X_train, tiny_tweets.y_train
    )
    pred = rule.predict(np.array(["I love it, wonderful!", "This is terrible and awful", "The bus is at 5"]))
    assert list(pred) == [2, 0, 1]
    assert rule.n_params == 0 and "rule" in rule.method
    other = bt.VaderClassifier(class_names=["a", "b", "c"]).fit(tiny_tweets.X_train, tiny_tweets.y_train)
    assert other.regression_ is not None and "logistic regression" in other.method


def test_length_bucketing_is_a_permutation_with_sorted_batches() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, size=1003)
    order = bt.bucket_order(lengths, 32, chunk_batches=4)(torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(1003))
    batches = order[: (1003 // 32) * 32].view(-1, 32)
    for b in batches:  # every full batch comes from one sorted chunk: lengths non-decreasing
        lens = lengths[b.numpy()]
        assert np.all(np.diff(lens) >= 0)
    padded = sum(lengths[b.numpy()].max() * 32 for b in batches)
    random_padded = sum(lengths[p].max() * 32 for p in rng.permutation(1003)[: len(batches) * 32].reshape(-1, 32))
    assert padded < 0.8 * random_padded, "bucketing should cut the padding a lot"


def test_dynamic_padding_trims_each_batch() -> None:
    ids = torch.tensor([[101, 5, 6, 102, 0, 0, 0, 0], [101, 7, 102, 0, 0, 0, 0, 0]])
    trimmed, mask = mt.trim(ids)
    assert trimmed.shape == (2, 4) and mask.sum().item() == 7


def test_hub_model_offline_is_unavailable_with_the_reason(monkeypatch, tiny_tweets) -> None:
    def unreachable(url, timeout):
        raise OSError("network is unreachable")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(bt.urllib.request, "urlopen", unreachable)
    ok, reason = bt.hub_availability()
    assert not ok and "not reachable" in reason
    est = bt.HubSentimentClassifier(class_names=tiny_tweets.class_names)
    with pytest.raises(ConfigError, match="unavailable"):
        est.fit(tiny_tweets.X_train, tiny_tweets.y_train)


def test_hub_model_online_maps_sst2_onto_three_classes(monkeypatch) -> None:
    class FakeTokenizer:
        def __call__(self, texts, **kwargs):
            return {"n": torch.tensor([len(t) for t in texts])}

    class FakeModel(torch.nn.Module):
        config = type("C", (), {"id2label": {0: "NEGATIVE", 1: "POSITIVE"}})()

        def forward(self, n):
            # long texts: confidently positive; short ones: unsure
            logits = torch.stack([torch.zeros(len(n)), torch.where(n > 10, 5.0, 0.1)], 1)
            return type("O", (), {"logits": logits})()

    monkeypatch.setattr(bt, "hub_availability", lambda model_id=None, timeout=3.0: (True, "reachable"))
    monkeypatch.setattr(bt, "load_hub_model", lambda model_id: (FakeTokenizer(), FakeModel()))
    est = bt.HubSentimentClassifier(class_names=["negative", "neutral", "positive"])
    est.fit(np.array(["x"], dtype=object), np.array([0, 1, 2]))
    pred = est.predict(np.array(["a long happy sentence", "meh"], dtype=object))
    assert list(pred) == [2, 1]  # confident -> positive; unsure -> neutral


def test_text_shap_linear_is_additive_and_partition_explains_tokens(fitted, tiny_tweets) -> None:
    from bench.core.explain import ExplanationUnavailable, explain_text

    lr = fitted["tfidf_lr"]
    text = "worst airline ever, rude staff and a lost bag"
    out = explain_text(lr, text, background=tiny_tweets.X_train)
    logits = lr.pipeline_.decision_function([text])[0]
    np.testing.assert_allclose(out["values"].sum(0) + out["other"] + out["base_values"], logits, atol=1e-4)
    assert [t.strip() for t in out["tokens"]][:2] == ["worst", "airline"]
    nb = explain_text(fitted["tfidf_nb"], text)
    assert nb["values"].shape == (len(nb["tokens"]), 3)
    # Partition SHAP is additive in probability: base + sum of token values = the model's output
    np.testing.assert_allclose(nb["base_values"] + nb["values"].sum(0), nb["proba"], atol=1e-3)
    with pytest.raises(ExplanationUnavailable):
        explain_text(lr, "   ")


def test_hostile_texts_are_predicted_safely(fitted) -> None:
    texts = np.array(
        ["<script>alert(1)</script> great", "x" * 5_000_000, '=HYPERLINK("http://evil")', ""], dtype=object
    )
    frame = bt.predict_texts({"tfidf_lr": fitted["tfidf_lr"], "minilm": fitted["minilm"]}, texts,
                             ["negative", "neutral", "positive"])  # fmt: skip
    assert len(frame) == 4
    assert frame["text"].str.len().max() <= 1000  # capped before tokenising
    assert set(frame["minilm: prediction"]) <= {"negative", "neutral", "positive"}


def test_cli_sentiment_then_predict_from_the_stored_run(tmp_path, capsys) -> None:
    from bench.cli.main import main

    report_path = tmp_path / "r.json"
    rc = main(["sentiment", "--dataset", "tweets", "--models", "tfidf_lr,vader,majority", "--max-samples", "300",
               "--json", str(report_path)])  # fmt: skip
    assert rc == 0
    report = json.loads(report_path.read_text())
    assert report["task"] == "sentiment" and {m["name"] for m in report["models"]} == {"tfidf_lr", "vader", "majority"}
    assert report["class_names"] == ["negative", "neutral", "positive"]
    texts = tmp_path / "texts.csv"
    texts.write_text('id,text\n1,"I love this, best day ever"\n2,=cmd|calc\n')
    out_json, out_csv = tmp_path / "p.json", tmp_path / "p.csv"
    rc = main(["predict", "--run", report["run_id"], "--csv", str(texts), "--text-col", "text", "--json", str(out_json),
               "--out-csv", str(out_csv)])  # fmt: skip
    assert rc == 0
    preds = json.loads(out_json.read_text())["predictions"]
    assert len(preds) == 2 and preds[0]["TF-IDF + logistic regression: prediction"] == "positive"
    assert "'=cmd|calc" in out_csv.read_text()
    rc = main(["predict", "--run", report["run_id"], "--csv", str(texts), "--model", "nope"])
    assert rc == 2 and "no model" in capsys.readouterr().err
    rc = main(["predict", "--run", "../../etc", "--csv", str(texts)])
    assert rc == 2
