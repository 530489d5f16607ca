"""The one information-coefficient (IC) implementation: per-date IC, its uncertainty, hit rate.

Training metrics (:func:`alphadag.models.metrics.ic_metrics`), prediction scores
(:func:`alphadag.models.scoring.score_predictions`) and the backtest's IC analysis
(:func:`alphadag.backtest.analysis.ic_analysis`) all score through this module, so a figure
called ``rank_ic_mean`` means the same everywhere. No dagster, no mlflow here.

Definitions
-----------
- **Per-date IC** (:func:`daily_ic`): on each date, the Pearson correlation between predicted and
  realised values *across tickers*; **rank IC** is the Spearman correlation (Pearson of average
  ranks, so ties share their mean rank). Only rows where both values are finite are used.
- **Minimum tickers**: a date's IC is defined only with at least :data:`MIN_TICKERS` usable rows
  and at least two distinct values on each side (a constant forecast has no IC). Other dates stay
  in the per-date frame with a NaN IC; summaries leave them out and count them (``n_excluded``).
- **ICIR** = ``mean / std`` of the per-date series (``std`` with ``ddof=1``): per date, **not**
  annualised.
- **HAC t-stat**: labels over ``h`` sessions overlap, so consecutive per-date ICs are correlated
  and the naive ``mean / std * sqrt(n)`` overstates the evidence (it is never reported). The
  t-stat of the mean is the Newey-West one: OLS of the series on a constant with
  ``cov_type="HAC"`` (Bartlett kernel, no small-sample correction), ``maxlags = max(horizon, 1)``
  (at most ``n - 1``); the p-value is two-sided from the normal distribution.
- **Bootstrap interval**: a 95% percentile interval of the mean from a circular block bootstrap
  (Politis-Romano) with block length ``max(horizon, ceil(b*))``, ``b*`` the Politis-White optimal
  circular block length (:func:`arch.bootstrap.optimal_block_length`, from 10 dates on), at most
  ``n``. :data:`DEFAULT_BOOTSTRAP_REPS` resamples, seeded with :data:`BOOTSTRAP_SEED`, so the
  same series always gives the same interval. Resample means come from prefix sums of the
  circularly extended series: a few thousand dates take milliseconds.
- **Hit rate** (:func:`hit_rate`): over the ``(ticker, date)`` rows given, the share of rows with a
  non-zero realised value whose predicted sign equals the realised sign; a prediction of exactly 0
  states no direction and counts as a miss. Rows with a realised value of 0 are left out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

__all__ = [
    "BOOTSTRAP_SEED",
    "CI_LEVEL",
    "DEFAULT_BOOTSTRAP_REPS",
    "IC_FIGURE_NAMES",
    "MIN_TICKERS",
    "ICDifference",
    "ICSummary",
    "daily_ic",
    "hac_maxlags",
    "hit_rate",
    "ic_difference",
    "ic_figures",
    "ic_summary",
]

MIN_TICKERS = 3
"""The fewest usable tickers a date needs for its IC and rank IC to be defined."""

DEFAULT_BOOTSTRAP_REPS = 1_000
"""Bootstrap resamples for the interval of a mean IC."""

BOOTSTRAP_SEED = 20_240_102
"""Seed of the block bootstrap: a series always gets the same interval."""

CI_LEVEL = 0.95
"""Coverage of the bootstrap interval."""

_MIN_DATES_FOR_OPTIMAL_BLOCK = 10
"""Below this many dates the Politis-White estimate is not attempted (block = horizon)."""

IC_FIGURE_NAMES: tuple[str, ...] = (
    *(
        f"{s}ir" if f == "ir" else f"{s}_{f}"
        for s in ("ic", "rank_ic")
        for f in ("mean", "std", "ir", "hac_t", "hac_se", "hac_p", "ci_lo", "ci_hi")
    ),
    "n_ic_dates",
)
"""The keys of :func:`ic_figures` (``icir`` and ``rank_icir`` keep their historical names)."""

Values = Sequence[float] | np.ndarray | pl.Series


def daily_ic(
    frame: pl.DataFrame,
    *,
    date: str = "date",
    y_true: str = "y_true",
    y_pred: str = "y_pred",
) -> pl.DataFrame:
    """Per-date cross-sectional IC (Pearson) and rank IC (Spearman) of ``y_pred`` vs ``y_true``.

    Returns one row per date of ``frame``, sorted: ``date`` (named as in ``frame``), ``n`` (rows
    with both values finite), ``ic`` and ``rank_ic`` (Float64; NaN where the date has fewer than
    :data:`MIN_TICKERS` usable rows or either side is constant).

    >>> import datetime as dt
    >>> d1, d2 = dt.date(2024, 1, 2), dt.date(2024, 1, 3)
    >>> f = pl.DataFrame({"date": [d1] * 4 + [d2] * 2, "y_true": [1.0, 2, 3, 4, 1, 2],
    ...                   "y_pred": [0.1, 0.2, 0.3, 0.9, 0.1, 0.2]})
    >>> daily_ic(f).select("n", pl.col("rank_ic").round(6)).rows()
    [(4, 1.0), (2, nan)]
    """
    for col in (date, y_true, y_pred):
        if col not in frame.columns:
            raise ValueError(f"frame lacks column {col!r}; got {frame.columns}")
    data = frame.select(
        pl.col(date),
        pl.col(y_true).cast(pl.Float64).alias("_t"),
        pl.col(y_pred).cast(pl.Float64).alias("_p"),
    )
    dates = data.select(pl.col(date).unique()).filter(pl.col(date).is_not_null())
    usable = data.filter(pl.col("_t").is_finite() & pl.col("_p").is_finite())
    per_date = (
        usable.with_columns(
            pl.col("_t").rank("average").over(date).alias("_rt"),
            pl.col("_p").rank("average").over(date).alias("_rp"),
        )
        .group_by(date)
        .agg(
            pl.len().cast(pl.Int64).alias("n"),
            # "constant" tested exactly: a float std of equal values can come out as 1e-19
            pl.col("_t").n_unique().alias("_ut"),
            pl.col("_p").n_unique().alias("_up"),
            pl.corr("_t", "_p").alias("ic"),
            pl.corr("_rt", "_rp").alias("rank_ic"),
        )
    )
    defined = (pl.col("n") >= MIN_TICKERS) & (pl.col("_ut") > 1) & (pl.col("_up") > 1)
    return (
        dates.join(per_date, on=date, how="left")
        .with_columns(pl.col("n").fill_null(0))
        .with_columns(
            [
                pl.when(defined.fill_null(False))
                .then(pl.col(c).cast(pl.Float64))
                .otherwise(math.nan)
                .alias(c)
                for c in ("ic", "rank_ic")
            ]
        )
        .select(date, "n", "ic", "rank_ic")
        .sort(date)
    )


def hit_rate(y_pred: Values, y_true: Values) -> float:
    """Share of rows with ``y_true != 0`` where ``sign(y_pred) == sign(y_true)`` (NaN if none).

    A prediction of exactly 0 states no direction and counts as a miss; rows where either value
    is not finite are left out.

    >>> hit_rate([0.1, -0.2, 0.0, 0.3], [0.5, 0.1, -0.1, 0.0])
    0.3333333333333333
    """
    p = np.asarray(y_pred, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"y_pred has shape {p.shape}, y_true {t.shape}")
    moving = np.isfinite(p) & np.isfinite(t) & (t != 0.0)
    if not moving.any():
        return math.nan
    return float(np.mean(np.sign(p[moving]) == np.sign(t[moving])))


def hac_maxlags(horizon: int, n: int) -> int:
    """The Newey-West lag for ``n`` dates of a horizon-``horizon`` series: ``max(horizon, 1)``,
    at most ``n - 1`` (and at least 0)."""
    return max(0, min(max(int(horizon), 1), n - 1))


@dataclass(frozen=True)
class ICSummary:
    """Mean of a per-date series with its dispersion and uncertainty (see the module docstring).

    ``n_dates`` values were used; ``n_excluded`` were NaN/None (undefined IC) and left out.
    """

    mean: float
    std: float
    ir: float
    n_dates: int
    n_excluded: int
    hac_t: float
    hac_se: float
    hac_p: float
    hac_maxlags: int
    ci_lo: float
    ci_hi: float
    ci_level: float
    block_length: int
    reps: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _finite(values: Values) -> tuple[np.ndarray, int]:
    if isinstance(values, pl.Series):
        values = values.cast(pl.Float64).fill_null(math.nan).to_numpy()
    x = np.asarray(
        [math.nan if v is None else v for v in values]
        if not isinstance(values, np.ndarray)
        else values,
        dtype=np.float64,
    ).ravel()
    ok = np.isfinite(x)
    return x[ok], int((~ok).sum())


def _hac(x: np.ndarray, maxlags: int) -> tuple[float, float, float]:
    """Newey-West standard error, t and p of the mean of ``x`` (statsmodels, OLS on a constant)."""
    from statsmodels.regression.linear_model import OLS  # heavy: imported when first needed

    fit = OLS(x, np.ones_like(x)).fit(cov_type="HAC", cov_kwds={"maxlags": maxlags})
    se = float(fit.bse[0])
    if not se > 0.0:
        return se, math.nan, math.nan
    return se, float(fit.tvalues[0]), float(fit.pvalues[0])


def _block_length(x: np.ndarray, horizon: int) -> int:
    n = x.size
    block = max(int(horizon), 1)
    if n >= _MIN_DATES_FOR_OPTIMAL_BLOCK:
        from arch.bootstrap import optimal_block_length  # heavy: imported when first needed

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            opt = float(optimal_block_length(x)["circular"].iloc[0])
        if math.isfinite(opt):
            block = max(block, math.ceil(opt))
    return max(1, min(block, n))


def _bootstrap_means(x: np.ndarray, block: int, reps: int, seed: int) -> np.ndarray:
    """Means of ``reps`` circular-block-bootstrap resamples of ``x`` (blocks of ``block``)."""
    n = x.size
    k = -(-n // block)  # blocks per resample; the last one is cut to make n values
    last = n - (k - 1) * block
    wrapped = np.concatenate((x, x[:block]))
    csum = np.concatenate(([0.0], np.cumsum(wrapped)))
    starts = np.random.default_rng(seed).integers(0, n, size=(reps, k))
    sums = csum[starts + block] - csum[starts]
    sums[:, -1] = csum[starts[:, -1] + last] - csum[starts[:, -1]]
    return sums.sum(axis=1) / n


def ic_summary(
    per_date_values: Values,
    horizon: int,
    *,
    reps: int = DEFAULT_BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> ICSummary:
    """Mean, std, ICIR, Newey-West t and a block-bootstrap interval of a per-date series.

    ``per_date_values`` must be in date order (the HAC and block bootstrap use the order);
    NaN/None values are dropped and counted in ``n_excluded``. ``std`` needs 2 values,
    the HAC figures and the interval too; a constant series has ``hac_t`` NaN and a zero-width
    interval.

    >>> s = ic_summary([0.02, 0.05, -0.01, 0.04, float("nan"), 0.03], horizon=1)
    >>> round(s.mean, 6), s.n_dates, s.n_excluded, s.hac_maxlags, s.ci_lo <= s.mean <= s.ci_hi
    (0.026, 5, 1, 1, True)
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 0:
        raise ValueError(f"horizon must be a non-negative integer, got {horizon!r}")
    if reps < 1:
        raise ValueError(f"reps must be positive, got {reps}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    x, n_excluded = _finite(per_date_values)
    n = x.size
    nan = math.nan
    if n == 0:
        return ICSummary(nan, nan, nan, 0, n_excluded, nan, nan, nan, 0, nan, nan, level, 0, 0)
    mean = float(x.mean())
    if n == 1:
        return ICSummary(mean, nan, nan, 1, n_excluded, nan, nan, nan, 0, nan, nan, level, 0, 0)
    lags = hac_maxlags(horizon, n)
    if np.ptp(x) == 0.0:  # constant (tested exactly: its float std can be 1e-17, not 0)
        return ICSummary(
            mean, 0.0, nan, n, n_excluded, nan, 0.0, nan, lags, mean, mean, level, 1, 0
        )
    std = float(x.std(ddof=1))
    se, t, p = _hac(x, lags)
    block = _block_length(x, horizon)
    means = _bootstrap_means(x, block, reps, seed)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return ICSummary(
        mean=mean,
        std=std,
        ir=mean / std if std > 0.0 else nan,  # a subnormal spread can round std to 0
        n_dates=n,
        n_excluded=n_excluded,
        hac_t=t,
        hac_se=se,
        hac_p=p,
        hac_maxlags=lags,
        ci_lo=float(lo),
        ci_hi=float(hi),
        ci_level=level,
        block_length=block,
        reps=reps,
    )


def ic_figures(
    daily: pl.DataFrame,
    horizon: int,
    *,
    reps: int = DEFAULT_BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, float]:
    """The flat figures of a :func:`daily_ic` frame (keys :data:`IC_FIGURE_NAMES`).

    ``{ic,rank_ic}_{mean,std,hac_t,hac_se,hac_p,ci_lo,ci_hi}``, ``icir``, ``rank_icir`` and
    ``n_ic_dates`` (dates with a defined IC). ``daily`` must be sorted by date.
    """
    out: dict[str, float] = {}
    n_ic_dates = 0
    for name in ("ic", "rank_ic"):
        s = ic_summary(daily.get_column(name), horizon, reps=reps, seed=seed)
        out |= {
            f"{name}_mean": s.mean,
            f"{name}_std": s.std,
            f"{name}ir": s.ir,
            f"{name}_hac_t": s.hac_t,
            f"{name}_hac_se": s.hac_se,
            f"{name}_hac_p": s.hac_p,
            f"{name}_ci_lo": s.ci_lo,
            f"{name}_ci_hi": s.ci_hi,
        }
        n_ic_dates = s.n_dates  # the same dates for both: a constant side undefines both
    out["n_ic_dates"] = float(n_ic_dates)
    return out


@dataclass(frozen=True)
class ICDifference:
    """Paired comparison of two per-date series on the dates both define: ``gain`` is
    ``mean(a - b)``, ``se``/``t``/``p`` its Newey-West figures, ``ci_lo``/``ci_hi`` its
    block-bootstrap interval, ``n`` the common dates, ``mean_a``/``mean_b`` the two means there."""

    gain: float
    se: float
    t: float
    p: float
    n: int
    ci_lo: float
    ci_hi: float
    mean_a: float
    mean_b: float
    hac_maxlags: int
    block_length: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def ic_difference(
    a_per_date: pl.DataFrame,
    b_per_date: pl.DataFrame,
    horizon: int,
    *,
    column: str = "rank_ic",
    date: str = "date",
    reps: int = DEFAULT_BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
) -> ICDifference:
    """Is ``a`` better than ``b``? The HAC t and bootstrap interval of ``mean(a - b)``.

    ``a_per_date`` and ``b_per_date`` are per-date frames (e.g. from :func:`daily_ic`) with
    ``date`` and ``column``; only the dates where both values are finite are compared, in date
    order. Duplicate dates are an error.

    >>> import datetime as dt
    >>> days = [dt.date(2024, 1, d) for d in range(1, 6)]
    >>> a = pl.DataFrame({"date": days, "rank_ic": [0.1, 0.2, 0.0, 0.1, 0.3]})
    >>> b = pl.DataFrame({"date": days[1:], "rank_ic": [0.1, 0.1, 0.1, 0.1]})
    >>> d = ic_difference(a, b, horizon=1)
    >>> d.n, round(d.gain, 6), round(d.mean_a, 6)
    (4, 0.05, 0.15)
    """
    for name, f in (("a_per_date", a_per_date), ("b_per_date", b_per_date)):
        missing = {date, column} - set(f.columns)
        if missing:
            raise ValueError(f"{name} lacks column(s) {sorted(missing)}")
        if f.get_column(date).is_duplicated().any():
            raise ValueError(f"{name} has duplicate dates")
    both = (
        a_per_date.select(date, pl.col(column).cast(pl.Float64).alias("_a"))
        .join(
            b_per_date.select(date, pl.col(column).cast(pl.Float64).alias("_b")),
            on=date,
            how="inner",
        )
        .filter(pl.col("_a").is_finite() & pl.col("_b").is_finite())
        .sort(date)
    )
    a = both.get_column("_a").to_numpy()
    b = both.get_column("_b").to_numpy()
    s = ic_summary(a - b, horizon, reps=reps, seed=seed)
    return ICDifference(
        gain=s.mean,
        se=s.hac_se,
        t=s.hac_t,
        p=s.hac_p,
        n=s.n_dates,
        ci_lo=s.ci_lo,
        ci_hi=s.ci_hi,
        mean_a=float(a.mean()) if a.size else math.nan,
        mean_b=float(b.mean()) if b.size else math.nan,
        hac_maxlags=s.hac_maxlags,
        block_length=s.block_length,
    )
