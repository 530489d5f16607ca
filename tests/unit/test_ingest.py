"""Unit tests for fetching raw bars per session partition, and for the bundled sample source."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.market.calendar import is_session, sessions
from alphadag.market.contracts import check_bars
from alphadag.market.ingest import (
    RAW_PARTITION_SCHEMA,
    attribute_partitions,
    fetch_partitions,
    fetch_window,
    read_partitions,
)
from alphadag.market.schema import RAW_BARS_SCHEMA
from alphadag.market.sources.base import BarSource, Coverage
from alphadag.market.sources.csv_landing import CsvLandingSource, LandingFileError
from alphadag.market.sources.sample import SampleSource
from alphadag.market.sources.synthetic import Fault, SyntheticSource
from alphadag.market.validation import validate
from alphadag.storage import split_by_partition

FRI, SAT, SUN, MON = (dt.date(2022, 12, d) for d in (9, 10, 11, 12))
XMAS_FRI, XMAS_SAT, XMAS_MON, XMAS_TUE = (dt.date(2022, 12, d) for d in (23, 24, 26, 27))
GOOD_FRIDAY, EASTER_MON = dt.date(2023, 4, 7), dt.date(2023, 4, 10)


# ---------------------------------------------------------------------------------------------
# fetch_window


def test_fetch_window_for_a_monday_after_a_weekend_starts_on_saturday() -> None:
    assert fetch_window([MON]) == (SAT, MON)


def test_fetch_window_for_a_monday_after_a_holiday_starts_on_the_holiday() -> None:
    assert not is_session(GOOD_FRIDAY)
    assert fetch_window([EASTER_MON]) == (GOOD_FRIDAY, EASTER_MON)


def test_fetch_window_after_a_long_weekend_covers_all_closed_days() -> None:
    assert not is_session(XMAS_MON)
    assert fetch_window([XMAS_TUE]) == (XMAS_SAT, XMAS_TUE)


def test_fetch_window_of_several_sessions_in_any_order() -> None:
    days = [dt.date(2022, 12, 29), XMAS_TUE, dt.date(2022, 12, 28)]
    assert fetch_window(days) == (XMAS_SAT, dt.date(2022, 12, 29))


def test_fetch_window_of_a_midweek_session_is_that_day() -> None:
    wed = dt.date(2022, 12, 14)
    assert fetch_window([wed]) == (wed, wed)


def test_fetch_window_needs_sessions() -> None:
    with pytest.raises(ValueError, match="no sessions"):
        fetch_window([])


@settings(max_examples=50, deadline=None)
@given(
    start=st.dates(min_value=dt.date(1995, 1, 1), max_value=dt.date(2025, 12, 1)),
    span=st.integers(min_value=0, max_value=20),
)
def test_fetch_windows_of_consecutive_runs_tile_the_calendar(start: dt.date, span: int) -> None:
    days = sessions(start, start + dt.timedelta(days=span + 14))[: span + 2]
    assert len(days) >= 2
    lo, hi = fetch_window(days)
    assert hi == days[-1]
    assert lo <= days[0]
    # every day in the window maps to a session of `days`, and the day before the window is a
    # session that is not one of them (so consecutive runs neither overlap nor leave gaps)
    assert is_session(lo - dt.timedelta(days=1))
    assert lo - dt.timedelta(days=1) not in days
    first_lo, first_hi = fetch_window(days[:1])
    rest_lo, rest_hi = fetch_window(days[1:])
    assert (first_lo, rest_hi) == (lo, hi)
    assert rest_lo == first_hi + dt.timedelta(days=1)


# ---------------------------------------------------------------------------------------------
# attribute_partitions / split_by_partition


def raw_rows(dates: list[dt.date | None], tickers: list[str] | None = None) -> pl.DataFrame:
    n = len(dates)
    return pl.DataFrame(
        {
            "ticker": tickers or [f"T{i}" for i in range(n)],
            "date": dates,
            "open": [None] * n,
            "high": [None] * n,
            "low": [None] * n,
            "close": [float(i + 1) for i in range(n)],
            "volume": [None] * n,
            "origin": [f"row{i}" for i in range(n)],
            "parse_errors": [None] * n,
        },
        schema=RAW_BARS_SCHEMA,
    )


def test_attribute_partitions_maps_weekend_rows_to_monday() -> None:
    frame = raw_rows([MON, SAT, FRI, SUN])
    out = attribute_partitions(frame, [FRI, MON])
    assert out["partition_date"].to_list() == [MON, MON, FRI, MON]
    assert out.drop("partition_date").equals(frame)  # rows kept in delivery order, untouched
    assert out.schema == pl.Schema(RAW_PARTITION_SCHEMA)


def test_attribute_partitions_maps_holiday_rows_to_the_next_session() -> None:
    frame = raw_rows([XMAS_MON, XMAS_SAT, XMAS_FRI, XMAS_TUE])
    out = attribute_partitions(frame, [XMAS_TUE, XMAS_FRI])
    assert out["partition_date"].to_list() == [XMAS_TUE, XMAS_TUE, XMAS_FRI, XMAS_TUE]


def test_attribute_partitions_sends_a_null_date_to_the_last_partition() -> None:
    frame = raw_rows([None, FRI, None])
    out = attribute_partitions(frame, [MON, FRI])
    assert out["partition_date"].to_list() == [MON, FRI, MON]
    assert out["origin"].to_list() == ["row0", "row1", "row2"]


def test_attribute_partitions_of_an_empty_frame() -> None:
    out = attribute_partitions(raw_rows([]), [MON])
    assert out.height == 0
    assert out.schema == pl.Schema(RAW_PARTITION_SCHEMA)


def test_split_by_partition_includes_empty_days_in_date_order() -> None:
    frame = attribute_partitions(raw_rows([MON, SAT, FRI]), [FRI, MON])
    tue = dt.date(2022, 12, 13)
    parts = split_by_partition(frame, "partition_date", [tue, MON, FRI])
    assert list(parts) == [FRI, MON, tue]
    assert parts[FRI]["origin"].to_list() == ["row2"]
    assert parts[MON]["origin"].to_list() == ["row0", "row1"]
    assert parts[tue].height == 0
    assert all(part.schema == frame.schema for part in parts.values())


def test_split_by_partition_rejects_stray_rows() -> None:
    frame = attribute_partitions(raw_rows([MON, FRI]), [FRI, MON])
    with pytest.raises(ValueError, match="outside the partitions") as info:
        split_by_partition(frame, "partition_date", [MON])
    assert "row1" in str(info.value)


# ---------------------------------------------------------------------------------------------
# fetch_partitions


@dataclass
class RecordingSource:
    """A fake source returning a fixed frame and recording each requested window."""

    frame: pl.DataFrame
    name: str = "fake"
    calls: list[tuple[dt.date, dt.date]] = field(default_factory=list)

    def fetch(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        self.calls.append((start, end))
        return self.frame

    def coverage(self) -> Coverage:
        return Coverage(None, None)


def test_fetch_partitions_asks_for_the_window_and_orders_by_partition() -> None:
    frame = raw_rows([MON, SAT, FRI, MON, None])
    source = RecordingSource(frame)
    assert isinstance(source, BarSource)
    out = fetch_partitions(source, [MON, FRI])
    assert source.calls == [(FRI, MON)]  # the day after Thursday's session
    assert out.select("origin", "partition_date").rows() == [
        ("row2", FRI),
        ("row0", MON),
        ("row1", MON),
        ("row3", MON),
        ("row4", MON),
    ]
    assert out.schema == pl.Schema(RAW_PARTITION_SCHEMA)


def test_read_partitions_ingests_good_landing_files_beside_a_broken_one(tmp_path) -> None:
    (tmp_path / "AAA.csv").write_text("date,close\n2022-12-09,1\n2022-12-10,2\n2022-12-12,3\n")
    (tmp_path / "BBB.csv").write_text("date,close\n2022-12-09,1\n2022-12-1")  # cut mid-line
    source = CsvLandingSource(directory=tmp_path)
    got = read_partitions(source, [FRI, MON])
    assert got.raw.schema == pl.Schema(RAW_PARTITION_SCHEMA)
    assert got.raw.select("ticker", "date", "partition_date").rows() == [
        ("AAA", FRI, FRI),
        ("AAA", SAT, MON),
        ("AAA", MON, MON),
    ]
    assert [r.path for r in got.rejected] == [str(tmp_path / "BBB.csv")]
    assert "BBB.csv" in got.rejected[0].reason
    with pytest.raises(LandingFileError, match=r"BBB\.csv"):
        fetch_partitions(source, [FRI, MON])  # the strict path names the file instead


def test_read_partitions_of_a_plain_source_rejects_nothing() -> None:
    source = RecordingSource(raw_rows([MON, FRI]))
    got = read_partitions(source, [FRI, MON])
    assert got.rejected == ()
    assert got.raw.equals(fetch_partitions(RecordingSource(raw_rows([MON, FRI])), [FRI, MON]))


@pytest.mark.parametrize(
    "bad",
    [
        raw_rows([MON]).drop("origin"),
        raw_rows([MON]).with_columns(pl.col("close").cast(pl.Float32)),
        raw_rows([MON]).with_columns(pl.col("date").cast(pl.String)),
        raw_rows([MON]).with_columns(extra=pl.lit(1)),
        raw_rows([MON]).with_columns(pl.col("date").cast(pl.Datetime("us"))),
    ],
    ids=["missing-column", "wrong-dtype", "string-date", "extra-column", "datetime-date"],
)
def test_fetch_partitions_rejects_a_source_with_the_wrong_schema(bad: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="source 'fake' returned schema"):
        fetch_partitions(RecordingSource(bad), [MON])


def test_fetch_partitions_attributes_a_synthetic_off_calendar_row_to_monday() -> None:
    src = SyntheticSource(
        tickers=["AAA", "BBB"],
        start="2022-11-01",
        end="2022-12-30",
        seed=5,
        faults=(Fault("off_calendar_date", "BBB", MON),),
    )
    raw = fetch_partitions(src, [FRI, MON])
    assert raw.select("ticker", "date", "partition_date").rows() == [
        ("AAA", FRI, FRI),
        ("BBB", FRI, FRI),
        ("AAA", MON, MON),
        ("BBB", MON, MON),
        ("BBB", SUN, MON),
    ]
    res = validate(raw, partition_dates=[FRI, MON])
    assert res.quarantined.select("ticker", "date", "rule").rows() == [
        ("BBB", SUN, "date_is_session")
    ]


# ---------------------------------------------------------------------------------------------
# the bundled sample source

STOCKS = [
    "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
    "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM",
]  # fmt: skip


@pytest.fixture(scope="session")
def sample() -> SampleSource:
    return SampleSource()


@pytest.fixture(scope="session")
def skfolio_prices():
    from skfolio.datasets import load_sp500_dataset

    return load_sp500_dataset()


def test_sample_on_2018_12_31_has_22_tickers(sample: SampleSource) -> None:
    day = dt.date(2018, 12, 31)
    bars = sample.fetch(day, day)
    assert bars.schema == pl.Schema(RAW_BARS_SCHEMA)
    assert bars.height == 22
    assert sorted(bars["ticker"].to_list()) == sorted([*STOCKS, "^GSPC", "^IXIC"])
    assert sample.tickers() == sorted([*STOCKS, "^GSPC", "^IXIC"])
    assert isinstance(sample, BarSource)


def test_sample_stocks_are_close_only_and_indices_have_ohlcv(sample: SampleSource) -> None:
    bars = sample.fetch(dt.date(2018, 12, 3), dt.date(2018, 12, 31))
    stocks = bars.filter(pl.col("ticker").is_in(STOCKS))
    assert stocks.height == 20 * len(sessions("2018-12-03", "2018-12-31"))
    for col in ("open", "high", "low", "volume"):
        assert stocks[col].null_count() == stocks.height, col
    assert stocks["close"].null_count() == 0
    assert set(stocks["origin"].to_list()) == {"skfolio:sp500_dataset"}
    indices = bars.filter(pl.col("ticker").str.starts_with("^"))
    for col in ("open", "high", "low", "close", "volume"):
        assert indices[col].null_count() == 0, col
    assert (indices["high"] >= indices["low"]).all()
    assert (indices["volume"] > 0).all()
    assert dict(indices.select("ticker", "origin").unique().rows()) == {
        "^GSPC": "arch.data.sp500",
        "^IXIC": "arch.data.nasdaq",
    }


def test_sample_coverage_ends_on_2022_12_28(sample: SampleSource) -> None:
    assert sample.coverage() == Coverage(dt.date(1990, 1, 2), dt.date(2022, 12, 28))
    last = sample.fetch(dt.date(2022, 12, 28), dt.date(2022, 12, 28))
    assert sorted(last["ticker"].to_list()) == STOCKS
    assert sample.fetch(dt.date(2022, 12, 29), dt.date(2024, 12, 31)).height == 0
    assert sample.fetch(dt.date(1980, 1, 1), dt.date(1990, 1, 1)).height == 0
    assert sample.fetch(dt.date(1990, 1, 2), dt.date(1990, 1, 2)).height == 20


def test_sample_rejects_an_inverted_window(sample: SampleSource) -> None:
    with pytest.raises(ValueError, match="after end"):
        sample.fetch(dt.date(2020, 1, 3), dt.date(2020, 1, 2))


@pytest.mark.parametrize(
    ("ticker", "day"),
    [
        ("AAPL", "2018-12-31"),
        ("MSFT", "1990-01-02"),
        ("XOM", "2022-12-28"),
        ("AMD", "2016-04-22"),
        ("JPM", "2008-09-15"),
    ],
)
def test_sample_stock_closes_match_skfolio(
    sample: SampleSource, skfolio_prices, ticker: str, day: str
) -> None:
    d = dt.date.fromisoformat(day)
    expected = float(skfolio_prices.loc[day, ticker])
    got = sample.fetch(d, d).filter(pl.col("ticker") == ticker)
    assert got["close"].to_list() == [expected]


@pytest.mark.parametrize(
    ("ticker", "module", "day"),
    [
        ("^GSPC", "sp500", "2018-12-31"),
        ("^GSPC", "sp500", "2008-10-13"),
        ("^IXIC", "nasdaq", "1999-01-04"),
        ("^IXIC", "nasdaq", "2000-03-10"),
    ],
)
def test_sample_index_bars_match_arch(sample: SampleSource, ticker: str, module: str, day: str):
    import importlib

    data = importlib.import_module(f"arch.data.{module}").load()
    src = data.loc[day]
    d = dt.date.fromisoformat(day)
    got = sample.fetch(d, d).filter(pl.col("ticker") == ticker)
    assert got.select("open", "high", "low", "close", "volume").rows() == [
        (
            float(src["Open"]),
            float(src["High"]),
            float(src["Low"]),
            float(src["Close"]),
            float(src["Volume"]),
        )
    ]


def test_sample_partitions_validate_cleanly(sample: SampleSource) -> None:
    days = sessions("2018-12-03", "2018-12-31")
    history_days = sessions("2018-11-01", "2018-11-30")
    raw = fetch_partitions(sample, days)
    hist = fetch_partitions(sample, history_days)
    res = validate(raw, partition_dates=days, history=hist)
    assert res.quarantined.height == 0
    assert res.kept.height == raw.height == 22 * len(days)
    assert check_bars(res.kept, days).success
    parts = split_by_partition(raw, "partition_date", days)
    assert all(part.height == 22 for part in parts.values())


def test_shipped_closes_are_skfolios_file_byte_for_byte() -> None:
    import hashlib
    import importlib.util
    from pathlib import Path

    from alphadag.market.sources.sample import STOCKS_FILE

    spec = importlib.util.find_spec("skfolio")
    theirs = (
        Path(next(iter(spec.submodule_search_locations))) / "datasets/data/sp500_dataset.csv.gz"
    )
    digest = hashlib.sha256(STOCKS_FILE.read_bytes()).hexdigest()
    assert digest == hashlib.sha256(theirs.read_bytes()).hexdigest()
    assert digest in (STOCKS_FILE.parent / "README.md").read_text()


_NO_SKFOLIO = """
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"skfolio", "cvxpy", "clarabel"}:
            raise ModuleNotFoundError(f"blocked: {name}")

sys.meta_path.insert(0, Block())
import datetime as dt
from alphadag.market.sources.sample import SampleSource
bars = SampleSource().fetch(dt.date(2018, 12, 31), dt.date(2018, 12, 31))
print(bars.height, sorted(m for m in sys.modules if m.split(".")[0] in {"skfolio", "cvxpy"}))
"""


def test_the_sample_needs_no_skfolio_installed() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _NO_SKFOLIO], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["22", "[]"]
