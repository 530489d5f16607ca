"""YFinanceSource against recorded yfinance responses (tests/data/yfinance), never against Yahoo."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import logging
import pickle
import socket
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
import requests

from alphadag.market import schema
from alphadag.market.sources.base import BarSource, Coverage
from alphadag.market.sources.errors import (
    PermanentSourceError,
    SourceError,
    TransientSourceError,
    is_transient_exception,
)
from alphadag.market.sources.yfinance_source import YFinanceSource, yfinance_frame_to_raw
from alphadag.market.tickers import TickerError

DATA = Path(__file__).resolve().parents[1] / "data" / "yfinance"
TICKERS = ["AAPL", "BRK-B", "^GSPC", "SIVB"]
START, END = dt.date(2024, 1, 2), dt.date(2024, 1, 16)
SESSIONS = [
    dt.date(2024, 1, d) for d in (2, 3, 4, 5, 8, 9, 10, 11, 12, 16)
]  # 2024-01-15 is a holiday
VALUES = ("open", "high", "low", "close", "volume")
FIELDS = dict(zip(VALUES, ("Open", "High", "Low", "Close", "Volume"), strict=True))


# --- recordings and the fake downloader -------------------------------------------------------


def load_recording(name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rebuild a recorded frame (exact dtypes and level names) and its metadata."""
    meta = json.loads((DATA / f"{name}.json").read_text())
    frame = pd.read_csv(DATA / f"{name}.csv", header=[0, 1], index_col=0)
    frame.columns = frame.columns.set_names(meta["column_names"])
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index), name=meta["index_name"]).astype(
        meta["index_dtype"]
    )
    for key, dtype in meta["dtypes"].items():
        frame[tuple(key.split("|"))] = frame[tuple(key.split("|"))].astype(dtype)
    return frame, meta


def csv_oracle(name: str) -> list[tuple]:
    """Expected raw rows read straight from the CSV with the csv module: an independent path."""
    with (DATA / f"{name}.csv").open(newline="") as handle:
        tickers, fields, _, *body = list(csv.reader(handle))
    rows = []
    for ticker in dict.fromkeys(tickers[1:]):
        for line in body:
            cells = {
                f: line[i]
                for i, (t, f) in enumerate(zip(tickers, fields, strict=True))
                if t == ticker
            }
            values = [float(cells[FIELDS[v]]) if cells.get(FIELDS[v]) else None for v in VALUES]
            if any(v is not None for v in values):
                rows.append((ticker, dt.date.fromisoformat(line[0]), *values, "yfinance", None))
    return sorted(rows, key=lambda r: (r[0], r[1]))


class FakeDownloader:
    """Replays a recorded response: its log records on the real ``yfinance`` logger, then the frame
    (or an exception). Records every call's keyword arguments."""

    def __init__(
        self,
        frame: object = None,
        log: list[list[str]] | tuple = (),
        raises: BaseException | None = None,
        during_call: Any = None,
    ) -> None:
        self.frame, self.log, self.raises, self.during_call = frame, list(log), raises, during_call
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> pd.DataFrame | None:
        self.calls.append(kwargs)
        logger = logging.getLogger("yfinance")
        for level, message in self.log:
            logger.log(logging.getLevelName(level), message)
        if self.during_call is not None:
            self.during_call()
        if self.raises is not None:
            raise self.raises
        return self.frame.copy() if isinstance(self.frame, pd.DataFrame) else self.frame

    @classmethod
    def replaying(cls, name: str) -> FakeDownloader:
        frame, meta = load_recording(name)
        return cls(frame, meta["log"])


def source(fake: FakeDownloader, tickers: list[str] = TICKERS, **kwargs: Any) -> YFinanceSource:
    return YFinanceSource(tickers, downloader=fake, **kwargs)


# --- request ----------------------------------------------------------------------------------


def test_fetch_calls_yfinance_once_with_exclusive_end_and_joined_tickers() -> None:
    fake = FakeDownloader.replaying("multi_ticker")
    source(fake, ["aapl", "brk.b", "^gspc", "SIVB"]).fetch(START, END)
    assert len(fake.calls) == 1
    call = fake.calls[0]
    assert call["tickers"] == "AAPL BRK-B ^GSPC SIVB"
    assert (call["start"], call["end"]) == ("2024-01-02", "2024-01-17")  # end exclusive: +1 day
    assert call["auto_adjust"] is True
    assert call["interval"] == "1d"
    assert (call["group_by"], call["threads"], call["progress"]) == ("ticker", False, False)


