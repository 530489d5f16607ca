"""``score_predictions``' rolling IC uncertainty and hit rate against hand computations."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from alphadag.models.ic import MIN_TICKERS
from alphadag.models.scoring import (
    ROLLING_UNCERTAINTY,
    ROLLING_WINDOWS,
    SCORES_SCHEMA,
    score_predictions,
)

H = 3
TICKERS = [f"T{i}" for i in range(6)]


def _thin(n_days: int) -> int:
    """The one prediction day with fewer than MIN_TICKERS tickers."""
    return n_days - H - 5


def _world(n_days: int = 90, seed: int = 0):
    rng = np.random.default_rng(seed)
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n_days)]
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, size=(n_days, len(TICKERS))), axis=0))
    bars = pl.DataFrame(
        [(t, d, float(close[i, k])) for i, d in enumerate(days) for k, t in enumerate(TICKERS)],
        schema={"ticker": pl.String, "date": pl.Date, "close": pl.Float64},
        orient="row",
    )
    fwd = np.log(close[H:] / close[:-H])  # realised over H sessions, by prediction day
    rows = []
    for i in range(n_days - H):
        y = 0.5 * fwd[i] + rng.normal(0, 0.02, len(TICKERS))
        names = TICKERS[: MIN_TICKERS - 1] if i == _thin(n_days) else TICKERS
        for k, t in enumerate(TICKERS):
            if t in names:
                rows.append((days[i], t, float(y[k])))
    preds = pl.DataFrame(rows, schema=["date", "ticker", "y_pred"], orient="row").with_columns(
        horizon=pl.lit(H, pl.Int64),
        y_lo=pl.lit(-0.03),
        y_hi=pl.lit(0.03),
        coverage=pl.lit(0.9),
        model_source=pl.lit("champion"),
        model_version=pl.lit("1"),
    )
    return days, bars, preds, fwd


def _newey_west_se(x: np.ndarray, lags: int) -> float:
    e = x - x.mean()
    lrv = e @ e / x.size
    for k in range(1, lags + 1):
        lrv += 2 * (1 - k / (lags + 1)) * (e[k:] @ e[:-k]) / x.size
    return math.sqrt(lrv / x.size)


def test_rolling_uncertainty_matches_hand_computations() -> None:
    days, bars, preds, fwd = _world()
    last = len(days) - 1  # the prediction of days[last - H] matures on days[last]
    (row,) = score_predictions(preds, bars, days[last]).to_dicts()
    assert set(row) == set(SCORES_SCHEMA)
    assert row["prediction_date"] == days[last - H]

    by_date = {}
    for i in range(last - H + 1):
        part = preds.filter(pl.col("date") == days[i]).sort("ticker")
        idx = [TICKERS.index(t) for t in part["ticker"]]
        y, r = part["y_pred"].to_numpy(), fwd[i, idx]
        ok = len(y) >= MIN_TICKERS
        by_date[i] = (
            stats.pearsonr(y, r).statistic if ok else math.nan,
            stats.spearmanr(y, r).statistic if ok else math.nan,
        )
    assert row["ic"] == pytest.approx(by_date[last - H][0], rel=1e-9)
    for w in ROLLING_WINDOWS:
        window = range(last - H - w + 1, last - H + 1)
        for j, name in enumerate(("ic", "rank_ic")):
            x = np.array([by_date[i][j] for i in window])
            x = x[np.isfinite(x)]
            assert row[f"n_ic_dates_{w}"] == x.size == w - 1  # the thin date is excluded
            assert row[f"{name}_{w}"] == pytest.approx(x.mean(), rel=1e-9)
            assert row[f"{name}ir_{w}"] == pytest.approx(x.mean() / x.std(ddof=1), rel=1e-9)
            t = x.mean() / _newey_west_se(x, H)
            assert row[f"{name}_hac_t_{w}"] == pytest.approx(t, rel=1e-9)
            assert row[f"{name}_ci_lo_{w}"] < x.mean() < row[f"{name}_ci_hi_{w}"]

    # the thin date's own row: no IC (too few tickers), the other figures still there
    (thin,) = score_predictions(preds, bars, days[_thin(len(days)) + H]).to_dicts()
    assert thin["n"] == MIN_TICKERS - 1
    assert thin["ic"] is None and thin["rank_ic"] is None and thin["rmse"] is not None


def test_hit_rate_counts_a_zero_forecast_as_a_miss() -> None:
    days, bars, preds, fwd = _world(n_days=12, seed=3)
    zeroed = preds.with_columns(
        pl.when((pl.col("date") == days[2]) & (pl.col("ticker") == "T0"))
        .then(0.0)
        .otherwise(pl.col("y_pred"))
        .alias("y_pred")
    )
    (row,) = score_predictions(zeroed, bars, days[2 + H]).to_dicts()
    y = zeroed.filter(pl.col("date") == days[2]).sort("ticker")["y_pred"].to_numpy()
    assert y[0] == 0.0
    hits = np.sign(y) == np.sign(fwd[2])
    assert row["hit_rate"] == pytest.approx(hits.mean())  # the 0 is in the denominator


def test_no_row_matures_on_a_session_between_maturities() -> None:
    days, bars, preds, _ = _world(n_days=12, seed=4)
    one_date = preds.filter(pl.col("date") == days[0])
    out = score_predictions(one_date, bars, days[H + 2])  # days[0] matured on days[H]
    assert out.height == 0 and out.schema == pl.Schema(SCORES_SCHEMA)
    assert all(f"{f}_{w}" in SCORES_SCHEMA for f in ROLLING_UNCERTAINTY for w in ROLLING_WINDOWS)


def test_realised_is_the_label_of_compute_labels_even_across_a_ticker_gap() -> None:
    """One forward-return definition: a prediction's realised value is its fwd_ret_{h}d label
    (the ticker's own h-th next bar), known once that bar is at or before ``as_of``."""
    from alphadag.features.labels import compute_labels, label_column
    from alphadag.models.scoring import realised_returns

    days, bars, _, _ = _world(n_days=20)
    gap_day = days[5]
    bars = bars.filter(~((pl.col("ticker") == "T0") & (pl.col("date") == gap_day)))
    preds = bars.select("date", "ticker", pl.lit(H).alias("horizon"), pl.lit(0.1).alias("y_pred"))
    for as_of in (days[8], bars["date"].max()):
        got = realised_returns(preds, bars, as_of).sort("ticker", "date")
        known = bars.filter(pl.col("date") <= as_of)  # a score reads no close after as_of
        want = preds.join(compute_labels(known, (H,)), on=["ticker", "date"], how="left")
        assert got["realised"].to_list() == want.sort("ticker", "date")[label_column(H)].to_list()
