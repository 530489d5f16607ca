"""The drift test of alphadag.models.drift: hand-computed statistics, scipy where it is wrapped,
and properties (false-alarm rate under no drift, power under a shift, insufficient samples,
row-order invariance, the window null under clustered rows)."""

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from alphadag.models.drift import (
    MIN_NULL_WINDOWS,
    REFERENCE_SCHEMA,
    benjamini_hochberg,
    drift_test,
    psi_reference,
)

FEATURES = [f"f{i:02d}" for i in range(36)]


def _normal_frame(rng, rows: int, columns=FEATURES, loc: float = 0.0) -> pl.DataFrame:
    return pl.DataFrame({c: rng.normal(loc, 1.0, size=rows) for c in columns})


def _panel(rng, sessions: int, tickers: int, block: int, common_sd: float) -> pl.DataFrame:
    """One feature ``x`` for ``tickers`` rows per session; every ``block`` consecutive sessions
    share a common shift ~ N(0, common_sd): the rows of a window are not independent."""
    shift = np.repeat(rng.normal(0.0, common_sd, size=-(-sessions // block)), block)[:sessions]
    days = pl.date_range(
        dt.date(2000, 1, 1), dt.date(2000, 1, 1) + dt.timedelta(sessions - 1), eager=True
    )
    return pl.DataFrame(
        {
            "date": days.gather(np.repeat(np.arange(sessions), tickers)),
            "x": np.repeat(shift, tickers) + rng.normal(size=sessions * tickers),
        }
    )


# --- the statistic, by hand and against scipy ----------------------------------------------------


def test_statistic_and_p_value_of_a_hand_computed_case():
    # reference 1..4 in 2 bins: (-inf, 2] and (2, inf), shares 1/2 each, n = 4
    ref = psi_reference(pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), ["x"], bins=2)
    assert ref["upper"].to_list() == [2.0, math.inf]
    # current: 3 of 4 rows in the first bin, a = (3/4, 1/4)
    # sum (a - e)^2 / e = 2 * (1/4)^2 / (1/2) = 1/4; divided by (1/m + 1/n) = 1/2 gives 1/2
    row = drift_test(ref, pl.DataFrame({"x": [1.0, 1.5, 0.0, 4.0]}), min_rows=1).table.row(
        0, named=True
    )
    assert row["statistic"] == pytest.approx(0.5)
    # chi2 with 1 dof: P(X > x) = erfc(sqrt(x / 2))
    assert row["p_value"] == pytest.approx(math.erfc(math.sqrt(0.25)))
    assert (row["n_reference"], row["n_current"], row["null"]) == (4, 4, "iid")


def test_a_legacy_reference_is_pearsons_goodness_of_fit_test():
    # a model logged before the rows column: n is infinite, X2 is scipy's chisquare
    rng = np.random.default_rng(3)
    ref = psi_reference(_normal_frame(rng, 5_000, ["x"]), ["x"])
    legacy = ref.select("feature", "bin", "upper", "share")
    x = rng.normal(0.2, 1.0, size=300)
    row = drift_test(legacy, pl.DataFrame({"x": x})).table.row(0, named=True)
    uppers = legacy["upper"].to_numpy()
    lowers = np.r_[-np.inf, uppers[:-1]]
    counts = np.array([((x > lo) & (x <= up)).sum() for lo, up in zip(lowers, uppers, strict=True)])
    expected = stats.chisquare(counts, legacy["share"].to_numpy() * x.size)
    assert row["statistic"] == pytest.approx(expected.statistic)
    assert row["p_value"] == pytest.approx(expected.pvalue)
    assert row["n_reference"] is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_benjamini_hochberg_matches_scipy(p_values):
    assert benjamini_hochberg(p_values) == pytest.approx(
        stats.false_discovery_control(p_values, method="bh")
    )


def test_benjamini_hochberg_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 against 0.05 * k / 4 = 0.0125, 0.025, 0.0375, 0.05:
    # only 0.01 is under its line
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.5])
    assert (q <= 0.05).tolist() == [True, False, False, False]


# --- properties ---------------------------------------------------------------------------------


def test_false_alarm_rate_under_no_drift_stays_near_the_nominal_level():
    # 36 features, reference and current from the same distribution, BH at 5%. Under the complete
    # null BH's false discovery rate is the chance of any alarm, and for independent p-values it
    # is alpha * m0 / m = 5%. So the alarmed trials of 200 are ~ Binomial(200, 0.05): mean 10,
    # sd sqrt(200 * 0.05 * 0.95) = 3.08; mean + 4 sd = 22.3 leaves room for the chi-square
    # approximation of Pearson's statistic at 20 expected rows per bin.
    rng = np.random.default_rng(2024)
    trials, alarmed, features_flagged = 200, 0, 0
    for _ in range(trials):
        ref = psi_reference(_normal_frame(rng, 2_000), FEATURES)
        result = drift_test(ref, _normal_frame(rng, 200), min_rows=200, alpha=0.05)
        alarmed += not result.passed
        features_flagged += len(result.drifted)
    assert alarmed <= 22
    assert features_flagged <= 2 * 22  # few and isolated, not whole batches of features


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(200, 400),
    direction=st.sampled_from([-1.0, 1.0]),
)
def test_a_one_sd_shift_fires(seed, rows, direction):
    rng = np.random.default_rng(seed)
    ref = psi_reference(_normal_frame(rng, 2_000), FEATURES)
    current = _normal_frame(rng, rows).with_columns(pl.col("f07") + direction)
    result = drift_test(ref, current, min_rows=200)
    assert "f07" in result.drifted
    assert not result.passed


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(0, 199),
    shift=st.floats(-10.0, 10.0),
)
def test_below_the_minimum_sample_it_never_fires_and_says_so(seed, rows, shift):
    rng = np.random.default_rng(seed)
    ref = psi_reference(_normal_frame(rng, 1_000, ["a", "b"]), ["a", "b"])
    result = drift_test(ref, _normal_frame(rng, rows, ["a", "b"], loc=shift), min_rows=200)
    assert result.passed
    assert result.table["verdict"].to_list() == ["insufficient sample"] * 2
    assert result.table["p_value"].null_count() == 2
    assert result.describe().startswith(f"insufficient sample: {rows} current rows")


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), permutation_seed=st.integers(0, 2**32 - 1))
def test_the_result_does_not_depend_on_row_order(seed, permutation_seed):
    rng = np.random.default_rng(seed)
    ref = psi_reference(_normal_frame(rng, 1_000, ["a", "b"]), ["a", "b"])
    current = _normal_frame(rng, 250, ["a", "b"], loc=0.1)
    shuffled = current.sample(fraction=1.0, shuffle=True, seed=permutation_seed % 2**31)
    assert drift_test(ref, current).table.equals(drift_test(ref, shuffled).table)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=300))
