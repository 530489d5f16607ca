"""Stored-data faults through real runs: a corrupt partition in the middle of history, a full disk.

Each ends in one failed step, without retries, whose message names the asset, the session, the path
and (for a corrupt partition) how to rebuild it; the published files are left as they were.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import polars as pl
import pytest

from alphadag.market.storage import PartitionStore

MIDDLE = dt.date(2024, 3, 6)


def _failures(result) -> list:
    return [e for e in result.all_events if e.is_step_failure]


def _retried(result) -> list:
    return [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_a_corrupt_partition_in_history_names_its_path_and_how_to_rebuild(run_job, data_root):
    assert run_job("ingest_job", data_root, "2024-03-01", "2024-03-13").success
    store = PartitionStore(data_root)
    path = Path(store.path("bars", MIDDLE))
    path.write_bytes(path.read_bytes()[:300])  # truncated mid-file

    result = run_job("features_job", data_root, "2024-03-13")  # reads bars from the first session

    assert not result.success
    (failure,) = _failures(result)
    assert failure.step_key == "features"
    message = failure.event_specific_data.error.message
    assert f"bars partition 2024-03-06 cannot be read: {path}" in message
    assert "alphadag materialize --job ingest_job --start 2024-03-06 --end 2024-03-06" in message
    assert not _retried(result)

    # the hint works: re-ingesting that session rebuilds it, and features run again
    assert run_job("ingest_job", data_root, "2024-03-06").success
    assert store.read("bars", [MIDDLE]).height == 5
    assert run_job("features_job", data_root, "2024-03-13").success


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 64 KiB filesystem (tmpfs), as the data root."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_fails_at_once_naming_the_path(run_job, small_disk: Path):
    root = small_disk / "data"
    result = run_job("ingest_job", str(root), "2024-01-02", "2024-03-28")

    assert not result.success
    (failure,) = _failures(result)
    assert failure.step_key == "raw_bars"
    message = failure.event_specific_data.error.message
    assert "writing raw_bars failed at " in message and "No space left on device" in message
    assert str(root / "raw_bars") in message
    assert not _retried(result)  # a full disk is not transient: no retry with backoff
    assert not list(root.rglob("*.parquet"))  # nothing of the failed write was published
    assert not list(root.rglob("*.tmp"))
    # what fits still works on the same disk
    small = run_job("ingest_job", str(root), "2024-01-02")
    assert small.success
    assert pl.read_parquet(root / "bars" / "2024" / "2024-01-02.parquet").height == 5
