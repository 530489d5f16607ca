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

import math
from collections.abc import Mapping

import numpy as np
import polars as pl

__all__ = [
    "BASELINES",
    "METRIC_NAMES",
    "MIN_TICKERS_PER_DATE",
    "evaluate_predictions",
    "flatten_metrics",
    "ic_metrics",
    "naive_baseline_predictions",
]

MIN_TICKERS_PER_DATE = 3
"""Dates with fewer tickers than this are left out of the IC statistics."""

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
)


def _summary(values: np.ndarray) -> tuple[float, float, float]:
    if values.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if values.size > 1 else math.nan
    ir = mean / std if std > 0.0 else math.nan
    return mean, std, ir


def ic_metrics(
    frame: pl.DataFrame,
    *,
    date: str = "date",
    y_true: str = "y_true",
    y_pred: str = "y_pred",
) -> dict[str, float]:
    """IC, rank IC, RMSE, MAE and directional accuracy of ``y_pred`` against ``y_true``.

    - ``ic_*``: daily cross-sectional Pearson correlation; ``rank_ic_*``: Spearman (average
      ranks for ties). A date enters only with at least :data:`MIN_TICKERS_PER_DATE` rows and
      at least two distinct values in both columns (so a constant forecast has NaN IC); ``n_ic_dates``
      counts the dates used. ``*_std`` uses ``ddof=1``; ``*ir = mean / std`` (NaN if undefined).
    - ``rmse``, ``mae``: pooled over all rows.
    - ``directional_accuracy``: share of rows with ``y_true != 0`` where the signs agree; a
      prediction of exactly 0 states no direction and counts as a miss.

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
    daily = (
        data.group_by("_d")
        .agg(
            pl.len().alias("n"),
            # "zero variance" tested exactly: a float std of equal values can come out as 1e-19
            pl.col("_t").n_unique().alias("ut"),
            pl.col("_p").n_unique().alias("up"),
            pl.corr("_t", "_p", method="pearson").alias("ic"),
            pl.corr("_t", "_p", method="spearman").alias("rank_ic"),
        )
        .sort("_d")
    )
    n_dates = daily.height
    usable = daily.filter(
        (pl.col("n") >= MIN_TICKERS_PER_DATE) & (pl.col("ut") > 1) & (pl.col("up") > 1)
    )
    ic = usable.get_column("ic").to_numpy()
    rank_ic = usable.get_column("rank_ic").to_numpy()
    # ranks tie only where values tie, so two distinct values also make Spearman defined
    t = data.get_column("_t").to_numpy()
    p = data.get_column("_p").to_numpy()
    err = p - t
    moving = t != 0.0
    hits = np.sign(p[moving]) == np.sign(t[moving])
    ic_mean, ic_std, icir = _summary(ic)
    r_mean, r_std, r_ir = _summary(rank_ic)
    return {
        "ic_mean": ic_mean,
        "ic_std": ic_std,
        "icir": icir,
        "rank_ic_mean": r_mean,
        "rank_ic_std": r_std,
        "rank_icir": r_ir,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "directional_accuracy": float(hits.mean()) if hits.size else math.nan,
        "n_dates": float(n_dates),
        "n_ic_dates": float(ic.size),
        "n_rows": float(n_rows),
    }


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
        out[name] = ic_metrics(scored, y_true=label, y_pred=col)
    return out


def flatten_metrics(
    metrics: Mapping[str, Mapping[str, float]], prefix: str = ""
) -> dict[str, float]:
    """``{"model": {"ic_mean": x}}`` -> ``{"<prefix>model_ic_mean": x}`` (for MLflow logging).

    >>> flatten_metrics({"model": {"rmse": 0.1}}, prefix="valid_")
    {'valid_model_rmse': 0.1}
    """
    return {f"{prefix}{who}_{k}": v for who, m in metrics.items() for k, v in m.items()}
