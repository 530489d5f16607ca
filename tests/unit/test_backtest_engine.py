"""Engine properties: no look-ahead, cost accounting, shorting only when allowed, shared cash."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.backtest import run_backtest, strategies


def _path(seed: int, n: int = 300, tickers: tuple[str, ...] = ("A",)) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    frames = []
    for t in tickers:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        open_ = close * np.exp(rng.normal(0, 0.005, n))
        frames.append(pl.DataFrame({"ticker": t, "date": dates, "open": open_, "close": close}))
    return pl.concat(frames)


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 10_000), cut=st.integers(30, 280))
def test_perturbing_bars_after_t_never_changes_the_past(seed, cut):
    bars = _path(seed)
    strat = strategies.SmaCross(fast=5, slow=20)
    base = run_backtest(bars, strat, cash=10_000.0, commission=0.001)
    noise = np.random.default_rng(seed + 1).uniform(0.5, 1.5, bars.height)
    after = pl.int_range(pl.len()) > cut
    moved = bars.with_columns(
        pl.when(after).then(pl.col(c) * pl.Series(noise)).otherwise(pl.col(c)).alias(c)
        for c in ("open", "close")
    )
    other = run_backtest(moved, strat, cash=10_000.0, commission=0.001)
    np.testing.assert_array_equal(
        base.equity["equity"].to_numpy()[: cut + 1], other.equity["equity"].to_numpy()[: cut + 1]
    )
    cutoff = bars["date"][cut]
    entered = lambda r: r.trades.filter(pl.col("entry_date") <= cutoff).select(  # noqa: E731
        "entry_date", "size", "entry_price"
    )
    assert entered(base).equals(entered(other))


@settings(deadline=None, max_examples=20)
@given(seed=st.integers(0, 10_000), commission=st.floats(0.0, 0.01))
def test_cost_accounting_closes(seed, commission):
    r = run_backtest(
        _path(seed), strategies.SmaCross(fast=3, slow=10), cash=50_000.0, commission=commission
    )
    assert math.isclose(r.trades["commission"].sum(), r.stats.commissions, abs_tol=1e-9)
    assert math.isclose(r.stats.equity_final, 50_000.0 + r.trades["pnl"].sum(), rel_tol=1e-10)
    # after the final close no position is left: the last equity is all cash
    assert r.equity["cash"][-1] == r.equity["equity"][-1]
    assert (r.equity["cash"] >= -1e-9).all()


def test_shorting_only_when_allowed():
    bars = _path(3)
    strat = strategies.SmaCross(fast=3, slow=10)
    long_only = run_backtest(bars, strat, cash=10_000.0, commission=0.001)
    both = run_backtest(bars, strat, cash=10_000.0, commission=0.001, allow_short=True)
    assert (long_only.trades["size"] > 0).all()
    assert (both.trades["size"] < 0).any() and (both.trades["size"] > 0).any()


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000))
def test_equal_weight_multi_asset_conserves_cash(seed):
    bars = _path(seed, n=200, tickers=("A", "B", "C", "D"))
    r = run_backtest(
        bars, strategies.SmaCross(fast=3, slow=12), cash=100_000.0, commission=0.002,
        sizing="equal_weight",
    )  # fmt: skip
    assert (r.equity["cash"] >= -1e-6).all()
    assert math.isclose(r.stats.equity_final, 100_000.0 + r.trades["pnl"].sum(), rel_tol=1e-10)
    assert set(r.trades["ticker"]) <= {"A", "B", "C", "D"}
    bh = run_backtest(
        bars, strategies.BuyAndHold(), cash=100_000.0, commission=0.0, sizing="equal_weight"
    )
    entry_value = (bh.trades["size"] * bh.trades["entry_price"]).to_numpy()
    assert bh.trades.height == 4 and (entry_value <= 25_000.0 + 1e-9).all()
