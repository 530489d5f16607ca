"""The two bars-file readers (landing source, ``alphadag backtest --bars``) read a file alike."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from alphadag.backtest.cli import BarsFileError, read_bars
from alphadag.market.bars_file import date_expr, rename_plan
from alphadag.market.sources.csv_landing import CsvLandingSource, LandingFileError

VENDOR_CSV = (
    "Date,Ticker,Open,High,Low,Close,Adj Close,Volume\n"
    "2024-01-02 00:00:00,SPY,1.0,2.0,0.5,1.5,1.4,100\n"
    " 2024-01-03 ,SPY,1.5,2.5,1.0,2.0,1.9,200\n"
)


def test_both_readers_map_the_header_and_parse_the_dates_alike(tmp_path):
    path = tmp_path / "SPY.csv"
    path.write_text(VENDOR_CSV)
    cli = read_bars(path)
    landing = CsvLandingSource(directory=tmp_path).fetch(dt.date(2024, 1, 1), dt.date(2024, 1, 5))
    cols = ["ticker", "date", "open", "high", "low", "close"]
    assert cli.select(cols).rows() == landing.select(cols).sort("date").rows()
    assert cli["date"].to_list() == [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    assert "adj_close" not in cli.columns  # not a contract column: dropped by both


def test_a_date_type_without_dates_is_an_error_naming_the_file(tmp_path):
    pl.DataFrame({"date": [20240102], "close": [1.0]}).write_parquet(tmp_path / "X.parquet")
    with pytest.raises(BarsFileError, match=r"X\.parquet.*date_format"):
        read_bars(tmp_path / "X.parquet")
    src = CsvLandingSource(directory=tmp_path)
    with pytest.raises(LandingFileError, match=r"X\.parquet.*date_format"):
        src.fetch(dt.date(2024, 1, 1), dt.date(2024, 1, 5))
    with pytest.raises(ValueError, match="not a date"):
        date_expr(pl.Float64())


def test_rename_plan_prefers_the_map_then_the_exact_name():
    plan = rename_plan(["close", "Close", "Px"], {"Px": "open"})
    assert plan == {"Px": "open", "close": "close"}
