"""Daily adjusted bars from Yahoo Finance through the ``yfinance`` package.

:class:`YFinanceSource` calls ``yfinance.download`` once per fetch for all its tickers (canonical
tickers are already Yahoo's spelling: ``BRK-B``, ``^GSPC``), with ``auto_adjust=True`` so OHLC are
split and dividend adjusted as the bars contract requires, and converts the pandas frame with its
``(Ticker, Price)`` column MultiIndex into :data:`alphadag.market.schema.RAW_BARS_SCHEMA` with
``origin="yfinance"``. yfinance pads every ticker to the union of all tickers' dates, so a row
whose open, high, low, close and volume are all missing is padding and is dropped; a ticker with
no data in the range (delisted, not yet listed) has no rows; any other missing value becomes null.
yfinance 1.x never raises for a failed ticker: it logs the failure on the ``yfinance`` logger and
returns NaN columns. So a fetch listens to that logger (and to the HTTP status codes it logs at
debug level) while it runs, and raises ``TransientSourceError`` for network, timeout, rate-limit
and HTTP 5xx failures or ``PermanentSourceError`` for any failure it cannot explain (both from
:mod:`alphadag.market.sources.errors`). The source never retries: the orchestrator does. The
download function is a field, so tests replay recorded frames instead of reaching Yahoo.
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
import re
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl

from alphadag.market import schema
from alphadag.market.sources.base import Coverage
from alphadag.market.sources.errors import (
    PermanentSourceError,
    TransientSourceError,
    is_transient_exception,
)
from alphadag.market.tickers import canonical_tickers

__all__ = ["ORIGIN", "YFinanceSource", "yfinance_frame_to_raw"]

_log = logging.getLogger(__name__)

ORIGIN = "yfinance"
"""The ``origin`` written on every raw row this source delivers."""

Downloader = Callable[..., Any]
"""``yfinance.download``'s calling convention: keyword arguments in, pandas frame (or None) out."""

_VALUE_FIELDS = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}
_KNOWN_FIELDS = frozenset(
    {*_VALUE_FIELDS, "Adj Close", "Dividends", "Stock Splits", "Capital Gains", "Repaired?"}
)

_YF_LOGGER_NAME = "yfinance"
_PROGRAMMING_ERRORS = (TypeError, ValueError, LookupError, AttributeError, NotImplementedError)
_CAPTURE_LOCK = threading.Lock()

_TRANSIENT_TEXT = re.compile(
    r"curl: \(\d+\)|Failed to perform|Could not resolve|Name or service not known"
    r"|Temporary failure in name resolution|NameResolution|DNSError|ConnectionError"
    r"|Connection (?:reset|refused|aborted)|RemoteDisconnected|Timeout|timed out"
    r"|ChunkedEncodingError|IncompleteRead|ProxyError|SSLError|Max retries exceeded"
    r"|Too Many Requests|Rate ?limit|\b429\b|status_code = 5\d\d|response code=5\d\d"
    r"|\b5\d\d Server Error|returned error: 5\d\d|Internal Server Error|Bad Gateway"
    r"|Service Unavailable|Gateway Time-?out|CURRENTLY DOWN|Will be right back",
    re.IGNORECASE,
)
"""yfinance failure texts that a later attempt may not hit."""

_MISSING_TEXT = re.compile(
    r"possibly delisted|no price data found|no timezone found|No data found"
    r"|symbol may be delisted|Data doesn.t exist|\b404\b|Not Found",
    re.IGNORECASE,
)
"""yfinance failure texts meaning "Yahoo has no bars for this ticker in the range": no rows."""

_SUMMARY_LINE = re.compile(r"^\[(?P<tickers>[^\]]*)\]:\s")
_DOLLAR_TICKER = re.compile(r"^\$(?P<ticker>[^\s:]+):")
_QUOTED_TICKER = re.compile(r"ticker '(?P<ticker>[^']+)'")
_URL_TICKER = re.compile(r"/(?:chart|quoteSummary)/(?P<ticker>[^/?\s]+)")
_COUNT_LINE = re.compile(r"^\d+ Failed downloads?:$")
_DEBUG_URL = re.compile(r"^url=(?P<url>\S+)")
_DEBUG_CODE = re.compile(r"^response code=(?P<code>\d{3})")


