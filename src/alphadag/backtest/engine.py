"""``run_backtest``: a strategy's signals simulated on bars with shared cash and costs.

Conventions (backtesting.py's, see :func:`run_backtest`): the decision made on bar ``t``'s close
fills at bar ``t+1``'s open (its close when the open is null); commission on both sides;
all-in sizing buys the largest whole number of shares whose cost plus commission fits in cash;
long-only unless ``allow_short``; open trades are closed at the last bar's close.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from alphadag.backtest import _sim
from alphadag.backtest.stats import Stats, compute_stats
from alphadag.backtest.strategies import Strategy

__all__ = ["BacktestResult", "run_backtest"]


@dataclass(frozen=True)
class BacktestResult:
    """``stats`` (:class:`Stats`), ``equity`` (date, equity, cash, drawdown_pct) and
    ``trades`` (ticker, entry_date, exit_date, size, entry_price, exit_price, pnl, return_pct,
    commission)."""

    stats: Stats
    equity: pl.DataFrame
    trades: pl.DataFrame


def _grid(frame: pl.DataFrame, dates: pl.DataFrame, tickers: pl.DataFrame, cols: list[str]):
    idx = frame.join(dates, on="date", how="left").join(tickers, on="ticker", how="left")
    di = idx["_di"].to_numpy()
    ti = idx["_ti"].to_numpy()
    out = []
    for c in cols:
        grid = np.full((dates.height, tickers.height), np.nan)
        grid[di, ti] = idx[c].cast(pl.Float64).to_numpy()
        out.append(grid)
    return out


def run_backtest(
    bars: pl.DataFrame,
    strategy: Strategy,
    *,
    cash: float,
    commission: float,
    fractional: bool = False,
    slippage_bps: float = 0.0,
    allow_short: bool = False,
    sizing: str = "all_in",
    commission_fixed: float = 0.0,
    commission_min: float = 0.0,
    predictions: pl.DataFrame | None = None,
) -> BacktestResult:
    """Simulate ``strategy`` on ``bars`` (``ticker, date, close`` and optionally ``open``).

    - A signal decided on bar ``t``'s close fills at bar ``t+1``'s open (its close when the
      open is null); a ticker without a bar waits for its next one.
    - ``commission`` (a rate of the traded value) plus ``commission_fixed`` per order, at least
      ``commission_min``, charged on entry and on exit; ``slippage_bps`` moves every fill
      against the trade.
    - ``sizing``: ``"all_in"`` spends all available cash (times the signal's weight) on the
      largest whole number of shares whose cost plus commission fits (``fractional=True``:
      exactly); ``"equal_weight"`` gives each entry ``1/n_tickers`` of the previous close's
      equity; ``"weight"`` gives it ``|signal|`` of that equity (for :class:`ModelSignal`).
      Cash is shared across tickers: exits fill before entries, entries in ticker order.
    - Negative signals short only when ``allow_short``; otherwise they mean flat.
    - Open trades are closed at the last bar's close (exit commission charged).

    >>> import datetime as dt
    >>> from alphadag.backtest.strategies import BuyAndHold
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, d) for d in (2, 3, 4)],
    ...                      "open": [10.0, 10.0, 12.0], "close": [10.0, 11.0, 12.0]})
    >>> r = run_backtest(bars, BuyAndHold(), cash=100.0, commission=0.0)
    >>> r.stats.equity_final, r.trades["size"].to_list()
    (120.0, [10.0])
    """
    if not isinstance(bars, pl.DataFrame):
        raise TypeError(f"bars must be a polars DataFrame, got {type(bars).__name__}")
    missing = {"ticker", "date", "close"} - set(bars.columns)
    if missing:
        raise ValueError(f"bars lack column(s) {sorted(missing)}")
    if bars.height == 0:
        raise ValueError("bars is empty")
    if not cash > 0:
        raise ValueError(f"cash must be positive, got {cash}")
    if not 0 <= commission < 0.1:
        raise ValueError(f"commission is a rate in [0, 0.1), got {commission}")
    if sizing not in _sim.SIZING_CODES:
        raise ValueError(f"sizing must be one of {sorted(_sim.SIZING_CODES)}, got {sizing!r}")
    if bars.select(pl.struct("ticker", "date").is_duplicated().any()).item():
        raise ValueError("bars has duplicate (ticker, date) rows")
    if "open" not in bars.columns:
        bars = bars.with_columns(pl.lit(None, dtype=pl.Float64).alias("open"))

    dates = bars.select(pl.col("date").unique().sort()).with_row_index("_di")
    tickers = bars.select(pl.col("ticker").unique().sort()).with_row_index("_ti")
    bars_fill = bars.with_columns(pl.coalesce("open", "close").alias("_fill"))
    fill, close = _grid(bars_fill, dates, tickers, ["_fill", "close"])
    (signal,) = _grid(strategy.signals(bars, predictions), dates, tickers, ["signal"])

    # forward-fill the target down each ticker: a null signal keeps the last decision (a
    # forward fill reads the past only); nothing decided yet means flat
    mask = np.isnan(signal)
    rows = np.where(~mask, np.arange(signal.shape[0])[:, None], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    target = np.take_along_axis(signal, rows, axis=0)
    target = np.nan_to_num(target, nan=0.0)
    if not allow_short:
        target = np.maximum(target, 0.0)
    capacity = int(np.count_nonzero(np.diff(target, axis=0))) + tickers.height + 1

    out = _sim.simulate(
        fill, close, target, float(cash), float(commission), float(commission_fixed),
        float(commission_min), float(slippage_bps) / 1e4, bool(fractional),
        _sim.SIZING_CODES[sizing], capacity,
    )  # fmt: skip
    equity, cash_curve, _gross, traded, _n, tk, te, tx, size, ep, xp, ec, xc = out

    commissions = ec + xc
    pnl = size * (xp - ep) - commissions
    ret = np.sign(size) * (xp / ep - 1.0) - commissions / (np.abs(size) * ep)

    date_values = dates["date"]
    span = date_values[-1] - date_values[0]
    years = span.days / 365.25 if hasattr(span, "days") else math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        first = np.nanargmax(~np.isnan(close), axis=0)
        base = close[first, np.arange(close.shape[1])]
        filled = np.take_along_axis(
            close,
            np.maximum.accumulate(
                np.where(~np.isnan(close), np.arange(close.shape[0])[:, None], 0), axis=0
            ),
            axis=0,
        )
        benchmark = np.nanmean(filled / base, axis=1)
    stats = compute_stats(
        equity=equity,
        trade_pnl=pnl,
        trade_return=ret,
        trade_commission=commissions,
        trade_entry_bar=te,
        trade_exit_bar=tx,
        benchmark=benchmark,
        years=years,
        turnover=traded / float(np.mean(equity)),
        first_trading_bar=min(int(strategy.warmup), equity.size - 1),
    )
    peak = np.maximum.accumulate(equity)
    equity_frame = pl.DataFrame(
        {
            "date": date_values,
            "equity": equity,
            "cash": cash_curve,
            "drawdown_pct": (equity / peak - 1.0) * 100.0,
        }
    )
    trades = pl.DataFrame(
        {
            "ticker": tickers["ticker"].gather(tk),
            "entry_date": date_values.gather(te),
            "exit_date": date_values.gather(tx),
            "size": size,
            "entry_price": ep,
            "exit_price": xp,
            "pnl": pnl,
            "return_pct": ret * 100.0,
            "commission": commissions,
        }
    )
    return BacktestResult(stats=stats, equity=equity_frame, trades=trades)
