"""Backtest statistics from one pure function, :func:`compute_stats`.

The definitions are backtesting.py 0.6's (``backtesting/_stats.py``) so that a single-ticker run
reproduces its numbers: daily simple returns of the equity curve, their geometric mean
annualised over 252 sessions, the compounding-aware annual volatility, Sharpe and Sortino with a
zero risk-free rate, Calmar on the maximum drawdown, trade figures from the ledger (returns net of
both commissions, profit factor on trade *returns*, SQN on trade P&L). Percent fields are in
percent (``12.5`` is 12.5%); drawdowns are negative.

>>> import numpy as np
>>> s = compute_stats(equity=np.array([100.0, 110.0, 99.0]), trade_pnl=np.array([-1.0]),
...                   trade_return=np.array([-0.01]), trade_commission=np.array([0.2]),
...                   trade_entry_bar=np.array([0]), trade_exit_bar=np.array([2]),
...                   benchmark=np.array([10.0, 11.0, 12.0]), years=2 / 365.25, turnover=2.0)
>>> round(s.total_return_pct, 6), round(s.max_drawdown_pct, 6), s.n_trades
(-1.0, -10.0, 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numba import njit

__all__ = ["ANNUAL_SESSIONS", "Stats", "compute_stats"]

ANNUAL_SESSIONS = 252


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary statistics of one backtest (``nan`` where undefined, e.g. no trades).

    ``alpha_pct`` and ``beta`` are backtesting.py's (against the traded tickers' own buy and
    hold); ``benchmark_alpha_ann_pct`` and ``benchmark_beta`` come from the OLS regression of
    the daily simple equity returns on those of an external benchmark (``run_backtest(...,
    benchmark=)``): ``r = a + b * r_bench``, ``benchmark_beta = b`` and
    ``benchmark_alpha_ann_pct = 100 * 252 * a``; ``nan`` without a benchmark.
    """

    total_return_pct: float
    equity_final: float
    equity_peak: float
    n_trades: int
    max_drawdown_pct: float
    win_rate_pct: float
    exposure_pct: float
    buy_hold_return_pct: float
    return_ann_pct: float
    cagr_pct: float
    volatility_ann_pct: float
    sharpe: float
    sortino: float
    calmar: float
    alpha_pct: float
    beta: float
    best_trade_pct: float
    worst_trade_pct: float
    avg_trade_pct: float
    profit_factor: float
    expectancy_pct: float
    sqn: float
    kelly: float
    commissions: float
    turnover: float
    benchmark_alpha_ann_pct: float = math.nan
    benchmark_beta: float = math.nan

    def to_dict(self) -> dict[str, float]:
        """The fields as a plain dict (JSON-friendly apart from ``nan``)."""
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(Stats))


@njit(cache=True, nogil=True)
def _curve(equity: np.ndarray, bench: np.ndarray) -> tuple[float, int, float, float, float, float]:
    """One pass (two for the moments) over the equity curve: the maximum drawdown (a
    fraction), the number of finite daily simple returns, their geometric mean (0 when a
    growth factor is <= 0), sample variance (NaN below two returns), root mean square of the
    negative part, and backtesting.py's beta (covariance of the equity's and ``bench``'s daily
    log returns over the variance of ``bench``'s; NaN below two returns)."""
    n = equity.size
    peak = equity[0]
    max_dd = 0.0
    for i in range(n):
        peak = max(peak, equity[i])
        dd = 1.0 - equity[i] / peak
        if dd > max_dd:
            max_dd = dd
    count = 0
    total = 0.0
    log_growth = 0.0
    nonpositive = False
    for i in range(1, n):
        r = equity[i] / equity[i - 1] - 1.0
        if np.isnan(r):
            continue
        count += 1
        total += r
        if 1.0 + r <= 0.0:
            nonpositive = True
        else:
            log_growth += np.log(1.0 + r)
    if nonpositive:
        gmean = 0.0
    elif count == 0:
        gmean = np.nan
    else:
        gmean = np.exp(log_growth / count) - 1.0
    mean = total / count if count else np.nan
    squares = 0.0
    down = 0.0
    for i in range(1, n):
        r = equity[i] / equity[i - 1] - 1.0
        if np.isnan(r):
            continue
        squares += (r - mean) ** 2
        if r < 0.0:
            down += r * r
    var = squares / (count - 1) if count > 1 else np.nan
    downside = np.sqrt(down / count) if count else np.nan
    beta = np.nan
    if n > 2:
        me = 0.0
        mm = 0.0
        for i in range(1, n):
            me += np.log(equity[i] / equity[i - 1])
            mm += np.log(bench[i] / bench[i - 1])
        me /= n - 1
        mm /= n - 1
        cov = 0.0
        var_m = 0.0
        for i in range(1, n):
            dm = np.log(bench[i] / bench[i - 1]) - mm
            cov += (np.log(equity[i] / equity[i - 1]) - me) * dm
            var_m += dm * dm
        if var_m != 0.0:
            beta = cov / var_m
    return max_dd, count, gmean, var, downside, beta