@dataclass(frozen=True)
class YFinanceSource:
    """Daily bars for ``tickers`` from Yahoo Finance; a :class:`.base.BarSource`.

    Parameters
    ----------
    tickers:
        Tickers in any accepted spelling (``"brk.b"``); stored canonical, deduplicated, in order.
    auto_adjust:
        ``True`` (default): yfinance adjusts OHLC for splits and dividends, as the bars contract
        requires. ``False``: yfinance's unadjusted OHLC are discarded and ``close`` is its
        ``Adj Close``, so the rows are close-only (open/high/low null) but still adjusted.
    coverage_start:
        First session the source must deliver (``None``: no lower bound); no upper bound.
    timeout:
        Seconds yfinance waits for each HTTP response.
    downloader:
        A function with ``yfinance.download``'s signature; ``None`` (default) means
        ``yfinance.download`` itself, imported on first use. Tests pass a fake replaying recordings.

    >>> src = YFinanceSource(["aapl", "brk.b", "^gspc"])
    >>> src.name, src.tickers
    ('yfinance', ('AAPL', 'BRK-B', '^GSPC'))
    >>> src.coverage()
    Coverage(start=None, end=None)
    """

    tickers: tuple[str, ...]
    auto_adjust: bool = True
    coverage_start: dt.date | None = None
    timeout: float = 10.0
    downloader: Downloader | None = field(default=None, repr=False, compare=False)
    name: str = field(default=ORIGIN, init=False)

    def __post_init__(self) -> None:
        if isinstance(self.tickers, str) or not isinstance(self.tickers, Sequence):
            raise TypeError(
                f"tickers must be a list or tuple of strings such as ['AAPL', 'BRK-B'], "
                f"got {self.tickers!r}"
            )
        tickers = tuple(canonical_tickers(list(self.tickers)))
        if not tickers:
            raise ValueError("tickers is empty: configure at least one ticker such as ['AAPL']")
        object.__setattr__(self, "tickers", tickers)
        if not isinstance(self.auto_adjust, bool):
            raise TypeError(f"auto_adjust must be True or False, got {self.auto_adjust!r}")
        if self.coverage_start is not None:
            _check_date("coverage_start", self.coverage_start)
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float):
            raise TypeError(f"timeout must be a number of seconds, got {self.timeout!r}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout!r}")
        if self.downloader is not None and not callable(self.downloader):
            raise TypeError(
                f"downloader must be callable like yfinance.download, got {self.downloader!r}"
            )

    def coverage(self) -> Coverage:
        """Sessions from ``coverage_start`` on (Yahoo keeps adding sessions, so no end)."""
        return Coverage(self.coverage_start, None)

    def download_kwargs(self, start: dt.date, end: dt.date) -> dict[str, Any]:
        """The keyword arguments :meth:`fetch` passes to the downloader for ``start..end``.

        yfinance's ``end`` is exclusive, so it is the day after ``end``; tickers are one
        space-separated string, which every yfinance version accepts.

        >>> kw = YFinanceSource(["AAPL", "BRK-B"]).download_kwargs(dt.date(2024, 1, 2),
        ...                                                        dt.date(2024, 1, 16))
        >>> kw["tickers"], kw["start"], kw["end"], kw["group_by"], kw["auto_adjust"]
        ('AAPL BRK-B', '2024-01-02', '2024-01-17', 'ticker', True)
        """
        _check_range(start, end)
        return {
            "tickers": " ".join(self.tickers),
            "start": start.isoformat(),
            "end": (end + dt.timedelta(days=1)).isoformat(),
            "interval": "1d",
            "auto_adjust": self.auto_adjust,
            "actions": False,
            "group_by": "ticker",
            "progress": False,
            "threads": False,
            "ignore_tz": True,
            "keepna": False,
            "multi_level_index": True,
            "timeout": self.timeout,
        }

    def fetch(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Raw bars for every ticker with ``start <= date <= end``, sorted by ticker and date.

        Raises
        ------
        TransientSourceError
            Network, DNS, timeout, rate-limit or HTTP 5xx failure for any ticker: retry later.
        PermanentSourceError
            Any other failure yfinance reports, or a frame of a shape this module cannot read.
        """
        kwargs = self.download_kwargs(start, end)
        download = self.downloader if self.downloader is not None else _yfinance_download()
        with _capture_yfinance_failures() as capture:
            try:
                frame = download(**kwargs)
            except Exception as exc:
                if _is_transient_raise(exc):
                    _forget_cached_responses()
                    raise TransientSourceError(
                        self.name, self.tickers, start, end, repr(exc)
                    ) from exc
                raise PermanentSourceError(self.name, self.tickers, start, end, repr(exc)) from exc
        failures = _failures(capture)
        if transient := [f for f in failures if f.kind == "transient"]:
            _forget_cached_responses()
            raise TransientSourceError(
                self.name, _named(transient, self.tickers), start, end, _summarise(transient)
            )
        if other := [f for f in failures if f.kind == "other"]:
            raise PermanentSourceError(
                self.name, _named(other, self.tickers), start, end, _summarise(other)
            )
        if missing := [f for f in failures if f.kind == "missing"]:
            _log.info(
                "yfinance has no bars for %s in %s..%s (%s): they get no rows",
                _named(missing, self.tickers),
                start,
                end,
                _summarise(missing),
            )
        try:
            return yfinance_frame_to_raw(
                frame, self.tickers, start, end, auto_adjust=self.auto_adjust
            )
        except (TypeError, ValueError) as exc:
            raise PermanentSourceError(self.name, self.tickers, start, end, str(exc)) from exc


def yfinance_frame_to_raw(
    frame: pd.DataFrame | None,
    tickers: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    auto_adjust: bool = True,
) -> pl.DataFrame:
    """Convert a ``yfinance.download`` daily frame into :data:`RAW_BARS_SCHEMA` rows.

    Accepts both column layouts (``group_by="ticker"``: ``(Ticker, Price)``; ``"column"``:
    ``(Price, Ticker)``) and flat single-ticker columns, for which ``tickers`` must hold that one
    ticker (it is otherwise unused: the frame names its tickers). Rows where every value column is
    missing are padding and dropped; other NaNs become nulls; dates outside ``start..end`` are
    dropped; rows are sorted by ticker and date. ``auto_adjust=False`` reads ``close`` from
    ``Adj Close`` and leaves open/high/low null.

    >>> cols = pd.MultiIndex.from_product([["AAPL", "SIVB"], ["Close", "Volume"]],
    ...                                   names=["Ticker", "Price"])
    >>> frame = pd.DataFrame([[185.5, 82e6, float("nan"), float("nan")]], columns=cols,
    ...                      index=pd.DatetimeIndex(["2024-01-02"], name="Date"))
    >>> day = dt.date(2024, 1, 2)
    >>> yfinance_frame_to_raw(frame, ["AAPL", "SIVB"], day, day).rows()
    [('AAPL', datetime.date(2024, 1, 2), None, None, None, 185.5, 82000000.0, 'yfinance', None)]
    """
    _check_range(start, end)
    if frame is None or (isinstance(frame, pd.DataFrame) and frame.empty):
        return schema.empty(schema.RAW_BARS_SCHEMA)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected yfinance.download's pandas DataFrame, got {type(frame)}")
    dates = _session_dates(frame.index)
    parts = [
        _ticker_rows(ticker, sub, dates, auto_adjust)
        for ticker, sub in _per_ticker(frame, list(tickers))
    ]
    raw = pl.concat(parts, how="vertical") if parts else schema.empty(schema.RAW_BARS_SCHEMA)
    return raw.filter(pl.col("date").is_between(start, end)).sort("ticker", "date")


# --- frame conversion -------------------------------------------------------------------------


def _session_dates(index: pd.Index) -> np.ndarray:
    try:
        stamps = pd.DatetimeIndex(index)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"yfinance frame index is not dates: {index[:3].tolist()!r}...") from exc
    if stamps.tz is not None:
        stamps = stamps.tz_localize(None)  # keep the exchange's wall-clock date (the session)
    if stamps.hasnans:
        raise ValueError("yfinance frame index has missing dates (NaT)")
    if (stamps != stamps.normalize()).any():
        raise ValueError(
            f"yfinance frame index has intraday times ({stamps[0]}...): expected daily bars"
        )
    return stamps.values.astype("datetime64[D]")


def _per_ticker(frame: pd.DataFrame, tickers: list[str]) -> Iterator[tuple[str, pd.DataFrame]]:
    columns = frame.columns
    if not isinstance(columns, pd.MultiIndex):
        if not set(map(str, columns)) <= _KNOWN_FIELDS:
            raise ValueError(f"yfinance frame has unexpected columns {list(columns)}")
        if len(tickers) != 1:
            raise ValueError(
                f"yfinance frame has flat columns {list(columns)} but {len(tickers)} tickers were "
                "requested; flat columns only identify a single ticker"
            )
        yield tickers[0], frame
        return
    if columns.nlevels != 2:
        raise ValueError(f"yfinance frame has {columns.nlevels} column levels, expected 2")
    ticker_level = _ticker_level(columns)
    for ticker in dict.fromkeys(columns.get_level_values(ticker_level)):
        yield str(ticker), frame.xs(ticker, axis=1, level=ticker_level)


def _ticker_level(columns: pd.MultiIndex) -> int:
    names = list(columns.names)
    if "Ticker" in names and "Price" in names:
        return names.index("Ticker")
    field_levels = [
        i for i in range(2) if set(map(str, columns.get_level_values(i))) <= _KNOWN_FIELDS
    ]
    if len(field_levels) != 1:
        raise ValueError(
            f"cannot tell the ticker level from the field level in yfinance columns "
            f"{list(columns)[:6]}..."
        )
    return 1 - field_levels[0]


def _ticker_rows(
    ticker: str, sub: pd.DataFrame, dates: np.ndarray, auto_adjust: bool
) -> pl.DataFrame:
    close_field = "Close" if auto_adjust else "Adj Close"
    if close_field not in sub.columns:
        raise ValueError(
            f"yfinance frame for {ticker!r} has no {close_field!r} column (has {list(sub.columns)})"
        )
    sources = {"close": close_field, "volume": "Volume"}
    if auto_adjust:
        sources |= {"open": "Open", "high": "High", "low": "Low"}
    data: dict[str, pl.Series] = {
        "ticker": pl.Series("ticker", [ticker] * len(sub), dtype=pl.String),
        "date": pl.Series("date", dates, dtype=pl.Date),
    }
    for column, source in sources.items():
        if source in sub.columns:
            values = pd.to_numeric(sub[source], errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan
            )
            data[column] = pl.Series(column, values, dtype=pl.Float64, nan_to_null=True)
    rows = pl.DataFrame(data)
    present = [c for c in schema.VALUE_COLUMNS if c in rows.columns]
    # all value columns missing = yfinance's padding to the union of dates, not a delivered bar
    return schema.conform_raw(
        rows.filter(pl.any_horizontal(pl.col(c).is_not_null() for c in present)), origin=ORIGIN
    )


# --- failure detection ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Failure:
    kind: Literal["transient", "missing", "other"]
    tickers: tuple[str, ...]
    text: str


@dataclass
class _Capture:
    """What yfinance said during one download: log records from this thread, legacy error dict."""

    records: list[tuple[int, str]] = field(default_factory=list)
    legacy_errors: dict[str, str] = field(default_factory=dict)


class _RecordingFilter(logging.Filter):
    """Records the calling thread's yfinance log records; lets through what the logger's own
    configuration would have emitted, so lowering its level to DEBUG adds no output."""

    def __init__(self, capture: _Capture, thread_id: int, passthrough_level: int | None) -> None:
        super().__init__()
        self.capture = capture
        self.thread_id = thread_id
        self.passthrough_level = passthrough_level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread in (None, self.thread_id):
            try:
                message = record.getMessage()
            except (TypeError, ValueError):
                message = str(record.msg)
            self.capture.records.append((record.levelno, message))
        return self.passthrough_level is not None and record.levelno >= self.passthrough_level


@contextmanager
def _capture_yfinance_failures() -> Iterator[_Capture]:
    """Listen to the ``yfinance`` logger (at DEBUG, for response codes) during one download.

    yfinance 1.x reports per-ticker failures only as log records; yfinance 0.2.x also left them in
    ``yfinance.shared._ERRORS``, a dict it replaced at the start of each download. The logger's
    level and ``disabled`` flag are restored afterwards; a lock keeps concurrent fetches in one
    process from restoring each other's settings.
    """
    capture = _Capture()
    logger = logging.getLogger(_YF_LOGGER_NAME)
    with _CAPTURE_LOCK:
        level, disabled = logger.level, logger.disabled
        passthrough = None if disabled else logger.getEffectiveLevel()
        recorder = _RecordingFilter(capture, threading.get_ident(), passthrough)
        legacy_before = getattr(sys.modules.get("yfinance.shared"), "_ERRORS", None)
        logger.disabled = False
        logger.setLevel(logging.DEBUG)
        logger.addFilter(recorder)
        try:
            yield capture
        finally:
            logger.removeFilter(recorder)
            logger.setLevel(level)
            logger.disabled = disabled
            legacy_after = getattr(sys.modules.get("yfinance.shared"), "_ERRORS", None)
            if isinstance(legacy_after, dict) and legacy_after is not legacy_before:
                capture.legacy_errors = {str(k): str(v) for k, v in legacy_after.items()}


def _failures(capture: _Capture) -> list[_Failure]:
    failures: list[_Failure] = []
    last_code: dict[str, int] = {}
    url = ""
    for level, message in capture.records:
        text = message.strip()
        if level < logging.ERROR:
            if match := _DEBUG_URL.match(text):
                url = match["url"]
            elif (match := _DEBUG_CODE.match(text)) and url:
                last_code[url] = int(match["code"])
            continue
        if text and not _COUNT_LINE.match(text):
            failures.append(_Failure(_kind(text), _tickers_in(text), text))
    for failed_url, code in last_code.items():
        if code == 429 or code >= 500:
            match = _URL_TICKER.search(failed_url)
            tickers = (urllib.parse.unquote(match["ticker"]),) if match else ()
            failures.append(_Failure("transient", tickers, f"HTTP {code} from {failed_url}"))
    for ticker, text in capture.legacy_errors.items():
        failures.append(_Failure(_kind(text), (ticker,), f"{ticker}: {text}"))
    return failures


def _kind(text: str) -> Literal["transient", "missing", "other"]:
    if _TRANSIENT_TEXT.search(text):
        return "transient"
    if _MISSING_TEXT.search(text):
        return "missing"
    return "other"


def _tickers_in(text: str) -> tuple[str, ...]:
    if match := _SUMMARY_LINE.match(text):
        try:
            listed = ast.literal_eval(f"[{match['tickers']}]")
        except (SyntaxError, ValueError):
            listed = []
        return tuple(str(t) for t in listed)
    for pattern in (_DOLLAR_TICKER, _QUOTED_TICKER, _URL_TICKER):
        if match := pattern.search(text):
            return (urllib.parse.unquote(match["ticker"]),)
    return ()


def _is_transient_raise(exc: Exception) -> bool:
    if is_transient_exception(exc):
        return True
    if isinstance(exc, _PROGRAMMING_ERRORS):
        return False  # e.g. a ValueError mentioning "timeout" is still a bad argument
    return bool(_TRANSIENT_TEXT.search(repr(exc)))  # YFDataException("... CURRENTLY DOWN! ...")


def _named(failures: list[_Failure], requested: tuple[str, ...]) -> list[str]:
    return sorted({t for f in failures for t in f.tickers}) or list(requested)


def _summarise(failures: list[_Failure], limit: int = 3) -> str:
    texts = list(dict.fromkeys(f.text for f in failures))
    more = f" (+{len(texts) - limit} more)" if len(texts) > limit else ""
    return " | ".join(texts[:limit]) + more


def _forget_cached_responses() -> None:
    """Drop yfinance's in-process response cache so a retry in this process asks Yahoo again.

    ``YfData.cache_get`` memoises responses for past date ranges, HTTP error responses included,
    so without this a retry in the same process would replay the failed response.
    """
    data_module = sys.modules.get("yfinance.data")
    cached = getattr(getattr(data_module, "YfData", None), "cache_get", None)
    clear = getattr(getattr(cached, "__wrapped__", cached), "cache_clear", None)
    if callable(clear):
        clear()


# --- helpers ----------------------------------------------------------------------------------


def _yfinance_download() -> Downloader:
    try:
        import yfinance  # deferred: importing yfinance is slow and pulls in curl_cffi
    except ImportError as exc:
        raise ImportError(
            "the yfinance source needs the [yfinance] extra: pip install 'alphadag[yfinance]' "
            "(in a checkout: uv sync --extra yfinance)"
        ) from exc
    return yfinance.download


def _check_date(label: str, value: object) -> None:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise TypeError(f"{label} must be a datetime.date such as date(2024, 1, 2), got {value!r}")


def _check_range(start: dt.date, end: dt.date) -> None:
    _check_date("start", start)
    _check_date("end", end)
    if start > end:
        raise ValueError(f"start {start} is after end {end}: the range is inclusive, start <= end")
