"""Price series: bundled S&P 500 / NASDAQ (arch) and MSFT (pmdarima), a ticker from Yahoo Finance (yfinance,
cached on disk with its fetch time) and the user's CSV. Every loader returns a `PriceSeries`: a tz-naive,
sorted, de-duplicated daily / weekly / monthly frame with a positive `close` column.

Untrusted input (CSV bytes, ticker text, whatever Yahoo returns) is validated here; problems raise
`PriceDataError` (a `DatasetUnavailable`) with a message meant for the user.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data.guard import heavy_slot, sniff_delimiter
from data.images import CACHE, DatasetUnavailable

PRICE_CACHE = CACHE / "prices"
BUNDLED_HINT = "Use a bundled series instead: S&P 500 (sp500), NASDAQ (nasdaq) or MSFT (msft)."
MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_CSV_COLUMNS = 200
MAX_ROWS = 200_000
MIN_ROWS = 30
# longest date cell parsed: the mixed-format date parser is quadratic in the length of one cell
MAX_DATE_CHARS = 64
DATE_PROBE_ROWS = 2_000
CACHE_FRESH_SECONDS = 12 * 3600
TICKER_RE = re.compile(r"^[A-Z0-9^][A-Z0-9.\-=^]{0,14}$")
OHLC = ("open", "high", "low", "close")


class PriceDataError(DatasetUnavailable):
    """The price data cannot be used; the message says why and what to do."""


@dataclass
class PriceSeries:
    """A price series with its provenance. `frame` has a DatetimeIndex and at least a `close` column."""

    name: str
    frame: pd.DataFrame
    source: str
    frequency: str  # "daily" | "weekly" | "monthly"
    default_test_start: str = ""
    fetched_at: str = ""  # ISO time of the Yahoo download (ticker data only)
    notes: list[str] = field(default_factory=list)

    @property
    def close(self) -> np.ndarray:
        """Closing prices as float64."""
        return self.frame["close"].to_numpy(dtype=np.float64)

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.frame.index)

    @property
    def has_ohlc(self) -> bool:
        return all(c in self.frame for c in OHLC)

    def __len__(self) -> int:
        return len(self.frame)


# ---------------------------------------------------------------- shape normalisation (one function)


def normalise_frame(raw: pd.DataFrame, ticker: str | None = None) -> pd.DataFrame:
    """Any price frame -> sorted tz-naive DatetimeIndex and lower-case columns open/high/low/close/volume.

    Handles what yfinance has returned over its versions: MultiIndex columns in either order
    ((field, ticker) or (ticker, field)), `Adj Close` beside or instead of `Close` (auto_adjust),
    a tz-aware index (exchange time), `Date`/`Datetime` as a column instead of the index, duplicate rows.
    """
    if raw is None or not isinstance(raw, pd.DataFrame) or raw.empty:
        raise PriceDataError(f"no price rows{f' for {ticker}' if ticker else ''}")
    df = raw.copy()
    if isinstance(df.columns, pd.MultiIndex):
        fields = {"open", "high", "low", "close", "adj close", "volume"}
        level = next(
            (i for i in range(df.columns.nlevels) if {str(v).lower() for v in df.columns.get_level_values(i)} & fields),
            None,
        )
        if level is None:
            raise PriceDataError("unrecognised column layout: no Open/High/Low/Close level")
        others = [i for i in range(df.columns.nlevels) if i != level]
        if others:
            keys = {k for i in others for k in df.columns.get_level_values(i)}
            if len(keys) > 1:
                if ticker is None or ticker not in keys:
                    raise PriceDataError(f"the frame holds several tickers ({', '.join(map(str, sorted(keys)))})")
                df = df.xs(ticker, axis=1, level=others[0])
            else:
                df.columns = df.columns.get_level_values(level)
    df.columns = [str(c).strip().lower().replace("_", " ") for c in df.columns]
    for col in ("date", "datetime"):
        if col in df.columns:
            df = df.set_index(col)
            break
    if "close" not in df.columns and "adj close" in df.columns:
        df = df.rename(columns={"adj close": "close"})
    if "close" not in df.columns:
        raise PriceDataError(f"no Close column (columns: {', '.join(map(str, df.columns))[:200]})")
    idx = pd.DatetimeIndex(pd.to_datetime(df.index, errors="coerce"))
    if idx.tz is not None:
        idx = idx.tz_localize(None)  # keep the exchange's wall-clock date
    df.index = idx.normalize() if (idx.dropna() == idx.dropna().normalize()).all() else idx
    df = df[~df.index.isna()]
    keep = [c for c in ("open", "high", "low", "close", "volume") if c in df.columns]
    df = df[keep].apply(pd.to_numeric, errors="coerce")
    df = df[np.isfinite(df["close"]) & (df["close"] > 0)]
    df = df[~df.index.duplicated(keep="last")].sort_index()
    df.index.name = "date"
    if df.empty:
        raise PriceDataError(f"no usable price rows{f' for {ticker}' if ticker else ''}")
    return df.astype(np.float64)


def infer_frequency(index: pd.DatetimeIndex) -> str:
    """daily / weekly / monthly from the median spacing of the dates."""
    if len(index) < 3:
        raise PriceDataError("need at least 3 dates to tell daily, weekly or monthly data apart")
    days = float(np.median(np.diff(index.values).astype("timedelta64[s]").astype(np.float64))) / 86400
    if days <= 4:
        return "daily"
    if days <= 10:
        return "weekly"
    if days <= 45:
        return "monthly"
    raise PriceDataError(f"dates are {days:.0f} days apart on average: daily, weekly or monthly data are supported")


def gaps(series: PriceSeries, top: int = 5) -> list[dict[str, Any]]:
    """The largest gaps between consecutive dates that are longer than usual for the frequency."""
    usual = {"daily": 4, "weekly": 10, "monthly": 35}[series.frequency]
    d = series.dates
    if len(d) < 2:
        return []
    spans = np.diff(d.values).astype("timedelta64[D]").astype(int)
    order = np.argsort(spans)[::-1][:top]
    return [
        {"from": d[i].date().isoformat(), "to": d[i + 1].date().isoformat(), "days": int(spans[i])}
        for i in order
        if spans[i] > usual
    ]


# ---------------------------------------------------------------- bundled series

BUNDLED: dict[str, dict[str, str]] = {
    "sp500": {"label": "S&P 500 index, daily 1999-2018", "source": "S&P 500 daily closes 1999-01-04..2018-12-31, "
              "bundled with the PyPI package arch (arch.data.sp500)", "test_start": "2015-01-01"},
    "nasdaq": {"label": "NASDAQ Composite, daily 1999-2018", "source": "NASDAQ Composite daily closes "
               "1999-01-04..2018-12-31, bundled with the PyPI package arch (arch.data.nasdaq)",
               "test_start": "2015-01-01"},
    "msft": {"label": "Microsoft (MSFT), daily 1986-2017", "source": "MSFT daily closes 1986-03-13..2017-11-10, "
             "bundled with the PyPI package pmdarima (pmdarima.datasets.load_msft)", "test_start": "2015-01-01"},
}  # fmt: skip


def load_bundled(name: str) -> PriceSeries:
    """One of the bundled series: sp500, nasdaq, msft."""
    if name == "sp500":
        import arch.data.sp500 as mod

        raw = mod.load()
    elif name == "nasdaq":
        import arch.data.nasdaq as mod

        raw = mod.load()
    elif name == "msft":
        from pmdarima.datasets import load_msft

        raw = load_msft()
    else:
        raise PriceDataError(f"unknown bundled series {name!r}. {BUNDLED_HINT}")
    frame = normalise_frame(raw.drop(columns=[c for c in raw.columns if str(c).lower() == "adj close"]))
    meta = BUNDLED[name]
    return PriceSeries(name, frame, meta["source"], "daily", default_test_start=meta["test_start"])


# ---------------------------------------------------------------- Yahoo Finance


def validate_ticker(text: str) -> str:
    """One ticker symbol, upper-cased; anything else (empty, lists, shell or HTML characters) is refused."""
    t = (text or "").strip().upper()
    if not t:
        raise PriceDataError("enter a ticker symbol, e.g. AAPL, MSFT or ^GSPC")
    if len(t) > 15 or re.search(r"[\s,;]", t):
        raise PriceDataError("one ticker at a time (letters, digits and . - ^ =, at most 15 characters)")
    if not TICKER_RE.match(t):
        raise PriceDataError("not a ticker symbol: use letters, digits and . - ^ = only (e.g. AAPL, BRK-B, ^GSPC)")
    return t


def _cache_paths(ticker: str, cache_dir: Path) -> tuple[Path, Path]:
    safe = re.sub(r"[^A-Z0-9]", lambda m: f"_{ord(m.group()):02x}", ticker)  # validated already; no path parts
    return cache_dir / f"{safe}.csv", cache_dir / f"{safe}.json"


def _atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_cache(ticker: str, cache_dir: Path | None = None) -> tuple[pd.DataFrame, float] | None:
    """The cached frame of a ticker and its fetch time (epoch seconds), or None."""
    data, meta = _cache_paths(ticker, cache_dir or PRICE_CACHE)
    if not data.exists() or not meta.exists():
        return None
    try:
        info = json.loads(meta.read_text())
        frame = pd.read_csv(data, index_col="date", parse_dates=["date"])
        return normalise_frame(frame, ticker), float(info["fetched_at"])
    except (OSError, ValueError, KeyError, PriceDataError):
        return None  # a damaged cache is ignored, never trusted


def _yahoo_download(ticker: str, start: str) -> pd.DataFrame:
    import yfinance as yf

    return yf.download(
        ticker, start=start or None, period=None if start else "max", interval="1d", auto_adjust=True,
        progress=False, threads=False, timeout=10,
    )  # fmt: skip


def _age(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.0f} days"


def fetch_ticker(
    ticker: str,
    *,
    start: str = "",
    cache_dir: Path | None = None,
    download: Callable[[str, str], pd.DataFrame] | None = None,
    max_age: float = CACHE_FRESH_SECONDS,
    now: Callable[[], float] = time.time,
) -> PriceSeries:
    """Daily prices of a ticker: a fresh disk cache, else Yahoo Finance (cached), else a stale cache.

    Offline, rate-limited or unknown (yfinance then returns an empty frame silently): the cache with its
    age when there is one, otherwise PriceDataError naming the bundled series.
    """
    t = validate_ticker(ticker)
    cache_dir = cache_dir or PRICE_CACHE
    cached = read_cache(t, cache_dir)
    if cached is not None and now() - cached[1] < max_age:
        frame, fetched = cached
        return _ticker_series(t, frame, fetched, f"cached {_age(now() - fetched)} ago")
    try:
        frame = normalise_frame((download or _yahoo_download)(t, start), t)
    except Exception as exc:  # network errors, YFRateLimitError, empty or malformed frames
        reason = (
            "rate-limited by Yahoo Finance"
            if "rate" in type(exc).__name__.lower() or "too many requests" in str(exc).lower()
            else "no data: an unknown ticker, or Yahoo Finance cannot be reached"
            if isinstance(exc, PriceDataError)
            else f"Yahoo Finance cannot be reached ({type(exc).__name__})"
        )
        if cached is not None:
            frame, fetched = cached
            return _ticker_series(t, frame, fetched, f"{reason}; showing the copy cached {_age(now() - fetched)} ago")
        raise PriceDataError(f"{t}: {reason}, and there is no cached copy. {BUNDLED_HINT}") from exc
    if len(frame) > MAX_ROWS:
        frame = frame.iloc[-MAX_ROWS:]
    fetched = now()
    data_path, meta_path = _cache_paths(t, cache_dir)
    _atomic_text(data_path, frame.to_csv(index_label="date"))
    _atomic_text(meta_path, json.dumps({"ticker": t, "fetched_at": fetched, "rows": len(frame)}))
    return _ticker_series(t, frame, fetched, "downloaded just now")


def _ticker_series(t: str, frame: pd.DataFrame, fetched: float, how: str) -> PriceSeries:
    when = datetime.fromtimestamp(fetched, tz=UTC).isoformat(timespec="seconds")
    return PriceSeries(
        t, frame, f"{t} daily closes (auto-adjusted) from Yahoo Finance via yfinance, fetched {when} ({how})",
        infer_frequency(frame.index), fetched_at=when, notes=[how],
    )  # fmt: skip


# ---------------------------------------------------------------- the user's CSV


def _decode(raw: bytes) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise PriceDataError(
                "the file starts like UTF-16 text (a byte-order mark) but is not valid UTF-16 "
                f"({'an odd number of bytes: truncated?' if len(raw) % 2 else exc.reason}); save it again as "
                "UTF-8 or UTF-16"
            ) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_csv_table(source: str | Path | bytes) -> pd.DataFrame:
    """A CSV (bytes or a path) as a frame of strings; encoding and delimiter detected; sizes capped.

    Linear in the size of the file (SECURITY item 28), in one of the server's few upload slots
    (`data.guard.heavy_slot`: ServerBusy when they stay taken)."""
    if isinstance(source, bytes):
        raw = source
    else:
        path = Path(source)
        if not path.is_file():
            raise PriceDataError(f"no such file: {path.name}")
        if path.stat().st_size > MAX_CSV_BYTES:
            raise PriceDataError(f"the file is larger than {MAX_CSV_BYTES // 2**20} MB")
        raw = path.read_bytes()
    if len(raw) > MAX_CSV_BYTES:
        raise PriceDataError(f"the file is larger than {MAX_CSV_BYTES // 2**20} MB")
    with heavy_slot("price file"):
        return _read_csv_table(raw)


def _read_csv_table(raw: bytes) -> pd.DataFrame:
    text = _decode(raw)
    if not text.strip():
        raise PriceDataError("the file is empty")
    start = text[: 1 << 16].lstrip()
    first = next(iter(start.splitlines()), "")
    delimiter = sniff_delimiter(start, ",\t;|")
    if first.count(delimiter) + 1 > MAX_CSV_COLUMNS:
        raise PriceDataError(f"the file has more than {MAX_CSV_COLUMNS} columns: is it a price table?")
    try:
        df = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, nrows=MAX_ROWS + 1, skipinitialspace=True)
    except (pd.errors.ParserError, ValueError) as exc:
        raise PriceDataError(f"the file is not a readable CSV table: {str(exc).splitlines()[0][:200]}") from exc
    if df.shape[1] > MAX_CSV_COLUMNS:
        raise PriceDataError(f"the file has more than {MAX_CSV_COLUMNS} columns: is it a price table?")
    if df.shape[1] < 2:
        raise PriceDataError("need at least two columns (a date and a price); is the delimiter , ; or tab?")
    if len(df) > MAX_ROWS:
        raise PriceDataError(f"more than {MAX_ROWS:,} rows")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def guess_columns(columns: list[str]) -> tuple[str | None, str | None]:
    """Likely (date, price) columns by name."""
    low = {c.lower(): c for c in columns}
    date = next((low[k] for k in ("date", "datetime", "time", "timestamp", "day") if k in low), None)
    price = next((low[k] for k in ("close", "adj close", "adj_close", "price", "value", "last") if k in low), None)
    return date, price


def _to_number(values: pd.Series) -> pd.Series:
    text = values.astype(str).str.strip().str.replace(r"[\s$€£]", "", regex=True)
    comma_decimal = text.str.fullmatch(r"-?\d+,\d{1,2}").mean() > 0.5 and not text.str.contains(r"\.").any()
    text = text.str.replace(",", ".", regex=False) if comma_decimal else text.str.replace(",", "", regex=False)
    return pd.to_numeric(text, errors="coerce")


def load_csv(
    path: str | Path | bytes, date_col: str | None = None, price_col: str | None = None, name: str = "csv"
) -> PriceSeries:
    """The user's price table: choose the date and price columns; daily, weekly or monthly data."""
    with heavy_slot("price file"):
        return _load_csv(path, date_col, price_col, name)


