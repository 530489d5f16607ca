"""Per-session truth on a real instance after ranged runs (one run over several sessions).

What the Dagster UI reads is asserted in the instance's own storage: each partition's latest
materialization carries that session's file figures, and ``asset_check_executions`` holds one
resolved row per (check, session), pointing at that session's materialization, and no ``PLANNED``
row, whether the run passes or a blocking check fails one session.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import dagster as dg
import polars as pl
import pytest
from run_results import checks_by_session

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


def test_a_bad_row_in_one_session_fails_that_session_only(ranged, run_job, instance, monkeypatch):
    """A negative close slips past the row validation into one session of a second ranged run:
    the blocking contract checks, auditing the staged files, record that session FAILED and every
    other one SUCCEEDED; the run fails, the failing session's published file is left as it was
    and its staged file is kept, named in its check and materialization metadata."""
    from alphadag.defs.assets import ingestion

    _, root = ranged
    store = PartitionStore(root)
    day = dt.date.fromisoformat(BAD)
    before = store.path("bars", day).read_bytes()
    real = ingestion.validate

    def leaky(*args, **kwargs):  # a validation bug: one bad row is kept
        res = real(*args, **kwargs)
        good = res.kept.filter(pl.col("date") == day)
        bad_row = good.head(1).with_columns(ticker=pl.lit("ZZZ"), close=pl.lit(-5.0))
        return dataclasses.replace(res, kept=pl.concat([res.kept, bad_row.cast(BARS_SCHEMA)]))

    monkeypatch.setattr(ingestion, "validate", leaky)
    result = run_job("ingest_job", root, *RANGE)

    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["validated_bars"]
    error = failures[0].event_specific_data.error
    assert error.cls_name == "DagsterAssetCheckFailedError"
    assert "bars_pandera_schema" in error.message and "bars_gx_suite" in error.message
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

    # write-audit-publish: the failing session's published file is untouched, its staged one kept
    assert store.path("bars", day).read_bytes() == before
    assert store.read("bars", [day]).filter(pl.col("ticker") == "ZZZ").height == 0
    staged = failed["bars_pandera_schema"][BAD].metadata["staged_path"].value
    assert staged == str(store.staging_path("bars", result.run_id, day))
    assert pl.read_parquet(staged).filter(pl.col("close") < 0)["ticker"].to_list() == ["ZZZ"]
    assert failed["bars_pandera_schema"][BAD].metadata["published"].value is False
    assert failed["bars_pandera_schema"][KEYS[0]].metadata["published"].value is True
    assert store.staged_runs("bars") == {result.run_id: [day]}
    mats = {
        m.partition: m.metadata
        for m in result.asset_materializations_for_node("validated_bars")
        if m.asset_key == dg.AssetKey("bars")
    }
    assert mats[BAD]["published"].value is False
    assert mats[BAD]["staged_path"].value == staged
    assert all(mats[k]["published"].value for k in KEYS if k != BAD)
    with instance.event_log_storage.index_connection() as conn:
        planned = conn.exec_driver_sql(
            "SELECT count(*) FROM asset_check_executions WHERE run_id = ? AND execution_status = ?",
            (result.run_id, PLANNED),
        ).scalar()
    assert planned == 0