def test_request_matches_the_recordings_so_record_py_stays_in_sync() -> None:
    _, meta = load_recording("multi_ticker")
    assert YFinanceSource(TICKERS).download_kwargs(START, END) == meta["request"]


# --- conversion -------------------------------------------------------------------------------


def test_multi_ticker_frame_becomes_raw_bars() -> None:
    out = source(FakeDownloader.replaying("multi_ticker")).fetch(START, END)
    assert out.schema == pl.Schema(schema.RAW_BARS_SCHEMA)
    assert out.rows() == csv_oracle("multi_ticker")
    assert out["ticker"].unique(maintain_order=True).to_list() == ["AAPL", "BRK-B", "^GSPC"]
    for ticker in ("AAPL", "BRK-B", "^GSPC"):
        assert out.filter(pl.col("ticker") == ticker)["date"].to_list() == SESSIONS
    assert out.select(pl.col(VALUES).is_nan().any()).row(0) == (False,) * 5
    assert out.drop("parse_errors").null_count().row(0) == (0,) * 8
    assert out["parse_errors"].is_null().all()
    assert out["origin"].unique().to_list() == ["yfinance"]


def test_delisted_ticker_padding_is_dropped_not_an_error() -> None:
    frame, meta = load_recording("multi_ticker")
    assert frame["SIVB"].isna().all().all()  # yfinance pads it with NaN on every session
    out = source(FakeDownloader(frame, meta["log"])).fetch(START, END)
    assert "SIVB" not in out["ticker"].to_list()
    assert out.height == 3 * len(SESSIONS)


def test_single_ticker_multiindex_and_flat_columns_agree() -> None:
    frame, meta = load_recording("single_ticker")
    assert frame.columns.nlevels == 2  # yfinance 1.x keeps the Ticker level for one ticker
    multi = source(FakeDownloader(frame, meta["log"]), ["AAPL"]).fetch(START, END)
    flat = source(FakeDownloader(frame.droplevel("Ticker", axis=1)), ["AAPL"]).fetch(START, END)
    assert multi.rows() == csv_oracle("single_ticker")
    assert flat.equals(multi)


def test_group_by_column_layout_gives_the_same_rows() -> None:
    frame, _ = load_recording("multi_ticker")
    by_column = frame.swaplevel(0, 1, axis=1).sort_index(axis=1, level=0)  # group_by="column"
    assert list(by_column.columns.names) == ["Price", "Ticker"]
    expected = source(FakeDownloader(frame)).fetch(START, END)
    assert source(FakeDownloader(by_column)).fetch(START, END).equals(expected)


def test_unnamed_levels_are_told_apart_by_their_values() -> None:
    frame, _ = load_recording("multi_ticker")
    unnamed = frame.swaplevel(0, 1, axis=1)
    unnamed.columns = unnamed.columns.set_names([None, None])
    expected = source(FakeDownloader(frame)).fetch(START, END)
    assert source(FakeDownloader(unnamed)).fetch(START, END).equals(expected)


def test_rows_outside_the_requested_range_are_dropped() -> None:
    fake = FakeDownloader.replaying("multi_ticker")  # replies with more days than asked for
    out = source(fake).fetch(dt.date(2024, 1, 3), dt.date(2024, 1, 5))
    assert sorted(set(out["date"].to_list())) == [dt.date(2024, 1, d) for d in (3, 4, 5)]


def test_partly_missing_row_is_kept_with_nulls_fully_missing_row_is_padding() -> None:
    frame, _ = load_recording("multi_ticker")
    day = pd.Timestamp("2024-01-05")
    frame.loc[day, ("AAPL", "Open")] = float("nan")
    frame[("BRK-B", "Volume")] = frame[("BRK-B", "Volume")].astype("float64")
    frame.loc[day, [("BRK-B", f) for f in FIELDS.values()]] = float("nan")
    out = source(FakeDownloader(frame)).fetch(START, END)
    aapl = out.filter((pl.col("ticker") == "AAPL") & (pl.col("date") == day.date()))
    assert aapl["open"].to_list() == [None]
    assert aapl["close"].null_count() == 0
    assert day.date() not in out.filter(pl.col("ticker") == "BRK-B")["date"].to_list()


def test_timezone_aware_index_keeps_the_exchange_session_date() -> None:
    frame, _ = load_recording("single_ticker")
    naive = source(FakeDownloader(frame), ["AAPL"]).fetch(START, END)
    frame.index = frame.index.tz_localize("America/New_York")
    assert source(FakeDownloader(frame), ["AAPL"]).fetch(START, END).equals(naive)


