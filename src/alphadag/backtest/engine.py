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
from alphadag.backtest.stats import ANNUAL_SESSIONS, Stats, compute_stats
from alphadag.backtest.strategies import Strategy

__all__ = ["BacktestResult", "run_backtest"]


@dataclass(frozen=True)
class BacktestResult:
    """``stats`` (:class:`Stats`), ``equity`` (date, equity, cash, drawdown_pct) and
    ``trades`` (ticker, entry_date, exit_date, size, entry_price, exit_price, pnl, return_pct,
    commission, exit_reason)."""

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


def _benchmark_returns(benchmark: pl.DataFrame, dates: pl.DataFrame) -> np.ndarray:
    """The benchmark's simple return between consecutive backtest sessions (NaN where either
    close is missing)."""
    if not isinstance(benchmark, pl.DataFrame) or not {"date", "close"} <= set(benchmark.columns):
        raise ValueError("benchmark must be a polars DataFrame with columns date, close")
    if benchmark["date"].is_duplicated().any():
        raise ValueError("benchmark has duplicate dates")
    aligned = dates.join(
        benchmark.select(
            pl.col("date").cast(dates["date"].dtype), pl.col("close").cast(pl.Float64)
        ),
        on="date",
        how="left",
    ).sort("_di")
    c = aligned["close"].to_numpy().astype(np.float64)
    return c[1:] / c[:-1] - 1.0


