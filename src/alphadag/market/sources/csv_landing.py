"""A landing-directory source: vendor CSV or Parquet files dropped into a local or fsspec directory.

:class:`CsvLandingSource` reads every matching file of a landing directory (a local path or any
``fsspec``/``UPath`` URL such as ``s3://bucket/landing``), either one file per ticker (the ticker
from a mapped column, or from the file name when there is none) or one file per day holding all
tickers. Vendor columns are renamed through ``column_map``, dates parsed (``date_format`` or ISO),
and every row keeps the file it came from in ``origin``; values are otherwise kept as delivered,
because validation belongs to the ``bars`` asset. A file that cannot be read raises
:class:`LandingFileError` naming it. The pure helpers :func:`landing_files`,
:func:`file_fingerprint` and :func:`dates_in_file` are what a sensor needs to notice new or changed
files and to map them to the partitions they touch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl
from upath import UPath

from alphadag.market.calendar import as_date
from alphadag.market.schema import RAW_BARS_SCHEMA, VALUE_COLUMNS, conform_raw, empty
from alphadag.market.sources.base import Coverage
from alphadag.market.tickers import TickerError, canonical_ticker

CONTRACT_COLUMNS: tuple[str, ...] = ("ticker", "date", *VALUE_COLUMNS)
"""The contract columns a vendor column may be mapped to."""

LANDING_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
"""File suffixes (case-insensitive) a landing directory is scanned for; anything else is ignored."""

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


def _rename_plan(columns: list[str], column_map: dict[str, str]) -> dict[str, str]:
    """Vendor column -> contract column for one file's header.

    Explicit ``column_map`` entries win; then columns already named like a contract column; then
    a case-insensitive match (``Close`` -> ``close``) for contract columns not yet taken. Other
    columns are dropped.
    """
    plan: dict[str, str] = {}
    taken: set[str] = set()

    def clean(name: str) -> str:
        return name.lstrip("\ufeff").strip()

    mapped = {clean(k): v for k, v in column_map.items()}
    for col in columns:
        target = mapped.get(clean(col))
        if target is not None:
            plan[col] = target
            taken.add(target)
    for col in columns:
        if col not in plan and clean(col) in CONTRACT_COLUMNS and clean(col) not in taken:
            plan[col] = clean(col)
            taken.add(clean(col))
    for col in columns:
        lowered = clean(col).lower()
        if col not in plan and lowered in CONTRACT_COLUMNS and lowered not in taken:
            plan[col] = lowered
            taken.add(lowered)
    return plan


def _scan(path: UPath) -> pl.LazyFrame:
    """Lazily scan a local file; read a remote one through fsspec (works for any protocol)."""
    suffix = path.suffix.lower()
    if _is_local(path):
        local = os.fspath(path)
        if suffix == ".csv":
            return pl.scan_csv(local, infer_schema=False, glob=False)
        return pl.scan_parquet(local, glob=False)
    data = io.BytesIO(path.read_bytes())
    if suffix == ".csv":
        return pl.read_csv(data, infer_schema=False).lazy()
    return pl.read_parquet(data).lazy()


def _date_expr(dtype: pl.DataType, date_format: str | None, where: str) -> pl.Expr:
    raw = pl.col("date")
    if dtype == pl.Date:
        return raw
    if isinstance(dtype, pl.Datetime):
        return raw.dt.date()
    if dtype == pl.String:
        text = raw.str.strip_chars()
        if date_format is not None:
            return text.str.to_date(date_format, strict=False)
        # ISO dates, or ISO timestamps such as pandas' '2024-01-02 00:00:00'
        return pl.coalesce(
            text.str.to_date(strict=False), text.str.to_datetime(strict=False).dt.date()
        )
    if dtype.is_integer() and date_format is not None:
        return raw.cast(pl.String).str.to_date(date_format, strict=False)
    hint = " (set date_format, e.g. '%Y%m%d')" if dtype.is_integer() else ""
    raise LandingFileError(f"{where}: the date column has type {dtype}, not a date{hint}")


def _read_landing_file(
    path: UPath,
    column_map: dict[str, str],
    date_format: str | None,
    *,
    window: tuple[dt.date, dt.date] | None = None,
    dates_only: bool = False,
) -> pl.DataFrame:
    """One file's rows renamed to contract columns with a parsed ``date`` (and ``origin``).

    Raises :class:`LandingFileError` naming the file if it cannot be read, has no date column,
    holds a date that does not parse, or is a per-ticker file whose name is not a valid ticker.
    """
    where = f"landing file {path}"
    try:
        frame = _scan(path)
        columns = frame.collect_schema().names()
        plan = _rename_plan(columns, column_map)
        if "date" not in plan.values():
            raise LandingFileError(
                f"{where} has no date column: its columns are {columns}; map the vendor's date "
                f"column to 'date' in column_map (now {column_map})"
            )
        frame = frame.select([pl.col(src).alias(dst) for src, dst in plan.items()])
        schema = frame.collect_schema()
        parsed = _date_expr(schema["date"], date_format, where)
        if dates_only:
            frame = frame.select(pl.col("date").alias("_raw_date"), parsed.alias("date"))
        else:
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
    if dates_only:
        return rows
    if "ticker" not in rows.columns:
        rows = rows.with_columns(pl.lit(_stem_ticker(path, column_map)).alias("ticker"))
    return conform_raw(rows, origin=str(path))


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

    Hidden files (names starting with ``.``, e.g. partial uploads) and other suffixes are skipped.

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
    files = [
        p
        for p in root.glob(pattern)
        if p.suffix.lower() in LANDING_SUFFIXES and not p.name.startswith(".") and p.is_file()
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
    file = _upath(path)
    if file.suffix.lower() not in LANDING_SUFFIXES:
        raise ValueError(f"{file} is not a {'/'.join(LANDING_SUFFIXES)} file")
    rows = _read_landing_file(file, _check_column_map(column_map), date_format, dates_only=True)
    return rows["date"].unique().sort().to_list()


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

    def fetch(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Raw bars with ``start <= date <= end`` from every landing file, in ``RAW_BARS_SCHEMA``.

        Parameters
        ----------
        start, end:
            The window, inclusive.

        Raises :class:`LandingFileError` (a ``ValueError``) naming the first file that cannot be
        read or parsed.

        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "2024-01-02.csv").write_text("sym,date,close\\nMSFT,2024-01-02,370\\n")
        >>> src = CsvLandingSource(directory=d, column_map={"sym": "ticker"})
        >>> src.fetch(dt.date(2024, 1, 1), dt.date(2024, 1, 5))["ticker"].to_list()
        ['MSFT']
        """
        lo = _optional_date(start, "start")
        hi = _optional_date(end, "end")
        if lo is None or hi is None:
            raise ValueError("fetch needs both start and end dates")
        if lo > hi:
            raise ValueError(f"fetch start {lo} is after end {hi}")
        frames = [
            _read_landing_file(path, dict(self.column_map), self.date_format, window=(lo, hi))
            for path in self.files()
        ]
        if not frames:
            return empty(RAW_BARS_SCHEMA)
        return pl.concat(frames, how="vertical")
