"""A test code location whose run worker can be killed in the middle of writing a ranged run.

``crash_table`` (three rows per session, tagged with the run id) is written by the project's own
``ParquetPartitionIOManager``, which hands a ranged run's partitions to ``PartitionStore.write_many``
(each partition atomic: temp file, one sync, rename). On a run's first attempt (no
``dagster/parent_run_id``) the store writes the first partition of the range alone (a
``write_many`` of one), writes the worker's pid to ``$OPS_CRASH_DIR/worker.pid`` and waits before
the rest: the test kills it there with SIGKILL, one session written and two not begun. A retry (the
run-retry daemon's re-execution) writes the whole range straight through.
"""

import datetime as dt
import os
import time
from pathlib import Path

import dagster as dg
import polars as pl

from alphadag.defs.resources.storage import ParquetPartitionIOManager
from alphadag.market.storage import PartitionStore, WrittenPartition

days = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-01")
TICKERS = ("AAA", "BBB", "CCC")
_PAUSE = {"armed": False}


class PausingStore(PartitionStore):
    """A PartitionStore that, while armed, parks the process after the first partition of a
    ranged write is in place and before the others are begun."""

    def write_many(
        self, dataset: str, frames: dict[dt.date, pl.DataFrame]
    ) -> list[WrittenPartition]:
        if not _PAUSE["armed"] or len(frames) < 2:
            return super().write_many(dataset, frames)
        _PAUSE["armed"] = False
        first, *rest = sorted(frames)
        written = super().write_many(dataset, {first: frames[first]})
        marker = Path(os.environ["OPS_CRASH_DIR"]) / "worker.pid"
        marker.write_text(str(os.getpid()))
        time.sleep(600)  # killed here by the test
        return written + super().write_many(dataset, {day: frames[day] for day in rest})


class CrashOnceIOManager(ParquetPartitionIOManager):
    @property
    def store(self) -> PartitionStore:
        return PausingStore(self.data_root)

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        _PAUSE["armed"] = "dagster/parent_run_id" not in context.step_context.dagster_run.tags
        super().handle_output(context, obj)


@dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run())
def crash_table(context: dg.AssetExecutionContext) -> pl.DataFrame:
    """Three rows per session of the run's range, each carrying the run id that wrote it."""
    sessions = [dt.date.fromisoformat(k) for k in context.partition_keys]
    return pl.DataFrame(
        {
            "ticker": [t for _ in sessions for t in TICKERS],
            "date": [d for d in sessions for _ in TICKERS],
            "run_id": context.run.run_id,
        }
    )


crash_job = dg.define_asset_job(
    "crash_job", selection=[crash_table], partitions_def=days, executor_def=dg.in_process_executor
)


@dg.sensor(job=crash_job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING)
def crash_sensor(context: dg.SensorEvaluationContext):
    """One ranged run over three sessions (a repeated run key afterwards)."""
    return dg.RunRequest(
        run_key="crash-1",
        tags={
            "dagster/asset_partition_range_start": "2024-01-02",
            "dagster/asset_partition_range_end": "2024-01-04",
        },
    )


defs = dg.Definitions(
    assets=[crash_table],
    jobs=[crash_job],
    sensors=[crash_sensor],
    resources={"io_manager": CrashOnceIOManager(data_root=os.environ.get("OPS_DATA_ROOT", "."))},
)
