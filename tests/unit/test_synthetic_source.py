"""Unit tests for the deterministic synthetic OHLCV source and its fault injection."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import pickle

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.market.calendar import is_session, sessions
from alphadag.market.schema import RAW_BARS_SCHEMA
from alphadag.market.sources.base import BarSource, Coverage
from alphadag.market.sources.synthetic import (
    FAULT_KINDS,
    Fault,
    SyntheticSource,
    random_faults,
)

START = dt.date(2023, 1, 3)
END = dt.date(2023, 6, 30)
TICKERS = ["AAA", "BBB", "CCC"]
SESSIONS = sessions(START, END)


def make(**kwargs) -> SyntheticSource:
    params = {"tickers": TICKERS, "start": START, "end": END, "seed": 11}
    params.update(kwargs)
    return SyntheticSource(**params)


@pytest.fixture(scope="module")
def clean() -> pl.DataFrame:
    return make().fetch(START, END)


def test_satisfies_the_bar_source_protocol_and_schema(clean: pl.DataFrame) -> None:
    src = make()
    assert isinstance(src, BarSource)
    assert src.name == "synthetic"
    assert src.coverage() == Coverage(START, END)
    assert clean.schema == pl.Schema(RAW_BARS_SCHEMA)
    assert clean["origin"].unique().to_list() == ["synthetic:seed=11"]


def test_one_row_per_ticker_and_session_sorted_by_date_then_ticker(clean: pl.DataFrame) -> None:
    assert clean.height == len(SESSIONS) * len(TICKERS)
    assert clean.select("date", "ticker").equals(
        clean.select("date", "ticker").sort("date", "ticker")
    )
    assert clean["date"].unique().sort().to_list() == SESSIONS
    assert clean.group_by("ticker", "date").len()["len"].max() == 1


def test_clean_bars_are_ohlc_consistent_positive_and_complete(clean: pl.DataFrame) -> None:
    assert clean.drop("parse_errors").null_count().sum_horizontal().item() == 0
    assert clean["parse_errors"].is_null().all()
    values = clean.select("open", "high", "low", "close", "volume")
    assert all(values[c].is_finite().all() for c in values.columns)
    checks = clean.select(
        high_ok=(pl.col("high") > pl.max_horizontal("open", "close")).all(),
        low_ok=(pl.col("low") < pl.min_horizontal("open", "close")).all(),
        positive=(pl.col("low") > 0).all(),
        volume_ok=((pl.col("volume") >= 1) & (pl.col("volume") == pl.col("volume").round())).all(),
    )
    assert checks.row(0) == (True, True, True, True)


def test_same_arguments_give_identical_bars_across_instances() -> None:
    a = make().fetch(START, END)
    b = make().fetch(START, END)
    assert a.equals(b)
    assert not a.equals(make(seed=12).fetch(START, END))


def test_ticker_bars_do_not_depend_on_the_other_tickers(clean: pl.DataFrame) -> None:
    alone = make(tickers=["bbb"]).fetch(START, END)
    assert alone.equals(clean.filter(pl.col("ticker") == "BBB"))
    shuffled = make(tickers=["CCC", "DDD", "AAA"]).fetch(START, END)
    for ticker in ("AAA", "CCC"):
        assert shuffled.filter(pl.col("ticker") == ticker).equals(
            clean.filter(pl.col("ticker") == ticker)
        )
    assert shuffled["ticker"].unique(maintain_order=True).to_list() == ["AAA", "CCC", "DDD"]


def test_extending_the_coverage_end_keeps_earlier_bars(clean: pl.DataFrame) -> None:
    longer = make(end=dt.date(2023, 12, 29)).fetch(START, END)
    assert longer.equals(clean)


def test_fetch_outside_the_coverage_is_empty_and_partial_overlap_is_clipped() -> None:
    src = make()
    before = src.fetch(dt.date(2020, 1, 1), dt.date(2020, 12, 31))
    assert before.height == 0
    assert before.schema == pl.Schema(RAW_BARS_SCHEMA)
    overlap = src.fetch(dt.date(2022, 12, 1), START)
    assert overlap["date"].unique().to_list() == [START]


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    fault_seed=st.integers(0, 2**32),
    n_faults=st.integers(0, 12),
)
def test_a_sub_window_of_a_fetch_equals_the_fetch_of_the_sub_window(
    data: st.DataObject, fault_seed: int, n_faults: int
) -> None:
    faults = random_faults(n_faults, seed=fault_seed, tickers=TICKERS, sessions=SESSIONS)
    src = make(faults=faults)
    lo = data.draw(st.dates(START - dt.timedelta(days=5), END), label="lo")
    hi = data.draw(st.dates(lo, END + dt.timedelta(days=5)), label="hi")
    wide = src.fetch(START - dt.timedelta(days=7), END)
    assert src.fetch(lo, hi).equals(wide.filter(pl.col("date").is_between(lo, hi)))


def test_vol_zero_gives_the_exact_drift_path() -> None:
    src = make(tickers=["AAA"], drift=0.252, vol=0.0, start_price=50.0)
    bars = src.fetch(START, END)
    expected = 50.0 * np.exp(0.001 * np.arange(1, bars.height + 1))
    np.testing.assert_allclose(bars["close"].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(bars["open"].to_numpy()[0], 50.0, rtol=1e-12)


def test_given_vol_matches_the_realised_volatility_of_log_returns() -> None:
    src = SyntheticSource(
        tickers=["AAA"], start="2000-01-03", end="2019-12-31", seed=3, drift=0.0, vol={"aaa": 0.3}
    )
    closes = src.fetch(dt.date(2000, 1, 3), dt.date(2019, 12, 31))["close"].to_numpy()
    realised = np.diff(np.log(closes)).std(ddof=1) * math.sqrt(252)
    assert realised == pytest.approx(0.3, rel=0.05)


def test_drawn_parameters_differ_per_ticker_but_not_per_call(clean: pl.DataFrame) -> None:
    vols = (
        clean.sort("ticker", "date")
        .with_columns(ret=pl.col("close").log().diff().over("ticker"))
        .group_by("ticker")
        .agg(pl.col("ret").std())
        .sort("ticker")["ret"]
        .to_list()
    )
    assert len(set(np.round(vols, 6))) == len(TICKERS)
    assert all(0.05 / math.sqrt(252) < v < 0.6 / math.sqrt(252) for v in vols)


def test_pickling_and_replace_keep_the_configuration_and_the_bars(clean: pl.DataFrame) -> None:
    src = make(drift={"AAA": 0.1}, faults=(Fault("nan", "AAA", START),))
    src.fetch(START, START)  # fills the cache
    copy = pickle.loads(pickle.dumps(src))
    assert copy == src
    assert "panel" not in copy._cache
    assert copy.fetch(START, END).equals(src.fetch(START, END))
    assert dataclasses.replace(make(), seed=11).fetch(START, END).equals(clean)
    assert dataclasses.replace(make(tickers=None, n_tickers=2), seed=1).tickers == (
        "SYN000",
        "SYN001",
    )


def test_n_tickers_generates_zero_padded_names() -> None:
    assert make(tickers=None, n_tickers=3).tickers == ("SYN000", "SYN001", "SYN002")
    listed = make(n_tickers=20)  # the fallback count is ignored when tickers are listed
    assert (listed.tickers, listed.n_tickers) == (tuple(TICKERS), 3)
    wide = SyntheticSource(n_tickers=1001, start=START, end=START)
    assert wide.tickers[0] == "SYN0000"
    assert wide.tickers[-1] == "SYN1000"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tickers": None}, ValueError, "either tickers"),
        ({"tickers": None, "n_tickers": 0}, ValueError, "positive integer"),
        ({"tickers": []}, ValueError, "empty"),
        ({"tickers": "AAA"}, TypeError, "not a string"),
        ({"tickers": ["../x"]}, ValueError, "not allowed"),
        ({"start": END, "end": START}, ValueError, "after end"),
        ({"start": "2023-01-01", "end": "2023-01-01"}, ValueError, "no XNYS session"),
        ({"start": "01/03/2023"}, ValueError, "ISO date"),
        ({"seed": -1}, ValueError, "non-negative"),
        ({"start_price": 0}, ValueError, "start_price"),
        ({"vol": -0.1}, ValueError, "vol"),
        ({"drift": {"ZZZ": 0.1}}, ValueError, "ZZZ"),
        ({"drift": float("nan")}, ValueError, "finite"),
        ({"faults": (Fault("nan", "ZZZ", START),)}, ValueError, "not a source ticker"),
        ({"faults": (Fault("nan", "AAA", "2023-01-07"),)}, ValueError, "not a session"),
        ({"faults": Fault("nan", "AAA", START)}, TypeError, "single Fault"),
    ],
)
def test_bad_arguments_raise_actionable_errors(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        make(**kwargs)


def test_fault_validates_kind_and_canonicalises_ticker() -> None:
    with pytest.raises(ValueError, match="unknown"):
        Fault("typo", "AAA", START)  # type: ignore[arg-type]
    assert Fault("nan", " brk.b ", "2023-01-03") == Fault("nan", "BRK-B", START)


def _row(frame: pl.DataFrame, ticker: str, day: dt.date) -> pl.DataFrame:
    return frame.filter((pl.col("ticker") == ticker) & (pl.col("date") == day))


DAY = dt.date(2023, 3, 15)  # a Wednesday


@pytest.mark.parametrize("kind", ["nan", "negative_price", "high_lt_low", "spike_10x"])
def test_value_faults_change_only_their_row(clean: pl.DataFrame, kind: str) -> None:
    faulty = make(faults=(Fault(kind, "BBB", DAY),)).fetch(START, END)
    assert faulty.height == clean.height
    hit = (pl.col("ticker") == "BBB") & (pl.col("date") == DAY)
    assert faulty.filter(~hit).equals(clean.filter(~hit))
    assert not faulty.filter(hit).equals(clean.filter(hit))


def test_nan_fault_sets_close_to_nan(clean: pl.DataFrame) -> None:
    row = _row(make(faults=(Fault("nan", "BBB", DAY),)).fetch(START, END), "BBB", DAY)
    assert math.isnan(row["close"].item())
    assert row["open"].item() == _row(clean, "BBB", DAY)["open"].item()


def test_negative_price_fault_makes_close_negative(clean: pl.DataFrame) -> None:
    row = _row(make(faults=(Fault("negative_price", "BBB", DAY),)).fetch(START, END), "BBB", DAY)
    assert row["close"].item() == -_row(clean, "BBB", DAY)["close"].item()


def test_high_lt_low_fault_swaps_high_and_low(clean: pl.DataFrame) -> None:
    row = _row(make(faults=(Fault("high_lt_low", "BBB", DAY),)).fetch(START, END), "BBB", DAY)
    before = _row(clean, "BBB", DAY)
    assert row["high"].item() < row["low"].item()
    assert (row["high"].item(), row["low"].item()) == (before["low"].item(), before["high"].item())


def test_spike_fault_multiplies_close_by_ten_and_keeps_ohlc_consistent(clean: pl.DataFrame) -> None:
    row = _row(make(faults=(Fault("spike_10x", "BBB", DAY),)).fetch(START, END), "BBB", DAY)
    before = _row(clean, "BBB", DAY)
    assert row["close"].item() == pytest.approx(10 * before["close"].item(), rel=1e-12)
    assert row["high"].item() >= max(row["open"].item(), row["close"].item())
    assert row["low"].item() <= min(row["open"].item(), row["close"].item())
    assert row["low"].item() > 0


def test_duplicate_row_fault_emits_the_row_twice_at_the_end(clean: pl.DataFrame) -> None:
    faulty = make(faults=(Fault("duplicate_row", "CCC", DAY),)).fetch(START, END)
    assert faulty.height == clean.height + 1
    rows = _row(faulty, "CCC", DAY)
    assert rows.height == 2
    assert rows.n_unique() == 1
    assert faulty.tail(1).equals(_row(clean, "CCC", DAY))
    assert faulty.head(clean.height).equals(clean)


def test_off_calendar_fault_adds_a_copy_dated_the_preceding_non_session(
    clean: pl.DataFrame,
) -> None:
    monday = dt.date(2023, 3, 13)
    faulty = make(faults=(Fault("off_calendar_date", "AAA", monday),)).fetch(START, END)
    assert faulty.height == clean.height + 1
    extra = faulty.tail(1)
    off_day = extra["date"].item()
    assert off_day == dt.date(2023, 3, 12)
    assert not is_session(off_day)
    original = _row(clean, "AAA", monday)
    assert extra.drop("date").equals(original.drop("date"))
    # a Wednesday's nearest preceding non-session is the weekend before it
    wednesday = Fault("off_calendar_date", "AAA", DAY)
    assert wednesday.extra_row_date() == dt.date(2023, 3, 12)
    # after a holiday Monday (Presidents' Day 2023-02-20) the holiday itself is used
    assert Fault("off_calendar_date", "AAA", "2023-02-21").extra_row_date() == dt.date(2023, 2, 20)


def test_an_injected_row_appears_exactly_when_its_own_date_is_in_the_window() -> None:
    monday = dt.date(2023, 3, 13)
    src = make(faults=(Fault("off_calendar_date", "AAA", monday),))
    assert src.fetch(monday, monday).height == len(TICKERS)
    weekend = src.fetch(dt.date(2023, 3, 11), dt.date(2023, 3, 12))
    assert weekend["date"].to_list() == [dt.date(2023, 3, 12)]


def test_faults_combine_on_one_row_and_copies_carry_them() -> None:
    faults = (
        Fault("spike_10x", "AAA", DAY),
        Fault("nan", "AAA", DAY),
        Fault("duplicate_row", "AAA", DAY),
    )
    rows = _row(make(faults=faults).fetch(DAY, DAY), "AAA", DAY)
    assert rows.height == 2
    assert rows["close"].is_nan().all()
    assert (rows["high"] > rows["open"] * 5).all()  # the spike raised high before close became NaN


def test_faults_are_stored_deduplicated_and_sorted() -> None:
    a = Fault("nan", "BBB", DAY)
    b = Fault("duplicate_row", "AAA", START)
    assert make(faults=(a, b, a)).faults == (b, a)
    assert make(faults=(a, b)) == make(faults=(b, a))


def test_random_faults_are_reproducible_distinct_and_valid() -> None:
    first = random_faults(40, seed=5, tickers=TICKERS, sessions=SESSIONS)
    assert first == random_faults(40, seed=5, tickers=TICKERS, sessions=SESSIONS)
    assert first != random_faults(40, seed=6, tickers=TICKERS, sessions=SESSIONS)
    assert len(set(first)) == 40
    assert {f.kind for f in first} == set(FAULT_KINDS)
    assert set(make(faults=first).faults) == set(first)  # all valid for the source
    only_nan = random_faults(5, seed=1, tickers=TICKERS, sessions=SESSIONS, kinds=["nan"])
    assert {f.kind for f in only_nan} == {"nan"}
    with pytest.raises(ValueError, match="distinct faults"):
        random_faults(7, seed=1, tickers=["AAA"], sessions=[DAY])
    with pytest.raises(ValueError, match="unknown"):
        random_faults(1, seed=1, tickers=["AAA"], sessions=[DAY], kinds=["boom"])


@settings(max_examples=20, deadline=None)
@given(fault_seed=st.integers(0, 2**32), n_faults=st.integers(1, 15))
def test_every_random_fault_is_visible_in_the_output(fault_seed: int, n_faults: int) -> None:
    faults = random_faults(n_faults, seed=fault_seed, tickers=TICKERS, sessions=SESSIONS)
    out = make(faults=faults).fetch(START - dt.timedelta(days=7), END)
    reference = make().fetch(START, END)
    for fault in faults:
        rows = _row(out, fault.ticker, fault.date)
        clean_close = _row(reference, fault.ticker, fault.date)["close"].item()
        kinds = {f.kind for f in faults if (f.ticker, f.date) == (fault.ticker, fault.date)}
        if fault.kind == "nan":
            assert rows["close"].is_nan().all()
        elif fault.kind == "negative_price" and "nan" not in kinds:
            assert (rows["close"] < 0).all()
        elif fault.kind == "spike_10x" and not kinds & {"nan", "negative_price"}:
            assert rows["close"].to_list() == pytest.approx([10 * clean_close] * rows.height)
        elif fault.kind == "high_lt_low":
            assert (rows["high"] < rows["low"]).all()
        elif fault.kind == "duplicate_row":
            assert rows.height == 2
        elif fault.kind == "off_calendar_date":
            copies = _row(out, fault.ticker, fault.extra_row_date())
            assert copies.height >= 1
            assert not is_session(fault.extra_row_date())
    n_extra = sum(f.kind in ("duplicate_row", "off_calendar_date") for f in faults)
    assert out.height == len(SESSIONS) * len(TICKERS) + n_extra