def test_auto_adjust_false_gives_adjusted_close_only_bars() -> None:
    frame, _ = load_recording("single_ticker")
    frame[("AAPL", "Adj Close")] = frame[("AAPL", "Close")] * 0.99
    fake = FakeDownloader(frame)
    out = source(fake, ["AAPL"], auto_adjust=False).fetch(START, END)
    assert fake.calls[0]["auto_adjust"] is False
    assert out["close"].to_list() == (frame[("AAPL", "Close")] * 0.99).tolist()
    assert out.select(pl.col("open", "high", "low").null_count()).row(0) == (10, 10, 10)


def test_empty_frame_without_errors_is_an_empty_range_not_a_failure() -> None:
    frame, _ = load_recording("no_network_first_call")  # an empty frame, here replayed silently
    for reply in (frame, None):
        out = source(FakeDownloader(reply)).fetch(dt.date(2024, 1, 15), dt.date(2024, 1, 15))
        assert out.height == 0
        assert out.schema == pl.Schema(schema.RAW_BARS_SCHEMA)


def test_frame_to_raw_is_usable_on_its_own() -> None:
    frame, _ = load_recording("multi_ticker")
    out = yfinance_frame_to_raw(frame, TICKERS, START, END)
    assert out.rows() == csv_oracle("multi_ticker")


# --- transient failures -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["no_network_first_call", "no_network_later_call"])
def test_recorded_dns_failure_is_transient(name: str) -> None:
    fake = FakeDownloader.replaying(name)
    with pytest.raises(TransientSourceError) as info:
        source(fake).fetch(START, END)
    err = info.value
    assert err.retryable
    assert set(err.tickers) == set(TICKERS)
    assert "2024-01-02..2024-01-16" in str(err)
    assert "Could not resolve host" in str(err)


def test_later_call_dns_failure_reads_as_delisted_without_the_network_lines() -> None:
    # yfinance 1.7 hides the DNS failure behind "possibly delisted" once its timezone fallback
    # counter is spent; only the "Failed to get ticker" lines say why. Without them: no rows.
    frame, meta = load_recording("no_network_later_call")
    delisted_only = [r for r in meta["log"] if "Failed to get ticker" not in r[1]]
    assert source(FakeDownloader(frame, delisted_only)).fetch(START, END).height == 0


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} error", response=response)


def _transient_exceptions() -> list[BaseException]:
    from curl_cffi.requests.exceptions import DNSError
    from yfinance.exceptions import YFDataException, YFRateLimitError

    return [
        ConnectionError("connection reset by peer"),
        TimeoutError("timed out"),
        socket.gaierror(-3, "Temporary failure in name resolution"),
        requests.exceptions.ConnectionError("Max retries exceeded"),
        requests.exceptions.ReadTimeout("read timed out"),
        DNSError("Failed to perform, curl: (6) Could not resolve host"),
        YFRateLimitError(),
        YFDataException("*** YAHOO! FINANCE IS CURRENTLY DOWN! ***"),
        _http_error(503),
        _http_error(429),
    ]


@pytest.mark.parametrize("exc", _transient_exceptions(), ids=lambda e: type(e).__name__)
def test_downloader_raising_a_network_error_is_transient(exc: BaseException) -> None:
    with pytest.raises(TransientSourceError) as info:
        source(FakeDownloader(raises=exc)).fetch(START, END)
    assert info.value.__cause__ is exc
    assert "['AAPL', 'BRK-B', '^GSPC', 'SIVB'] for 2024-01-02..2024-01-16" in str(info.value)


@pytest.mark.parametrize(
    "message",
    [
        "['AAPL']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')",
        "['AAPL']: ReadTimeout('Failed to perform, curl: (28) Operation timed out')",
        "$AAPL: possibly delisted; no price data found (1d 2024-01-02 -> 2024-01-17)"
        "(Yahoo status_code = 502)",
    ],
)
def test_logged_rate_limit_timeout_or_5xx_is_transient(message: str) -> None:
    frame, _ = load_recording("multi_ticker")
    frame = frame.drop(columns="AAPL", level="Ticker")
    with pytest.raises(TransientSourceError) as info:
        source(FakeDownloader(frame, [["ERROR", message]])).fetch(START, END)
    assert info.value.tickers == ("AAPL",)


