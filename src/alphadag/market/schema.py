"""Bar schemas: the raw table as delivered, the validated ``bars`` contract and the quarantine table.

Column names are public API (see DESIGN.md). ``raw_bars`` keeps the vendor's ticker string and an
``origin`` (file path, dataset or generator) so a rejected row can always be traced back; ``bars``
has canonical tickers and only the contract columns.
"""

from __future__ import annotations

import polars as pl

PRICE_COLUMNS = ("open", "high", "low", "close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "volume")

BARS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "date": pl.Date(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}
"""The ``bars`` contract: canonical ticker, session date, adjusted OHLC (> 0) and volume (>= 0)."""

RAW_BARS_SCHEMA: dict[str, pl.DataType] = {**BARS_SCHEMA, "origin": pl.String()}
"""``raw_bars``: the contract columns as delivered (any values) plus where each row came from."""

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    **RAW_BARS_SCHEMA,
    "partition_date": pl.Date(),
    "rule": pl.String(),
    "value": pl.String(),
    "failed_rules": pl.List(pl.String()),
    "reason": pl.String(),
}
"""``quarantined_bars``: a rejected raw row, the first rule it failed with the offending value, all
rules it failed, and a message naming origin, ticker, date and rule."""


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with ``schema``."""
    return pl.DataFrame(schema=schema)


def conform_raw(frame: pl.DataFrame, origin: str | None = None) -> pl.DataFrame:
    """Cast a source's frame to :data:`RAW_BARS_SCHEMA`, adding missing value columns as nulls.

    Values are cast non-strictly, so a vendor's unparseable number becomes null (and is then
    quarantined by the ``*_present`` rules) rather than crashing the fetch.

    >>> conform_raw(pl.DataFrame({"ticker": ["a"], "date": ["2020-01-02"], "close": ["1.5"]}),
    ...             origin="x").row(0)
    ('a', datetime.date(2020, 1, 2), None, None, None, 1.5, None, 'x')
    """
    missing = [c for c in ("ticker", "date") if c not in frame.columns]
    if missing:
        raise ValueError(f"source frame lacks required column(s) {missing}; has {frame.columns}")
    exprs: list[pl.Expr] = [pl.col("ticker").cast(pl.String)]
    date_dtype = frame.schema["date"]
    if date_dtype == pl.String:
        exprs.append(pl.col("date").str.to_date(strict=False))
    else:
        exprs.append(pl.col("date").cast(pl.Date, strict=False))
    for col in VALUE_COLUMNS:
        if col in frame.columns:
            exprs.append(pl.col(col).cast(pl.Float64, strict=False))
        else:
            exprs.append(pl.lit(None, dtype=pl.Float64).alias(col))
    if "origin" in frame.columns:
        exprs.append(pl.col("origin").cast(pl.String))
    else:
        exprs.append(pl.lit(origin, dtype=pl.String).alias("origin"))
    return frame.select(exprs)
