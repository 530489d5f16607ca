"""A single-ticker SmaCross run reproduces backtesting.py 0.6 (finalize_trades=True).

Deliberate difference: backtesting.py closes open trades at the last bar's *open* (and fills
orders decided on the last bar there too); we close at the last bar's close and never fill a
decision without a following bar. The parity data therefore sets the last bar's open to its
close, and the reference strategy does not act on the last bar.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest

from alphadag.backtest import run_backtest, strategies
from alphadag.market.sources.sample import SampleSource

backtesting = pytest.importorskip("backtesting")
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402


def _sma(x, n):
    return pd.Series(x).rolling(n).mean().to_numpy()


class _RefSmaCross(Strategy):
    fast = 10
    slow = 20

    def init(self):
        self.a = self.I(_sma, self.data.Close, self.fast)
        self.b = self.I(_sma, self.data.Close, self.slow)

    def next(self):
        if len(self.data) == self._n:  # no bar follows the last one: no decision there
            return
        if crossover(self.a, self.b):
            if not self.position:
                self.buy()
        elif crossover(self.b, self.a):
            self.position.close()


def _bars() -> pl.DataFrame:
    bars = (
        SampleSource()
        .fetch(dt.date(2010, 1, 1), dt.date(2014, 12, 31))
        .filter(pl.col("ticker") == "^GSPC")
        .select("ticker", "date", "open", "high", "low", "close")
        .sort("date")
    )
    last = bars.height - 1
    return bars.with_columns(
        pl.when(pl.int_range(pl.len()) == last)
        .then(pl.col("close"))
        .otherwise(pl.col("open"))
        .alias("open")
    )


def test_sma_cross_matches_backtesting_py_on_real_data():
    bars = _bars()
    cash, commission = 1_000_000.0, 0.002
    ours = run_backtest(
        bars, strategies.SmaCross(fast=10, slow=20), cash=cash, commission=commission
    )

    df = bars.to_pandas().set_index("date")
    df.index = pd.DatetimeIndex(df.index)
    df = df.rename(columns=str.title)[["Open", "High", "Low", "Close"]]

    class Ref(_RefSmaCross):
        _n = len(df)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = Backtest(df, Ref, cash=cash, commission=commission, finalize_trades=True).run()

    np.testing.assert_allclose(
        ours.equity["equity"].to_numpy(), ref["_equity_curve"]["Equity"].to_numpy(), rtol=1e-10
    )
    rt = ref["_trades"]
    assert ours.trades.height == len(rt) > 5
    np.testing.assert_array_equal(ours.trades["size"].to_numpy(), rt["Size"].to_numpy())
    np.testing.assert_allclose(ours.trades["entry_price"].to_numpy(), rt["EntryPrice"].to_numpy())
    np.testing.assert_allclose(ours.trades["exit_price"].to_numpy(), rt["ExitPrice"].to_numpy())
    np.testing.assert_allclose(ours.trades["pnl"].to_numpy(), rt["PnL"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(
        ours.trades["commission"].to_numpy(), rt["Commission"].to_numpy(), rtol=1e-9
    )
    s = ours.stats
    pairs = {
        "total_return_pct": "Return [%]",
        "equity_final": "Equity Final [$]",
        "n_trades": "# Trades",
        "max_drawdown_pct": "Max. Drawdown [%]",
        "win_rate_pct": "Win Rate [%]",
        "exposure_pct": "Exposure Time [%]",
        "buy_hold_return_pct": "Buy & Hold Return [%]",
        "return_ann_pct": "Return (Ann.) [%]",
        "cagr_pct": "CAGR [%]",
        "volatility_ann_bt_pct": "Volatility (Ann.) [%]",
        "sharpe_bt": "Sharpe Ratio",
        "sortino_bt": "Sortino Ratio",
        "calmar": "Calmar Ratio",
        "alpha_pct": "Alpha [%]",
        "beta": "Beta",
        "profit_factor": "Profit Factor",
        "expectancy_pct": "Expectancy [%]",
        "sqn": "SQN",
        "kelly": "Kelly Criterion",
        "commissions": "Commissions [$]",
    }
    for ours_name, ref_name in pairs.items():
        a, b = float(getattr(s, ours_name)), float(ref[ref_name])
        assert math.isclose(a, b, rel_tol=1e-8, abs_tol=1e-9), (ours_name, a, b)


def test_cost_accounting_closes():
    bars = _bars()
    r = run_backtest(bars, strategies.SmaCross(fast=5, slow=30), cash=100_000.0, commission=0.001)
    assert math.isclose(r.trades["commission"].sum(), r.stats.commissions, rel_tol=1e-12)
    assert math.isclose(r.stats.equity_final, 100_000.0 + r.trades["pnl"].sum(), rel_tol=1e-10)
