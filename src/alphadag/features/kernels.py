"""Numba kernels for the per-ticker windows of :mod:`alphadag.features.indicators`.

Every kernel runs down a whole column of the panel that :func:`~alphadag.features.indicators.
prepare` sorted by ``(ticker, date)`` and takes ``idx``, the row number within the ticker
(``0`` on a ticker's first row): a ticker is the contiguous run of rows from one ``idx == 0`` to
the next, and every kernel restarts its state there. A ticker's output therefore depends on that
ticker's rows only, bit for bit as if it were computed alone.

Missing values are NaN on the way in (polars nulls converted by ``to_numpy``; the inputs carry no
genuine NaN) and NaN on the way out (turned back into nulls by the caller). The arithmetic
replicates the polars expressions the plan used before these kernels, operation for operation
where it matters, so the values are unchanged:

- :func:`rolling_mean` is polars' ``rolling_mean`` (a Kahan-compensated sliding sum divided by
  ``n``; null unless the ``n`` rows are all present), TA-Lib's ``SMA`` up to rounding;
- :func:`seeded_ewm` is the TA-Lib-seeded recursion (``EMA``, Wilder's RSI/ATR averages, the
  MACD EMAs) in the update form of polars' ``ewm_mean(adjust=False, ignore_nulls=True)``;
- :func:`rolling_std` is the standard deviation of a complete window, summed afresh for each
  window from its first value (exactly 0 on a flat window, as TA-Lib's ``STDDEV`` guard
  answers); polars' sliding moments agreed with it to rounding (~1e-14 relative);
- :func:`cum_sum` is the running total of ``OBV``, :func:`stoch_fast_k` the fast %K of
  ``STOCH``.

Compilation is cached on disk (``cache=True``): the first process compiles (a few seconds),
later ones load the machine code.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "cum_sum",
    "rolling_mean",
    "rolling_std",
    "seeded_ewm",
    "stoch_fast_k",
]


@njit(cache=True, nogil=True)
def _seg_rolling_mean(x: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib ``SMA(n)`` (the mean of the last ``n`` values; NaN before row ``n - 1`` and when a
    value of the window is missing), computed exactly like polars' ``rolling_mean``: a sliding
    sum with Kahan compensation, separate for added and removed values (the removal first), then
    divided by ``n``."""
    out = np.full(x.size, np.nan)
    total = err_add = err_sub = 0.0
    missing = 0
    for i in range(x.size):
        if idx[i] == 0:
            total = err_add = err_sub = 0.0
            missing = 0
        if idx[i] >= n:  # the value leaving the window
            old = x[i - n]
            if np.isnan(old):
                missing -= 1
            else:
                y = -old - err_sub
                t = total + y
                err_sub = (t - total) - y
                total = t
        new = x[i]
        if np.isnan(new):
            missing += 1
        else:
            y = new - err_add
            t = total + y
            err_add = (t - total) - y
            total = t
        if idx[i] >= n - 1 and missing == 0:
            out[i] = total / n
    return out


@njit(cache=True, nogil=True)
def _seg_rolling_std(x: np.ndarray, idx: np.ndarray, n: int, ddof: int) -> np.ndarray:
    """The standard deviation of the last ``n`` values with ``n - ddof`` degrees of freedom
    (``ddof=0``: the population ``STDDEV`` of TA-Lib's ``BBANDS``); NaN before row ``n - 1`` and
    when a value of the window is missing.

    Each window is summed afresh from its first value ``k`` (``d = x - k``):
    ``var = (sum(d**2) - sum(d)**2 / n) / (n - ddof)``. Shifting by a value of the window keeps
    the cancellation mild, and a flat window gives exactly 0 (all ``d`` are 0), the zero TA-Lib's
    guard answers; a rounding residual below 0 is 0 too.
    """
    out = np.full(x.size, np.nan)
    missing = 0
    for i in range(x.size):
        if idx[i] == 0:
            missing = 0
        if idx[i] >= n and np.isnan(x[i - n]):
            missing -= 1
        if np.isnan(x[i]):
            missing += 1
        if idx[i] >= n - 1 and missing == 0:
            first = i - n + 1
            k = x[first]
            total = squares = 0.0
            for j in range(first + 1, i + 1):
                d = x[j] - k
                total += d
                squares += d * d
            var = (squares - total * total / n) / (n - ddof)
            out[i] = np.sqrt(var) if var > 0.0 else 0.0
    return out