def test_reference_bins_are_never_empty_even_with_ties(values):
    ref = psi_reference(pl.DataFrame({"x": values}), ["x"])
    assert ref.schema == pl.Schema(REFERENCE_SCHEMA)
    assert (ref["share"] > 0).all()
    assert ref["share"].sum() == pytest.approx(1.0)
    assert ref["upper"][-1] == math.inf
    assert ref["rows"].unique().to_list() == [len(values)]


# --- the window null ----------------------------------------------------------------------------


def test_the_window_null_of_independent_rows_is_the_plain_chi_square():
    # Pearson's X2 of a window is ~ chi2(k - 1): mean k - 1, variance 2 (k - 1), so the
    # two-moment match gives scale ~ 1 and dof ~ k - 1 = 9 (sampling error of ~300 windows)
    rng = np.random.default_rng(5)
    ref = psi_reference(_panel(rng, 3_000, 20, block=1, common_sd=0.0), ["x"])
    assert ref["null_scale"][0] == pytest.approx(1.0, abs=0.25)
    assert ref["null_dof"][0] == pytest.approx(9.0, abs=2.0)
    assert ref["window_sessions"][0] == 10


def test_too_few_windows_means_no_window_null():
    rng = np.random.default_rng(6)
    ref = psi_reference(_panel(rng, 10 * MIN_NULL_WINDOWS - 1, 20, block=1, common_sd=0.0), ["x"])
    assert ref["null_scale"].is_null().all() and ref["null_dof"].is_null().all()


def test_the_window_null_absorbs_rows_that_move_together():
    # every 10-session window shares one common shift ~ N(0, 0.5): 200 rows of a window are
    # far from 200 independent draws. Fresh windows of the same process must alarm at about
    # alpha with the window null (one feature: no multiplicity); the iid null alarms on most.
    # Bound: Binomial(100, 0.05) has mean 5 and sd 2.2; mean + 4 sd = 13.7.
    rng = np.random.default_rng(7)
    ref = psi_reference(_panel(rng, 5_000, 20, block=10, common_sd=0.5), ["x"])
    assert ref["null_scale"][0] > 5  # the variance inflation is large
    iid = ref.select("feature", "bin", "upper", "share", "rows")
    window_alarms = iid_alarms = 0
    for _ in range(100):
        window = _panel(rng, 10, 20, block=10, common_sd=0.5)
        window_alarms += not drift_test(ref, window).passed
        iid_alarms += not drift_test(iid, window).passed
    assert window_alarms <= 13
    assert iid_alarms >= 50


def test_current_rows_with_dates_are_cut_to_the_reference_window():
    rng = np.random.default_rng(8)
    ref = psi_reference(_panel(rng, 3_000, 20, block=1, common_sd=0.0), ["x"])
    # 30 sessions: the first 20 shifted by 5 sd, the last 10 (the tested window) not
    old = _panel(rng, 20, 20, block=1, common_sd=0.0).with_columns(pl.col("x") + 5.0)
    recent = _panel(rng, 10, 20, block=1, common_sd=0.0).with_columns(
        pl.col("date") + dt.timedelta(days=20)
    )
    result = drift_test(ref, pl.concat([old, recent]))
    assert result.table["n_current"].to_list() == [200]
    assert result.sessions == tuple(recent["date"].unique().sort().to_list())
    assert result.table.equals(drift_test(ref, recent).table)
    assert drift_test(ref, old).drifted == ["x"]


def test_argument_errors_name_the_fix():
    ref = psi_reference(pl.DataFrame({"x": [1.0, 2.0]}), ["x"], bins=2)
    with pytest.raises(ValueError, match="min_rows must be >= 1"):
        drift_test(ref, pl.DataFrame({"x": [1.0]}), min_rows=0)
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        drift_test(ref, pl.DataFrame({"x": [1.0]}), alpha=1.0)
    with pytest.raises(ValueError, match="lack feature column 'x'"):
        drift_test(ref, pl.DataFrame({"y": [1.0]}))
    with pytest.raises(ValueError, match="window_sessions must be >= 1"):
        psi_reference(pl.DataFrame({"x": [1.0]}), ["x"], window_sessions=0)
