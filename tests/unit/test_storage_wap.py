"""The partition store's write-audit-publish, temp-file sweep and named errors, on real files.

Staged partitions live under ``<root>/_staging/<dataset>/<run id>/``; only :meth:`publish` moves
them over the published files. A writer killed with SIGKILL leaves a temp file that the next write
of the dataset removes; a full disk (a real 64 KiB tmpfs where this runs as root, else a real
file-size limit) fails with the dataset and path named and replaces nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from alphadag.storage import (
    STAGING,
    CorruptPartitionError,
    PartitionStore,
)

D1, D2, D3 = dt.date(2024, 3, 4), dt.date(2024, 3, 5), dt.date(2024, 3, 6)


def frame(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"ticker": [f"T{i:04d}" for i in range(n)], "close": rng.random(n) + 1})


def published(root: Path, dataset: str = "bars") -> dict[str, bytes]:
    folder = root / dataset
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}


def test_staged_partitions_are_invisible_until_published(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    store.write_many("bars", {D1: frame(3, 1), D2: frame(3, 2)})
    before = published(tmp_path)

    staged = store.stage_many("bars", "run1", {D1: frame(5, 3), D2: frame(0), D3: frame(4, 4)})
    assert [Path(w.path) for w in staged] == [
        tmp_path / STAGING / "bars" / "run1" / "2024" / f"{d}.parquet" for d in (D1, D2, D3)
    ]
    assert published(tmp_path) == before  # readers of bars/ see nothing new
    assert store.read("bars", [D1, D2]).height == 6
    assert not store.exists("bars", D3)
    assert store.read_staged("bars", "run1", [D1, D2, D3]).height == 9

    # D2 fails its audit (0 rows): only D1 and D3 are published
    paths = store.publish("bars", "run1", [D1, D3])
    assert paths == [str(tmp_path / "bars" / "2024" / f"{d}.parquet") for d in (D1, D3)]
    assert store.read("bars", [D1]).equals(frame(5, 3))
    assert store.read("bars", [D3]).equals(frame(4, 4))
    assert published(tmp_path)["2024-03-05.parquet"] == before["2024-03-05.parquet"]
    # the held session stays staged for inspection
    assert store.staged_runs("bars") == {"run1": [D2]}
    assert store.read_staged("bars", "run1", [D2]).height == 0


def test_publishing_a_session_removes_its_older_held_copies(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    store.stage_many("bars", "held", {D1: frame(1), D2: frame(1)})
    store.stage_many("bars", "later", {D2: frame(2, 5)})
    store.publish("bars", "later", [D2])
    assert store.staged_runs("bars") == {"held": [D1]}
    store.stage_many("bars", "last", {D1: frame(3, 6)})
    store.publish("bars", "last", [D1])
    assert store.staged_runs("bars") == {}
    assert not (tmp_path / STAGING).exists()  # nothing left to inspect: the folder is gone
    assert store.read("bars", [D1, D2]).height == 5


def test_discard_staged_removes_a_runs_folder(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    store.stage_many("features", "r", {D1: frame(2)})
    store.discard_staged("features", "r")
    assert store.staged_runs("features") == {}


def test_run_ids_and_datasets_cannot_escape_the_root(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    with pytest.raises(ValueError, match="run id"):
        store.staging_path("bars", "../x", D1)
    with pytest.raises(ValueError, match="dataset name"):
        store.staging_path("../bars", "r", D1)


_KILLED_WRITER = textwrap.dedent(
    """
    import datetime as dt, os, sys
    import numpy as np, polars as pl
    from alphadag.storage import store as storage

    store = storage.PartitionStore(sys.argv[1])
    n = 2_000_000
    big = pl.DataFrame({"x": np.random.default_rng(0).random(n), "y": np.arange(n)})
    real_open = open

    class Stalling:  # the temp file is open and half written when the kill lands
        def __init__(self, path, mode):
            self.fh = real_open(path, mode)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.fh.close()
        def write(self, payload):
            self.fh.write(payload[: len(payload) // 2])
            self.fh.flush()
            print("half", flush=True)
            import time
            time.sleep(60)
        def flush(self):
            pass
        def fileno(self):
            return self.fh.fileno()

    storage.open = Stalling
    store.write("bars", dt.date(2024, 3, 5), big)
    """
)


def test_a_killed_writers_temp_file_is_swept_on_the_next_write(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    store.write("bars", D2, frame(3))
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "half"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    temps = list((tmp_path / "bars" / "2024").glob(".*.tmp"))
    assert len(temps) == 1 and f".{proc.pid}@" in temps[0].name
    assert store.read("bars", [D2]).equals(frame(3))  # the published file is untouched

    # a live writer's temp file (this process) and one of an older version's name
    host = socket.gethostname()
    live = (
        tmp_path
        / "bars"
        / "2024"
        / f".2024-03-04.parquet.{os.getpid()}@{host}.{uuid.uuid4().hex}.tmp"
    )
    live.write_bytes(b"x")
    legacy = tmp_path / "bars" / "2024" / f".2024-03-04.parquet.{uuid.uuid4().hex}.tmp"
    legacy.write_bytes(b"x")
    # another host's: kept for a day, then swept
    other = tmp_path / "bars" / "2024" / f".2024-03-06.parquet.1@elsewhere.{uuid.uuid4().hex}.tmp"
    other.write_bytes(b"x")
    old = tmp_path / "bars" / "2024" / f".2024-03-06.parquet.2@elsewhere.{uuid.uuid4().hex}.tmp"
    old.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))

    store.write("bars", D1, frame(2))  # the next write of the dataset sweeps
    left = sorted(p.name for p in (tmp_path / "bars" / "2024").glob(".*.tmp"))
    assert left == sorted([live.name, other.name])
    assert store.read("bars", [D1, D2]).height == 5


def test_a_corrupt_partition_is_named_with_its_path(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    store.write_many("bars", {D1: frame(100, 1), D2: frame(100, 2), D3: frame(100, 3)})
    path = Path(store.path("bars", D2))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated: no footer
    with pytest.raises(CorruptPartitionError) as err:
        store.read("bars", [D1, D2, D3])
    assert err.value.day == D2 and err.value.path == str(path)
    assert f"bars partition 2024-03-05 cannot be read: {path}" in str(err.value)

    path.write_bytes(b"<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(CorruptPartitionError, match="bars partition 2024-03-05 cannot be read"):
        store.read("bars", [D2])


_FILL_DISK = textwrap.dedent(
    """
    import datetime as dt, resource, signal, sys
    import numpy as np, polars as pl
    from alphadag.storage.store import PartitionStore, PartitionWriteError

    if sys.argv[2] == "rlimit":  # a real file-size limit where no tmpfs can be mounted
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))
    store = PartitionStore(sys.argv[1])
    rng = np.random.default_rng(1)
    frames = {
        dt.date(2024, 3, d): pl.DataFrame({"x": rng.random(30_000)}) for d in (4, 5, 6)
    }
    try:
        store.%s
    except PartitionWriteError as err:
        print("ERROR", err.permanent, err.path, str(err), sep="|")
    """
)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 64 KiB tmpfs when this process may mount one, else a directory and a file-size limit."""
    mount = tmp_path / "small"
    mount.mkdir()
    ok = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    yield mount, ("tmpfs" if ok.returncode == 0 else "rlimit")
    if ok.returncode == 0:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("call", ["write_many('bars', frames)", "stage_many('bars', 'r1', frames)"])
