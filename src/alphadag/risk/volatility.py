"""One-step-ahead daily volatility forecasts: RiskMetrics EWMA and GARCH(1,1) through ``arch``.

A forecast at row ``t`` is the standard deviation of the *next* day's simple return, known at
the close of ``t`` and computed from returns up to and including ``t`` only. Returns are daily
simple returns ``close_t / close_{t-1} - 1`` over consecutive rows of a ticker (a missing session
makes the return span the gap), built by :func:`simple_returns`.

EWMA (RiskMetrics, zero mean) follows ``s2_t = lam * s2_{t-1} + (1 - lam) * r_t^2`` and is
**seeded with the first squared return**, ``s2_0 = r_0^2`` (exactly pandas'
``ewm(alpha=1 - lam, adjust=False)`` of ``r^2``). The seed's weight in ``s2_t`` is ``lam^t``:
0.94^60 = 2.4%, 0.94^250 = 2e-7, which is why :func:`alphadag.risk.risk_table` reports nothing
before a minimum history. GARCH(1,1) is fitted by maximum likelihood with a normal
likelihood on returns scaled by 100 (arch's optimiser is tuned to percentage returns); the
forecast is ``arch``'s own one-step analytic variance, scaled back. When the history is shorter
than ``min_obs``, the optimiser reports no convergence, or the forecast is not finite and positive,
:func:`garch_volatility` falls back to EWMA and says why in :attr:`VolForecast.fallback_reason`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np
import polars as pl

from alphadag.risk._checks import ArrayLike, as_float_array, check_lambda, check_positive_int

__all__ = [
    "DEFAULT_LAMBDA",
    "GARCH_MIN_OBS",
    "GARCH_SCALE",
    "VOL_METHODS",
    "VolForecast",
    "VolMethod",
    "ewma_sigma",
    "ewma_volatility",
    "garch_volatility",
    "simple_returns",
]

F = TypeVar("F", pl.DataFrame, pl.LazyFrame)

VolMethod = Literal["ewma", "garch"]
VOL_METHODS: tuple[VolMethod, ...] = ("ewma", "garch")

DEFAULT_LAMBDA = 0.94
"""RiskMetrics' daily decay factor."""

GARCH_MIN_OBS = 250
"""Fewer returns than this and :func:`garch_volatility` uses EWMA instead (about a year)."""

GARCH_SCALE = 100.0
"""Returns are multiplied by this before the GARCH fit (percent), the forecast divided back."""


def simple_returns(
    frame: F,
    *,
    price: str = "close",
    ticker: str = "ticker",
    date: str = "date",
    out: str = "ret",
) -> F:
    """``frame`` with the daily simple return ``price_t / price_{t-1} - 1`` per ticker added.

    The first row of each ticker has a null return. Rows keep their order.

    >>> import datetime as dt
    >>> f = pl.DataFrame({"ticker": ["A", "A", "A"],
    ...                   "date": [dt.date(2024, 1, d) for d in (2, 3, 4)],
    ...                   "close": [100.0, 110.0, 99.0]})
    >>> [None if r is None else round(r, 6) for r in simple_returns(f)["ret"]]
    [None, 0.1, -0.1]
    """
    if not isinstance(frame, pl.DataFrame | pl.LazyFrame):
        raise TypeError(
            f"frame must be a polars DataFrame or LazyFrame, got {type(frame).__name__}"
        )
    p = pl.col(price).cast(pl.Float64)
    # shift(1) looks one row back in date order: the return at t uses closes t-1 and t only
    return frame.with_columns((p / p.shift(1) - 1.0).over(ticker, order_by=date).alias(out))


def ewma_sigma(returns: ArrayLike, *, lam: float = DEFAULT_LAMBDA) -> np.ndarray:
    """EWMA one-step-ahead sigma for one series: element ``t`` forecasts the return at ``t + 1``.

    Parameters
    ----------
    returns
        Daily simple returns, oldest first, finite.
    lam
        Decay factor in (0, 1); RiskMetrics' daily value 0.94 by default.

    Returns
    -------
    numpy.ndarray
        ``sqrt(s2_t)`` with ``s2_0 = r_0^2`` and ``s2_t = lam * s2_{t-1} + (1 - lam) * r_t^2``.

    >>> s = ewma_sigma([0.01, -0.02, 0.0], lam=0.9)
    >>> [round(float(v), 6) for v in s]   # sqrt(1e-4), sqrt(0.9e-4 + 0.1 * 4e-4), sqrt(0.9 * 1.3e-4)
    [0.01, 0.011402, 0.010817]
    """
    lam = check_lambda(lam)
    r = as_float_array(returns, "returns")
    s2 = pl.Series(r * r).ewm_mean(alpha=1.0 - lam, adjust=False).to_numpy()
    return np.sqrt(s2)


