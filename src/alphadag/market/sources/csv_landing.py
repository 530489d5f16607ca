"""A landing-directory source: vendor CSV or Parquet files dropped into a local or fsspec directory.

:class:`CsvLandingSource` reads every matching file of a landing directory (a local path or any
``fsspec``/``UPath`` URL such as ``s3://bucket/landing``), either one file per ticker (the ticker
from a mapped column, or from the file name when there is none) or one file per day holding all
tickers. Vendor columns are renamed through ``column_map``, dates parsed (``date_format`` or ISO),
and every row keeps the file it came from in ``origin``; values are otherwise kept as delivered,
because validation belongs to the ``bars`` asset.

Each file is judged on its own: a file that cannot be read as bars (empty, an HTML error page
saved as ``.csv``, cut mid-line, a truncated Parquet file, no date or close column, a date that
does not parse, ...) is set aside whole by :meth:`CsvLandingSource.read` as a
:class:`~alphadag.market.sources.base.RejectedFile` naming it, its SHA-256 and the problem,
while every good file is still read; :func:`record_rejected` keeps a durable record (and a copy)
of each under the landing directory's ``_quarantine/``. The strict :meth:`CsvLandingSource.fetch`
raises :class:`LandingFileError` naming every such file instead. :func:`landing_files`,
:func:`file_fingerprint` and :func:`check_file` are what a sensor needs to notice new, changed or
broken files and to map good ones to the partitions they touch.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import polars as pl
from upath import UPath

from alphadag.market.bars_file import CONTRACT_COLUMNS, date_expr, rename_plan
from alphadag.market.calendar import as_date
from alphadag.market.schema import RAW_BARS_SCHEMA, conform_raw, empty
from alphadag.market.sources.base import Coverage, RejectedFile, SourceRead
from alphadag.market.tickers import TickerError, canonical_ticker

LANDING_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
"""File suffixes (case-insensitive) a landing directory is scanned for; anything else is ignored."""

QUARANTINE_DIR = "_quarantine"
"""Sub-directory of the landing directory holding the rejected-file manifest and copies; never
scanned for landing files."""

QUARANTINE_MANIFEST = "manifest.jsonl"
"""JSON-lines record of every rejected file (one line per path and fingerprint) in
:data:`QUARANTINE_DIR`: ``{"ts", "path", "fingerprint", "reason", "copy"}``."""

_LOCAL_PROTOCOLS = ("", "file", "local")
_DATE_LIKE_STEM = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")
_CHUNK = 1 << 20


class LandingFileError(ValueError):
    """A landing file that cannot be read or parsed; the message names the file and the problem."""


def _upath(location: str | os.PathLike[str] | UPath) -> UPath:
    if isinstance(location, UPath):
        return location
    if isinstance(location, str | os.PathLike):
        return UPath(location)
    raise TypeError(f"expected a path or URL string, got {type(location).__name__}")


def _is_local(path: UPath) -> bool:
    return path.protocol in _LOCAL_PROTOCOLS


def _check_column_map(column_map: Mapping[str, str] | None) -> dict[str, str]:
    """Validate ``column_map`` (vendor column -> contract column) and return it as a plain dict."""
    if column_map is None:
        return {}
    if not isinstance(column_map, Mapping):
        raise TypeError(f"column_map must be a mapping, got {type(column_map).__name__}")
    seen: dict[str, str] = {}
    for vendor, target in column_map.items():
        if not isinstance(vendor, str) or not isinstance(target, str):
            raise TypeError(f"column_map entries must be str -> str, got {vendor!r} -> {target!r}")
        if target not in CONTRACT_COLUMNS:
            raise ValueError(
                f"column_map sends {vendor!r} to {target!r}, which is not a contract column; "
                f"use one of {CONTRACT_COLUMNS}"
            )
        if target in seen:
            raise ValueError(
                f"column_map sends both {seen[target]!r} and {vendor!r} to {target!r}; keep one"
            )
        seen[target] = vendor
    return dict(column_map)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _looks_like_html(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body"))


def _check_csv_shape(data: bytes, where: str) -> None:
    """Raise naming the first data row whose field count differs from the header's.

    polars pads a short row with nulls silently, so a file cut mid-line would lose its last
    values without a word; a quoted field may span lines, hence the csv module.
    """
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline=""))
    header = next(reader, [])
    bad: tuple[int, list[str]] | None = None
    n = 0
    for n, row in enumerate(reader, start=1):
        if row and len(row) != len(header) and bad is None:
            bad = (n, row)
    if bad is None:
        return
    row_no, row = bad
    cut = (
        "; the file ends mid-line (cut short)"
        if row_no == n and not data.rstrip(b" \t").endswith((b"\n", b"\r"))
        else ""
    )
    raise LandingFileError(
        f"{where}: data row {row_no} has {len(row)} field(s) but the header has "
        f"{len(header)}: {','.join(row)[:80]!r}{cut}"
    )


def _scan(path: UPath, data: bytes, where: str) -> pl.LazyFrame:
    """A lazy frame over the bytes of a landing file (read once: what is judged is what is hashed)."""
    if not data.strip():
        raise LandingFileError(f"{where} is empty ({len(data)} bytes)")
    if path.suffix.lower() == ".csv":
        if _looks_like_html(data):
            raise LandingFileError(
                f"{where} is an HTML page (e.g. a vendor's error page saved as .csv), not CSV: "
                f"it starts {data[:60].decode('utf-8', errors='replace')!r}"
            )
        return pl.scan_csv(data, infer_schema=False)
    return pl.scan_parquet(data)


def _parse_landing_file(
    path: UPath,
    data: bytes,
    column_map: dict[str, str],
    date_format: str | None,
    *,
    window: tuple[dt.date, dt.date] | None = None,
) -> pl.DataFrame:
    """One file's rows (given its bytes) in :data:`RAW_BARS_SCHEMA`; ``origin`` is the path.

    Raises :class:`LandingFileError` naming the file if it is empty, an HTML page, cannot be
    parsed, has rows with the wrong number of fields (cut mid-line), has no date or close
    column, holds a date that does not parse (anywhere in the file, not only inside ``window``),
    or is a per-ticker file whose name is not a valid ticker.
    """
    where = f"landing file {path}"
    try:
        frame = _scan(path, data, where)
        columns = frame.collect_schema().names()
        plan = rename_plan(columns, column_map)
        for required in ("date", "close"):
            if required not in plan.values():
                raise LandingFileError(
                    f"{where} has no {required} column: its columns are {columns[:20]}; map the "
                    f"vendor's {required} column to {required!r} in column_map (now {column_map})"
                )
        if path.suffix.lower() == ".csv":
            _check_csv_shape(data, where)
        frame = frame.select([pl.col(src).alias(dst) for src, dst in plan.items()])
        schema = frame.collect_schema()
        try:
            parsed = date_expr(schema["date"], date_format)
        except ValueError as exc:
            raise LandingFileError(f"{where}: {exc}") from exc
        frame = frame.with_columns(pl.col("date").alias("_raw_date"), parsed.alias("date"))
        frame = frame.with_row_index("_row", offset=1)  # 1-based data row, for error messages
        if window is not None:
            # keep unparsed dates too, so a bad row anywhere in the file is reported below
            frame = frame.filter(pl.col("date").is_null() | pl.col("date").is_between(*window))
        rows = frame.collect()
    except LandingFileError:
        raise
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise LandingFileError(f"cannot parse {where}: {type(exc).__name__}: {exc}") from exc
    bad = rows.filter(pl.col("date").is_null())
    if bad.height:
        examples = [
            f"row {row}: {raw!r}" for row, raw in bad.select("_row", "_raw_date").head(3).rows()
        ]
        fmt = f"format {date_format!r}" if date_format else "ISO format (or set date_format)"
        raise LandingFileError(
            f"{where}: {bad.height} data row(s) have a date that is missing or does not parse "
            f"with {fmt}, e.g. {', '.join(examples)}"
        )
    rows = rows.drop("_raw_date", "_row")
    if "ticker" not in rows.columns:
        rows = rows.with_columns(pl.lit(_stem_ticker(path, column_map)).alias("ticker"))
    return conform_raw(rows, origin=str(path))


def _read_file(
    path: UPath,
    column_map: dict[str, str],
    date_format: str | None,
    window: tuple[dt.date, dt.date] | None,
) -> pl.DataFrame | RejectedFile:
    """One file's raw bars, or the :class:`RejectedFile` saying why it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = f"cannot read landing file {path}: {type(exc).__name__}: {exc}"
        return RejectedFile(str(path), reason, None)
    try:
        return _parse_landing_file(path, data, column_map, date_format, window=window)
    except LandingFileError as exc:
        return RejectedFile(str(path), str(exc), _sha256(data))


