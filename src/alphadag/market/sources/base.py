"""The market-data source protocol every source implements.

A source returns raw bars (:data:`alphadag.market.schema.RAW_BARS_SCHEMA`) for a date range, exactly as
its vendor delivered them: validation is the ``bars`` asset's job, never the source's. ``coverage``
tells the pipeline which sessions the source should have data for, so an empty session inside the
coverage is a failure while one outside it is empty by design. A source reading vendor files may also
implement :class:`FileIsolatingSource`: its ``read`` sets aside each file that cannot be read
(a :class:`RejectedFile` with the reason) and still returns the rows of the good ones.
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


@dataclass(frozen=True)
class RejectedFile:
    """A whole vendor file a source set aside because it cannot be read as bars.

    ``path``: the file's path or URL; ``reason``: what is wrong, naming the file (e.g. ``landing
    file /l/AAPL.csv is empty``); ``fingerprint``: SHA-256 of the bytes that were judged, so a
    corrected file (new fingerprint) is told apart; ``None`` when the bytes could not be read.
    """

    path: str
    reason: str
    fingerprint: str | None


@dataclass(frozen=True)
class SourceRead:
    """What :meth:`FileIsolatingSource.read` returns: the good files' bars and the rejected files."""

    bars: pl.DataFrame
    rejected: tuple[RejectedFile, ...] = ()


@runtime_checkable
class FileIsolatingSource(BarSource, Protocol):
    """A source that reads files and isolates each: a broken file never hides the good ones."""

    def read(self, start: dt.date, end: dt.date) -> SourceRead:
        """Raw bars of every readable file, and the files set aside (with their reasons)."""
        ...
