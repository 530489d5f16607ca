"""The fast paths give the slow paths' answers: ``signal_grid`` equals ``signals`` bit for bit,
and a run on dense bars equals the run through the polars plan and the join-based grid."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.backtest import run_backtest, strategies

BUILT_INS = [
    strategies.SmaCross(fast=3, slow=9),
    strategies.SmaCross(fast=10, slow=20),
    strategies.RsiReversion(period=5, lower=35, upper=65),
    strategies.RsiReversion(),
    strategies.MacdCross(fast=4, slow=9, signal=3),
    strategies.MacdCross(),
    strategies.BuyAndHold(),
]


def _bars(seed: int, tickers: int = 4, n: int = 160, flat: bool = False) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    dates = [dt.date(2021, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    frames = []
    for k in range(tickers):
        close = 30 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        if flat:
            close[20:45] = close[20]  # flat stretches: RSI's 0/0 branch, SMA ties
        open_ = close * np.exp(rng.normal(0, 0.004, n))
        frames.append(pl.DataFrame({"ticker": f"K{k}", "date": dates, "open": open_,
                                    "close": close}))  # fmt: skip
    return pl.concat(frames).sample(fraction=1.0, shuffle=True, seed=seed)  # any row order


@dataclass(frozen=True)
class PolarsOnly:
    """A built-in without its ``signal_grid``: the engine must take the polars path."""

    inner: object
    name: str = "polars_only"

    @property
    def warmup(self) -> int:
        return self.inner.warmup

    def signals(self, bars, predictions=None):
        return self.inner.signals(bars, predictions)


class Shuffled(PolarsOnly):
    """Signals in a random row order: the engine must join them onto the bars."""

    def signals(self, bars, predictions=None):
        return self.inner.signals(bars, predictions).sample(fraction=1.0, shuffle=True, seed=0)


def _grid_from_frame(frame: pl.DataFrame, bars: pl.DataFrame) -> np.ndarray:
    wide = (
        bars.select("ticker", "date")
        .join(frame, on=["ticker", "date"], how="left")
        .pivot(on="ticker", index="date", values="signal")
        .sort("date")
    )
    return wide.select(sorted(c for c in wide.columns if c != "date")).to_numpy().astype(float)


def _close_grid(bars: pl.DataFrame) -> np.ndarray:
    wide = bars.pivot(on="ticker", index="date", values="close").sort("date")
    return wide.select(sorted(c for c in wide.columns if c != "date")).to_numpy()


@pytest.mark.parametrize("strat", BUILT_INS, ids=lambda s: repr(s))
@pytest.mark.parametrize("flat", [False, True])
def test_signal_grid_equals_signals(strat, flat):
    bars = _bars(11, flat=flat)
    slow = _grid_from_frame(strat.signals(bars), bars)
    fast = strat.signal_grid(_close_grid(bars))
    np.testing.assert_array_equal(fast, slow)
    assert np.isfinite(slow).any()


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 10_000), k=st.integers(0, len(BUILT_INS) - 1), short=st.booleans())
def test_dense_fast_run_equals_polars_run(seed, k, short):
    bars = _bars(seed)
    kw = dict(cash=100_000.0, commission=0.001, sizing="equal_weight", allow_short=short)
    fast = run_backtest(bars, BUILT_INS[k], **kw)
    slow = run_backtest(bars, PolarsOnly(BUILT_INS[k]), **kw)
    assert fast.equity.equals(slow.equity) and fast.trades.equals(slow.trades)
    assert fast.stats == slow.stats or str(fast.stats) == str(slow.stats)  # nan != nan


def test_ragged_bars_take_the_general_grid():
    bars = _bars(3)
    ragged = bars.filter(~((pl.col("ticker") == "K1") & (pl.col("date").dt.day() == 7)))
    r = run_backtest(ragged, strategies.SmaCross(fast=3, slow=9), cash=1e5, commission=0.0,
                     sizing="equal_weight")  # fmt: skip
    assert r.equity.height == bars["date"].n_unique()
    shuffled = run_backtest(ragged, Shuffled(strategies.SmaCross(fast=3, slow=9)), cash=1e5,
                            commission=0.0, sizing="equal_weight")  # fmt: skip
    assert shuffled.equity.equals(r.equity) and shuffled.trades.equals(r.trades)
    assert r.trades.height > 5
    with pytest.raises(ValueError, match="duplicate"):
        run_backtest(pl.concat([bars, bars.head(1)]), strategies.BuyAndHold(), cash=1.0,
                     commission=0.0)  # fmt: skip


def test_row_order_of_bars_does_not_matter():
    bars = _bars(21)
    kw = dict(cash=1e5, commission=0.002, sizing="equal_weight", stop_loss=0.05)
    a = run_backtest(bars.sort("ticker", "date"), strategies.MacdCross(4, 9, 3), **kw)
    b = run_backtest(bars, strategies.MacdCross(4, 9, 3), **kw)
    c = run_backtest(bars.sort("date", "ticker", descending=True), strategies.MacdCross(4, 9, 3),
                     **kw)  # fmt: skip
    assert a.equity.equals(b.equity) and a.trades.equals(b.trades)
    assert a.equity.equals(c.equity) and a.trades.equals(c.trades) and a.trades.height > 5