def ewma_volatility(
    frame: F,
    *,
    lam: float = DEFAULT_LAMBDA,
    returns: str = "ret",
    ticker: str = "ticker",
    date: str = "date",
    out: str = "vol_ewma",
) -> F:
    """``frame`` with the per-ticker EWMA one-step-ahead sigma of column ``returns`` added.

    Vectorised over all tickers at once (one polars window expression). The recursion runs over
    each ticker's non-null returns in date order (a null return, such as a ticker's first row,
    gets a null forecast and is skipped); otherwise identical to :func:`ewma_sigma`.

    >>> import datetime as dt
    >>> f = pl.DataFrame({"ticker": ["A", "B", "A", "B"],
    ...                   "date": [dt.date(2024, 1, 2)] * 2 + [dt.date(2024, 1, 3)] * 2,
    ...                   "close": [10.0, 20.0, 11.0, 19.0]})
    >>> v = ewma_volatility(simple_returns(f))
    >>> v.select("ticker", pl.col("vol_ewma").round(4)).rows()
    [('A', None), ('B', None), ('A', 0.1), ('B', 0.05)]
    """
    lam = check_lambda(lam)
    if not isinstance(frame, pl.DataFrame | pl.LazyFrame):
        raise TypeError(
            f"frame must be a polars DataFrame or LazyFrame, got {type(frame).__name__}"
        )
    r = pl.col(returns).cast(pl.Float64)
    s2 = (r * r).ewm_mean(alpha=1.0 - lam, adjust=False, ignore_nulls=True)
    # ewm_mean is causal: the value at t only uses rows <= t in date order
    return frame.with_columns(s2.sqrt().over(ticker, order_by=date).alias(out))


@dataclass(frozen=True, slots=True)
class VolForecast:
    """A one-step-ahead daily volatility forecast and how it was obtained.

    ``method`` is the method actually used; ``fallback_reason`` is ``None`` unless a GARCH fit
    was asked for and EWMA was used instead; ``params`` holds the fitted GARCH parameters in
    arch's names and units (percent returns), or ``{"lam": ...}`` for EWMA.
    """

    sigma: float
    method: VolMethod
    n_obs: int
    fallback_reason: str | None = None
    params: dict[str, float] = field(default_factory=dict)


def garch_volatility(
    returns: ArrayLike,
    *,
    min_obs: int = GARCH_MIN_OBS,
    mean: Literal["Zero", "Constant"] = "Zero",
    lam: float = DEFAULT_LAMBDA,
) -> VolForecast:
    """GARCH(1,1) forecast of the next day's sigma from ``returns`` (oldest first), EWMA fallback.

    Parameters
    ----------
    returns
        Daily simple returns in time order, finite; the last one is the return of day ``t``.
    min_obs
        Minimum number of returns for a GARCH fit; fewer falls back to EWMA.
    mean
        arch's mean model: ``"Zero"`` (as RiskMetrics) or ``"Constant"``.
    lam
        EWMA decay factor used by the fallback.

    Returns
    -------
    VolForecast
        ``sigma = sqrt(h_{t+1}) / 100`` where ``h_{t+1}`` is ``res.forecast(horizon=1)`` of the
        model fitted to ``100 * returns``, or the EWMA sigma with a ``fallback_reason``.

    >>> rng = np.random.default_rng(7)
    >>> f = garch_volatility(rng.normal(0.0, 0.01, 600))
    >>> f.method, f.fallback_reason is None, 0.007 < f.sigma < 0.013
    ('garch', True, True)
    >>> short = garch_volatility(rng.normal(0.0, 0.01, 30))
    >>> short.method, short.fallback_reason
    ('ewma', 'history of 30 returns is shorter than min_obs=250')
    """
    from arch import arch_model  # imported here: arch is heavy and only GARCH needs it

    min_obs = check_positive_int(min_obs, "min_obs", minimum=10)
    lam = check_lambda(lam)
    if mean not in ("Zero", "Constant"):
        raise ValueError(f"mean must be 'Zero' or 'Constant', got {mean!r}")
    r = as_float_array(returns, "returns")
    n = int(r.size)

    def fallback(reason: str) -> VolForecast:
        sigma = float(ewma_sigma(r, lam=lam)[-1])
        return VolForecast(sigma, "ewma", n, fallback_reason=reason, params={"lam": lam})

    if n < min_obs:
        return fallback(f"history of {n} returns is shorter than min_obs={min_obs}")
    if not np.any(r != r[0]):
        return fallback("returns are constant; GARCH is not identified")
    model = arch_model(
        r * GARCH_SCALE, mean=mean, vol="GARCH", p=1, q=1, dist="normal", rescale=False
    )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            res = model.fit(disp="off", show_warning=False)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            return fallback(f"GARCH fit failed: {type(exc).__name__}: {exc}")
    if res.convergence_flag != 0:
        return fallback(f"GARCH optimiser did not converge (flag {res.convergence_flag})")
    h = float(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0])
    if not math.isfinite(h) or h <= 0.0:
        return fallback(f"GARCH forecast variance is not finite and positive ({h!r})")
    params = {str(k): float(v) for k, v in res.params.items()}
    return VolForecast(math.sqrt(h) / GARCH_SCALE, "garch", n, params=params)
