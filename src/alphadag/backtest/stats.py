"""Backtest statistics from one pure function, :func:`compute_stats`: every figure defined here once.

Daily simple returns ``r_t = E_t / E_{t-1} - 1`` of the marked-to-close equity ``E`` (one value
per session, ``N`` finite returns), ``A = 252`` sessions a year, ``rf`` the annual risk-free
rate (0 unless given; ``rf_d = rf / A`` a session), ``b_t`` the external benchmark's simple
return over the same step (``run_backtest(..., benchmark=)``), ``x_t = r_t - b_t`` the daily
excess return (steps where both are known), ``G`` the gross equity (before commissions:
``E`` plus the commissions charged up to that close) and ``x^g_t`` its excess returns. Sample
standard deviations (``ddof=1``). Percent fields are in percent (``12.5`` is 12.5%); drawdowns
are negative; ``nan`` where a figure is undefined (no trades, no benchmark, zero spread).

==============================  ===================  ================================================
field                           unit                 formula
==============================  ===================  ================================================
total_return_pct                %                    ``100 (E_last / E_0 - 1)``
equity_final                    currency             ``E_last``
total_return_gross_pct          %                    ``100 (G_last / G_0 - 1)`` (before commissions)
return_ann_pct                  % a year             ``100 ((prod(1 + r))^(A / N) - 1)`` (geometric)
cagr_pct                        % a year             ``100 ((E_last / E_0)^(1 / calendar years) - 1)``
volatility_ann_pct              % a year             ``100 std(r) sqrt(A)``
sharpe                          ratio                ``mean(r - rf_d) / std(r) * sqrt(A)``
sortino                         ratio                ``mean(r - rf_d) / sqrt(mean(min(r - rf_d, 0)^2)) * sqrt(A)``
calmar                          ratio                ``return_ann_pct / |max_drawdown_pct|``
omega                           ratio                ``sum(max(r, 0)) / sum(max(-r, 0))`` (threshold 0)
max_drawdown_pct                %                    ``100 min(E_t / max_{s<=t} E_s - 1)``
max_drawdown_duration_sessions  sessions             longest run of sessions with ``E_t < max_{s<=t} E_s``
avg_drawdown_duration_sessions  sessions             mean length of those runs (0 with no drawdown)
benchmark_return_pct            %                    ``100 (prod(1 + b) - 1)`` over the run's steps
excess_return_ann_pct           % a year             ``100 A mean(x)`` (Qlib's annualised excess)
information_ratio               ratio                ``mean(x) / std(x) * sqrt(A)``
excess_max_drawdown_pct         % (points)           ``100 min(C_t - max_{s<=t} C_s)``, ``C = cumsum(x)`` from 0
excess_return_ann_gross_pct     % a year             as ``excess_return_ann_pct`` on ``x^g``
information_ratio_gross         ratio                as ``information_ratio`` on ``x^g``
excess_max_drawdown_gross_pct   % (points)           as ``excess_max_drawdown_pct`` on ``x^g``
benchmark_alpha_ann_pct         % a year             ``100 A a`` of the OLS fit ``r = a + beta b``
benchmark_beta                  ratio                ``beta`` of that fit
n_trades                        trades               closed trades (open ones closed at the last bar)
win_rate_pct                    %                    ``100 share of trades with P&L > 0``
avg_win_pct                     %                    mean return of the trades with P&L > 0
avg_loss_pct                    %                    mean return of the trades with P&L < 0
avg_trade_duration_sessions     sessions             mean of ``exit session - entry session``
median_trade_duration_sessions  sessions             median of the same
exposure_pct                    %                    ``100 share of sessions inside some trade``
profit_factor                   ratio                ``sum(positive trade returns) / |sum(negative)|``
expectancy_pct                  %                    mean trade return
commissions                     currency             sum of all commissions paid
turnover                        x equity a year      ``traded value / mean(E) / (N / A)``
turnover_total                  x equity             ``traded value / mean(E)`` over the whole run
buy_hold_return_pct             %                    traded tickers' equal-weight close path from the
                                                     end of the warm-up to the last close, no costs
                                                     (backtesting.py's ``Buy & Hold Return``)
sharpe_bt                       ratio                ``(return_ann_pct - 100 rf) / volatility_ann_bt_pct``
sortino_bt                      ratio                ``(return_ann - rf) / (sqrt(mean(min(r, 0)^2)) sqrt(A))``
volatility_ann_bt_pct           % a year             backtesting.py's compounding-aware volatility
==============================  ===================  ================================================

A trade's return is net of both commissions; ``*_bt`` and the remaining fields (``alpha_pct``,
``beta``, ``best/worst/avg_trade_pct``, ``sqn``, ``kelly``, ``equity_peak``) are backtesting.py
0.6's (``backtesting/_stats.py``), so a single-ticker run reproduces its numbers:
``sharpe_bt`` is its geometric Sharpe (annualised geometric return over the compounding-aware
volatility), usually lower than the arithmetic ``sharpe`` (buy-and-hold of ^GSPC over
2010-2014: 0.702 against 0.829). The excess figures follow Qlib's risk analysis (``mode="sum"``: arithmetic mean of
the daily excess, its drawdown on the cumulated sum), except that the cumulated excess starts
at 0, so a loss on the first step is a drawdown. ``sharpe`` and ``information_ratio`` are
``nan`` when the returns (the excess returns) do not vary beyond rounding, e.g. a strategy equal
to its benchmark. The gross fields are ``nan`` unless ``compute_stats`` gets ``gross_equity``.

>>> import numpy as np
>>> s = compute_stats(equity=np.array([100.0, 110.0, 99.0]), trade_pnl=np.array([-1.0]),
...                   trade_return=np.array([-0.01]), trade_commission=np.array([0.2]),
...                   trade_entry_bar=np.array([0]), trade_exit_bar=np.array([2]),
...                   benchmark=np.array([10.0, 11.0, 12.0]), years=2 / 365.25, turnover=2.0)
>>> round(s.total_return_pct, 6), round(s.max_drawdown_pct, 6), s.n_trades
(-1.0, -10.0, 1)
>>> round(s.omega, 6), s.max_drawdown_duration_sessions, s.avg_trade_duration_sessions
(1.0, 1.0, 2.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numba import njit

__all__ = ["ANNUAL_SESSIONS", "Stats", "compute_stats", "gross_equity_curve"]

ANNUAL_SESSIONS = 252


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary statistics of one backtest; the module docstring's table defines every field.

    ``alpha_pct`` and ``beta`` are backtesting.py's (against the traded tickers' own buy and
    hold); ``benchmark_alpha_ann_pct`` and ``benchmark_beta`` come from the OLS regression of
    the daily simple equity returns on those of an external benchmark (``run_backtest(...,
    benchmark=)``): ``r = a + b * r_bench``, ``benchmark_beta = b`` and
    ``benchmark_alpha_ann_pct = 100 * 252 * a``; ``nan`` without a benchmark, as are the
    ``benchmark_return_pct`` and ``excess_*``/``information_ratio*`` fields.
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
    total_return_gross_pct: float = math.nan
    omega: float = math.nan
    max_drawdown_duration_sessions: float = math.nan
    avg_drawdown_duration_sessions: float = math.nan
    benchmark_return_pct: float = math.nan
    excess_return_ann_pct: float = math.nan
    information_ratio: float = math.nan
    excess_max_drawdown_pct: float = math.nan
    excess_return_ann_gross_pct: float = math.nan
    information_ratio_gross: float = math.nan
    excess_max_drawdown_gross_pct: float = math.nan
    avg_win_pct: float = math.nan
    avg_loss_pct: float = math.nan
    avg_trade_duration_sessions: float = math.nan
    median_trade_duration_sessions: float = math.nan
    turnover_total: float = math.nan
    sharpe_bt: float = math.nan
    sortino_bt: float = math.nan
    volatility_ann_bt_pct: float = math.nan

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


def _returns(curve: np.ndarray) -> np.ndarray:
    """Simple returns between consecutive values (NaN where either is missing)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return curve[1:] / curve[:-1] - 1.0


