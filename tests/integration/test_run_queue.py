"""The run queue and reliability settings of ``dagster.yaml``, read back by a real DagsterInstance.

The file is loaded from a temporary DAGSTER_HOME exactly as ``make dev`` uses it, so a typo, a
wrong nesting level or a setting Dagster ignores shows up here as the value the daemon would use.
The production file (deploy/postgres) must keep the same queue semantics.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from _dagster_procs import install_instance_yaml

from alphadag.defs.assets.ingestion import raw_bars, source_fetch_retry

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def instance(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    install_instance_yaml(home)
    with dg.DagsterInstance.from_config(str(home)) as inst:
        yield inst


def test_queued_run_coordinator_with_run_limits(instance):
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.run_coordinator.dequeue_use_threads
    assert instance.run_coordinator.dequeue_num_workers == 4
    queue = instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 4
    limits = {(t["key"], t.get("value")): t["limit"] for t in queue.tag_concurrency_limits}
    assert limits == {("alphadag/kind", "train"): 1, ("dagster/backfill", None): 2}


def test_pools_default_limit_covers_the_market_data_pool(instance):
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 2
    assert raw_bars.op.pool == "market_data"  # the source fetch runs under that pool


def test_run_retries_on_crashes_not_on_step_failures(instance):
    assert instance.run_retries_enabled
    assert instance.run_retries_max_retries == 2
    # a failed validation (a step failure) is final; only crashed runs are retried
    assert instance.run_retries_retry_on_asset_or_op_failure is False


def test_run_monitoring_and_max_runtime(instance):
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_max_runtime_seconds == 7200
    assert instance.run_monitoring_start_timeout_seconds == 180
    assert instance.run_monitoring_poll_interval_seconds == 30


def test_daemons_the_instance_requires(instance):
    required = set(instance.get_required_daemon_types())
    assert {
        "SCHEDULER",
        "SENSOR",
        "QUEUED_RUN_COORDINATOR",
        "MONITORING",
        "EVENT_LOG_CONSUMER",  # runs the run-retry daemon
        "FRESHNESS_DAEMON",
    } <= required
    assert instance.freshness_enabled


def test_source_fetch_retry_policy_is_exponential_with_jitter():
    assert raw_bars.op.retry_policy == source_fetch_retry
    assert source_fetch_retry.backoff == dg.Backoff.EXPONENTIAL
    assert source_fetch_retry.jitter == dg.Jitter.PLUS_MINUS
    assert source_fetch_retry.max_retries == 3
    assert source_fetch_retry.delay == 2


def test_production_instance_keeps_the_queue_semantics():
    local = yaml.safe_load((REPO / "deploy" / "local" / "dagster.yaml").read_text())
    prod = yaml.safe_load((REPO / "deploy" / "postgres" / "dagster.yaml").read_text())
    for block in ("run_coordinator", "run_retries", "run_monitoring", "freshness"):
        assert prod[block] == local[block], block
    assert prod["concurrency"]["pools"] == local["concurrency"]["pools"]
    assert (
        prod["concurrency"]["runs"]["tag_concurrency_limits"]
        == local["concurrency"]["runs"]["tag_concurrency_limits"]
    )
    assert prod["run_storage"]["class"] == "PostgresRunStorage"
    assert prod["schedule_storage"]["class"] == "PostgresScheduleStorage"
    assert prod["event_log_storage"]["class"] == "PostgresBatchEventLogStorage"
    assert prod["event_log_storage"]["config"]["event_batch_size"] > 0
