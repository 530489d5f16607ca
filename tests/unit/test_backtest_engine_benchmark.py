"""Alpha and beta against an external benchmark: numpy least squares in the test, exact
constructions, alignment on dates and nan without a benchmark."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from alphadag.backtest import compute_stats, run_backtest, strategies


def _bars(seed: int, n: int = 400) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    dates = [dt.date(2015, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    market = rng.normal(0.0003, 0.01, n)
    frames = []
    for k, tk in enumerate(("A", "B", "C")):
        r = 0.8 * market + rng.normal(0, 0.01, n) + 0.0002 * k
        close = 50 * np.exp(np.cumsum(r))
        frames.append(pl.DataFrame({"ticker": tk, "date": dates, "close": close}))
    bench = pl.DataFrame({"date": dates, "close": 3000 * np.exp(np.cumsum(market))})
    return pl.concat(frames), bench


def _ols(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    design = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return a, b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_beta_match_numpy_least_squares(seed):
    bars, bench = _bars(seed)
    r = run_backtest(
        bars, strategies.SmaCross(fast=5, slow=20), cash=1e6, commission=0.001,
        sizing="equal_weight", benchmark=bench,
    )  # fmt: skip
    eq = r.equity["equity"].to_numpy()
    c = bench["close"].to_numpy()
    a, b = _ols(eq[1:] / eq[:-1] - 1, c[1:] / c[:-1] - 1)
    assert math.isclose(r.stats.benchmark_beta, b, rel_tol=1e-9)
    assert math.isclose(r.stats.benchmark_alpha_ann_pct, a * 252 * 100, rel_tol=1e-8, abs_tol=1e-9)
    assert 0.2 < r.stats.benchmark_beta < 1.2  # the tickers load 0.8 on the market


def test_exact_construction():
    rb = np.random.default_rng(4).normal(0, 0.01, 300)
    equity = 100 * np.cumprod(np.r_[1.0, 1 + 0.001 + 1.5 * rb])
    s = compute_stats(
        equity=equity, trade_pnl=np.array([]), trade_return=np.array([]),
        trade_commission=np.array([]), trade_entry_bar=np.array([], int),
        trade_exit_bar=np.array([], int), benchmark=np.ones(301), years=1.0, turnover=0.0,
        benchmark_returns=rb,
    )  # fmt: skip
    assert math.isclose(s.benchmark_beta, 1.5, rel_tol=1e-9)
    assert math.isclose(s.benchmark_alpha_ann_pct, 0.001 * 252 * 100, rel_tol=1e-8)


def test_benchmark_aligned_on_dates_with_gaps():
    bars, bench = _bars(7)
    gappy = bench.filter(pl.int_range(pl.len()) % 7 != 3).sample(fraction=1.0, shuffle=True, seed=1)
    r = run_backtest(bars, strategies.BuyAndHold(), cash=1e6, commission=0.0,
                     sizing="equal_weight", benchmark=gappy)  # fmt: skip
    eq = r.equity["equity"].to_numpy()
    c = bench.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 != 3).then(pl.col("close"))
    )["close"].to_numpy()  # fmt: skip
    y, x = eq[1:] / eq[:-1] - 1, c[1:] / c[:-1] - 1
    ok = ~np.isnan(x)
    assert ok.sum() < x.size - 50  # a pair is dropped on each side of every gap
    a, b = _ols(y[ok], x[ok])
    assert math.isclose(r.stats.benchmark_beta, b, rel_tol=1e-9)
    assert math.isclose(r.stats.benchmark_alpha_ann_pct, a * 25200, rel_tol=1e-8, abs_tol=1e-9)


def test_nan_without_benchmark_and_bad_benchmark_rejected():
    bars, bench = _bars(8)
    r = run_backtest(bars, strategies.BuyAndHold(), cash=1e6, commission=0.0)
    assert math.isnan(r.stats.benchmark_beta) and math.isnan(r.stats.benchmark_alpha_ann_pct)
    with pytest.raises(ValueError, match="date, close"):
        run_backtest(bars, strategies.BuyAndHold(), cash=1e6, commission=0.0,
                     benchmark=bench.rename({"close": "px"}))  # fmt: skip
