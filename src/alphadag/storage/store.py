"""Partition storage: one Parquet file per (dataset, session), written atomically.

Layout: ``<root>/<dataset>/<YYYY>/<YYYY-MM-DD>.parquet`` (an unpartitioned dataset is one file,
``<root>/<dataset>/<dataset>.parquet``); this module is the only code that knows it. Readers ask
:meth:`PartitionStore.sessions` which sessions are published, :meth:`PartitionStore.read` for given
sessions and :meth:`PartitionStore.scan` for a date range (a ``pl.LazyFrame``); writers call
:meth:`PartitionStore.write` / :meth:`PartitionStore.write_many`, and
:func:`split_by_partition` cuts a run's frame into one frame per session. ``root`` is any local
path or fsspec URL (``s3://bucket/alphadag``, ``memory://...``) through :class:`upath.UPath`; every
method works on both. On a local filesystem a write goes to a
temporary file in the same directory, is fsynced, then renamed over the target (and the directory
fsynced), so a reader or a crash sees the old file or the new one, never a torn one. On an object
store a single PUT is already atomic. Writing the same frame twice gives byte-identical files.

Write-audit-publish: :meth:`PartitionStore.stage_many` writes a run's partitions under
``<root>/_staging/<dataset>/<run id>/<YYYY>/<YYYY-MM-DD>.parquet``, apart from the published
folders; the caller audits what :meth:`PartitionStore.read_staged` reads back, and
:meth:`PartitionStore.publish` moves only the passing sessions over the published files (one
``rename`` each on a local filesystem). A held (failing) session keeps its staged file for
inspection until the session is next published. Readers of ``<root>/<dataset>/`` see published
data only.

Errors name what they concern: a partition that cannot be read raises
:class:`CorruptPartitionError` (dataset, session, path); a write that fails (disk full, read-only,
permission) raises :class:`PartitionWriteError` (dataset, path, errno) after removing what it
wrote, so nothing half-written is published. Temp files of a writer that died (``kill -9``) are
swept on the next write of the same dataset.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import io
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl
from upath import UPath

_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_YEAR = re.compile(r"\d{4}")
_SESSION_FILE = re.compile(r"(\d{4}-\d{2}-\d{2})\.parquet")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
STAGING = "_staging"
"""The folder under the root that holds staged (not yet published) partitions."""

_HOST = socket.gethostname()
# a temp file is named after its writer: .<file>.<pid>@<host>.<uuid>.tmp; the sweep removes those of
# a writer that is gone (same host, no such pid) or, from another host, older than a day. Temp
# files of older versions (.<file>.<uuid>.tmp) have no writer: they are always stale.
_TEMP = re.compile(r"^\.(?P<file>.+?)\.(?:(?P<pid>\d+)@(?P<host>.+)\.)?[0-9a-f]{32}\.tmp$")
STALE_TEMP_SECONDS = 24 * 3600
"""Age after which a temp file written on another host counts as abandoned."""

# errno values of a write that retrying will not fix: the disk, not the moment, is the problem
PERMANENT_WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
)


class StorageError(RuntimeError):
    """A partition store failure that names the dataset, the session and the path."""


class CorruptPartitionError(StorageError):
    """A stored partition file cannot be read (truncated, not Parquet, wrong footer)."""

    def __init__(self, dataset: str, day: dt.date | None, path: str, cause: BaseException):
        self.dataset, self.day, self.path = dataset, day, path
        where = f"{dataset} partition {day.isoformat()}" if day else dataset
        super().__init__(f"{where} cannot be read: {path} ({type(cause).__name__}: {cause})")


class PartitionWriteError(StorageError):
    """Writing a partition failed; nothing of the failed write was published."""

    def __init__(self, dataset: str, path: str, cause: OSError):
        self.dataset, self.path = dataset, path
        self.errno = cause.errno
        reason = os.strerror(cause.errno) if cause.errno else str(cause)
        super().__init__(
            f"writing {dataset} failed at {path}: {reason} (errno {cause.errno}); "
            "the published files of this write were left as they were"
        )

    @property
    def permanent(self) -> bool:
        """Whether retrying cannot help (disk full, quota, read-only, permission)."""
        return self.errno in PERMANENT_WRITE_ERRNOS


def _local_path(path: UPath) -> str | None:
    """The OS path of ``path`` when it lives on the local filesystem, else ``None``."""
    if getattr(path, "protocol", "") in ("", "file", "local"):
        return os.fspath(path.path if hasattr(path, "path") else path)
    return None


@dataclass(frozen=True)
class WrittenPartition:
    """What one partition write produced: where, how many rows and bytes."""

    path: str
    rows: int
    bytes: int


class PartitionStore:
    """Parquet files, one per dataset and session date, under ``root``.

    >>> import tempfile
    >>> store = PartitionStore(tempfile.mkdtemp())
    >>> day = dt.date(2022, 12, 27)
    >>> w = store.write("bars", day, pl.DataFrame({"ticker": ["AAPL"], "close": [130.0]}))
    >>> w.rows, store.read("bars", [day])["ticker"].to_list()
    (1, ['AAPL'])
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = UPath(root)
        self._local_root = _local_path(self.root)  # plain strings on a local filesystem: fast

    def _local_file(self, *parts: str) -> str:
        return os.path.join(self._local_root, *parts)

    def path(self, dataset: str, day: dt.date) -> UPath:
        """Where the ``dataset`` partition of ``day`` lives."""
        _check_dataset(dataset)
        if not isinstance(day, dt.date):
            raise TypeError(f"partition day must be a datetime.date, got {day!r}")
        return self.root / dataset / f"{day:%Y}" / f"{day.isoformat()}.parquet"

    def staging_path(self, dataset: str, run_id: str, day: dt.date) -> UPath:
        """Where run ``run_id`` stages the ``dataset`` partition of ``day`` before its audit."""
        _check_dataset(dataset)
        if not _RUN_ID.fullmatch(run_id):
            raise ValueError(f"run id {run_id!r} must match {_RUN_ID.pattern}")
        return self.root / STAGING / dataset / run_id / f"{day:%Y}" / f"{day.isoformat()}.parquet"

    def sessions(
        self, dataset: str, start: dt.date | None = None, end: dt.date | None = None
    ) -> list[dt.date]:
        """The sessions with a published ``dataset`` partition (in ``start..end`` when given), sorted.

        Staged, temporary and foreign files are not sessions; a dataset never written has none.

        >>> import tempfile
        >>> store = PartitionStore(tempfile.mkdtemp())
        >>> frame = pl.DataFrame({"x": [1]})
        >>> _ = store.write_many("bars", {dt.date(2022, 12, 27): frame, dt.date(2023, 1, 3): frame})
        >>> [d.isoformat() for d in store.sessions("bars", start=dt.date(2023, 1, 1))]
        ['2023-01-03']
        """
        _check_dataset(dataset)
        folder = self.root / dataset
        names: list[tuple[str, str]] = []  # (year folder, file name)
        local = _local_path(folder)
        if local is not None:
            if not os.path.isdir(local):
                return []
            for year in os.scandir(local):
                if year.is_dir() and _YEAR.fullmatch(year.name):
                    names.extend((year.name, f.name) for f in os.scandir(year.path))
        else:
            if not folder.exists():
                return []
            for year in folder.iterdir():
                if _YEAR.fullmatch(year.name) and year.is_dir():
                    names.extend((year.name, f.name) for f in year.iterdir())
        lo, hi = start or dt.date.min, end or dt.date.max
        days = []
        for year, name in names:
            m = _SESSION_FILE.fullmatch(name)
            if m is None or not name.startswith(year):
                continue
            try:
                day = dt.date.fromisoformat(m.group(1))
            except ValueError:  # 2023-02-30.parquet: not a session file
                continue
            if lo <= day <= hi:
                days.append(day)
        return sorted(days)

    def scan(
        self, dataset: str, start: dt.date | None = None, end: dt.date | None = None
    ) -> pl.LazyFrame:
        """The published ``dataset`` partitions of ``start..end`` (default: all) as one LazyFrame.

        Rows come in session order. Partitions written before a column was added get nulls in it
        (the newest partition in the range sets the columns). A range with no published session
        gives an empty frame with the dataset's columns; a dataset with no partition at all raises
        ``FileNotFoundError`` naming it. On a local root the files are scanned lazily (a damaged
        file fails at ``collect``); on an object store (any fsspec URL) the range's files are read
        through the store's filesystem, as :meth:`read` does, so credentials are the store's.

        >>> import tempfile
        >>> store = PartitionStore(tempfile.mkdtemp())
        >>> day = dt.date(2022, 12, 27)
        >>> _ = store.write("bars", day, pl.DataFrame({"date": [day], "close": [1.5]}))
        >>> store.scan("bars", start=day).select(pl.col("close").sum()).collect().item()
        1.5
        """
        days = self.sessions(dataset, start, end)
        if not days:
            newest = self.sessions(dataset)[-1:]
            if not newest:
                raise FileNotFoundError(
                    f"no {dataset} partition has been published under {self.root}: "
                    "materialize it first"
                )
            return self.read(dataset, newest).clear().lazy()
        paths = [self.path(dataset, d) for d in days]
        local = [_local_path(p) for p in paths]
        if any(lp is None for lp in local):
            return _read_files(dataset, list(zip(days, paths, strict=True))).lazy()
        try:
            schema = pl.read_parquet_schema(local[-1])
        except Exception as err:
            raise CorruptPartitionError(dataset, days[-1], local[-1], err) from err
        return pl.scan_parquet(
            local, schema=schema, missing_columns="insert", extra_columns="ignore", glob=False
        )

    def exists(self, dataset: str, day: dt.date) -> bool:
        """Whether the partition file exists."""
        return self.path(dataset, day).exists()

    def table_path(self, dataset: str) -> UPath:
        """Where an unpartitioned ``dataset`` (one file, e.g. ``training_set``) lives."""
        _check_dataset(dataset)
        return self.root / dataset / f"{dataset}.parquet"

    def write(self, dataset: str, day: dt.date, frame: pl.DataFrame) -> WrittenPartition:
        """Atomically replace the ``dataset`` partition of ``day`` with ``frame``."""
        return self.write_many(dataset, {day: frame})[0]

    def write_table(self, dataset: str, frame: pl.DataFrame) -> WrittenPartition:
        """Atomically replace the unpartitioned ``dataset`` with ``frame``.

        >>> import tempfile
        >>> store = PartitionStore(tempfile.mkdtemp())
        >>> _ = store.write_table("training_set", pl.DataFrame({"x": [1.0]}))
        >>> store.read_table("training_set")["x"].to_list()
        [1.0]
        """
        target = self.table_path(dataset)
        self.sweep(dataset)
        data = _parquet_bytes(frame)
        with _write_errors(dataset, target):
            local = _local_path(target)
            if local is None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)  # one PUT: atomic on object stores
            else:
                _atomic_write_local(local, data)
        return WrittenPartition(path=str(target), rows=frame.height, bytes=len(data))

    def read_table(self, dataset: str) -> pl.DataFrame:
        """The unpartitioned ``dataset`` (``FileNotFoundError`` naming it when absent)."""
        path = self.table_path(dataset)
        if not path.exists():
            raise FileNotFoundError(f"{dataset} has not been materialized ({path})")
        local = _local_path(path)
        try:
            return pl.read_parquet(local if local is not None else io.BytesIO(path.read_bytes()))
        except Exception as err:
            raise CorruptPartitionError(dataset, None, str(path), err) from err

    def write_many(
        self, dataset: str, frames: dict[dt.date, pl.DataFrame]
    ) -> list[WrittenPartition]:
        """Write several partitions (each atomically), in date order.

        On a local filesystem the files are made durable together: every temp file is written,
        then one ``syncfs`` of their filesystem (one ``fsync`` per file where ``syncfs`` is not
        available), then each is renamed over its target and each directory fsynced once. A
        crash at any point leaves every partition old or new, never torn, as with ``write``;
        a ranged run of 1,000 sessions pays one sync instead of 1,000. A failed write (disk
        full) raises :class:`PartitionWriteError` and replaces no file; temp files of earlier
        writers that died are swept first.
        """
        days = sorted(frames)
        targets = [self.path(dataset, day) for day in days]
        self.sweep(dataset)
        payloads = [_parquet_bytes(frames[day]) for day in days]
        local = [_local_path(t) for t in targets]
        with _write_errors(dataset, targets[0] if targets else self.root / dataset):
            if len(days) > 1 and all(lp is not None for lp in local):
                _atomic_write_many_local(list(zip(local, payloads, strict=True)))
            else:
                for target, lp, data in zip(targets, local, payloads, strict=True):
                    if lp is None:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(data)
                    else:
                        _atomic_write_local(lp, data)
        return [
            WrittenPartition(path=str(t), rows=frames[d].height, bytes=len(b))
            for t, d, b in zip(targets, days, payloads, strict=True)
        ]

    # -- write-audit-publish -----------------------------------------------------------------

    def stage_many(
        self, dataset: str, run_id: str, frames: dict[dt.date, pl.DataFrame]
    ) -> list[WrittenPartition]:
        """Write run ``run_id``'s partitions to its staging folder (nothing is published).

        The staged files are durable when this returns (one ``syncfs``), so a later
        :meth:`publish` only renames. A failed write removes this run's staged files of
        ``frames`` and raises :class:`PartitionWriteError`.
        """
        days = sorted(frames)
        targets = [self.staging_path(dataset, run_id, day) for day in days]
        self.sweep(dataset)
        payloads = [_parquet_bytes(frames[day]) for day in days]
        written: list[UPath | str] = []
        try:
            with _write_errors(dataset, targets[0] if targets else self.root / STAGING):
                if self._local_root is None:
                    for target, data in zip(targets, payloads, strict=True):
                        target.parent.mkdir(parents=True, exist_ok=True)
                        written.append(target)
                        target.write_bytes(data)
                else:
                    # OS paths: str() of a file:// UPath is its URL, not a path open() takes
                    local = [_local_path(t) or "" for t in targets]
                    made: set[str] = set()
                    for target, data in zip(local, payloads, strict=True):
                        folder = os.path.dirname(target)
                        if folder not in made:
                            os.makedirs(folder, exist_ok=True)
                            made.add(folder)
                        written.append(target)
                        with open(target, "wb") as fh:
                            fh.write(data)
                    if local and not _syncfs(os.path.dirname(local[0])):
                        for target in local:
                            _fsync(target)
        except BaseException:
            for target in written:
                if isinstance(target, str):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(target)
                else:
                    target.unlink(missing_ok=True)
            raise
        return [
            WrittenPartition(path=str(t), rows=frames[d].height, bytes=len(b))
            for t, d, b in zip(targets, days, payloads, strict=True)
        ]

    def read_staged(self, dataset: str, run_id: str, days: Iterable[dt.date]) -> pl.DataFrame:
        """Run ``run_id``'s staged partitions of ``days`` (what an audit checks), in date order."""
        paths = [(d, self.staging_path(dataset, run_id, d)) for d in sorted(set(days))]
        return _read_files(dataset, paths)

    def publish(self, dataset: str, run_id: str, days: Iterable[dt.date]) -> list[str]:
        """Move run ``run_id``'s staged partitions of ``days`` over the published files.

        One atomic rename per session on a local filesystem (then one fsync per directory); on
        an object store one PUT of the staged bytes, then the staged object is deleted. Staged
        files of the same sessions left by earlier runs (held or crashed) are superseded and
        removed. Returns the published paths.
        """
        days = sorted(set(days))
        if days:
            self.staging_path(dataset, run_id, days[0])  # validates dataset and run id
        published: list[str] = []
        dirs: set[str] = set()
        if self._local_root is not None:
            for day in days:
                year, name = f"{day:%Y}", f"{day.isoformat()}.parquet"
                staged = self._local_file(STAGING, dataset, run_id, year, name)
                target = self._local_file(dataset, year, name)
                folder = os.path.dirname(target)
                with _write_errors(dataset, target):
                    if folder not in dirs:
                        os.makedirs(folder, exist_ok=True)
                        dirs.update({folder, os.path.dirname(staged)})
                    os.replace(staged, target)
                published.append(target)
            for directory in sorted(dirs):
                if os.path.isdir(directory):
                    _fsync(directory)
        else:
            for day in days:
                staged, target = self.staging_path(dataset, run_id, day), self.path(dataset, day)
                with _write_errors(dataset, target):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(staged.read_bytes())
                    staged.unlink()
                published.append(str(target))
        self._remove_superseded(dataset, run_id, set(days))
        return published

    def discard_staged(self, dataset: str, run_id: str) -> None:
        """Remove everything run ``run_id`` staged for ``dataset``."""
        folder = self.root / STAGING / dataset / run_id
        local = _local_path(folder)
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
        elif folder.exists():
            folder.rmdir(recursive=True)

    def staged_runs(self, dataset: str) -> dict[str, list[dt.date]]:
        """Runs with staged (held or leftover) partitions of ``dataset``, and their sessions."""
        folder = self.root / STAGING / dataset
        if not folder.exists():
            return {}
        out: dict[str, list[dt.date]] = {}
        for run_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            found = sorted(
                dt.date.fromisoformat(f.name.removesuffix(".parquet"))
                for f in run_dir.glob("*/*.parquet")
            )
            if found:
                out[run_dir.name] = found
        return out

    def _remove_superseded(self, dataset: str, run_id: str, days: set[dt.date]) -> None:
        """Delete other runs' staged files of ``days`` (now published) and empty folders."""
        folder = self.root / STAGING / dataset
        local = _local_path(folder)
        if local is None or not os.path.isdir(local):
            return
        names = {f"{d.isoformat()}.parquet" for d in days}
        for run_dir in os.scandir(local):
            if not run_dir.is_dir():
                continue
            for year in list(os.scandir(run_dir.path)):
                if not year.is_dir():
                    continue
                if run_dir.name != run_id:
                    for f in os.scandir(year.path):
                        if f.name in names:
                            os.unlink(f.path)
                _rmdir_if_empty(year.path)
            _rmdir_if_empty(run_dir.path)
        _rmdir_if_empty(local)
        _rmdir_if_empty(os.path.dirname(local))

    def sweep(self, dataset: str) -> list[str]:
        """Remove temp files of ``dataset`` left by writers that died; returns their paths.

        A temp file is stale when its writer ran on this host and its process is gone, when it
        was written on another host more than a day ago, or when it has the older name that
        carries no writer. Only local filesystems have temp files (an object store's PUT has
        none).
        """
        local = _local_path(self.root / dataset)
        if local is None or not os.path.isdir(local):
            return []
        removed = []
        folders = [local] + [e.path for e in os.scandir(local) if e.is_dir()]
        now = time.time()
        for folder in folders:
            for entry in os.scandir(folder):
                m = _TEMP.match(entry.name)
                if m is None or not entry.is_file():
                    continue
                if _writer_gone(m, entry, now):
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        continue
                    removed.append(entry.path)
        return removed

    def read(
        self,
        dataset: str,
        days: Iterable[dt.date],
        *,
        missing_ok: bool = False,
        empty_like: pl.DataFrame | None = None,
    ) -> pl.DataFrame:
        """Concatenate the partitions of ``days`` (in date order).

        A missing partition raises ``FileNotFoundError`` naming it, unless ``missing_ok``; when
        nothing at all is found, ``empty_like.clear()`` is returned if given. A file that cannot
        be read raises :class:`CorruptPartitionError` naming its session and path.
        """
        paths = []
        for day in sorted(set(days)):
            p = self.path(dataset, day)
            if not p.exists():
                if missing_ok:
                    continue
                raise FileNotFoundError(
                    f"partition {dataset}/{day.isoformat()} has not been materialized ({p})"
                )
            paths.append((day, p))
        if not paths:
            if empty_like is not None:
                return empty_like.clear()
            raise FileNotFoundError(f"no {dataset} partitions found for the requested days")
        return _read_files(dataset, paths)


