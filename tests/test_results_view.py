"""The results view says what happened: ties are no wins, seeds rank by their mean, the fast path is stated."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.helpers import bench_run
from tests.test_app import APP, image_page, k, leaderboard


def texts(at: AppTest) -> list[str]:
    """Every alert, markdown and caption text on the page."""
    return [e.value for kind in (at.success, at.info, at.warning, at.error, at.markdown, at.caption) for e in kind]


def test_tie_reads_as_no_winner_and_the_fast_path_is_stated() -> None:
    """A net that collapses to one class ties with the majority class (10.00% on a balanced test split).

    Also the fast path: 5 requested samples are raised to 20 and the page says so; the test split stays whole.
    """
    at = image_page()
    at.multiselect(key="models").set_value(["mlp", "majority"])
    at.number_input(key="max_samples").set_value(5)
    at.number_input(key=k("train.epochs")).set_value(2)
    at.selectbox(key=k("train.optimizer")).select("sgd")
    at.select_slider(key=k("train.lr")).set_value(1.0)
    at.selectbox(key=k("mlp.activation")).select("sigmoid")
    at.button(key="train").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    board = leaderboard(at).set_index("model")
    assert board.loc["Deep MLP", "accuracy"] == board.loc["Majority class", "accuracy"] == 0.1
    assert not at.success, [s.value for s in at.success]  # a tie is never announced as a win
    heads = [i.value for i in at.info if "ties with" in i.value]
    assert heads and heads[0].startswith("No winner"), [i.value for i in at.info]
    shown = " ".join(texts(at))
    assert "20 of 4,000 training images (stratified), raised from the 5 requested" in shown, shown
    assert "test split whole (1,000 images)" in shown and "test 1,000" in shown, shown
    assert "Fast path" in shown and "Learning rate 1.0 (default 0.001)" in shown, shown


def test_seeds_rank_by_mean_and_the_headline_says_so() -> None:
    at = image_page()
    at.multiselect(key="models").set_value(["mlp", "logreg"])
    at.number_input(key="max_samples").set_value(300)
    at.number_input(key=k("train.epochs")).set_value(2)
    at.number_input(key="repeats").set_value(3)
    at.button(key="train").click().run()
    assert not at.exception
    board = leaderboard(at)
    assert list(board["score"]) == sorted(board["score"], reverse=True)  # ranked by the mean over seeds
    mlp = board.set_index("model").loc["Deep MLP"]
    assert mlp["seeds"] == 3 and abs(mlp["score"] - mlp["seed_mean"]) < 1e-12
    head = [a.value for a in (*at.success, *at.warning, *at.info) if "Deep MLP (" in a.value]
    assert head, "a headline naming the net"
    assert f"Deep MLP ({mlp['seed_mean']:.2%}, mean of 3 seeds)" in head[0], head
    assert "seed-0 predictions" in head[0], head  # which seed the paired test compared
    assert "Seeds per model: 3" in " ".join(texts(at))


def test_saved_run_label_and_home_reference_run() -> None:
    """Saved runs name their best model and settings; Home shows the full-data default run, not a newer
    fast-path run, and marks a fast-path run that is all there is."""
    from bench.run.store import RunStore

    store = RunStore()
    full = bench_run("image", "digits", ["knn", "majority"], store=store)
    fast = bench_run("image", "digits", ["knn", "majority"], max_samples=100, store=store)
    at = image_page()
    labels = at.selectbox(key="saved_run").options
    mine = next(label for label in labels if full["run_id"][:8] in label)
    assert mine.startswith("scikit-learn digits (1,797, 8x8) · best k-nearest neighbours 9"), mine
    assert " · default settings, full data · 2 models (k-nearest neighbours, Majority class) · seed 0 · " in mine
    quick = next(label for label in labels if fast["run_id"][:8] in label)
    assert "fast path (100 training samples)" in quick, quick

    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    shown = " ".join(texts(at))
    assert f"run {full['run_id']}" in shown and f"run {fast['run_id']}" not in shown
    assert "newer run(s) with other settings (latest: fast path (100 training samples)" in shown, shown
    assert "scikit-learn digits (1,797, 8x8)" in [m.value.removeprefix("#### ") for m in at.markdown]
    assert any("AMD" in m.value or "Intel" in m.value or "CPU" in m.value for m in at.markdown)  # whole device name


def test_saved_runs_tab_errors_are_short_messages_and_logged(monkeypatch, caplog) -> None:
    """A store or report that cannot be read shows a short message; the exception goes to the server log."""
    from pages import ui

    class BrokenStore:
        def list_runs(self, task: str) -> list:
            raise RuntimeError("db at /secret/path is locked")

    def page() -> None:
        from pages import ui

        ui.saved_runs_tab("image", "t", lambda report, key: None)

    monkeypatch.setattr(ui, "run_store", lambda: BrokenStore())
    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["The run store could not be read; the details are in the server log."]
    assert "/secret/path" in caplog.text

    class OneRunStore:
        def list_runs(self, task: str) -> list:
            return [{"run_id": "ab" * 16, "dataset": "digits", "seed": 0, "start_time": 0}]

    def broken_report(run_id: str) -> dict:
        raise FileNotFoundError("/secret/path/report.json")

    monkeypatch.setattr(ui, "run_store", lambda: OneRunStore())
    monkeypatch.setattr(ui, "load_report", broken_report)
    at = AppTest.from_function(page, default_timeout=60).run()
    assert at.selectbox(key="t.saved_run").options == ["digits · seed 0 · ? · abababab"]
    at.button(key="t.load_run").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Could not load run abababab; the details are in the server log."]