@njit(cache=True, nogil=True)
def _seg_seeded_ewm(
    x: np.ndarray, idx: np.ndarray, alpha: float, window: int, seed_at: int
) -> np.ndarray:
    """TA-Lib's seeded recursive average ``y[t] = y[t-1] + alpha * (x[t] - y[t-1])``.

    ``y`` starts at ticker row ``seed_at`` with the :func:`rolling_mean` of the ``window``
    values ending there (TA-Lib's ``prevMA`` seed: ``EMA`` with ``alpha = 2 / (n + 1)``, Wilder's
    RSI and ATR averages with ``alpha = 1 / n``) and is NaN before it and wherever ``x`` is
    missing (a missing value is skipped: the recursion goes on from the next present one; a
    missing seed makes the next present value the start). The update is polars'
    ``ewm_mean(adjust=False, ignore_nulls=True)`` form, ``y + (x - y) * (alpha / w)`` with
    ``w = (1 - alpha) + alpha``, so the values are bit-identical to that expression.
    """
    seed = _seg_rolling_mean(x, idx, window)
    factor = alpha / ((1.0 - alpha) + alpha)
    out = np.full(x.size, np.nan)
    started = False
    y = 0.0
    for i in range(x.size):
        if idx[i] == 0:
            started = False
        if idx[i] < seed_at:
            continue
        v = seed[i] if idx[i] == seed_at else x[i]
        if np.isnan(v):
            continue
        if started:
            y = y + (v - y) * factor
        else:
            y = v
            started = True
        out[i] = y
    return out


