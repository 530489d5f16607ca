"""Unit tests for the partition store: deterministic bytes, atomic replacement, crash safety."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import random
import signal
import time
import uuid
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.storage import (
    PartitionStore,
    PartitionWriteError,
    WrittenPartition,
)

D1, D2, D3 = dt.date(2022, 12, 23), dt.date(2022, 12, 27), dt.date(2022, 12, 28)


def bars(n: int = 3, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "ticker": [f"T{i:03d}" for i in range(n)],
            "date": [D2] * n,
            "close": rng.random(n) * 100 + 1,
            "volume": rng.integers(0, 10**6, n).astype(float),
        }
    )


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------------------------------------
# local filesystem


def test_layout_and_written_partition(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    frame = bars()
    written = store.write("bars", D2, frame)
    expected = tmp_path / "bars" / "2022" / "2022-12-27.parquet"
    assert written == WrittenPartition(path=str(expected), rows=3, bytes=expected.stat().st_size)
    assert store.exists("bars", D2)
    assert not store.exists("bars", D1)
    assert store.read("bars", [D2]).equals(frame)


def test_writing_the_same_frame_twice_gives_identical_bytes(tmp_path: Path) -> None:
    frame = bars(50, seed=1)
    a = PartitionStore(tmp_path / "a")
    b = PartitionStore(tmp_path / "b")
    a.write("bars", D2, frame)
    first = (tmp_path / "a" / "bars" / "2022" / "2022-12-27.parquet").read_bytes()
    a.write("bars", D2, frame)
    b.write("bars", D2, frame.clone())
    assert (tmp_path / "a" / "bars" / "2022" / "2022-12-27.parquet").read_bytes() == first
    assert (tmp_path / "b" / "bars" / "2022" / "2022-12-27.parquet").read_bytes() == first


def test_rewriting_a_partition_replaces_exactly_that_partition(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    store.write_many("bars", {D1: bars(2, 1), D2: bars(3, 2), D3: bars(4, 3)})
    store.write("labels", D2, bars(5, 4))
    neighbours = [
        tmp_path / "bars" / "2022" / "2022-12-23.parquet",
        tmp_path / "bars" / "2022" / "2022-12-28.parquet",
        tmp_path / "labels" / "2022" / "2022-12-27.parquet",
    ]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in neighbours}
    time.sleep(0.01)
    replacement = bars(7, 9)
    store.write("bars", D2, replacement)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in neighbours} == (
        before
    )
    assert store.read("bars", [D2]).equals(replacement)
    # nothing else was left behind (no temp files), and the set of files is unchanged
    assert sorted(files_under(tmp_path)) == [
        "bars/2022/2022-12-23.parquet",
        "bars/2022/2022-12-27.parquet",
        "bars/2022/2022-12-28.parquet",
        "labels/2022/2022-12-27.parquet",
    ]


def test_write_many_writes_in_date_order(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    written = store.write_many("bars", {D3: bars(1), D1: bars(2), D2: bars(3)})
    assert [Path(w.path).name for w in written] == [
        "2022-12-23.parquet",
        "2022-12-27.parquet",
        "2022-12-28.parquet",
    ]
    assert [w.rows for w in written] == [2, 3, 1]


def test_write_many_replaces_every_file_with_one_sync_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alphadag.storage import store as storage_mod

    store = PartitionStore(tmp_path)
    store.write_many("bars", {D1: bars(5), D2: bars(5)})
    calls: list[str] = []
    real = storage_mod._syncfs
    monkeypatch.setattr(storage_mod, "_syncfs", lambda path: calls.append(path) or real(path))
    store.write_many("bars", {D1: bars(1), D2: bars(2), D3: bars(3)})
    assert len(calls) == 1
    assert [store.read("bars", [d]).height for d in (D1, D2, D3)] == [1, 2, 3]
    assert not list(tmp_path.rglob("*.tmp"))


def test_write_many_failing_midway_keeps_the_old_files_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alphadag.storage import store as storage_mod

    store = PartitionStore(tmp_path)
    store.write_many("bars", {D1: bars(4), D2: bars(4)})
    before = {d: store.path("bars", d).read_bytes() for d in (D1, D2)}

    def disk_full(path: str) -> bool:
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr(storage_mod, "_syncfs", disk_full)
    with pytest.raises(PartitionWriteError, match=r"writing bars failed at .*No space left") as err:
        store.write_many("bars", {D1: bars(1), D2: bars(2)})
    assert err.value.permanent and err.value.errno == 28
    assert {d: store.path("bars", d).read_bytes() for d in (D1, D2)} == before
    assert not list(tmp_path.rglob("*.tmp"))


def test_read_concatenates_in_date_order_once_per_day(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    frames = {D1: bars(2, 1), D2: bars(3, 2), D3: bars(1, 3)}
    store.write_many("bars", frames)
    got = store.read("bars", [D3, D1, D2, D1])
    assert got.equals(pl.concat([frames[D1], frames[D2], frames[D3]]))


def test_reading_a_missing_partition_names_dataset_and_date(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    store.write("bars", D1, bars())
    with pytest.raises(FileNotFoundError, match="bars/2022-12-27"):
        store.read("bars", [D1, D2])
    with pytest.raises(FileNotFoundError, match="labels/2022-12-23"):
        store.read("labels", [D1])


def test_missing_ok_skips_missing_partitions(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    frame = bars(2)
    store.write("bars", D1, frame)
    assert store.read("bars", [D1, D2, D3], missing_ok=True).equals(frame)
    # empty_like is only a fallback: found data wins
    assert store.read("bars", [D1, D2], missing_ok=True, empty_like=bars(9)).equals(frame)


def test_empty_like_when_nothing_is_found(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    like = bars(4)
    got = store.read("bars", [D2, D3], missing_ok=True, empty_like=like)
    assert got.height == 0
    assert got.schema == like.schema
    with pytest.raises(FileNotFoundError, match="no bars partitions"):
        store.read("bars", [D2], missing_ok=True)
    # without missing_ok, a missing partition is an error even when empty_like is given
    with pytest.raises(FileNotFoundError, match="bars/2022-12-27"):
        store.read("bars", [D2], empty_like=like)
    with pytest.raises(FileNotFoundError, match="no bars partitions"):
        store.read("bars", [])


def test_a_stray_temp_file_never_breaks_read(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    frame = bars(10)
    store.write("bars", D2, frame)
    directory = tmp_path / "bars" / "2022"
    good = (directory / "2022-12-27.parquet").read_bytes()
    (directory / f".2022-12-27.parquet.{uuid.uuid4().hex}.tmp").write_bytes(good[: len(good) // 2])
    (directory / f".2022-12-28.parquet.{uuid.uuid4().hex}.tmp").write_bytes(b"garbage")
    assert store.read("bars", [D2]).equals(frame)
    assert not store.exists("bars", D3)
    assert store.read("bars", [D2, D3], missing_ok=True).equals(frame)


def test_file_url_root_is_a_local_path(tmp_path: Path) -> None:
    store = PartitionStore(f"file://{tmp_path}")
    frame = bars()
    store.write("bars", D2, frame)
    assert (tmp_path / "bars" / "2022" / "2022-12-27.parquet").is_file()
    assert store.read("bars", [D2]).equals(frame)


def test_file_url_root_stages_and_publishes_under_the_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # a URL taken for a relative path would land under here
    root = tmp_path / "root"
    store = PartitionStore(f"file://{root}")
    frame = bars()
    store.stage_many("bars", "run1", {D2: frame})
    assert (root / "_staging" / "bars" / "run1" / "2022" / "2022-12-27.parquet").is_file()
    assert store.read_staged("bars", "run1", [D2]).equals(frame)
    store.publish("bars", "run1", [D2])
    assert store.read("bars", [D2]).equals(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


# ---------------------------------------------------------------------------------------------
# fsspec memory filesystem


def test_memory_url_root_round_trips() -> None:
    root = f"memory://alphadag-tests/{uuid.uuid4().hex}"
    store = PartitionStore(root)
    frame, other = bars(3, 1), bars(4, 2)
    written = store.write("bars", D2, frame)
    store.write("bars", D3, other)
    assert written.path == f"{root}/bars/2022/2022-12-27.parquet"
    assert written.rows == 3
    assert store.exists("bars", D2)
    assert not store.exists("bars", D1)
    assert store.read("bars", [D3, D2]).equals(pl.concat([frame, other]))
    first = store.path("bars", D2).read_bytes()
    assert len(first) == written.bytes
    store.write("bars", D2, frame)
    assert store.path("bars", D2).read_bytes() == first
    with pytest.raises(FileNotFoundError, match="bars/2022-12-23"):
        store.read("bars", [D1, D2])
    assert store.read("bars", [D1], missing_ok=True, empty_like=frame).schema == frame.schema


def test_memory_and_local_stores_write_the_same_bytes(tmp_path: Path) -> None:
    frame = bars(20, 5)
    mem = PartitionStore(f"memory://alphadag-tests/{uuid.uuid4().hex}")
    mem.write("bars", D2, frame)
    PartitionStore(tmp_path).write("bars", D2, frame)
    assert (
        mem.path("bars", D2).read_bytes()
        == (tmp_path / "bars" / "2022" / "2022-12-27.parquet").read_bytes()
    )


# ---------------------------------------------------------------------------------------------
# property: round trip and determinism


@pytest.fixture(scope="session")
def prop_store(tmp_path_factory) -> PartitionStore:
    return PartitionStore(tmp_path_factory.mktemp("store_props"))


FRAMES = st.integers(min_value=0, max_value=30).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "ticker": st.lists(st.one_of(st.none(), st.text(max_size=8)), min_size=n, max_size=n),
            "close": st.lists(st.one_of(st.none(), st.floats()), min_size=n, max_size=n),
            "n": st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n),
        }
    )
)


@settings(max_examples=50, deadline=None)
@given(data=FRAMES, day=st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 1, 1)))
def test_round_trip_and_deterministic_bytes(
    prop_store: PartitionStore, data: dict, day: dt.date
) -> None:
    frame = pl.DataFrame(data, schema={"ticker": pl.String, "close": pl.Float64, "n": pl.Int64})
    written = prop_store.write("props", day, frame)
    first = Path(written.path).read_bytes()
    assert prop_store.read("props", [day]).equals(frame)
    prop_store.write("props", day, frame)
    assert Path(written.path).read_bytes() == first
    assert written.bytes == len(first)


# ---------------------------------------------------------------------------------------------
# crash safety: SIGKILL a writer at random moments


# Child process: rewrite one partition forever, alternating two large frames. It runs through the
# builtin ``exec`` so the child needs no import of this test module (and of pytest/hypothesis).
_CRASH_WRITER = """
import datetime as dt
import polars as pl
from alphadag.storage.store import PartitionStore