def test_a_full_disk_names_the_path_and_publishes_nothing(small_disk, call: str) -> None:
    root, how = small_disk
    store = PartitionStore(root)
    store.write("bars", D1, frame(3))
    before = published(root)
    out = subprocess.run(
        [sys.executable, "-c", _FILL_DISK % call, str(root), how],
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("ERROR"))
    _, permanent, path, message = line.split("|")
    assert permanent == "True", message
    assert path.startswith(str(root)) and "writing bars failed at" in message
    assert ("No space left on device" if how == "tmpfs" else "File too large") in message
    assert published(root) == before  # nothing replaced, nothing new
    assert not list(root.rglob("*.tmp"))
    assert not list(root.glob(f"{STAGING}/**/*.parquet"))  # a failed staging leaves nothing


def test_partitions_written_before_a_column_was_added_still_read(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    store.write("raw_bars", D1, pl.DataFrame({"ticker": ["A"], "close": [1.0]}))
    store.write(
        "raw_bars", D2, pl.DataFrame({"ticker": ["B"], "close": [2.0], "parse_errors": ["x"]})
    )
    got = store.read("raw_bars", [D1, D2])
    assert got.to_dicts() == [
        {"ticker": "A", "close": 1.0, "parse_errors": None},
        {"ticker": "B", "close": 2.0, "parse_errors": "x"},
    ]
