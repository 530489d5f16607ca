"""The ``features`` contract, checked before anything trains or serves on it.

:func:`check_features` runs the pandera (polars) schema (``ticker``, ``date``, every feature column
Float64, finite wherever present) and the null rule: a feature may be null only inside its warm-up
(:data:`~alphadag.features.compute.WARMUP` rows of the ticker), for OHLCV features where the
ticker's high/low/volume history is still inside the warm-up (close-only tickers forever), and for
a cross-sectional rank where its signal is null. Anything else is a hole the models would silently
eat, so it fails the blocking check with the offending rows as failure cases.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from alphadag.features.compute import (
    FEATURE_COLUMNS,
    OHLCV_FEATURE_COLUMNS,
    WARMUP,
    XS_RANK_SIGNALS,
)
from alphadag.market.contracts import SchemaReport, schema_failure_cases


def _finite(data: pa.PolarsData) -> pl.LazyFrame:
    col = pl.col(data.key)
    return data.lazyframe.select(col.is_null() | col.is_finite())


def features_schema() -> pa.DataFrameSchema:
    """dtypes and finiteness of the ``features`` table (nulls allowed; see :func:`null_violations`).

    >>> import datetime as dt
    >>> row = {"ticker": ["AAPL"], "date": [dt.date(2024, 1, 2)]}
    >>> frame = pl.DataFrame({**row, **{c: [None] for c in FEATURE_COLUMNS}},
    ...     schema={"ticker": pl.String, "date": pl.Date, **dict.fromkeys(FEATURE_COLUMNS, pl.Float64)})
    >>> features_schema().validate(frame).height
    1
    """
    columns = {
        "ticker": pa.Column(pl.String),
        "date": pa.Column(pl.Date),
        **{
            c: pa.Column(pl.Float64, pa.Check(_finite, name="finite"), nullable=True)
            for c in FEATURE_COLUMNS
        },
    }
    return pa.DataFrameSchema(
        columns, unique=["ticker", "date"], strict=True, ordered=True, name="features"
    )


def row_context(bars: pl.DataFrame) -> pl.DataFrame:
    """Per (ticker, date): 1-based row count of the ticker so far, and of rows with full OHLCV.

    >>> import datetime as dt
    >>> b = pl.DataFrame({"ticker": ["A", "A"], "date": [dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
    ...     "open": [None, 1.0], "high": [None, 1.0], "low": [None, 1.0], "close": [1.0, 1.0],
    ...     "volume": [None, 5.0]})
    >>> row_context(b)["n_ohlcv"].to_list()
    [0, 1]
    """
    full = pl.all_horizontal(pl.col(c).is_not_null() for c in ("open", "high", "low", "volume"))
    # A run of complete rows restarts after any row missing open/high/low/volume: an OHLCV
    # feature's window is in warm-up again after a gap (a vendor's missing volume, say).
    return (
        bars.sort("ticker", "date")
        .with_columns(_full=full)
        .with_columns(_gap=(~pl.col("_full")).cast(pl.Int64).cum_sum().over("ticker"))
        .with_columns(
            # Counts run forward in date order only: a row's context never sees later rows.
            n_obs=pl.int_range(1, pl.len() + 1).over("ticker"),
            n_ohlcv=pl.col("_full").cast(pl.Int64).cum_sum().over("ticker", "_gap"),
        )
        .select("ticker", "date", "n_obs", "n_ohlcv")
    )


def null_violations(features: pl.DataFrame, context: pl.DataFrame) -> pl.DataFrame:
    """Rows and columns where a feature is null outside what the null rule allows.

    ``context`` is :func:`row_context` of the bars the features came from. Returns ``ticker``,
    ``date``, ``column``, ``n_obs``; empty when the rule holds.
    """
    joined = features.join(context, on=["ticker", "date"], how="left")
    rank_signal = {f"xs_rank_{s}": s for s in XS_RANK_SIGNALS}
    frames = []
    for col in (c for c in FEATURE_COLUMNS if c in features.columns):  # missing: schema fails
        warm = WARMUP[col]
        allowed = pl.col("n_obs") <= warm
        if col in OHLCV_FEATURE_COLUMNS:
            allowed = allowed | (pl.col("n_ohlcv") <= warm)
        if col in rank_signal:
            signal = rank_signal[col]
            if signal in joined.columns:
                allowed = allowed | pl.col(signal).is_null()
        bad = joined.filter(pl.col(col).is_null() & ~allowed.fill_null(False))
        if bad.height:
            frames.append(bad.select("ticker", "date", pl.lit(col).alias("column"), "n_obs"))
    if not frames:
        return pl.DataFrame(
            schema={"ticker": pl.String, "date": pl.Date, "column": pl.String, "n_obs": pl.Int64}
        )
    return pl.concat(frames)


def check_features(features: pl.DataFrame, bars: pl.DataFrame) -> SchemaReport:
    """Validate ``features`` (computed from ``bars``): pandera schema plus the null rule."""
    cases = schema_failure_cases(features_schema(), features)
    nulls = null_violations(features, row_context(bars))
    cases.extend(
        {
            "column": r["column"],
            "check": "null_outside_warmup",
            "failure_case": f"{r['ticker']} {r['date']} (row {r['n_obs']} of the ticker)",
            "index": None,
        }
        for r in nulls.head(1000).iter_rows(named=True)
    )
    return SchemaReport(success=not cases, rows=features.height, failure_cases=cases)
