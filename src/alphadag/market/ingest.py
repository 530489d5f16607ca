"""Fetching raw bars for a run of session partitions and attributing each row to its partition.

The fetch window of sessions ``s_1..s_n`` runs from the day after the session before ``s_1`` to
``s_n``, so a vendor row dated on a weekend or holiday inside the window is still delivered: it is
attributed to the next session (where validation rejects it with ``date_is_session``) instead of
vanishing. A row with no parseable date goes to the last partition of the window.
:func:`read_partitions` does the same for a source that isolates its files
(:class:`~alphadag.market.sources.base.FileIsolatingSource`) and also returns the files it set
aside, so one broken vendor file never stops the good ones from being ingested.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from alphadag.market.calendar import sessions as calendar_sessions
from alphadag.market.schema import RAW_BARS_SCHEMA
from alphadag.market.sources.base import BarSource, FileIsolatingSource, RejectedFile

RAW_PARTITION_SCHEMA = {**RAW_BARS_SCHEMA, "partition_date": pl.Date()}
"""``raw_bars`` as stored: the source's columns plus the session partition each row belongs to."""


def fetch_window(days: list[dt.date]) -> tuple[dt.date, dt.date]:
    """The calendar window whose rows belong to the sessions ``days``.

    >>> [d.isoformat() for d in fetch_window([dt.date(2022, 12, 27)])]
    ['2022-12-24', '2022-12-27']
    """
    if not days:
        raise ValueError("no sessions to fetch")
    first, last = min(days), max(days)
    before = calendar_sessions(first - dt.timedelta(days=14), first - dt.timedelta(days=1))
    start = before[-1] + dt.timedelta(days=1) if before else first
    return start, last


def attribute_partitions(raw: pl.DataFrame, days: list[dt.date]) -> pl.DataFrame:
    """Add ``partition_date``: the first of ``days`` on or after each row's date.

    >>> d1, d2 = dt.date(2022, 12, 23), dt.date(2022, 12, 27)
    >>> raw = pl.DataFrame({"ticker": ["A", "A"], "date": [d1, dt.date(2022, 12, 25)]})
    >>> attribute_partitions(raw, [d1, d2])["partition_date"].to_list() == [d1, d2]
    True
    """
    keys = pl.DataFrame({"partition_date": sorted(days)}, schema={"partition_date": pl.Date})
    last = max(days)
    with_idx = raw.with_row_index("_i")
    dated = (
        with_idx.filter(pl.col("date").is_not_null())
        .sort("date")
        .join_asof(keys, left_on="date", right_on="partition_date", strategy="forward")
    )
    undated = with_idx.filter(pl.col("date").is_null()).with_columns(
        partition_date=pl.lit(last, pl.Date)
    )
    out = pl.concat([dated, undated]).sort("_i").drop("_i")
    return out.with_columns(pl.col("partition_date").fill_null(last))


def fetch_partitions(source: BarSource, days: list[dt.date]) -> pl.DataFrame:
    """Fetch the raw bars of the session partitions ``days`` (sorted by partition, then as delivered)."""
    start, end = fetch_window(days)
    return _attributed(source, source.fetch(start, end), days)


@dataclass(frozen=True)
class FetchedPartitions:
    """Raw bars of a run of partitions (:data:`RAW_PARTITION_SCHEMA`) and the files set aside."""

    raw: pl.DataFrame
    rejected: tuple[RejectedFile, ...]


def read_partitions(source: BarSource, days: list[dt.date]) -> FetchedPartitions:
    """Like :func:`fetch_partitions`, but a file-isolating source's broken files are set aside.

    For a :class:`~alphadag.market.sources.base.FileIsolatingSource` (the CSV landing source)
    the rows of every readable file are returned with the files that could not be read (each
    with its reason and fingerprint); any other source is fetched as usual, with nothing
    rejected.

    >>> from alphadag.market.sources.sample import SampleSource
    >>> got = read_partitions(SampleSource(), [dt.date(2022, 12, 27)])
    >>> got.raw.height > 0, got.rejected
    (True, ())
    """
    start, end = fetch_window(days)
    if isinstance(source, FileIsolatingSource):
        got = source.read(start, end)
        return FetchedPartitions(_attributed(source, got.bars, days), tuple(got.rejected))
    return FetchedPartitions(_attributed(source, source.fetch(start, end), days), ())


def _attributed(source: BarSource, raw: pl.DataFrame, days: list[dt.date]) -> pl.DataFrame:
    if dict(raw.schema) != RAW_BARS_SCHEMA:
        raise ValueError(
            f"source {source.name!r} returned schema {dict(raw.schema)}, expected {RAW_BARS_SCHEMA}"
        )
    out = attribute_partitions(raw, days)
    return out.with_row_index("_i").sort("partition_date", "_i").drop("_i")
