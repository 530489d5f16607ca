"""The ``features`` table: TA-Lib-exact indicators and return/volatility signals for a bar panel.

:func:`features_plan` turns a ``bars`` LazyFrame (any number of tickers, sessions in any order)
into one lazy plan that computes every column of :data:`FEATURE_COLUMNS` per ticker in date
order, then the cross-sectional ranks per date; :func:`compute_features` collects it. A
ticker's series is simply its rows in date order, so a missing session is absent, not filled.
Every value at ``(ticker, t)`` depends only on that ticker's bars up to ``t`` (and, for the
``xs_rank_*`` columns, on the other tickers' same-day values): no look-ahead, which
:func:`alphadag.features.audit_lookahead` verifies. Warm-up rows are null, never NaN or inf.
Features that need high, low or volume are null for close-only tickers.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from alphadag.features import indicators as ind
from alphadag.features import kernels

__all__ = [
    "FEATURE_COLUMNS",
    "LOOKBACK_SESSIONS",
    "OHLCV_FEATURE_COLUMNS",
    "PATH_DEPENDENT_COLUMNS",
    "TALIB_COLUMNS",
    "WARMUP",
    "XS_RANK_SIGNALS",
    "compute_features",
    "features_plan",
]

TALIB_COLUMNS: tuple[str, ...] = (
    "sma_10",
    "sma_20",
    "sma_50",
    "ema_12",
    "ema_26",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper_20",
    "bb_mid_20",
    "bb_lower_20",
    "atr_14",
)
"""The contract's TA-Lib-named columns; each equals the TA-Lib function of the same name
(``SMA``, ``EMA``, ``RSI``, ``MACD(12, 26, 9)``, ``BBANDS(20, 2, 2, SMA)``, ``ATR``), warm-up
included. ``obv``, ``stoch_k`` and ``stoch_d`` also follow TA-Lib (``OBV``, ``STOCH(14, 3, 3)``)."""

XS_RANK_SIGNALS: tuple[str, ...] = ("roc_20", "rsi_14", "rvol_20", "zscore_20", "logret_5")
"""Signals ranked across tickers per date into ``xs_rank_<signal>``."""

_EXTRA_COLUMNS: tuple[str, ...] = (
    "obv",
    "stoch_k",
    "stoch_d",
    "roc_5",
    "roc_20",
    "roc_60",
    "mom_5",
    "mom_20",
    "mom_60",
    "logret_1",
    "logret_5",
    "logret_20",
    "rvol_20",
    "rvol_60",
    "zscore_20",
    "volume_z_20",
    "dist_52w_high",
    "dist_52w_low",
)

FEATURE_COLUMNS: tuple[str, ...] = (
    *TALIB_COLUMNS,
    *_EXTRA_COLUMNS,
    *(f"xs_rank_{signal}" for signal in XS_RANK_SIGNALS),
)
"""Every feature column, in output order (after ``ticker`` and ``date``); all Float64."""

OHLCV_FEATURE_COLUMNS: tuple[str, ...] = ("atr_14", "obv", "stoch_k", "stoch_d", "volume_z_20")
"""Features that need high, low or volume: null for close-only tickers."""

PATH_DEPENDENT_COLUMNS: tuple[str, ...] = ("obv",)
"""Columns whose *level* depends on the first row of the series given (a running total from
it), so a window of :data:`LOOKBACK_SESSIONS` reproduces their day-to-day changes but not their
level."""

WARMUP: dict[str, int] = {
    "sma_10": 9,
    "sma_20": 19,
    "sma_50": 49,
    "ema_12": 11,
    "ema_26": 25,
    "rsi_14": 14,
    "macd": 33,
    "macd_signal": 33,
    "macd_hist": 33,
    "bb_upper_20": 19,
    "bb_mid_20": 19,
    "bb_lower_20": 19,
    "atr_14": 14,
    "obv": 0,
    "stoch_k": 17,
    "stoch_d": 17,
    "roc_5": 5,
    "roc_20": 20,
    "roc_60": 60,
    "mom_5": 5,
    "mom_20": 20,
    "mom_60": 60,
    "logret_1": 1,
    "logret_5": 5,
    "logret_20": 20,
    "rvol_20": 20,
    "rvol_60": 60,
    "zscore_20": 19,
    "volume_z_20": 19,
    "dist_52w_high": 251,
    "dist_52w_low": 251,
    **{
        f"xs_rank_{s}": w
        for s, w in {
            "roc_20": 20,
            "rsi_14": 14,
            "rvol_20": 20,
            "zscore_20": 19,
            "logret_5": 5,
        }.items()
    },
}
"""Leading rows of a ticker (0-based index of the first value) during which each column is null
on complete data: TA-Lib's lookback for the TA-Lib-defined columns. The ``features`` null check
allows a null only inside this warm-up (or for OHLCV columns on close-only rows)."""

LOOKBACK_SESSIONS = 600
"""Earlier sessions a one-day computation must read to reproduce the full-history features.

