"""One-day Value at Risk and Conditional VaR (expected shortfall), historical and parametric.

Both are reported as **positive loss fractions** of one day's simple return: at ``level = 0.95``
the tail probability is ``a = 1 - level = 0.05`` and ``VaR = -Q_a(r)``, the loss exceeded on 5% of
days; ``CVaR`` is the expected loss on the days beyond VaR, so ``CVaR >= VaR`` always. A VaR can
be negative (a profit) when the mean return is large against the volatility; it is not clipped.

- :func:`historical_var_cvar` uses the empirical quantile of the (trailing) sample with the
  *linear* convention (Hyndman-Fan type 7, ``numpy.quantile(method="linear")`` and polars'
  ``quantile(..., "linear")``): ``Q_a = x_(j) + g * (x_(j+1) - x_(j))`` with ``h = (n - 1) * a``,
  ``j = floor(h)`` (0-based order statistics), ``g = h - j``. ``CVaR = -mean{r_i : r_i <= Q_a}``;
  that set always holds the sample minimum, so it is never empty and its mean is ``<= Q_a``.
- :func:`parametric_var_cvar` assumes ``r ~ N(mu, sigma^2)``: ``VaR = -(mu + sigma * z_a)`` and
  ``CVaR = -mu + sigma * phi(z_a) / a`` with ``z_a = Phi^{-1}(a)`` (negative for ``a < 0.5``).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from alphadag.risk._checks import ArrayLike, as_float_array, check_level, check_positive_int

__all__ = [
    "LEVELS",
    "VarCvar",
    "historical_var_cvar",
    "normal_tail_constants",
    "parametric_var_cvar",
]

LEVELS: tuple[float, ...] = (0.95, 0.99)
"""The confidence levels reported by :func:`alphadag.risk.risk_table`."""


class VarCvar(NamedTuple):
    """A one-day VaR and CVaR pair, positive numbers being losses (fractions of value)."""

    var: float
    cvar: float


def normal_tail_constants(level: float) -> tuple[float, float]:
    """``(z_a, phi(z_a) / a)`` for the tail probability ``a = 1 - level`` of a standard normal.

    >>> z, k = normal_tail_constants(0.95)
    >>> round(z, 4), round(k, 4)
    (-1.6449, 2.0627)
    """
    a = 1.0 - check_level(level)
    z = NormalDist().inv_cdf(a)
    phi = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return z, phi / a


def parametric_var_cvar(mu: float, sigma: float, level: float = 0.95) -> VarCvar:
    """Normal one-day VaR and CVaR for a return with mean ``mu`` and standard deviation ``sigma``.

    Parameters
    ----------
    mu
        Expected one-day simple return (use 0 for the RiskMetrics zero-mean convention).
    sigma
        One-day return standard deviation, ``>= 0`` (e.g. a volatility forecast).
    level
        Confidence level in (0, 1); 0.95 and 0.99 are the reported ones.

    Returns
    -------
    VarCvar
        ``VaR = -(mu + sigma * z_a)``, ``CVaR = -mu + sigma * phi(z_a) / a``, ``a = 1 - level``.

    >>> v = parametric_var_cvar(0.0, 0.01, 0.99)
    >>> round(v.var, 5), round(v.cvar, 5)
    (0.02326, 0.02665)
    """
    for name, value in (("mu", mu), ("sigma", sigma)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    z, k = normal_tail_constants(level)
    return VarCvar(var=-(float(mu) + float(sigma) * z), cvar=-float(mu) + float(sigma) * k)


def historical_var_cvar(
    returns: ArrayLike, level: float = 0.95, *, window: int | None = None
) -> VarCvar:
    """Empirical one-day VaR and CVaR of ``returns`` (oldest first) over a trailing window.

    Parameters
    ----------
    returns
        Daily simple returns in time order, finite (a numpy array, a polars Series or a list).
    level
        Confidence level in (0, 1).
    window
        Use only the last ``window`` returns (``None``: all of them).

    Returns
    -------
    VarCvar
        ``VaR = -Q_a`` (linear-interpolated empirical quantile, see the module docstring) and
        ``CVaR = -mean(r[r <= Q_a])``, so ``CVaR >= VaR``.

    >>> r = [-0.05, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.01, -0.03, 0.04]
    >>> v = historical_var_cvar(r, 0.9)
    >>> round(v.var, 6), round(v.cvar, 6)   # Q_0.1 = -0.05 + 0.9 * (-0.03 + 0.05)
    (0.032, 0.05)
    """
    a = 1.0 - check_level(level)
    x = as_float_array(returns, "returns")
    if window is not None:
        x = x[-check_positive_int(window, "window") :]
    # numpy's lerp may round a hair below the sample minimum; the minimum keeps the tail non-empty
    q = max(float(np.quantile(x, a, method="linear")), float(x.min()))
    # a float mean of values <= q can round a hair above q; the clamp keeps CVaR >= VaR exact
    tail_mean = min(float(x[x <= q].mean()), q)
    return VarCvar(var=-q, cvar=-tail_mean)