def split_by_partition(
    frame: pl.DataFrame, column: str, days: list[dt.date]
) -> dict[dt.date, pl.DataFrame]:
    """One frame per day of ``days`` (empty ones included) keyed by date, from ``frame[column]``.

    What :meth:`PartitionStore.write_many` takes; a row whose ``column`` is not one of ``days``
    raises ``ValueError`` (it belongs to no partition being written).

    >>> f = pl.DataFrame({"d": [dt.date(2020, 1, 2)], "x": [1]})
    >>> {k.isoformat(): v.height for k, v in split_by_partition(f, "d", [dt.date(2020, 1, 2),
    ...     dt.date(2020, 1, 3)]).items()}
    {'2020-01-02': 1, '2020-01-03': 0}
    """
    stray = frame.filter(~pl.col(column).is_in(days))
    if stray.height:
        raise ValueError(
            f"{stray.height} row(s) have {column} outside the partitions being written, "
            f"e.g. {stray.row(0, named=True)}"
        )
    parts = {key[0]: part for key, part in frame.partition_by(column, as_dict=True).items()}
    empty = frame.clear()
    return {day: parts.get(day, empty) for day in sorted(days)}


def _check_dataset(dataset: str) -> None:
    if not _DATASET.fullmatch(dataset):
        raise ValueError(f"dataset name {dataset!r} must match {_DATASET.pattern}")


