"""The batched event-log storages (alphadag.instance_storage) on real SQLite and PostgreSQL instances.

The same ranged run goes through Dagster's stock storage and through the batched one; what Dagster
reads back (materialized partitions, each partition's metadata, check status per partition, failed
partitions of a failed run) must be the same, and the batched one must leave no PLANNED check row
behind a run whose checks ran and no check row that copies the run's partition subset.
"""

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionResolvedStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from alphadag.instance_storage import BATCH_SIZE_ENV

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(12)]
PARTS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-13")
BAD_DAY = "2024-01-07"


def _defs(fail: bool) -> dg.Definitions:
    policy = dg.BackfillPolicy.single_run()

    class Nothing(dg.IOManager):
        def handle_output(self, context, obj):
            pass

        def load_input(self, context):
            return None

    @dg.asset(partitions_def=PARTS, backfill_policy=policy)
    def a(context: dg.AssetExecutionContext):
        if fail:
            raise RuntimeError("boom")
        for key in context.partition_keys:
            context.add_asset_metadata({"day": key, "n": int(key[-2:])}, partition_key=key)

    @dg.asset_check(asset=a, partitions_def=PARTS)
    def a_positive(context: dg.AssetCheckExecutionContext):
        # one evaluation per partition (the pattern of alphadag.defs.assets.session_checks)
        keys = context.op_execution_context.partition_keys
        for key in keys[:-1]:
            yield dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey("a"),
                check_name="a_positive",
                passed=key != BAD_DAY,
                partition=key,
                metadata={"day": key},
            )
        yield dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("a"),
            check_name="a_positive",
            passed=keys[-1] != BAD_DAY,
            partition=keys[-1],
            metadata={"day": keys[-1]},
        )
        yield dg.Output(None, output_name="result")  # an @asset_check op's one output

    @dg.asset_check(asset=a)
    def a_whole_range(context: dg.AssetCheckExecutionContext):
        # unpartitioned: one evaluation for the run (Dagster still plans it once per session)
        return dg.AssetCheckResult(passed=True, metadata={"sessions": len(DAYS)})

    job = dg.define_asset_job("j", selection=[a], executor_def=dg.in_process_executor)
    return dg.Definitions(
        assets=[a],
        asset_checks=[a_positive, a_whole_range],
        jobs=[job],
        resources={"io_manager": Nothing()},
    )


SQLITE_BATCHED = """
event_log_storage:
  module: alphadag.instance_storage
  class: SqliteBatchEventLogStorage
  config:
    base_dir: {home}
"""


def _pg_yaml(db: str, module: str, cls: str) -> str:
    conn = (
        "    postgres_db:\n      hostname: 127.0.0.1\n      port: 5432\n"
        f"      db_name: {db}\n      username: postgres\n      password: ''\n"
        "      scheme: postgresql+psycopg2\n"
    )
    return (
        f"run_storage:\n  module: dagster_postgres.run_storage\n  class: PostgresRunStorage\n"
        f"  config:\n{conn}"
        f"event_log_storage:\n  module: {module}\n  class: {cls}\n  config:\n{conn}"
        f"schedule_storage:\n  module: dagster_postgres.schedule_storage\n"
        f"  class: PostgresScheduleStorage\n  config:\n{conn}"
    )


@contextmanager
def _instance(home: Path, yaml_text: str, batch_size: str | None) -> Iterator[dg.DagsterInstance]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml_text.format(home=home))
    old = os.environ.pop(BATCH_SIZE_ENV, None)
    if batch_size is not None:
        os.environ[BATCH_SIZE_ENV] = batch_size
    try:
        with dg.DagsterInstance.from_config(str(home)) as inst:
            yield inst
    finally:
        os.environ.pop(BATCH_SIZE_ENV, None)
        if old is not None:
            os.environ[BATCH_SIZE_ENV] = old


def _run(instance: dg.DagsterInstance, fail: bool = False) -> dg.ExecuteInProcessResult:
    return (
        _defs(fail)
        .resolve_job_def("j")
        .execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": DAYS[0].isoformat(),
                "dagster/asset_partition_range_end": DAYS[-1].isoformat(),
            },
            raise_on_error=False,
        )
    )


