"""Price data: bundled series, the user's CSV (SECURITY.md item 11), tickers, Yahoo offline / rate limits and
column-shape drift (items 16-18). The network is never used: Yahoo's answers are frames of each shape it
has returned, built here, and monkeypatched failures."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pandas as pd
import pytest

from data import prices
from data.prices import PriceDataError

# ---------------------------------------------------------------- bundled


@pytest.mark.parametrize(("name", "rows", "first", "last"), [
    ("sp500", 5031, "1999-01-04", "2018-12-31"),
    ("nasdaq", 5031, "1999-01-04", "2018-12-31"),
    ("msft", 7983, "1986-03-13", "2017-11-10"),
])  # fmt: skip
def test_bundled_series(name, rows, first, last) -> None:
    s = prices.load_bundled(name)
    assert len(s) == rows and s.frequency == "daily" and s.has_ohlc
    assert str(s.dates[0].date()) == first and str(s.dates[-1].date()) == last
    assert (s.close > 0).all() and s.dates.is_monotonic_increasing and s.dates.tz is None


def test_fast_path_keeps_the_last_rows() -> None:
    s = prices.load_prices("sp500", max_samples=300)
    assert len(s) == 300 and str(s.dates[-1].date()) == "2018-12-31" and "fast path" in s.notes[0]


# ---------------------------------------------------------------- CSV


def _csv(rows: int = 40, start: str = "2020-01-01", freq: str = "B", sep: str = ",") -> str:
    dates = pd.date_range(start, periods=rows, freq=freq)
    lines = [f"Date{sep}Open{sep}Close"] + [f"{d.date()}{sep}{100 + i}{sep}{101 + i}" for i, d in enumerate(dates)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "latin-1", "utf-16"])
def test_csv_encodings(encoding) -> None:
    text = _csv().replace("Open", "Ouverture é")
    s = prices.load_csv(text.encode(encoding))
    assert len(s) == 40 and s.close[0] == 101.0


def test_csv_semicolon_thousands_and_column_choice() -> None:
    text = "day;price;other\n" + "".join(f"2021-03-{d:02d};\"1,{200 + d}.5\";x\n" for d in range(1, 32))
    s = prices.load_csv(text.encode(), date_col="day", price_col="price")
    assert s.close[0] == 1201.5 and len(s) == 31


def test_csv_weekly_and_monthly_frequency() -> None:
    assert prices.load_csv(_csv(freq="W-FRI").encode()).frequency == "weekly"
    assert prices.load_csv(_csv(freq="MS").encode()).frequency == "monthly"


def test_csv_unsorted_is_sorted_with_a_note() -> None:
    lines = _csv().splitlines()
    s = prices.load_csv(("\n".join([lines[0], *reversed(lines[1:])]) + "\n").encode())
    assert s.dates.is_monotonic_increasing and any("sorted" in n for n in s.notes)


def test_csv_few_missing_prices_are_dropped_with_a_note() -> None:
    lines = _csv().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",NaN"
    s = prices.load_csv(("\n".join(lines) + "\n").encode())
    assert len(s) == 39 and any("dropped" in n for n in s.notes)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"   \n \n", "empty"),
    (b"Date,Open\n2020-01-01,1\n2020-01-02,2\n", "price column"),
    (b"Foo,Close\n1,2\n3,4\n", "date column"),
    (_csv(5).encode(), "at least 30"),
    (("Date,Close\n" + "".join(f"2020-01-{d:02d},{d}\n" for d in range(1, 31)) + "2020-01-05,3\n").encode(),
     "duplicate dates"),
    (("Date,Close\n" + "".join(f"x{d},{d}\n" for d in range(1, 40))).encode(), "not dates"),
    (("Date,Close\n" + "".join(f"2020-02-{d:02d},abc\n" for d in range(1, 29))).encode(), "not numbers"),
    (("Date,Close\n" + "".join(f"2020-03-{d:02d},{d - 5}\n" for d in range(1, 32))).encode(), "negative"),
    ((",".join(f"c{i}" for i in range(500)) + "\n" + ",".join("1" * 500) + "\n").encode(), "more than 200 columns"),
    (b"just one column\n1\n2\n", "two columns"),
])  # fmt: skip
def test_bad_csvs_give_clear_messages(content, message) -> None:
    with pytest.raises(PriceDataError, match=message):
        prices.load_csv(content)


def test_ragged_csv_rows_are_refused_or_read() -> None:
    text = _csv() + "2021-01-01,1,2,3,4,5\n"
    try:
        s = prices.load_csv(text.encode())
    except PriceDataError as exc:
        assert "CSV" in str(exc)
    else:
        assert len(s) >= 40


def test_csv_fuzz_never_crashes_uncontrolled() -> None:
    rng = np.random.default_rng(0)
    alphabet = list(b"0123456789-,;.:\n\t \"abcDateClose")
    for _ in range(150):
        blob = bytes(rng.choice(alphabet, size=int(rng.integers(0, 300))).tolist())
        with contextlib.suppress(PriceDataError):
            prices.load_csv(blob)


# ---------------------------------------------------------------- tickers


@pytest.mark.parametrize("bad", ["", "   ", "AAPL;rm -rf /", "AAPL,MSFT", "A B", "<script>", "../etc",
                                 ",".join(["AAPL"] * 300), "TOOLONGTICKER12345"])  # fmt: skip
def test_bad_tickers_are_refused(bad) -> None:
    with pytest.raises(PriceDataError):
        prices.validate_ticker(bad)


@pytest.mark.parametrize(("text", "clean"), [(" aapl ", "AAPL"), ("BRK-B", "BRK-B"), ("^GSPC", "^GSPC"),
                                             ("EURUSD=X", "EURUSD=X")])  # fmt: skip
def test_good_tickers(text, clean) -> None:
    assert prices.validate_ticker(text) == clean


def _days(n: int = 40, tz: str | None = None) -> pd.DatetimeIndex:
    idx = pd.bdate_range("2024-01-02", periods=n, name="Date")
    return idx.tz_localize(tz) if tz else idx


def _ohlc(n: int = 40) -> dict[str, np.ndarray]:
    close = 100 + np.arange(n, dtype=float)
    return {"Open": close - 0.5, "High": close + 1, "Low": close - 1, "Close": close, "Volume": np.full(n, 1e6)}


def recorded_frames() -> dict[str, pd.DataFrame]:
    """The shapes yfinance has returned for one ticker over its versions."""
    v = _ohlc()
    flat = pd.DataFrame(v, index=_days())
    adj = pd.DataFrame({**v, "Adj Close": v["Close"]}, index=_days())  # auto_adjust=False, old versions
    adj_only = pd.DataFrame({k: x for k, x in {**v, "Adj Close": v["Close"]}.items() if k != "Close"}, index=_days())
    price_ticker = pd.DataFrame(v, index=_days())  # >= 0.2.48: MultiIndex (Price, Ticker)
    price_ticker.columns = pd.MultiIndex.from_product([list(v), ["AAPL"]], names=["Price", "Ticker"])
    ticker_price = pd.DataFrame(v, index=_days())  # group_by="ticker": (Ticker, Price)
    ticker_price.columns = pd.MultiIndex.from_product([["AAPL"], list(v)], names=["Ticker", "Price"])
    tz = pd.DataFrame(v, index=_days(tz="America/New_York"))  # Ticker.history(): exchange time zone
    as_column = pd.DataFrame(v, index=_days()).reset_index()  # Date as a column
    return {"flat": flat, "adj_close": adj, "adj_close_only": adj_only, "price_ticker": price_ticker,
            "ticker_price": ticker_price, "tz_aware": tz, "date_column": as_column}  # fmt: skip


@pytest.mark.parametrize("shape", list(recorded_frames()))
def test_normalise_every_recorded_shape(shape) -> None:
    out = prices.normalise_frame(recorded_frames()[shape], "AAPL")
    assert list(out.index[:2].strftime("%Y-%m-%d")) == ["2024-01-02", "2024-01-03"]
    assert out.index.tz is None and out.index.name == "date"
    assert out["close"].tolist() == (100 + np.arange(40.0)).tolist()
    assert {"close"} <= set(out.columns) <= {"open", "high", "low", "close", "volume"}


def test_normalise_refuses_a_frame_of_several_tickers() -> None:
    v = _ohlc()
    df = pd.DataFrame(np.column_stack([v["Close"], v["Close"]]), index=_days())
    df.columns = pd.MultiIndex.from_product([["Close"], ["AAPL", "MSFT"]])
    with pytest.raises(PriceDataError, match="several tickers"):
        prices.normalise_frame(df, "GOOG")
    assert prices.normalise_frame(df, "MSFT")["close"].iloc[0] == 100.0


class FakeClock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_fetch_caches_and_serves_the_cache(tmp_path) -> None:
    calls = []

    def download(ticker, start):
        calls.append(ticker)
        return recorded_frames()["price_ticker"]

    clock = FakeClock()
    s = prices.fetch_ticker("aapl", cache_dir=tmp_path, download=download, now=clock)
    assert s.name == "AAPL" and len(s) == 40 and "Yahoo Finance" in s.source and calls == ["AAPL"]
    meta = json.loads((tmp_path / "AAPL.json").read_text())
    assert meta["fetched_at"] == clock.t and meta["rows"] == 40
    clock.t += 3600  # fresh: no second download
    again = prices.fetch_ticker("AAPL", cache_dir=tmp_path, download=download, now=clock)
    assert calls == ["AAPL"] and "cached 1.0 hours ago" in again.source
    assert np.array_equal(again.close, s.close)


@pytest.mark.parametrize(("error", "reason"), [
    (ConnectionError("network unreachable"), "cannot be reached"),
    (type("YFRateLimitError", (Exception,), {})("Too Many Requests"), "rate-limited"),
])  # fmt: skip
def test_offline_or_rate_limited_serves_the_stale_cache_with_its_age(tmp_path, error, reason) -> None:
    clock = FakeClock()
    prices.fetch_ticker("MSFT", cache_dir=tmp_path, download=lambda t, s: recorded_frames()["flat"], now=clock)
    clock.t += 3 * 86400

    def fail(ticker, start):
        raise error

    s = prices.fetch_ticker("MSFT", cache_dir=tmp_path, download=fail, now=clock)
    assert len(s) == 40 and reason in s.source and "3 days ago" in s.source


def test_offline_without_cache_names_the_bundled_series(tmp_path) -> None:
    def fail(ticker, start):
        raise OSError("offline")

    with pytest.raises(PriceDataError, match=r"bundled series.*S&P 500"):
        prices.fetch_ticker("AAPL", cache_dir=tmp_path, download=fail)


def test_unknown_ticker_empty_frame_is_an_error(tmp_path) -> None:
    with pytest.raises(PriceDataError, match="unknown ticker"):
        prices.fetch_ticker("INVALIDXYZ", cache_dir=tmp_path, download=lambda t, s: pd.DataFrame())
    assert not list(tmp_path.iterdir())  # nothing cached


def test_damaged_cache_is_ignored(tmp_path) -> None:
    (tmp_path / "AAPL.csv").write_text("garbage\n\x00\x01")
    (tmp_path / "AAPL.json").write_text("{not json")
    s = prices.fetch_ticker("AAPL", cache_dir=tmp_path, download=lambda t, s: recorded_frames()["tz_aware"])
    assert len(s) == 40


def test_the_registry_loader_never_uses_the_network_for_bundled_data(monkeypatch) -> None:
    monkeypatch.setattr(prices, "_yahoo_download", lambda *a: pytest.fail("network used"))
    assert prices.load_prices("nasdaq").name == "nasdaq"
    with pytest.raises(PriceDataError, match="choose a CSV"):
        prices.load_prices("csv")