@njit(cache=True, nogil=True)
def _ledger(pnl: np.ndarray, rets: np.ndarray, entries: np.ndarray, exits: np.ndarray, n: int):
    """The trade figures in one pass (NaN where undefined, as numpy's reductions answer):
    the share of bars inside some trade (entry through exit), win rate, P&L sample std, best,
    worst, geometric mean return (0 when a growth factor is <= 0), sums of the positive and
    negative returns, mean return, mean P&L, mean winning and mean losing P&L."""
    edges = np.zeros(n + 1, np.int64)
    for k in range(entries.size):
        edges[entries[k]] += 1
        edges[exits[k] + 1] -= 1
    inside = 0
    held = 0
    for i in range(n):
        inside += edges[i]
        if inside > 0:
            held += 1
    count = pnl.size
    nan = np.nan
    if count == 0:
        return held / n, nan, nan, nan, nan, nan, 0.0, 0.0, nan, nan, nan, nan
    wins = 0
    sum_pnl = 0.0
    win_pnl = 0.0
    loss_pnl = 0.0
    n_loss = 0
    gains = 0.0
    losses = 0.0
    sum_ret = 0.0
    log_growth = 0.0
    nonpositive = False
    best = rets[0]
    worst = rets[0]
    for k in range(count):
        p = pnl[k]
        r = rets[k]
        sum_pnl += p
        if p > 0:
            wins += 1
            win_pnl += p
        elif p < 0:
            n_loss += 1
            loss_pnl += p
        sum_ret += r
        if r > 0:
            gains += r
        elif r < 0:
            losses += r
        best = max(best, r)
        worst = min(worst, r)
        g = (0.0 if np.isnan(r) else r) + 1.0
        if g <= 0.0:
            nonpositive = True
        else:
            log_growth += np.log(g)
    mean_pnl = sum_pnl / count
    squares = 0.0
    for k in range(count):
        squares += (pnl[k] - mean_pnl) ** 2
    pnl_std = np.sqrt(squares / (count - 1)) if count > 1 else nan
    avg = 0.0 if nonpositive else np.exp(log_growth / count) - 1.0
    return (
        held / n, wins / count, pnl_std, best, worst, avg, gains, losses, sum_ret / count,
        mean_pnl, win_pnl / wins if wins else nan, loss_pnl / n_loss if n_loss else nan,
    )  # fmt: skip


def _nz(x: float) -> float:
    """``x`` or nan when it is zero (pandas' ``x or np.nan``)."""
    return x if x else math.nan


