"""risk_table: figures equal the component functions applied to each ticker's own history,
nulls (never NaN/inf) for short histories, and no look-ahead: rows after as_of never matter."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphadag.risk import (
    RISK_TABLE_SCHEMA,
    ewma_sigma,
    garch_volatility,
    historical_var_cvar,
    max_drawdown,
    parametric_var_cvar,
    risk_table,
)

FIGURES = ("vol_forecast", "var_95", "cvar_95", "var_99", "cvar_99", "max_drawdown")
START = dt.date(2015, 1, 1)


def make_bars(lengths: dict[str, int], n_days: int, seed: int = 0) -> pl.DataFrame:
    """Each ticker's last ``n`` of ``n_days`` consecutive days, fat-tailed random-walk closes."""
    rng = np.random.default_rng(seed)
    days = [START + dt.timedelta(days=i) for i in range(n_days)]
    frames = []
    for ticker, n in lengths.items():
        close = 40 * np.cumprod(1 + 0.012 * rng.standard_t(5, n))
        frames.append(
            pl.DataFrame(
                {
                    "ticker": ticker,
                    "date": days[n_days - n :],
                    "open": close,
                    "high": close,
                    "low": close,
                    "close": close,
                    "volume": 1e6,
                }
            )
        )
    return pl.concat(frames)


def history(bars: pl.DataFrame, ticker: str, as_of: dt.date) -> np.ndarray:
    return (
        bars.filter((pl.col("ticker") == ticker) & (pl.col("date") <= as_of))
        .sort("date")
        .get_column("close")
        .to_numpy()
    )


def test_schema_rows_and_order():
    bars = make_bars({"BBB": 300, "AAA": 300, "OLD": 250}, 300)
    as_of = START + dt.timedelta(days=299)
    bars = bars.filter(
        ~((pl.col("ticker") == "OLD") & (pl.col("date") > START + dt.timedelta(days=280)))
    )
    t = risk_table(bars, as_of)
    assert t.schema == pl.Schema(RISK_TABLE_SCHEMA)
    assert t["ticker"].to_list() == ["AAA", "BBB"]  # OLD has no bar on as_of
    assert t["date"].to_list() == [as_of, as_of]


def test_holiday_gives_an_empty_table():
    bars = make_bars({"AAA": 100}, 100)
    t = risk_table(bars, START + dt.timedelta(days=500))  # after the data: no bar on as_of
    assert t.height == 0 and t.schema == pl.Schema(RISK_TABLE_SCHEMA)


@pytest.mark.parametrize("var_method", ["auto", "filtered", "historical", "parametric"])
def test_figures_equal_the_component_functions(var_method):
    window, min_obs, min_hist = 120, 30, 100
    bars = make_bars({"LONG": 400, "MID": 90, "SHORT": 20}, 400, seed=4)
    as_of = START + dt.timedelta(days=399)
    t = risk_table(
        bars, as_of, window=window, min_obs=min_obs, min_hist_obs=min_hist, var_method=var_method
    )
    for row in t.iter_rows(named=True):
        close = history(bars, row["ticker"], as_of)
        r = close[1:] / close[:-1] - 1
        assert row["n_obs"] == r.size
        if r.size < min_obs:
            assert all(row[c] is None for c in (*FIGURES, "vol_method", "var_method"))
            continue
        sigma = float(ewma_sigma(r)[-1])
        assert row["vol_forecast"] == pytest.approx(sigma, rel=1e-10)
        assert row["vol_method"] == "ewma" and row["vol_fallback_reason"] is None
        assert row["max_drawdown"] == pytest.approx(
            max_drawdown(close, window=window + 1), rel=1e-12, abs=1e-15
        )
        w = r[-window:]
        # filtered historical simulation: each return over the EWMA forecast made the day before
        z = (r[1:] / ewma_sigma(r)[:-1])[-window:]
        used = {
            "auto": "historical" if w.size >= min_hist else "parametric",
            "filtered": "filtered" if z.size >= min_hist else "parametric",
        }.get(var_method, var_method)
        assert row["var_method"] == used
        for level, s in ((0.95, "95"), (0.99, "99")):
            if used == "historical":
                ref = historical_var_cvar(w, level)
            elif used == "filtered":
                std = historical_var_cvar(z, level)  # of the standardised returns
                ref = std._replace(var=sigma * std.var, cvar=sigma * std.cvar)
            else:
                ref = parametric_var_cvar(float(w.mean()), sigma, level)
            assert row[f"var_{s}"] == pytest.approx(ref.var, rel=1e-9, abs=1e-14)
            assert row[f"cvar_{s}"] == pytest.approx(ref.cvar, rel=1e-9, abs=1e-14)
    long_method = {"auto": "historical"}.get(var_method, var_method)
    assert t.filter(pl.col("ticker") == "LONG")["var_method"].item() == long_method