def _read_back(instance: dg.DagsterInstance) -> dict:
    key = dg.AssetKey("a")
    check_key = dg.AssetCheckKey(key, "a_positive")
    mats = {
        k: instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[k]), limit=1
        ).records[0]
        for k in instance.get_materialized_partitions(key)
    }
    infos = instance.event_log_storage.get_asset_check_partition_info([check_key])
    return {
        "materialized": sorted(mats),
        "metadata": {k: dict(r.asset_materialization.metadata) for k, r in mats.items()},
        "check": {i.partition_key: (i.latest_execution_status.value, i.is_current) for i in infos},
    }


def _check_rows(instance: dg.DagsterInstance) -> list[dict]:
    storage = instance.event_log_storage
    with storage.index_connection() as conn:
        rows = conn.execute(
            sa.select(
                AssetCheckExecutionsTable.c.partition,
                AssetCheckExecutionsTable.c.execution_status,
                sa.func.length(AssetCheckExecutionsTable.c.evaluation_event).label("size"),
                AssetCheckExecutionsTable.c.check_name,
            )
        ).fetchall()
    return [dict(r._mapping) for r in rows if r.check_name == "a_positive"]


def _whole_range_rows(instance: dg.DagsterInstance) -> list[tuple]:
    with instance.event_log_storage.index_connection() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    AssetCheckExecutionsTable.c.partition,
                    AssetCheckExecutionsTable.c.execution_status,
                ).where(AssetCheckExecutionsTable.c.check_name == "a_whole_range")
            ).fetchall()
        ]


