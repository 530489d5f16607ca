"""Analysis of backtests: the figures table of runs and the IC analysis of model predictions.

:func:`analysis_table` gives one row per run (and the benchmark's, when given) with the figures a
quant reads first, in the order of :data:`ANALYSIS_COLUMNS` (name, label, unit): return, risk,
excess return and information ratio with and without costs, drawdown and trade durations,
average win/loss, Omega, turnover. The numbers are :class:`~alphadag.backtest.Stats` fields,
exact; every one is defined once in :mod:`alphadag.backtest.stats`. :func:`format_analysis`
rounds them for display (the CLI, the HTML report). The benchmark-relative columns are ``nan``
unless the runs got ``run_backtest(..., benchmark=)``.

:func:`ic_analysis` scores model predictions against realised forward returns: it lines up each
prediction ``y_pred`` dated ``t`` with the realised log return from ``t``'s close to the close
``horizon`` sessions later (of the same ticker, as the ``fwd_ret_{h}d`` labels are defined), and
reports per date the cross-sectional Pearson IC and the Spearman rank IC (average ranks for ties),
then for each: mean, standard deviation, ICIR (per date), the Newey-West t-stat, standard error and
p-value of the mean (lag = ``horizon``: the forward returns of consecutive dates overlap, so the
naive ``mean / std * sqrt(n)`` is not reported), the 95% block-bootstrap interval and the share of
dates with a positive IC; and the hit rate over all scored rows. All of it comes from
:mod:`alphadag.models.ic`, the one IC implementation that training metrics and
``prediction_scores`` use too. The forward return reads the future on purpose: it is the outcome
the prediction is scored on, never an input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from alphadag.backtest.stats import Stats
from alphadag.features.labels import label_column, labels_plan
from alphadag.models.ic import MIN_TICKERS, daily_ic, hit_rate, ic_figures

__all__ = [
    "ANALYSIS_COLUMNS",
    "AnalysisColumn",
    "ICAnalysis",
    "analysis_table",
    "format_analysis",
    "ic_analysis",
]


class AnalysisColumn(NamedTuple):
    """A column of :func:`analysis_table`: the :class:`Stats` field, its label and unit."""

    name: str
    label: str
    unit: str


ANALYSIS_COLUMNS: tuple[AnalysisColumn, ...] = tuple(
    AnalysisColumn(*c)
    for c in (
        ("total_return_pct", "Total return", "%"),
        ("total_return_gross_pct", "Total return before costs", "%"),
        ("benchmark_return_pct", "Benchmark return", "%"),
        ("return_ann_pct", "Annualised return", "% a year"),
        ("volatility_ann_pct", "Annualised volatility", "% a year"),
        ("sharpe", "Sharpe", "ratio"),
        ("sortino", "Sortino", "ratio"),
        ("calmar", "Calmar", "ratio"),
        ("omega", "Omega (threshold 0)", "ratio"),
        ("max_drawdown_pct", "Max drawdown", "%"),
        ("max_drawdown_duration_sessions", "Max drawdown duration", "sessions"),
        ("avg_drawdown_duration_sessions", "Avg drawdown duration", "sessions"),
        ("excess_return_ann_pct", "Excess return (ann.), with costs", "% a year"),
        ("information_ratio", "Information ratio, with costs", "ratio"),
        ("excess_max_drawdown_pct", "Excess max drawdown, with costs", "% points"),
        ("excess_return_ann_gross_pct", "Excess return (ann.), without costs", "% a year"),
        ("information_ratio_gross", "Information ratio, without costs", "ratio"),
        ("excess_max_drawdown_gross_pct", "Excess max drawdown, without costs", "% points"),
        ("benchmark_alpha_ann_pct", "Alpha vs benchmark (ann.)", "% a year"),
        ("benchmark_beta", "Beta vs benchmark", "ratio"),
        ("n_trades", "Trades", "trades"),
        ("win_rate_pct", "Win rate", "%"),
        ("avg_win_pct", "Avg win", "%"),
        ("avg_loss_pct", "Avg loss", "%"),
        ("avg_trade_duration_sessions", "Avg trade duration", "sessions"),
        ("median_trade_duration_sessions", "Median trade duration", "sessions"),
        ("profit_factor", "Profit factor", "ratio"),
        ("exposure_pct", "Exposure", "%"),
        ("turnover", "Turnover", "x equity a year"),
        ("commissions", "Commissions", "currency"),
        ("sharpe_bt", "Sharpe (backtesting.py, geometric)", "ratio"),
    )
)
"""The columns of :func:`analysis_table` after ``run, role``, in order (all :class:`Stats`
fields, defined in :mod:`alphadag.backtest.stats`)."""

_DECIMALS = {"%": 2, "% a year": 2, "% points": 2, "ratio": 3, "sessions": 1, "currency": 2}
_DECIMALS.update({"x equity a year": 2, "trades": 0})


def _stats_of(run: Any) -> Stats:
    stats = getattr(run, "stats", run)
    if not isinstance(stats, Stats):
        raise TypeError(f"expected a BacktestResult or Stats, got {type(run).__name__}")
    return stats


def analysis_table(
    results: Mapping[str, Any],
    benchmark: Any | None = None,
    *,
    benchmark_name: str = "benchmark",
) -> pl.DataFrame:
    """The analysis table: one row per run of ``results`` (``{name: BacktestResult or Stats}``),
    then ``benchmark``'s (a result or stats, e.g. buy-and-hold of the index) when given.

    Columns: ``run``, ``role`` (``strategy`` | ``benchmark``), then :data:`ANALYSIS_COLUMNS`'
    names, exact (Float64; ``n_trades`` Int64). Round with :func:`format_analysis` to show it.

    >>> import datetime as dt
    >>> from alphadag.backtest import run_backtest, strategies
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, d) for d in (2, 3, 4, 5)],
    ...                      "close": [10.0, 11.0, 12.0, 11.0]})
    >>> r = run_backtest(bars, strategies.BuyAndHold(), cash=100.0, commission=0.0)
    >>> t = analysis_table({"hold": r})
    >>> t.select("run", "role", "total_return_pct", "n_trades").rows()
    [('hold', 'strategy', 0.0, 1)]
    """
    if not results:
        raise ValueError("results is empty: pass at least one {name: BacktestResult}")
    entries = [(name, "strategy", _stats_of(run)) for name, run in results.items()]
    if benchmark is not None:
        entries.append((benchmark_name, "benchmark", _stats_of(benchmark)))
    rows = [
        {"run": name, "role": role, **{c.name: getattr(s, c.name) for c in ANALYSIS_COLUMNS}}
        for name, role, s in entries
    ]
    schema = {"run": pl.String, "role": pl.String}
    schema.update({c.name: pl.Float64 for c in ANALYSIS_COLUMNS})
    schema["n_trades"] = pl.Int64
    return pl.DataFrame(rows, schema=schema)


def _show(value: Any, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:,.{_DECIMALS[unit]}f}"


def format_analysis(table: pl.DataFrame, *, labels: bool = True) -> pl.DataFrame:
    """``table`` (from :func:`analysis_table`) as strings rounded for display: percentages and
    currency to 2 decimals, ratios to 3, durations to 1; ``-`` where undefined. With ``labels``
    the columns are named ``label [unit]``.

    >>> t = pl.DataFrame({"run": ["a"], "sharpe": [1.23456], "omega": [float("nan")]})
    >>> format_analysis(t).row(0)
    ('a', '1.235', '-')
    >>> format_analysis(t).columns
    ['run', 'Sharpe [ratio]', 'Omega (threshold 0) [ratio]']
    """
    units = {c.name: c for c in ANALYSIS_COLUMNS}
    out = []
    for name in table.columns:
        col = units.get(name)
        if col is None:
            out.append(table[name].cast(pl.String))
            continue
        shown = [_show(v, col.unit) for v in table[name].to_list()]
        out.append(pl.Series(f"{col.label} [{col.unit}]" if labels else name, shown, pl.String))
    return pl.DataFrame(out)


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
    # (the fwd_ret_{horizon}d label of alphadag.features.labels, the one forward-return definition)
    outcome = labels_plan(bars.select("ticker", "date", "close"), (horizon,)).select(
        pl.col("ticker").cast(preds.schema["ticker"]),
        "date",
        pl.col(label_column(horizon)).alias("_fwd"),
    )
    scored = preds.join(outcome.collect(), on=["date", "ticker"], how="inner").filter(
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
