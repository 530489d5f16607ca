"""Shared fixtures: a temporary data root, one test instance, the loaded definitions and a runner
that launches ``ingest_job`` over a session range exactly as ``alphadag.cli.materialize_range``
does (one run, range tags), with real resources: the Parquet IO manager under a temporary root and
a configured market-data source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import dagster as dg
import pytest

from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager

SYNTHETIC_TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE")
SYNTHETIC_START = "2024-01-02"
SYNTHETIC_END = "2024-03-28"

RunIngest = Callable[..., dg.ExecuteInProcessResult]


@pytest.fixture()
def data_root(tmp_path) -> str:
    """An empty directory for the Parquet partitions of one test."""
    root = tmp_path / "data"
    root.mkdir()
    return str(root)


@pytest.fixture(scope="session")
def defs() -> dg.Definitions:
    """The code location's definitions, loaded once per session."""
    from alphadag.definitions import defs as load_defs

    return load_defs()


@pytest.fixture(scope="session")
def instance() -> Iterator[dg.DagsterInstance]:
    """One temporary SQLite-backed instance for the session (DAGSTER_HOME left alone)."""
    with dg.instance_for_test(set_dagster_home=False) as inst:
        yield inst


def synthetic_market(
    *,
    tickers: Sequence[str] = SYNTHETIC_TICKERS,
    faults: Sequence[str] = (),
    start: str = SYNTHETIC_START,
    end: str = SYNTHETIC_END,
    seed: int = 7,
) -> MarketDataResource:
    """A synthetic market-data resource (faults as ``kind:TICKER:YYYY-MM-DD``)."""
    return MarketDataResource(
        source="synthetic",
        tickers=list(tickers),
        synthetic_start=start,
        synthetic_end=end,
        synthetic_seed=seed,
        synthetic_faults=list(faults),
    )


@pytest.fixture(scope="session")
def market() -> Callable[..., MarketDataResource]:
    """Factory of synthetic market-data resources (see :func:`synthetic_market`)."""
    return synthetic_market


@pytest.fixture(scope="session")
def run_ingest(defs: dg.Definitions, instance: dg.DagsterInstance) -> RunIngest:
    """Run ``ingest_job`` once and return its ``ExecuteInProcessResult`` (errors not raised).

    ``run_ingest(data_root, start, end, market_data=..., run_config=...)`` launches one ranged
    run over the sessions ``start``..``end`` with the range tags the CLI and the sensor use;
    ``run_ingest(data_root, day)`` (no ``end``) launches a single-partition run, the daily
    increment. ``market_data`` defaults to the five-ticker synthetic source.
    """
    job = defs.resolve_job_def("ingest_job")

    def run(
        root: str,
        start: str,
        end: str | None = None,
        *,
        market_data: MarketDataResource | None = None,
        run_config: Mapping | None = None,
    ) -> dg.ExecuteInProcessResult:
        resources = {
            "io_manager": ParquetPartitionIOManager(data_root=root),
            "market_data": market_data or synthetic_market(),
        }
        if end is None:
            return job.execute_in_process(
                instance=instance,
                partition_key=start,
                resources=resources,
                run_config=run_config,
                raise_on_error=False,
            )
        return job.execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": start,
                "dagster/asset_partition_range_end": end,
            },
            resources=resources,
            run_config=run_config,
            raise_on_error=False,
        )

    return run