def _load_csv(path: str | Path | bytes, date_col: str | None, price_col: str | None, name: str) -> PriceSeries:
    df = read_csv_table(path)
    guess_date, guess_price = guess_columns(list(df.columns))
    date_col, price_col = date_col or guess_date, price_col or guess_price
    for what, col in (("date", date_col), ("price", price_col)):
        if not col or col not in df.columns:
            raise PriceDataError(
                f"choose the {what} column: {col!r} is not in the file (columns: {', '.join(df.columns)[:200]})"
                if col else f"no {what} column found: choose one of {', '.join(df.columns)[:200]}"
            )  # fmt: skip
    if date_col == price_col:
        raise PriceDataError("the date and price columns must differ")
    notes: list[str] = []
    date_text = df[date_col].str.strip()
    too_long = date_text.str.len() > MAX_DATE_CHARS
    if too_long.any():
        row, n = int(np.flatnonzero(too_long.to_numpy())[0]), int(too_long.sum())
        raise PriceDataError(
            f"{n} value{'s' if n > 1 else ''} in {date_col!r} {'are' if n > 1 else 'is'} longer than "
            f"{MAX_DATE_CHARS} characters (data row {row + 1} has {len(date_text.iloc[row]):,}): dates are short; "
            "is this the date column?"
        )
    allowed_bad = max(2, 0.05 * len(df))
    if len(df) > DATE_PROBE_ROWS:  # the wrong column of a big file: refused after a few thousand cells, not all
        probe = int(pd.to_datetime(date_text.iloc[:DATE_PROBE_ROWS], errors="coerce", format="mixed").isna().sum())
        if probe > DATE_PROBE_ROWS // 2:
            raise PriceDataError(f"{probe:,} of the first {DATE_PROBE_ROWS:,} values in {date_col!r} are not dates")
    dates = pd.to_datetime(date_text, errors="coerce", format="mixed")
    prices = _to_number(df[price_col])
    bad_dates = int(dates.isna().sum())
    if bad_dates > allowed_bad:
        raise PriceDataError(f"{bad_dates} of {len(df)} values in {date_col!r} are not dates")
    bad_prices = int(prices.isna().sum())
    if bad_prices > max(2, 0.05 * len(df)):
        raise PriceDataError(f"{bad_prices} of {len(df)} values in {price_col!r} are not numbers")
    if (prices <= 0).any():
        raise PriceDataError(f"{price_col!r} has zero or negative prices: returns need positive prices")
    frame = pd.DataFrame({"close": prices.to_numpy()}, index=pd.DatetimeIndex(dates))
    dropped = int(frame.index.isna().sum() + frame["close"].isna().sum())
    if dropped:
        notes.append(f"{dropped} rows without a date or price were dropped")
    frame = frame[~frame.index.isna() & frame["close"].notna()]
    dup = frame.index[frame.index.duplicated()]
    if len(dup):
        raise PriceDataError(f"{len(dup)} duplicate dates (first: {dup[0].date()}): one price per date, please")
    if not frame.index.is_monotonic_increasing:
        notes.append("rows were not in date order and were sorted")
    frame = normalise_frame(frame)
    if len(frame) < MIN_ROWS:
        raise PriceDataError(f"only {len(frame)} usable rows: at least {MIN_ROWS} are needed")
    freq = infer_frequency(frame.index)
    source = f"uploaded CSV ({len(frame)} {freq} rows)"
    return PriceSeries(name, frame, source, freq, notes=notes)


# ---------------------------------------------------------------- one entry point for the registry


def load_prices(dataset: str, *, seed: int = 0, max_samples: int = 0, **options: Any) -> PriceSeries:
    """The registry's loader: bundled names, "ticker" (options: ticker, start) or "csv" (path, date_col, price_col).

    max_samples > 0 keeps the last max_samples rows (fast path).
    """
    if dataset in BUNDLED:
        series = load_bundled(dataset)
    elif dataset == "ticker":
        series = fetch_ticker(str(options.get("ticker", "")), start=str(options.get("start", "") or ""))
    elif dataset == "csv":
        if not options.get("path"):
            raise PriceDataError("choose a CSV file first")
        series = load_csv(options["path"], options.get("date_col"), options.get("price_col"))
    else:
        raise PriceDataError(f"unknown price dataset {dataset!r}. {BUNDLED_HINT}")
    if max_samples and len(series) > max_samples:
        series.frame = series.frame.iloc[-max_samples:]
        series.notes.append(f"fast path: the last {max_samples} rows only")
    return series