The longest window is 252 rows (``dist_52w_*``); the recursive terms forget their start
geometrically: after ``m`` rows a difference in the seed is multiplied by ``(1 - alpha)**m``,
worst for Wilder's ``alpha = 1/14`` (RSI, ATR): ``(13/14)**(600 - 14) < 1e-18``, and
``(25/27)**(600 - 25) < 1e-19`` for the slow MACD EMA. The margin matters because MACD and its
histogram cross zero, where a relative error is unforgiving: with 300 sessions they still differ
by ~1e-8 relative, with 450 by ~1e-12. Computed from the last ``LOOKBACK_SESSIONS + 1`` rows of a
ticker, every column except the running total ``obv`` (see :data:`PATH_DEPENDENT_COLUMNS`)
equals the full-history value within 1e-9 relative (in practice ~1e-15: the recursions become
bit-identical, rolling sums differ in the last bits because they run from their first row);
``tests/unit/test_features.py`` checks it. The guarantee is per row of a ticker: a ticker that
skipped sessions needs as many earlier *rows*.
"""

_KEYS = ("ticker", "date")
_REQUIRED = ("ticker", "date", "close")
_ANNUALISE = math.sqrt(252.0)
_FLAT_STD = 1e-10  # a std below this fraction of |mean| is rounding noise: the series is flat


def _zscore(value: pl.Expr, mean: pl.Expr, std: pl.Expr) -> pl.Expr:
    """``(value - mean) / std`` with 0 for a flat window (std zero or rounding noise)."""
    flat = std <= _FLAT_STD * mean.abs()
    return pl.when(flat).then(0.0).when(std.is_not_null()).then((value - mean) / std)


def check_bars_frame(bars: object) -> pl.LazyFrame:
    """``bars`` as a LazyFrame with ticker, date (pl.Date) and close, or a clear error."""
    if isinstance(bars, pl.DataFrame):
        lf = bars.lazy()
    elif isinstance(bars, pl.LazyFrame):
        lf = bars
    else:
        raise TypeError(f"bars must be a polars DataFrame or LazyFrame, got {type(bars).__name__}")
    schema = lf.collect_schema()
    missing = [c for c in _REQUIRED if c not in schema]
    if missing:
        raise ValueError(
            f"bars lack required column(s) {missing}; expected the bars contract "
            f"(ticker, date, open, high, low, close, volume), got {list(schema)}"
        )
    if schema["date"] != pl.Date:
        raise ValueError(f"bars.date must be pl.Date, got {schema['date']}")
    return lf


def _inputs(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Keys and Float64 values; absent or invalid values become null."""
    schema = lf.collect_schema()
    prices = [  # open is in the contract but no feature reads it
        (pl.col(c).cast(pl.Float64) if c in schema else pl.lit(None, dtype=pl.Float64)).alias(c)
        for c in ("high", "low", "close")
    ]
    volume = pl.col("volume").cast(pl.Float64) if "volume" in schema else pl.lit(None, pl.Float64)
    return lf.select(
        pl.col("ticker").cast(pl.String), pl.col("date"), *prices, volume.alias("volume")
    ).with_columns(
        # a price must be finite and > 0, a volume finite and >= 0: anything else is missing
        *[
            pl.when(pl.col(c).is_finite() & (pl.col(c) > 0.0)).then(pl.col(c)).alias(c)
            for c in ("high", "low", "close")
        ],
        pl.when(pl.col("volume").is_finite() & (pl.col("volume") >= 0.0))
        .then(pl.col("volume"))
        .alias("volume"),
    )


