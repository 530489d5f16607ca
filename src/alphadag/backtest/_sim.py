"""The portfolio simulation loop (numba, compiled once and cached on disk).

Arrays are ``(sessions, tickers)``; NaN marks a ticker without a bar that session (and a
missing ``high``/``low``). See :func:`alphadag.backtest.engine.run_backtest` for the conventions
this loop implements. :func:`simulate` runs one backtest, :func:`simulate_many` one per target
grid of a stack (one per parameter combination) in one call; both take the price grids as
:class:`Grids` and the encoded knobs as :class:`SimParams`, and return :class:`SimResult`. The
jitted kernels behind them pass tuples; only this module unpacks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from alphadag.backtest.settings import SIZINGS

# backtesting.py's ``buy()`` asks for ``1 - eps`` of the available margin and divides the
# commission of that fractional order by ``1 - eps``: the same expression sizes our all-in orders.
FRAC = 1.0 - np.finfo(np.float64).eps

SIZING_CODES = {name: code for code, name in enumerate(SIZINGS)}

# why a trade was closed (the ledger's ``exit_reason``)
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "drawdown_limit", "end")
EXIT_SIGNAL, EXIT_STOP, EXIT_TAKE, EXIT_BREAKER, EXIT_END = range(5)


class Grids(NamedTuple):
    """The price grids of a layout: ``fill`` (open, else close), ``close``, ``high``, ``low``
    (NaN where missing) and ``vol`` (the annualised realised volatility known at each close,
    read only by ``vol_target`` sizing; a ``(1, 1)`` NaN placeholder otherwise)."""

    fill: np.ndarray
    close: np.ndarray
    high: np.ndarray
    low: np.ndarray
    vol: np.ndarray


class SimParams(NamedTuple):
    """The knobs encoded for the kernels, in their argument order: NaN turns ``stop_loss``,
    ``take_profit`` and ``dd_limit`` off, inf ``max_weight``; ``cooldown < 0``: the breaker
    halts for the rest of the run; ``slip`` is a fraction (bps / 1e4); ``sizing`` a code of
    :data:`SIZING_CODES`."""

    cash0: float
    rate: float
    fixed: float
    minimum: float
    slip: float
    fractional: bool
    sizing: int
    stop_loss: float
    take_profit: float
    max_weight: float
    leverage: float
    dd_limit: float
    cooldown: int
    target_vol: float


@dataclass(frozen=True)
class SimResult:
    """One simulation: the ``equity``, ``cash`` and ``gross`` (sum of ``|position value|``)
    curves at each close, the ``traded`` value (both sides), and the ledger, one entry per
    trade: ``ticker`` (column index), ``entry_bar``/``exit_bar`` (session indices), signed
    ``size``, ``entry_price``/``exit_price`` (slippage included), ``entry_commission``/
    ``exit_commission`` and ``exit_reason`` (an index of :data:`EXIT_REASONS`)."""

    equity: np.ndarray
    cash: np.ndarray
    gross: np.ndarray
    traded: float
    ticker: np.ndarray
    entry_bar: np.ndarray
    exit_bar: np.ndarray
    size: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    entry_commission: np.ndarray
    exit_commission: np.ndarray
    exit_reason: np.ndarray

    @property
    def n_trades(self) -> int:
        return int(self.size.size)


@njit(cache=True, nogil=True)
def _commission(value: float, rate: float, fixed: float, minimum: float) -> float:
    return max(minimum, fixed + abs(value) * rate)


@njit(cache=True, nogil=True)
def _exit(
    j: int,
    t: int,
    price: float,
    reason: int,
    pos: np.ndarray,
    open_trade: np.ndarray,
    slip: float,
    rate: float,
    fixed: float,
    minimum: float,
    exit_bar: np.ndarray,
    exit_price: np.ndarray,
    exit_comm: np.ndarray,
    exit_reason: np.ndarray,
):
    """Close ticker ``j``'s position on bar ``t`` at ``price`` (before slippage, which moves
    it against the trade) for ``reason``: completes its ledger row and zeroes the position.
    Returns the cash it brings (proceeds less the commission) and its traded value."""
    size = pos[j]
    side = 1.0 if size > 0 else -1.0
    px = price * (1.0 - side * slip)
    comm = _commission(size * px, rate, fixed, minimum)
    k = open_trade[j]
    exit_bar[k] = t
    exit_price[k] = px
    exit_comm[k] = comm
    exit_reason[k] = reason
    open_trade[j] = -1
    pos[j] = 0.0
    return size * px - comm, abs(size * px)


@njit(cache=True, nogil=True)
def targets(signal: np.ndarray, allow_short: bool):
    """Each ticker's target per bar: its signal forward-filled (a null keeps the last decision;
    a forward fill reads the past only), flat before the first, negatives flat unless
    ``allow_short``; and the number of target changes (the ledger's capacity)."""
    n, m = signal.shape
    out = np.empty((n, m))
    last = np.zeros(m)
    changes = 0
    for t in range(n):
        for j in range(m):
            v = signal[t, j]
            if not np.isnan(v):
                last[j] = v if allow_short or v > 0.0 else 0.0
            out[t, j] = last[j]
            if t > 0 and out[t, j] != out[t - 1, j]:
                changes += 1
    return out, changes


@njit(cache=True, nogil=True)
def _simulate(
    fill: np.ndarray,
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    target: np.ndarray,
    vol: np.ndarray,
    capacity: int,
    cash0: float,
    rate: float,
    fixed: float,
    minimum: float,
    slip: float,
    fractional: bool,
    sizing: int,
    stop_loss: float,
    take_profit: float,
    max_weight: float,
    leverage: float,
    dd_limit: float,
    cooldown: int,
    target_vol: float,
):
    """One backtest (the knobs as in :class:`SimParams`), as a tuple in :class:`SimResult`'s
    field order."""
    n, m = close.shape
    use_stops = not (np.isnan(stop_loss) and np.isnan(take_profit))
    pos = np.zeros(m)
    held = np.zeros(m)  # the target behind the current position, or behind a stopped-out one
    last_close = np.full(m, np.nan)
    mark = np.zeros(m)
    equity = np.empty(n)
    cash_curve = np.empty(n)
    gross_curve = np.empty(n)
    # the ledger
    t_ticker = np.empty(capacity, np.int64)
    t_entry = np.empty(capacity, np.int64)
    t_exit = np.empty(capacity, np.int64)
    t_reason = np.empty(capacity, np.int64)
    t_size = np.empty(capacity)
    t_entry_price = np.empty(capacity)
    t_exit_price = np.empty(capacity)
    t_entry_comm = np.empty(capacity)
    t_exit_comm = np.empty(capacity)
    open_trade = np.full(m, -1, np.int64)
    n_trades = 0
    cash = cash0
    traded = 0.0
    prev_equity = cash0
    peak = cash0
    halt_until = -1  # the drawdown breaker: no position is held through bars <= halt_until
    for t in range(n):
        if t > 0:
            halted = t <= halt_until
            # closes first (they free cash), at this bar's fill price; the target is the one
            # decided on the previous bar's close: row t - 1, never row t (no look-ahead)
            for j in range(m):
                price = fill[t, j]
                if np.isnan(price) or pos[j] == 0.0:
                    continue
                desired = 0.0 if halted else target[t - 1, j]
                if desired == held[j]:
                    continue
                proceeds, value = _exit(
                    j, t, price, EXIT_BREAKER if halted else EXIT_SIGNAL, pos, open_trade,
                    slip, rate, fixed, minimum, t_exit, t_exit_price, t_exit_comm, t_reason,
                )  # fmt: skip
                cash += proceeds
                traded += value
                held[j] = 0.0
            # then entries, in ticker order, sized on what is left
            equity_mark = cash
            gross = 0.0
            for j in range(m):
                mark[j] = fill[t, j] if not np.isnan(fill[t, j]) else last_close[j]
                if pos[j] != 0.0:
                    equity_mark += pos[j] * mark[j]
                    gross += abs(pos[j] * mark[j])
            for j in range(m):
                price = fill[t, j]
                if np.isnan(price) or pos[j] != 0.0:
                    continue
                desired = 0.0 if halted else target[t - 1, j]
                if desired == 0.0:
                    held[j] = 0.0
                    continue
                if desired == held[j]:
                    continue
                held[j] = desired  # a cancelled order is not retried (backtesting.py's rule)
                available = max(0.0, leverage * equity_mark - gross)
                weight = abs(desired)
                if sizing == 0:
                    budget = available * weight
                elif sizing == 1:
                    budget = min(prev_equity * weight / m, available)
                elif sizing == 2:
                    budget = min(prev_equity * weight, available)
                else:
                    sigma = vol[t - 1, j]  # known at the decision's close
                    if not sigma > 0.0:
                        continue
                    scale = min(target_vol / sigma, max_weight)
                    budget = min(prev_equity * weight * scale, available)
                budget = min(budget, max_weight * prev_equity)
                side = 1.0 if desired > 0 else -1.0
                px = price * (1.0 + side * slip)
                if fractional:
                    # exactly the budget: shares * px + commission == budget (to rounding)
                    shares = max(0.0, (budget - fixed) / (px * (1.0 + rate)))
                    if shares > 0 and fixed + shares * px * rate < minimum:
                        shares = max(0.0, (budget - minimum) / px)  # the minimum binds
                else:
                    unit = px + (fixed + FRAC * px * rate) / FRAC
                    shares = float(np.floor(budget / unit)) if budget > 0 else 0.0
                    while (
                        shares > 0
                        and shares * px + _commission(shares * px, rate, fixed, minimum) > budget
                    ):
                        shares -= 1.0
                if shares <= 0.0:
                    continue
                size = side * shares
                comm = _commission(size * px, rate, fixed, minimum)
                cash -= size * px + comm
                traded += abs(size * px)
                equity_mark -= comm
                gross += abs(size * mark[j])
                equity_mark += size * (mark[j] - px)
                pos[j] = size
                k = n_trades
                n_trades += 1
                t_ticker[k] = j
                t_entry[k] = t
                t_size[k] = size
                t_entry_price[k] = px
                t_entry_comm[k] = comm
                open_trade[j] = k
            # stop-loss / take-profit of positions entered on an earlier bar, against this
            # bar's range (low/high, else open and close); the stop first when both are hit
            if use_stops:
                for j in range(m):
                    if pos[j] == 0.0 or np.isnan(close[t, j]):
                        continue
                    k = open_trade[j]
                    if t_entry[k] >= t:
                        continue
                    price = fill[t, j]
                    lo = low[t, j] if not np.isnan(low[t, j]) else min(price, close[t, j])
                    hi = high[t, j] if not np.isnan(high[t, j]) else max(price, close[t, j])
                    ep = t_entry_price[k]
                    side = 1.0 if pos[j] > 0 else -1.0
                    px = np.nan
                    reason = EXIT_STOP
                    if side > 0:
                        if not np.isnan(stop_loss) and lo <= ep * (1.0 - stop_loss):
                            px = min(price, ep * (1.0 - stop_loss))
                        elif not np.isnan(take_profit) and hi >= ep * (1.0 + take_profit):
                            px = max(price, ep * (1.0 + take_profit))
                            reason = EXIT_TAKE
                    else:
                        if not np.isnan(stop_loss) and hi >= ep * (1.0 + stop_loss):
                            px = max(price, ep * (1.0 + stop_loss))
                        elif not np.isnan(take_profit) and lo <= ep * (1.0 - take_profit):
                            px = min(price, ep * (1.0 - take_profit))
                            reason = EXIT_TAKE
                    if np.isnan(px):
                        continue
                    # held[j] stays: no re-entry until the target changes
                    proceeds, value = _exit(
                        j, t, px, reason, pos, open_trade, slip, rate, fixed, minimum,
                        t_exit, t_exit_price, t_exit_comm, t_reason,
                    )  # fmt: skip
                    cash += proceeds
                    traded += value
        # mark to this bar's close
        value = 0.0
        gross = 0.0
        for j in range(m):
            if not np.isnan(close[t, j]):
                last_close[j] = close[t, j]
            if pos[j] != 0.0:
                value += pos[j] * last_close[j]
                gross += abs(pos[j] * last_close[j])
        if t == n - 1:
            # open trades are closed at the last bar's close for the statistics
            for j in range(m):
                if pos[j] == 0.0:
                    continue
                proceeds, value = _exit(
                    j, t, last_close[j], EXIT_END, pos, open_trade, slip, rate, fixed, minimum,
                    t_exit, t_exit_price, t_exit_comm, t_reason,
                )  # fmt: skip
                cash += proceeds
                traded += value
            value = 0.0
            gross = 0.0
        equity[t] = cash + value
        cash_curve[t] = cash
        gross_curve[t] = gross
        prev_equity = equity[t]
        # the drawdown circuit breaker, decided on this close: flatten at the next fill
        if t <= halt_until:
            peak = equity[t]  # the drawdown restarts from the equity at the resumption
        else:
            peak = max(peak, equity[t])
            if not np.isnan(dd_limit) and equity[t] < peak * (1.0 - dd_limit):
                halt_until = t + cooldown if cooldown >= 0 else n
    return (
        equity,
        cash_curve,
        gross_curve,
        traded,
        t_ticker[:n_trades],
        t_entry[:n_trades],
        t_exit[:n_trades],
        t_size[:n_trades],
        t_entry_price[:n_trades],
        t_exit_price[:n_trades],
        t_entry_comm[:n_trades],
        t_exit_comm[:n_trades],
        t_reason[:n_trades],
    )


@njit(cache=True, nogil=True)
def _simulate_many(
    fill: np.ndarray,
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    targets: np.ndarray,
    vol: np.ndarray,
    capacities: np.ndarray,
    cash0: float,
    rate: float,
    fixed: float,
    minimum: float,
    slip: float,
    fractional: bool,
    sizing: int,
    stop_loss: float,
    take_profit: float,
    max_weight: float,
    leverage: float,
    dd_limit: float,
    cooldown: int,
    target_vol: float,
):
    """:func:`_simulate` for each ``targets[c]`` (``(combinations, n, m)``) in one call. Serial:
    measured on 2 busy cores, ``prange`` saved nothing and threads would contend with polars'
    pool. Curves come back stacked, ledgers padded to the longest, ``counts`` the trades of each
    combination."""
    k = targets.shape[0]
    n = close.shape[0]
    cap = 1
    for c in range(k):
        cap = max(cap, capacities[c])
    curves = np.empty((3, k, n))  # equity, cash, gross
    traded = np.empty(k)
    counts = np.zeros(k, np.int64)
    l_int = np.zeros((4, k, cap), np.int64)  # ticker, entry, exit, reason
    l_float = np.zeros((5, k, cap))  # size, entry price, exit price, entry/exit commission
    for c in range(k):
        out = _simulate(
            fill, close, high, low, targets[c], vol, capacities[c], cash0, rate, fixed, minimum,
            slip, fractional, sizing, stop_loss, take_profit, max_weight, leverage, dd_limit,
            cooldown, target_vol,
        )  # fmt: skip
        curves[0, c] = out[0]
        curves[1, c] = out[1]
        curves[2, c] = out[2]
        traded[c] = out[3]
        cnt = out[4].size
        counts[c] = cnt
        l_int[0, c, :cnt] = out[4]
        l_int[1, c, :cnt] = out[5]
        l_int[2, c, :cnt] = out[6]
        l_int[3, c, :cnt] = out[12]
        l_float[0, c, :cnt] = out[7]
        l_float[1, c, :cnt] = out[8]
        l_float[2, c, :cnt] = out[9]
        l_float[3, c, :cnt] = out[10]
        l_float[4, c, :cnt] = out[11]
    return curves, traded, counts, l_int, l_float


def simulate(grids: Grids, target: np.ndarray, capacity: int, params: SimParams) -> SimResult:
    """One backtest of the ``(n, m)`` ``target`` grid (each ticker's target decided at each
    close) on ``grids``; ``capacity`` bounds the ledger (the number of trades possible)."""
    return SimResult(*_simulate(*grids[:4], target, grids.vol, int(capacity), *params))


def simulate_many(
    grids: Grids, targets: np.ndarray, capacities: np.ndarray, params: SimParams
) -> list[SimResult]:
    """:func:`simulate` of each ``targets[c]`` (a ``(combinations, n, m)`` stack, ledger
    capacities ``capacities[c]``) in one jitted call, one :class:`SimResult` per combination."""
    curves, traded, counts, l_int, l_float = _simulate_many(
        *grids[:4], targets, grids.vol, np.asarray(capacities, np.int64), *params
    )
    return [
        SimResult(
            equity=curves[0, c],
            cash=curves[1, c],
            gross=curves[2, c],
            traded=float(traded[c]),
            ticker=l_int[0, c, :k],
            entry_bar=l_int[1, c, :k],
            exit_bar=l_int[2, c, :k],
            size=l_float[0, c, :k],
            entry_price=l_float[1, c, :k],
            exit_price=l_float[2, c, :k],
            entry_commission=l_float[3, c, :k],
            exit_commission=l_float[4, c, :k],
            exit_reason=l_int[3, c, :k],
        )
        for c, k in enumerate(counts.tolist())
    ]
