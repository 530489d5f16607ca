"""Unit tests for the CSV/Parquet landing-directory source and its sensor helpers."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from upath import UPath

from alphadag.market.schema import RAW_BARS_SCHEMA
from alphadag.market.sources.base import BarSource, Coverage, FileIsolatingSource, RejectedFile
from alphadag.market.sources.csv_landing import (
    CheckedFile,
    CsvLandingSource,
    LandingFileError,
    check_file,
    dates_in_file,
    file_fingerprint,
    landing_files,
    read_quarantine,
    record_rejected,
)
from alphadag.market.sources.synthetic import SyntheticSource

D1, D2, D3 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)
YAHOO_MAP = {"Date": "date", "Adj Close": "close"}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def yahoo_csv(rows: list[tuple[str, float, float]]) -> str:
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    lines += [f"{d},{o},{o + 1},{o - 1},{c + 5},{c},1000" for d, o, c in rows]
    return "\n".join(lines) + "\n"


def test_satisfies_the_bar_source_protocol(tmp_path: Path) -> None:
    src = CsvLandingSource(directory=tmp_path, coverage_start="2024-01-02", coverage_end=D3)
    assert isinstance(src, BarSource)
    assert src.name == "csv"
    assert src.coverage() == Coverage(D1, D3)
    assert CsvLandingSource(directory=tmp_path).coverage() == Coverage(None, None)


def test_empty_landing_directory_gives_an_empty_raw_frame(tmp_path: Path) -> None:
    out = CsvLandingSource(directory=tmp_path).fetch(D1, D3)
    assert out.height == 0
    assert out.schema == pl.Schema(RAW_BARS_SCHEMA)


def test_per_ticker_csv_takes_the_ticker_from_the_canonicalised_file_stem(tmp_path: Path) -> None:
    write(
        tmp_path / "aapl.csv", yahoo_csv([("2024-01-02", 10.0, 11.0), ("2024-01-03", 12.0, 13.0)])
    )
    brk = write(tmp_path / "brk.b.csv", yahoo_csv([("2024-01-03", 20.0, 21.0)]))
    out = CsvLandingSource(directory=str(tmp_path), column_map=YAHOO_MAP).fetch(D1, D3)
    assert out.schema == pl.Schema(RAW_BARS_SCHEMA)
    assert out.select("ticker", "date", "open", "high", "low", "close", "volume").rows() == [
        ("AAPL", D1, 10.0, 11.0, 9.0, 11.0, 1000.0),
        ("AAPL", D2, 12.0, 13.0, 11.0, 13.0, 1000.0),
        ("BRK-B", D2, 20.0, 21.0, 19.0, 21.0, 1000.0),
    ]
    assert out.filter(pl.col("ticker") == "BRK-B")["origin"].item() == str(brk)


def test_adj_close_mapping_wins_over_the_unadjusted_close_column(tmp_path: Path) -> None:
    write(tmp_path / "MSFT.csv", "Date,Close,Adj Close\n2024-01-02,100,90\n")
    mapped = CsvLandingSource(directory=tmp_path, column_map=YAHOO_MAP).fetch(D1, D1)
    assert mapped["close"].item() == 90.0
    unmapped = CsvLandingSource(directory=tmp_path).fetch(D1, D1)
    assert unmapped["close"].item() == 100.0  # case-insensitive fallback picks "Close"


def test_window_filters_rows_inclusively(tmp_path: Path) -> None:
    rows = [("2024-01-02", 1.0, 1.0), ("2024-01-03", 2.0, 2.0), ("2024-01-04", 3.0, 3.0)]
    write(tmp_path / "X.csv", yahoo_csv(rows))
    src = CsvLandingSource(directory=tmp_path, column_map=YAHOO_MAP)
    assert src.fetch(D2, D3)["date"].to_list() == [D2, D3]
    assert src.fetch(dt.date(2024, 2, 1), dt.date(2024, 2, 2)).height == 0
    with pytest.raises(ValueError, match="after end"):
        src.fetch(D3, D1)


def test_per_ticker_file_with_a_ticker_column_keeps_the_delivered_ticker(tmp_path: Path) -> None:
    write(tmp_path / "whatever.csv", "Symbol,Date,Close\nbrk.b,2024-01-02,400\n")
    src = CsvLandingSource(directory=tmp_path, column_map={"Symbol": "ticker", "Date": "date"})
    out = src.fetch(D1, D1)
    assert out["ticker"].to_list() == ["brk.b"]  # validation canonicalises later
    assert out["open"].is_null().all()  # close-only vendor: missing columns are null


def test_an_unexpected_separator_fails_loudly_instead_of_half_parsing(tmp_path: Path) -> None:
    for day, rows in {
        "2024-01-02": [("AAPL", 185.6), ("MSFT", 370.9)],
        "2024-01-03": [("AAPL", 184.2), ("MSFT", 370.6)],
    }.items():
        body = "".join(f"{t};{day.replace('-', '')};{c}\n" for t, c in rows)
        write(tmp_path / "daily" / f"{day}.csv", "sym;dt;px\n" + body)
    with pytest.raises(LandingFileError, match=r"2024-01-02\.csv"):
        CsvLandingSource(directory=tmp_path / "daily").fetch(D1, D3)


def test_per_day_layout_with_a_mapped_ticker_column(tmp_path: Path) -> None:
    for day, rows in {
        "20240102": [("AAPL", 185.6), ("MSFT", 370.9)],
        "20240103": [("AAPL", 184.2), ("MSFT", 370.6)],
    }.items():
        body = "".join(f"{t},{day},{c}\n" for t, c in rows)
        write(tmp_path / f"{day}.csv", "sym,dt,px\n" + body)
    src = CsvLandingSource(
        directory=tmp_path,
        column_map={"sym": "ticker", "dt": "date", "px": "close"},
        date_format="%Y%m%d",
    )
    out = src.fetch(D2, D3)
    assert out.select("ticker", "date", "close").rows() == [
        ("AAPL", D2, 184.2),
        ("MSFT", D2, 370.6),
    ]
    assert out["origin"].to_list() == [str(tmp_path / "20240103.csv")] * 2


def test_per_day_file_without_a_ticker_column_is_rejected_not_taken_as_a_ticker(
    tmp_path: Path,
) -> None:
    write(tmp_path / "2024-01-02.csv", "date,close\n2024-01-02,1\n")
    with pytest.raises(LandingFileError, match=r"2024-01-02\.csv.*looks like a date"):
        CsvLandingSource(directory=tmp_path).fetch(D1, D1)


def test_parquet_per_day_and_per_ticker_files_mix_with_csv(tmp_path: Path) -> None:
    pl.DataFrame(
        {
            "Symbol": ["AAPL", "MSFT"],
            "Date": [D1, D1],
            "Open": [1.0, 2.0],
            "Close": [1.5, 2.5],
            "Volume": [10, 20],
        }
    ).write_parquet(tmp_path / "2024-01-02.parquet")
    pl.DataFrame({"date": [dt.datetime(2024, 1, 3, 0, 0)], "close": [3.5]}).write_parquet(
        tmp_path / "nvda.PARQUET"
    )
    write(tmp_path / "ibm.csv", "date,close\n2024-01-04,4.5\n")
    src = CsvLandingSource(directory=tmp_path, column_map={"Symbol": "ticker"})
    out = src.fetch(D1, D3)
    assert out.schema == pl.Schema(RAW_BARS_SCHEMA)
    assert out.select("ticker", "date", "open", "close", "volume").rows() == [
        ("AAPL", D1, 1.0, 1.5, 10.0),
        ("MSFT", D1, 2.0, 2.5, 20.0),
        ("IBM", D3, None, 4.5, None),
        ("NVDA", D2, None, 3.5, None),
    ]


def test_date_format_and_iso_timestamps_are_parsed(tmp_path: Path) -> None:
    write(tmp_path / "a" / "X.csv", "Day,close\n01/03/2024,1\n")
    write(tmp_path / "b" / "X.csv", "date,close\n2024-01-03 00:00:00,1\n")
    us = CsvLandingSource(
        directory=tmp_path / "a", column_map={"Day": "date"}, date_format="%m/%d/%Y"
    )
    assert us.fetch(D1, D3)["date"].to_list() == [D2]
    assert CsvLandingSource(directory=tmp_path / "b").fetch(D1, D3)["date"].to_list() == [D2]


def test_unparseable_numbers_become_null_values_not_errors(tmp_path: Path) -> None:
    write(tmp_path / "X.csv", "date,close,volume\n2024-01-02,n/a,1e3\n")
    out = CsvLandingSource(directory=tmp_path).fetch(D1, D1)
    assert out.select("close", "volume").row(0) == (None, 1000.0)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("BAD.parquet", b"this is not parquet", r"BAD\.parquet"),
        ("X.csv", b"date,close\n2024-13-45,1\n", r"X\.csv.*does not parse.*row 1: '2024-13-45'"),
        ("Y.csv", b"date,close\n2024-01-02,1\n,2\n", r"Y\.csv.*missing.*row 2: None"),
        ("Z.csv", b"when,close\n2024-01-02,1\n", r"Z\.csv has no date column.*'when'"),
        ("bad name!.csv", b"date,close\n2024-01-02,1\n", r"bad name!\.csv.*not a valid ticker"),
        ("E.csv", b"", r"E\.csv"),
        ("R.csv", b"date,close\n2024-01-02,1,2,3\n", r"R\.csv"),
    ],
)
def test_a_broken_file_raises_a_value_error_naming_it(
    tmp_path: Path, name: str, content: bytes, match: str
) -> None:
    write(tmp_path / "ok.csv", "date,close\n2024-01-02,1\n")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        CsvLandingSource(directory=tmp_path).fetch(D1, D3)
    assert isinstance(info.value, LandingFileError)


GOOD = (
    "date,open,high,low,close,volume\n2024-01-02,10,11,9,10.5,100\n2024-01-03,11,12,10,11.5,200\n"
)


def _broken_bytes(kind: str, tmp_path: Path) -> bytes:
    if kind == "truncated_parquet":
        whole = tmp_path / "whole.parquet"
        pl.DataFrame({"date": [D1], "close": [1.0]}).write_parquet(whole)
        data = whole.read_bytes()
        whole.unlink()
        return data[: len(data) // 2]
    return {
        "empty": b"",
        "html": b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
        b"<body>upstream error, try again, later</body></html>\n",
        "cut_mid_line": b"date,open,high,low,close,volume\n2024-01-02,5,6,4,5.5,10\n2024-01-03,5.5,6",
        "no_close": b"date,open\n2024-01-02,5\n",
        "bad_date": b"date,close\n2024-01-02,5\n2024-13-45,6\n",
    }[kind]


BROKEN = {
    "empty": ("BAD.csv", r"BAD\.csv is empty \(0 bytes\)"),
    "html": ("BAD.csv", r"BAD\.csv is an HTML page"),
    "cut_mid_line": (
        "BAD.csv",
        r"BAD\.csv: data row 2 has 3 field\(s\) but the header has 6.*mid-line",
    ),
    "truncated_parquet": ("BAD.parquet", r"cannot parse landing file .*BAD\.parquet"),
    "no_close": ("BAD.csv", r"BAD\.csv has no close column"),
    "bad_date": ("BAD.csv", r"BAD\.csv.*does not parse.*row 2: '2024-13-45'"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_read_sets_a_broken_file_aside_and_still_reads_the_good_ones(
    tmp_path: Path, kind: str
) -> None:
    name, match = BROKEN[kind]
    write(tmp_path / "AAA.csv", GOOD)
    data = _broken_bytes(kind, tmp_path)
    (tmp_path / name).write_bytes(data)
    write(tmp_path / "ZZZ.csv", GOOD)
    src = CsvLandingSource(directory=tmp_path)
    assert isinstance(src, FileIsolatingSource)
    got = src.read(D1, D3)
    assert got.bars.schema == pl.Schema(RAW_BARS_SCHEMA)
    assert got.bars.select("ticker", "date", "close", "volume").rows() == [
        ("AAA", D1, 10.5, 100.0),
        ("AAA", D2, 11.5, 200.0),
        ("ZZZ", D1, 10.5, 100.0),
        ("ZZZ", D2, 11.5, 200.0),
    ]
    assert len(got.rejected) == 1
    rejected = got.rejected[0]
    assert rejected.path == str(tmp_path / name)
    assert rejected.fingerprint == hashlib.sha256(data).hexdigest()
    assert re.search(match, rejected.reason), rejected.reason
    # the strict fetch refuses instead of dropping the file silently
    with pytest.raises(LandingFileError, match=r"1 landing file\(s\) cannot be read: .*BAD"):
        src.fetch(D1, D3)
    # the sensor's check judges the file the same way
    checked = check_file(tmp_path / name)
    assert checked == rejected
    good = check_file(tmp_path / "AAA.csv")
    assert good == CheckedFile(
        str(tmp_path / "AAA.csv"), file_fingerprint(tmp_path / "AAA.csv"), [D1, D2]
    )


def test_every_broken_file_is_named_and_none_hides_another(tmp_path: Path) -> None:
    write(tmp_path / "A.csv", "")
    write(tmp_path / "B.csv", GOOD)
    write(tmp_path / "C.csv", "<html><body>Not Found</body></html>")
    got = CsvLandingSource(directory=tmp_path).read(D1, D1)
    assert [Path(r.path).name for r in got.rejected] == ["A.csv", "C.csv"]
    assert got.bars["ticker"].to_list() == ["B"]


def test_a_file_without_a_final_newline_is_fine_when_its_last_row_is_whole(tmp_path: Path) -> None:
    write(tmp_path / "A.csv", "date,close,volume\n2024-01-02,1,5")
    got = CsvLandingSource(directory=tmp_path).read(D1, D1)
    assert got.rejected == ()
    assert got.bars.select("close", "volume").rows() == [(1.0, 5.0)]


def test_a_short_row_in_the_middle_is_rejected_too(tmp_path: Path) -> None:
    write(tmp_path / "A.csv", "date,close,volume\n2024-01-02,1\n2024-01-03,2,5\n")
    (rejected,) = CsvLandingSource(directory=tmp_path).read(D1, D3).rejected
    assert "data row 1 has 2 field(s) but the header has 3: '2024-01-02,1'" in rejected.reason
    assert "mid-line" not in rejected.reason


def test_text_in_value_columns_is_kept_for_validation_not_dropped(tmp_path: Path) -> None:
    write(tmp_path / "A.csv", "date,open,close,volume\n2024-01-02,ten,abc,12abc\n")
    out = CsvLandingSource(directory=tmp_path).fetch(D1, D1)
    assert out.select("open", "close", "volume").row(0) == (None, None, None)
    assert out["parse_errors"].to_list() == [
        "open='ten' is not a number; close='abc' is not a number; volume='12abc' is not a number"
    ]


def test_rejected_files_are_recorded_once_with_a_copy_of_their_bytes(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write(landing / "A.csv", GOOD)
    write(landing / "B.csv", "<html>gateway timeout</html>")
    src = CsvLandingSource(directory=landing, pattern="**/*.csv")
    (rejected,) = src.read(D1, D3).rejected
    assert record_rejected(landing, [rejected]) == [rejected]
    assert record_rejected(landing, [rejected]) == []  # once per (path, fingerprint)
    (record,) = read_quarantine(landing)
    assert record["path"] == str(landing / "B.csv")
    assert record["fingerprint"] == hashlib.sha256(b"<html>gateway timeout</html>").hexdigest()
    assert record["reason"] == rejected.reason
    assert Path(record["copy"]).read_bytes() == b"<html>gateway timeout</html>"
    # the quarantine copy is never read back as a landing file, even with a recursive pattern
    assert [p.name for p in src.files()] == ["A.csv", "B.csv"]
    # the vendor fixes the file but it is still broken differently: a new record
    write(landing / "B.csv", "date,close\n2024-01-02\n2024-01-03,1,2\n")
    (again,) = src.read(D1, D3).rejected
    assert record_rejected(landing, [again]) == [again]
    assert [r["fingerprint"] for r in read_quarantine(landing)] == [
        record["fingerprint"],
        file_fingerprint(landing / "B.csv"),
    ]


def test_a_file_changed_since_it_was_judged_is_recorded_without_a_copy(tmp_path: Path) -> None:
    write(tmp_path / "B.csv", "")
    stale = RejectedFile(str(tmp_path / "B.csv"), "landing file B.csv is empty", "0" * 64)
    record_rejected(tmp_path, [stale])
    assert read_quarantine(tmp_path)[0]["copy"] is None


def test_a_bad_date_outside_the_window_is_still_reported(tmp_path: Path) -> None:
    write(tmp_path / "X.csv", "date,close\n2024-01-02,1\n20240199,2\n")
    with pytest.raises(LandingFileError, match="20240199"):
        CsvLandingSource(directory=tmp_path).fetch(D1, D1)


def test_integer_dates_need_a_date_format(tmp_path: Path) -> None:
    pl.DataFrame({"date": [20240102], "close": [1.0]}).write_parquet(tmp_path / "X.parquet")
    with pytest.raises(LandingFileError, match=r"X\.parquet.*date_format"):
        CsvLandingSource(directory=tmp_path).fetch(D1, D1)
    out = CsvLandingSource(directory=tmp_path, date_format="%Y%m%d").fetch(D1, D1)
    assert out["date"].to_list() == [D1]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"column_map": {"Px": "price"}}, ValueError, "not a contract column"),
        ({"column_map": {"A": "close", "B": "close"}}, ValueError, "both"),
        ({"column_map": ["Date"]}, TypeError, "mapping"),
        ({"date_format": "YYYY-MM-DD"}, ValueError, "strftime"),
        ({"coverage_start": D3, "coverage_end": D1}, ValueError, "after"),
        ({"pattern": ""}, ValueError, "pattern"),
        ({"directory": 42}, TypeError, "path"),
    ],
)
def test_bad_configuration_raises_actionable_errors(tmp_path: Path, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        CsvLandingSource(**{"directory": tmp_path, **kwargs})


def test_landing_files_lists_matching_data_files_sorted(tmp_path: Path) -> None:
    for name in ("b.csv", "a.parquet", "c.CSV", "notes.txt", ".partial.csv", "sub/d.csv"):
        write(tmp_path / name, "")
    assert [p.name for p in landing_files(tmp_path)] == ["a.parquet", "b.csv", "c.CSV"]
    assert [p.name for p in landing_files(str(tmp_path), "*.csv")] == ["b.csv"]
    assert [p.name for p in landing_files(tmp_path, "**/*.csv")] == ["b.csv", "d.csv"]
    assert all(isinstance(p, UPath) for p in landing_files(tmp_path))
    with pytest.raises(ValueError, match="inside the landing directory"):
        landing_files(tmp_path, "../*")
    with pytest.raises(ValueError, match="does not exist"):
        landing_files(tmp_path / "missing")


def test_file_fingerprint_is_the_sha256_and_tracks_content(tmp_path: Path) -> None:
    f = write(tmp_path / "X.csv", "date,close\n2024-01-02,1\n")
    first = file_fingerprint(f)
    assert first == hashlib.sha256(f.read_bytes()).hexdigest()
    assert file_fingerprint(str(f)) == first
    twin = write(tmp_path / "Y.csv", f.read_text())
    assert file_fingerprint(twin) == first  # content, not name or mtime
    write(f, "date,close\n2024-01-02,2\n")
    assert file_fingerprint(f) != first


def test_dates_in_file_returns_distinct_sorted_dates(tmp_path: Path) -> None:
    f = write(tmp_path / "X.csv", "D,close\n2024-01-04,1\n2024-01-02,1\n2024-01-04,2\n")
    assert dates_in_file(f, {"D": "date"}) == [D1, D3]
    pq = tmp_path / "day.parquet"
    pl.DataFrame({"date": [D2, D2], "ticker": ["A", "B"], "close": [1.0, 2.0]}).write_parquet(pq)
    assert dates_in_file(pq) == [D2]
    with pytest.raises(LandingFileError, match=r"X\.csv has no date column"):
        dates_in_file(f)
    with pytest.raises(ValueError, match="not a"):
        dates_in_file(tmp_path / "notes.txt")


def test_fsspec_urls_work_through_upath(tmp_path: Path) -> None:
    root = UPath(f"memory://landing-{uuid.uuid4().hex}")
    root.mkdir(parents=True)
    try:
        (root / "aapl.csv").write_text("Date,Adj Close\n2024-01-02,185.6\n")
        frame = pl.DataFrame({"ticker": ["MSFT"], "date": [D1], "close": [370.9]})
        buffer = tmp_path / "msft.parquet"
        frame.write_parquet(buffer)
        (root / "msft.parquet").write_bytes(buffer.read_bytes())
        src = CsvLandingSource(directory=str(root), column_map=YAHOO_MAP)
        out = src.fetch(D1, D1)
        assert out.select("ticker", "close").rows() == [("AAPL", 185.6), ("MSFT", 370.9)]
        assert out["origin"][0].startswith("memory://")
        assert dates_in_file(root / "msft.parquet") == [D1]
        assert len(file_fingerprint(root / "aapl.csv")) == 64
    finally:
        root.fs.rm(root.path, recursive=True)


SYN = SyntheticSource(tickers=["AAA", "BRK-B", "CCC"], start="2024-01-02", end="2024-03-28", seed=4)
SYN_BARS = SYN.fetch(SYN.start, SYN.end)


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The synthetic bars landed twice: per-day CSVs (vendor names) and per-ticker Parquet files."""
    per_day = tmp_path_factory.mktemp("per_day")
    vendor = SYN_BARS.drop("origin").rename({"ticker": "Symbol", "date": "Date", "close": "Last"})
    for (day,), part in vendor.partition_by("Date", as_dict=True).items():
        part.with_columns(pl.col("Date").dt.strftime("%d.%m.%Y")).write_csv(
            per_day / f"{day:%Y%m%d}.csv"
        )
    per_ticker = tmp_path_factory.mktemp("per_ticker")
    for (ticker,), part in SYN_BARS.drop("origin").partition_by("ticker", as_dict=True).items():
        part.drop("ticker").write_parquet(per_ticker / f"{ticker}.parquet")
    return {"per_day": per_day, "per_ticker": per_ticker}


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_landed_synthetic_bars_round_trip_through_both_layouts(
    landed: dict[str, Path], data: st.DataObject
) -> None:
    lo = data.draw(st.dates(dt.date(2023, 12, 25), dt.date(2024, 3, 31)), label="lo")
    hi = data.draw(st.dates(lo, dt.date(2024, 4, 5)), label="hi")
    expected = SYN.fetch(lo, hi).drop("origin").sort("date", "ticker")
    per_day = CsvLandingSource(
        directory=landed["per_day"],
        column_map={"Symbol": "ticker", "Date": "date", "Last": "close"},
        date_format="%d.%m.%Y",
    ).fetch(lo, hi)
    per_ticker = CsvLandingSource(directory=landed["per_ticker"], pattern="*.parquet").fetch(lo, hi)
    for out in (per_day, per_ticker):
        assert out.schema == pl.Schema(RAW_BARS_SCHEMA)
        assert out.drop("origin").sort("date", "ticker").equals(expected)
    assert (
        dates_in_file(landed["per_ticker"] / "CCC.parquet")
        == SYN_BARS.filter(pl.col("ticker") == "CCC")["date"].to_list()
    )