def test_batched_sqlite_reads_back_what_the_stock_storage_does(tmp_path):
    with _instance(tmp_path / "stock", "telemetry:\n  enabled: false\n", None) as stock:
        assert type(stock.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert _run(stock).success
        expected = _read_back(stock)
    with _instance(tmp_path / "batched", SQLITE_BATCHED, "1000") as batched:
        assert type(batched.event_log_storage).__name__ == "SqliteBatchEventLogStorage"
        assert _run(batched).success
        got = _read_back(batched)
        rows = _check_rows(batched)
        whole = _whole_range_rows(batched)
    assert got == expected
    # the unpartitioned check: its one evaluation replaced the per-session planned rows
    assert whole == [(None, "SUCCEEDED")]
    assert got["materialized"] == [d.isoformat() for d in DAYS]
    # each partition carries its own metadata
    assert {k: m["day"].value for k, m in got["metadata"].items()} == {
        d.isoformat(): d.isoformat() for d in DAYS
    }
    assert got["check"][BAD_DAY][0] == "FAILED"
    assert all(v[0] == "SUCCEEDED" for k, v in got["check"].items() if k != BAD_DAY)
    # one row per partition, none left PLANNED
    assert sorted(r["partition"] for r in rows) == [d.isoformat() for d in DAYS]
    assert not [r for r in rows if r["execution_status"] == "PLANNED"]


def test_planned_check_rows_do_not_copy_the_run_partition_subset(tmp_path):
    """A run that fails before its check leaves PLANNED rows (Dagster resolves them from the run
    status): with the batched storage each is small, with the stock storage each copies the
    whole subset."""
    with _instance(tmp_path / "stock", "telemetry:\n  enabled: false\n", None) as stock:
        assert not _run(stock, fail=True).success
        stock_rows = _check_rows(stock)
    with _instance(tmp_path / "batched", SQLITE_BATCHED, "1000") as batched:
        assert not _run(batched, fail=True).success
        rows = _check_rows(batched)
        check_key = dg.AssetCheckKey(dg.AssetKey("a"), "a_positive")
        state = batched.event_log_storage.get_asset_check_state([(check_key, PARTS)])
    assert len(rows) == len(stock_rows) == len(DAYS)
    assert all(r["execution_status"] == "PLANNED" for r in rows)
    assert max(r["size"] for r in rows) < min(r["size"] for r in stock_rows)
    # the UI shows these sessions as execution failed (the run failed), not in progress
    failed = state[check_key].subsets[AssetCheckExecutionResolvedStatus.EXECUTION_FAILED]
    assert set(failed.subset_value.get_partition_keys()) == {d.isoformat() for d in DAYS}


@pytest.mark.parametrize("batch_size", ["1000", "5"])
def test_a_failed_ranged_run_marks_every_session_failed(tmp_path, batch_size):
    """Per-partition planned events (written as one batch) keep Dagster's failed-partition status."""
    with _instance(tmp_path / "h", SQLITE_BATCHED, batch_size) as inst:
        assert not _run(inst, fail=True).success
        cache = get_and_update_asset_status_cache_value(inst, dg.AssetKey("a"), PARTS)
        failed = cache.deserialize_failed_partition_subsets(PARTS)
        assert set(failed.get_partition_keys()) == {d.isoformat() for d in DAYS}
        assert inst.get_materialized_partitions(dg.AssetKey("a")) == set()
        # a later successful run clears them
        assert _run(inst).success
        cache = get_and_update_asset_status_cache_value(inst, dg.AssetKey("a"), PARTS)
        assert not set(cache.deserialize_failed_partition_subsets(PARTS).get_partition_keys())


def test_event_batch_size_comes_from_the_instance_config(tmp_path):
    yaml_text = SQLITE_BATCHED + "    event_batch_size: 77\n"
    with _instance(tmp_path / "h", yaml_text, None) as inst:
        assert inst.event_log_storage.event_batch_size == 77
        assert os.environ[BATCH_SIZE_ENV] == "77"
    # a value already in the environment wins over the file
    with _instance(tmp_path / "h2", yaml_text, "9") as inst:
        assert inst.event_log_storage.event_batch_size == 9


def test_base_dir_defaults_to_dagster_home_then_to_a_temporary_directory(tmp_path, monkeypatch):
    from alphadag.instance_storage import SqliteBatchEventLogStorage

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    storage = SqliteBatchEventLogStorage.from_config_value(None, {"event_batch_size": 5})
    assert storage._base_dir == str(tmp_path / "home" / "history" / "runs")
    # Dagster's CLI without DAGSTER_HOME (dg dev, dg check defs) uses a temporary instance
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.chdir(tmp_path)
    storage = SqliteBatchEventLogStorage.from_config_value(None, {"event_batch_size": 5})
    assert Path(storage._base_dir).parent.parent.name.startswith(".tmp_dagster_home_")
    assert Path(storage._base_dir).is_dir()


def test_the_repo_dagster_yaml_uses_the_batched_storage(tmp_path):
    import yaml

    repo = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((repo / "deploy" / "local" / "dagster.yaml").read_text())
    assert config["event_log_storage"]["class"] == "SqliteBatchEventLogStorage"
    assert config["event_log_storage"]["config"]["event_batch_size"] > 0
    prod = yaml.safe_load((repo / "deploy" / "postgres" / "dagster.yaml").read_text())
    assert prod["event_log_storage"]["class"] == "PostgresBatchEventLogStorage"


def _fresh_pg(name: str) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


@pytest.mark.postgres
def test_batched_postgres_reads_back_what_the_stock_storage_does(tmp_path, worker_id):
    stock_db, batched_db = f"alphadag_stock_{worker_id}", f"alphadag_batched_{worker_id}"
    _fresh_pg(stock_db)
    _fresh_pg(batched_db)
    stock_yaml = _pg_yaml(stock_db, "dagster_postgres.event_log", "PostgresEventLogStorage")
    with _instance(tmp_path / "stock", stock_yaml, None) as stock:
        assert _run(stock).success
        expected = _read_back(stock)
    batched_yaml = _pg_yaml(batched_db, "alphadag.instance_storage", "PostgresBatchEventLogStorage")
    with _instance(tmp_path / "batched", batched_yaml, "1000") as batched:
        assert type(batched.event_log_storage).__name__ == "PostgresBatchEventLogStorage"
        assert _run(batched).success
        got = _read_back(batched)
        rows = _check_rows(batched)
        assert not _run(batched, fail=True).success
        cache = get_and_update_asset_status_cache_value(batched, dg.AssetKey("a"), PARTS)
        failed = set(cache.deserialize_failed_partition_subsets(PARTS).get_partition_keys())
    assert got == expected
    assert not [r for r in rows if r["execution_status"] == "PLANNED"]
    assert failed == {d.isoformat() for d in DAYS}
