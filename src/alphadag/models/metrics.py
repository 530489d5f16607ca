"""Forecast metrics for cross-sectional return models, and the naive baselines they must beat.

:func:`ic_metrics` scores predictions the way a ranking signal is used: the information
coefficient (IC) is the Pearson correlation between predicted and realised returns *across
tickers on one date*; rank IC is the same with Spearman correlation. Their mean over dates, the
standard deviation (``ddof=1``) and the ratio ``mean / std`` (ICIR, per date, not annualised) are
reported, together with pooled RMSE, MAE and directional accuracy.

:func:`naive_baseline_predictions` gives two forecasts that use only information known at ``t``:
``baseline_zero`` (no change: always 0) and ``baseline_momentum`` (the trailing 20-session log
return scaled to the horizon, ``logret_20 * horizon / 20``). A trailing mean of past *labels*
would leak: the label of ``t - 1`` ends at ``t - 1 + h``, after ``t``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from alphadag.models.ic import MIN_TICKERS, daily_ic, hit_rate, ic_figures

__all__ = [
    "BASELINES",
    "METRIC_NAMES",
    "MIN_TICKERS_PER_DATE",
    "evaluate_predictions",
    "flatten_metrics",
    "ic_metrics",
    "naive_baseline_predictions",
]

MIN_TICKERS_PER_DATE = MIN_TICKERS
"""Dates with fewer tickers than this are left out of the IC statistics
(:data:`alphadag.models.ic.MIN_TICKERS`, the one rule)."""

BASELINES: tuple[str, ...] = ("baseline_zero", "baseline_momentum")
"""The naive forecasts computed by :func:`naive_baseline_predictions`."""

METRIC_NAMES: tuple[str, ...] = (
    "ic_mean",
    "ic_std",
    "icir",
    "rank_ic_mean",
    "rank_ic_std",
    "rank_icir",
    "rmse",
    "mae",
    "directional_accuracy",
    "n_dates",
    "n_ic_dates",
    "n_rows",
    *(
        f"{s}_{f}"
        for s in ("ic", "rank_ic")
        for f in ("hac_t", "hac_se", "hac_p", "ci_lo", "ci_hi")
    ),
)
"""The keys of :func:`ic_metrics`: the historical twelve, then the uncertainty of the mean IC and
rank IC (``{ic,rank_ic}_{hac_t,hac_se,hac_p,ci_lo,ci_hi}``, see :mod:`alphadag.models.ic`)."""


def ic_metrics(
    frame: pl.DataFrame,
    *,
    date: str = "date",
    y_true: str = "y_true",
    y_pred: str = "y_pred",
    horizon: int = 1,
) -> dict[str, float]:
    """IC, rank IC and their uncertainty, RMSE, MAE and directional accuracy (keys
    :data:`METRIC_NAMES`) of ``y_pred`` against ``y_true``.

    - ``ic_*``: daily cross-sectional Pearson correlation; ``rank_ic_*``: Spearman (average
      ranks for ties), by :func:`alphadag.models.ic.daily_ic`. A date enters only with at least
      :data:`MIN_TICKERS_PER_DATE` rows and at least two distinct values in both columns (so a
      constant forecast has NaN IC); ``n_ic_dates`` counts the dates used, ``n_dates`` all dates.
      ``*_std`` uses ``ddof=1``; ``*ir = mean / std`` per date (NaN if undefined).
    - ``*_hac_t``, ``*_hac_se``, ``*_hac_p``: Newey-West t-stat, standard error and p-value of
      the mean with ``maxlags = max(horizon, 1)``; pass the label ``horizon`` (sessions), since
      ``h``-session labels overlap. ``*_ci_lo``, ``*_ci_hi``: the 95% block-bootstrap interval
      of the mean (blocks >= horizon, seeded).
    - ``rmse``, ``mae``: pooled over all rows.
    - ``directional_accuracy``: :func:`alphadag.models.ic.hit_rate` pooled over all rows: the
      share of rows with ``y_true != 0`` where the signs agree; a prediction of exactly 0 states
      no direction and counts as a miss.

    Null or non-finite values are an error (drop such rows first).

    >>> import datetime as dt
    >>> d = dt.date(2024, 1, 2)
    >>> f = pl.DataFrame({"date": [d] * 4, "y_true": [0.01, -0.02, 0.03, 0.0],
    ...                   "y_pred": [0.02, -0.01, 0.01, -0.005]})
    >>> m = ic_metrics(f)
    >>> round(m["rank_ic_mean"], 6), m["n_ic_dates"], m["directional_accuracy"]
    (0.8, 1.0, 1.0)
    """
    for col in (date, y_true, y_pred):
        if col not in frame.columns:
            raise ValueError(f"frame lacks column {col!r}; got {frame.columns}")
    data = frame.select(
        pl.col(date).alias("_d"),
        pl.col(y_true).cast(pl.Float64).alias("_t"),
        pl.col(y_pred).cast(pl.Float64).alias("_p"),
    )
    for col, name in (("_t", y_true), ("_p", y_pred)):
        s = data.get_column(col)
        if s.null_count() or not s.is_finite().all():
            raise ValueError(f"column {name!r} has null or non-finite values")
    n_rows = data.height
    if n_rows == 0:
        raise ValueError("cannot score an empty frame")
    daily = daily_ic(data, date="_d", y_true="_t", y_pred="_p")
    t = data.get_column("_t").to_numpy()
    p = data.get_column("_p").to_numpy()
    err = p - t
    figures = ic_figures(daily, horizon)
    out = {
        **figures,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "directional_accuracy": hit_rate(p, t),
        "n_dates": float(daily.height),
        "n_rows": float(n_rows),
    }
    return {k: out[k] for k in METRIC_NAMES}


def naive_baseline_predictions(frame: pl.DataFrame, *, horizon: int) -> pl.DataFrame:
    """``frame`` with the naive forecasts ``baseline_zero`` and ``baseline_momentum`` added.

    ``baseline_zero`` is 0 (the random-walk forecast of a log return); ``baseline_momentum`` is
    ``logret_20 * horizon / 20``, the trailing 20-session log return (known at the close of
    ``t``) scaled to the horizon, and 0 where ``logret_20`` is null (warm-up).

    >>> f = pl.DataFrame({"logret_20": [0.04, None]})
    >>> naive_baseline_predictions(f, horizon=5).rows()
    [(0.04, 0.0, 0.01), (None, 0.0, 0.0)]
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    if "logret_20" not in frame.columns:
        raise ValueError("the momentum baseline needs the logret_20 feature column")
    return frame.with_columns(
        pl.lit(0.0, dtype=pl.Float64).alias("baseline_zero"),
        (pl.col("logret_20").cast(pl.Float64) * (horizon / 20.0))
        .fill_null(0.0)
        .fill_nan(0.0)
        .alias("baseline_momentum"),
    )


