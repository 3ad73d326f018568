"""SECURITY.md item 19: a stored scikit-learn model of ANY kind in the registry cannot run code when it is loaded.

The attack (issue 15, reproduced on the earlier prefix rule `sklearn.` / `numpy.` / `scipy.sparse.`): a
`model.skops` whose pipeline chains numpy.full_like -> numpy.min -> numpy.savetxt loads, and pressing Predict
writes an attacker-chosen file. Here that chain is planted into a real stored run, for every model of every task
whose stored form is scikit-learn (parametrized over the registry: a new model is covered without a new test),
and loaded the way the pages and the CLI load it (RunStore.load_model). It must be refused before anything runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from bench.run.store import RunStore
from bench.tasks import REGISTRY
from models.config import ConfigError
from models.io import load_skops, skops_model_names, skops_types
from tests.helpers import bench_run

ROOT = Path(__file__).resolve().parent.parent
# The data each task's models are trained on here (tiny, bundled); a new task adds its line or is skipped loudly.
TINY = {"image": ("digits", 300), "sentiment": ("tweets", 240)}


def _sklearn_models() -> list[tuple[str, str]]:
    """(task, model) for every registry model that is not a torch module and not a hub download."""
    out = []
    for task in REGISTRY.values():
        for name, spec in task.models.items():
            if spec.family == "neural" or name.startswith("hub_"):
                continue
            out.append((task.name, name))
    return out


SKLEARN_MODELS = [p for p in _sklearn_models() if p[0] in TINY]


def file_writing_chain(target: Path) -> Pipeline:
    """full_like(X, target) -> min -> savetxt(target, content): writes `target` when the pipeline predicts."""
    return Pipeline([
        ("a", FunctionTransformer(np.full_like, kw_args={"fill_value": str(target), "dtype": object})),
        ("b", FunctionTransformer(np.min)),
        ("c", FunctionTransformer(np.savetxt, kw_args={"X": np.array([[6.0, 6.0, 6.0]])})),
        ("clf", LogisticRegression().fit([[0.0], [1.0]], [0, 1])),  # fitted, so the pipeline counts as fitted
    ])  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    return RunStore(root=tmp_path_factory.mktemp("skops-store"))


@pytest.fixture(scope="module")
def runs(store) -> dict[str, str]:
    """One finished run per task with all of its scikit-learn models (fast path)."""
    out = {}
    for task, (dataset, n) in TINY.items():
        models = [m for t, m in SKLEARN_MODELS if t == task]
        report = bench_run(task, dataset, models, store=store, max_samples=n)
        out[task] = report["run_id"]
    return out


def _model_dir(store: RunStore, run_id: str, name: str) -> Path:
    artifacts = store.client.get_run(run_id).info.artifact_uri.removeprefix("file://")
    return Path(artifacts) / "models" / name


def test_the_registry_has_scikit_learn_models_of_every_task() -> None:
    tasks = {t for t, _ in _sklearn_models()}
    assert tasks - set(TINY) <= {"forecast"}, f"add tiny data for {tasks - set(TINY)} to TINY"
    assert {"logreg", "svm", "rf", "knn", "embed_lr", "tfidf_lr", "tfidf_svm", "tfidf_nb", "vader"} <= {
        m for _, m in SKLEARN_MODELS
    }


@pytest.mark.parametrize(("task", "name"), SKLEARN_MODELS, ids=[f"{t}-{m}" for t, m in SKLEARN_MODELS])
def test_a_planted_file_writing_pipeline_is_refused(store, runs, tmp_path, task, name) -> None:
    run_id = runs[task]
    target = tmp_path / "written-by-the-model.txt"
    folder = _model_dir(store, run_id, name)
    assert (folder / "config.json").is_file(), f"{name} was not stored"
    genuine = sorted(folder.glob("*.skops"))
    # every skops file the model really stores is replaced; a model that stores none (VADER's rule) gets the
    # files its loader would read planted beside its config, which must be ignored or refused just the same
    planted = genuine or [folder / "model.skops", folder / "regression.skops"]
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    try:
        for path in planted:
            sio.dump(file_writing_chain(target), path)
        assert "numpy.savetxt" in skops_types(planted[0])
        refused = None
        try:
            est = store.load_model(run_id, name)
        except ConfigError as exc:
            refused = exc
        else:  # loaded: predict as the page would (that is when the chain writes its file)
            X = np.array(["a text", "another"], dtype=object) if task == "sentiment" else np.zeros((2, 1, 8, 8))
            with contextlib.suppress(Exception):
                est.predict(X)
        assert not target.exists(), f"{name}: the planted pipeline wrote a file"
        if genuine:
            assert refused is not None and re.search(r"allow-list.*numpy\.(full_like|min|savetxt)", str(refused))
        assert not target.exists(), f"loading {name} ran the planted pipeline"
    finally:
        shutil.rmtree(folder)
        shutil.copytree(backup, folder)


@pytest.mark.parametrize(("task", "name"), SKLEARN_MODELS, ids=[f"{t}-{m}" for t, m in SKLEARN_MODELS])
def test_every_stored_scikit_learn_model_still_loads(store, runs, task, name) -> None:
    """The allow-lists are exact, not empty: each genuine stored model loads and predicts."""
    est = store.load_model(runs[task], name)
    X = np.array(["good day", "awful"], dtype=object) if task == "sentiment" else np.zeros((2, 1, 8, 8), np.float32)
    assert len(est.predict(X)) == 2


def test_another_models_pipeline_is_refused_under_a_name(tmp_path) -> None:
    """Allowed types only, but not what the named model is: an embed_lr pipeline stored as tfidf_lr."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(np.random.rand(20, 3), np.arange(20) % 2)
    sio.dump(pipe, tmp_path / "m.skops")
    with pytest.raises(ConfigError, match="allow-list"):
        load_skops(tmp_path / "m.skops", "tfidf_lr")
    with pytest.raises(ConfigError, match="no stored scikit-learn model"):
        load_skops(tmp_path / "m.skops", "not-a-model")


def test_every_allow_list_names_only_scikit_learn_classes() -> None:
    """No function, no module prefix: every allowed non-container type is a scikit-learn class name."""
    from models.io import SKOPS_COMMON_TYPES, skops_allowed

    for name in skops_model_names():
        own = skops_allowed(name) - SKOPS_COMMON_TYPES
        assert own and all(t.startswith("sklearn.") and t.rsplit(".", 1)[1][0].isupper() for t in own), (name, own)


def test_the_sentiment_cli_refuses_a_planted_model(store, runs, tmp_path) -> None:
    """Through `python -m bench predict`, the path a command-line user takes."""
    run_id = runs["sentiment"]
    target = tmp_path / "cli-written.txt"
    folder = _model_dir(store, run_id, "tfidf_lr")
    saved = (folder / "model.skops").read_bytes()
    texts = tmp_path / "texts.txt"
    texts.write_text("what a lovely day\nthis is awful\n")
    sio.dump(file_writing_chain(target), folder / "model.skops")
    try:
        env = {**os.environ, "NEURALBENCH_RUNS": str(store.root)}
        out = subprocess.run(
            [sys.executable, "-m", "bench", "predict", "--run", run_id, "--model", "tfidf_lr", "--csv", str(texts)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode != 0
        assert "allow-list" in out.stderr + out.stdout
        assert "Traceback" not in out.stderr
        assert not target.exists()
    finally:
        (folder / "model.skops").write_bytes(saved)
