"""``run_grid`` gives, combination by combination, what ``run_backtest`` gives."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.backtest import run_backtest, run_grid, strategies


def _bars(seed: int, tickers: int = 1, n: int = 300) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    dates = [dt.date(2019, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    frames = []
    for k in range(tickers):
        close = 40 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        open_ = close * np.exp(rng.normal(0, 0.004, n))
        high = np.maximum(open_, close) * 1.01
        low = np.minimum(open_, close) * 0.99
        frames.append(pl.DataFrame({"ticker": f"G{k}", "date": dates, "open": open_,
                                    "high": high, "low": low, "close": close}))  # fmt: skip
    return pl.concat(frames)


def _same_stats(row, expected) -> None:
    for name, y in expected.items():
        x = row[name]
        assert (math.isnan(x) and math.isnan(y)) or x == y, (name, x, y)


@settings(deadline=None, max_examples=8)
@given(seed=st.integers(0, 10_000), tickers=st.sampled_from([1, 3]), stops=st.booleans())
def test_each_combination_equals_run_backtest(seed, tickers, stops):
    bars = _bars(seed, tickers)
    kw = dict(cash=50_000.0, commission=0.001, sizing="equal_weight" if tickers > 1 else "all_in")
    if stops:
        kw.update(stop_loss=0.05, take_profit=0.08, drawdown_limit=0.2, cooldown=10)
    g = run_grid(bars, strategies.SmaCross, fast=[2, 5, 9], slow=[9, 20], maximize=None, **kw)
    assert g.stats.select("fast", "slow").rows() == [(2, 9), (2, 20), (5, 9), (5, 20), (9, 20)]
    assert g.equity.shape == (5, bars["date"].n_unique())
    for i, (fast, slow) in enumerate(g.stats.select("fast", "slow").rows()):
        single = run_backtest(bars, strategies.SmaCross(fast=fast, slow=slow), **kw)
        np.testing.assert_array_equal(g.equity[i], single.equity["equity"].to_numpy())
        _same_stats(g.stats.row(i, named=True), single.stats.to_dict())
        one = g.result(i)
        assert one.trades.equals(single.trades) and one.equity.equals(single.equity)


def test_other_strategies_and_errors():
    bars = _bars(1)
    g = run_grid(bars, strategies.RsiReversion, cash=1e4, commission=0.0, period=[5, 14],
                 lower=[25.0, 30.0], maximize=None)  # fmt: skip
    assert g.stats.height == 4
    single = run_backtest(bars, strategies.RsiReversion(period=14, lower=30.0), cash=1e4,
                          commission=0.0)  # fmt: skip
    _same_stats(g.stats.row(3, named=True), single.stats.to_dict())
    with pytest.raises(ValueError, match="no parameter combination"):
        run_grid(bars, strategies.SmaCross, cash=1e4, commission=0.0, fast=[20], slow=[10])
    with pytest.raises(ValueError, match="at least one"):
        run_grid(bars, strategies.SmaCross, cash=1e4, commission=0.0)
    with pytest.raises(IndexError):
        g.result(4)