def evaluate_predictions(
    frame: pl.DataFrame, y_pred: np.ndarray | pl.Series, *, label: str, horizon: int
) -> dict[str, dict[str, float]]:
    """:func:`ic_metrics` for the model's ``y_pred`` and for each naive baseline.

    Returns ``{"model": {...}, "baseline_zero": {...}, "baseline_momentum": {...}}`` so the
    model's value over the naive forecasts is visible side by side.
    """
    pred = pl.Series("y_pred", np.asarray(y_pred, dtype=np.float64))
    if pred.len() != frame.height:
        raise ValueError(f"y_pred has {pred.len()} values for {frame.height} rows")
    scored = naive_baseline_predictions(frame, horizon=horizon).with_columns(pred)
    out: dict[str, dict[str, float]] = {}
    for name, col in (("model", "y_pred"), *((b, b) for b in BASELINES)):
        out[name] = ic_metrics(scored, y_true=label, y_pred=col, horizon=horizon)
    return out


def flatten_metrics(
    metrics: Mapping[str, Mapping[str, float]], prefix: str = ""
) -> dict[str, float]:
    """``{"model": {"ic_mean": x}}`` -> ``{"<prefix>model_ic_mean": x}`` (for MLflow logging).

    >>> flatten_metrics({"model": {"rmse": 0.1}}, prefix="valid_")
    {'valid_model_rmse': 0.1}
    """
    return {f"{prefix}{who}_{k}": v for who, m in metrics.items() for k, v in m.items()}
