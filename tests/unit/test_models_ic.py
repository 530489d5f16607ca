"""The one IC implementation against independent computations: scipy per date, Newey-West by
hand with numpy, arch's circular block bootstrap, and seeded Monte-Carlo size and coverage."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from alphadag.models.ic import (
    IC_FIGURE_NAMES,
    MIN_TICKERS,
    daily_ic,
    hac_maxlags,
    hit_rate,
    ic_difference,
    ic_figures,
    ic_summary,
)

D0 = dt.date(2024, 1, 2)


def _newey_west_se(x: np.ndarray, lags: int) -> float:
    """Bartlett-kernel long-run variance of the mean, written out."""
    e = x - x.mean()
    n = x.size
    lrv = e @ e / n
    for lag in range(1, lags + 1):
        lrv += 2.0 * (1.0 - lag / (lags + 1)) * (e[lag:] @ e[:-lag]) / n
    return math.sqrt(lrv / n)


def _overlapping(rng: np.random.Generator, n: int, h: int, mean: float = 0.0) -> np.ndarray:
    """A per-date series whose values overlap h periods, as IC of h-session labels do: MA(h-1)."""
    e = rng.normal(size=n + h - 1)
    return mean + np.convolve(e, np.ones(h) / h, mode="valid")


# --- per-date IC -------------------------------------------------------------------------------


def test_daily_ic_matches_scipy_and_marks_undefined_dates() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for d in range(6):
        t = np.round(rng.standard_normal(9) * 0.02, 3)
        p = np.round(0.4 * t + rng.standard_normal(9) * 0.02, 2)  # rounding makes ties
        rows += [(D0 + dt.timedelta(days=d), float(a), float(b)) for a, b in zip(t, p, strict=True)]
    small = D0 + dt.timedelta(days=10)  # MIN_TICKERS - 1 tickers: excluded
    rows += [(small, 0.01 * i, 0.02 * i) for i in range(MIN_TICKERS - 1)]
    flat = D0 + dt.timedelta(days=11)  # constant forecast: undefined
    rows += [(flat, 0.01 * i, 0.5) for i in range(5)]
    nonfinite = D0 + dt.timedelta(days=12)  # 3 finite rows of 5: still defined
    rows += [(nonfinite, 0.01, 0.1), (nonfinite, 0.02, 0.3), (nonfinite, -0.01, 0.2)]
    rows += [(nonfinite, math.nan, 0.1), (nonfinite, 0.02, math.inf)]
    frame = pl.DataFrame(rows, schema=["date", "y_true", "y_pred"], orient="row")

    got = daily_ic(frame)
    assert got.columns == ["date", "n", "ic", "rank_ic"]
    assert got["date"].is_sorted()
    by = {r["date"]: r for r in got.iter_rows(named=True)}
    for (d,), part in frame.group_by("date"):
        ok = part.filter(pl.col("y_true").is_finite() & pl.col("y_pred").is_finite())
        t, p = ok["y_true"].to_numpy(), ok["y_pred"].to_numpy()
        assert by[d]["n"] == len(t)
        if len(t) < MIN_TICKERS or len(set(t)) == 1 or len(set(p)) == 1:
            assert math.isnan(by[d]["ic"]) and math.isnan(by[d]["rank_ic"]), d
            continue
        assert by[d]["ic"] == pytest.approx(stats.pearsonr(t, p).statistic, rel=1e-9, abs=1e-12)
        assert by[d]["rank_ic"] == pytest.approx(
            stats.spearmanr(t, p).statistic, rel=1e-9, abs=1e-12
        )
    assert math.isnan(by[small]["ic"]) and math.isnan(by[flat]["rank_ic"])
    assert by[nonfinite]["n"] == 3 and math.isfinite(by[nonfinite]["ic"])

    # the summary leaves the undefined dates out and counts them
    s = ic_summary(got["rank_ic"], horizon=1)
    assert (s.n_dates, s.n_excluded) == (7, 2)
    figures = ic_figures(got, horizon=1)
    assert tuple(figures) == IC_FIGURE_NAMES
    assert figures["n_ic_dates"] == 7.0
    assert figures["rank_ic_mean"] == pytest.approx(np.nanmean(got["rank_ic"].to_numpy()))


def test_a_perfectly_ranked_cross_section_has_rank_ic_one() -> None:
    t = np.array([-0.03, -0.01, 0.0, 0.002, 0.04, 0.2])
    f = pl.DataFrame({"date": [D0] * 6, "y_true": t, "y_pred": np.exp(30 * t)})  # monotone
    got = daily_ic(f).row(0, named=True)
    assert got["rank_ic"] == pytest.approx(1.0)
    assert got["ic"] < 0.999  # Pearson sees the curvature; ranks do not
    rev = daily_ic(f.with_columns(-pl.col("y_pred"))).row(0, named=True)
    assert rev["rank_ic"] == pytest.approx(-1.0)


def test_daily_ic_custom_columns_and_missing_column() -> None:
    f = pl.DataFrame({"day": [D0] * 3, "y": [0.1, 0.2, 0.3], "p": [3, 2, 1]})
    got = daily_ic(f, date="day", y_true="y", y_pred="p")
    assert got.columns == ["day", "n", "ic", "rank_ic"]
    assert got["ic"][0] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="lacks column"):
        daily_ic(f)


def test_hit_rate_definition() -> None:
    p = np.array([0.1, -0.2, 0.0, 0.3, -0.1, 0.2, math.nan])
    t = np.array([0.5, 0.1, -0.1, 0.0, -0.3, 0.4, 0.1])
    # rows with t != 0 and both finite: (+,+) hit, (-,+) miss, (0,-) miss, (-,-) hit, (+,+) hit
    assert hit_rate(p, t) == pytest.approx(3 / 5)
    assert math.isnan(hit_rate([0.1], [0.0]))
    with pytest.raises(ValueError, match="shape"):
        hit_rate([0.1, 0.2], [0.1])


# --- summary: mean, std, ICIR, Newey-West ------------------------------------------------------


@pytest.mark.parametrize(("horizon", "n"), [(1, 40), (5, 250), (20, 30), (10, 6)])
def test_summary_matches_hand_computations(horizon: int, n: int) -> None:
    x = _overlapping(np.random.default_rng(horizon), n, max(horizon, 1), mean=0.02)
    s = ic_summary(x, horizon)
    lags = min(horizon, n - 1)
    assert s.hac_maxlags == lags == hac_maxlags(horizon, n)
    assert s.mean == pytest.approx(x.mean(), rel=1e-12)
    assert s.std == pytest.approx(x.std(ddof=1), rel=1e-12)
    assert s.ir == pytest.approx(x.mean() / x.std(ddof=1), rel=1e-12)
    se = _newey_west_se(x, lags)
    assert s.hac_se == pytest.approx(se, rel=1e-9)
    assert s.hac_t == pytest.approx(x.mean() / se, rel=1e-9)
    assert s.hac_p == pytest.approx(2 * stats.norm.sf(abs(x.mean() / se)), rel=1e-7)
    assert s.block_length >= min(horizon, n)
    assert s.ci_lo < s.mean < s.ci_hi
    assert (s.n_dates, s.n_excluded, s.reps) == (n, 0, 1000)


def test_hac_corrects_what_the_naive_se_understates_on_overlapping_labels() -> None:
    """AR(1) with phi = 0.6: the naive SE is half the true one; HAC (lag 5) recovers most."""
    rng = np.random.default_rng(11)
    phi, n = 0.6, 4000
    x = np.empty(n)
    x[0] = rng.normal() / math.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + rng.normal()
    s = ic_summary(x, horizon=5)
    naive = x.std(ddof=1) / math.sqrt(n)
    assert s.hac_se == pytest.approx(_newey_west_se(x, 5), rel=1e-9)
    # Bartlett weights with lag 5 give sqrt(1 + 2 * sum((1 - l/6) * phi**l)) ~ 1.68 x naive
    assert 1.5 < s.hac_se / naive < 1.9


def test_hac_t_keeps_its_size_where_the_naive_t_does_not() -> None:
    """Mean-zero 5-overlapping series: how often |t| > 1.96 (nominal 5%)."""
    rng = np.random.default_rng(2024)
    h, n, runs = 5, 400, 200
    naive = hac = 0
    for _ in range(runs):
        x = _overlapping(rng, n, h)
        naive += abs(x.mean() / (x.std(ddof=1) / math.sqrt(n))) > 1.96
        hac += abs(ic_summary(x, h, reps=50).hac_t) > 1.96
    assert naive / runs > 0.25  # the naive t claims evidence about 4 times in 10
    assert hac / runs < 0.17  # Bartlett with lag h still runs a little hot (~0.11), never 0.4


# --- the block bootstrap -----------------------------------------------------------------------


def test_bootstrap_interval_covers_the_true_mean_about_95_percent() -> None:
    rng = np.random.default_rng(5)
    runs, covered = 300, 0
    for i in range(runs):
        x = rng.normal(0.03, 0.1, size=120)
        s = ic_summary(x, horizon=1, reps=400, seed=i)
        covered += s.ci_lo <= 0.03 <= s.ci_hi
    assert 0.88 <= covered / runs <= 0.99


def test_bootstrap_covers_overlapping_series_with_blocks_of_at_least_the_horizon() -> None:
    rng = np.random.default_rng(6)
    runs, covered = 200, 0
    for i in range(runs):
        s = ic_summary(_overlapping(rng, 400, 5, mean=0.05), horizon=5, reps=400, seed=i)
        assert s.block_length >= 5
        covered += s.ci_lo <= 0.05 <= s.ci_hi
    assert 0.82 <= covered / runs <= 0.99


def test_bootstrap_spread_agrees_with_arch_circular_block_bootstrap() -> None:
    from arch.bootstrap import CircularBlockBootstrap

    x = _overlapping(np.random.default_rng(8), 600, 5)
    s = ic_summary(x, horizon=5, reps=4000)
    ref = CircularBlockBootstrap(s.block_length, x, seed=1).apply(np.mean, 4000).ravel()
    lo, hi = np.quantile(ref, [0.025, 0.975])
    width = hi - lo
    assert s.ci_hi - s.ci_lo == pytest.approx(width, rel=0.1)
    assert s.ci_lo == pytest.approx(lo, abs=0.1 * width)
    assert s.ci_hi == pytest.approx(hi, abs=0.1 * width)


def test_bootstrap_is_reproducible_and_seeded() -> None:
    x = np.random.default_rng(9).normal(size=300)
    a, b = ic_summary(x, 3), ic_summary(x, 3)
    assert (a.ci_lo, a.ci_hi) == (b.ci_lo, b.ci_hi)
    c = ic_summary(x, 3, seed=1)
    assert (c.ci_lo, c.ci_hi) != (a.ci_lo, a.ci_hi)


# --- edge cases and properties -----------------------------------------------------------------


def test_degenerate_series() -> None:
    empty = ic_summary([], 5)
    assert empty.n_dates == 0 and math.isnan(empty.mean) and math.isnan(empty.ci_lo)
    one = ic_summary([0.1, math.nan, None], 5)
    assert (one.mean, one.n_dates, one.n_excluded) == (0.1, 1, 2)
    assert math.isnan(one.std) and math.isnan(one.hac_t)
    flat = ic_summary(pl.Series([0.2, 0.2, 0.2, None]), 5)
    assert flat.std == 0.0 and math.isnan(flat.ir) and math.isnan(flat.hac_t)
    assert flat.ci_lo == flat.ci_hi == flat.mean == pytest.approx(0.2)
    assert (flat.n_excluded, flat.hac_maxlags) == (1, 2)
    with pytest.raises(ValueError, match="horizon"):
        ic_summary([0.1, 0.2], -1)
    with pytest.raises(ValueError, match="reps"):
        ic_summary([0.1, 0.2], 1, reps=0)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.floats(-1, 1), st.just(math.nan)),
        min_size=0,
        max_size=80,
    ),
    horizon=st.integers(0, 20),
)
@example(values=[0.0, 2.0436063410122934e-233], horizon=0)  # a subnormal spread: std rounds to 0
def test_summary_property(values: list[float], horizon: int) -> None:
    s = ic_summary(values, horizon, reps=100)
    x = np.array([v for v in values if not math.isnan(v)])
    assert (s.n_dates, s.n_excluded) == (x.size, len(values) - x.size)
    if x.size:
        assert s.mean == pytest.approx(x.mean(), abs=1e-12)
    if x.size >= 2:
        assert s.std == pytest.approx(x.std(ddof=1), abs=1e-12)
        assert s.ci_lo <= s.ci_hi
        assert x.min() - 1e-12 <= s.ci_lo and s.ci_hi <= x.max() + 1e-12
        assert s.hac_maxlags == min(max(horizon, 1), x.size - 1)
        assert 1 <= s.block_length <= x.size


# --- paired difference -------------------------------------------------------------------------


def test_ic_difference_on_common_dates() -> None:
    rng = np.random.default_rng(12)
    days = [D0 + dt.timedelta(days=i) for i in range(300)]
    a_vals = _overlapping(rng, 300, 5, mean=0.04)
    b_vals = 0.5 * a_vals + _overlapping(rng, 300, 5, mean=0.01)
    b_vals[::7] = math.nan  # undefined on some dates
    a = pl.DataFrame({"date": days, "rank_ic": a_vals})
    b = pl.DataFrame({"date": days[10:], "rank_ic": b_vals[10:]}).reverse()  # order-free input
    d = ic_difference(a, b, horizon=5)

    keep = [i for i in range(10, 300) if not math.isnan(b_vals[i])]
    diff = a_vals[keep] - b_vals[keep]
    assert d.n == len(keep)
    assert d.gain == pytest.approx(diff.mean(), rel=1e-12)
    assert d.mean_a - d.mean_b == pytest.approx(d.gain, rel=1e-9)
    se = _newey_west_se(diff, 5)
    assert d.se == pytest.approx(se, rel=1e-9)
    assert d.t == pytest.approx(diff.mean() / se, rel=1e-9)
    assert d.ci_lo < d.gain < d.ci_hi and d.block_length >= 5 and d.hac_maxlags == 5
    s = ic_summary(diff, 5)
    assert (d.ci_lo, d.ci_hi, d.p) == (s.ci_lo, s.ci_hi, s.hac_p)
    assert set(d.to_dict()) >= {"gain", "se", "t", "p", "n", "ci_lo", "ci_hi"}

    with pytest.raises(ValueError, match="duplicate"):
        ic_difference(pl.concat([a, a]), b, horizon=5)
    with pytest.raises(ValueError, match="lacks"):
        ic_difference(a, b.rename({"rank_ic": "x"}), horizon=5)
    ic = ic_difference(
        a.rename({"rank_ic": "ic"}), b.rename({"rank_ic": "ic"}), horizon=5, column="ic"
    )
    assert ic.gain == d.gain