def test_default_var_method_is_filtered_historical_simulation():
    """The default chosen by the sample's backtest (bench/var_backtest.py); a short window is
    parametric until it holds min_hist_obs standardised returns."""
    bars = make_bars({"LONG": 400, "YOUNG": 90}, 400, seed=5)
    t = risk_table(bars, START + dt.timedelta(days=399))
    assert dict(t.select("ticker", "var_method").rows()) == {
        "LONG": "filtered",
        "YOUNG": "parametric",
    }


def test_row_order_and_extra_columns_do_not_matter():
    bars = make_bars({"A": 200, "B": 150, "C": 180}, 200, seed=8)
    as_of = START + dt.timedelta(days=170)
    ref = risk_table(bars, as_of)
    shuffled = bars.sample(fraction=1.0, shuffle=True, seed=1).with_columns(
        pl.lit("x").alias("note")
    )
    assert risk_table(shuffled, as_of).equals(ref)
    assert risk_table(shuffled.lazy(), as_of).equals(ref)


def test_missing_sessions_make_a_return_span_the_gap():
    bars = make_bars({"A": 100}, 100, seed=2)
    gappy = bars.filter(pl.col("date") != START + dt.timedelta(days=50))
    as_of = START + dt.timedelta(days=99)
    row = risk_table(gappy, as_of, min_obs=20).row(0, named=True)
    close = history(gappy, "A", as_of)
    assert row["n_obs"] == 98
    assert row["vol_forecast"] == pytest.approx(float(ewma_sigma(close[1:] / close[:-1] - 1)[-1]))


def test_garch_column_matches_garch_volatility_and_falls_back():
    bars = make_bars({"LONG": 700, "MID": 100}, 700, seed=6)
    as_of = START + dt.timedelta(days=699)
    t = risk_table(bars, as_of, vol_method="garch", garch_window=500, var_method="parametric")
    long_row = t.filter(pl.col("ticker") == "LONG").row(0, named=True)
    close = history(bars, "LONG", as_of)
    r = close[1:] / close[:-1] - 1
    fc = garch_volatility(r[-500:])
    assert fc.method == "garch"
    assert long_row["vol_method"] == "garch" and long_row["vol_fallback_reason"] is None
    assert long_row["vol_forecast"] == pytest.approx(fc.sigma, rel=1e-10)
    # parametric VaR is built on the GARCH sigma
    ref = parametric_var_cvar(float(r[-250:].mean()), fc.sigma, 0.99)
    assert long_row["var_99"] == pytest.approx(ref.var, rel=1e-10)
    mid = t.filter(pl.col("ticker") == "MID").row(0, named=True)  # 99 returns < garch_min_obs
    mid_close = history(bars, "MID", as_of)
    assert mid["vol_method"] == "ewma"
    assert "shorter than min_obs=250" in mid["vol_fallback_reason"]
    assert mid["vol_forecast"] == pytest.approx(
        float(ewma_sigma(mid_close[1:] / mid_close[:-1] - 1)[-1])
    )


# --- no look-ahead ------------------------------------------------------------------------------

N_DAYS = 60
KW = {"window": 20, "min_obs": 5, "min_hist_obs": 15}


