"""Partition storage: one Parquet file per (dataset, session), written atomically.

Layout: ``<root>/<dataset>/<YYYY>/<YYYY-MM-DD>.parquet``. ``root`` is any local path or fsspec URL
(``s3://bucket/alphadag``) through :class:`upath.UPath`. On a local filesystem a write goes to a
temporary file in the same directory, is fsynced, then renamed over the target (and the directory
fsynced), so a reader or a crash sees the old file or the new one, never a torn one. On an object
store a single PUT is already atomic. Writing the same frame twice gives byte-identical files.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import io
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl
from upath import UPath

_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


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

    def path(self, dataset: str, day: dt.date) -> UPath:
        """Where the ``dataset`` partition of ``day`` lives."""
        if not _DATASET.fullmatch(dataset):
            raise ValueError(f"dataset name {dataset!r} must match {_DATASET.pattern}")
        if not isinstance(day, dt.date):
            raise TypeError(f"partition day must be a datetime.date, got {day!r}")
        return self.root / dataset / f"{day:%Y}" / f"{day.isoformat()}.parquet"

    def exists(self, dataset: str, day: dt.date) -> bool:
        """Whether the partition file exists."""
        return self.path(dataset, day).exists()

    def table_path(self, dataset: str) -> UPath:
        """Where an unpartitioned ``dataset`` (one file, e.g. ``training_set``) lives."""
        if not _DATASET.fullmatch(dataset):
            raise ValueError(f"dataset name {dataset!r} must match {_DATASET.pattern}")
        return self.root / dataset / f"{dataset}.parquet"

    def write(self, dataset: str, day: dt.date, frame: pl.DataFrame) -> WrittenPartition:
        """Atomically replace the ``dataset`` partition of ``day`` with ``frame``."""
        return self._write(self.path(dataset, day), frame)

    def write_table(self, dataset: str, frame: pl.DataFrame) -> WrittenPartition:
        """Atomically replace the unpartitioned ``dataset`` with ``frame``.

        >>> import tempfile
        >>> store = PartitionStore(tempfile.mkdtemp())
        >>> _ = store.write_table("training_set", pl.DataFrame({"x": [1.0]}))
        >>> store.read_table("training_set")["x"].to_list()
        [1.0]
        """
        return self._write(self.table_path(dataset), frame)

    def read_table(self, dataset: str) -> pl.DataFrame:
        """The unpartitioned ``dataset`` (``FileNotFoundError`` naming it when absent)."""
        path = self.table_path(dataset)
        if not path.exists():
            raise FileNotFoundError(f"{dataset} has not been materialized ({path})")
        local = _local_path(path)
        return pl.read_parquet(local if local is not None else io.BytesIO(path.read_bytes()))

    def _write(self, target: UPath, frame: pl.DataFrame) -> WrittenPartition:
        data = _parquet_bytes(frame)
        local = _local_path(target)
        if local is None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)  # one PUT: atomic on object stores
        else:
            _atomic_write_local(local, data)
        return WrittenPartition(path=str(target), rows=frame.height, bytes=len(data))

    def write_many(
        self, dataset: str, frames: dict[dt.date, pl.DataFrame]
    ) -> list[WrittenPartition]:
        """Write several partitions (each atomically), in date order.

        On a local filesystem the files are made durable together: every temp file is written,
        then one ``syncfs`` of their filesystem (one ``fsync`` per file where ``syncfs`` is not
        available), then each is renamed over its target and each directory fsynced once. A
        crash at any point leaves every partition old or new, never torn, as with ``write``;
        a ranged run of 1,000 sessions pays one sync instead of 1,000.
        """
        days = sorted(frames)
        targets = [self.path(dataset, day) for day in days]
        payloads = [_parquet_bytes(frames[day]) for day in days]
        local = [_local_path(t) for t in targets]
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
        nothing at all is found, ``empty_like.clear()`` is returned if given.
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
            paths.append(p)
        if not paths:
            if empty_like is not None:
                return empty_like.clear()
            raise FileNotFoundError(f"no {dataset} partitions found for the requested days")
        local = [_local_path(p) for p in paths]
        if all(lp is not None for lp in local):
            return pl.read_parquet(local)
        return pl.concat([pl.read_parquet(io.BytesIO(p.read_bytes())) for p in paths])


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


def _fsync_dir(directory: str) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _atomic_write_many_local(items: list[tuple[str, bytes]]) -> None:
    """Write every (path, data) atomically: temp files, one sync, renames, directory fsyncs."""
    temps: list[tuple[str, str]] = []
    try:
        for path, data in items:
            directory = os.path.dirname(path)
            os.makedirs(directory, exist_ok=True)
            tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
            temps.append((tmp, path))
            with open(tmp, "wb") as fh:
                fh.write(data)
        if not _syncfs(os.path.dirname(items[0][0])):
            for tmp, _ in temps:
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        for tmp, path in temps:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    for directory in sorted({os.path.dirname(p) for p, _ in items}):
        _fsync_dir(directory)


def _atomic_write_local(path: str, data: bytes) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
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
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def ticker_path(directory: str | os.PathLike[str], ticker: str, suffix: str = ".parquet") -> UPath:
    """A per-ticker file under ``directory``, for a ticker that is canonical (raises otherwise).

    The allow-list pattern admits no separator, dot or ``..``, so the result is always a direct
    child of ``directory``.

    >>> str(ticker_path("/data/exports", "BRK-B"))
    '/data/exports/BRK-B.parquet'
    """
    from alphadag.market.tickers import TICKER_PATTERN, TickerError

    if not TICKER_PATTERN.fullmatch(ticker):
        raise TickerError(f"ticker {ticker!r} is not canonical; call canonical_ticker() first")
    return UPath(directory) / f"{ticker}{suffix}"
