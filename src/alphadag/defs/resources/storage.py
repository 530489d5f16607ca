"""The Parquet partition IO manager: one file per asset and session, written atomically.

An asset returns one ``pl.DataFrame`` for its whole partition range; the IO manager splits it by the
asset's ``partition_column`` (definition metadata, default ``date``) and replaces exactly the files
of the run's partitions, writing an empty file (with the schema) for a session with no rows. Each
partition's materialization gets its own file's ``rows`` (also ``dagster/row_count``), ``bytes``,
``path`` and, where there is a ``ticker`` column, ``tickers``. Inputs
load the upstream partitions the partition mapping asks for, concatenated in date order. An
unpartitioned asset (``training_set``) is one file, ``<root>/<asset>/<asset>.parquet``, replaced
atomically in the same way.
"""

import datetime as dt

import dagster as dg
import polars as pl

from alphadag.defs.partition_metadata import add_partition_metadata
from alphadag.market.ingest import split_by_partition
from alphadag.market.storage import PartitionStore, WrittenPartition


def _file_metadata(w: WrittenPartition, frame: pl.DataFrame) -> dict:
    """What one partition's file holds: rows, bytes, path and, with a ticker column, tickers."""
    meta = {
        "rows": w.rows,
        "dagster/row_count": w.rows,
        "bytes": w.bytes,
        "path": dg.MetadataValue.path(w.path),
    }
    if "ticker" in frame.columns:
        meta["tickers"] = frame["ticker"].n_unique()
    return meta


class ParquetPartitionIOManager(dg.ConfigurableIOManager):
    """Partitioned polars frames as Parquet files under ``data_root`` (local path or fsspec URL)."""

    data_root: str

    @property
    def store(self) -> PartitionStore:
        return PartitionStore(self.data_root)

    @staticmethod
    def _dataset(key: dg.AssetKey) -> str:
        return "__".join(key.path)

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()} must return a polars DataFrame")
        if not context.has_asset_partitions:
            w = self.store.write_table(self._dataset(context.asset_key), obj)
            context.add_output_metadata(
                {"rows": w.rows, "bytes_written": w.bytes, "path": dg.MetadataValue.path(w.path)}
            )
            return
        days = [dt.date.fromisoformat(k) for k in context.asset_partition_keys]
        column = (context.definition_metadata or {}).get("partition_column", "date")
        parts = split_by_partition(obj, column, days)
        written = self.store.write_many(self._dataset(context.asset_key), parts)
        # each partition's materialization carries its own file's figures, not the run's totals
        add_partition_metadata(
            context,
            context.asset_key,
            {
                day.isoformat(): _file_metadata(w, parts[day])
                for day, w in zip(sorted(parts), written, strict=True)
            },
        )
        if len(written) > 1:
            context.log.info(
                f"{context.asset_key.to_user_string()}: {len(written)} partitions, "
                f"{sum(w.rows for w in written)} rows, {sum(w.bytes for w in written)} bytes written"
            )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        if not context.has_asset_partitions:
            return self.store.read_table(self._dataset(context.asset_key))
        days = [dt.date.fromisoformat(k) for k in context.asset_partition_keys]
        dataset = self._dataset(context.asset_key)
        if not (context.definition_metadata or {}).get("window_optional"):
            return self.store.read(dataset, days)
        # A lookback/lookahead window: partitions outside the run's own range may be absent (the
        # first sessions of a history, the sessions after today); the run's own ones must exist.
        own_range = context.step_context.partition_key_range
        first, last = dt.date.fromisoformat(own_range.start), dt.date.fromisoformat(own_range.end)
        own = [d for d in days if first <= d <= last]
        frame = self.store.read(dataset, own)
        before = [d for d in days if d < first]
        after = [d for d in days if d > last]
        parts = [
            self.store.read(dataset, before, missing_ok=True, empty_like=frame) if before else None,
            frame,
            self.store.read(dataset, after, missing_ok=True, empty_like=frame) if after else None,
        ]
        return pl.concat([p for p in parts if p is not None])