def _annualised_ratio(mean: float, std: float, scale: float) -> float:
    """``mean / std * sqrt(252)``, or nan when ``std`` is zero or mere rounding noise: below
    ``1e-9`` of ``scale`` (the returns' mean size: constant returns have no spread) or below
    ``1e-12`` (a price ratio's own rounding is ~1e-16)."""
    if not std > max(1e-9 * scale, 1e-12):
        return math.nan
    return mean / std * math.sqrt(ANNUAL_SESSIONS)


def _sharpe_sortino(r: np.ndarray, rf_daily: float) -> tuple[float, float]:
    """Arithmetic Sharpe and Sortino of the finite daily returns ``r`` (annualised)."""
    if r.size < 2:
        return math.nan, math.nan
    over = r - rf_daily
    mean = float(over.mean())
    sharpe = _annualised_ratio(mean, float(r.std(ddof=1)), float(np.abs(r).mean()))
    downside = math.sqrt(float(np.mean(np.minimum(over, 0.0) ** 2)))
    if downside > max(1e-9 * float(np.abs(r).mean()), 1e-12):  # else rounding noise: none
        sortino = mean / downside * math.sqrt(ANNUAL_SESSIONS)
    else:
        sortino = math.inf if mean > 0 else math.nan
    return sharpe, sortino


