"""``daily_data_job_on_celery``: ``daily_data_job`` unchanged (same selection, partitions and checks),
resolved in definitions whose default executor is ``dagster_celery.celery_executor``.

Module-level so that ``dg.reconstructable`` can point at it and a worker can rebuild the job; the
Parquet root and the synthetic tickers come from the environment both processes share.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster_celery import celery_executor


def daily_data_job_on_celery() -> dg.JobDefinition:
    """The code location's ``daily_data_job`` whose steps run as Celery tasks."""
    from alphadag.definitions import defs as load_defs
    from alphadag.defs.resources.market_data import MarketDataResource
    from alphadag.defs.resources.storage import ParquetPartitionIOManager

    base = load_defs()
    defs = dg.Definitions(
        assets=base.assets,
        asset_checks=base.asset_checks,
        jobs=base.jobs,
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