_BB_DEVIATION = "_bb_mid_20__dev"  # bbands' ``width * std`` column (width 2.0)


def _returns() -> ind.Stages:
    """roc/mom/logret (shifts) and rolling statistics of close and volume, all panel-safe."""
    close, volume = pl.col("close"), pl.col("volume")
    log_close = close.log()
    # shift(n) reads the close n rows EARLIER; after(.., n) keeps only rows whose shifted value
    # belongs to the same ticker: past data only, never a later session
    first = {
        **{f"roc_{n}": ind.after(close / close.shift(n) - 1.0, n) for n in (5, 20, 60)},
        **{f"mom_{n}": ind.after(close - close.shift(n), n) for n in (5, 20, 60)},
        **{f"logret_{n}": ind.after(log_close - log_close.shift(n), n) for n in (1, 5, 20)},
        "_vmean_20": ind.segmented(kernels.rolling_mean, "volume", args=(20,)),
        "_vstd_20": ind.segmented(kernels.rolling_std, "volume", args=(20, 0)),
        "dist_52w_high": ind.after(close / close.rolling_max(252) - 1.0, 251),
        "dist_52w_low": ind.after(close / close.rolling_min(252) - 1.0, 251),
    }
    second = {
        # logret_1 starts at row 1, so a full window of n returns ends at row n
        **{
            f"rvol_{n}": ind.segmented(kernels.rolling_std, "logret_1", args=(n, 1)) * _ANNUALISE
            for n in (20, 60)
        },
        # the 20-row mean and population std of close are the Bollinger middle band and half
        # its deviation column (``std * 2.0``: halving is exact), computed once in the first stage
        "zscore_20": _zscore(close, pl.col("bb_mid_20"), pl.col(_BB_DEVIATION) / 2.0),
        "volume_z_20": _zscore(volume, pl.col("_vmean_20"), pl.col("_vstd_20")),
    }
    return [first, second]


def _xs_rank(signal: str) -> pl.Expr:
    """``rank("average").over("date") / count().over("date")`` of ``signal``, as one
    :func:`alphadag.features.kernels.xs_rank` pass (a counting sort of the rows by day, then
    the dates in parallel) instead of two hash-grouped windows: bit-identical, ~5x faster."""

    def apply(series: list[pl.Series]) -> pl.Series:
        values, days = series
        x = np.asarray(values.to_numpy(), dtype=np.float64)
        return pl.Series(kernels.xs_rank(x, days.to_numpy()), nan_to_null=True)

    # a null date (none in valid bars) groups with the other null dates, as over("date") does
    days = pl.col("date").to_physical().cast(pl.Int64).fill_null(np.iinfo(np.int64).min)
    return pl.map_batches([pl.col(signal).cast(pl.Float64), days], apply, return_dtype=pl.Float64)


def _xs_ranks() -> ind.Stages:
    # cross-sectional: a date's rank reads only that date's values of the other tickers
    return [{f"xs_rank_{s}": _xs_rank(s) for s in XS_RANK_SIGNALS}]


def _indicators() -> ind.Stages:
    """Every feature as one staged plan (see :mod:`alphadag.features.indicators`)."""
    per_ticker = ind.parallel(
        ind.sma("close", 10, out="sma_10"),
        [{}, {"sma_20": pl.col("bb_mid_20")}],  # SMA(20) is the Bollinger middle band
        ind.sma("close", 50, out="sma_50"),
        ind.ema("close", 12, out="ema_12"),
        ind.ema("close", 26, out="ema_26"),
        ind.rsi("close", 14, out="rsi_14"),
        ind.macd("close", 12, 26, 9, out=("macd", "macd_signal", "macd_hist")),
        ind.bbands("close", 20, 2.0, out=("bb_upper_20", "bb_mid_20", "bb_lower_20")),
        ind.atr("high", "low", "close", 14, out="atr_14"),
        ind.obv("close", "volume", out="obv"),
        ind.stoch("high", "low", "close", 14, 3, 3, out=("stoch_k", "stoch_d")),
        _returns(),
    )
    return ind.then(per_ticker, _xs_ranks())


