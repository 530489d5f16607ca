"""Per-ticker export paths, and the partition store's old import path.

The partition store moved to :mod:`alphadag.storage` (the one package that owns the layout); its
names are re-exported here so ``from alphadag.market.storage import PartitionStore`` keeps working.
New code imports them from :mod:`alphadag.storage`.
"""

from __future__ import annotations

import os

from upath import UPath

from alphadag.storage.store import (
    STAGING,
    CorruptPartitionError,
    PartitionStore,
    PartitionWriteError,
    StorageError,
    WrittenPartition,
)

__all__ = [
    "STAGING",
    "CorruptPartitionError",
    "PartitionStore",
    "PartitionWriteError",
    "StorageError",
    "WrittenPartition",
    "ticker_path",
]


def ticker_path(directory: str | os.PathLike[str], ticker: str, suffix: str = ".parquet") -> UPath:
    """A per-ticker file under ``directory``, for a ticker that is canonical (raises otherwise).

    The allow-list pattern admits no separator, dot or ``..``, so the result is always a direct
    child of ``directory``.

    >>> str(ticker_path("/data/exports", "BRK-B"))
    '/data/exports/BRK-B.parquet'
    """
    from alphadag.market.tickers import TICKER_PATTERN, TickerError

    if not TICKER_PATTERN.fullmatch(ticker):
        raise TickerError(f"ticker {ticker!r} is not canonical; call canonical_ticker() first")
    return UPath(directory) / f"{ticker}{suffix}"