@st.composite
def bars_and_as_of(draw):
    n_tickers = draw(st.integers(min_value=1, max_value=3))
    frames = []
    for i in range(n_tickers):
        first = draw(st.integers(min_value=0, max_value=N_DAYS - 1))
        n = N_DAYS - first
        rets = draw(st.lists(st.floats(min_value=-0.2, max_value=0.2), min_size=n, max_size=n))
        close = 100 * np.cumprod(1 + np.asarray(rets))
        days = [START + dt.timedelta(days=first + j) for j in range(n)]
        frames.append(pl.DataFrame({"ticker": f"T{i}", "date": days, "close": close}))
    bars = pl.concat(frames)
    cut = draw(st.integers(min_value=0, max_value=N_DAYS - 2))
    return bars, START + dt.timedelta(days=cut)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=bars_and_as_of(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_no_look_ahead(data, seed):
    bars, as_of = data
    ref = risk_table(bars, as_of, **KW)
    rng = np.random.default_rng(seed)
    future = pl.col("date") > as_of
    altered = bars.with_columns(
        pl.when(future)
        .then(pl.col("close") * pl.Series(rng.uniform(0.2, 5.0, bars.height)))
        .otherwise(pl.col("close"))
    )
    extra_days = [START + dt.timedelta(days=N_DAYS + j) for j in range(5)]
    appended = pl.concat(
        [
            altered,
            pl.DataFrame({"ticker": "T0", "date": extra_days, "close": rng.uniform(1, 1e3, 5)}),
            pl.DataFrame({"ticker": "NEW", "date": extra_days, "close": rng.uniform(1, 1e3, 5)}),
        ]
    )
    truncated = bars.filter(~future)
    for variant in (altered, appended, truncated):
        assert risk_table(variant, as_of, **KW).equals(ref)
    for row in ref.iter_rows(named=True):
        values = [row[c] for c in FIGURES]
        assert all(v is None or math.isfinite(v) for v in values)
        assert all(v is None for v in values) == (row["n_obs"] < KW["min_obs"])
        if row["var_95"] is not None:
            assert row["cvar_95"] >= row["var_95"] and row["cvar_99"] >= row["var_99"]


def test_no_look_ahead_garch():
    bars = make_bars({"A": 400}, 400, seed=3)
    as_of = START + dt.timedelta(days=350)
    ref = risk_table(bars, as_of, vol_method="garch")
    altered = bars.with_columns(
        pl.when(pl.col("date") > as_of).then(pl.col("close") * 3).otherwise(pl.col("close"))
    )
    assert ref["vol_method"].item() == "garch"
    assert risk_table(altered, as_of, vol_method="garch").equals(ref)


# --- argument and contract errors ---------------------------------------------------------------


def test_argument_and_contract_errors():
    bars = make_bars({"A": 80}, 80)
    as_of = START + dt.timedelta(days=79)
    with pytest.raises(TypeError, match=r"datetime\.date"):
        risk_table(bars, dt.datetime(2015, 3, 21))
    with pytest.raises(ValueError, match="vol_method"):
        risk_table(bars, as_of, vol_method="egarch")
    with pytest.raises(ValueError, match="var_method"):
        risk_table(bars, as_of, var_method="mc")
    with pytest.raises(ValueError, match="cannot exceed window"):
        risk_table(bars, as_of, window=30, min_obs=40)
    with pytest.raises(ValueError, match="lacks column 'close'"):
        risk_table(bars.drop("close"), as_of)
    with pytest.raises(ValueError, match="duplicate"):
        risk_table(pl.concat([bars, bars.tail(1)]), as_of)
    with pytest.raises(ValueError, match="> 0"):
        risk_table(
            bars.with_columns(
                pl.when(pl.col("date") == START)
                .then(-1.0)
                .otherwise(pl.col("close"))
                .alias("close")
            ),
            as_of,
        )
    with pytest.raises(TypeError, match="DataFrame"):
        risk_table(bars.to_pandas(), as_of)
    # a bad close after as_of is not read, so it is not an error for this as_of
    late = bars.with_columns(
        pl.when(pl.col("date") == as_of).then(None).otherwise(pl.col("close")).alias("close")
    )
    assert risk_table(late, as_of - dt.timedelta(days=1)).height == 1
