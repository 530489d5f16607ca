"""Split-conformal intervals: the finite-sample rank, empirical coverage on synthetic data with
known noise (homoscedastic, and heteroscedastic with the normalised variant), argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphadag.risk import conformal_interval, conformal_quantile, min_calibration_size

COVERAGE = 0.9
TOLERANCE = 0.03  # the brief's 3 percentage points; the Monte-Carlo error here is ~0.2 pp


def f(x):
    return 0.02 * np.sin(3 * x) + 0.01 * x


@pytest.mark.parametrize("n", [9, 10, 19, 99, 100, 101, 1000])
def test_rank_is_ceil_n_plus_one_times_coverage(n):
    scores = np.arange(1, n + 1, dtype=float)  # the k-th smallest |residual| is k
    rng = np.random.default_rng(n)
    residuals = scores * rng.choice([-1.0, 1.0], n)
    k = math.ceil(round((n + 1) * COVERAGE, 9))
    assert conformal_quantile(rng.permutation(residuals), COVERAGE) == float(k)


def test_min_calibration_size():
    for c in (0.5, 0.8, 0.9, 0.95, 0.99):
        n = min_calibration_size(c)
        assert math.ceil(round((n + 1) * c, 9)) <= n
        assert math.ceil(round(n * c, 9)) > n - 1
    with pytest.raises(ValueError, match="need at least 9"):
        conformal_quantile(np.ones(8), 0.9)


def _model_and_calibration(rng, n_cal, noise):
    """A fitted predictor (here the true f, as a perfectly-fit model would be) and residuals."""
    x = rng.uniform(-2, 2, n_cal)
    sigma = noise(x)
    y = f(x) + rng.normal(0, 1, n_cal) * sigma
    return y - f(x), sigma


def test_coverage_homoscedastic():
    rng = np.random.default_rng(2024)
    covered = total = 0
    for _ in range(300):  # 300 "dates", each with its own calibration set and 200 new points
        res, _ = _model_and_calibration(rng, 250, lambda x: np.full_like(x, 0.01))
        q = conformal_quantile(res, COVERAGE)
        x = rng.uniform(-2, 2, 200)
        y = f(x) + rng.normal(0, 0.01, 200)
        lo, hi = conformal_interval(f(x), q)
        covered += int(((lo <= y) & (y <= hi)).sum())
        total += y.size
    assert abs(covered / total - COVERAGE) < TOLERANCE
    # the guarantee is >= coverage in expectation, < coverage + 1/(n+1); a tight check too
    assert COVERAGE - 0.005 < covered / total < COVERAGE + 1 / 251 + 0.005


def test_normalised_coverage_under_heteroscedastic_noise():
    def noise(x):
        return 0.002 + 0.02 * (x + 2) / 4  # from 0.2% to 2.2% across x

    rng = np.random.default_rng(7)
    hits = {"normalised": [], "plain": []}
    sig_all = []
    for _ in range(300):
        res, sig = _model_and_calibration(rng, 250, noise)
        q_norm = conformal_quantile(res, COVERAGE, scale=sig)
        q_plain = conformal_quantile(res, COVERAGE)
        x = rng.uniform(-2, 2, 200)
        s = noise(x)
        y = f(x) + rng.normal(0, 1, 200) * s
        for name, (lo, hi) in (
            ("normalised", conformal_interval(f(x), q_norm, scale=s)),
            ("plain", conformal_interval(f(x), q_plain)),
        ):
            hits[name].append((lo <= y) & (y <= hi))
        sig_all.append(s)
    sig = np.concatenate(sig_all)
    calm, wild = sig < np.median(sig), sig >= np.median(sig)
    norm_hit = np.concatenate(hits["normalised"])
    plain_hit = np.concatenate(hits["plain"])
    # marginally both are calibrated; only the normalised one is calibrated on calm and wild days
    assert abs(norm_hit.mean() - COVERAGE) < TOLERANCE
    assert abs(plain_hit.mean() - COVERAGE) < TOLERANCE
    assert abs(norm_hit[calm].mean() - COVERAGE) < TOLERANCE
    assert abs(norm_hit[wild].mean() - COVERAGE) < TOLERANCE
    assert plain_hit[wild].mean() < COVERAGE - 0.05  # the constant-width interval under-covers
    assert plain_hit[calm].mean() > COVERAGE + 0.05


@given(
    res=st.lists(st.floats(min_value=-1, max_value=1), min_size=19, max_size=200),
    coverage=st.floats(min_value=0.5, max_value=0.95),
)
def test_calibration_points_are_covered_at_least_at_the_nominal_rate(res, coverage):
    q = conformal_quantile(res, coverage)
    lo, hi = conformal_interval(np.zeros(len(res)), q)
    inside = (lo <= np.asarray(res)) & (np.asarray(res) <= hi)
    assert inside.mean() >= coverage - 1e-12  # k >= (n + 1) c points have |e| <= q


def test_interval_shapes_and_scalars():
    lo, hi = conformal_interval(0.01, 2.0, scale=0.005)
    assert lo == pytest.approx(0.0) and hi == pytest.approx(0.02)
    lo, hi = conformal_interval(np.zeros(3), 1.0, scale=np.array([1.0, 2.0, 3.0]))
    assert lo.tolist() == [-1.0, -2.0, -3.0] and hi.tolist() == [1.0, 2.0, 3.0]


def test_argument_errors():
    with pytest.raises(ValueError, match="coverage"):
        conformal_quantile(np.ones(100), 1.0)
    with pytest.raises(ValueError, match="scale"):
        conformal_quantile(np.ones(100), 0.9, scale=np.zeros(100))
    with pytest.raises(ValueError, match="one per residual"):
        conformal_quantile(np.ones(100), 0.9, scale=np.ones(99))
    with pytest.raises(ValueError, match="NaN"):
        conformal_quantile([math.nan] * 20, 0.9)
    with pytest.raises(ValueError, match="q must be finite"):
        conformal_interval([0.0], -1.0)
    with pytest.raises(TypeError, match="q must be a number"):
        conformal_interval([0.0], "1")
    with pytest.raises(ValueError, match="does not broadcast"):
        conformal_interval(np.zeros(3), 1.0, scale=np.ones(2))
    with pytest.raises(ValueError, match="scale"):
        conformal_interval([0.0], 1.0, scale=[-0.01])
