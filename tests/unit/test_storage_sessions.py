"""The storage package's readers on a local root and an fsspec ``memory://`` root alike.

``sessions`` lists published sessions only (no staged, temp or foreign file), ``scan`` returns a
date range as a LazyFrame (schema drift filled with nulls), ``read``/``write`` round-trip, and the
IO metadata helpers build and read the keys the IO manager obeys.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import polars as pl
import pytest

from alphadag.storage import PartitionStore, meta, split_by_partition, storage_metadata

D1, D2, D3 = dt.date(2022, 12, 30), dt.date(2023, 1, 3), dt.date(2023, 1, 4)


def bars(day: dt.date, n: int = 2) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ticker": [f"T{i}" for i in range(n)],
            "date": [day] * n,
            "close": [float(i) for i in range(n)],
        }
    )


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path: Path) -> PartitionStore:
    if request.param == "local":
        return PartitionStore(tmp_path)
    return PartitionStore(f"memory://alphadag-tests/{uuid.uuid4().hex}")


def test_sessions_lists_published_sessions_in_order_and_in_range(store: PartitionStore) -> None:
    assert store.sessions("bars") == []
    store.write_many("bars", {d: bars(d) for d in (D3, D1, D2)})
    store.write("features", D2, bars(D2))
    assert store.sessions("bars") == [D1, D2, D3]
    assert store.sessions("bars", start=D2) == [D2, D3]
    assert store.sessions("bars", end=D2) == [D1, D2]
    assert store.sessions("bars", D2, D2) == [D2]
    assert store.sessions("features") == [D2]


def test_sessions_ignore_staged_table_and_foreign_files(store: PartitionStore) -> None:
    store.write("bars", D1, bars(D1))
    store.stage_many("bars", "run1", {D2: bars(D2)})  # staged, not published
    store.write_table("bars", bars(D3))  # an unpartitioned file under the dataset folder
    (store.root / "bars" / "2023").mkdir(parents=True, exist_ok=True)
    (store.root / "bars" / "2023" / "notes.txt").write_bytes(b"x")
    (store.root / "bars" / "2023" / "2023-02-30.parquet").write_bytes(b"x")  # not a date
    (store.root / "bars" / "2022" / "2023-01-05.parquet").write_bytes(b"x")  # wrong year folder
    assert store.sessions("bars") == [D1]
    store.publish("bars", "run1", [D2])
    assert store.sessions("bars") == [D1, D2]


def test_sessions_rejects_a_bad_dataset_name(store: PartitionStore) -> None:
    with pytest.raises(ValueError, match="dataset name"):
        store.sessions("../bars")


def test_scan_returns_the_range_in_session_order(store: PartitionStore) -> None:
    frames = {d: bars(d, n) for d, n in ((D1, 1), (D2, 2), (D3, 3))}
    store.write_many("bars", frames)
    scanned = store.scan("bars", D2, D3)
    assert isinstance(scanned, pl.LazyFrame)
    assert scanned.collect().equals(pl.concat([frames[D2], frames[D3]]))
    assert store.scan("bars").collect().equals(pl.concat(frames.values()))
    assert store.read("bars", [D3, D1]).equals(pl.concat([frames[D1], frames[D3]]))


def test_scan_fills_a_column_older_partitions_lack(store: PartitionStore) -> None:
    store.write("bars", D1, bars(D1))
    store.write("bars", D2, bars(D2).with_columns(volume=pl.lit(7.0)))
    out = store.scan("bars").collect()
    assert out.columns == ["ticker", "date", "close", "volume"]
    assert out["volume"].to_list() == [None, None, 7.0, 7.0]


def test_scan_of_an_empty_range_keeps_the_columns_and_of_nothing_raises(
    store: PartitionStore,
) -> None:
    with pytest.raises(FileNotFoundError, match="no bars partition has been published"):
        store.scan("bars")
    store.write("bars", D1, bars(D1))
    empty = store.scan("bars", D2, D3).collect()
    assert empty.height == 0 and empty.schema == bars(D1).schema


def test_split_then_write_many_then_scan_round_trips(store: PartitionStore) -> None:
    frame = pl.concat([bars(D1), bars(D3)])
    parts = split_by_partition(frame, "date", [D1, D2, D3])
    assert [p.height for p in parts.values()] == [2, 0, 2]
    store.write_many("bars", parts)
    assert store.sessions("bars") == [D1, D2, D3]  # an empty session is written, with the schema
    assert store.scan("bars").collect().equals(frame)


def test_storage_metadata_builds_and_reads_the_io_manager_keys() -> None:
    both = storage_metadata(partition_column="partition_date", rebuild_job="ingest_job")
    assert both == {meta.PARTITION_COLUMN: "partition_date", meta.REBUILD_JOB: "ingest_job"}
    assert meta.partition_column(both) == "partition_date"
    assert meta.rebuild_job(both) == "ingest_job"
    assert not meta.window_optional(both)
    assert meta.window_optional(storage_metadata(window_optional=True))
    assert meta.partition_column(None) == "date" and meta.rebuild_job({}) is None
    assert storage_metadata() == {}
    with pytest.raises(TypeError, match="window_optional must be a bool"):
        storage_metadata(window_optional="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="partition_column must be a column name"):
        storage_metadata(partition_column="")
