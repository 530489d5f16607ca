"""The Parquet partition IO manager: one file per asset and session, written atomically.

An asset returns one ``pl.DataFrame`` for its whole partition range; the IO manager splits it by the
asset's ``partition_column`` (definition metadata, default ``date``) and replaces exactly the files
of the run's partitions, writing an empty file (with the schema) for a session with no rows. Inputs
load the upstream partitions the partition mapping asks for, concatenated in date order.
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
        days = [dt.date.fromisoformat(k) for k in context.asset_partition_keys]
        dataset = self._dataset(context.asset_key)
        if not (context.definition_metadata or {}).get("lookback_optional"):
            return self.store.read(dataset, days)
        # A lookback input: the partitions before the run's own range may be absent (the first
        # sessions of a history); the run's own partitions must exist.
        first_own = dt.date.fromisoformat(context.step_context.partition_key_range.start)
        own = [d for d in days if d >= first_own]
        frame = self.store.read(dataset, own)
        earlier = [d for d in days if d < first_own]
        if earlier:
            history = self.store.read(dataset, earlier, missing_ok=True, empty_like=frame)
            frame = pl.concat([history, frame])
        return frame