frames = (pl.read_parquet(path_a), pl.read_parquet(path_b))
store = PartitionStore(root)
conn.send("ready")
i = 0
while True:
    store.write("bars", day, frames[i % 2])
    i += 1
    conn.send(i)  # writes completed so far
"""


def _big_frame(seed: int, n: int = 250_000) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "ticker": rng.choice(["AAA", "BBB", "CCC", "DDD"], n),
            "open": rng.random(n),
            "close": rng.random(n),
            "volume": rng.random(n) * 1e6,
        }
    )


def test_a_killed_writer_never_leaves_a_torn_partition(tmp_path: Path) -> None:
    # forkserver with polars preloaded: each writer starts in milliseconds, and inherits no
    # polars thread pool (forking this process directly could deadlock the child).
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["polars", "alphadag.storage.store"])
    frame_a, frame_b = _big_frame(1), _big_frame(2)
    src_a, src_b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    frame_a.write_parquet(src_a)
    frame_b.write_parquet(src_b)
    root = tmp_path / "store"
    store = PartitionStore(root)
    store.write("bars", D2, frame_b)
    target = Path(store.path("bars", D2))
    bytes_b = target.read_bytes()
    store.write("bars", D2, frame_a)
    bytes_a = target.read_bytes()
    assert len(bytes_a) > 2_000_000
    assert bytes_a != bytes_b

    rng = random.Random(20221227)
    seen = {"a": 0, "b": 0}
    for _ in range(20):
        parent, child = ctx.Pipe()
        scope = {"root": str(root), "path_a": str(src_a), "path_b": str(src_b), "day": D2}
        proc = ctx.Process(target=exec, args=(_CRASH_WRITER, {**scope, "conn": child}), daemon=True)
        proc.start()
        try:
            assert parent.poll(15), "writer did not start"
            assert parent.recv() == "ready"
            # let 0-3 writes complete (a, b, a: the file alternates), then kill at a random
            # point of the next one; counting writes, not sleeping, keeps both outcomes reachable
            # however slow the machine is
            for _ in range(rng.randint(0, 3)):
                assert parent.poll(15), "writer stalled"
                parent.recv()
            time.sleep(rng.uniform(0.0, 0.05))
        finally:
            os.kill(proc.pid, signal.SIGKILL)  # also on failure: never leave a writer running
            proc.join(5)
        assert proc.exitcode == -signal.SIGKILL
        parent.close()

        data = target.read_bytes()
        assert data in (bytes_a, bytes_b), f"torn partition: {len(data)} bytes"
        seen["a" if data == bytes_a else "b"] += 1
        got = store.read("bars", [D2])
        assert got.equals(frame_a if data == bytes_a else frame_b)
        assert sorted(p.name for p in target.parent.iterdir() if not p.name.startswith(".")) == [
            "2022-12-27.parquet"
        ]
    # the kills landed at different points of the write cycle
    assert seen["a"] > 0 and seen["b"] > 0, seen
    # leftover temp files (hidden, *.tmp) of killed writes are harmless: plant one more, torn
    (target.parent / ".2022-12-27.parquet.0000.tmp").write_bytes(bytes_a[:1000])
    leftovers = list(target.parent.glob(".2022-12-27.parquet.*.tmp"))
    assert len(leftovers) >= 1
    assert store.read("bars", [D2]).equals(frame_a if target.read_bytes() == bytes_a else frame_b)