def features_plan(bars: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """The lazy plan of :func:`compute_features` (``ticker``, ``date``, :data:`FEATURE_COLUMNS`).

    Rows are sorted by ``(ticker, date)``. See :func:`compute_features` for the definitions.

    >>> import datetime as dt
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
    ...                      "close": [10.0, 11.0]})
    >>> features_plan(bars).collect()["logret_1"].round(12).to_list()
    [None, 0.095310179804]
    """
    panel = ind.prepare(_inputs(check_bars_frame(bars)))
    return ind.run(panel, _indicators()).select(*_KEYS, *FEATURE_COLUMNS)


def compute_features(bars: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Compute the feature table for a panel of bars, one lazy plan for all tickers.

    Output: ``ticker``, ``date``, then :data:`FEATURE_COLUMNS` (all Float64), sorted by
    ``(ticker, date)``. Each ticker's series is its rows in date order (a missing session is
    absent). Null means "not defined yet or not defined for this ticker"; no value is NaN or inf.

    - TA-Lib columns (:data:`TALIB_COLUMNS`, plus ``obv``, ``stoch_k``, ``stoch_d``): TA-Lib's
      definitions, seeding and warm-up exactly (see :mod:`alphadag.features.indicators`).
    - ``roc_n = close / close[t-n] - 1``, ``mom_n = close - close[t-n]``,
      ``logret_n = ln(close / close[t-n])``.
    - ``rvol_n``: sample standard deviation of ``logret_1`` over ``n`` rows times sqrt(252).
    - ``zscore_20``: ``(close - SMA20) / population std20``; ``volume_z_20`` the same for volume;
      0 on a flat window.
    - ``dist_52w_high`` / ``dist_52w_low``: ``close / max (min) close of the last 252 rows - 1``.
    - ``xs_rank_<signal>`` for :data:`XS_RANK_SIGNALS`: the signal's average rank among the
      tickers that have it that date, divided by their count, so in ``(0, 1]``; null where the
      signal is null.

    Features needing high, low or volume (:data:`OHLCV_FEATURE_COLUMNS`) are null for close-only
    tickers. A non-finite or non-positive price, or a negative volume, counts as missing. Input
    rows must be unique per ``(ticker, date)`` (the validated ``bars`` are). ``obv`` is a running
    total from a ticker's first row (:data:`PATH_DEPENDENT_COLUMNS`); every other column needs
    only the last :data:`LOOKBACK_SESSIONS` rows.

    Parameters
    ----------
    bars:
        A ``bars`` DataFrame or LazyFrame: ``ticker``, ``date`` (pl.Date) and ``close``
        required; ``high``, ``low``, ``volume`` optional (treated as null if absent); other
        columns (``open``, ``origin``, ...) are ignored.

    >>> import datetime as dt
    >>> days = [dt.date(2024, 1, 1) + dt.timedelta(days=k) for k in range(30)]
    >>> bars = pl.DataFrame({"ticker": "AAA", "date": days, "close": [float(k + 1) for k in range(30)]})
    >>> out = compute_features(bars)
    >>> out.columns[:4], out.height
    (['ticker', 'date', 'sma_10', 'sma_20'], 30)
    >>> out.select("sma_10", "rsi_14", "atr_14").row(29)
    (25.5, 100.0, None)
    """
    # The in-memory engine: the streaming engine's chunk boundaries depend on the frame's height and
    # can change the last bit of a value, which would break byte-identical partitions.
    return features_plan(bars).collect(engine="in-memory")
