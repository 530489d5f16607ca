"""The look-ahead auditor: prove a feature function never reads a later session.

:func:`audit_lookahead` recomputes a function on histories truncated at several cut dates and
compares every value it produced on or before the cut with the full-history computation. A
function without look-ahead gives the same values (and the same nulls) either way; one that
reads the future (a ``shift(-1)``, a centred window, a full-sample normalisation) changes values
before the cut, and the report names the column, ticker and date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl

__all__ = ["LookaheadError", "LookaheadReport", "audit_lookahead"]

_KEYS = ("ticker", "date")
ROW_COLUMN = "<row>"
"""The ``column`` of a violation where a ``(ticker, date)`` row exists in only one computation."""


class LookaheadError(ValueError):
    """A feature function's values on or before a date changed when later bars were removed."""


@dataclass(frozen=True)
class LookaheadReport:
    """The outcome of :func:`audit_lookahead`.

    Attributes
    ----------
    ok:
        True when no value changed at any cut.
    cuts_checked:
        The cut dates, ascending.
    violations:
        Up to ``max_violations`` dicts with keys ``column``, ``ticker``, ``date``, ``cut``,
        ``full`` (value from the full history) and ``truncated`` (value from bars up to ``cut``),
        ordered by cut, then column, then (ticker, date). For a row present in only one
        computation, ``column`` is ``"<row>"`` and ``full``/``truncated`` say which has it.
    n_violations:
        How many differing values were found in all (``violations`` may hold fewer).
    """

    ok: bool
    cuts_checked: tuple[dt.date, ...]
    violations: list[dict[str, Any]] = field(default_factory=list)
    n_violations: int = 0

    @property
    def columns(self) -> tuple[str, ...]:
        """The distinct columns among the recorded violations, sorted."""
        return tuple(sorted({v["column"] for v in self.violations}))

    def raise_on_violation(self) -> None:
        """Raise :class:`LookaheadError` naming the first violation, if there is any.

        >>> LookaheadReport(ok=True, cuts_checked=()).raise_on_violation() is None
        True
        """
        if self.ok:
            return
        first = self.violations[0]
        raise LookaheadError(
            f"look-ahead: column {first['column']!r} for ticker {first['ticker']!r} on "
            f"{first['date']} is {first['full']!r} from the full history but "
            f"{first['truncated']!r} from bars up to {first['cut']}; {self.n_violations} "
            f"differing value(s) in column(s) {list(self.columns)}"
        )


def _collect(frame: object, what: str) -> pl.DataFrame:
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(
            f"{what} must be a polars DataFrame or LazyFrame, got {type(frame).__name__}"
        )
    missing = [k for k in _KEYS if k not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks key column(s) {missing}; got {frame.columns}")
    return frame


def _pick_cuts(dates: list[dt.date], n_cuts: int, seed: int) -> tuple[dt.date, ...]:
    """``n_cuts`` distinct dates before the last one, one drawn from each of ``n_cuts`` strata."""
    candidates = dates[:-1]  # a cut at the last date truncates nothing
    if len(candidates) <= n_cuts:
        return tuple(candidates)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x100CA,)))
    edges = np.linspace(0, len(candidates), n_cuts + 1).astype(int)
    picks = [int(rng.integers(lo, hi)) for lo, hi in pairwise(edges)]
    return tuple(candidates[p] for p in picks)


def _differs(
    full: pl.Expr, trunc: pl.Expr, dtype: pl.DataType, rtol: float, atol: float
) -> pl.Expr:
    null_mismatch = full.is_null() != trunc.is_null()
    if dtype.is_float():
        both_nan = full.is_nan() & trunc.is_nan()
        scale = pl.max_horizontal(full.abs(), trunc.abs())
        close = ((full - trunc).abs() <= atol + rtol * scale) | both_nan | (full == trunc)
        return null_mismatch | (full.is_not_null() & trunc.is_not_null() & ~close)
    return ~full.eq_missing(trunc)