def _stem_ticker(path: UPath, column_map: dict[str, str]) -> str:
    """The ticker of a per-ticker file without a ticker column: its canonicalised file stem."""
    stem = path.stem
    if _DATE_LIKE_STEM.fullmatch(stem):
        raise LandingFileError(
            f"landing file {path} has no ticker column and its name looks like a date, so it is "
            f"a per-day file: map the vendor's ticker column to 'ticker' (column_map={column_map})"
        )
    try:
        return canonical_ticker(stem)
    except TickerError as exc:
        raise LandingFileError(
            f"landing file {path} has no ticker column, and its name {stem!r} is not a valid "
            f"ticker ({exc}); rename the file or map the vendor's ticker column to 'ticker'"
        ) from exc


def landing_files(directory: str | os.PathLike[str] | UPath, pattern: str = "*") -> list[UPath]:
    """The ``.csv``/``.parquet`` files of ``directory`` matching ``pattern``, sorted by path.

    Hidden files (names starting with ``.``, e.g. partial uploads), other suffixes and the
    :data:`QUARANTINE_DIR` sub-directory are skipped.

    Parameters
    ----------
    directory:
        A local path or an fsspec URL (``s3://bucket/landing``); it must exist.
    pattern:
        A glob relative to ``directory`` (``"*"``, ``"*.csv"``, ``"**/*.parquet"``); ``..`` is
        not allowed.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.csv", "a.parquet", "notes.txt", ".partial.csv"):
    ...     _ = (d / name).write_text("")
    >>> [p.name for p in landing_files(d)]
    ['a.parquet', 'b.csv']
    """
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"pattern must be a non-empty glob string, got {pattern!r}")
    if ".." in re.split(r"[\\/]", pattern) or pattern.startswith(("/", "\\")):
        raise ValueError(f"pattern {pattern!r} must stay inside the landing directory")
    root = _upath(directory)
    if not root.is_dir():
        raise ValueError(f"landing directory {root} does not exist or is not a directory")
    quarantine = str(root / QUARANTINE_DIR).rstrip("/") + "/"
    files = [
        p
        for p in root.glob(pattern)
        if p.suffix.lower() in LANDING_SUFFIXES
        and not p.name.startswith(".")
        and not str(p).startswith(quarantine)
        and p.is_file()
    ]
    return sorted(files, key=str)


