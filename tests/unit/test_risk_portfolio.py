"""Top-k portfolio VaR/CVaR: weights, one asset equals its own VaR, the covariance form by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm

from alphadag.risk import historical_var_cvar, portfolio_var_cvar, top_k_weights


@given(
    signals=st.lists(
        st.one_of(st.none(), st.floats(min_value=-1, max_value=1)), min_size=1, max_size=40
    ),
    k=st.integers(min_value=1, max_value=50),
)
def test_top_k_weights_sum_to_one_and_pick_the_highest(signals, k):
    frame = pl.DataFrame(
        {"ticker": [f"T{i:02d}" for i in range(len(signals))], "signal": signals},
        schema={"ticker": pl.String, "signal": pl.Float64},
    )
    usable = [(s, t) for t, s in zip(frame["ticker"], signals, strict=True) if s is not None]
    if not usable:
        with pytest.raises(ValueError, match="usable"):
            top_k_weights(frame, k)
        return
    w = top_k_weights(frame, k)
    assert w.columns == ["ticker", "weight"]
    assert w.height == min(k, len(usable))
    assert w["weight"].sum() == pytest.approx(1.0)
    assert w["weight"].n_unique() == 1
    expected = [t for s, t in sorted(usable, key=lambda p: (-p[0], p[1]))[:k]]
    assert w["ticker"].to_list() == expected


def test_top_k_weights_errors():
    with pytest.raises(ValueError, match="one row per ticker"):
        top_k_weights(pl.DataFrame({"ticker": ["A", "A"], "signal": [1.0, 2.0]}), 1)
    with pytest.raises(ValueError, match="k must be"):
        top_k_weights(pl.DataFrame({"ticker": ["A"], "signal": [1.0]}), 0)
    with pytest.raises(ValueError, match="lacks column"):
        top_k_weights(pl.DataFrame({"ticker": ["A"]}), 1)
    nan = pl.DataFrame({"ticker": ["A", "B"], "signal": [float("nan"), 1.0]})
    assert top_k_weights(nan, 2)["ticker"].to_list() == ["B"]


def _returns(n=750, seed=0):
    rng = np.random.default_rng(seed)
    cov = np.array([[4.0, 1.2, -0.5], [1.2, 2.25, 0.3], [-0.5, 0.3, 1.0]]) * 1e-4
    return rng.multivariate_normal([0.0005, 0.0002, -0.0001], cov, n)


@pytest.mark.parametrize("method", ["historical", "parametric"])
@pytest.mark.parametrize("level", [0.95, 0.99])
def test_one_asset_portfolio_is_its_own_var(method, level):
    r = _returns()[:, 1]
    port = portfolio_var_cvar(r[:, None], [1.0], level=level, method=method)
    if method == "historical":
        assert port == historical_var_cvar(r, level)
    else:
        mu, sd = r.mean(), r.std(ddof=1)
        a = 1 - level
        assert port.var == pytest.approx(-(mu + sd * norm.ppf(a)), rel=1e-12)
        assert port.cvar == pytest.approx(-mu + sd * norm.pdf(norm.ppf(a)) / a, rel=1e-12)


def test_frame_input_with_top_k_weights_and_date_column():
    r = _returns()
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(len(r))]
    frame = pl.DataFrame({"date": days, "A": r[:, 0], "B": r[:, 1], "C": r[:, 2]})
    w = top_k_weights(pl.DataFrame({"ticker": ["A", "B", "C"], "signal": [0.3, -0.1, 0.2]}), 2)
    got = portfolio_var_cvar(frame.select("date", *w["ticker"]), w, level=0.99)
    assert got == historical_var_cvar(0.5 * r[:, 0] + 0.5 * r[:, 2], 0.99)
    # equal weights by default, and a mapping in any key order
    assert portfolio_var_cvar(frame) == portfolio_var_cvar(
        frame, {"C": 1 / 3, "A": 1 / 3, "B": 1 / 3}
    )


def test_parametric_uses_the_sample_covariance():
    r = _returns()
    w = np.array([0.5, 0.3, 0.2])
    sd = np.sqrt(
        sum(w[i] * w[j] * np.cov(r[:, i], r[:, j])[0, 1] for i in range(3) for j in range(3))
    )
    mu = (r @ w).mean()
    got = portfolio_var_cvar(r, w, level=0.95, method="parametric")
    assert got.var == pytest.approx(-(mu + sd * norm.ppf(0.05)), rel=1e-10)
    assert got.cvar >= got.var
    # diversification: the book's parametric VaR is below the weighted sum of the assets' VaRs
    singles = [portfolio_var_cvar(r[:, [i]], [1.0], method="parametric").var for i in range(3)]
    assert got.var < float(np.dot(w, singles))


def test_portfolio_argument_errors():
    r = _returns(50)
    with pytest.raises(ValueError, match="3 assets"):
        portfolio_var_cvar(r, [0.5, 0.5])
    with pytest.raises(ValueError, match="method"):
        portfolio_var_cvar(r, method="monte-carlo")
    with pytest.raises(ValueError, match="weights name tickers"):
        portfolio_var_cvar(pl.DataFrame({"A": r[:, 0]}), {"B": 1.0})
    with pytest.raises(ValueError, match="null"):
        portfolio_var_cvar(pl.DataFrame({"A": [0.01, None, 0.02]}))
    with pytest.raises(ValueError, match="at least 2 dates"):
        portfolio_var_cvar(r[:1])
    with pytest.raises(TypeError, match="DataFrame or a 2-d array"):
        portfolio_var_cvar([[0.01, 0.02]])
    with pytest.raises(TypeError, match="weights by ticker"):
        portfolio_var_cvar(r[:, :1], {"A": 1.0})
