"""Text data: the bundled tweets, grouped splits, and untrusted CSV / TXT input (SECURITY items 9-15)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from data import text as dt
from models.config import ConfigError


@pytest.fixture(scope="module")
def tweets() -> dt.TextSplit:
    return dt.load_tweets(seed=0)


def test_tweets_split_is_stratified_and_duplicates_never_straddle(tweets) -> None:
    assert tweets.class_names == ["negative", "neutral", "positive"]
    assert len(tweets.y_train) + len(tweets.y_test) == 38158
    train = {t.lower() for t in tweets.X_train}
    test = {t.lower() for t in tweets.X_test}
    assert not train & test, "an identical text is on both sides of the split"
    share_train = np.bincount(tweets.y_train) / len(tweets.y_train)
    share_test = np.bincount(tweets.y_test) / len(tweets.y_test)
    np.testing.assert_allclose(share_train, share_test, atol=0.02)  # stratified by unique text
    assert 0.19 < len(tweets.y_test) / 38158 < 0.21


def test_grouped_split_keeps_duplicates_together() -> None:
    texts = np.array(["a b", "A B", "c d", "e f", "g h", "i j", "k l", "m n", "a b", "o p"] * 3, dtype=object)
    texts = np.array([f"{t} {i % 10}" if i >= 10 else t for i, t in enumerate(texts)], dtype=object)
    y = np.arange(len(texts)) % 2
    for seed in range(5):
        tr, te = dt.grouped_split(texts, y, 0.3, seed)
        assert not {t.lower() for t in texts[tr]} & {t.lower() for t in texts[te]}
        assert len(tr) + len(te) == len(texts)


def test_binary_tweets_and_fast_path() -> None:
    split = dt.load_tweets_binary(seed=1, max_samples=300)
    assert split.class_names == ["negative", "positive"]
    assert len(split.y_train) == 300 and len(split.y_test) > 4000  # the fast path keeps the whole test split
    split = dt.load_tweets_binary(seed=1, max_samples=300, test_samples=75)
    assert len(split.y_test) == 75
    assert "fast path" in split.split_note


# ---------------------------------------------------------------------------------------------- item 9: encodings

CSV_TEXT = "review;label\nGreat café, loved it;pos\nTerrible service;neg\nNaïve but fine;pos\nAwful;neg\n"


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (CSV_TEXT.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + CSV_TEXT.encode("utf-8"), "utf-8-sig"),
        (CSV_TEXT.encode("latin-1"), "latin-1"),
        (CSV_TEXT.encode("utf-16"), "utf-16"),
        (CSV_TEXT.encode("utf-16-le"), "utf-16-le"),
    ],
)
def test_csv_encodings_are_read(raw: bytes, encoding: str) -> None:
    df, used = dt.read_csv_text(raw)
    assert used == encoding
    assert list(df.columns) == ["review", "label"], "BOM or delimiter leaked into the header"
    assert df["review"].iloc[0] == "Great café, loved it"


# ---------------------------------------------------------------------------------------------- item 10: malformed CSV


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'text,label\n"unclosed quote,pos\nfine,neg\n', "malformed"),
        (b"text,label\na,pos,extra,more\nb,neg\n", "malformed"),
        ((",".join(f"c{i}" for i in range(5000)) + "\n" + ",".join("x" * 5000) + "\n").encode(), "columns"),
        (b"text,label\n", "no rows"),
        (b"", "empty"),
        (b"   \n\n  \t\n", "empty"),
        (b"a,a\n1,2\n", "duplicate column"),
    ],
)
def test_malformed_csv_is_refused_with_a_message(raw: bytes, message: str) -> None:
    with pytest.raises(dt.TextDataError, match=message):
        dt.read_csv_text(raw)


def test_semicolon_and_tab_delimiters_are_sniffed() -> None:
    df, _ = dt.read_csv_text(b"text;label\nhello there;pos\nbad day;neg\n")
    assert list(df.columns) == ["text", "label"]
    df, _ = dt.read_csv_text(b"text\tlabel\nhello, there\tpos\nbad day\tneg\n")
    assert df["text"].iloc[0] == "hello, there"


def test_csv_parser_fuzz_only_raises_text_data_errors() -> None:
    rng = np.random.default_rng(0)
    pieces = [b",", b";", b'"', b"\n", b"\r\n", b"\t", b"a", b"\xff", b"\x00", b"label", b"text", b"=", b" "]
    for _ in range(300):
        raw = b"".join(rng.choice(pieces, size=int(rng.integers(0, 60))).tolist())
        try:
            df, _ = dt.read_csv_text(raw)
        except dt.TextDataError:
            continue
        assert isinstance(df, pd.DataFrame) and len(df.columns) <= dt.MAX_COLUMNS


# ---------------------------------------------------------------------------------------------- labels


def test_labelled_texts_maps_any_label_set_and_drops_empty_rows() -> None:
    df = pd.DataFrame(
        {
            "t": ["good", "bad", "  ", "fine", "meh", "ok", "awful", "so-so"],
            "l": ["5", "1", "3", "", "3", "5", "1", "3"],
        }
    )
    texts, y, classes, note = dt.labelled_texts(df, "t", "l")
    assert classes == ["1", "3", "5"]
    assert list(texts) == ["good", "bad", "meh", "ok", "awful", "so-so"] and list(y) == [2, 0, 1, 2, 0, 1]
    assert "2 rows" in note and "dropped" in note


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"t": ["a", "b", "c"], "l": ["x", "x", "x"]}), "only one class"),
        (pd.DataFrame({"t": ["a", "b", "c", "d"], "l": ["x", "x", "y", "z"]}), "single text"),
        (pd.DataFrame({"t": [f"t{i}" for i in range(200)], "l": [str(i) for i in range(200)]}), "distinct values"),
        (pd.DataFrame({"t": ["", " "], "l": ["x", "y"]}), "no row"),
    ],
)
def test_unusable_label_columns_are_refused(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(dt.TextDataError, match=message):
        dt.labelled_texts(frame, "t", "l")


def test_missing_column_and_same_column_are_refused() -> None:
    df = pd.DataFrame({"t": ["a", "b"], "l": ["x", "y"]})
    with pytest.raises(dt.TextDataError, match="no column"):
        dt.labelled_texts(df, "text", "l")
    with pytest.raises(dt.TextDataError, match="must differ"):
        dt.labelled_texts(df, "t", "t")


def test_load_csv_splits_a_user_file_and_checks_its_hash(tmp_path) -> None:
    rows = [(f"I loved it, number {i}", "pos") for i in range(30)] + [(f"Awful, number {i}", "neg") for i in range(30)]
    path = tmp_path / "reviews.csv"
    pd.DataFrame(rows, columns=["review", "stars"]).to_csv(path, index=False)
    split = dt.load_csv(seed=0, path=path, text_col="review", label_col="stars")
    assert split.class_names == ["neg", "pos"] and len(split.y_test) == 12
    hostile = tmp_path / "[x](javascript:alert(1))<b>.csv"
    hostile.write_bytes(path.read_bytes())
    source = dt.load_csv(seed=0, path=hostile, text_col="review", label_col="stars").source
    assert "[x]" not in source and "(javascript" not in source and "<b>" not in source  # inert in markdown
    assert issubclass(dt.TextDataError, ConfigError)  # pages, CLI and jobs show it as a user message
    with pytest.raises(dt.TextDataError, match="changed"):
        dt.load_csv(seed=0, path=path, text_col="review", label_col="stars", sha256="0" * 64)
    with pytest.raises(dt.TextDataError, match="upload"):
        dt.load_csv(seed=0, path=tmp_path / "gone.csv", text_col="review", label_col="stars")


# ---------------------------------------------------------------------------------------------- items 12-15


@pytest.mark.parametrize("cell", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_export_neutralises_formulas(cell: str) -> None:
    out = dt.safe_csv_bytes(pd.DataFrame({"text": [cell], "=header": ["ok"], "p": [0.5]}))
    back = pd.read_csv(io.BytesIO(out), dtype=str, keep_default_na=False)
    assert back["text"].iloc[0] == "'" + cell
    assert back.columns[1] == "'=header"
    assert back["p"].iloc[0] == "0.5"


def test_huge_text_and_huge_word_are_capped_before_tokenising() -> None:
    huge = "word " * 2_000_000 + "x" * 5_000_000
    assert len(dt.clean_text(huge)) == dt.MAX_CHARS
    assert dt.clean_text("a\x00b\u202ec\n\n  d") == "a b c d"  # controls and bidi overrides gone


@pytest.mark.parametrize(
    ("raw", "name"), [(b"", "x.txt"), (b"   \n \t \n", "x.txt"), (b"text\n \n\n", "x.csv"), (b"", "x.csv")]
)
def test_empty_inputs_are_refused(raw: bytes, name: str) -> None:
    with pytest.raises(dt.TextDataError):
        dt.texts_from_upload(raw, name)


def test_texts_from_txt_and_csv_uploads() -> None:
    texts, col = dt.texts_from_upload("first line\n\n  second line  \n".encode("utf-16"), "t.txt")
    assert list(texts) == ["first line", "second line"] and col is None
    texts, col = dt.texts_from_upload(b"id,comment\n1,This is long enough to be the text\n2,Another one\n", "t.csv")
    assert col == "comment" and len(texts) == 2
    with pytest.raises(dt.TextDataError, match="at most"):
        dt.texts_from_upload(("\n".join(["t"] * (dt.MAX_PREDICT_TEXTS + 1))).encode(), "many.txt")
