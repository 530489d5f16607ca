"""The pandera (polars backend) schema of the ``bars`` contract, run as a blocking asset check.

pandera's polars backend validates *data* only on a collected ``pl.DataFrame`` (on a LazyFrame it
checks just the schema), so :func:`check_bars` always collects. Validation is lazy (every failure is
collected) and the failure cases come back as plain rows for Dagster metadata.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandera.polars as pa
import polars as pl

from alphadag.market.bars_rules import KEY, REQUIRED, VALUE_RULES, Bounds, Ordered, violated
from alphadag.market.schema import VALUE_COLUMNS
from alphadag.market.tickers import TICKER_PATTERN


def _column_check(rule: Bounds) -> pa.Check:
    def ok(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(~violated(rule, data.key))

    return pa.Check(ok, name=rule.check)


def _frame_check(rule: Ordered) -> pa.Check:
    def ok(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select((~violated(rule)).fill_null(True).alias(rule.name))

    return pa.Check(ok, name=rule.name)


def bars_schema(sessions: list[dt.date]) -> pa.DataFrameSchema:
    """The ``bars`` contract for the given sessions.

    >>> from alphadag.market.schema import BARS_SCHEMA
    >>> d = dt.date(2022, 12, 27)
    >>> ok = pl.DataFrame({"ticker": ["AAPL"], "date": [d], "open": [None], "high": [None],
    ...     "low": [None], "close": [130.0], "volume": [None]}, schema=BARS_SCHEMA)
    >>> bars_schema([d]).validate(ok).height
    1
    """
    # the value checks are built from the contract's rule list (alphadag.market.bars_rules)
    bounds = [r for r in VALUE_RULES if isinstance(r, Bounds)]
    columns = {
        "ticker": pa.Column(pl.String, pa.Check.str_matches(TICKER_PATTERN.pattern)),
        "date": pa.Column(
            pl.Date, pa.Check.isin(sessions, name="date_is_session", error="date_is_session")
        ),
        **{
            c: pa.Column(
                pl.Float64,
                [_column_check(r) for r in bounds if c in r.columns],
                nullable=c not in REQUIRED,
            )
            for c in VALUE_COLUMNS
        },
    }
    return pa.DataFrameSchema(
        columns,
        checks=[_frame_check(r) for r in VALUE_RULES if isinstance(r, Ordered)],
        unique=list(KEY),
        strict=True,
        ordered=True,
        name="bars",
    )


@dataclass(frozen=True)
class SchemaReport:
    """Outcome of :func:`check_bars`: pass/fail, rows checked, and failure cases as plain dicts."""

    success: bool
    rows: int
    failure_cases: list[dict] = field(default_factory=list)

    def to_metadata(self, limit: int = 20) -> dict:
        """JSON-able summary for Dagster check metadata (at most ``limit`` failure cases)."""
        by_check: dict[str, int] = {}
        for case in self.failure_cases:
            key = f"{case.get('column') or 'frame'}:{case.get('check')}"
            by_check[key] = by_check.get(key, 0) + 1
        return {
            "rows_checked": self.rows,
            "n_failure_cases": len(self.failure_cases),
            "failures_by_check": by_check,
            "failure_cases": self.failure_cases[:limit],
        }


def check_bars(bars: pl.DataFrame | pl.LazyFrame, sessions: list[dt.date]) -> SchemaReport:
    """Validate ``bars`` against :func:`bars_schema`, collecting every failure case.

    >>> from alphadag.market.schema import BARS_SCHEMA
    >>> d = dt.date(2022, 12, 27)
    >>> bad = pl.DataFrame({"ticker": ["AAPL"], "date": [d], "open": [1.0], "high": [0.5],
    ...     "low": [0.4], "close": [-1.0], "volume": [1.0]}, schema=BARS_SCHEMA)
    >>> rep = check_bars(bad, [d])
    >>> rep.success, sorted({c["check"] for c in rep.failure_cases})
    (False, ['finite_positive', 'high_consistent', 'low_consistent'])
    """
    frame = bars.collect() if isinstance(bars, pl.LazyFrame) else bars
    rows = schema_failure_cases(bars_schema(sessions), frame)
    return SchemaReport(success=not rows, rows=frame.height, failure_cases=rows)


def schema_failure_cases(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> list[dict]:
    """Validate ``frame`` lazily; every failure case as a JSON-able dict (empty when valid)."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases.with_columns(pl.col("failure_case").cast(pl.String))
        keep = [c for c in ("column", "check", "failure_case", "index") if c in cases.columns]
        return [
            {
                k: (v if isinstance(v, str | int | float | type(None)) else str(v))
                for k, v in r.items()
            }
            for r in cases.select(keep).iter_rows(named=True)
        ]
    return []