def _regression(equity: np.ndarray, bench: np.ndarray | None) -> tuple[float, float]:
    """Annualised alpha (percent) and beta of the equity's daily returns on ``bench``'s."""
    if bench is None:
        return math.nan, math.nan
    bench = np.asarray(bench, dtype=np.float64)
    if bench.shape != (equity.size - 1,):
        raise ValueError(f"benchmark_returns needs {equity.size - 1} values, got {bench.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        mine = equity[1:] / equity[:-1] - 1.0
    ok = np.isfinite(mine) & np.isfinite(bench)
    x, y = bench[ok], mine[ok]
    if x.size < 3:
        return math.nan, math.nan
    dx = x - x.mean()
    var = float(dx @ dx)
    if not var > 0:
        return math.nan, math.nan
    beta = float(dx @ (y - y.mean())) / var
    alpha = float(y.mean() - beta * x.mean())
    return alpha * ANNUAL_SESSIONS * 100.0, beta


def compute_stats(
    *,
    equity: np.ndarray,
    trade_pnl: np.ndarray,
    trade_return: np.ndarray,
    trade_commission: np.ndarray,
    trade_entry_bar: np.ndarray,
    trade_exit_bar: np.ndarray,
    benchmark: np.ndarray,
    years: float,
    turnover: float,
    first_trading_bar: int = 0,
    benchmark_returns: np.ndarray | None = None,
) -> Stats:
    """Statistics of an equity curve (one value per session) and its closed trades.

    Parameters: ``equity`` the marked-to-close equity per session; ``trade_*`` the ledger
    (``trade_return`` as a fraction, net of commissions; bars as indices into ``equity``);
    ``benchmark`` the buy-and-hold price path (its return from ``first_trading_bar``, the
    strategy's warm-up, to the end is ``buy_hold_return_pct``; its log returns give beta);
    ``years`` the calendar span in years (for CAGR); ``turnover`` passed through;
    ``benchmark_returns`` an external benchmark's simple return over each equity step
    (``equity.size - 1`` values, NaN where unknown) for ``benchmark_alpha_ann_pct`` and
    ``benchmark_beta``.
    """
    equity = np.asarray(equity, dtype=np.float64)
    n = equity.size
    if n == 0:
        raise ValueError("compute_stats needs a non-empty equity curve")
    entries = np.asarray(trade_entry_bar, dtype=np.int64)
    exits = np.asarray(trade_exit_bar, dtype=np.int64)
    pnl = np.asarray(trade_pnl, dtype=np.float64)
    rets = np.asarray(trade_return, dtype=np.float64)
    if not entries.shape == exits.shape == pnl.shape == rets.shape:
        raise ValueError("the trade_* arrays differ in length")
    exposure, win_rate, pnl_std, best, worst, avg_trade, gains, losses, mean_ret, mean_pnl, *wl = (
        _ledger(pnl, rets, entries, exits, n)
    )
    c = np.asarray(benchmark, dtype=np.float64)
    max_dd, n_returns, gmean, var, downside, beta = _curve(equity, c)
    ann = (1.0 + gmean) ** ANNUAL_SESSIONS - 1.0
    vol = (
        math.sqrt(
            max(
                (var + (1.0 + gmean) ** 2) ** ANNUAL_SESSIONS
                - (1.0 + gmean) ** (2 * ANNUAL_SESSIONS),
                0.0,
            )
        )
        if not math.isnan(var)
        else math.nan
    )
    if n_returns == 0:
        downside = math.nan
    sortino = (
        ann / (downside * math.sqrt(ANNUAL_SESSIONS))
        if downside
        else (math.inf if ann > 0 else (-math.inf if ann < 0 else math.nan))
    )
    total_return = (equity[-1] - equity[0]) / equity[0] * 100.0
    buy_hold = (c[-1] - c[first_trading_bar]) / c[first_trading_bar] * 100.0
    alpha = total_return - beta * buy_hold

    bench_alpha, bench_beta = _regression(equity, benchmark_returns)

    n_trades = int(pnl.size)
    cagr = ((equity[-1] / equity[0]) ** (1.0 / years) - 1.0) * 100.0 if years else math.nan
    return Stats(
        total_return_pct=float(total_return),
        equity_final=float(equity[-1]),
        equity_peak=float(equity.max()),
        n_trades=n_trades,
        max_drawdown_pct=-max_dd * 100.0,
        win_rate_pct=win_rate * 100.0,
        exposure_pct=exposure * 100.0,
        buy_hold_return_pct=float(buy_hold),
        return_ann_pct=ann * 100.0,
        cagr_pct=float(cagr),
        volatility_ann_pct=vol * 100.0,
        sharpe=ann * 100.0 / _nz(vol * 100.0),
        sortino=float(sortino),
        calmar=ann / _nz(max_dd),
        alpha_pct=float(alpha),
        beta=beta,
        best_trade_pct=best * 100.0,
        worst_trade_pct=worst * 100.0,
        avg_trade_pct=avg_trade * 100.0,
        profit_factor=gains / _nz(abs(losses)) if n_trades else math.nan,
        expectancy_pct=mean_ret * 100.0,
        sqn=math.sqrt(n_trades) * mean_pnl / _nz(pnl_std) if n_trades else math.nan,
        kelly=win_rate - (1.0 - win_rate) / (wl[0] / -wl[1]) if n_trades else math.nan,
        commissions=float(np.sum(trade_commission)),
        turnover=float(turnover),
        benchmark_alpha_ann_pct=bench_alpha,
        benchmark_beta=bench_beta,
    )
