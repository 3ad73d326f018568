"""Soak: many sessions in one server process, each training a small run as a job and rendering its results.
The server's memory must level off (trainings run in worker processes; caches are bounded)."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from scipy.stats import theilslopes
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

APP = str(ROOT / "app.py")
SESSIONS = 9
WARM_UP = 3  # first sessions fill the caches and import everything
MAX_SLOPE_MIB = 4.0  # per session, after the warm-up (Theil-Sen: one noisy sample does not decide)


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def one_session(seed: int) -> None:
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/image.py").run()
    at.selectbox(key="dataset").select("digits").run()
    at.multiselect(key="models").set_value(["mlp", "logreg", "majority"])
    at.number_input(key="max_samples").set_value(200)
    at.number_input(key="digits.train.epochs").set_value(1)
    at.number_input(key="seed").set_value(seed)
    at.button(key="train").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["image.report"]["seed"] == seed


@pytest.mark.slow
def test_memory_levels_off_over_many_sessions(capsys) -> None:
    samples = []
    for i in range(SESSIONS):
        one_session(seed=i % 3)  # three distinct runs, then repeats: cached reports, new sessions
        gc.collect()
        samples.append(rss_mib())
    x = np.arange(WARM_UP, SESSIONS)
    slope = float(theilslopes(np.array(samples[WARM_UP:]), x)[0])
    with capsys.disabled():
        print(f"\nsoak: RSS per session (MiB) {[round(s) for s in samples]}; slope after warm-up {slope:.2f} MiB/session")
    assert slope < MAX_SLOPE_MIB, (slope, samples)
