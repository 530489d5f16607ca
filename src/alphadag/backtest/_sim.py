"""The portfolio simulation loop (numba, compiled once and cached on disk).

Arrays are ``(sessions, tickers)``; NaN marks a ticker without a bar that session. See
:func:`alphadag.backtest.engine.run_backtest` for the conventions this loop implements.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# backtesting.py's ``buy()`` asks for ``1 - eps`` of the available margin and divides the
# commission of that fractional order by ``1 - eps``: the same expression sizes our all-in orders.
FRAC = 1.0 - np.finfo(np.float64).eps

SIZING_CODES = {"all_in": 0, "equal_weight": 1, "weight": 2}


@njit(cache=True, nogil=True)
def _commission(value: float, rate: float, fixed: float, minimum: float) -> float:
    return max(minimum, fixed + abs(value) * rate)


@njit(cache=True, nogil=True)
def simulate(
    fill: np.ndarray,
    close: np.ndarray,
    target: np.ndarray,
    cash0: float,
    rate: float,
    fixed: float,
    minimum: float,
    slip: float,
    fractional: bool,
    sizing: int,
    capacity: int,
):
    n, m = close.shape
    pos = np.zeros(m)
    held = np.zeros(m)  # the target behind the current position (0: flat)
    last_close = np.full(m, np.nan)
    mark = np.zeros(m)
    equity = np.empty(n)
    cash_curve = np.empty(n)
    gross_curve = np.empty(n)
    # the ledger
    t_ticker = np.empty(capacity, np.int64)
    t_entry = np.empty(capacity, np.int64)
    t_exit = np.empty(capacity, np.int64)
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
    for t in range(n):
        if t > 0:
            # closes first (they free cash), at this bar's fill price; the target is the one
            # decided on the previous bar's close: row t - 1, never row t (no look-ahead)
            for j in range(m):
                price = fill[t, j]
                if np.isnan(price) or pos[j] == 0.0:
                    continue
                desired = target[t - 1, j]
                if desired == held[j]:
                    continue
                side = 1.0 if pos[j] > 0 else -1.0
                px = price * (1.0 - side * slip)
                comm = _commission(pos[j] * px, rate, fixed, minimum)
                cash += pos[j] * px - comm
                traded += abs(pos[j] * px)
                k = open_trade[j]
                t_exit[k] = t
                t_exit_price[k] = px
                t_exit_comm[k] = comm
                open_trade[j] = -1
                pos[j] = 0.0
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
                if np.isnan(price):
                    continue
                desired = target[t - 1, j]
                if desired == 0.0 or desired == held[j] or pos[j] != 0.0:
                    continue
                held[j] = desired  # a cancelled order is not retried (backtesting.py's rule)
                available = max(0.0, equity_mark - gross)
                weight = abs(desired)
                if sizing == 0:
                    budget = available * weight
                elif sizing == 1:
                    budget = min(prev_equity * weight / m, available)
                else:
                    budget = min(prev_equity * weight, available)
                side = 1.0 if desired > 0 else -1.0
                px = price * (1.0 + side * slip)
                if fractional:
                    shares = max(0.0, (budget - fixed) / (px * (1.0 + rate)))
                    if (
                        shares > 0
                        and shares * px + _commission(shares * px, rate, fixed, minimum) > budget
                    ):
                        shares = max(0.0, (budget - minimum) / px)
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
                side = 1.0 if pos[j] > 0 else -1.0
                px = last_close[j] * (1.0 - side * slip)
                comm = _commission(pos[j] * px, rate, fixed, minimum)
                cash += pos[j] * px - comm
                traded += abs(pos[j] * px)
                k = open_trade[j]
                t_exit[k] = t
                t_exit_price[k] = px
                t_exit_comm[k] = comm
                pos[j] = 0.0
            value = 0.0
            gross = 0.0
        equity[t] = cash + value
        cash_curve[t] = cash
        gross_curve[t] = gross
        prev_equity = equity[t]
    return (
        equity,
        cash_curve,
        gross_curve,
        traded,
        n_trades,
        t_ticker[:n_trades],
        t_entry[:n_trades],
        t_exit[:n_trades],
        t_size[:n_trades],
        t_entry_price[:n_trades],
        t_exit_price[:n_trades],
        t_entry_comm[:n_trades],
        t_exit_comm[:n_trades],
    )