def file_fingerprint(path: str | os.PathLike[str] | UPath) -> str:
    """The SHA-256 hex digest of a file's bytes (a changed file gets a new fingerprint).

    Parameters
    ----------
    path:
        A local path or fsspec URL; read in 1 MiB chunks.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = f.write_text("abc")
    >>> file_fingerprint(f)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with _upath(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dates_in_file(
    path: str | os.PathLike[str] | UPath,
    column_map: Mapping[str, str] | None = None,
    date_format: str | None = None,
) -> list[dt.date]:
    """The distinct dates a landing file holds, sorted (reads only its date column).

    Parameters
    ----------
    path:
        A ``.csv`` or ``.parquet`` file (local path or fsspec URL).
    column_map:
        Vendor column -> contract column, as for :class:`CsvLandingSource`.
    date_format:
        ``strftime`` format of the date column (``"%m/%d/%Y"``); ``None`` means ISO.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "AAPL.csv"
    >>> _ = f.write_text("Day,Close\\n01/03/2024,2\\n01/02/2024,1\\n01/03/2024,2\\n")
    >>> dates_in_file(f, {"Day": "date"}, "%m/%d/%Y")
    [datetime.date(2024, 1, 2), datetime.date(2024, 1, 3)]
    """
    checked = check_file(path, column_map, date_format)
    if isinstance(checked, RejectedFile):
        raise LandingFileError(checked.reason)
    return checked.dates


@dataclass(frozen=True)
class CheckedFile:
    """A landing file that reads as bars: its fingerprint and the distinct dates it holds."""

    path: str
    fingerprint: str
    dates: list[dt.date]


def check_file(
    path: str | os.PathLike[str] | UPath,
    column_map: Mapping[str, str] | None = None,
    date_format: str | None = None,
) -> CheckedFile | RejectedFile:
    """Judge one landing file exactly as :meth:`CsvLandingSource.read` does, reading it once.

    Returns a :class:`CheckedFile` (fingerprint and sorted distinct dates) when it reads as bars,
    else the :class:`~alphadag.market.sources.base.RejectedFile` with the reason; both carry the
    SHA-256 of the bytes judged, so a sensor records exactly the content it checked.

    Parameters
    ----------
    path:
        A ``.csv`` or ``.parquet`` file (local path or fsspec URL).
    column_map, date_format:
        As for :class:`CsvLandingSource`.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "AAPL.csv").write_text("date,close\\n2024-01-03,2\\n2024-01-02,1\\n")
    >>> check_file(d / "AAPL.csv").dates
    [datetime.date(2024, 1, 2), datetime.date(2024, 1, 3)]
    >>> _ = (d / "MSFT.csv").write_text("")
    >>> check_file(d / "MSFT.csv").reason.endswith("MSFT.csv is empty (0 bytes)")
    True
    """
    file = _upath(path)
    if file.suffix.lower() not in LANDING_SUFFIXES:
        raise ValueError(f"{file} is not a {'/'.join(LANDING_SUFFIXES)} file")
    try:
        data = file.read_bytes()
    except OSError as exc:
        reason = f"cannot read landing file {file}: {type(exc).__name__}: {exc}"
        return RejectedFile(str(file), reason, None)
    try:
        rows = _parse_landing_file(file, data, _check_column_map(column_map), date_format)
    except LandingFileError as exc:
        return RejectedFile(str(file), str(exc), _sha256(data))
    return CheckedFile(str(file), _sha256(data), rows["date"].unique().sort().to_list())


def quarantine_dir(directory: str | os.PathLike[str] | UPath) -> UPath:
    """Where rejected landing files are recorded: ``<directory>/_quarantine``."""
    return _upath(directory) / QUARANTINE_DIR


def read_quarantine(directory: str | os.PathLike[str] | UPath) -> list[dict[str, str | None]]:
    """Every record of the quarantine manifest of a landing directory (empty when there is none)."""
    manifest = quarantine_dir(directory) / QUARANTINE_MANIFEST
    if not manifest.exists():
        return []
    return [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]


def record_rejected(
    directory: str | os.PathLike[str] | UPath, rejected: Iterable[RejectedFile]
) -> list[RejectedFile]:
    """Record rejected landing files durably; returns those not recorded before.

    Each (path, fingerprint) not yet in ``<directory>/_quarantine/manifest.jsonl`` gets one JSON
    line ``{"ts", "path", "fingerprint", "reason", "copy"}``, and a copy of the file's bytes is
    kept at ``_quarantine/<fingerprint>/<name>`` (``copy`` is that path; ``null`` when the bytes
    could not be read or have changed since they were judged), so the evidence survives the
    vendor replacing or deleting the file. Recording the same rejection again does nothing, so
    the sensor and the ``raw_bars`` run may both call it.

    Parameters
    ----------
    directory:
        The landing directory (local path or fsspec URL); it must be writable.
    rejected:
        Files set aside by :meth:`CsvLandingSource.read` or :func:`check_file`.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "X.csv").write_text("")
    >>> bad = check_file(d / "X.csv")
    >>> [r.path for r in record_rejected(d, [bad])] == [str(d / "X.csv")], record_rejected(d, [bad])
    (True, [])
    >>> read_quarantine(d)[0]["reason"] == bad.reason
    True
    """
    folder = quarantine_dir(directory)
    done = {(r.get("path"), r.get("fingerprint")) for r in read_quarantine(directory)}
    new: list[RejectedFile] = []
    lines: list[str] = []
    for item in rejected:
        if not isinstance(item, RejectedFile):
            raise TypeError(f"expected RejectedFile records, got {type(item).__name__}")
        if (item.path, item.fingerprint) in done:
            continue
        done.add((item.path, item.fingerprint))
        copy = _keep_copy(folder, item)
        record = {
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "path": item.path,
            "fingerprint": item.fingerprint,
            "reason": item.reason,
            "copy": copy,
        }
        lines.append(json.dumps(record, sort_keys=True) + "\n")
        new.append(item)
    if lines:
        _append_lines(folder / QUARANTINE_MANIFEST, lines)
    return new


def _keep_copy(folder: UPath, item: RejectedFile) -> str | None:
    """Copy the rejected file's bytes if they still hash to its fingerprint; the copy's path."""
    if item.fingerprint is None:
        return None
    try:
        data = _upath(item.path).read_bytes()
    except OSError:
        return None
    if _sha256(data) != item.fingerprint:
        return None  # changed since it was judged: the new content is judged on its own
    target = folder / item.fingerprint / _upath(item.path).name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return str(target)


def _append_lines(manifest: UPath, lines: list[str]) -> None:
    manifest.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(lines)
    if _is_local(manifest):
        with open(os.fspath(manifest), "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    else:  # object stores cannot append: rewrite the (small) manifest
        before = manifest.read_text() if manifest.exists() else ""
        manifest.write_text(before + text)


def _optional_date(value: object, what: str) -> dt.date | None:
    return None if value is None else as_date(value, what)


@dataclass(frozen=True, kw_only=True)
class CsvLandingSource:
    """Raw bars from the CSV/Parquet files of a landing directory.

    Each file is either per ticker (a mapped ticker column, or else the ticker is the file stem,
    canonicalised: ``brk.b.csv`` -> ``BRK-B``) or per day (a ticker column is then required). Rows
    keep the vendor's ticker string and values; ``origin`` is the file's path or URL. Rows come in
    file order (sorted paths), each file's rows as delivered.

    Parameters
    ----------
    directory:
        Local path or fsspec URL of the landing directory.
    pattern:
        Glob of files to read; only ``.csv``/``.parquet`` matches are used (see
        :func:`landing_files`).
    column_map:
        Vendor column -> contract column, e.g. ``{"Date": "date", "Adj Close": "close", "Symbol":
        "ticker"}``. Columns already named like a contract column, in any case, are taken as-is
        unless the map already fills that column; everything else is dropped.
    date_format:
        ``strftime`` format of the vendor's date column; ``None`` parses ISO dates or timestamps.
    coverage_start, coverage_end:
        The sessions the landing is expected to cover (``None`` = open-ended).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "aapl.csv").write_text("Date,Adj Close\\n2024-01-02,185.6\\n2024-01-03,184.2\\n")
    >>> src = CsvLandingSource(directory=str(d), column_map={"Adj Close": "close"})
    >>> src.fetch(dt.date(2024, 1, 3), dt.date(2024, 1, 3)).select("ticker", "date", "close").row(0)
    ('AAPL', datetime.date(2024, 1, 3), 184.2)
    """

    name: str = field(default="csv", init=False)
    directory: str | os.PathLike[str]
    pattern: str = "*"
    column_map: Mapping[str, str] = field(default_factory=dict)
    date_format: str | None = None
    coverage_start: dt.date | None = None
    coverage_end: dt.date | None = None

    def __post_init__(self) -> None:
        _upath(self.directory)  # type check only; the directory may appear later
        if not isinstance(self.pattern, str) or not self.pattern:
            raise ValueError(f"pattern must be a non-empty glob string, got {self.pattern!r}")
        object.__setattr__(self, "column_map", _check_column_map(self.column_map))
        if self.date_format is not None and (
            not isinstance(self.date_format, str) or "%" not in self.date_format
        ):
            raise ValueError(
                "date_format must be a strftime format such as '%Y-%m-%d', "
                f"got {self.date_format!r}"
            )
        start = _optional_date(self.coverage_start, "coverage_start")
        end = _optional_date(self.coverage_end, "coverage_end")
        if start is not None and end is not None and start > end:
            raise ValueError(f"coverage_start {start} is after coverage_end {end}")
        object.__setattr__(self, "coverage_start", start)
        object.__setattr__(self, "coverage_end", end)

    def coverage(self) -> Coverage:
        """``Coverage(coverage_start, coverage_end)``.

        >>> CsvLandingSource(directory="/tmp", coverage_start="2024-01-02").coverage().start
        datetime.date(2024, 1, 2)
        """
        return Coverage(self.coverage_start, self.coverage_end)

    def files(self) -> list[UPath]:
        """The landing files :meth:`fetch` reads, sorted (see :func:`landing_files`).

        >>> import tempfile
        >>> CsvLandingSource(directory=tempfile.mkdtemp()).files()
        []
        """
        return landing_files(self.directory, self.pattern)

    def read(self, start: dt.date, end: dt.date) -> SourceRead:
        """Raw bars with ``start <= date <= end`` from every good file, and the files set aside.

        Each file is judged on its own (see :func:`check_file`): one that cannot be read as bars
        is rejected whole, with its reason and fingerprint, and no row of it is used; the other
        files are read as usual. Rows come in file order.

        Parameters
        ----------
        start, end:
            The window, inclusive.

        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "AAPL.csv").write_text("date,close\\n2024-01-02,185.6\\n")
        >>> _ = (d / "MSFT.csv").write_text("<!DOCTYPE html><html>502 Bad Gateway</html>")
        >>> got = CsvLandingSource(directory=d).read(dt.date(2024, 1, 2), dt.date(2024, 1, 2))
        >>> got.bars["ticker"].to_list(), [pathlib.Path(r.path).name for r in got.rejected]
        (['AAPL'], ['MSFT.csv'])
        """
        lo = _optional_date(start, "start")
        hi = _optional_date(end, "end")
        if lo is None or hi is None:
            raise ValueError("fetch needs both start and end dates")
        if lo > hi:
            raise ValueError(f"fetch start {lo} is after end {hi}")
        frames: list[pl.DataFrame] = []
        rejected: list[RejectedFile] = []
        for path in self.files():
            got = _read_file(path, dict(self.column_map), self.date_format, (lo, hi))
            if isinstance(got, RejectedFile):
                rejected.append(got)
            else:
                frames.append(got)
        bars = pl.concat(frames, how="vertical") if frames else empty(RAW_BARS_SCHEMA)
        return SourceRead(bars=bars, rejected=tuple(rejected))

    def fetch(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Raw bars with ``start <= date <= end`` from every landing file, in ``RAW_BARS_SCHEMA``.

        Strict: raises :class:`LandingFileError` (a ``ValueError``) naming every file that cannot
        be read, so a caller that has no place for rejected files never loses one silently; use
        :meth:`read` to ingest the good files and set the broken ones aside.

        Parameters
        ----------
        start, end:
            The window, inclusive.

        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "2024-01-02.csv").write_text("sym,date,close\\nMSFT,2024-01-02,370\\n")
        >>> src = CsvLandingSource(directory=d, column_map={"sym": "ticker"})
        >>> src.fetch(dt.date(2024, 1, 1), dt.date(2024, 1, 5))["ticker"].to_list()
        ['MSFT']
        """
        got = self.read(start, end)
        if got.rejected:
            raise LandingFileError(
                f"{len(got.rejected)} landing file(s) cannot be read: "
                + "; ".join(r.reason for r in got.rejected)
            )
        return got.bars
