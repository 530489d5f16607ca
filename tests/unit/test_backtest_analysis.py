"""``ic_analysis`` against scipy's pearsonr/spearmanr, computed per date in the test."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from alphadag.backtest.analysis import ic_analysis


def _world(seed: int, n_tickers: int = 12, n_dates: int = 70):
    rng = np.random.default_rng(seed)
    dates = [dt.date(2022, 1, 3) + dt.timedelta(days=i) for i in range(n_dates)]
    rows = []
    for k in range(n_tickers):
        close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, n_dates)))
        keep = rng.random(n_dates) > 0.1  # tickers miss some sessions
        rows += [(f"T{k:02d}", d, c) for d, c, ok in zip(dates, close, keep, strict=True) if ok]
    bars = pl.DataFrame(rows, schema=["ticker", "date", "close"], orient="row")
    return rng, dates, bars


def _newey_west_se(x: np.ndarray, lags: int) -> float:
    """Bartlett-kernel long-run variance of the mean, written out."""
    e = x - x.mean()
    lrv = e @ e / x.size
    for k in range(1, lags + 1):
        lrv += 2 * (1 - k / (lags + 1)) * (e[k:] @ e[:-k]) / x.size
    return math.sqrt(lrv / x.size)


def _forward(bars: pl.DataFrame, h: int) -> dict[tuple[str, dt.date], float]:
    out = {}
    for (tk,), g in bars.sort("date").group_by("ticker"):
        d, c = g["date"].to_list(), g["close"].to_numpy()
        for i in range(len(d) - h):
            out[(tk, d[i])] = math.log(c[i + h] / c[i])
    return out


@pytest.mark.parametrize(("seed", "h"), [(0, 1), (1, 5), (2, 3)])
def test_matches_scipy_per_date(seed, h):
    rng, dates, bars = _world(seed)
    fwd = _forward(bars, h)
    rows = []
    for (tk, d), f in fwd.items():
        pred = 0.3 * f + rng.normal(0, 0.02)
        if d.day % 4 == 0:
            pred = round(pred, 2)  # ties: ranks average them
        rows.append((d, tk, h, pred))
        rows.append((d, tk, h + 1, rng.normal()))  # another horizon: ignored
    preds = pl.DataFrame(rows, schema=["date", "ticker", "horizon", "y_pred"], orient="row")
    r = ic_analysis(preds, bars, horizon=h)

    expected = {}
    for d in dates:
        pairs = [(p, fwd[(tk, dd)]) for dd, tk, hh, p in rows if dd == d and hh == h]
        if len(pairs) >= 3:
            x, y = np.array(pairs).T
            expected[d] = (len(pairs), sps.pearsonr(x, y)[0], sps.spearmanr(x, y)[0])
    assert r.by_date["date"].to_list() == sorted(expected)
    for row in r.by_date.iter_rows(named=True):
        n, ic, ric = expected[row["date"]]
        assert row["n"] == n
        assert math.isclose(row["ic"], ic, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(row["rank_ic"], ric, rel_tol=1e-9, abs_tol=1e-12)
    ics = np.array([v[1] for v in expected.values()])
    rics = np.array([v[2] for v in expected.values()])
    assert r.n_dates == len(expected)
    assert math.isclose(r.ic_mean, ics.mean(), rel_tol=1e-9)
    assert math.isclose(r.ic_std, ics.std(ddof=1), rel_tol=1e-9)
    assert r.icir == pytest.approx(ics.mean() / ics.std(ddof=1), rel=1e-9)
    # Newey-West with lag h: the forward returns of consecutive dates overlap
    lags = min(h, ics.size - 1)
    assert r.ic_hac_se == pytest.approx(_newey_west_se(ics, lags), rel=1e-9)
    assert r.ic_hac_t == pytest.approx(ics.mean() / _newey_west_se(ics, lags), rel=1e-9)
    assert r.rank_ic_hac_t == pytest.approx(rics.mean() / _newey_west_se(rics, lags), rel=1e-9)
    assert (
        r.ic_ci_lo < r.ic_mean < r.ic_ci_hi and r.rank_ic_ci_lo < r.rank_ic_mean < r.rank_ic_ci_hi
    )
    assert r.ic_positive_share == pytest.approx((ics > 0).mean())
    assert math.isclose(r.rank_ic_mean, rics.mean(), rel_tol=1e-9)
    assert r.rank_ic_positive_share == pytest.approx((rics > 0).mean())
    assert r.rank_ic_mean > 0.1  # the predictions carry the outcome
    pairs = [(p, fwd[(tk, d)]) for d, tk, hh, p in rows if hh == h]
    moving = [(p, f) for p, f in pairs if f != 0]
    assert r.hit_rate == pytest.approx(np.mean([np.sign(p) == np.sign(f) for p, f in moving]))
    assert r.n_ic_dates == len(expected) and r.n_excluded == 0
    assert "ic_t_stat" not in r.to_dict()  # the naive t is never reported


def test_constant_date_is_nan_and_left_out_of_the_summary():
    _, dates, bars = _world(5, n_tickers=5, n_dates=10)
    fwd = _forward(bars, 1)
    rows = [(d, tk, 1.0 if d == dates[0] else f) for (tk, d), f in fwd.items()]
    preds = pl.DataFrame(rows, schema=["date", "ticker", "y_pred"], orient="row")
    r = ic_analysis(preds, bars, horizon=1)
    first = r.by_date.filter(pl.col("date") == dates[0])
    assert math.isnan(first["ic"][0]) and math.isnan(first["rank_ic"][0])
    rest = r.by_date.filter(pl.col("date") != dates[0])
    assert math.isclose(r.ic_mean, rest["ic"].mean(), rel_tol=1e-12)
    assert r.ic_mean == pytest.approx(1.0)  # y_pred is the outcome itself elsewhere
    assert r.n_ic_dates == rest.height and r.n_excluded == 1


def test_a_date_with_fewer_tickers_than_the_rule_is_excluded_and_counted():
    _, dates, bars = _world(7, n_tickers=6, n_dates=12)
    fwd = _forward(bars, 1)
    rows = [(d, tk, f) for (tk, d), f in fwd.items()]
    thin = dates[3]
    rows = [r for r in rows if r[0] != thin] + [r for r in rows if r[0] == thin][:2]
    preds = pl.DataFrame(rows, schema=["date", "ticker", "y_pred"], orient="row")
    r = ic_analysis(preds, bars, horizon=1)
    assert thin not in r.by_date["date"].to_list()
    assert r.n_excluded == 1 and r.n_ic_dates == r.n_dates == r.by_date.height
    assert r.rank_ic_mean == pytest.approx(1.0) and r.hit_rate == 1.0


def test_unscored_tail_and_argument_errors():
    _, dates, bars = _world(6, n_tickers=4, n_dates=8)
    preds = pl.DataFrame({"date": [dates[-1]] * 4, "ticker": [f"T{k:02d}" for k in range(4)],
                          "y_pred": [0.1, 0.2, 0.3, 0.4]})  # fmt: skip
    r = ic_analysis(preds, bars, horizon=1)  # no bar after the last date: nothing to score
    assert r.n_dates == 0 and math.isnan(r.ic_mean)
    with pytest.raises(ValueError, match="horizon"):
        ic_analysis(preds, bars, horizon=0)
    with pytest.raises(ValueError, match="duplicate"):
        ic_analysis(pl.concat([preds, preds]), bars, horizon=1)
    with pytest.raises(ValueError, match="y_pred"):
        ic_analysis(preds.drop("y_pred"), bars, horizon=1)
