"""Volatility forecasts: EWMA against a plain loop (one series and per ticker), GARCH against
arch's own one-step forecast computed here, and the EWMA fallback paths."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from arch import arch_model
from hypothesis import given
from hypothesis import strategies as st

from alphadag.risk import (
    GARCH_MIN_OBS,
    ewma_sigma,
    ewma_volatility,
    garch_volatility,
    simple_returns,
)


def loop_ewma_sigma(r, lam):
    """RiskMetrics recursion written out: s2_0 = r_0^2, s2_t = lam s2_{t-1} + (1 - lam) r_t^2."""
    out, s2 = [], None
    for x in r:
        s2 = x * x if s2 is None else lam * s2 + (1 - lam) * x * x
        out.append(math.sqrt(s2))
    return out


def garch_returns(n, seed=5, omega=2e-6, alpha=0.08, beta=0.9):
    rng = np.random.default_rng(seed)
    r, h = np.empty(n), omega / (1 - alpha - beta)
    for t in range(n):
        r[t] = math.sqrt(h) * rng.standard_normal()
        h = omega + alpha * r[t] ** 2 + beta * h
    return r


@given(
    r=st.lists(st.floats(min_value=-0.3, max_value=0.3), min_size=1, max_size=200),
    lam=st.floats(min_value=0.5, max_value=0.999),
)
def test_ewma_sigma_matches_a_loop(r, lam):
    np.testing.assert_allclose(
        ewma_sigma(r, lam=lam), loop_ewma_sigma(r, lam), rtol=1e-10, atol=1e-300
    )


def test_ewma_volatility_per_ticker_matches_the_loop_and_ignores_row_order():
    rng = np.random.default_rng(1)
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    frames = []
    for ticker, n in (("A", 40), ("B", 25), ("C", 1)):
        close = 50 * np.cumprod(1 + rng.normal(0, 0.02, n))
        frames.append(pl.DataFrame({"ticker": ticker, "date": days[-n:], "close": close}))
    bars = pl.concat(frames).sample(fraction=1.0, shuffle=True, seed=3)
    out = ewma_volatility(simple_returns(bars), lam=0.94)
    assert out.height == bars.height
    for ticker, g in out.sort("date").group_by("ticker"):
        close = g.get_column("close").to_numpy()
        r = close[1:] / close[:-1] - 1
        vol = g.get_column("vol_ewma").to_list()
        assert vol[0] is None, ticker
        np.testing.assert_allclose(vol[1:], loop_ewma_sigma(r, 0.94), rtol=1e-12)


def test_ewma_volatility_lazy_in_lazy_out():
    f = pl.DataFrame(
        {
            "ticker": ["A", "A"],
            "date": [dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
            "close": [1.0, 2.0],
        }
    )
    out = ewma_volatility(simple_returns(f.lazy()))
    assert isinstance(out, pl.LazyFrame)
    assert out.collect().get_column("vol_ewma").to_list() == [None, 1.0]


@pytest.mark.parametrize("mean", ["Zero", "Constant"])
def test_garch_matches_arch_forecast(mean):
    r = garch_returns(1500)
    fc = garch_volatility(r, mean=mean)
    assert fc.method == "garch" and fc.fallback_reason is None and fc.n_obs == r.size
    res = arch_model(100 * r, mean=mean, vol="GARCH", p=1, q=1, dist="normal", rescale=False).fit(
        disp="off"
    )
    expected = math.sqrt(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]) / 100
    assert fc.sigma == pytest.approx(expected, rel=1e-10)
    # and the GARCH(1,1) recursion by hand from the fitted parameters and last state
    p = res.params
    e = res.resid[-1]
    h_next = p["omega"] + p["alpha[1]"] * e**2 + p["beta[1]"] * res.conditional_volatility[-1] ** 2
    assert fc.sigma == pytest.approx(math.sqrt(h_next) / 100, rel=1e-8)
    assert fc.params["alpha[1]"] == pytest.approx(p["alpha[1]"])


def test_garch_recovers_true_persistence_roughly():
    fc = garch_volatility(garch_returns(5000, seed=9))
    # alpha + beta of the generator is 0.98; MLE on 5,000 points is within a few hundredths
    assert abs(fc.params["alpha[1]"] + fc.params["beta[1]"] - 0.98) < 0.03


def test_garch_falls_back_to_ewma_on_short_history():
    r = garch_returns(GARCH_MIN_OBS - 1)
    fc = garch_volatility(r)
    assert fc.method == "ewma"
    assert "shorter than min_obs=250" in fc.fallback_reason
    assert fc.sigma == pytest.approx(loop_ewma_sigma(r, 0.94)[-1], rel=1e-12)
    assert garch_volatility(r, min_obs=100).method == "garch"


def test_garch_falls_back_on_a_degenerate_series():
    fc = garch_volatility(np.zeros(300))
    assert fc.method == "ewma" and fc.sigma == 0.0 and fc.fallback_reason


class _FakeModel:
    """Stands in for arch's model: ``fit`` raises or returns a result with a given flag."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.calls = []

    def __call__(self, y, **kwargs):
        self.calls.append((np.asarray(y).copy(), kwargs))
        return self

    def fit(self, **kwargs):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class _Result:
    convergence_flag = 4


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [(_Result(), "did not converge (flag 4)"), (ValueError("bad data"), "fit failed: ValueError")],
)
def test_garch_falls_back_when_the_fit_fails(monkeypatch, outcome, reason):
    import arch

    fake = _FakeModel(outcome)
    monkeypatch.setattr(arch, "arch_model", fake)
    r = garch_returns(300)
    fc = garch_volatility(r, lam=0.9)
    assert fc.method == "ewma" and reason in fc.fallback_reason
    assert fc.sigma == pytest.approx(loop_ewma_sigma(r, 0.9)[-1], rel=1e-12)
    ((y, kwargs),) = fake.calls
    np.testing.assert_allclose(y, 100 * r)  # the optimiser sees percent returns
    assert kwargs == {
        "mean": "Zero",
        "vol": "GARCH",
        "p": 1,
        "q": 1,
        "dist": "normal",
        "rescale": False,
    }


def test_volatility_argument_errors():
    with pytest.raises(ValueError, match="lam"):
        ewma_sigma([0.01], lam=1.0)
    with pytest.raises(TypeError, match="lam"):
        ewma_sigma([0.01], lam="0.94")
    with pytest.raises(ValueError, match="mean"):
        garch_volatility(garch_returns(300), mean="AR")
    with pytest.raises(ValueError, match="min_obs"):
        garch_volatility(garch_returns(300), min_obs=2)
    with pytest.raises(ValueError, match="NaN"):
        ewma_sigma([0.01, math.inf])
    with pytest.raises(TypeError, match="DataFrame"):
        simple_returns({"close": [1.0]})