def test_5xx_response_code_logged_at_debug_is_transient() -> None:
    # A 5xx body is HTML, so yfinance 1.7 reports the ticker as "possibly delisted"; the status
    # code only appears in its DEBUG log.
    frame, _ = load_recording("multi_ticker")
    log = [
        ["DEBUG", "url=https://query2.finance.yahoo.com/v8/finance/chart/BRK-B"],
        ["DEBUG", "response code=503"],
        ["DEBUG", "response code=503"],
        ["ERROR", "$BRK-B: possibly delisted; no price data found  (1d 2024-01-02 -> 2024-01-17)"],
    ]
    with pytest.raises(TransientSourceError, match="HTTP 503") as info:
        source(FakeDownloader(frame, log)).fetch(START, END)
    assert info.value.tickers == ("BRK-B",)


def test_retried_request_that_succeeded_is_not_a_failure() -> None:
    log = [
        ["DEBUG", "url=https://query2.finance.yahoo.com/v8/finance/chart/AAPL"],
        ["DEBUG", "response code=500"],
        ["DEBUG", "response code=200"],
    ]
    frame, _ = load_recording("multi_ticker")
    assert source(FakeDownloader(frame, log)).fetch(START, END).height == 30


def test_legacy_shared_errors_dict_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import yfinance.shared

    monkeypatch.setattr(yfinance.shared, "_ERRORS", {})
    frame, _ = load_recording("no_network_first_call")

    def like_yfinance_0_2() -> None:  # 0.2.x replaced the dict at the start of every download
        monkeypatch.setattr(
            yfinance.shared, "_ERRORS", {"AAPL": "ConnectionError('Connection aborted.')"}
        )

    with pytest.raises(TransientSourceError) as info:
        source(FakeDownloader(frame, during_call=like_yfinance_0_2)).fetch(START, END)
    assert info.value.tickers == ("AAPL",)


def test_stale_legacy_errors_from_an_earlier_call_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yfinance.shared

    monkeypatch.setattr(yfinance.shared, "_ERRORS", {"AAPL": "ConnectionError('old')"})
    out = source(FakeDownloader.replaying("multi_ticker")).fetch(START, END)
    assert out.height == 30


def test_installed_yfinance_connection_refused_is_transient() -> None:
    """The real yfinance.download (no fake) through a proxy port nothing listens on: no Yahoo."""
    import yfinance
    from curl_cffi import requests as curl_requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proxy = f"http://127.0.0.1:{port}"
    session = curl_requests.Session(impersonate="chrome", proxies={"http": proxy, "https": proxy})
    download = functools.partial(yfinance.download, session=session)
    with pytest.raises(TransientSourceError, match=r"curl: \(7\)") as info:
        YFinanceSource(["AAPL", "SIVB"], timeout=2, downloader=download).fetch(START, END)
    assert set(info.value.tickers) == {"AAPL", "SIVB"}


# --- permanent failures -----------------------------------------------------------------------


def _permanent_exceptions() -> list[BaseException]:
    from yfinance.exceptions import YFDataException

    return [
        TypeError("download() got an unexpected keyword argument 'multi_level_index'"),
        ValueError("Setting period, start and end is nonsense. Set maximum 2 of them."),
        ValueError("timeout must be positive"),  # mentions timeout, still a bad argument
        YFDataException("Caching sessions (e.g. requests_cache) are not supported."),
        _http_error(401),
        KeyError("chart"),
    ]


@pytest.mark.parametrize("exc", _permanent_exceptions(), ids=lambda e: type(e).__name__)
def test_downloader_raising_anything_else_is_permanent(exc: BaseException) -> None:
    with pytest.raises(PermanentSourceError) as info:
        source(FakeDownloader(raises=exc)).fetch(START, END)
    assert not info.value.retryable
    assert info.value.__cause__ is exc
    assert "2024-01-02..2024-01-16" in str(info.value)


def test_unexplained_logged_error_is_permanent() -> None:
    frame, _ = load_recording("multi_ticker")
    log = [["ERROR", "AAPL: auto_adjust failed with KeyError('Adj Close')"]]
    with pytest.raises(PermanentSourceError, match="auto_adjust failed") as info:
        source(FakeDownloader(frame, log)).fetch(START, END)
    assert info.value.tickers == tuple(TICKERS)  # the text does not say which: all are named


def test_transient_wins_over_permanent_in_the_same_call() -> None:
    frame, _ = load_recording("multi_ticker")
    log = [["ERROR", "$AAPL: something odd"], ["ERROR", "['BRK-B']: ConnectionError('reset')"]]
    with pytest.raises(TransientSourceError):
        source(FakeDownloader(frame, log)).fetch(START, END)


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        ("not a frame", "pandas DataFrame"),
        (pd.DataFrame({"x": [1.0]}, index=pd.DatetimeIndex(["2024-01-02"])), "unexpected columns"),
        (pd.DataFrame({"Close": [1.0]}, index=pd.DatetimeIndex(["2024-01-02 10:30"])), "intraday"),
    ],
)
def test_reply_of_an_unreadable_shape_is_permanent(reply: object, match: str) -> None:
    with pytest.raises(PermanentSourceError, match=match):
        source(FakeDownloader(reply), ["AAPL"]).fetch(START, END)