def _read_files(dataset: str, paths: list[tuple[dt.date, UPath]]) -> pl.DataFrame:
    """Read and concatenate ``paths``; the first unreadable one raises naming its session."""
    local = [_local_path(p) for _, p in paths]
    try:
        if all(lp is not None for lp in local):
            return pl.read_parquet(local)
        return pl.concat([pl.read_parquet(io.BytesIO(p.read_bytes())) for _, p in paths])
    except FileNotFoundError as err:
        missing = next((f"{d}" for d, p in paths if not p.exists()), "?")
        raise FileNotFoundError(f"partition {dataset}/{missing} is missing ({err})") from err
    except Exception as err:
        # the multi-file read failed: read file by file (only on this path) to find the one that
        # cannot be read; if every file reads, their schemas differ (a column added since older
        # partitions were written): concatenate them with nulls for the missing columns
        frames = []
        for day, p in paths:
            try:
                frames.append(pl.read_parquet(io.BytesIO(p.read_bytes())))
            except Exception as cause:
                raise CorruptPartitionError(dataset, day, str(p), cause) from cause
        try:
            return pl.concat(frames, how="diagonal_relaxed")
        except Exception as cause:
            raise CorruptPartitionError(dataset, None, str(paths[0][1].parent), cause) from err


class _write_errors:
    """Turn an ``OSError`` of a write into :class:`PartitionWriteError` naming the path."""

    def __init__(self, dataset: str, path: UPath | str) -> None:
        self.dataset, self.path = dataset, str(path)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, err, tb) -> bool:
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
            where = getattr(err, "filename", None) or self.path
            raise PartitionWriteError(self.dataset, str(where), err) from err
        return False


