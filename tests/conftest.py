"""Shared fixtures: a temporary data root, one test instance, the loaded definitions and a runner
that launches a job (``ingest_job`` by default) over a session range exactly as ``alphadag.cli.materialize_range``
does (one run, range tags), with real resources: the Parquet IO manager under a temporary root and
a configured market-data source.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence

import dagster as dg
import pytest

from alphadag import settings
from alphadag.defs.resources.alerting import AlertSink
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager

# The test modules import asset, check and job modules of alphadag.defs directly; those are built
# from the settings the code location reads when its definitions load (alphadag.settings.loaded),
# so the session reads them once here, as alphadag.definitions.defs does.
settings.load()

SYNTHETIC_TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE")
SYNTHETIC_START = "2024-01-02"
SYNTHETIC_END = "2024-03-28"

RunResult = dg.ExecuteInProcessResult


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
def run_job(
    defs: dg.Definitions, instance: dg.DagsterInstance, tmp_path_factory
) -> Callable[..., RunResult]:
    """Run any job once and return its ``ExecuteInProcessResult`` (errors not raised).

    ``run_job(name, data_root, start, end, market_data=..., run_config=...)`` launches one ranged
    run over the sessions ``start``..``end`` with the range tags the CLI and the sensor use;
    ``run_job(name, data_root, day)`` (no ``end``) launches a single-partition run, the daily
    increment; ``start=None`` runs an unpartitioned job. ``market_data`` defaults to the five-ticker synthetic source; ``resources``
    override the others (by default an empty temporary MLflow store, so serving falls back to the
    baseline, and an alert log in a temporary directory: nothing is written in the checkout).
    """
    scratch = tmp_path_factory.mktemp("run_job_services")
    default_mlflow = MlflowResource(
        tracking_uri=f"sqlite:///{scratch}/mlflow.db", artifact_location=str(scratch / "art")
    )
    default_alerts = AlertSink(jsonl_path=str(scratch / "alerts.jsonl"))

    def run(
        job_name: str,
        root: str,
        start: str | None,
        end: str | None = None,
        *,
        market_data: MarketDataResource | None = None,
        run_config: Mapping | None = None,
        resources: Mapping | None = None,
    ) -> RunResult:
        job = defs.resolve_job_def(job_name)
        resources = {
            "io_manager": ParquetPartitionIOManager(data_root=root),
            "market_data": market_data or synthetic_market(),
            "mlflow": default_mlflow,
            "alerts": default_alerts,
            **(resources or {}),
        }
        if start is None:  # an unpartitioned job (train_job)
            selection: dict = {}
        elif end is None:
            selection = {"partition_key": start}
        else:
            selection = {
                "tags": {
                    "dagster/asset_partition_range_start": start,
                    "dagster/asset_partition_range_end": end,
                }
            }
        return job.execute_in_process(
            instance=instance,
            resources=resources,
            run_config=run_config,
            raise_on_error=False,
            **selection,
        )

    return run


@pytest.fixture(scope="session")
def run_ingest(run_job) -> Callable[..., RunResult]:
    """``run_job`` for ``ingest_job``: ``run_ingest(data_root, start, end=None, ...)``."""
    return functools.partial(run_job, "ingest_job")
