"""VaR and CVaR of the top-k long portfolio implied by a cross-section of signals.

:func:`top_k_weights` turns one date's signals into the equal-weighted long book of the ``k``
highest signals (ties broken by ticker, so the choice is deterministic). :func:`portfolio_var_cvar`
measures that book on aligned historical daily simple returns of its tickers: a daily-rebalanced
portfolio's simple return is exactly ``r_p = R @ w``, so the *historical* figures are
:func:`~alphadag.risk.var.historical_var_cvar` of ``r_p``, and the *parametric* ones are the
normal closed forms with ``mu_p = w . mean(R)`` and ``sigma_p = sqrt(w' S w)``, ``S`` the sample
covariance (``ddof=1``). Both are positive one-day loss fractions of portfolio value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import polars as pl

from alphadag.risk._checks import check_level, check_positive_int
from alphadag.risk.var import VarCvar, historical_var_cvar, parametric_var_cvar

__all__ = ["VarMethod", "portfolio_var_cvar", "top_k_weights"]

VarMethod = Literal["historical", "parametric"]


def top_k_weights(
    signals: pl.DataFrame, k: int, *, ticker: str = "ticker", signal: str = "signal"
) -> pl.DataFrame:
    """Equal weights ``1 / m`` on the ``m = min(k, n)`` tickers with the highest signal.

    Parameters
    ----------
    signals
        One cross-section: a row per ticker with columns ``ticker`` and ``signal``.
    k
        Book size; fewer usable tickers than ``k`` gives a smaller book.
    ticker, signal
        Column names.

    Returns
    -------
    polars.DataFrame
        Columns ``ticker`` and ``weight`` (Float64, summing to 1), highest signal first. Rows
        with a null or NaN signal are not eligible; equal signals are ranked by ticker.

    >>> s = pl.DataFrame({"ticker": ["A", "B", "C", "D"], "signal": [0.2, None, 0.5, 0.2]})
    >>> top_k_weights(s, 2).rows()
    [('C', 0.5), ('A', 0.5)]
    """
    if not isinstance(signals, pl.DataFrame):
        raise TypeError(f"signals must be a polars DataFrame, got {type(signals).__name__}")
    k = check_positive_int(k, "k")
    for col in (ticker, signal):
        if col not in signals.columns:
            raise ValueError(f"signals lacks column {col!r}; got {signals.columns}")
    if signals.get_column(ticker).is_duplicated().any():
        raise ValueError("signals must hold one row per ticker (one date's cross-section)")
    s = pl.col(signal).cast(pl.Float64)
    usable = signals.select(pl.col(ticker), s).filter(s.is_not_null() & s.is_not_nan())
    if usable.height == 0:
        raise ValueError("no ticker has a usable (non-null, non-NaN) signal")
    book = usable.sort([signal, ticker], descending=[True, False]).head(k)
    return book.select(pl.col(ticker), pl.lit(1.0 / book.height, dtype=pl.Float64).alias("weight"))


def _weights_for(names: list[str] | None, n_assets: int, weights: object) -> np.ndarray:
    if weights is None:
        return np.full(n_assets, 1.0 / n_assets)
    if isinstance(weights, pl.DataFrame):
        if not {"ticker", "weight"} <= set(weights.columns):
            raise ValueError("a weights frame needs columns 'ticker' and 'weight'")
        weights = dict(weights.select("ticker", "weight").iter_rows())
    if isinstance(weights, Mapping):
        if names is None:
            raise TypeError("weights by ticker need returns as a DataFrame with ticker columns")
        if set(weights) != set(names):
            raise ValueError(
                f"weights name tickers {sorted(weights)} but returns has columns {sorted(names)}"
            )
        w = np.array([float(weights[n]) for n in names])
    elif isinstance(weights, Sequence | np.ndarray | pl.Series):
        w = np.asarray(weights, dtype=np.float64).ravel()
    else:
        raise TypeError(f"weights must be None, a sequence, a mapping or a frame, got {weights!r}")
    if w.size != n_assets:
        raise ValueError(f"got {w.size} weights for {n_assets} assets")
    if not np.isfinite(w).all():
        raise ValueError("weights must be finite")
    return w


def portfolio_var_cvar(
    returns: pl.DataFrame | np.ndarray,
    weights: Sequence[float] | np.ndarray | Mapping[str, float] | pl.DataFrame | None = None,
    *,
    level: float = 0.95,
    method: VarMethod = "historical",
    date: str = "date",
) -> VarCvar:
    """One-day VaR and CVaR of a long book with ``weights`` on aligned historical ``returns``.

    Parameters
    ----------
    returns
        Daily simple returns, one row per date (oldest first) and one column per asset: a 2-d
        array, or a DataFrame whose columns other than ``date`` are tickers. No nulls/NaN.
    weights
        Portfolio weights (fractions of value): an array in column order, a ``{ticker: w}``
        mapping or a ``ticker, weight`` frame as from :func:`top_k_weights`. ``None``: equal.
    level
        Confidence level in (0, 1).
    method
        ``"historical"`` (empirical quantile of ``R @ w``) or ``"parametric"`` (normal, sample
        mean and covariance).
    date
        Name of a date column to ignore if present.

    Returns
    -------
    VarCvar
        Positive loss fractions of portfolio value over one day.

    >>> r = pl.DataFrame({"A": [0.01, -0.02, 0.03, -0.01], "B": [0.0, -0.01, 0.02, 0.01]})
    >>> v = portfolio_var_cvar(r, level=0.75)   # equal weight: r_p = [0.005, -0.015, 0.025, 0]
    >>> round(v.var, 6), round(v.cvar, 6)
    (0.00375, 0.015)
    """
    level = check_level(level)
    if method not in ("historical", "parametric"):
        raise ValueError(f"method must be 'historical' or 'parametric', got {method!r}")
    names: list[str] | None = None
    if isinstance(returns, pl.DataFrame):
        names = [c for c in returns.columns if c != date]
        if returns.select(names).null_count().sum_horizontal().item():
            raise ValueError("returns has null values; align the tickers on common dates first")
        matrix = returns.select(pl.col(names).cast(pl.Float64)).to_numpy()
    elif isinstance(returns, np.ndarray):
        matrix = np.asarray(returns, dtype=np.float64)
    else:
        raise TypeError(f"returns must be a DataFrame or a 2-d array, got {type(returns).__name__}")
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError(f"returns must be 2-d with at least one asset, got shape {matrix.shape}")
    if matrix.shape[0] < 2:
        raise ValueError(f"need at least 2 dates of returns, got {matrix.shape[0]}")
    if not np.isfinite(matrix).all():
        raise ValueError("returns has NaN or infinite values; align on common dates first")
    w = _weights_for(names, matrix.shape[1], weights)
    if method == "historical":
        return historical_var_cvar(matrix @ w, level)
    mu = float(matrix.mean(axis=0) @ w)
    cov = np.atleast_2d(np.cov(matrix, rowvar=False, ddof=1))
    sigma = math.sqrt(max(float(w @ cov @ w), 0.0))
    return parametric_var_cvar(mu, sigma, level)
