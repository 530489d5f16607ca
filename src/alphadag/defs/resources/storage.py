"""The Parquet partition IO manager: one file per asset and session, written atomically.

An asset returns one ``pl.DataFrame`` for its whole partition range; the IO manager splits it by the
asset's ``partition_column`` (definition metadata, default ``date``) and replaces exactly the files
of the run's partitions, writing an empty file (with the schema) for a session with no rows. Inputs
load the upstream partitions the partition mapping asks for, concatenated in date order. An
unpartitioned asset (``training_set``) is one file, ``<root>/<asset>/<asset>.parquet``, replaced
atomically in the same way.
"""

import datetime as dt

import dagster as dg
import polars as pl

from alphadag.market.ingest import split_by_partition
from alphadag.market.storage import PartitionStore


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
        context.add_output_metadata(
            {
                "partitions_written": len(written),
                "bytes_written": sum(w.bytes for w in written),
                "path": dg.MetadataValue.path(written[-1].path) if written else "",
            }
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
