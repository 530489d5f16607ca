"""Where the data lives: the partition layout, its reads and writes, and the IO metadata keys.

One boundary for storage (no dagster here): :class:`PartitionStore` owns the layout
``<root>/<dataset>/<YYYY>/<YYYY-MM-DD>.parquet`` under a local path or any fsspec URL, and is the
only code that lists, reads or writes it (``sessions``, ``scan``, ``read``, ``write``,
write-audit-publish). :func:`split_by_partition` cuts a frame into the sessions it writes;
:mod:`alphadag.storage.meta` holds the definition-metadata keys the Parquet IO manager obeys.

>>> import datetime as dt, tempfile
>>> import polars as pl
>>> store = PartitionStore(tempfile.mkdtemp())
>>> _ = store.write("bars", dt.date(2022, 12, 27), pl.DataFrame({"x": [1]}))
>>> store.sessions("bars")
[datetime.date(2022, 12, 27)]
"""

from alphadag.storage.meta import storage_metadata
from alphadag.storage.store import (
    STAGING,
    CorruptPartitionError,
    PartitionStore,
    PartitionWriteError,
    StorageError,
    WrittenPartition,
    split_by_partition,
)

__all__ = [
    "STAGING",
    "CorruptPartitionError",
    "PartitionStore",
    "PartitionWriteError",
    "StorageError",
    "WrittenPartition",
    "split_by_partition",
    "storage_metadata",
]
