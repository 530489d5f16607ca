"""Prediction scores: realised vs predicted, once a prediction's horizon has passed.

A prediction dated ``d`` with horizon ``h`` matures on the ``h``-th session after ``d`` (sessions
as the bars give them); its realised value is the ticker's ``fwd_ret_{h}d`` label, ``ln(close(d +
h) / close(d))`` over the ticker's own bars, computed by
:func:`alphadag.features.labels.labels_plan` (the one forward-return implementation).
:func:`score_predictions` scores, for a scoring session ``as_of``, every prediction date that
matures on ``as_of``: IC (Pearson) and rank IC (Spearman) across tickers, hit rate, interval
coverage (share of realised values inside ``[y_lo, y_hi]``), RMSE, and the rolling means over the
last 20 and 60 matured prediction dates up to ``as_of``. Over the same windows, the uncertainty of
the mean IC and rank IC: ICIR, Newey-West t-stat (lag >= horizon: consecutive prediction dates'
returns overlap) and the 95% block-bootstrap interval. IC, rank IC, the minimum-ticker rule, hit
rate and the uncertainty all come from :mod:`alphadag.models.ic`, the one implementation. Only
closes up to ``as_of`` are read, so a score never uses a price it could not have known. No dagster
here.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl

from alphadag.features.labels import label_column, labels_plan
from alphadag.models.ic import daily_ic, hit_rate, ic_summary

__all__ = [
    "ROLLING_UNCERTAINTY",
    "ROLLING_WINDOWS",
    "SCORES_SCHEMA",
    "realised_returns",
    "score_predictions",
]

ROLLING_WINDOWS: tuple[int, ...] = (20, 60)

_FIGURES = ("ic", "rank_ic", "hit_rate", "coverage")

ROLLING_UNCERTAINTY: tuple[str, ...] = (
    "icir",
    "ic_hac_t",
    "ic_ci_lo",
    "ic_ci_hi",
    "rank_icir",
    "rank_ic_hac_t",
    "rank_ic_ci_lo",
    "rank_ic_ci_hi",
    "n_ic_dates",
)
"""Per window ``w``, the columns ``{figure}_{w}``: the uncertainty of the rolling mean IC and rank
IC over the window's dates with a defined IC (``n_ic_dates_{w}``), by
:func:`alphadag.models.ic.ic_summary` with the row's horizon."""

SCORES_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "date": pl.Date,
    "prediction_date": pl.Date,
    "horizon": pl.Int64,
    "n": pl.Int64,
    "ic": pl.Float64,
    "rank_ic": pl.Float64,
    "hit_rate": pl.Float64,
    "coverage": pl.Float64,
    "nominal_coverage": pl.Float64,
    "rmse": pl.Float64,
    "model_source": pl.String,
    "model_version": pl.String,
    **{f"{f}_{w}": pl.Float64 for w in ROLLING_WINDOWS for f in _FIGURES},
    **{
        f"{f}_{w}": pl.Int64 if f == "n_ic_dates" else pl.Float64
        for w in ROLLING_WINDOWS
        for f in ROLLING_UNCERTAINTY
    },
}
"""One row per matured prediction date; ``date`` is the scoring (maturity) session.

``ic``/``rank_ic`` are null on a date with fewer than :data:`alphadag.models.ic.MIN_TICKERS`
scored tickers or a constant side; ``hit_rate`` is :func:`alphadag.models.ic.hit_rate` over the
date's tickers (a prediction of exactly 0 is a miss, a realised 0 is left out)."""


