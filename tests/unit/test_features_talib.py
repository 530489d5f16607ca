"""Every TA-Lib-defined feature against the ``talib`` package itself, ticker by ticker.

The reference values come only from ``talib`` (never from the code under test): real sample
data (two OHLCV indices and close-only large caps in one mixed panel) and hypothesis price paths
of 1 to 400 rows with flat stretches (zero changes, zero ranges, constant volume) that reach the
zero-division guards. A value must equal TA-Lib's within ``rtol=1e-9`` (plus an absolute
tolerance of 1e-12 of the column's natural scale, for values that cross zero), and be null
exactly where TA-Lib returns NaN.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphadag.features import OHLCV_FEATURE_COLUMNS, TALIB_COLUMNS, compute_features

TALIB_DEFINED = (*TALIB_COLUMNS, "obv", "stoch_k", "stoch_d")
RTOL = 1e-9
ATOL_FRACTION = 1e-12  # of the column's scale: price level, 100 for oscillators, total volume


def talib_reference(
    close: np.ndarray, high: np.ndarray | None, low: np.ndarray | None, volume: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The TA-Lib outputs named like the feature columns (all-NaN where inputs are missing)."""
    macd, signal, hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    out = {
        "sma_10": talib.SMA(close, 10),
        "sma_20": talib.SMA(close, 20),
        "sma_50": talib.SMA(close, 50),
        "ema_12": talib.EMA(close, 12),
        "ema_26": talib.EMA(close, 26),
        "rsi_14": talib.RSI(close, 14),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_upper_20": upper,
        "bb_mid_20": middle,
        "bb_lower_20": lower,
    }
    nan = np.full(close.shape, np.nan)
    if high is None or low is None:
        out.update(atr_14=nan, stoch_k=nan, stoch_d=nan)
    else:
        slow_k, slow_d = talib.STOCH(high, low, close, 14, 3, 0, 3, 0)
        out.update(atr_14=talib.ATR(high, low, close, 14), stoch_k=slow_k, stoch_d=slow_d)
    out["obv"] = nan if volume is None else talib.OBV(close, volume)
    return out


def column_scale(name: str, close: np.ndarray, volume: np.ndarray | None) -> float:
    if name in ("rsi_14", "stoch_k", "stoch_d"):
        return 100.0
    if name == "obv":
        return float(np.sum(np.abs(volume))) if volume is not None else 1.0
    return float(np.max(np.abs(close)))


def assert_matches_talib(features: pl.DataFrame, bars: pl.DataFrame) -> int:
    """Compare every TA-Lib-defined column per ticker; return the number of values compared."""
    compared = 0
    for (ticker,), rows in bars.sort("ticker", "date").group_by("ticker", maintain_order=True):
        mine = features.filter(pl.col("ticker") == ticker).sort("date")
        assert mine["date"].to_list() == rows["date"].to_list()
        close = rows["close"].to_numpy()
        has_ohlc = rows["high"].is_not_null().all() and rows["low"].is_not_null().all()
        has_volume = rows["volume"].is_not_null().all()
        high = rows["high"].to_numpy() if has_ohlc else None
        low = rows["low"].to_numpy() if has_ohlc else None
        volume = rows["volume"].to_numpy() if has_volume else None
        reference = talib_reference(close, high, low, volume)
        for name in TALIB_DEFINED:
            expected = reference[name]
            got = mine[name]
            assert got.is_nan().sum() == 0, f"{ticker} {name}: NaN in output"
            got_null = got.is_null().to_numpy()
            want_null = np.isnan(expected)
            bad = np.flatnonzero(got_null != want_null)
            assert bad.size == 0, (
                f"{ticker} {name}: null where TA-Lib has a value (or the reverse) at rows "
                f"{bad[:10].tolist()} of {len(close)}"
            )
            values = got.to_numpy()[~want_null]
            atol = ATOL_FRACTION * column_scale(name, close, volume)
            np.testing.assert_allclose(
                values, expected[~want_null], rtol=RTOL, atol=atol, err_msg=f"{ticker} {name}"
            )
            compared += values.size
    return compared


# -- real sample data -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_bars() -> pl.DataFrame:
    from alphadag.market.sources.sample import SampleSource

    raw = SampleSource().fetch(dt.date(2012, 1, 1), dt.date(2018, 12, 31))
    return raw.drop("origin")


def test_sample_panel_matches_talib(sample_bars: pl.DataFrame) -> None:
    features = compute_features(sample_bars)
    compared = assert_matches_talib(features, sample_bars)
    assert compared > 300_000  # 22 tickers x ~1,760 sessions x 16 columns, minus nulls


def test_sample_indices_have_ohlcv_features_and_stocks_do_not(sample_bars: pl.DataFrame) -> None:
    features = compute_features(sample_bars)
    for ticker in ("^GSPC", "^IXIC"):
        rows = features.filter(pl.col("ticker") == ticker)
        assert rows.select(pl.col(OHLCV_FEATURE_COLUMNS).is_not_null().sum()).row(0) > (1000,) * 5
    stock = features.filter(pl.col("ticker") == "AAPL")
    assert stock.select(pl.col(OHLCV_FEATURE_COLUMNS).is_null().all()).row(0) == (True,) * 5
    assert stock["atr_14"].is_null().all() and stock["macd"].is_not_null().sum() > 1000


# -- hypothesis price paths -------------------------------------------------------------------


