"""Information-coefficient analysis of model predictions against realised forward returns.

:func:`ic_analysis` lines up each prediction ``y_pred`` dated ``t`` with the realised log return
from ``t``'s close to the close ``horizon`` sessions later (of the same ticker, as the
``fwd_ret_{h}d`` labels are defined), and reports per date the cross-sectional Pearson IC and the
Spearman rank IC (average ranks for ties), then for each: mean, standard deviation, ICIR (per
date), the Newey-West t-stat, standard error and p-value of the mean (lag = ``horizon``: the
forward returns of consecutive dates overlap, so the naive ``mean / std * sqrt(n)`` is not
reported), the 95% block-bootstrap interval and the share of dates with a positive IC; and the
hit rate over all scored rows. All of it comes from :mod:`alphadag.models.ic`, the one IC
implementation that training metrics and ``prediction_scores`` use too. The forward return reads
the future on purpose: it is the outcome the prediction is scored on, never an input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import polars as pl

from alphadag.models.ic import MIN_TICKERS, daily_ic, hit_rate, ic_figures

__all__ = ["ICAnalysis", "ic_analysis"]


@dataclass(frozen=True)
class ICAnalysis:
    """``by_date`` (``date, n, ic, rank_ic``: one row per prediction date with at least
    :data:`~alphadag.models.ic.MIN_TICKERS` scored tickers; ``ic``/``rank_ic`` NaN where a side
    is constant) and the summary over the dates with a finite value.

    ``n_dates`` counts the rows of ``by_date``, ``n_ic_dates`` the dates with a defined IC (the
    summary's), ``n_excluded`` the scored dates without one (fewer than ``MIN_TICKERS`` tickers,
    or a constant side). ``*_hac_t``/``*_hac_se``/``*_hac_p``: Newey-West figures of the mean;
    ``*_ci_lo``/``*_ci_hi``: its 95% block-bootstrap interval; ``*_positive_share``: the share of
    dates with a positive IC (called ``*_hit_rate`` before, renamed: the hit rate is
    ``hit_rate``, the sign agreement over all scored ``(ticker, date)`` rows, as everywhere).
    """

    horizon: int
    by_date: pl.DataFrame
    n_dates: int
    n_ic_dates: int
    n_excluded: int
    ic_mean: float
    ic_std: float
    icir: float
    ic_hac_t: float
    ic_hac_se: float
    ic_hac_p: float
    ic_ci_lo: float
    ic_ci_hi: float
    ic_positive_share: float
    rank_ic_mean: float
    rank_ic_std: float
    rank_icir: float
    rank_ic_hac_t: float
    rank_ic_hac_se: float
    rank_ic_hac_p: float
    rank_ic_ci_lo: float
    rank_ic_ci_hi: float
    rank_ic_positive_share: float
    hit_rate: float

    def to_dict(self) -> dict[str, float]:
        """The summary fields (without ``by_date``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "by_date"}


def _positive_share(values: pl.Series) -> float:
    x = values.to_numpy()
    x = x[np.isfinite(x)]
    return float((x > 0).mean()) if x.size else math.nan


def ic_analysis(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    horizon: int,
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
        Sessions ahead (>= 1); also the Newey-West lag and the shortest bootstrap block.

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
    scored = preds.join(outcome, on=["date", "ticker"], how="inner").filter(
        pl.col("y_pred").is_finite() & pl.col("_fwd").is_finite()
    )
    daily = daily_ic(scored, date="date", y_true="_fwd", y_pred="y_pred")
    by_date = daily.filter(pl.col("n") >= MIN_TICKERS)
    figures = ic_figures(daily, horizon)
    return ICAnalysis(
        horizon=horizon,
        by_date=by_date,
        n_dates=by_date.height,
        n_ic_dates=int(figures.pop("n_ic_dates")),
        n_excluded=daily.height - int(daily["ic"].is_finite().sum()),
        **figures,
        ic_positive_share=_positive_share(by_date["ic"]),
        rank_ic_positive_share=_positive_share(by_date["rank_ic"]),
        hit_rate=hit_rate(scored["y_pred"], scored["_fwd"]),
    )