def _omega(r: np.ndarray) -> float:
    """Gains over losses of the daily returns around 0."""
    gains = float(np.maximum(r, 0.0).sum())
    losses = float(np.maximum(-r, 0.0).sum())
    # losses below rounding of the returns (~1e-16 of a price ratio) are none, as for Sortino
    if losses > max(1e-9 * float(np.abs(r).mean()), 1e-12):
        return gains / losses
    return math.inf if gains > 0 else math.nan


def _underwater_runs(equity: np.ndarray) -> tuple[float, float]:
    """Longest and mean length (sessions) of the runs below the running peak (0, 0 with none)."""
    below = equity < np.maximum.accumulate(equity)
    if not below.any():
        return 0.0, 0.0
    edges = np.diff(np.r_[0, below.astype(np.int8), 0])
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return float(lengths.max()), float(lengths.mean())


def _excess(r: np.ndarray, bench: np.ndarray) -> tuple[float, float, float]:
    """Annualised mean excess (%), information ratio and the cumulated excess's maximum
    drawdown (percentage points) of ``r - bench`` on the steps where both are finite."""
    ok = np.isfinite(r) & np.isfinite(bench)
    x = r[ok] - bench[ok]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    cum = np.r_[0.0, np.cumsum(x)]
    max_dd = float((cum - np.maximum.accumulate(cum)).min())
    ir = math.nan
    if x.size > 1:
        # a strategy that is its benchmark: the excess is rounding noise, the ratio undefined
        scale = max(float(np.abs(r[ok]).mean()), float(np.abs(bench[ok]).mean()))
        ir = _annualised_ratio(mean, float(x.std(ddof=1)), scale)
    return mean * ANNUAL_SESSIONS * 100.0, ir, max_dd * 100.0


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


