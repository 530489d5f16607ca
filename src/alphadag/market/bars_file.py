"""How a file of bars is read: its header mapped to the contract columns, its dates parsed.

One definition for every reader of a bars file, the landing-directory source
(:mod:`alphadag.market.sources.csv_landing`) and ``alphadag backtest --bars``
(:func:`alphadag.backtest.cli.read_bars`): :func:`rename_plan` maps a file's header to the
contract columns (an explicit ``column_map`` first, then the exact name, then the name
case-insensitively with spaces read as underscores, so ``Close`` and ``Adj Close`` style headers
work) and :func:`date_expr` turns the ``date`` column, whatever its type, into ``pl.Date``
(``Date`` as is, ``Datetime`` truncated, text as ISO dates or ISO timestamps, or with an explicit
``date_format``). What each reader does with a bad file (reject it, quarantine it, exit with an
error) stays the reader's. No dagster here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import polars as pl

from alphadag.market.schema import VALUE_COLUMNS

__all__ = ["CONTRACT_COLUMNS", "date_expr", "header_name", "rename_plan"]

CONTRACT_COLUMNS: tuple[str, ...] = ("ticker", "date", *VALUE_COLUMNS)
"""The contract columns a file's column may be mapped to."""


def header_name(name: str) -> str:
    """A header cell without a byte-order mark or surrounding spaces.

    >>> header_name("\\ufeff Close ")
    'Close'
    """
    return name.lstrip("\ufeff").strip()


def rename_plan(
    columns: Iterable[str],
    column_map: Mapping[str, str] | None = None,
    *,
    targets: Sequence[str] = CONTRACT_COLUMNS,
) -> dict[str, str]:
    """File column -> target column for one file's header; columns not in the plan are dropped.

    Explicit ``column_map`` entries win; then columns already named like a target; then a
    case-insensitive match with spaces read as underscores (``Close`` -> ``close``) for targets
    not yet taken. A target is taken once: of ``Close`` and ``close`` the exact name wins.

    Parameters
    ----------
    columns:
        The file's column names, as read.
    column_map:
        Vendor column -> target column, applied first (``None``: none).
    targets:
        The names a column may take; default the bars contract's columns.

    >>> rename_plan(["Date", "Close", "Adj Close", "Vol"], {"Vol": "volume"})
    {'Vol': 'volume', 'Date': 'date', 'Close': 'close'}
    """
    columns = list(columns)
    plan: dict[str, str] = {}
    taken: set[str] = set()
    mapped = {header_name(k): v for k, v in (column_map or {}).items()}
    for col in columns:
        target = mapped.get(header_name(col))
        if target is not None:
            plan[col] = target
            taken.add(target)
    for normalise in (header_name, lambda c: header_name(c).lower().replace(" ", "_")):
        for col in columns:
            name = normalise(col)
            if col not in plan and name in targets and name not in taken:
                plan[col] = name
                taken.add(name)
    return plan


def date_expr(dtype: pl.DataType, date_format: str | None = None) -> pl.Expr:
    """The expression turning column ``date`` of type ``dtype`` into ``pl.Date``.

    A value that does not parse becomes null (the reader reports it with its row). Raises
    ``ValueError`` for a type that holds no dates (an integer one needs ``date_format``).

    >>> frame = pl.DataFrame({"date": ["2024-01-02", " 2024-01-03 00:00:00", "soon"]})
    >>> frame.select(date_expr(frame.schema["date"]))["date"].to_list()
    [datetime.date(2024, 1, 2), datetime.date(2024, 1, 3), None]
    """
    raw = pl.col("date")
    if dtype == pl.Date:
        return raw
    if isinstance(dtype, pl.Datetime):
        return raw.dt.date()
    if dtype == pl.String:
        text = raw.str.strip_chars()
        if date_format is not None:
            return text.str.to_date(date_format, strict=False)
        # ISO dates, or ISO timestamps such as pandas' '2024-01-02 00:00:00'
        return pl.coalesce(
            text.str.to_date(strict=False), text.str.to_datetime(strict=False).dt.date()
        )
    if dtype.is_integer() and date_format is not None:
        return raw.cast(pl.String).str.to_date(date_format, strict=False)
    hint = " (set date_format, e.g. '%Y%m%d')" if dtype.is_integer() else ""
    raise ValueError(f"the date column has type {dtype}, not a date{hint}")
