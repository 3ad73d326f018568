"""AppTest: the Runs page lists, filters, compares, exports (with the ONNX check shown) and deletes runs."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from bench.experiments.trials import run_once
from bench.run.store import RunStore
from models.config import TrainConfig
from models.nets import MLPConfig
from tests.conftest import ROOT

APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def two_runs() -> list[str]:
    store = RunStore()
    fast = TrainConfig(epochs=1, batch_size=64, patience=1)
    ids = []
    for neurons in (32, 64):
        rep = run_once("image", "digits", ["mlp", "majority"], seed=0, configs={"mlp": MLPConfig(neurons=neurons)},
                          train_config=fast, max_samples=300, store=store)
        ids.append(rep["run_id"])
    return ids


def runs_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception
    return at


def test_compare_two_runs_highlights_the_differing_setting(two_runs) -> None:
    at = runs_page()
    at.multiselect(key="runs.tasks").set_value(["image"]).run()
    at.multiselect(key="runs.compare").set_value(two_runs).run()
    assert not at.exception
    metrics = next(d.value for d in at.dataframe if "family" in d.value.columns and "value" in d.value.columns)
    assert len(metrics) == 4 and metrics["value"].between(0, 1).all()
    diff = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    assert "mlp.neurons" in set(diff["setting"])  # the one setting that differs
    assert "task" not in set(diff["setting"])  # identical settings are left out


def test_download_shows_the_onnx_check(two_runs) -> None:
    at = runs_page()
    at.selectbox(key="runs.dl_run").select(two_runs[0]).run()
    at.selectbox(key="runs.dl_model").select("mlp").run()
    at.button(key="runs.dl_go").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("ONNX check" in s.value and "largest difference" in s.value for s in at.success)


def test_delete_asks_for_confirmation_first(two_runs) -> None:
    at = runs_page()
    at.multiselect(key="runs.delete").set_value([two_runs[1]]).run()
    at.button(key="runs.delete_go").click().run()
    assert any("for good" in w.value for w in at.warning)
    assert RunStore().client.get_run(two_runs[1]).info.lifecycle_stage == "active"  # nothing deleted yet
    at.button(key="runs.delete_yes").click().run()
    assert not at.exception
    assert any("Deleted 1 run" in s.value for s in at.success)
    assert RunStore().client.get_run(two_runs[1]).info.lifecycle_stage == "deleted"
    table = next(d.value for d in at.dataframe if "run_id" in d.value.columns)
    assert two_runs[1] not in set(table["run_id"]) and two_runs[0] in set(table["run_id"])
