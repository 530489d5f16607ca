"""var_backtest: Kupiec and Christoffersen against their closed forms written out by hand, the
edge-case conventions (0 log 0 = 0), pooling across tickers, breaches from bars, properties
(LR >= 0, p in [0, 1], LR_pof = 0 at the nominal rate) and the tests' size on i.i.d. Bernoulli
breaches."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from alphadag.risk.var_backtest import (
    BREACH_SCHEMA,
    COVERAGE_COLUMNS,
    breaches,
    christoffersen_ind,
    coverage_table,
    coverage_test,
    kupiec_pof,
    transition_counts,
)

# --- closed forms by hand ------------------------------------------------------------------------


def test_kupiec_by_hand():
    # n = 20, x = 3, p = 0.05: -2 [17 ln .95 + 3 ln .05 - 17 ln .85 - 3 ln .15]
    #   = -2 [(-0.8719860 - 8.9871968) - (-2.7628215 - 5.6913599)] = 2.8100028
    lr, pv = kupiec_pof(20, 3, 0.05)
    by_hand = -2 * (
        17 * math.log(0.95) + 3 * math.log(0.05) - 17 * math.log(17 / 20) - 3 * math.log(3 / 20)
    )
    assert lr == pytest.approx(by_hand, rel=1e-12)
    assert lr == pytest.approx(2.8100028, abs=1e-6)
    assert pv == pytest.approx(stats.chi2.sf(by_hand, 1), rel=1e-12)
    assert pv == pytest.approx(0.0936783, abs=1e-6)


def test_kupiec_edge_cases_use_zero_log_zero():
    n, p = 250, 0.01
    assert kupiec_pof(n, 0, p)[0] == pytest.approx(-2 * n * math.log(1 - p), rel=1e-12)
    assert kupiec_pof(n, n, p)[0] == pytest.approx(-2 * n * math.log(p), rel=1e-12)
    assert kupiec_pof(100, 5, 0.05) == (0.0, 1.0)
    assert kupiec_pof(200, 2, 0.01) == (0.0, 1.0)


def test_christoffersen_by_hand():
    seq = [0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0]
    # pairs: 00 01 11 11 10 00 00 00 01 11 10
    assert transition_counts(np.array(seq, dtype=bool)) == (4, 2, 2, 3)
    # pi01 = 2/6, pi11 = 3/5, pi = 5/11:
    # -2 [6 ln 6/11 + 5 ln 5/11 - 4 ln 2/3 - 2 ln 1/3 - 2 ln 2/5 - 3 ln 3/5] = 0.7899166
    by_hand = -2 * (
        6 * math.log(6 / 11)
        + 5 * math.log(5 / 11)
        - 4 * math.log(2 / 3)
        - 2 * math.log(1 / 3)
        - 2 * math.log(2 / 5)
        - 3 * math.log(3 / 5)
    )
    lr, pv = christoffersen_ind(4, 2, 2, 3)
    assert lr == pytest.approx(by_hand, rel=1e-12)
    assert lr == pytest.approx(0.7899166, abs=1e-6)
    assert pv == pytest.approx(stats.chi2.sf(by_hand, 1), rel=1e-12)


def test_christoffersen_edge_cases():
    assert christoffersen_ind(0, 0, 0, 0) == (0.0, 1.0)  # no transitions at all
    assert christoffersen_ind(99, 0, 0, 0) == (0.0, 1.0)  # no breaches
    assert christoffersen_ind(0, 0, 0, 99) == (0.0, 1.0)  # all breaches
    assert christoffersen_ind(98, 1, 0, 0) == (0.0, 1.0)  # the only breach is the last day
    assert christoffersen_ind(81, 9, 9, 1) == (0.0, 1.0)  # pi01 = pi11
    # every breach followed by a breach, never a 0 -> 1 after the first: n01 = 1, n11 = 5
    # pi01 = 1/11, pi11 = 5/5 (its 0 log 0 and 5 log 1 terms vanish), pi = 6/16
    lr, _ = christoffersen_ind(10, 1, 0, 5)
    null = 10 * math.log(10 / 16) + 6 * math.log(6 / 16)
    alt = 10 * math.log(10 / 11) + math.log(1 / 11)
    assert lr == pytest.approx(-2 * (null - alt), rel=1e-12)


def test_conditional_coverage_is_the_sum_with_two_degrees_of_freedom():
    seq = [False] * 15 + [True, True, True] + [False] * 12
    t = coverage_test(seq, 0.95)
    assert (t.n, t.breaches, t.rate) == (30, 3, 0.1)
    assert (t.n00, t.n01, t.n10, t.n11) == (25, 1, 1, 2)
    assert t.lr_pof == pytest.approx(kupiec_pof(30, 3, 0.05)[0], rel=1e-12)
    assert t.lr_ind == pytest.approx(christoffersen_ind(25, 1, 1, 2)[0], rel=1e-12)
    assert t.lr_cc == pytest.approx(t.lr_pof + t.lr_ind, rel=1e-12)
    assert t.p_cc == pytest.approx(stats.chi2.sf(t.lr_cc, 2), rel=1e-12)
    assert t.nominal == 0.05 and not t.passes()


def test_pooling_counts_transitions_within_each_ticker_only():
    a, b = [False, True], [True, False]
    pooled = coverage_test([a, b], 0.95)
    assert (pooled.n00, pooled.n01, pooled.n10, pooled.n11) == (0, 1, 1, 0)
    glued = coverage_test(a + b, 0.95)  # the seam would be a breach followed by a breach
    assert glued.n11 == 1
    assert pooled.n == 4 and pooled.breaches == 2


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="no forecasts"):
        kupiec_pof(0, 0, 0.05)
    with pytest.raises(ValueError, match="cannot exceed"):
        kupiec_pof(10, 11, 0.05)
    with pytest.raises(TypeError, match="integer count"):
        kupiec_pof(10.0, 1, 0.05)
    with pytest.raises(ValueError, match=">= 0"):
        christoffersen_ind(-1, 0, 0, 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        coverage_test([True], 95)
    with pytest.raises(ValueError, match="empty"):
        coverage_test([[], []], 0.95)


# --- breaches and tables from frames -------------------------------------------------------------

D = [dt.date(2024, 1, d) for d in (2, 3, 4, 5, 8)]


def _bars() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ticker": ["A"] * 5 + ["B"] * 4,
            "date": [*D, D[0], D[1], D[3], D[4]],  # B has no bar on D[2]: a return spans it
            "close": [100.0, 97.0, 96.0, 97.0, 90.0, 50.0, 51.0, 45.0, 45.5],
        }
    )


def test_breaches_join_each_forecast_to_the_next_bar():
    fc = pl.DataFrame(
        {
            "ticker": ["A"] * 5 + ["B"] * 4,
            "date": [*D, D[0], D[1], D[3], D[4]],
            "var_95": [0.02, 0.02, None, 0.05, 0.05, 0.01, 0.1, 0.1, 0.1],
            "var_99": [0.04] * 9,
        }
    )
    out = breaches(fc, _bars())
    assert out.schema == pl.Schema(BREACH_SCHEMA)
    a95 = out.filter((pl.col("ticker") == "A") & (pl.col("level") == 0.95))
    # A: D0 -3% vs 2% breach; D1 -1.03% vs 2% no; D2 null VaR dropped; D3 -7.2% vs 5% breach;
    # D4 has no next bar: not matured
    assert a95["date"].to_list() == [D[0], D[1], D[3]]
    assert a95["breach"].to_list() == [True, False, True]
    assert a95["ret"].to_list() == pytest.approx([-0.03, 96 / 97 - 1, 90 / 97 - 1])
    b = out.filter((pl.col("ticker") == "B") & (pl.col("level") == 0.95))
    assert b["realised_date"].to_list() == [D[1], D[3], D[4]]  # D1's return spans D2
    assert b["breach"].to_list() == [False, True, False]
    assert out.filter(pl.col("level") == 0.99)["breach"].sum() == 2  # A -7.2%, B -11.8% vs 4%
    with pytest.raises(ValueError, match="var_99"):
        breaches(fc.drop("var_99"), _bars())
    with pytest.raises(ValueError, match="close"):
        breaches(fc, _bars().drop("close"), levels=[0.95])


def test_coverage_table_equals_coverage_test_per_group():
    rng = np.random.default_rng(3)
    days = pl.date_range(dt.date(2019, 12, 1), dt.date(2021, 1, 31), eager=True)
    rows = pl.concat(
        [
            pl.DataFrame(
                {
                    "ticker": t,
                    "date": days,
                    "level": level,
                    "breach": rng.random(days.len()) < 1 - level + 0.02,
                }
            )
            for t in ("X", "Y", "Z")
            for level in (0.95, 0.99)
        ]
    ).sample(fraction=1.0, shuffle=True, seed=1)  # row order must not matter
    overall = coverage_table(rows)
    assert overall.columns == list(COVERAGE_COLUMNS)
    for level in (0.95, 0.99):
        series = [
            rows.filter((pl.col("ticker") == t) & (pl.col("level") == level))
            .sort("date")["breach"]
            .to_numpy()
            for t in ("X", "Y", "Z")
        ]
        ref = coverage_test(series, level).to_dict()
        got = overall.filter(pl.col("level") == level).row(0, named=True)
        assert got == pytest.approx(ref)
    yearly = coverage_table(rows, by=[pl.col("date").dt.year().alias("year")])
    assert yearly.select("year", "level").rows() == [
        (y, lv) for y in (2019, 2020, 2021) for lv in (0.95, 0.99)
    ]
    y2020 = yearly.filter((pl.col("year") == 2020) & (pl.col("level") == 0.95)).row(0, named=True)
    in_2020 = rows.filter((pl.col("date").dt.year() == 2020) & (pl.col("level") == 0.95))
    ref = coverage_test(
        [in_2020.filter(pl.col("ticker") == t).sort("date")["breach"] for t in ("X", "Y", "Z")],
        0.95,
    )
    assert y2020 == pytest.approx({"year": 2020, **ref.to_dict()})
    assert yearly["n"].sum() == overall["n"].sum()
    # transitions never cross a year: each (ticker, year) series loses one
    assert (yearly["n00"] + yearly["n01"] + yearly["n10"] + yearly["n11"]).sum() == (
        overall["n"].sum() - 3 * 3 * 2
    )
    assert coverage_table(rows.clear()).height == 0


# --- properties ----------------------------------------------------------------------------------

series_st = st.lists(st.booleans(), min_size=1, max_size=300)


@settings(max_examples=300, deadline=None)
@given(
    panel=st.lists(series_st, min_size=1, max_size=5),
    level=st.sampled_from([0.9, 0.95, 0.975, 0.99]),
)
def test_statistics_are_nonnegative_and_p_values_in_unit_interval(panel, level):
    t = coverage_test(panel, level)
    for lr, pv in ((t.lr_pof, t.p_pof), (t.lr_ind, t.p_ind), (t.lr_cc, t.p_cc)):
        assert math.isfinite(lr) and lr >= 0.0
        assert 0.0 <= pv <= 1.0
    assert t.lr_cc == pytest.approx(t.lr_pof + t.lr_ind)
    assert t.n00 + t.n01 + t.n10 + t.n11 == t.n - len(panel)
    assert t.breaches == sum(sum(s) for s in panel)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(min_value=2, max_value=5000), data=st.data())
def test_kupiec_is_zero_at_the_nominal_rate(n, data):
    x = data.draw(st.integers(min_value=1, max_value=n - 1))
    assert kupiec_pof(n, x, x / n) == (0.0, 1.0)
    other = data.draw(st.integers(min_value=0, max_value=n).filter(lambda k: k != x))
    assert kupiec_pof(n, other, x / n)[0] > 0.0


@settings(max_examples=200, deadline=None)
@given(panel=st.lists(series_st, min_size=2, max_size=5), data=st.data())
def test_pooled_result_ignores_the_order_of_tickers(panel, data):
    shuffled = data.draw(st.permutations(panel))
    assert coverage_test(shuffled, 0.95) == coverage_test(panel, 0.95)


# --- size under the null: i.i.d. Bernoulli(p) breaches -------------------------------------------

TRIALS = 400


def _two_sided_bounds(trials: int, size: float, tail: float = 5e-4) -> tuple[int, int]:
    """Rejection counts outside these have probability < 2 * tail if the true size is ``size``."""
    return int(stats.binom.ppf(tail, trials, size)), int(stats.binom.isf(tail, trials, size))


@pytest.mark.parametrize(("n", "p"), [(1000, 0.05), (1000, 0.01)])
def test_kupiec_rejects_iid_breaches_at_its_exact_size(n, p):
    """Kupiec depends on x ~ Binomial(n, p) only, so its exact size at 5% is the binomial mass of
    the x it rejects (0.0514 for n = 1000, p = 0.05; 0.0551 for p = 0.01). The number of
    rejections in TRIALS independent sequences is then Binomial(TRIALS, size) exactly: it must
    fall in that law's central 99.9%."""
    xs = np.arange(n + 1)
    rejected = np.array([kupiec_pof(n, int(x), p)[1] < 0.05 for x in xs])
    size = float(stats.binom.pmf(xs, n, p)[rejected].sum())
    assert 0.04 < size < 0.06  # the chi2(1) approximation is close to nominal at this n
    rng = np.random.default_rng(20260)
    hits = sum(coverage_test(rng.random(n) < p, 1 - p).p_pof < 0.05 for _ in range(TRIALS))
    lo, hi = _two_sided_bounds(TRIALS, size)
    assert lo <= hits <= hi, (hits, lo, hi, size)


