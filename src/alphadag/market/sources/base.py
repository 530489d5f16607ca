"""The market-data source protocol every source implements.

A source returns raw bars (:data:`alphadag.market.schema.RAW_BARS_SCHEMA`) for a date range, exactly as
its vendor delivered them: validation is the ``bars`` asset's job, never the source's. ``coverage``
tells the pipeline which sessions the source should have data for, so an empty session inside the
coverage is a failure while one outside it is empty by design.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import polars as pl


@dataclass(frozen=True)
class Coverage:
    """The sessions a source is expected to deliver: ``start`` to ``end`` inclusive (``None`` = open)."""

    start: dt.date | None
    end: dt.date | None

    def covers(self, day: dt.date) -> bool:
        """Whether ``day`` lies inside the coverage.

        >>> Coverage(dt.date(2020, 1, 1), None).covers(dt.date(2030, 1, 1))
        True
        """
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@runtime_checkable
class BarSource(Protocol):
    """What the ingestion asset needs from a market-data source."""

    name: str

    def fetch(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Raw bars with ``start <= date <= end`` in :data:`RAW_BARS_SCHEMA` (vendor values kept)."""
        ...

    def coverage(self) -> Coverage:
        """The date range inside which a session with no rows is a failure, not a holiday."""
        ...
