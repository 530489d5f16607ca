"""Unit tests for ticker canonicalisation and the paths built from tickers and dataset names."""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphadag.market.storage import PartitionStore, ticker_path
from alphadag.market.tickers import (
    TICKER_PATTERN,
    TickerError,
    canonical_ticker,
    canonical_tickers,
    try_canonical_ticker,
)

DATASET_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")  # the documented dataset-name rule

# Text that mixes ticker-like characters with path separators, dots, NUL and arbitrary unicode,
# so both the accepting and the rejecting branches are exercised.
NASTY_ALPHABET = st.sampled_from(
    [
        *"ABCXYZabcxyz0189.-/\\^ _\t\n\x00~:*?",
        "..",
        "../",
        "%2e",
        "\u0130",
        "\u0131",
        "\u00df",
        "\ufb01",
        "\u212a",
        "\u0660",
        "\uff21",
    ]
)
NASTY_TEXT = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8")),
    st.lists(NASTY_ALPHABET, max_size=20).map("".join),
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BRK.B", "BRK-B"),
        ("brk/b", "BRK-B"),
        ("brk.b", "BRK-B"),
        (" aapl ", "AAPL"),
        ("\taapl\n", "AAPL"),
        ("^gspc", "^GSPC"),
        ("^GSPC", "^GSPC"),
        ("msft", "MSFT"),
        ("7203", "7203"),
        ("A", "A"),
        ("BF-B", "BF-B"),
        ("ABCDEFGHIJKLMNO", "ABCDEFGHIJKLMNO"),  # 15 characters: the maximum
    ],
)
def test_canonical_examples(raw: str, expected: str) -> None:
    assert canonical_ticker(raw) == expected
    assert try_canonical_ticker(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "../etc/passwd",
        "..",
        "a b",
        "AAPL;DROP",
        "BRK-",  # may not end with a separator
        "-BRK",
        "BRK.",
        "^",
        "^^GSPC",
        "GS^PC",
        "ABCDEFGHIJKLMNOP",  # 16 characters
        "A\x00B",
        "A\\B",
        "AAPL\u00e9",
        "\u0660\u0661",  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_rejections_name_the_offending_string(raw: str) -> None:
    with pytest.raises(TickerError) as info:
        canonical_ticker(raw)
    assert repr(raw) in str(info.value)
    assert try_canonical_ticker(raw) is None


@pytest.mark.parametrize("raw", [None, 123, b"AAPL", ["AAPL"]])
def test_non_strings_are_rejected(raw: object) -> None:
    with pytest.raises(TickerError, match="not a string"):
        canonical_ticker(raw)


def test_ticker_error_is_a_value_error() -> None:
    assert issubclass(TickerError, ValueError)


def test_canonical_tickers_dedupes_in_order_and_raises_on_a_bad_one() -> None:
    assert canonical_tickers(["msft", "brk.b", "MSFT", "BRK/B", "^gspc"]) == [
        "MSFT",
        "BRK-B",
        "^GSPC",
    ]
    with pytest.raises(TickerError, match=re.escape("'../x'")):
        canonical_tickers(["AAPL", "../x"])


def test_ticker_path_rejects_non_canonical_tickers(tmp_path) -> None:
    assert str(ticker_path(tmp_path, "BRK-B")) == os.path.join(str(tmp_path), "BRK-B.parquet")
    for bad in ["brk.b", "../AAPL", "AAPL/..", "", "a b"]:
        with pytest.raises(TickerError, match=re.escape(repr(bad))):
            ticker_path(tmp_path, bad)


@pytest.fixture(scope="session")
def path_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("ticker_paths"))


@settings(max_examples=100, deadline=None)
@given(raw=NASTY_TEXT)
@example(raw="../etc/passwd")
@example(raw="..")
@example(raw=".")
@example(raw="/")
@example(raw="a/b")
@example(raw="a\\b")
@example(raw="\x00")
@example(raw=" ^gspc ")
@example(raw="\u0131")  # dotless i upper-cases to I
@example(raw="\u00df")  # sharp s upper-cases to SS
def test_canonical_ticker_is_safe_for_paths(path_root: str, raw: str) -> None:
    try:
        ticker = canonical_ticker(raw)
    except TickerError as err:
        assert repr(raw) in str(err)
        return
    assert TICKER_PATTERN.fullmatch(ticker)
    assert canonical_ticker(ticker) == ticker  # idempotent
    resolved = os.path.realpath(os.fspath(ticker_path(path_root, ticker)))
    assert os.path.dirname(resolved) == os.path.realpath(path_root)
    assert os.path.basename(resolved) == f"{ticker}.parquet"


@settings(max_examples=100, deadline=None)
@given(
    dataset=st.from_regex(DATASET_PATTERN, fullmatch=True),
    day=st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
)
def test_partition_paths_stay_under_the_root(path_root: str, dataset: str, day: dt.date) -> None:
    path = PartitionStore(path_root).path(dataset, day)
    resolved = os.path.realpath(os.fspath(path))
    root = os.path.realpath(path_root)
    assert os.path.commonpath([resolved, root]) == root
    rel = os.path.relpath(resolved, root).split(os.sep)
    assert rel[0] == dataset
    assert rel[-1] == f"{day.isoformat()}.parquet"
    assert len(rel) == 3


@pytest.mark.parametrize(
    "dataset", ["../x", "..", ".", "", "x/../../y", "/abs", "Bars", "1bars", "bars-raw", "a\x00"]
)
def test_partition_store_rejects_unsafe_dataset_names(path_root: str, dataset: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(dataset))):
        PartitionStore(path_root).path(dataset, dt.date(2022, 12, 27))


@settings(max_examples=100, deadline=None)
@given(dataset=NASTY_TEXT)
def test_partition_store_accepts_only_the_dataset_pattern(path_root: str, dataset: str) -> None:
    store = PartitionStore(path_root)
    day = dt.date(2022, 12, 27)
    if DATASET_PATTERN.fullmatch(dataset):
        resolved = os.path.realpath(os.fspath(store.path(dataset, day)))
        assert resolved.startswith(os.path.realpath(path_root) + os.sep)
    else:
        with pytest.raises(ValueError):
            store.path(dataset, day)


def test_partition_store_rejects_non_date_days(path_root: str) -> None:
    with pytest.raises(TypeError, match=r"datetime\.date"):
        PartitionStore(path_root).path("bars", "2022-12-27")  # type: ignore[arg-type]