def audit_lookahead(
    fn: Callable[[pl.DataFrame], pl.DataFrame | pl.LazyFrame],
    bars: pl.DataFrame | pl.LazyFrame,
    *,
    n_cuts: int = 10,
    seed: int = 0,
    rtol: float = 1e-12,
    atol: float = 0.0,
    max_violations: int = 100,
) -> LookaheadReport:
    """Check that ``fn``'s output on or before each cut date does not depend on later bars.

    For each cut date ``c`` (``n_cuts`` dates before the last one, one drawn per equal stratum of
    the sorted distinct dates, reproducibly from ``seed``), ``fn(bars.filter(date <= c))`` is
    compared with ``fn(bars)`` restricted to ``date <= c``: same ``(ticker, date)`` rows, same
    null positions, and values within ``atol + rtol * max(|full|, |truncated|)`` (exact equality
    for non-float columns).

    Parameters
    ----------
    fn:
        The feature function; it gets a DataFrame of bars and returns a frame keyed by
        ``ticker`` and ``date`` (DataFrame or LazyFrame).
    bars:
        The bars to audit on.
    n_cuts:
        How many cut dates (fewer if there are not enough dates).
    seed:
        Non-negative integer choosing the cuts.
    rtol, atol:
        Tolerances for float columns.
    max_violations:
        How many violations the report keeps (all are counted).

    >>> import datetime as dt
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, d) for d in range(2, 12)],
    ...                      "close": [float(d) for d in range(10)]})
    >>> causal = lambda b: b.select("ticker", "date", pl.col("close").cum_sum().alias("s"))
    >>> audit_lookahead(causal, bars, n_cuts=3).ok
    True
    >>> leaky = lambda b: b.select("ticker", "date", pl.col("close").shift(-1).alias("nxt"))
    >>> report = audit_lookahead(leaky, bars, n_cuts=3)
    >>> report.ok, report.columns
    (False, ('nxt',))
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    for name, value in (("n_cuts", n_cuts), ("seed", seed), ("max_violations", max_violations)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if n_cuts < 1:
        raise ValueError("n_cuts must be at least 1")
    if not (rtol >= 0.0 and atol >= 0.0):
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol!r}, atol={atol!r}")
    frame = _collect(bars, "bars")
    dates = frame.get_column("date").unique().sort().to_list()
    cuts = _pick_cuts(dates, n_cuts, seed)
    full = _collect(fn(frame), "fn(bars)")
    value_columns = [c for c in full.columns if c not in _KEYS]

    violations: list[dict[str, Any]] = []
    total = 0

    def record(
        rows: pl.DataFrame, column: str, cut: dt.date, full_col: str, trunc_col: str
    ) -> None:
        nonlocal total
        total += rows.height
        room = max_violations - len(violations)
        for row in rows.head(room).iter_rows(named=True):
            violations.append(
                {
                    "column": column,
                    "ticker": row["ticker"],
                    "date": row["date"],
                    "cut": cut,
                    "full": row[full_col],
                    "truncated": row[trunc_col],
                }
            )

    for cut in cuts:
        truncated = _collect(fn(frame.filter(pl.col("date") <= cut)), "fn(truncated bars)")
        if sorted(truncated.columns) != sorted(full.columns):
            raise ValueError(
                f"fn returned columns {truncated.columns} for bars up to {cut} but "
                f"{full.columns} for the full history"
            )
        joined = (
            full.filter(pl.col("date") <= cut)
            .with_columns(pl.lit(True).alias("_in_full"))
            .join(
                truncated.with_columns(pl.lit(True).alias("_in_trunc")),
                on=list(_KEYS),
                how="full",
                coalesce=True,
                suffix="_trunc",
            )
            .sort(*_KEYS)
        )
        presence = joined.select(
            *_KEYS,
            pl.col("_in_full").is_not_null().alias("_full_has_row"),
            pl.col("_in_trunc").is_not_null().alias("_trunc_has_row"),
        )
        odd_rows = presence.filter(pl.col("_full_has_row") != pl.col("_trunc_has_row"))
        if odd_rows.height:
            record(odd_rows, ROW_COLUMN, cut, "_full_has_row", "_trunc_has_row")
        both = joined.filter(pl.col("_in_full").is_not_null() & pl.col("_in_trunc").is_not_null())
        for column in value_columns:
            trunc_column = f"{column}_trunc"
            bad = both.filter(
                _differs(pl.col(column), pl.col(trunc_column), full.schema[column], rtol, atol)
            )
            if bad.height:
                record(bad, column, cut, column, trunc_column)
    return LookaheadReport(
        ok=total == 0, cuts_checked=cuts, violations=violations, n_violations=total
    )
