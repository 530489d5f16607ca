"""Information-coefficient analysis of model predictions against realised forward returns.

:func:`ic_analysis` lines up each prediction ``y_pred`` dated ``t`` with the realised log return
from ``t``'s close to the close ``horizon`` sessions later (of the same ticker, as the
``fwd_ret_{h}d`` labels are defined), and reports per date the cross-sectional Pearson IC and the
Spearman rank IC (average ranks for ties), then their mean, standard deviation, t-statistic
(``mean / std * sqrt(n_dates)``) and hit rate (the share of dates with a positive IC). The forward
return reads the future on purpose: it is the outcome the prediction is scored on, never an input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = ["ICAnalysis", "ic_analysis"]


@dataclass(frozen=True)
class ICAnalysis:
    """``by_date`` (``date, n, ic, rank_ic``: one row per prediction date with at least
    ``min_names`` scored tickers; ``ic``/``rank_ic`` NaN where a side is constant) and the
    summary over the dates with a finite value."""

    horizon: int
    by_date: pl.DataFrame
    n_dates: int
    ic_mean: float
    ic_std: float
    ic_t_stat: float
    ic_hit_rate: float
    rank_ic_mean: float
    rank_ic_std: float
    rank_ic_t_stat: float
    rank_ic_hit_rate: float

    def to_dict(self) -> dict[str, float]:
        """The summary fields (without ``by_date``)."""
        return {k: v for k, v in self.__dict__.items() if k != "by_date"}


def _summary(values: np.ndarray) -> tuple[float, float, float, float]:
    x = values[np.isfinite(values)]
    if x.size == 0:
        return (math.nan,) * 4
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else math.nan
    t = mean / std * math.sqrt(x.size) if std and not math.isnan(std) else math.nan
    return mean, std, t, float((x > 0).mean())


def ic_analysis(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    horizon: int,
    min_names: int = 3,
) -> ICAnalysis:
    """Per-date IC and rank IC of ``predictions.y_pred`` against the realised forward log return.

    Parameters
    ----------
    predictions:
        ``date, ticker, y_pred`` (the predictions contract); with a ``horizon`` column only the
        rows of ``horizon`` are scored. Duplicate ``(date, ticker)`` rows are an error.
    bars:
        ``ticker, date, close``: the forward return of ``(t, ticker)`` is
        ``log(close[t + horizon] / close[t])`` over that ticker's own sessions (null within
        ``horizon`` sessions of its last bar: those predictions are not scored yet).
    horizon:
        Sessions ahead (>= 1).
    min_names:
        The fewest scored tickers a date needs to count (>= 2).

    >>> import datetime as dt
    >>> import polars as pl
    >>> days = [dt.date(2024, 1, d) for d in (2, 3, 4)]
    >>> bars = pl.DataFrame({"ticker": ["A"] * 3 + ["B"] * 3 + ["C"] * 3, "date": days * 3,
    ...                      "close": [1.0, 1.1, 1.2, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8]})
    >>> preds = pl.DataFrame({"date": [days[0]] * 3, "ticker": ["A", "B", "C"],
    ...                       "y_pred": [0.03, 0.0, -0.01]})
    >>> r = ic_analysis(preds, bars, horizon=1)
    >>> r.by_date["n"].to_list(), round(r.rank_ic_mean, 6)
    ([3], 1.0)
    """
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    if min_names < 2:
        raise ValueError(f"min_names must be >= 2, got {min_names}")
    for name, frame, cols in (
        ("predictions", predictions, {"date", "ticker", "y_pred"}),
        ("bars", bars, {"ticker", "date", "close"}),
    ):
        if not isinstance(frame, pl.DataFrame):
            raise TypeError(f"{name} must be a polars DataFrame, got {type(frame).__name__}")
        missing = cols - set(frame.columns)
        if missing:
            raise ValueError(f"{name} lack column(s) {sorted(missing)}")
    preds = predictions
    if "horizon" in preds.columns:
        preds = preds.filter(pl.col("horizon") == horizon)
    preds = preds.select("date", "ticker", pl.col("y_pred").cast(pl.Float64))
    if preds.select(pl.struct("date", "ticker").is_duplicated().any()).item():
        raise ValueError("predictions has duplicate (date, ticker) rows for this horizon")
    # the outcome being scored: the close `horizon` sessions *later* (deliberately the future)
    outcome = bars.select(
        "ticker",
        "date",
        (pl.col("close").shift(-horizon) / pl.col("close"))
        .log()
        .over("ticker", order_by="date")
        .alias("_fwd"),
    )
    scored = (
        preds.join(outcome, on=["date", "ticker"], how="inner")
        .filter(pl.col("y_pred").is_not_null() & pl.col("_fwd").is_not_null())
        .filter(pl.col("y_pred").is_finite() & pl.col("_fwd").is_finite())
        .with_columns(
            pl.col("y_pred").rank("average").over("date").alias("_rp"),
            pl.col("_fwd").rank("average").over("date").alias("_rf"),
        )
    )
    by_date = (
        scored.group_by("date")
        .agg(
            pl.len().cast(pl.Int64).alias("n"),
            pl.corr("y_pred", "_fwd").alias("ic"),
            pl.corr("_rp", "_rf").alias("rank_ic"),
        )
        .filter(pl.col("n") >= min_names)
        .sort("date")
        .with_columns(pl.col("ic", "rank_ic").fill_null(math.nan))
    )
    ic = _summary(by_date["ic"].to_numpy())
    rank_ic = _summary(by_date["rank_ic"].to_numpy())
    return ICAnalysis(
        horizon=horizon,
        by_date=by_date,
        n_dates=by_date.height,
        ic_mean=ic[0],
        ic_std=ic[1],
        ic_t_stat=ic[2],
        ic_hit_rate=ic[3],
        rank_ic_mean=rank_ic[0],
        rank_ic_std=rank_ic[1],
        rank_ic_t_stat=rank_ic[2],
        rank_ic_hit_rate=rank_ic[3],
    )