def realised_returns(predictions: pl.DataFrame, bars: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """``predictions`` with ``matured_on`` and ``realised`` (null until matured by ``as_of``).

    ``matured_on`` is the ``horizon``-th session after the prediction date (sessions as the bars
    up to ``as_of`` give them). ``realised`` is the ticker's ``fwd_ret_{h}d`` label computed by
    :func:`alphadag.features.labels.labels_plan` from the closes up to ``as_of`` (the one
    forward-return definition): null while the ticker's ``h``-th next bar is not known yet.

    >>> d = [dt.date(2024, 1, i) for i in (2, 3, 4)]
    >>> bars = pl.DataFrame({"ticker": "A", "date": d, "close": [100.0, 110.0, 121.0]})
    >>> p = pl.DataFrame({"date": d[:1], "ticker": "A", "horizon": 2, "y_pred": 0.1})
    >>> r = realised_returns(p, bars, d[2])
    >>> r["matured_on"].to_list(), round(r["realised"][0], 6) == round(math.log(1.21), 6)
    ([datetime.date(2024, 1, 4)], True)
    """
    known = bars.filter(pl.col("date") <= as_of).select("ticker", "date", "close")
    sessions = known.select("date").unique().sort("date").with_row_index("_i")
    idx = dict(zip(sessions["date"].to_list(), sessions["_i"].to_list(), strict=True))
    dates = sessions["date"].to_list()

    def matured(d: dt.date, h: int) -> dt.date | None:
        i = idx.get(d)
        return dates[i + h] if i is not None and i + h < len(dates) else None

    keys = predictions.select("date", "horizon").unique()
    mapping = pl.DataFrame(
        {
            "date": keys["date"],
            "horizon": keys["horizon"],
            "matured_on": [matured(d, h) for d, h in keys.iter_rows()],
        },
        schema={"date": pl.Date, "horizon": pl.Int64, "matured_on": pl.Date},
    )
    horizons = sorted(h for h in keys["horizon"].unique().to_list() if h is not None)
    out = predictions.join(mapping, on=["date", "horizon"], how="left")
    if not horizons:
        return out.with_columns(pl.lit(None, pl.Float64).alias("realised"))
    names = {label_column(h): h for h in horizons}
    # the label reads the close h sessions later: the outcome being scored, known by as_of
    realised = (
        labels_plan(known, horizons)
        .unpivot(
            list(names), index=["ticker", "date"], variable_name="_label", value_name="realised"
        )
        .select(
            "ticker",
            "date",
            pl.col("_label").replace_strict(names, return_dtype=pl.Int64).alias("horizon"),
            "realised",
        )
        .collect()
    )
    return out.join(
        realised.with_columns(pl.col("ticker").cast(out.schema["ticker"])),
        on=["ticker", "date", "horizon"],
        how="left",
    )


def _date_scores(group: pl.DataFrame) -> dict[str, float | int]:
    """The figures of one prediction date other than its IC (that comes from ``daily_ic``)."""
    y = group["y_pred"].to_numpy()
    r = group["realised"].to_numpy()
    lo, hi = group["y_lo"].to_numpy(), group["y_hi"].to_numpy()
    has_iv = np.isfinite(lo) & np.isfinite(hi)
    inside = (r >= lo) & (r <= hi)
    return {
        "n": int(group.height),
        "hit_rate": hit_rate(y, r),
        "coverage": float(np.mean(inside[has_iv])) if has_iv.any() else math.nan,
        "rmse": float(np.sqrt(np.mean((y - r) ** 2))),
    }


def score_predictions(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    as_of: dt.date,
) -> pl.DataFrame:
    """Scores of the prediction dates maturing on ``as_of`` (empty if none), with rolling means.

    ``predictions`` follow the predictions contract (``date, ticker, horizon, y_pred, y_lo,
    y_hi, coverage, model_source, model_version``) over as many past sessions as the rolling
    windows need; ``bars`` give ``ticker, date, close`` (rows after ``as_of`` are ignored).
    """
    empty = pl.DataFrame(schema=SCORES_SCHEMA)
    if predictions.height == 0:
        return empty
    scored = realised_returns(predictions, bars, as_of).filter(
        pl.col("matured_on").is_not_null() & pl.col("realised").is_finite()
    )
    ics = {
        d: (ic, rank_ic)
        for d, _, ic, rank_ic in daily_ic(
            scored, date="date", y_true="realised", y_pred="y_pred"
        ).iter_rows()
    }
    rows = []
    for (d,), group in scored.sort("date", "ticker").group_by("date", maintain_order=True):
        rows.append(
            {
                "date": group["matured_on"][0],
                "prediction_date": d,
                "horizon": int(group["horizon"][0]),
                "ic": ics[d][0],
                "rank_ic": ics[d][1],
                **_date_scores(group),
                "nominal_coverage": float(group["coverage"][0]),
                "model_source": ",".join(sorted(set(group["model_source"].to_list()))),
                "model_version": ",".join(sorted(set(group["model_version"].to_list()))),
            }
        )
    if not rows:
        return empty
    history = pl.DataFrame(rows).sort("prediction_date")
    # rolling means over the finite figures only: a date with too few tickers has a NaN IC,
    # which must not poison the window
    for w in ROLLING_WINDOWS:
        for f in _FIGURES:
            vals = history[f].to_numpy()
            history = history.with_columns(
                pl.Series(
                    f"{f}_{w}",
                    [_finite_mean(vals[max(0, i - w + 1) : i + 1]) for i in range(len(vals))],
                )
            )
    out = _with_uncertainty(history, as_of)
    if out.height == 0:
        return empty
    # no NaN in a stored table: a figure that cannot be computed is null
    return out.select([pl.col(c).cast(t) for c, t in SCORES_SCHEMA.items()]).with_columns(
        pl.col(pl.Float64).fill_nan(None)
    )


def _with_uncertainty(history: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """The rows of ``history`` scored on ``as_of``, with the :data:`ROLLING_UNCERTAINTY` columns
    over each rolling window (computed for these rows only: the bootstrap is not free)."""
    positions = [i for i, d in enumerate(history["date"].to_list()) if d == as_of]
    if not positions:
        return history.clear()
    series = {"ic": history["ic"].to_numpy(), "rank_ic": history["rank_ic"].to_numpy()}
    horizons = history["horizon"].to_list()
    rows = []
    for i in positions:
        row: dict[str, float | int] = {}
        for w in ROLLING_WINDOWS:
            for name, values in series.items():
                s = ic_summary(values[max(0, i - w + 1) : i + 1], horizons[i])
                row[f"{name}ir_{w}"] = s.ir
                row[f"{name}_hac_t_{w}"] = s.hac_t
                row[f"{name}_ci_lo_{w}"] = s.ci_lo
                row[f"{name}_ci_hi_{w}"] = s.ci_hi
            row[f"n_ic_dates_{w}"] = s.n_dates  # the same dates for IC and rank IC
        rows.append(row)
    extra = pl.DataFrame(rows, schema={c: SCORES_SCHEMA[c] for c in rows[0]}, orient="row")
    return history[positions].hstack(extra)


def _finite_mean(values: np.ndarray) -> float:
    ok = values[np.isfinite(values)]
    return float(ok.mean()) if ok.size else math.nan
