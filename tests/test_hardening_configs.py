"""SECURITY.md item 20: a stored config with absurd or missing fields is refused with ConfigError when it is read,
before anything is allocated from it (issue 15: `n_classes=2e7` used to allocate 640 MB, then fail raw)."""

from __future__ import annotations

import json
import resource
import shutil
from pathlib import Path

import pytest

from bench.run.store import RunStore
from models.config import ConfigError, TrainConfig
from models.io import check_meta
from tests.helpers import bench_run


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[RunStore, str]:
    store = RunStore(root=tmp_path_factory.mktemp("config-store"))
    report = bench_run("image", "digits", ["mlp", "logreg"], store=store, max_samples=200,
                       train_config=TrainConfig(epochs=1, batch_size=64))
    return store, report["run_id"]


def _folder(store: RunStore, run_id: str, name: str) -> Path:
    return Path(store.client.get_run(run_id).info.artifact_uri.removeprefix("file://")) / "models" / name


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"n_classes": 2e7}, "n_classes must be between"),
        ({"n_classes": 1e12}, "n_classes must be between"),
        ({"n_classes": -3}, "n_classes must be between"),
        ({"n_classes": "ten"}, "n_classes must be a whole number"),
        ({"in_shape": [1, 1e6, 1e6]}, "in_shape must be between"),
        ({"in_shape": [3, 4000, 4000]}, "values per input"),
        ({"in_shape": "1x8x8"}, "in_shape must be a list"),
        ({"config": [1, 2]}, "config must be a JSON object"),
        ({"__drop__": "n_classes"}, "damaged or incomplete"),
        ({"__drop__": "config"}, "damaged or incomplete"),
    ],
)
def test_absurd_or_missing_dimensions_are_refused_before_building(stored, tmp_path, edit, message) -> None:
    store, run_id = stored
    folder = _folder(store, run_id, "mlp")
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    meta = json.loads((folder / "config.json").read_text())
    if "__drop__" in edit:
        meta.pop(edit["__drop__"])
    else:
        meta.update(edit)
    (folder / "config.json").write_text(json.dumps(meta))
    before = _rss_mb()
    try:
        with pytest.raises(ConfigError, match=message):
            store.load_model(run_id, "mlp")
    finally:
        shutil.rmtree(folder)
        shutil.copytree(backup, folder)
    assert _rss_mb() - before < 100, "the refused config still allocated"
    store.load_model(run_id, "mlp")  # the restored genuine model loads


def test_an_oversized_or_broken_config_file_is_refused(stored, tmp_path) -> None:
    store, run_id = stored
    folder = _folder(store, run_id, "logreg")
    saved = (folder / "config.json").read_bytes()
    try:
        (folder / "config.json").write_bytes(b"{" * 10)
        with pytest.raises(ConfigError, match="not valid JSON"):
            store.load_model(run_id, "logreg")
        (folder / "config.json").write_bytes(b" " * (2 * 1024 * 1024))
        with pytest.raises(ConfigError, match="larger than"):
            store.load_model(run_id, "logreg")
    finally:
        (folder / "config.json").write_bytes(saved)


def test_plausible_configs_pass_unchanged() -> None:
    meta = {"kind": "neural", "n_classes": 10, "in_shape": [3, 224, 224], "in_dim": 384, "n_train": 30296, "seed": 0}
    assert check_meta(dict(meta)) == meta