@st.composite
def price_path(draw: st.DrawFn, max_len: int = 400) -> dict[str, np.ndarray]:
    """OHLCV of one ticker: segments of random walk, flat closes, zero-range bars, jumps."""
    n = draw(st.integers(min_value=1, max_value=max_len))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    start = draw(st.sampled_from([0.5, 1.0, 37.25, 100.0, 2500.0]))
    flat_share = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    rng = np.random.default_rng(seed)
    log_ret = rng.normal(0.0, rng.choice([0.005, 0.02, 0.08]), n)
    # flat stretches: runs of exactly unchanged closes (zero gains and losses, zero variance)
    flat = np.zeros(n, dtype=bool)
    pos = 0
    while pos < n:
        run = int(rng.integers(1, 80))
        flat[pos : pos + run] = rng.random() < flat_share
        pos += run
    log_ret[flat] = 0.0
    log_ret[0] = 0.0
    close = start * np.exp(np.cumsum(log_ret))
    wick = np.abs(rng.normal(0.0, 0.01, (2, n)))
    wick[:, flat] = 0.0  # a flat bar has high == low == close: STOCH's zero range
    high = close * np.exp(wick[0])
    low = close * np.exp(-wick[1])
    volume = np.round(rng.uniform(0.0, 1e6, n))
    volume[flat] = 5e5
    return {"close": close, "high": high, "low": low, "volume": volume}


def to_bars(ticker: str, path: dict[str, np.ndarray], *, close_only: bool = False) -> pl.DataFrame:
    n = len(path["close"])
    days = pl.date_range(
        dt.date(2000, 1, 3), dt.date(2000, 1, 3) + dt.timedelta(days=n - 1), eager=True
    )
    nulls = pl.Series([None] * n, dtype=pl.Float64)
    return pl.DataFrame(
        {
            "ticker": [ticker] * n,
            "date": days,
            "open": nulls if close_only else path["close"],
            "high": nulls if close_only else path["high"],
            "low": nulls if close_only else path["low"],
            "close": path["close"],
            "volume": nulls if close_only else path["volume"],
        },
        schema={
            "ticker": pl.String,
            "date": pl.Date,
            **dict.fromkeys(("open", "high", "low", "close", "volume"), pl.Float64),
        },
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paths=st.lists(price_path(), min_size=1, max_size=3), close_only=st.booleans())
def test_generated_paths_match_talib(paths: list[dict[str, np.ndarray]], close_only: bool) -> None:
    # several tickers of different lengths in one panel, the last one close-only if drawn
    frames = [
        to_bars(f"T{k}", path, close_only=close_only and k == len(paths) - 1)
        for k, path in enumerate(paths)
    ]
    bars = pl.concat(frames).sort("date", "ticker")
    assert_matches_talib(compute_features(bars), bars)


@pytest.mark.parametrize("n", [1, 13, 14, 15, 17, 18, 19, 20, 25, 26, 33, 34, 50])
def test_warmup_boundaries_match_talib(n: int) -> None:
    rng = np.random.default_rng(n)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    path = {"close": close, "high": close * 1.01, "low": close * 0.99, "volume": np.full(n, 1e3)}
    bars = to_bars("W", path)
    assert_matches_talib(compute_features(bars), bars)


def test_flat_series_hits_every_zero_guard() -> None:
    n = 120
    close = np.full(n, 42.0)
    path = {"close": close, "high": close, "low": close, "volume": np.full(n, 7.0)}
    bars = to_bars("F", path)
    features = compute_features(bars)
    assert_matches_talib(features, bars)
    last = features.row(n - 1, named=True)
    assert last["rsi_14"] == 0.0 and last["stoch_k"] == 0.0
    assert last["bb_upper_20"] == last["bb_lower_20"] == 42.0
    assert last["zscore_20"] == 0.0 and last["volume_z_20"] == 0.0


def test_warmup_table_matches_talib_lookbacks():
    """WARMUP (used by the features null check) is TA-Lib's own lookback for its functions."""
    from talib import abstract

    from alphadag.features import WARMUP

    expected = {
        "sma_10": abstract.Function("SMA", timeperiod=10).lookback,
        "sma_20": abstract.Function("SMA", timeperiod=20).lookback,
        "sma_50": abstract.Function("SMA", timeperiod=50).lookback,
        "ema_12": abstract.Function("EMA", timeperiod=12).lookback,
        "ema_26": abstract.Function("EMA", timeperiod=26).lookback,
        "rsi_14": abstract.Function("RSI", timeperiod=14).lookback,
        "macd": abstract.Function("MACD", fastperiod=12, slowperiod=26, signalperiod=9).lookback,
        "bb_mid_20": abstract.Function("BBANDS", timeperiod=20, nbdevup=2.0, nbdevdn=2.0).lookback,
        "atr_14": abstract.Function("ATR", timeperiod=14).lookback,
        "obv": abstract.Function("OBV").lookback,
        "stoch_k": abstract.Function(
            "STOCH", fastk_period=14, slowk_period=3, slowd_period=3
        ).lookback,
        "roc_20": abstract.Function("ROC", timeperiod=20).lookback,
        "mom_60": abstract.Function("MOM", timeperiod=60).lookback,
    }
    assert {k: WARMUP[k] for k in expected} == expected
    assert WARMUP["macd_signal"] == WARMUP["macd_hist"] == expected["macd"]
    assert WARMUP["bb_upper_20"] == WARMUP["bb_lower_20"] == expected["bb_mid_20"]
    assert WARMUP["stoch_d"] == expected["stoch_k"]
