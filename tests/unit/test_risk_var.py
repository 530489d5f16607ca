"""One-day VaR/CVaR: parametric closed forms against scipy, historical against the closed form
on a large normal sample, the quantile convention against numpy, and CVaR >= VaR as a property."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from alphadag.risk import historical_var_cvar, normal_tail_constants, parametric_var_cvar


@pytest.mark.parametrize("level", [0.9, 0.95, 0.975, 0.99])
@pytest.mark.parametrize(
    ("mu", "sigma"), [(0.0, 0.01), (0.0005, 0.02), (-0.001, 0.003), (0.01, 0.0)]
)
def test_parametric_matches_scipy_closed_forms(level, mu, sigma):
    a = 1 - level
    z = norm.ppf(a)
    expected_var = -(mu + sigma * z)
    expected_cvar = -mu + sigma * norm.pdf(z) / a
    v = parametric_var_cvar(mu, sigma, level)
    assert v.var == pytest.approx(expected_var, rel=1e-12, abs=1e-15)
    assert v.cvar == pytest.approx(expected_cvar, rel=1e-12, abs=1e-15)


def test_parametric_cvar_is_the_normal_tail_mean():
    # independent of the closed form: E[-r | r <= q] by numerical integration with scipy
    mu, sigma, level = 0.0003, 0.015, 0.99
    q = norm.ppf(1 - level, mu, sigma)
    tail_mean = norm.expect(lambda x: x, loc=mu, scale=sigma, ub=q, conditional=True)
    assert parametric_var_cvar(mu, sigma, level).cvar == pytest.approx(-tail_mean, rel=1e-8)


def test_normal_tail_constants_match_scipy():
    for level in (0.95, 0.99):
        z, k = normal_tail_constants(level)
        assert z == pytest.approx(norm.ppf(1 - level), rel=1e-12)
        assert k == pytest.approx(norm.pdf(norm.ppf(1 - level)) / (1 - level), rel=1e-12)


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_historical_on_a_large_normal_sample_approaches_the_closed_form(level):
    n, mu, sigma = 400_000, 0.0004, 0.012
    x = np.random.default_rng(11).normal(mu, sigma, n)
    hist = historical_var_cvar(x, level)
    closed = parametric_var_cvar(mu, sigma, level)
    a = 1 - level
    # asymptotic standard errors of the empirical quantile and expected shortfall (normal data):
    #   se(Q) = sqrt(a (1 - a) / n) / f(Q);  se(ES) = sqrt((Var(L | L > VaR) + (1 - a)(ES - VaR)^2) / (n a))
    q = mu + sigma * norm.ppf(a)
    se_q = math.sqrt(a * (1 - a) / n) / norm.pdf(q, mu, sigma)
    tail_var = (
        norm.expect(lambda t: t * t, loc=mu, scale=sigma, ub=q, conditional=True)
        - (closed.cvar) ** 2
    )
    se_es = math.sqrt((tail_var + (1 - a) * (closed.cvar - closed.var) ** 2) / (n * a))
    # 5 standard errors: a false failure has probability ~6e-7 per check (fixed seed anyway)
    assert abs(hist.var - closed.var) < 5 * se_q
    assert abs(hist.cvar - closed.cvar) < 5 * se_es


def test_historical_quantile_convention_is_numpy_linear_and_tail_mean():
    x = np.random.default_rng(3).standard_t(4, 137) * 0.01
    for level in (0.95, 0.99):
        q = np.quantile(x, 1 - level, method="linear")
        v = historical_var_cvar(x, level)
        assert v.var == -q
        assert v.cvar == pytest.approx(-x[x <= q].mean(), rel=1e-14)


def test_historical_type7_by_hand():
    # sorted x: -4..5, n = 10, a = 0.05: h = 9 * 0.05 = 0.45 -> Q = -4 + 0.45 * 1 = -3.55
    x = [5.0, -4.0, 2.0, -3.0, 0.0, 1.0, -2.0, 3.0, -1.0, 4.0]
    v = historical_var_cvar(x, 0.95)
    assert v.var == pytest.approx(3.55)
    assert v.cvar == pytest.approx(4.0)


def test_historical_window_uses_the_trailing_returns():
    x = np.concatenate([np.full(50, -0.5), np.random.default_rng(0).normal(0, 0.01, 100)])
    assert historical_var_cvar(x, 0.95, window=100) == historical_var_cvar(x[-100:], 0.95)
    assert historical_var_cvar(x, 0.95).var > historical_var_cvar(x, 0.95, window=100).var


returns_lists = st.lists(
    st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=300,
)


@settings(max_examples=300)
@given(x=returns_lists, level=st.floats(min_value=0.5, max_value=0.999))
def test_historical_cvar_is_at_least_var(x, level):
    v = historical_var_cvar(x, level)
    assert math.isfinite(v.var) and math.isfinite(v.cvar)
    assert v.cvar >= v.var
    assert -max(x) <= v.var <= -min(x)


@given(
    mu=st.floats(min_value=-0.05, max_value=0.05),
    sigma=st.floats(min_value=0.0, max_value=0.2),
    level=st.floats(min_value=0.5, max_value=0.9999),
)
def test_parametric_cvar_is_at_least_var(mu, sigma, level):
    v = parametric_var_cvar(mu, sigma, level)
    assert v.cvar >= v.var - 1e-15


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1])
def test_level_out_of_range(level):
    with pytest.raises(ValueError, match="level"):
        parametric_var_cvar(0.0, 0.01, level)
    with pytest.raises(ValueError, match="level"):
        historical_var_cvar([0.01, -0.01], level)


def test_argument_errors():
    with pytest.raises(TypeError, match="level"):
        historical_var_cvar([0.01], "0.95")
    with pytest.raises(ValueError, match="sigma"):
        parametric_var_cvar(0.0, -0.01)
    with pytest.raises(ValueError, match="finite"):
        parametric_var_cvar(math.nan, 0.01)
    with pytest.raises(ValueError, match="empty"):
        historical_var_cvar([], 0.95)
    with pytest.raises(ValueError, match="NaN"):
        historical_var_cvar([0.01, math.nan], 0.95)
    with pytest.raises(ValueError, match="window"):
        historical_var_cvar([0.01, 0.02], 0.95, window=0)
    with pytest.raises(TypeError, match="1-d sequence"):
        historical_var_cvar(0.01, 0.95)