def _risk_args(
    *,
    stop_loss: float | None,
    take_profit: float | None,
    max_weight: float | None,
    max_gross_leverage: float,
    drawdown_limit: float | None,
    cooldown: int | None,
    target_vol: float,
    vol_window: int,
) -> tuple[float, float, float, float, float, int, float]:
    """The risk knobs checked and encoded for :func:`_sim.simulate` (NaN/inf/-1 mean off)."""
    for name, value, upper in (
        ("stop_loss", stop_loss, 1.0),
        ("take_profit", take_profit, math.inf),
        ("drawdown_limit", drawdown_limit, 1.0),
    ):
        if value is not None and not 0 < value < upper:
            raise ValueError(f"{name} is a fraction in (0, {upper}), got {value}")
    if max_weight is not None and not max_weight > 0:
        raise ValueError(f"max_weight must be positive, got {max_weight}")
    if not max_gross_leverage > 0:
        raise ValueError(f"max_gross_leverage must be positive, got {max_gross_leverage}")
    if cooldown is not None and (
        not isinstance(cooldown, int) or isinstance(cooldown, bool) or cooldown < 1
    ):
        raise ValueError(f"cooldown is a number of bars >= 1 (or None: forever), got {cooldown!r}")
    if not target_vol > 0:
        raise ValueError(f"target_vol must be positive, got {target_vol}")
    if not isinstance(vol_window, int) or vol_window < 2:
        raise ValueError(f"vol_window must be an integer >= 2, got {vol_window!r}")
    nan = math.nan
    return (
        nan if stop_loss is None else float(stop_loss),
        nan if take_profit is None else float(take_profit),
        math.inf if max_weight is None else float(max_weight),
        float(max_gross_leverage),
        nan if drawdown_limit is None else float(drawdown_limit),
        -1 if cooldown is None else int(cooldown),
        float(target_vol),
    )


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
    stop_loss: float | None = None,
    take_profit: float | None = None,
    max_weight: float | None = None,
    max_gross_leverage: float = 1.0,
    drawdown_limit: float | None = None,
    cooldown: int | None = None,
    target_vol: float = 0.15,
    vol_window: int = 20,
    benchmark: pl.DataFrame | None = None,
) -> BacktestResult:
    """Simulate ``strategy`` on ``bars`` (``ticker, date, close``; optionally ``open``,
    ``high``, ``low``).

    - A signal decided on bar ``t``'s close fills at bar ``t+1``'s open (its close when the
      open is null); a ticker without a bar waits for its next one.
    - ``commission`` (a rate of the traded value) plus ``commission_fixed`` per order, at least
      ``commission_min``, charged on entry and on exit; ``slippage_bps`` moves every fill
      against the trade.
    - ``sizing``: ``"all_in"`` spends all available cash (times the signal's weight) on the
      largest whole number of shares whose cost plus commission fits (``fractional=True``:
      exactly); ``"equal_weight"`` gives each entry ``1/n_tickers`` of the previous close's
      equity; ``"weight"`` gives it ``|signal|`` of that equity (for :class:`ModelSignal`);
      ``"vol_target"`` gives it ``|signal| * min(target_vol / vol, max_weight)`` of that equity,
      ``vol`` the ticker's annualised (x sqrt 252) sample standard deviation of its last
      ``vol_window`` daily log close returns up to the decision's close (no entry while
      unknown). Cash is shared across tickers: exits fill before entries, entries in ticker
      order. Sizes are fixed at entry (no rebalancing while a position is held).
    - ``max_weight``: no entry costs more than this fraction of the previous close's equity.
      ``max_gross_leverage`` (default 1: no borrowing): entries stop where the gross exposure
      (sum of ``|position value|``) would exceed this multiple of equity; above 1 cash may go
      negative (a margin loan, free of interest).
    - ``stop_loss`` / ``take_profit``: fractions of the entry price (e.g. ``0.05``). From the bar
      after the entry fill on, each bar's ``low``/``high`` (where null: its open and close) is
      checked against ``entry * (1 -/+ stop_loss)`` and ``entry * (1 +/- take_profit)`` (mirror
      for shorts); the order fills at that level, or at the bar's open (close-only data: its
      close) when that is already beyond the level (a gap). The stop is assumed first when a bar
      reaches both. A stopped-out ticker stays flat until its target changes.
    - ``drawdown_limit``: when the equity at a close is more than this fraction below its
      running peak, every position is closed at the next bar's fill and no position is opened
      again for the rest of the run (``cooldown=None``) or for ``cooldown`` bars: tripped on bar
      ``t``'s close, flat through bars ``t+1 .. t+cooldown``, the strategy's current targets fill
      again from bar ``t+cooldown+1`` on, and the peak restarts from the equity at resumption.
    - Negative signals short only when ``allow_short``; otherwise they mean flat.
    - ``benchmark`` (a frame of ``date, close``, e.g. ``^GSPC``): the stats'
      ``benchmark_alpha_ann_pct`` and ``benchmark_beta`` regress the daily equity returns on
      its close-to-close returns over the backtest's sessions (nan without it).
    - Open trades are closed at the last bar's close (exit commission charged). The ledger's
      ``exit_reason`` is one of ``signal stop_loss take_profit drawdown_limit end``.

    >>> import datetime as dt
    >>> from alphadag.backtest.strategies import BuyAndHold
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, d) for d in (2, 3, 4)],
    ...                      "open": [10.0, 10.0, 12.0], "close": [10.0, 11.0, 12.0]})
    >>> r = run_backtest(bars, BuyAndHold(), cash=100.0, commission=0.0)
    >>> r.stats.equity_final, r.trades["size"].to_list()
    (120.0, [10.0])
    >>> half = run_backtest(bars, BuyAndHold(), cash=100.0, commission=0.0, max_weight=0.5)
    >>> half.trades["size"].to_list()
    [5.0]
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
    risk = _risk_args(
        stop_loss=stop_loss, take_profit=take_profit, max_weight=max_weight,
        max_gross_leverage=max_gross_leverage, drawdown_limit=drawdown_limit, cooldown=cooldown,
        target_vol=target_vol, vol_window=vol_window,
    )  # fmt: skip
    if bars.select(pl.struct("ticker", "date").is_duplicated().any()).item():
        raise ValueError("bars has duplicate (ticker, date) rows")
    for col in ("open", "high", "low"):
        if col not in bars.columns:
            bars = bars.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))

    dates = bars.select(pl.col("date").unique().sort()).with_row_index("_di")
    tickers = bars.select(pl.col("ticker").unique().sort()).with_row_index("_ti")
    bars_fill = bars.with_columns(pl.coalesce("open", "close").alias("_fill"))
    if sizing == "vol_target":
        # realised volatility up to and including each close (a trailing window: the past only)
        bars_fill = bars_fill.with_columns(
            (
                pl.col("close").log().diff().rolling_std(vol_window).over("ticker", order_by="date")
                * math.sqrt(ANNUAL_SESSIONS)
            ).alias("_vol")
        )
    else:
        bars_fill = bars_fill.with_columns(pl.lit(None, dtype=pl.Float64).alias("_vol"))
    fill, close, high, low, vol = _grid(
        bars_fill, dates, tickers, ["_fill", "close", "high", "low", "_vol"]
    )
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
    if drawdown_limit is not None and cooldown is not None:
        # every resumption after a cooldown may re-enter each ticker once
        capacity += tickers.height * (target.shape[0] // (cooldown + 1) + 1)

    out = _sim.simulate(
        fill, close, high, low, target, vol, float(cash), float(commission),
        float(commission_fixed), float(commission_min), float(slippage_bps) / 1e4,
        bool(fractional), _sim.SIZING_CODES[sizing], capacity, *risk,
    )  # fmt: skip
    equity, cash_curve, _gross, traded, _n, tk, te, tx, size, ep, xp, ec, xc, why = out

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
        buy_hold = np.nanmean(filled / base, axis=1)
    stats = compute_stats(
        equity=equity,
        trade_pnl=pnl,
        trade_return=ret,
        trade_commission=commissions,
        trade_entry_bar=te,
        trade_exit_bar=tx,
        benchmark=buy_hold,
        years=years,
        turnover=traded / float(np.mean(equity)),
        first_trading_bar=min(int(strategy.warmup), equity.size - 1),
        benchmark_returns=None if benchmark is None else _benchmark_returns(benchmark, dates),
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
            "exit_reason": pl.Series(_sim.EXIT_REASONS, dtype=pl.String).gather(why),
        }
    )
    return BacktestResult(stats=stats, equity=equity_frame, trades=trades)
