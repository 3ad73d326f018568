"""pages/ui.py job helpers: what the page says after a training was interrupted, and a job followed to its end."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def notice_app(status: str) -> AppTest:
    def script(status: str) -> None:
        import streamlit as st

        from pages import ui

        if "job.outcome" not in st.session_state and not st.session_state.get("shown"):
            st.session_state["shown"] = True
            st.session_state["job.outcome"] = {"status": status, "report": {"answer": 42} if status == "done" else None,
                                               "error": "stopped by the user", "error_kind": None}  # fmt: skip
        report = ui.job_notice("job")
        if report is not None:
            st.write(f"report {report['answer']}")

    return AppTest.from_function(script, args=(status,), default_timeout=60).run()


def test_stop_after_the_run_finished_says_so_and_keeps_the_results() -> None:
    at = notice_app("done")
    assert not at.exception
    assert any("already finished when it was stopped" in i.value for i in at.info)
    assert any("report 42" in m.value for m in at.markdown)
    at.run()  # said once, not on every rerun
    assert not at.info


def test_a_stopped_run_says_it_was_discarded() -> None:
    at = notice_app("cancelled")
    assert [i.value for i in at.info] == ["Training stopped; the unfinished run was discarded."]
    assert not at.markdown


def test_run_job_follows_a_job_to_its_report() -> None:
    def script() -> None:
        import streamlit as st

        from bench.exec import default as default_executor
        from bench.exec import jobs
        from pages import ui
        from tests import job_targets

        previous = default_executor.set_executor(jobs.InlineExecutor(1, target=job_targets.echo))
        try:
            report = ui.run_job({"models": ()}, "job", store=False)
        finally:
            default_executor.set_executor(previous)
        st.write(f"pid {report['pid']}")

    at = AppTest.from_function(script, default_timeout=120).run()
    assert not at.exception, at.exception
    assert any(m.value.startswith("pid ") for m in at.markdown)
    assert at.get("progress")[0].proto.text == "Done"
