"""AppTest of the forecast page: every data source, bad input as messages, and a backtest run end to end."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from data import prices
from tests.conftest import ROOT
from tests.test_forecast_data import recorded_frames

APP = str(ROOT / "app.py")


def forecast_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/forecast.py").run()
    assert not at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.parametrize(("source", "rows"), [("sp500", "5,031"), ("nasdaq", "5,031"), ("msft", "7,983")])
def test_bundled_sources_show_their_data(source, rows) -> None:
    at = forecast_page()
    at.radio(key="fc.source").set_value(source).run()
    assert not at.exception and not at.error
    assert metric(at, "rows") == rows and metric(at, "frequency") == "daily"
    assert at.button(key="fc.run")


@pytest.fixture
def yahoo(tmp_path, monkeypatch):
    """Yahoo Finance replaced: a recorded frame per ticker, or a failure; the cache in a temporary folder."""
    answers: dict[str, object] = {}

    def download(ticker, start):
        answer = answers.get(ticker, pd.DataFrame())
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(prices, "_yahoo_download", download)
    monkeypatch.setattr(prices, "PRICE_CACHE", tmp_path)
    return answers


def load_ticker(text: str) -> AppTest:
    at = forecast_page()
    at.radio(key="fc.source").set_value("ticker").run()
    at.text_input(key="fc.ticker").input(text).run()
    at.button(key="fc.ticker_load").click().run()
    assert not at.exception
    return at


def test_ticker_source(yahoo) -> None:
    yahoo["AAPL"] = recorded_frames()["price_ticker"]
    at = load_ticker("aapl")
    assert not at.error and metric(at, "rows") == "40"
    assert any("Yahoo Finance" in c.value for c in at.caption)


@pytest.mark.parametrize(("text", "answer", "message"), [
    ("AAPL;rm -rf", None, "ticker"),
    ("INVALIDXYZ", pd.DataFrame(), "unknown ticker"),
    ("MSFT", ConnectionError("offline"), "bundled series"),
])  # fmt: skip
def test_bad_tickers_and_offline_are_messages(yahoo, text, answer, message) -> None:
    if answer is not None:
        yahoo[text] = answer
    at = load_ticker(text)
    assert at.error and message in at.error[0].value
    assert "fc.run" not in [b.key for b in at.button]  # no backtest without data


def upload(at: AppTest, content: bytes, name: str = "prices.csv") -> AppTest:
    at.radio(key="fc.source").set_value("csv").run()
    at.file_uploader(key="fc.upload").set_value((name, content, "text/csv")).run()
    assert not at.exception
    return at


def _weekly_csv(rows: int) -> bytes:
    dates = pd.date_range("2015-01-02", periods=rows, freq="W-FRI")
    return ("when;last\n" + "".join(f"{d.date()};{100 + i % 7 + i * 0.1:.2f}\n" for i, d in
                                    enumerate(dates))).encode("utf-8-sig")  # fmt: skip


def test_csv_upload_with_column_choice() -> None:
    at = upload(forecast_page(), _weekly_csv(200))
    at.selectbox(key="fc.date_col").select("when").run()
    at.selectbox(key="fc.price_col").select("last").run()
    assert not at.error and metric(at, "rows") == "200" and metric(at, "frequency") == "weekly"


def test_bad_csv_is_a_message() -> None:
    at = upload(forecast_page(), b"Date,Close\n2020-01-01,abc\n2020-01-02,1\n")
    assert at.error and "Cannot use this file" in at.error[0].value


def test_too_few_rows_for_the_window_is_refused_before_running() -> None:
    at = upload(forecast_page(), _weekly_csv(60))
    at.number_input(key="fc.csv.setup.window").set_value(60)  # inside the form: sent with the submit
    at.button(key="fc.run").click().run()
    assert not at.exception
    assert any("not enough history" in e.value for e in at.error)


def test_backtest_on_sp500_shows_verdict_leaderboard_and_charts() -> None:
    at = forecast_page()
    at.multiselect(key="fc.models").set_value(["lstm", "linreg", "naive"])
    at.number_input(key="fc.sp500.setup.window").set_value(10)
    at.number_input(key="fc.sp500.setup.refit_every").set_value(600)
    at.number_input(key="fc.sp500.train.epochs").set_value(1)
    at.button(key="fc.run").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    boards = [d.value for d in at.dataframe if "mae_vs_naive" in d.value.columns]
    assert len(boards) == 1 and set(boards[0]["model"]) == {"LSTM", "Lag regression", "Naive (last value)"}
    verdict = (at.success or at.warning or at.info)[0].value
    assert "random walk" in verdict and "Diebold-Mariano" in verdict
    assert any("Diebold-Mariano" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) >= 6  # price, returns, actual vs forecast, errors, residuals, folds, SHAP, fan
    # the run was stored and can be shown again from the Saved runs tab
    at.button(key="fc.load_run").click().run()
    assert not at.exception and len([d for d in at.dataframe if "mae_vs_naive" in d.value.columns]) == 2


def test_html_and_markdown_in_csv_headers_are_shown_literally() -> None:
    rows = "".join(f"x{i},{i}\n" for i in range(40))
    at = upload(forecast_page(), ("<script>alert(1)</script>,![img](http://example.com/x.png)\n" + rows).encode())
    assert at.error
    text = at.error[0].value
    assert "\\<script\\>alert(1)" in text  # Markdown-escaped: rendered as plain text
    assert "<script>" not in text
    at.selectbox(key="fc.date_col").select("![img](http://example.com/x.png)")
    at.selectbox(key="fc.price_col").select("<script>alert(1)</script>").run()
    assert at.error and "\\!\\[img\\](http" in at.error[0].value
