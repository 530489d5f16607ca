"""The production instance config (deploy/postgres/dagster.yaml) against the real PostgreSQL here.

A fresh database per test run keeps it isolated; the run, its events and the materializations are
read back through the instance and straight from the tables.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager

REPO = Path(__file__).resolve().parents[2]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}

pytestmark = pytest.mark.postgres


@pytest.fixture()
def pg_database():
    name = f"alphadag_it_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(dbname="test", **PG)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture()
def pg_instance(tmp_path, pg_database, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    for key, value in {
        "DAGSTER_PG_HOST": PG["host"],
        "DAGSTER_PG_PORT": str(PG["port"]),
        "DAGSTER_PG_DB": pg_database,
        "DAGSTER_PG_USER": PG["user"],
        "DAGSTER_PG_PASSWORD": "",
    }.items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def test_partition_run_is_stored_in_postgres(pg_instance, pg_database, tmp_path):
    from alphadag.definitions import defs

    assert type(pg_instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(pg_instance.event_log_storage).__name__ == "PostgresBatchEventLogStorage"
    job = defs().resolve_job_def("ingest_job")
    result = job.execute_in_process(
        instance=pg_instance,
        partition_key="2024-03-05",
        resources={
            "io_manager": ParquetPartitionIOManager(data_root=str(tmp_path / "data")),
            "market_data": MarketDataResource(
                source="synthetic",
                tickers=["AAA", "BBB"],
                synthetic_start="2024-01-02",
                synthetic_end="2024-06-28",
            ),
        },
    )
    assert result.success

    run = pg_instance.get_run_by_id(result.run_id)
    assert run.is_success
    assert run.tags["dagster/partition"] == "2024-03-05"
    mat = pg_instance.get_latest_materialization_event(dg.AssetKey("bars"))
    assert mat.run_id == result.run_id
    assert mat.asset_materialization.partition == "2024-03-05"
    assert mat.asset_materialization.metadata["rows"].value == 2
    events = pg_instance.all_logs(result.run_id)
    kinds = {e.dagster_event.event_type_value for e in events if e.dagster_event}
    # event_type_value keeps the legacy PIPELINE_* names for run events
    assert {"PIPELINE_SUCCESS", "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION"} <= kinds

    # And the rows are really in PostgreSQL's tables, not somewhere else.
    conn = psycopg2.connect(dbname=pg_database, **PG)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
            assert cur.fetchone() == ("SUCCESS",)
            cur.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
                (result.run_id, "ASSET_MATERIALIZATION"),
            )
            assert cur.fetchone()[0] == 3  # raw_bars, bars, quarantined_bars
    finally:
        conn.close()
    assert os.path.exists(tmp_path / "data" / "bars" / "2024" / f"{dt.date(2024, 3, 5)}.parquet")
