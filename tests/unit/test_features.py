"""Properties of ``compute_features``: schema, finiteness, close-only tickers, no cross-ticker
leakage, cross-sectional ranks, gaps, argument errors and the ``LOOKBACK_SESSIONS`` guarantee."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphadag.features import (
    FEATURE_COLUMNS,
    LOOKBACK_SESSIONS,
    OHLCV_FEATURE_COLUMNS,
    PATH_DEPENDENT_COLUMNS,
    TALIB_COLUMNS,
    XS_RANK_SIGNALS,
    compute_features,
    features_plan,
)
from alphadag.market.schema import BARS_SCHEMA
from alphadag.market.sources.synthetic import SyntheticSource

XS_COLUMNS = tuple(f"xs_rank_{s}" for s in XS_RANK_SIGNALS)
PER_TICKER_COLUMNS = tuple(c for c in FEATURE_COLUMNS if c not in XS_COLUMNS)
CLOSE_COLUMNS = tuple(c for c in PER_TICKER_COLUMNS if c not in OHLCV_FEATURE_COLUMNS)


def synthetic_bars(
    n_tickers: int = 5, start: str = "2019-01-02", end: str = "2020-12-31", seed: int = 11
) -> pl.DataFrame:
    src = SyntheticSource(n_tickers=n_tickers, start=start, end=end, seed=seed)
    return src.fetch(src.start, src.end).drop("origin")


def close_only(bars: pl.DataFrame, tickers: list[str]) -> pl.DataFrame:
    """Null open/high/low/volume for ``tickers``, as a close-only source delivers them."""
    is_close_only = pl.col("ticker").is_in(tickers)
    return bars.with_columns(
        pl.when(~is_close_only).then(pl.col(c)).alias(c) for c in ("open", "high", "low", "volume")
    )


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    """Five synthetic tickers over two years, two of them close-only."""
    return close_only(synthetic_bars(), ["SYN003", "SYN004"])


@pytest.fixture(scope="module")
def features(panel: pl.DataFrame) -> pl.DataFrame:
    return compute_features(panel)


# -- schema ----------------------------------------------------------------------------------


def test_columns_dtypes_and_order(panel: pl.DataFrame, features: pl.DataFrame) -> None:
    assert features.columns == ["ticker", "date", *FEATURE_COLUMNS]
    assert features.schema["ticker"] == pl.String and features.schema["date"] == pl.Date
    assert all(features.schema[c] == pl.Float64 for c in FEATURE_COLUMNS)
    assert features.height == panel.height
    assert features.select("ticker", "date").equals(
        features.select("ticker", "date").sort("ticker", "date")
    )
    assert set(TALIB_COLUMNS) <= set(FEATURE_COLUMNS) and len(set(FEATURE_COLUMNS)) == len(
        FEATURE_COLUMNS
    )


def test_lazy_input_and_row_order_do_not_matter(
    panel: pl.DataFrame, features: pl.DataFrame
) -> None:
    shuffled = panel.sample(fraction=1.0, shuffle=True, seed=5)
    assert compute_features(shuffled.lazy()).equals(features)
    assert isinstance(features_plan(panel), pl.LazyFrame)


def test_warmup_lengths_on_a_full_ohlcv_ticker(features: pl.DataFrame) -> None:
    rows = features.filter(pl.col("ticker") == "SYN000")
    first_value = {c: rows[c].is_null().arg_min() for c in FEATURE_COLUMNS if c not in XS_COLUMNS}
    assert first_value == {
        "sma_10": 9, "sma_20": 19, "sma_50": 49, "ema_12": 11, "ema_26": 25, "rsi_14": 14,
        "macd": 33, "macd_signal": 33, "macd_hist": 33,
        "bb_upper_20": 19, "bb_mid_20": 19, "bb_lower_20": 19, "atr_14": 14,
        "obv": 0, "stoch_k": 17, "stoch_d": 17,
        "roc_5": 5, "roc_20": 20, "roc_60": 60, "mom_5": 5, "mom_20": 20, "mom_60": 60,
        "logret_1": 1, "logret_5": 5, "logret_20": 20, "rvol_20": 20, "rvol_60": 60,
        "zscore_20": 19, "volume_z_20": 19, "dist_52w_high": 251, "dist_52w_low": 251,
    }  # fmt: skip


def test_return_definitions(panel: pl.DataFrame, features: pl.DataFrame) -> None:
    close = panel.filter(pl.col("ticker") == "SYN001").sort("date")["close"].to_numpy()
    rows = features.filter(pl.col("ticker") == "SYN001")
    t = 300
    assert rows["roc_20"][t] == pytest.approx(close[t] / close[t - 20] - 1.0, rel=1e-12)
    assert rows["mom_60"][t] == pytest.approx(close[t] - close[t - 60], rel=1e-12)
    assert rows["logret_5"][t] == pytest.approx(np.log(close[t] / close[t - 5]), rel=1e-12)
    logret = np.diff(np.log(close))
    assert rows["rvol_20"][t] == pytest.approx(
        np.std(logret[t - 20 : t], ddof=1) * np.sqrt(252), rel=1e-9
    )
    window = close[t - 19 : t + 1]
    assert rows["zscore_20"][t] == pytest.approx(
        (close[t] - window.mean()) / window.std(), rel=1e-9
    )
    year = close[t - 251 : t + 1]
    assert rows["dist_52w_high"][t] == pytest.approx(close[t] / year.max() - 1.0, rel=1e-12)
    assert rows["dist_52w_low"][t] == pytest.approx(close[t] / year.min() - 1.0, rel=1e-12)
    volume = panel.filter(pl.col("ticker") == "SYN001").sort("date")["volume"].to_numpy()
    vol_window = volume[t - 19 : t + 1]
    assert rows["volume_z_20"][t] == pytest.approx(
        (volume[t] - vol_window.mean()) / vol_window.std(), rel=1e-9
    )


# -- close-only tickers and no cross-ticker leakage ------------------------------------------


def test_close_only_tickers_have_null_ohlcv_features(features: pl.DataFrame) -> None:
    for ticker in ("SYN003", "SYN004"):
        rows = features.filter(pl.col("ticker") == ticker)
        assert rows.select(pl.col(OHLCV_FEATURE_COLUMNS).is_null().all()).row(0) == (True,) * len(
            OHLCV_FEATURE_COLUMNS
        )
        filled = rows.tail(100).select(pl.col(CLOSE_COLUMNS).is_not_null().all()).row(0)
        assert filled == (True,) * len(CLOSE_COLUMNS)
    full = features.filter(pl.col("ticker") == "SYN000").tail(100)
    assert full.select(pl.col(OHLCV_FEATURE_COLUMNS).is_not_null().all()).row(0) == (True,) * len(
        OHLCV_FEATURE_COLUMNS
    )


def test_bars_without_ohlv_columns_work() -> None:
    bars = synthetic_bars(n_tickers=2).select("ticker", "date", "close")
    out = compute_features(bars)
    assert out.select(pl.col(OHLCV_FEATURE_COLUMNS).is_null().all()).row(0) == (True,) * len(
        OHLCV_FEATURE_COLUMNS
    )
    assert out["rsi_14"].is_not_null().sum() > 0


def test_mixed_panel_equals_each_ticker_alone(panel: pl.DataFrame, features: pl.DataFrame) -> None:
    for ticker in panel["ticker"].unique().sort():
        alone = compute_features(panel.filter(pl.col("ticker") == ticker)).select(
            PER_TICKER_COLUMNS
        )
        in_panel = features.filter(pl.col("ticker") == ticker).select(PER_TICKER_COLUMNS)
        assert in_panel.equals(alone), ticker


def test_very_different_price_levels_do_not_contaminate_each_other() -> None:
    bars = synthetic_bars(n_tickers=3, end="2019-12-31")
    scale = {"SYN000": 1e-4, "SYN001": 1.0, "SYN002": 1e7}
    scaled = bars.with_columns(
        pl.col(c) * pl.col("ticker").replace_strict(scale, return_dtype=pl.Float64)
        for c in ("open", "high", "low", "close")
    )
    together = compute_features(scaled)
    for ticker in scale:
        alone = compute_features(scaled.filter(pl.col("ticker") == ticker)).select(
            PER_TICKER_COLUMNS
        )
        assert together.filter(pl.col("ticker") == ticker).select(PER_TICKER_COLUMNS).equals(alone)


def test_a_missing_session_is_simply_absent(panel: pl.DataFrame, features: pl.DataFrame) -> None:
    dropped = sorted(panel["date"].unique())[200]
    gapped = panel.filter(~((pl.col("ticker") == "SYN001") & (pl.col("date") == dropped)))
    out = compute_features(gapped)
    assert (
        out.filter(pl.col("ticker") == "SYN001").height
        == features.filter(pl.col("ticker") == "SYN001").height - 1
    )
    # the gapped ticker's series is its remaining rows, in date order
    alone = compute_features(gapped.filter(pl.col("ticker") == "SYN001"))
    assert (
        out.filter(pl.col("ticker") == "SYN001")
        .select(PER_TICKER_COLUMNS)
        .equals(alone.select(PER_TICKER_COLUMNS))
    )
    # other tickers' own features are untouched
    others = pl.col("ticker") != "SYN001"
    assert (
        out.filter(others)
        .select(PER_TICKER_COLUMNS)
        .equals(features.filter(others).select(PER_TICKER_COLUMNS))
    )


# -- finiteness --------------------------------------------------------------------------------


@st.composite
def messy_panel(draw: st.DrawFn) -> pl.DataFrame:
    """Tickers with extreme, flat, tiny-volume or single-row histories (and some invalid values)."""
    n_tickers = draw(st.integers(1, 4))
    frames = []
    for k in range(n_tickers):
        n = draw(st.integers(1, 120))
        seed = draw(st.integers(0, 2**32 - 1))
        level = draw(st.sampled_from([1e-6, 1e-2, 1.0, 1e4, 1e9]))
        sigma = draw(st.sampled_from([0.0, 1e-9, 0.01, 0.5]))
        rng = np.random.default_rng(seed)
        close = level * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
        high = close * np.exp(np.abs(rng.normal(0.0, sigma, n)))
        low = close * np.exp(-np.abs(rng.normal(0.0, sigma, n)))
        volume = draw(st.sampled_from([0.0, 1.0, 1e9])) * rng.integers(0, 2, n)
        if draw(st.booleans()):  # a few invalid values, as unvalidated data might carry
            bad = rng.integers(0, n, max(1, n // 10))
            close[bad] = rng.choice([np.nan, np.inf, -1.0, 0.0], bad.size)
        frames.append(
            pl.DataFrame(
                {
                    "ticker": f"T{k}",
                    "date": pl.date_range(
                        dt.date(2001, 1, 1),
                        dt.date(2001, 1, 1) + dt.timedelta(days=n - 1),
                        eager=True,
                    ),
                    "open": close,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume.astype(float),
                },
                schema_overrides=BARS_SCHEMA,
            )
        )
    return pl.concat(frames)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bars=messy_panel())
def test_no_nan_or_inf_anywhere(bars: pl.DataFrame) -> None:
    out = compute_features(bars)
    assert out.height == bars.height
    finite_or_null = out.select(
        pl.col(FEATURE_COLUMNS).is_finite().or_(pl.col(FEATURE_COLUMNS).is_null()).all()
    )
    assert finite_or_null.row(0) == (True,) * len(FEATURE_COLUMNS)
    in_unit_interval = out.select(
        ((pl.col(XS_COLUMNS) > 0.0) & (pl.col(XS_COLUMNS) <= 1.0)).fill_null(True).all()
    )
    assert in_unit_interval.row(0) == (True,) * len(XS_COLUMNS)


# -- cross-sectional ranks ----------------------------------------------------------------------


def test_xs_ranks_are_in_unit_interval_and_ordered_like_the_signal(features: pl.DataFrame) -> None:
    for signal in XS_RANK_SIGNALS:
        rank = f"xs_rank_{signal}"
        # null exactly where the signal is null
        assert features.filter(pl.col(signal).is_null() != pl.col(rank).is_null()).height == 0
        ranked = features.filter(pl.col(rank).is_not_null())
        assert ranked[rank].min() > 0.0 and ranked[rank].max() <= 1.0
        per_date = ranked.group_by("date").agg(
            pl.col(rank).max().alias("top"),
            pl.len().alias("n"),
            # sorted by the signal, ranks never decrease
            pl.col(rank).sort_by(signal).diff().min().fill_null(0.0).alias("min_step"),
            pl.col(rank).min().alias("bottom"),
        )
        assert (per_date["top"] == 1.0).all()
        assert (per_date["min_step"] >= 0.0).all()
        assert (per_date["bottom"] == 1.0 / per_date["n"]).all()


def test_xs_rank_ties_share_the_average_rank() -> None:
    day = dt.date(2024, 1, 2)
    bars = pl.DataFrame({"ticker": ["A", "B", "C"], "date": [day] * 3, "close": [1.0, 2.0, 3.0]})
    out = compute_features(bars)
    # one row per ticker: every signal is null, so every rank is null
    assert out.select(pl.col(XS_COLUMNS).is_null().all()).row(0) == (True,) * len(XS_COLUMNS)
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=k) for k in range(21)]
    two = pl.DataFrame(
        {
            "ticker": ["A"] * 21 + ["B"] * 21 + ["C"] * 21,
            "date": days * 3,
            "close": [1.0 + k for k in range(21)] * 2 + [1.0 + 2 * k for k in range(21)],
        }
    )
    last = compute_features(two).filter(pl.col("date") == days[-1]).sort("ticker")
    assert last["xs_rank_roc_20"].to_list() == [0.5, 0.5, 1.0]


# -- argument errors ------------------------------------------------------------------------------


def test_argument_errors() -> None:
    with pytest.raises(TypeError, match="DataFrame or LazyFrame"):
        compute_features({"close": [1.0]})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"lack required column\(s\) \['close'\]"):
        compute_features(pl.DataFrame({"ticker": ["A"], "date": [dt.date(2024, 1, 2)]}))
    with pytest.raises(ValueError, match=r"pl\.Date"):
        compute_features(pl.DataFrame({"ticker": ["A"], "date": ["2024-01-02"], "close": [1.0]}))


def test_empty_bars_give_an_empty_table() -> None:
    out = compute_features(pl.DataFrame(schema=BARS_SCHEMA))
    assert out.height == 0 and out.columns == ["ticker", "date", *FEATURE_COLUMNS]


# -- LOOKBACK_SESSIONS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_history() -> tuple[pl.DataFrame, pl.DataFrame, list[dt.date]]:
    """Four tickers (one close-only) over eight years: bars, full-history features, sessions."""
    bars = close_only(
        synthetic_bars(n_tickers=4, start="2014-01-02", end="2021-12-31", seed=3), ["SYN002"]
    )
    sessions = sorted(bars["date"].unique())
    return bars, compute_features(bars), sessions


def one_day(bars: pl.DataFrame, sessions: list[dt.date], k: int, lookback: int) -> pl.DataFrame:
    """Features of session ``k`` (and ``k - 1``) from the last ``lookback + 1`` sessions only."""
    window = bars.filter(pl.col("date").is_between(sessions[k - lookback], sessions[k]))
    return compute_features(window).filter(pl.col("date") >= sessions[k - 1])


def max_relative_gap(
    got: pl.DataFrame, want: pl.DataFrame, columns: tuple[str, ...]
) -> dict[str, float]:
    gaps = {}
    for column in columns:
        a, b = got[column].to_numpy(), want[column].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"null positions differ in {column}"
        ok = ~np.isnan(b)
        gaps[column] = float(
            np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-3), initial=0.0)
        )
    return gaps


def test_lookback_reproduces_full_history(long_history) -> None:
    bars, full, sessions = long_history
    compared = [c for c in FEATURE_COLUMNS if c not in PATH_DEPENDENT_COLUMNS]
    days = np.linspace(LOOKBACK_SESSIONS, len(sessions) - 1, 40).astype(int)
    for k in days:
        got = one_day(bars, sessions, int(k), LOOKBACK_SESSIONS)
        want = full.filter(pl.col("date").is_between(sessions[k - 1], sessions[k]))
        assert got.select("ticker", "date").equals(want.select("ticker", "date"))
        for column in compared:
            np.testing.assert_allclose(
                got[column].to_numpy(), want[column].to_numpy(), rtol=1e-9, atol=1e-12,
                equal_nan=True, err_msg=f"{column} on {sessions[k]}",
            )  # fmt: skip
        # obv is a running total from the first row given: its level moves, its changes do not
        got_step = got.group_by("ticker").agg(pl.col("obv").diff().last()).sort("ticker")
        want_step = want.group_by("ticker").agg(pl.col("obv").diff().last()).sort("ticker")
        np.testing.assert_allclose(
            got_step["obv"].to_numpy(), want_step["obv"].to_numpy(), rtol=1e-12
        )


def test_shorter_lookback_is_not_enough(long_history) -> None:
    # the check above can fail: with 300 sessions the MACD terms have not forgotten their seed
    bars, full, sessions = long_history
    worst = 0.0
    for k in np.linspace(LOOKBACK_SESSIONS, len(sessions) - 1, 10).astype(int):
        got = one_day(bars, sessions, int(k), 300)
        want = full.filter(pl.col("date").is_between(sessions[k - 1], sessions[k]))
        worst = max(worst, *max_relative_gap(got, want, ("macd", "macd_signal")).values())
    assert worst > 1e-9


# -- kernels -----------------------------------------------------------------------------------


def test_kernels_restart_on_each_ticker_and_zero_a_flat_window() -> None:
    from alphadag.features import kernels

    x = np.array([1.0, 5.0, 2.0, 2.0, 2.0, 7.0, 3.0, 4.0])
    idx = np.array([0, 1, 2, 3, 4, 0, 1, 2])  # two tickers: rows 0-4 and 5-7
    std = kernels.rolling_std(x, idx, 3, 0)
    assert np.isnan(std[[0, 1, 5, 6]]).all()
    np.testing.assert_allclose(std[[2, 3, 7]], [np.std(x[0:3]), np.std(x[1:4]), np.std(x[5:8])])
    assert std[4] == 0.0  # flat window after a non-flat one: exactly zero
    mean = kernels.rolling_mean(x, idx, 2)
    assert np.isnan(mean[[0, 5]]).all() and mean[6] == 5.0 and mean[1] == 3.0
    ewm = kernels.seeded_ewm(x, idx, 0.5, 2, 1)
    assert ewm[1] == 3.0 and ewm[2] == 2.5 and ewm[6] == 5.0 and ewm[7] == 4.5
    assert kernels.cum_sum(x, idx)[[4, 7]].tolist() == [12.0, 14.0]


def test_xs_rank_kernel_equals_polars_rank_over_date() -> None:
    """The counting-sort rank kernel is bit-identical to ``rank("average").over / count().over``
    (ties, nulls, day numbers and spread-out keys alike)."""
    from alphadag.features import kernels

    rng = np.random.default_rng(3)
    n = 50_000
    x = np.round(rng.normal(size=n), 1)  # many ties
    x[rng.random(n) < 0.1] = np.nan
    days = rng.integers(-400, 400, n)
    frame = pl.DataFrame({"d": days, "x": x}, nan_to_null=True)
    expected = frame.select(
        (pl.col("x").rank("average").over("d") / pl.col("x").count().over("d")).alias("r")
    )["r"]
    for key in (days, days * 10**12):  # the counting sort and the argsort path
        got = pl.Series("r", kernels.xs_rank(x, key.astype(np.int64)), nan_to_null=True)
        assert got.equals(expected)


def test_prepare_orders_by_ticker_then_date() -> None:
    """The single-key sort of ``prepare`` orders exactly as ``sort("ticker", "date")``."""
    from alphadag.features import indicators as ind

    days = [dt.date(1960, 1, 1) + dt.timedelta(days=k * 997) for k in range(40)]
    bars = pl.DataFrame(
        {"ticker": [t for _ in days for t in ("b", "A", "aa", "B")], "date": days * 4}
    ).sample(fraction=1.0, shuffle=True, seed=1)
    got = ind.prepare(bars.lazy()).collect()
    assert got.drop(ind.INDEX).equals(bars.sort("ticker", "date"))
    assert got[ind.INDEX].to_list() == [k for _ in range(4) for k in range(40)]
