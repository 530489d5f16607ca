"""The run's figures before costs: the engine adds back every commission it charged."""

from __future__ import annotations

import math

from alphadag.backtest import run_backtest, strategies
from alphadag.market.sources.synthetic import SyntheticSource


def _bars():
    src = SyntheticSource(n_tickers=3, start="2020-01-02", end="2022-12-30", seed=11)
    return src.fetch(src.start, src.end).drop("origin", "parse_errors")


def test_gross_figures_add_back_the_commissions_charged():
    bars = _bars()
    net = run_backtest(bars, strategies.SmaCross(fast=5, slow=20), cash=1e6, commission=0.002)
    free = run_backtest(bars, strategies.SmaCross(fast=5, slow=20), cash=1e6, commission=0.0)
    s = net.stats
    assert s.n_trades > 20 and s.commissions > 0
    assert math.isfinite(s.total_return_gross_pct)
    assert s.total_return_gross_pct > s.total_return_pct
    # gross final equity minus net final equity is the commissions paid, from the ledger
    gross_final = 1e6 * (1 + s.total_return_gross_pct / 100)
    assert abs(gross_final - s.equity_final - s.commissions) < 1e-6 * 1e6
    # without commissions the two curves are one
    assert free.stats.total_return_gross_pct == free.stats.total_return_pct