@njit(cache=True, nogil=True)
def _seg_cum_sum(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The running total of ``x`` within each ticker (TA-Lib ``OBV`` on its signed volumes);
    a missing value is NaN and left out of the total."""
    out = np.full(x.size, np.nan)
    total = 0.0
    for i in range(x.size):
        if idx[i] == 0:
            total = 0.0
        if not np.isnan(x[i]):
            total += x[i]
            out[i] = total
    return out


@njit(cache=True, nogil=True)
def _seg_stoch_fast_k(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, idx: np.ndarray, n: int
) -> np.ndarray:
    """TA-Lib ``STOCH``'s fast %K over ``n`` rows:
    ``(close - lowest low) / ((highest high - lowest low) / 100)``, 0 where the range is exactly
    zero (even on a missing close); NaN before row ``n - 1``, when a high or low of the window is
    missing, or when the close is (and the range is not zero)."""
    out = np.full(close.size, np.nan)
    for i in range(close.size):
        if idx[i] < n - 1:
            continue
        lowest, highest = np.inf, -np.inf
        complete = True
        for j in range(i - n + 1, i + 1):
            if np.isnan(low[j]) or np.isnan(high[j]):
                complete = False
                break
            lowest = min(lowest, low[j])
            highest = max(highest, high[j])
        if not complete:
            continue
        scale = (highest - lowest) * 0.01  # as polars evaluated ``/ 100.0``
        out[i] = (close[i] - lowest) / scale if scale != 0.0 else 0.0  # NaN for a missing close
    return out


# --------------------------------------------------------------------------------------------
# the public kernels: the tickers of the panel in parallel, each one serial


@njit(cache=True, nogil=True)
def _bounds(idx: np.ndarray) -> np.ndarray:
    """The segment boundaries: row 0, every later row with ``idx == 0``, and the end."""
    count = 1
    for i in range(1, idx.size):
        if idx[i] == 0:
            count += 1
    bounds = np.empty(count + 1, dtype=np.int64)
    bounds[0] = 0
    k = 1
    for i in range(1, idx.size):
        if idx[i] == 0:
            bounds[k] = i
            k += 1
    bounds[count] = idx.size
    return bounds


# Each public kernel splits the column into tickers (the runs from one ``idx == 0`` to the next)
# and runs the serial ``_seg_`` kernel on each with ``prange``: a ticker is always computed by
# one thread in row order, so its values are bit-identical to the serial pass and do not depend
# on the thread count or scheduling. The GIL is held (no ``nogil``): polars calls the kernels
# from its own threads, and numba's workqueue threading layer must not be entered concurrently.


@njit(cache=True, parallel=True)
def rolling_mean(x: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Per ticker :func:`_seg_rolling_mean` (TA-Lib ``SMA(n)``, polars ``rolling_mean``)."""
    out = np.empty(x.size)
    bounds = _bounds(idx)
    for k in prange(bounds.size - 1):
        s, e = bounds[k], bounds[k + 1]
        out[s:e] = _seg_rolling_mean(x[s:e], idx[s:e], n)
    return out


@njit(cache=True, parallel=True)
def rolling_std(x: np.ndarray, idx: np.ndarray, n: int, ddof: int) -> np.ndarray:
    """Per ticker :func:`_seg_rolling_std`."""
    out = np.empty(x.size)
    bounds = _bounds(idx)
    for k in prange(bounds.size - 1):
        s, e = bounds[k], bounds[k + 1]
        out[s:e] = _seg_rolling_std(x[s:e], idx[s:e], n, ddof)
    return out


@njit(cache=True, parallel=True)
def seeded_ewm(
    x: np.ndarray, idx: np.ndarray, alpha: float, window: int, seed_at: int
) -> np.ndarray:
    """Per ticker :func:`_seg_seeded_ewm`."""
    out = np.empty(x.size)
    bounds = _bounds(idx)
    for k in prange(bounds.size - 1):
        s, e = bounds[k], bounds[k + 1]
        out[s:e] = _seg_seeded_ewm(x[s:e], idx[s:e], alpha, window, seed_at)
    return out


@njit(cache=True, parallel=True)
def cum_sum(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Per ticker :func:`_seg_cum_sum`."""
    out = np.empty(x.size)
    bounds = _bounds(idx)
    for k in prange(bounds.size - 1):
        s, e = bounds[k], bounds[k + 1]
        out[s:e] = _seg_cum_sum(x[s:e], idx[s:e])
    return out


@njit(cache=True, parallel=True)
def stoch_fast_k(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, idx: np.ndarray, n: int
) -> np.ndarray:
    """Per ticker :func:`_seg_stoch_fast_k`."""
    out = np.empty(close.size)
    bounds = _bounds(idx)
    for k in prange(bounds.size - 1):
        s, e = bounds[k], bounds[k + 1]
        out[s:e] = _seg_stoch_fast_k(high[s:e], low[s:e], close[s:e], idx[s:e], n)
    return out


@njit(cache=True, nogil=True)
def _group_order(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows grouped by ``key`` (ascending keys, rows in their order within a key) and the
    group boundaries: a counting sort when the keys span a modest range (day numbers), else a
    stable argsort."""
    n = key.size
    order = np.empty(n, dtype=np.int64)
    if n == 0:
        return order, np.zeros(1, dtype=np.int64)
    lo, hi = key.min(), key.max()
    if float(hi) - float(lo) <= 4.0 * n + 1024.0:  # float: no overflow on extreme keys
        counts = np.zeros(hi - lo + 2, dtype=np.int64)
        for i in range(n):
            counts[key[i] - lo + 1] += 1
        groups = 0
        for c in range(1, counts.size):
            if counts[c] > 0:
                groups += 1
            counts[c] += counts[c - 1]
        bounds = np.empty(groups + 1, dtype=np.int64)
        g = 0
        for c in range(counts.size - 1):
            if counts[c + 1] > counts[c]:
                bounds[g] = counts[c]
                g += 1
        bounds[groups] = n
        for i in range(n):
            slot = key[i] - lo
            order[counts[slot]] = i
            counts[slot] += 1
        return order, bounds
    order[:] = np.argsort(key, kind="mergesort")
    groups = 1
    for i in range(1, n):
        if key[order[i]] != key[order[i - 1]]:
            groups += 1
    bounds = np.empty(groups + 1, dtype=np.int64)
    bounds[0] = 0
    g = 1
    for i in range(1, n):
        if key[order[i]] != key[order[i - 1]]:
            bounds[g] = i
            g += 1
    bounds[groups] = n
    return order, bounds


@njit(cache=True, parallel=True)
def xs_rank(x: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The average rank (1-based, ties sharing the mean of their ranks) of each present ``x``
    among the present values of its ``key`` group (a date), divided by their count: polars'
    ``x.rank("average").over(key) / x.count().over(key)``. NaN (missing) stays NaN and is left
    out of the ranks and the count. Each group is independent, so the values do not depend on
    the thread count."""
    out = np.full(x.size, np.nan)
    order, bounds = _group_order(key)
    for g in prange(bounds.size - 1):
        rows = order[bounds[g] : bounds[g + 1]]
        present = np.empty(rows.size, dtype=np.int64)
        m = 0
        for r in rows:
            if not np.isnan(x[r]):
                present[m] = r
                m += 1
        present = present[:m]
        values = x[present]
        ranked = np.argsort(values)
        i = 0
        while i < m:
            j = i + 1
            while j < m and values[ranked[j]] == values[ranked[i]]:
                j += 1
            rank = (i + 1 + j) / 2.0  # the mean of the ranks i + 1 .. j
            for t in range(i, j):
                out[present[ranked[t]]] = rank / m
            i = j
    return out