def test_flat_columns_for_several_tickers_are_permanent() -> None:
    frame, _ = load_recording("single_ticker")
    with pytest.raises(PermanentSourceError, match="flat columns"):
        source(FakeDownloader(frame.droplevel(0, axis=1)), ["AAPL", "MSFT"]).fetch(START, END)


def test_missing_close_column_is_permanent() -> None:
    frame, _ = load_recording("single_ticker")
    with pytest.raises(PermanentSourceError, match="no 'Close' column"):
        source(FakeDownloader(frame.drop(columns="Close", level="Price")), ["AAPL"]).fetch(
            START, END
        )


# --- the yfinance logger is borrowed, not changed ---------------------------------------------


def test_logger_settings_are_restored_and_debug_lines_not_emitted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("yfinance")
    caplog.set_level(logging.WARNING, logger="yfinance")
    filters_before = list(logger.filters)
    log = [["DEBUG", "url=https://query2.finance.yahoo.com/v8/finance/chart/AAPL"]]
    source(FakeDownloader(load_recording("multi_ticker")[0], log)).fetch(START, END)
    assert logger.level == logging.WARNING
    assert logger.filters == filters_before
    assert not [r for r in caplog.records if r.levelno < logging.WARNING]


def test_failures_are_detected_even_when_the_yfinance_logger_is_silenced() -> None:
    logger = logging.getLogger("yfinance")
    level, disabled = logger.level, logger.disabled
    logger.setLevel(logging.CRITICAL)
    logger.disabled = True  # what logging.config.dictConfig does to loggers it was not told about
    try:
        with pytest.raises(TransientSourceError):
            source(FakeDownloader.replaying("no_network_later_call")).fetch(START, END)
        assert (logger.level, logger.disabled) == (logging.CRITICAL, True)
    finally:
        logger.setLevel(level)
        logger.disabled = disabled


# --- construction and the BarSource protocol --------------------------------------------------


def test_is_a_bar_source_with_canonical_tickers_and_coverage() -> None:
    src = YFinanceSource(["brk/b", " aapl ", "BRK-B", "^gspc"], coverage_start=dt.date(2000, 1, 3))
    assert isinstance(src, BarSource)
    assert src.name == "yfinance"
    assert src.tickers == ("BRK-B", "AAPL", "^GSPC")
    assert src.coverage() == Coverage(dt.date(2000, 1, 3), None)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tickers": "AAPL"}, TypeError, "not a single string|list or tuple"),
        ({"tickers": []}, ValueError, "at least one ticker"),
        ({"tickers": ["../etc"]}, TickerError, "not allowed"),
        ({"tickers": ["AAPL"], "auto_adjust": "yes"}, TypeError, "auto_adjust"),
        ({"tickers": ["AAPL"], "timeout": 0}, ValueError, "timeout"),
        ({"tickers": ["AAPL"], "coverage_start": "2020-01-01"}, TypeError, "coverage_start"),
        ({"tickers": ["AAPL"], "downloader": "yfinance.download"}, TypeError, "callable"),
    ],
)
def test_bad_configuration_is_rejected(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        YFinanceSource(**kwargs)


@pytest.mark.parametrize(
    ("start", "end", "error"),
    [
        (END, START, ValueError),
        (dt.datetime(2024, 1, 2), END, TypeError),
        ("2024-01-02", END, TypeError),
    ],
)
def test_bad_range_is_rejected_before_downloading(start: Any, end: Any, error: type) -> None:
    fake = FakeDownloader.replaying("multi_ticker")
    with pytest.raises(error):
        source(fake).fetch(start, end)
    assert fake.calls == []


# --- errors module ----------------------------------------------------------------------------


def test_source_errors_pickle_with_their_fields() -> None:
    err = TransientSourceError("yfinance", ["AAPL"], START, END, "DNSError('x')")
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, SourceError) and isinstance(back, RuntimeError)
    assert (str(back), back.tickers, back.start, back.end) == (str(err), ("AAPL",), START, END)


def test_is_transient_exception() -> None:
    assert is_transient_exception(_http_error(502))
    assert not is_transient_exception(_http_error(404))
    assert not is_transient_exception(ValueError("Timeout"))