def gross_equity_curve(
    equity: np.ndarray, charged_bar: np.ndarray, commission: np.ndarray
) -> np.ndarray:
    """The equity before costs: ``equity`` plus every commission charged up to each close.

    ``charged_bar`` is the session index at which each ``commission`` was paid (a trade's entry
    commission at its entry bar, its exit commission at its exit bar).

    >>> gross_equity_curve(np.array([100.0, 99.0, 108.0]), np.array([1, 2]), np.array([1.0, 1.0]))
    array([100., 100., 110.])
    """
    equity = np.asarray(equity, dtype=np.float64)
    paid = np.bincount(
        np.asarray(charged_bar, dtype=np.int64),
        weights=np.asarray(commission, dtype=np.float64),
        minlength=equity.size,
    )
    return equity + np.cumsum(paid[: equity.size])


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
    gross_equity: np.ndarray | None = None,
    risk_free_rate: float = 0.0,
) -> Stats:
    """Statistics of an equity curve (one value per session) and its closed trades.

    Parameters: ``equity`` the marked-to-close equity per session; ``trade_*`` the ledger
    (``trade_return`` as a fraction, net of commissions; bars as indices into ``equity``);
    ``benchmark`` the buy-and-hold price path (its return from ``first_trading_bar``, the
    strategy's warm-up, to the end is ``buy_hold_return_pct``; its log returns give beta);
    ``years`` the calendar span in years (for CAGR); ``turnover`` the traded value over the
    mean equity for the whole run (``turnover_total``; ``turnover`` is it per year);
    ``benchmark_returns`` an external benchmark's simple return over each equity step
    (``equity.size - 1`` values, NaN where unknown) for ``benchmark_*``, ``excess_*`` and
    ``information_ratio*``; ``gross_equity`` the equity before commissions (``equity`` plus the
    commissions paid up to each close) for the ``*_gross`` fields; ``risk_free_rate`` the
    annual rate ``sharpe``, ``sortino`` and ``sharpe_bt`` subtract (``rf / 252`` a session).
    The module docstring defines every field.
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
    if benchmark_returns is not None:
        benchmark_returns = np.asarray(benchmark_returns, dtype=np.float64)
        if benchmark_returns.shape != (n - 1,):
            raise ValueError(
                f"benchmark_returns needs {n - 1} values, got {benchmark_returns.shape}"
            )
    if gross_equity is not None:
        gross_equity = np.asarray(gross_equity, dtype=np.float64)
        if gross_equity.shape != equity.shape:
            raise ValueError(
                f"gross_equity needs {n} values (one per equity value), got {gross_equity.shape}"
            )
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
    sortino_bt = (
        (ann - risk_free_rate) / (downside * math.sqrt(ANNUAL_SESSIONS))
        if downside
        else (math.inf if ann > 0 else (-math.inf if ann < 0 else math.nan))
    )
    total_return = (equity[-1] - equity[0]) / equity[0] * 100.0
    buy_hold = (c[-1] - c[first_trading_bar]) / c[first_trading_bar] * 100.0
    alpha = total_return - beta * buy_hold

    bench_alpha, bench_beta = _regression(equity, benchmark_returns)
    r_all = _returns(equity)
    r = r_all[np.isfinite(r_all)]
    sharpe, sortino = _sharpe_sortino(r, risk_free_rate / ANNUAL_SESSIONS)
    dd_max_len, dd_mean_len = _underwater_runs(equity)
    nan3 = (math.nan, math.nan, math.nan)
    bench_total = excess = excess_gross = nan3
    if benchmark_returns is not None:
        b = benchmark_returns[np.isfinite(benchmark_returns)]
        bench_total = (float(np.prod(1.0 + b) - 1.0) * 100.0 if b.size else math.nan,)
        excess = _excess(r_all, benchmark_returns)
        if gross_equity is not None:
            excess_gross = _excess(_returns(gross_equity), benchmark_returns)
    total_gross = (
        (gross_equity[-1] - gross_equity[0]) / gross_equity[0] * 100.0
        if gross_equity is not None
        else math.nan
    )
    won = pnl > 0
    lost = pnl < 0
    held = (exits - entries).astype(np.float64)

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
        volatility_ann_pct=float(r.std(ddof=1)) * math.sqrt(ANNUAL_SESSIONS) * 100.0
        if r.size > 1
        else math.nan,
        sharpe=sharpe,
        sortino=sortino,
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
        turnover=float(turnover) / (n_returns / ANNUAL_SESSIONS) if n_returns else math.nan,
        benchmark_alpha_ann_pct=bench_alpha,
        benchmark_beta=bench_beta,
        total_return_gross_pct=float(total_gross),
        omega=_omega(r) if r.size else math.nan,
        max_drawdown_duration_sessions=dd_max_len,
        avg_drawdown_duration_sessions=dd_mean_len,
        benchmark_return_pct=bench_total[0],
        excess_return_ann_pct=excess[0],
        information_ratio=excess[1],
        excess_max_drawdown_pct=excess[2],
        excess_return_ann_gross_pct=excess_gross[0],
        information_ratio_gross=excess_gross[1],
        excess_max_drawdown_gross_pct=excess_gross[2],
        avg_win_pct=float(rets[won].mean()) * 100.0 if won.any() else math.nan,
        avg_loss_pct=float(rets[lost].mean()) * 100.0 if lost.any() else math.nan,
        avg_trade_duration_sessions=float(held.mean()) if n_trades else math.nan,
        median_trade_duration_sessions=float(np.median(held)) if n_trades else math.nan,
        turnover_total=float(turnover),
        sharpe_bt=(ann - risk_free_rate) * 100.0 / _nz(vol * 100.0),
        sortino_bt=float(sortino_bt),
        volatility_ann_bt_pct=vol * 100.0,
    )
