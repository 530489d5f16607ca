"""``daily_data_job_on_celery``: ``daily_data_job`` unchanged (same selection, partitions and checks)
but for its executor: the code location runs it in one process (``in_process_executor``), here
``dagster_celery.celery_executor`` replaces that (a job's own executor wins over a default one).

Module-level so that ``dg.reconstructable`` can point at it and a worker can rebuild the job; the
Parquet root and the synthetic tickers come from the environment both processes share.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster_celery import celery_executor
from dagster_shared.record import copy


def daily_data_job_on_celery() -> dg.JobDefinition:
    """The code location's ``daily_data_job`` whose steps run as Celery tasks."""
    from alphadag.definitions import defs as load_defs
    from alphadag.defs.resources.market_data import MarketDataResource
    from alphadag.defs.resources.storage import ParquetPartitionIOManager

    base = load_defs()
    [job] = [j for j in base.jobs if j.name == "daily_data_job"]
    defs = dg.Definitions(
        assets=base.assets,
        asset_checks=base.asset_checks,
        jobs=[copy(job, executor_def=celery_executor)],
        resources={
            **(base.resources or {}),
            "io_manager": ParquetPartitionIOManager(data_root=os.environ["ALPHADAG_DATA_ROOT"]),
            "market_data": MarketDataResource(
                source="synthetic", tickers=os.environ["ALPHADAG_TICKERS"].split(",")
            ),
        },
        executor=celery_executor,
    )
    return defs.resolve_job_def("daily_data_job")
