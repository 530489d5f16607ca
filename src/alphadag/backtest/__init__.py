"""Pure backtest engine (no dagster): strategies, the portfolio simulator and its statistics.

>>> from alphadag.backtest import run_backtest, strategies
>>> callable(run_backtest), strategies.SmaCross(fast=10, slow=20).name
(True, 'sma_cross')
"""

from alphadag.backtest import strategies
from alphadag.backtest.analysis import ICAnalysis, ic_analysis
from alphadag.backtest.engine import BacktestResult, GridResult, run_backtest, run_grid
from alphadag.backtest.settings import BacktestSettings
from alphadag.backtest.stats import Stats, compute_stats

__all__ = [
    "BacktestResult",
    "BacktestSettings",
    "GridResult",
    "ICAnalysis",
    "Stats",
    "compute_stats",
    "ic_analysis",
    "run_backtest",
    "run_grid",
    "strategies",
]
