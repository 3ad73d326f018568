"""The contract every part of the engine shares, at the bottom of it (imports nothing else of bench):

- `BenchmarkRequest`: everything that defines one run (picklable: it travels to a worker process);
- `TaskSpec` / `DatasetSpec` / `ModelSpec` / `MetricSpec`: what a task declares about itself (bench/tasks/);
- `Evaluator`, `RunContext`, `ModelOutcome`: what differs by objective, and what it is handed and returns.

The runner (bench/run/runner.py) reads only these; each task's declaration fills them in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.config import TrainConfig

if TYPE_CHECKING:
    from bench.core.train import Callback


@dataclass(frozen=True)
class BenchmarkRequest:
    """Everything that defines one benchmark run; picklable, so it can be sent to a worker process.

    configs: model name -> config dataclass (missing models use their dataset defaults).
    train_config: the neural training config (None: the dataset's defaults).
    setup: the task's set-up dataclass (e.g. forecast horizon and window); None: the task's defaults.
    data_options: keyword arguments for the dataset loader (e.g. the path of a validated user upload).
    """

    task: str
    dataset: str
    models: tuple[str, ...]
    seed: int = 0
    configs: Mapping[str, Any] = field(default_factory=dict)
    train_config: TrainConfig | None = None
    max_samples: int = 0
    repeats: int = 1
    setup: Any = None
    data_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))


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
    # loader(folder) -> the fitted estimator saved there by its save(folder): how the run store, export and
    # prediction rebuild a stored model of this name. None: this model is not stored.
    loader: Callable[[Path], Any] | None = None

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
    # the command line: extra options of `python -m bench <task>`, and (dataset, setup, loader options) from them
    cli_arguments: Callable[[Any], None] | None = None
    cli_request: Callable[[Any], tuple[str, Any, dict[str, Any]]] | None = None

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




def always_available() -> tuple[bool, str]:
    """DatasetSpec.availability of bundled data: always there."""
    return True, "bundled"


@dataclass
class RunContext:
    """Everything an evaluator may need about the run in progress (built once by the runner)."""

    request: BenchmarkRequest
    spec: TaskSpec
    data: Any  # whatever the dataset loader returned (ImageSplit, TextSplit, a price series, ...)
    train_config: TrainConfig
    setup: Any = None  # the task's set-up dataclass (e.g. forecast horizon), None where the task has none
    callbacks_for: Callable[[str], list[Callback]] = field(default=lambda name: [])

    @property
    def seed(self) -> int:
        return self.request.seed


@dataclass
class ModelOutcome:
    """One fitted and scored model: the report entry, its test predictions and the estimator to store."""

    result: dict[str, Any]
    predictions: np.ndarray
    estimator: Any


@dataclass(frozen=True)
class MetricSpec:
    """What the engine knows about a metric: its key, a human label, its direction, its bounds, its format."""

    name: str
    label: str
    higher_is_better: bool = True
    bounds: tuple[float | None, float | None] = (None, None)  # intervals are cut to these (e.g. [0, 1])
    fmt: str = ".4f"  # how the command line and tables write it


class Evaluator:
    """Base class: one instance per objective, named by the task's registry entry."""

    objective: str = ""
    primary_metric: str = ""
    primary_label: str = ""
    higher_is_better: bool = True
    # every metric this objective reports per model (the primary one first): sweeps, comparisons and the run
    # store read these facts here, never from a table of their own
    metrics: tuple[MetricSpec, ...] = ()

    def metric(self, name: str) -> MetricSpec:
        """The facts of metric `name` (an unknown name: higher is better, unbounded)."""
        for m in self.metrics:
            if m.name == name:
                return m
        return MetricSpec(name, name.replace("_", " "))

    def fit_and_score(
        self, ctx: RunContext, mspec: ModelSpec, estimator: Any, callbacks: Sequence[Any]
    ) -> ModelOutcome:
        """Fit `estimator` on ctx.data and score it on the test part; `callbacks` go to neural training loops."""
        raise NotImplementedError

    def compare(self, ctx: RunContext, results: list[dict[str, Any]], predictions: dict[str, np.ndarray]) -> list[dict]:
        """Significance tests between models (best neural vs best baseline first)."""
        return []

    def report_fields(self, ctx: RunContext, results: list[dict[str, Any]]) -> dict[str, Any]:
        """Report keys that describe the data: split sizes, split note, data source, class names, ..."""
        return {}

    def leaderboard_rows(self, report: dict[str, Any]) -> list[dict[str, Any]]:
        """Flat rows for a table, best first."""
        raise NotImplementedError

    def headline(self, report: dict[str, Any]) -> dict[str, str]:
        """Who won, said plainly: {"level": "success" | "warning" | "info", "text": ...}."""
        raise NotImplementedError

    def leaderboard_text(self, report: dict[str, Any]) -> str:
        """The leaderboard as plain text (the command line prints it)."""
        rows = self.leaderboard_rows(report)
        if not rows:
            return "(no models)"
        cols = list(rows[0])
        return "\n".join(["  ".join(cols), *("  ".join(str(r.get(c, "")) for c in cols) for r in rows)])

    def score(self, result: dict[str, Any]) -> float:
        """The primary metric of one model's result (for ranking and the spread over seeds)."""
        return float(result["metrics"][self.primary_metric])

    def rank(self, results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Results best first by the primary metric (mean over seeds where there are several)."""
        sign = -1.0 if self.higher_is_better else 1.0

        def key(r: dict[str, Any]) -> float:
            m = r["metrics"]
            return sign * float(m.get(f"{self.primary_metric}_seed_mean") or m[self.primary_metric])

        return sorted(results, key=key)


