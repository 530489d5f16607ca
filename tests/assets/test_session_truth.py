"""Per-session truth on a real instance after ranged runs (one run over several sessions).

What the Dagster UI reads is asserted in the instance's own storage: each partition's latest
materialization carries that session's file figures, and ``asset_check_executions`` holds one
resolved row per (check, session), pointing at that session's materialization, and no ``PLANNED``
row, whether the run passes or a blocking check fails one session.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest
from run_results import checks_by_session

from alphadag.defs.assets.bars_checks import (
    bars_gx_suite,
    bars_pandera_schema,
    bars_sessions_complete,
)
from alphadag.defs.resources.storage import ParquetPartitionIOManager
from alphadag.market.calendar import sessions
from alphadag.market.schema import BARS_SCHEMA
from alphadag.market.storage import PartitionStore

RANGE = ("2024-03-04", "2024-03-12")
KEYS = [d.isoformat() for d in sessions(*RANGE)]  # 7 sessions
BAD = "2024-03-07"
SUCCEEDED, FAILED, PLANNED = "SUCCEEDED", "FAILED", "PLANNED"
BARS_CHECKS = [
    "bars_pandera_schema",
    "bars_gx_suite",
    "bars_sessions_complete",
    "large_moves",
    "quarantine_share",
]


def _executions(instance: dg.DagsterInstance, run_id: str, asset: str, check: str) -> dict:
    """``asset_check_executions`` of one run and check: partition -> record."""
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=10_000)
    out = {}
    for record in records:
        if record.run_id == run_id:
            assert record.partition not in out, (check, record.partition)
            out[record.partition] = record
    return out


def _latest_materialization_ids(instance, asset: str) -> dict[str, int]:
    return dict(
        instance.event_log_storage.get_latest_storage_id_by_partition(
            dg.AssetKey(asset), dg.DagsterEventType.ASSET_MATERIALIZATION, set(KEYS)
        )
    )


@pytest.fixture(scope="module")
def ranged(run_job, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("session_truth"))
    result = run_job("ingest_job", root, *RANGE)
    assert result.success
    return result, root


def test_each_partition_metadata_is_its_own_session_file(ranged, instance):
    result, _ = ranged
    for asset in ("raw_bars", "bars", "quarantined_bars"):
        seen = []
        for key in KEYS:
            (record,) = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]),
                limit=1,
            ).records
            event = record.event_log_entry
            assert event.run_id == result.run_id
            meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
            assert meta["path"].endswith(f"{key}.parquet"), (asset, key, meta["path"])
            frame = pl.read_parquet(meta["path"])
            assert meta["rows"] == meta["dagster/row_count"] == frame.height
            assert meta["tickers"] == frame["ticker"].n_unique()
            assert "sessions_in_run" not in meta and "partitions_written" not in meta
            seen.append((meta["path"], meta["bytes"]))
        assert len(set(seen)) == len(KEYS), asset  # no two sessions share figures


def test_ranged_run_resolves_every_planned_check_row(ranged, instance):
    result, _ = ranged
    targets = _latest_materialization_ids(instance, "bars")
    for check in BARS_CHECKS:
        rows = _executions(instance, result.run_id, "bars", check)
        assert sorted(rows) == KEYS, check  # one row per session, none without a partition
        for key, record in rows.items():
            assert record.status.value != PLANNED, (check, key)
            evaluation = record.event.dagster_event.event_specific_data
            assert evaluation.partition == key
            # current in the UI: points at this session's latest materialization
            assert evaluation.target_materialization_data.storage_id == targets[key]
    blocking = ("bars_pandera_schema", "bars_gx_suite", "bars_sessions_complete")
    for check in blocking:
        statuses = {
            r.status.value for r in _executions(instance, result.run_id, "bars", check).values()
        }
        assert statuses == {SUCCEEDED}, check
    with instance.event_log_storage.index_connection() as conn:
        planned = conn.exec_driver_sql(
            "SELECT count(*) FROM asset_check_executions WHERE run_id = ? AND execution_status = ?",
            (result.run_id, PLANNED),
        ).scalar()
    assert planned == 0
    # and the run's result lists one evaluation per (check, session)
    assert {name: sorted(v) for name, v in checks_by_session(result).items()} == {
        name: KEYS for name in BARS_CHECKS
    }


def test_a_bad_row_in_one_session_fails_that_session_only(ranged, defs, instance, market):
    """A negative close stored in one session's ``bars`` file: the blocking contract checks
    over the whole range record that session FAILED and every other one SUCCEEDED, and the
    run fails."""
    _, root = ranged
    store = PartitionStore(root)
    day = dt.date.fromisoformat(BAD)
    good = store.read("bars", [day])
    bad_row = good.head(1).with_columns(ticker=pl.lit("ZZZ"), close=pl.lit(-5.0)).cast(BARS_SCHEMA)
    store.write("bars", day, pl.concat([good, bad_row]))

    job_name = "bars_contract_checks_ranged"
    checks = dg.define_asset_job(
        job_name,
        selection=dg.AssetSelection.checks(
            bars_pandera_schema, bars_gx_suite, bars_sessions_complete
        ),
    )
    job = dg.Definitions.merge(defs, dg.Definitions(jobs=[checks])).resolve_job_def(job_name)
    result = job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": RANGE[0],
            "dagster/asset_partition_range_end": RANGE[1],
        },
        resources={
            "io_manager": ParquetPartitionIOManager(data_root=root),
            "market_data": market(),
        },
        raise_on_error=False,
    )

    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert {e.step_key for e in failures} == {"bars_bars_pandera_schema", "bars_bars_gx_suite"}
    for e in failures:
        assert e.event_specific_data.error.cls_name == "DagsterAssetCheckFailedError"
    for check in ("bars_pandera_schema", "bars_gx_suite"):
        rows = _executions(instance, result.run_id, "bars", check)
        assert sorted(rows) == KEYS, check
        statuses = {k: r.status.value for k, r in rows.items()}
        assert statuses == {k: FAILED if k == BAD else SUCCEEDED for k in KEYS}, check
    failed = checks_by_session(result)
    pandera = failed["bars_pandera_schema"][BAD].metadata
    # the negative close breaks positivity and close >= low, both in the bad row only
    assert pandera["failures_by_check"].value == {
        "close:finite_positive": 1,
        "bars:low_consistent": 1,
    }
    assert "failure_cases" not in failed["bars_pandera_schema"][KEYS[0]].metadata
    gx = failed["bars_gx_suite"][BAD].metadata
    assert "expect_column_values_to_be_between(close)" in gx["gx_failed_expectations"].value
    complete = _executions(instance, result.run_id, "bars", "bars_sessions_complete")
    assert {r.status.value for r in complete.values()} == {SUCCEEDED}
    with instance.event_log_storage.index_connection() as conn:
        planned = conn.exec_driver_sql(
            "SELECT count(*) FROM asset_check_executions WHERE run_id = ? AND execution_status = ?",
            (result.run_id, PLANNED),
        ).scalar()
    assert planned == 0