def test_independence_rejects_iid_breaches_at_about_five_percent_in_large_samples():
    """LR_ind has no exact finite-sample law; it is chi2(1) asymptotically. With n = 20,000 and
    p = 0.05 (about 50 expected n11) its size is within 0.035..0.065 (a 4,000-trial simulation
    gave 0.047-0.054); the rejections in TRIALS sequences must then fall inside the union of the
    Binomial(TRIALS, s) central 99.9% ranges over that interval. (At n = 1,000 the test is
    oversized, about 0.08: n11 is then about 2.5, too few for the asymptotics.)"""
    rng = np.random.default_rng(77)
    hits = sum(coverage_test(rng.random(20_000) < 0.05, 0.95).p_ind < 0.05 for _ in range(TRIALS))
    lo, hi = _two_sided_bounds(TRIALS, 0.035)[0], _two_sided_bounds(TRIALS, 0.065)[1]
    assert lo <= hits <= hi, (hits, lo, hi)


def test_clustered_breaches_are_rejected_by_the_independence_test():
    """Power: a two-state Markov chain with the right unconditional rate (5%) but pi11 = 0.3."""
    rng = np.random.default_rng(5)
    pi11, rate = 0.3, 0.05
    pi01 = rate * (1 - pi11) / (1 - rate)  # stationary rate of the chain is `rate`
    state, seq = False, []
    for u in rng.random(5000):
        state = bool(u < (pi11 if state else pi01))
        seq.append(state)
    t = coverage_test(seq, 0.95)
    assert t.p_pof > 0.01 and t.p_ind < 1e-6
