"""Trailing maximum drawdown of a price path, as a positive fraction.

The drawdown at ``t`` is ``1 - p_t / max(p_s, s <= t)``, measured from the running peak *inside
the window* (a peak before the window does not count); the maximum drawdown is its largest value
over the window, in ``[0, 1)``, and 0 for a path that never falls. Prices must be finite and > 0.
"""

from __future__ import annotations

import numpy as np

from alphadag.risk._checks import ArrayLike, as_float_array, check_positive_int

__all__ = ["max_drawdown"]


def max_drawdown(prices: ArrayLike, *, window: int | None = None) -> float:
    """Maximum peak-to-trough loss of ``prices`` (oldest first) over the last ``window`` prices.

    Parameters
    ----------
    prices
        Positive, finite prices in time order (adjusted closes).
    window
        Number of trailing prices to use (``None``: the whole path). ``window`` prices span
        ``window - 1`` daily returns.

    Returns
    -------
    float
        ``max_t (1 - p_t / max_{s <= t} p_s)`` over the window.

    >>> max_drawdown([100.0, 120.0, 90.0, 130.0, 117.0])   # 120 -> 90
    0.25
    >>> round(max_drawdown([100.0, 120.0, 90.0, 130.0, 117.0], window=2), 12)   # 130 -> 117
    0.1
    """
    p = as_float_array(prices, "prices")
    if (p <= 0).any():
        raise ValueError("prices must be > 0")
    if window is not None:
        p = p[-check_positive_int(window, "window") :]
    peak = np.maximum.accumulate(p)
    return float(np.max(1.0 - p / peak))
