"""Bar schemas: the raw table as delivered, the validated ``bars`` contract and the quarantine table.

Column names are public API (see docs/ARCHITECTURE.md). ``raw_bars`` keeps the vendor's ticker
string, an ``origin`` (file path, dataset or generator) and, in ``parse_errors``, the vendor's text
of every value that is not a number, so a rejected row can always be traced back to what was
delivered; ``bars`` has canonical tickers and only the contract columns.
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

RAW_BARS_SCHEMA: dict[str, pl.DataType] = {
    **BARS_SCHEMA,
    "origin": pl.String(),
    "parse_errors": pl.String(),
}
"""``raw_bars``: the contract columns as delivered (any values), where each row came from, and the
vendor's text of the values that did not parse (``"volume='12abc' is not a number"``; null when
every value parsed)."""

NULL_TOKENS: tuple[str, ...] = ("", "-", "na", "n/a", "#n/a", "null", "none")
"""Text a vendor writes for *no value* (compared stripped and lower-cased): read as null, not as
a parse error. ``nan`` and ``inf`` are numbers (and rejected later as not finite)."""

_RAW_TEXT_LIMIT = 80

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


def _parse_number(col: str) -> tuple[pl.Expr, pl.Expr]:
    """``col`` (text) as Float64, and the error naming the raw text where it is not a number."""
    text = pl.col(col).str.strip_chars()
    missing = text.is_null() | text.str.to_lowercase().is_in(list(NULL_TOKENS))
    value = pl.when(missing).then(None).otherwise(text).cast(pl.Float64, strict=False)
    raw = pl.col(col)
    shown = (
        pl.when(raw.str.len_chars() > _RAW_TEXT_LIMIT)
        .then(pl.concat_str([raw.str.slice(0, _RAW_TEXT_LIMIT), pl.lit("...")]))
        .otherwise(raw)
    )
    error = pl.when(~missing & value.is_null()).then(
        pl.format("{}='{}' is not a number", pl.lit(col), shown)
    )
    return value.alias(col), error


def conform_raw(frame: pl.DataFrame, origin: str | None = None) -> pl.DataFrame:
    """Cast a source's frame to :data:`RAW_BARS_SCHEMA`, adding missing value columns as nulls.

    A text value column is parsed as a number after stripping blanks; a :data:`NULL_TOKENS` value
    (``""``, ``"N/A"``, ...) is null. Text that is not a number becomes null *and* is recorded with
    its column in ``parse_errors`` (``"volume='12abc' is not a number"``, several joined by
    ``"; "``), so validation quarantines the row with the vendor's value (rule ``non_numeric``)
    instead of the fetch crashing or the value vanishing. A ``parse_errors`` column already in
    ``frame`` is kept (and extended).

    >>> row = conform_raw(pl.DataFrame({"ticker": ["a"], "date": ["2020-01-02"], "close": ["1.5"],
    ...     "volume": ["12abc"]}), origin="x").row(0)
    >>> row[:-1]
    ('a', datetime.date(2020, 1, 2), None, None, None, 1.5, None, 'x')
    >>> row[-1]
    "volume='12abc' is not a number"
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
    errors: list[pl.Expr] = []
    if "parse_errors" in frame.columns:
        errors.append(pl.col("parse_errors").cast(pl.String))
    for col in VALUE_COLUMNS:
        if col not in frame.columns:
            exprs.append(pl.lit(None, dtype=pl.Float64).alias(col))
        elif frame.schema[col] == pl.String:
            value, error = _parse_number(col)
            exprs.append(value)
            errors.append(error)
        else:
            exprs.append(pl.col(col).cast(pl.Float64, strict=False))
    if "origin" in frame.columns:
        exprs.append(pl.col("origin").cast(pl.String))
    else:
        exprs.append(pl.lit(origin, dtype=pl.String).alias("origin"))
    joined = (
        pl.concat_str(errors, separator="; ", ignore_nulls=True)
        if errors
        else pl.lit(None, pl.String)
    )
    exprs.append(pl.when(joined != "").then(joined).alias("parse_errors"))
    return frame.select(exprs)
