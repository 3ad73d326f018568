"""AppTest: the Experiments page runs a tiny sweep, shows the per-factor results, refuses bad grids."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def experiments_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/experiments.py").run()
    assert not at.exception
    return at


def test_tiny_sweep_shows_factor_table_tests_and_charts() -> None:
    at = experiments_page()
    at.selectbox(key="exp.model.image").select("mlp").run()
    at.text_input(key="exp.values.activation").set_value("relu,tanh")
    at.number_input(key="exp.seeds").set_value(2)
    at.number_input(key="exp.max_samples").set_value(200)
    at.number_input(key="exp.epochs").set_value(1)
    at.radio(key="exp.backend").set_value("local")
    at.button(key="exp.run").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    factor = next(d.value for d in at.dataframe if "value" in d.value.columns and "ci_low" in d.value.columns)
    assert list(factor["value"]) == ["relu", "tanh"] and (factor["n"] == 2).all()
    assert (factor["ci_low"] <= factor["mean"]).all() and (factor["mean"] <= factor["ci_high"]).all()
    assert any("Best setting" in s.value for s in at.success)
    assert any("paired t-test" in m.value for m in at.markdown)
    # the sweep is stored: it can be reopened from the store
    at.switch_page("pages/experiments.py").run()
    assert at.selectbox(key="exp.stored").options


def test_bad_grid_is_a_message_not_a_crash() -> None:
    at = experiments_page()
    at.text_input(key="exp.values.activation").set_value("relu,<script>")
    at.button(key="exp.run").click().run()
    assert not at.exception
    assert any("Invalid sweep" in e.value for e in at.error)


def test_claims_tab_builds_from_stored_runs_without_training() -> None:
    at = experiments_page()
    at.button(key="exp.claims").click().run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "claim" in d.value.columns)
    assert "Image recognition" in set(table["claim"])