def _writer_gone(m: re.Match[str], entry: os.DirEntry[str], now: float) -> bool:
    pid, host = m.group("pid"), m.group("host")
    if pid is None:  # an older version's name: no writer is recorded
        return True
    if host == _HOST:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False
    try:
        return now - entry.stat().st_mtime > STALE_TEMP_SECONDS
    except FileNotFoundError:
        return False


def _rmdir_if_empty(path: str) -> None:
    with contextlib.suppress(OSError):  # not empty, or already gone
        os.rmdir(path)


def _temp_name(path: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{os.getpid()}@{_HOST}.{uuid.uuid4().hex}.tmp")


def _fsync(path: str) -> None:
    """fsync a file or a directory by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def _syncfs(path: str) -> bool:
    """Flush the filesystem holding ``path`` (Linux ``syncfs``); False where unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs failed: {os.strerror(err)}", path)
    finally:
        os.close(fd)
    return True


def _atomic_write_many_local(items: list[tuple[str, bytes]]) -> None:
    """Write every (path, data) atomically: temp files, one sync, renames, directory fsyncs."""
    temps: list[tuple[str, str]] = []
    try:
        for path, data in items:
            directory = os.path.dirname(path)
            os.makedirs(directory, exist_ok=True)
            tmp = _temp_name(path)
            temps.append((tmp, path))
            with open(tmp, "wb") as fh:
                fh.write(data)
        if not _syncfs(os.path.dirname(items[0][0])):
            for tmp, _ in temps:
                _fsync(tmp)
        for tmp, path in temps:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    for directory in sorted({os.path.dirname(p) for p, _ in items}):
        _fsync(directory)


def _atomic_write_local(path: str, data: bytes) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = _temp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync(directory)
