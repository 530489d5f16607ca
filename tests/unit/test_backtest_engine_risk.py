"""Risk controls and sizing of ``run_backtest``: stops, caps, leverage, the drawdown breaker,
volatility targeting and fractional shares. Expected values are worked out by hand (or with
numpy in the test), never by the engine."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.backtest import run_backtest, strategies

D0 = dt.date(2020, 1, 1)


def _dates(n: int) -> list[dt.date]:
    return [D0 + dt.timedelta(days=i) for i in range(n)]


@dataclass(frozen=True)
class Fixed:
    """A strategy whose signal per bar is given (None: keep the previous target)."""

    values: tuple[float | None, ...]
    name: str = "fixed"
    warmup: int = 0

    def signals(self, bars: pl.DataFrame, predictions: pl.DataFrame | None = None) -> pl.DataFrame:
        out = []
        for _, group in bars.sort("date").group_by("ticker", maintain_order=True):
            out.append(
                group.select("date", "ticker").with_columns(
                    pl.Series("signal", self.values[: group.height], dtype=pl.Float64)
                )
            )
        return pl.concat(out)


def _ohlc(open_, high, low, close, ticker="A") -> pl.DataFrame:
    n = len(close)
    return pl.DataFrame(
        {"ticker": ticker, "date": _dates(n), "open": open_, "high": high, "low": low,
         "close": close},
        schema_overrides={c: pl.Float64 for c in ("open", "high", "low", "close")},
    )  # fmt: skip


def _run(bars, strat=None, **kw):
    kw.setdefault("cash", 1_000.0)
    kw.setdefault("commission", 0.0)
    return run_backtest(bars, strat or strategies.BuyAndHold(), **kw)


# --- stop-loss / take-profit -----------------------------------------------------------------


def test_stop_loss_fills_at_the_level_and_stays_out():
    # entry at bar 1's open 100; stop level 90: bar 2's low 95 holds, bar 3's low 89 hits
    bars = _ohlc(
        open_=[100, 100, 99, 97, 95],
        high=[101, 102, 100, 98, 99],
        low=[99, 92, 95, 89, 90],
        close=[100, 99, 97, 95, 98],
    )
    r = _run(bars, stop_loss=0.1)
    t = r.trades.row(0, named=True)
    assert r.trades.height == 1  # BuyAndHold's target never changes: no re-entry
    assert (t["entry_price"], t["exit_price"], t["size"]) == (100.0, 90.0, 10.0)
    assert t["exit_date"] == D0 + dt.timedelta(days=3) and t["exit_reason"] == "stop_loss"
    assert r.stats.equity_final == 900.0
    assert r.equity["equity"].to_list()[3:] == [900.0, 900.0]


def test_stop_loss_gapped_through_fills_at_the_open():
    bars = _ohlc(
        open_=[100, 100, 85, 86], high=[100, 101, 87, 90], low=[100, 99, 80, 84],
        close=[100, 100, 86, 88],
    )  # fmt: skip
    r = _run(bars, stop_loss=0.1)
    assert r.trades["exit_price"].to_list() == [85.0]
    assert r.trades["exit_reason"].to_list() == ["stop_loss"]


def test_entry_bar_range_is_not_checked():
    # bar 1 (the entry bar, filled at its open) dips to 80: the check starts on bar 2
    bars = _ohlc(
        open_=[100, 100, 100], high=[100, 100, 101], low=[100, 80, 99], close=[100, 100, 100]
    )
    r = _run(bars, stop_loss=0.1)
    assert r.trades["exit_reason"].to_list() == ["end"]


def test_take_profit_at_the_level_or_a_better_gap():
    kw = dict(open_=[100, 100, 105, 100], low=[100, 99, 104, 99], close=[100, 100, 106, 100])
    at_level = _run(_ohlc(high=[100, 101, 111, 101], **kw), take_profit=0.1)
    assert at_level.trades["exit_price"].to_list() == [pytest.approx(110.0)]
    assert at_level.trades["exit_reason"].to_list() == ["take_profit"]
    gapped = _ohlc(open_=[100, 100, 115, 100], high=[100, 101, 116, 101],
                   low=[100, 99, 112, 99], close=[100, 100, 113, 100])  # fmt: skip
    assert _run(gapped, take_profit=0.1).trades["exit_price"].to_list() == [115.0]


def test_stop_first_when_a_bar_reaches_both():
    bars = _ohlc(open_=[100, 100, 100], high=[100, 100, 120], low=[100, 100, 80],
                 close=[100, 100, 100])  # fmt: skip
    r = _run(bars, stop_loss=0.1, take_profit=0.1)
    assert r.trades["exit_price"].to_list() == [90.0]


def test_close_only_stop_fills_at_the_close():
    bars = pl.DataFrame({"ticker": "A", "date": _dates(5), "close": [100.0, 100, 95, 88, 90]})
    r = _run(bars, stop_loss=0.1)  # entry at bar 1's close 100; bar 3 closes at 88 < 90
    assert r.trades["exit_price"].to_list() == [88.0]
    assert r.trades["exit_date"].to_list() == [D0 + dt.timedelta(days=3)]


def test_short_stop_loss_mirrors():
    bars = _ohlc(open_=[100, 100, 105, 100], high=[100, 101, 112, 101],
                 low=[100, 99, 104, 99], close=[100, 100, 106, 100])  # fmt: skip
    r = _run(bars, Fixed((-1.0, None, None, None)), stop_loss=0.1, allow_short=True)
    t = r.trades.row(0, named=True)
    assert (t["size"], t["entry_price"]) == (-10.0, 100.0)
    assert t["exit_price"] == pytest.approx(110.0) and t["pnl"] == pytest.approx(-100.0)


def test_a_stopped_ticker_re_enters_on_a_new_target():
    bars = _ohlc(
        open_=[100, 100, 95, 90, 90, 90], high=[100, 100, 96, 91, 91, 91],
        low=[100, 99, 80, 89, 89, 89], close=[100, 100, 90, 90, 90, 90],
    )  # fmt: skip
    r = _run(bars, Fixed((1.0, None, None, 0.0, 1.0, None)), stop_loss=0.1)
    # stopped on bar 2 at 90; the target goes 0 on bar 3 and 1 on bar 4: re-entry at bar 5
    assert r.trades["exit_reason"].to_list() == ["stop_loss", "end"]
    assert r.trades["entry_date"].to_list() == [D0 + dt.timedelta(days=1), D0 + dt.timedelta(5)]


def _random_ohlc(seed: int, n: int = 250) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.02, n))  # gaps happen
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
    return _ohlc(open_=open_, high=high, low=low, close=close)


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 10_000), stop=st.floats(0.01, 0.2))
def test_stop_loss_never_lets_a_long_trade_lose_more_than_stop_plus_gap(seed, stop):
    bars = _random_ohlc(seed)
    r = _run(bars, strategies.SmaCross(fast=3, slow=10), stop_loss=stop, cash=100_000.0)
    o, lo = bars["open"].to_numpy(), bars["low"].to_numpy()
    index = {d: i for i, d in enumerate(bars["date"].to_list())}
    for t in r.trades.iter_rows(named=True):
        entry, exit_ = index[t["entry_date"]], index[t["exit_date"]]
        level = t["entry_price"] * (1 - stop)
        # no bar strictly between the entry and the exit bar reached the stop
        assert (lo[entry + 1 : exit_] > level).all()
        # a loss beyond the stop only through a gap at the exit bar's open
        floor = min(level, o[exit_]) if t["exit_reason"] == "stop_loss" else -math.inf
        assert t["exit_price"] >= floor - 1e-9
        if t["exit_reason"] == "stop_loss":
            assert t["return_pct"] >= min(-stop, o[exit_] / t["entry_price"] - 1) * 100 - 1e-9


# --- caps and leverage -----------------------------------------------------------------------


def _multi(seed: int, tickers=("A", "B", "C", "D"), n: int = 120) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for tk in tickers:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        open_ = close * np.exp(rng.normal(0, 0.005, n))
        frames.append(pl.DataFrame({"ticker": tk, "date": _dates(n), "open": open_,
                                    "close": close}))  # fmt: skip
    return pl.concat(frames)


def test_max_weight_caps_each_entry():
    bars = _multi(1)
    capped = _run(bars, sizing="equal_weight", max_weight=0.1, cash=100_000.0)
    free = _run(bars, sizing="equal_weight", cash=100_000.0)
    value = lambda r: (r.trades["size"] * r.trades["entry_price"]).to_numpy()  # noqa: E731
    assert (value(capped) <= 10_000.0).all() and (value(capped) > 10_000.0 - 60).all()
    assert (value(free) > 20_000.0).all()
    single = bars.filter(pl.col("ticker") == "A")
    r = _run(single, max_weight=0.3, cash=100_000.0)
    price = single["open"][1]
    assert r.trades["size"].to_list() == [math.floor(30_000.0 / price)]


def test_max_gross_leverage_scales_all_in_and_borrows_above_one():
    bars = _multi(2).filter(pl.col("ticker") == "A")
    price = bars["open"][1]
    half = _run(bars, max_gross_leverage=0.5, cash=10_000.0)
    double = _run(bars, max_gross_leverage=2.0, cash=10_000.0)
    assert half.trades["size"].to_list() == [math.floor(5_000.0 / price)]
    assert double.trades["size"].to_list() == [math.floor(20_000.0 / price)]
    assert double.equity["cash"][1] < 0  # a margin loan
    assert math.isclose(double.stats.equity_final, 10_000.0 + double.trades["pnl"].sum())


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000), lev=st.floats(0.1, 1.0), mw=st.floats(0.05, 1.0))
def test_cash_never_negative_without_leverage(seed, lev, mw):
    r = _run(
        _multi(seed), strategies.SmaCross(fast=3, slow=12), sizing="equal_weight",
        max_gross_leverage=lev, max_weight=mw, commission=0.002, cash=100_000.0,
    )  # fmt: skip
    assert (r.equity["cash"] >= -1e-6).all()
    # the first bar's entries (sized on the starting equity) respect both caps
    first = r.trades.filter(pl.col("entry_date") == r.trades["entry_date"].min())
    value = (first["size"] * first["entry_price"]).to_numpy()
    assert value.sum() <= lev * 100_000.0 + 1e-6
    assert (value <= mw * 100_000.0 + 1e-6).all()


# --- drawdown circuit breaker ----------------------------------------------------------------


def _falling() -> pl.DataFrame:
    close = [100.0, 100, 95, 88, 80, 70, 60, 66, 72, 80]
    return pl.DataFrame({"ticker": "A", "date": _dates(len(close)), "close": close})


def test_drawdown_limit_flattens_for_the_rest_of_the_run():
    # close-only: entry at bar 1's close 100 (10 shares); bar 3's close 88 is 12% below the
    # peak 1000 > 10%: flat at bar 4's close 80, equity 800 to the end
    r = _run(_falling(), drawdown_limit=0.1)
    assert r.trades["exit_price"].to_list() == [80.0]
    assert r.trades["exit_reason"].to_list() == ["drawdown_limit"]
    assert r.equity["equity"].to_list()[4:] == [800.0] * 6


def test_drawdown_limit_with_cooldown_resumes():
    # tripped on bar 3, flat through bars 4..5, the target (still long) fills at bar 6's close
    r = _run(_falling(), drawdown_limit=0.1, cooldown=2)
    assert r.trades["exit_reason"].to_list()[0] == "drawdown_limit"
    second = r.trades.row(1, named=True)
    assert second["entry_date"] == D0 + dt.timedelta(days=6)
    assert second["size"] == math.floor(800 / 60)
    assert second["entry_price"] == 60.0


def test_risk_knobs_are_validated():
    bars = _falling()
    for kw in (
        {"stop_loss": 0.0}, {"stop_loss": 1.5}, {"take_profit": -0.1}, {"max_weight": 0},
        {"max_gross_leverage": 0}, {"drawdown_limit": 1.0}, {"cooldown": 0},
        {"target_vol": 0}, {"vol_window": 1}, {"sizing": "kelly"},
    ):  # fmt: skip
        with pytest.raises(ValueError):
            _run(bars, **kw)


# --- volatility targeting --------------------------------------------------------------------


def _gbm(seed: int, n: int = 80) -> pl.DataFrame:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.015, n)))
    return pl.DataFrame({"ticker": "A", "date": _dates(n), "close": close})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vol_target_sizes_on_trailing_vol_known_at_the_decision(seed):
    bars = _gbm(seed)
    c = bars["close"].to_numpy()
    decide = 40  # signal on bar 40's close, fill at bar 41's close (close-only)
    strat = Fixed(tuple([0.0] * decide + [1.0] + [None] * (bars.height - decide - 1)))
    returns = np.diff(np.log(c[: decide + 1]))[-20:]  # the 20 log returns ending at bar 40
    vol = returns.std(ddof=1) * math.sqrt(252)
    r = _run(bars, strat, sizing="vol_target", target_vol=0.1, fractional=True, cash=1e6)
    t = r.trades.row(0, named=True)
    assert t["entry_date"] == bars["date"][decide + 1]
    assert math.isclose(t["size"] * t["entry_price"], 1e6 * 0.1 / vol, rel_tol=1e-9)
    # bars after the decision (the fill bar's close included) do not move the position's weight
    moved = bars.with_columns(
        pl.when(pl.int_range(pl.len()) > decide).then(pl.col("close") * 3)
        .otherwise(pl.col("close"))
    )  # fmt: skip
    t2 = _run(moved, strat, sizing="vol_target", target_vol=0.1, fractional=True, cash=1e6)
    assert t2.trades["entry_price"][0] == 3 * t["entry_price"]
    assert math.isclose(t2.trades["size"][0] * t2.trades["entry_price"][0], 1e6 * 0.1 / vol)
    capped = _run(bars, strat, sizing="vol_target", target_vol=5.0, max_weight=0.4,
                  fractional=True, cash=1e6)  # fmt: skip
    assert math.isclose(capped.trades["size"][0] * t["entry_price"], 0.4e6, rel_tol=1e-12)


def test_vol_target_waits_for_a_known_vol():
    bars = _gbm(3)
    r = _run(bars, Fixed((1.0,) + (None,) * 79), sizing="vol_target")
    assert r.trades.height == 0  # no vol on bar 0, and a cancelled order is not retried


# --- fractional shares -----------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.0, 0.001, 0.01])
def test_fractional_spends_exactly_the_cash_and_whole_shares_round_down(rate):
    bars = _gbm(5)
    price = bars["close"][1]
    frac = _run(bars, cash=12_345.0, commission=rate, fractional=True)
    whole = _run(bars, cash=12_345.0, commission=rate)
    fs, ws = frac.trades["size"][0], whole.trades["size"][0]
    assert math.isclose(fs * price * (1 + rate), 12_345.0, rel_tol=1e-12)
    assert abs(frac.equity["cash"][1]) < 1e-8
    assert ws == math.floor(12_345.0 / (price * (1 + rate))) and 0 <= fs - ws < 1
    assert 0 <= whole.equity["cash"][1] < price * (1 + rate)
