"""Classical baselines behind the same fit / predict interface as the neural models.

Saved with skops (no pickle) and loaded only when every type in the file is on the allow-list of its model name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from models.config import ConfigError, check_fields, config_from_dict, opt
from models.io import load_skops, read_meta, register_skops_model, skops_writer, write_model_folder

SUBSET_HELP = "Train on at most this many samples of the training split (0 = all); stated in the results"


@dataclass
class LogRegConfig:
    """Multinomial logistic regression on standardised pixels."""

    C: float = opt(0.05, "Inverse regularisation strength", min=1e-6, max=1e6)
    max_iter: int = opt(300, "Maximum solver iterations", min=10, max=10000)
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class SVMConfig:
    """Support vector machine with an RBF kernel on pixels in [0, 1]."""

    C: float = opt(5.0, "Penalty of the error term", min=1e-6, max=1e6)
    gamma: str = opt("scale", "Kernel coefficient", choices=("scale", "auto"))
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class RFConfig:
    """Random forest of fully grown trees."""

    n_estimators: int = opt(200, "Number of trees", min=1, max=2000)
    max_depth: int = opt(0, "Maximum tree depth (0 = unlimited)", min=0, max=1000)
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class KNNConfig:
    """k nearest neighbours in pixel space."""

    n_neighbors: int = opt(3, "Number of neighbours", min=1, max=200)
    weights: str = opt("distance", "Vote weighting", choices=("uniform", "distance"))
    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class MajorityConfig:
    """Always predicts the most frequent class of the training split (the naive floor)."""

    max_train_samples: int = opt(0, SUBSET_HELP, min=0)

    def __post_init__(self) -> None:
        check_fields(self)


def _build(name: str, cfg: Any, seed: int) -> BaseEstimator:
    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=cfg.C, max_iter=cfg.max_iter, random_state=seed))
    if name == "svm":
        return SVC(C=cfg.C, gamma=cfg.gamma, kernel="rbf", random_state=seed)
    if name == "rf":
        return RandomForestClassifier(
            n_estimators=cfg.n_estimators, max_depth=cfg.max_depth or None, n_jobs=-1, random_state=seed
        )
    if name == "knn":
        return KNeighborsClassifier(n_neighbors=cfg.n_neighbors, weights=cfg.weights, n_jobs=-1)
    if name == "majority":
        return DummyClassifier(strategy="most_frequent")
    raise ConfigError(f"unknown classical model {name!r}")


CONFIGS: dict[str, type] = {
    "logreg": LogRegConfig,
    "svm": SVMConfig,
    "rf": RFConfig,
    "knn": KNNConfig,
    "majority": MajorityConfig,
}


class SklearnClassifier:
    """A scikit-learn classifier on flattened inputs, optionally fitted on a stratified subset."""

    def __init__(self, name: str, config: Any = None, seed: int = 0) -> None:
        if name not in CONFIGS:
            raise ConfigError(f"unknown classical model {name!r}")
        self.name = name
        self.config = config if config is not None else CONFIGS[name]()
        self.seed = seed
        self.family = "naive" if name == "majority" else "classical"

    def fit(self, X: np.ndarray, y: np.ndarray, callbacks: Any = ()) -> SklearnClassifier:
        """Fit on (a stratified subset of) the flattened training split."""
        X2 = X.reshape(len(X), -1)
        cap = self.config.max_train_samples
        if cap and cap < len(y):
            X2, _, y, _ = train_test_split(X2, y, train_size=cap, random_state=self.seed, stratify=y)
        self.n_train_ = len(y)
        self.n_val_ = 0
        self.history_: list = []
        self.estimator_ = _build(self.name, self.config, self.seed).fit(X2, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class indices, shape (N,)."""
        return self.estimator_.predict(X.reshape(len(X), -1))

    @property
    def n_params(self) -> int:
        """Learned numbers the model keeps (coefficients, support vectors, tree nodes, stored samples)."""
        est = self.estimator_
        if self.name == "logreg":
            lr = est[-1]
            return int(lr.coef_.size + lr.intercept_.size)
        if self.name == "svm":
            return int(est.support_vectors_.size + est.dual_coef_.size + est.intercept_.size)
        if self.name == "rf":
            return int(sum(t.tree_.node_count for t in est.estimators_))
        if self.name == "knn":
            return int(est.n_samples_fit_ * est.n_features_in_)
        return len(est.classes_)

    def save(self, folder: str | Path) -> None:
        """Write `config.json` and `model.skops` into `folder`."""
        meta = {"kind": "classical", "name": self.name, "config": dataclasses.asdict(self.config), "seed": self.seed}
        write_model_folder(folder, meta, writers={"model.skops": skops_writer(self.estimator_)})

    @classmethod
    def load(cls, folder: str | Path) -> SklearnClassifier:
        """Load from skops, trusting only the types this model name is made of, then check the estimator's type."""
        folder = Path(folder)
        meta = read_meta(folder)
        name = meta.get("name")
        if name not in CONFIGS:
            raise ConfigError(f"unknown classical model {name!r} in saved config")
        est = cls(name, config_from_dict(CONFIGS[name], meta["config"]), int(meta.get("seed", 0)))
        estimator = load_skops(folder / "model.skops", name)
        est.estimator_ = estimator
        est.history_ = []
        return est


# Every type a saved model of each name may contain besides models.io's containers and arrays (read from the
# file's schema before anything is loaded): a file that names anything else, e.g. a FunctionTransformer around
# numpy.save, is refused.
_LOGREG = ("sklearn.pipeline.Pipeline", "sklearn.preprocessing._data.StandardScaler",
           "sklearn.linear_model._logistic.LogisticRegression")  # fmt: skip
_RF = ("sklearn.ensemble._forest.RandomForestClassifier", "sklearn.tree._classes.DecisionTreeClassifier",
       "sklearn.tree._tree.Tree")  # fmt: skip
_KNN = ("sklearn.neighbors._classification.KNeighborsClassifier", "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree")  # fmt: skip
SKOPS_MODEL_TYPES: dict[str, frozenset[str]] = {
    "logreg": frozenset(_LOGREG),
    "svm": frozenset({"sklearn.svm._classes.SVC"}),
    "rf": frozenset(_RF),
    "knn": frozenset(_KNN),
    "majority": frozenset({"sklearn.dummy.DummyClassifier"}),
}
EXPECTED_TYPE: dict[str, Any] = {
    "logreg": lambda e: (
        isinstance(e, Pipeline) and [type(s) for _, s in e.steps] == [StandardScaler, LogisticRegression]
    ),
    "svm": lambda e: type(e) is SVC,
    "rf": lambda e: type(e) is RandomForestClassifier,
    "knn": lambda e: type(e) is KNeighborsClassifier,
    "majority": lambda e: type(e) is DummyClassifier,
}


for _name in CONFIGS:
    register_skops_model(_name, SKOPS_MODEL_TYPES[_name], EXPECTED_TYPE[_name])
