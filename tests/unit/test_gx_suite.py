"""Tests for the Great Expectations suite of the validated ``bars`` table."""

from __future__ import annotations

import datetime as dt
import json
import math
import socket
import threading

import polars as pl
import pytest

from alphadag.market import gx_suite
from alphadag.market.gx_suite import GxReport, bars_expectation_suite, run_bars_suite
from alphadag.market.schema import BARS_SCHEMA, empty
from alphadag.market.tickers import TICKER_PATTERN

D1 = dt.date(2024, 1, 2)
D2 = dt.date(2024, 1, 3)
SESSIONS = [D1, D2]

BETWEEN = "expect_column_values_to_be_between"
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
REGEX = "expect_column_values_to_match_regex"
NO_SPACE = "expect_column_values_to_not_match_regex"
UNIQUE = "expect_compound_columns_to_be_unique"
ROW_COUNT = "expect_table_row_count_to_be_between"


def _row(ticker: str, date: dt.date, **values: float | None) -> dict:
    base = {"open": 100.0, "high": 110.0, "low": 90.0, "close": 105.0, "volume": 1000.0}
    return {"ticker": ticker, "date": date, **base, **values}


def _clean_rows() -> list[dict]:
    return [_row(t, d) for t in ("AAPL", "BRK-B", "^GSPC") for d in SESSIONS]


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=BARS_SCHEMA, orient="row")


def _with_first(**changes: object) -> pl.DataFrame:
    rows = _clean_rows()
    rows[0] = {**rows[0], **changes}
    return _frame(rows)


def _failed_keys(report: GxReport) -> set[tuple[str, tuple[str, ...]]]:
    return {(f["expectation"], tuple(f["columns"])) for f in report.failed}


def _failure(report: GxReport, expectation: str, columns: tuple[str, ...]) -> dict:
    matches = [
        f
        for f in report.failed
        if f["expectation"] == expectation and tuple(f["columns"]) == columns
    ]
    assert len(matches) == 1, report.failed
    return matches[0]


@pytest.fixture(scope="session", autouse=True)
def _gx_warm() -> None:
    """Pay GX's import and context build once (several seconds) rather than in the first test."""
    run_bars_suite(_frame(_clean_rows()), SESSIONS, min_rows=1)


def test_clean_frame_over_many_sessions_passes() -> None:
    report = run_bars_suite(_frame(_clean_rows()), SESSIONS, min_rows=1)
    assert report.success is True
    assert report.failed == []
    assert report.evaluated == len(bars_expectation_suite(SESSIONS).expectations) == 17
    assert report.statistics["unsuccessful_expectations"] == 0


def test_single_session_partition_passes() -> None:
    rows = [r for r in _clean_rows() if r["date"] == D2]
    assert run_bars_suite(_frame(rows), [D2], min_rows=1).success


# (frame, expected failed (type, columns) set, (type, columns) to inspect, value in its sample)
CASES = {
    "negative price": (
        _with_first(low=-1.0),
        {(BETWEEN, ("low",))},
        (BETWEEN, ("low",)),
        -1.0,
    ),
    "zero price": (
        _with_first(open=0.0, low=0.0),
        {(BETWEEN, ("open",)), (BETWEEN, ("low",))},
        (BETWEEN, ("open",)),
        0.0,
    ),
    "nan price": (
        _with_first(high=math.nan),
        {(BETWEEN, ("high",)), (PAIR, ("high", "open")), (PAIR, ("high", "close"))},
        (BETWEEN, ("high",)),
        "NaN",
    ),
    "nan close": (
        _with_first(close=math.nan),
        {(BETWEEN, ("close",)), (PAIR, ("high", "close")), (PAIR, ("close", "low"))},
        (BETWEEN, ("close",)),
        "NaN",
    ),
    "inf price": (
        _with_first(high=math.inf),
        {(BETWEEN, ("high",))},
        (BETWEEN, ("high",)),
        "inf",
    ),
    "minus inf price": (
        _with_first(low=-math.inf),
        {(BETWEEN, ("low",))},
        (BETWEEN, ("low",)),
        "-inf",
    ),
    "high below open": (
        _with_first(open=115.0),
        {(PAIR, ("high", "open"))},
        (PAIR, ("high", "open")),
        [110.0, 115.0],
    ),
    "low above close": (
        _with_first(close=95.0, low=97.0),
        {(PAIR, ("close", "low"))},
        (PAIR, ("close", "low")),
        [95.0, 97.0],
    ),
    "negative volume": (
        _with_first(volume=-5.0),
        {(BETWEEN, ("volume",))},
        (BETWEEN, ("volume",)),
        -5.0,
    ),
    "inf volume": (
        _with_first(volume=math.inf),
        {(BETWEEN, ("volume",))},
        (BETWEEN, ("volume",)),
        "inf",
    ),
    "duplicate ticker date": (
        _frame([*_clean_rows(), _row("AAPL", D1)]),
        {(UNIQUE, ("ticker", "date"))},
        (UNIQUE, ("ticker", "date")),
        {"ticker": "AAPL", "date": "2024-01-02"},
    ),
    "date not in sessions": (
        _with_first(date=dt.date(2024, 1, 5)),
        {(IN_SET, ("date",))},
        (IN_SET, ("date",)),
        "2024-01-05",
    ),
    "null date": (
        _with_first(date=None),
        {(NOT_NULL, ("date",))},
        (NOT_NULL, ("date",)),
        None,
    ),
    "bad ticker": (
        _with_first(ticker="aapl"),
        {(REGEX, ("ticker",))},
        (REGEX, ("ticker",)),
        "aapl",
    ),
    "ticker with trailing newline": (
        _with_first(ticker="AAPL\n"),
        {(NO_SPACE, ("ticker",))},
        (NO_SPACE, ("ticker",)),
        "AAPL\n",
    ),
    "null ticker": (
        _with_first(ticker=None),
        {(NOT_NULL, ("ticker",))},
        (NOT_NULL, ("ticker",)),
        None,
    ),
    "null close": (
        _with_first(close=None),
        {(NOT_NULL, ("close",))},
        (NOT_NULL, ("close",)),
        None,
    ),
    "zero rows with min_rows 1": (
        empty(BARS_SCHEMA),
        {(ROW_COUNT, ())},
        (ROW_COUNT, ()),
        0,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_rule_violation_fails_with_its_expectation_and_value(case: str) -> None:
    frame, expected, inspect, value = CASES[case]
    report = run_bars_suite(frame, SESSIONS, min_rows=1)
    assert report.success is False
    assert _failed_keys(report) == expected
    failure = _failure(report, *inspect)
    assert value in failure["unexpected_sample"]
    if inspect[0] == ROW_COUNT:
        assert failure["unexpected_count"] is None
        assert failure["observed_value"] == 0
    else:
        assert failure["unexpected_count"] == failure["unexpected_sample"].count(value) >= 1
    assert failure["exception"] is None
    assert report.statistics["unsuccessful_expectations"] == len(expected)


def test_zero_rows_with_min_rows_zero_passes() -> None:
    report = run_bars_suite(empty(BARS_SCHEMA), SESSIONS, min_rows=0)
    assert report.success is True
    assert report.failed == []


def test_zero_rows_and_no_sessions_with_min_rows_zero_passes() -> None:
    assert run_bars_suite(empty(BARS_SCHEMA), [], min_rows=0).success


def test_close_only_rows_pass() -> None:
    rows = [
        _row(t, d, open=None, high=None, low=None, volume=None)
        for t in ("A", "B")
        for d in SESSIONS
    ]
    report = run_bars_suite(_frame(rows), SESSIONS, min_rows=1)
    assert report.success is True, report.failed


def test_close_only_rows_with_all_null_columns_of_null_dtype_pass() -> None:
    frame = pl.DataFrame({"ticker": ["A", "B"], "date": [D1, D1], "close": [1.0, 2.0]})
    frame = frame.with_columns(open=None, high=None, low=None, volume=None)
    assert frame.schema["open"] == pl.Null
    assert run_bars_suite(frame, SESSIONS, min_rows=1).success


def test_mixed_close_only_row_still_checks_present_values() -> None:
    rows = [*_clean_rows(), _row("MSFT", D1, open=None, high=None, low=None, volume=-1.0)]
    report = run_bars_suite(_frame(rows), SESSIONS, min_rows=1)
    assert _failed_keys(report) == {(BETWEEN, ("volume",))}


def test_sample_is_capped_and_count_is_complete() -> None:
    rows = [_row(f"T{i}", D1, volume=-float(i + 1)) for i in range(15)]
    failure = _failure(run_bars_suite(_frame(rows), SESSIONS, min_rows=1), BETWEEN, ("volume",))
    assert failure["unexpected_count"] == 15
    assert failure["unexpected_sample"] == [-float(i + 1) for i in range(10)]


def test_failures_follow_suite_order_and_metadata_is_strict_json() -> None:
    frame = _with_first(ticker="aapl", close=None, volume=math.nan, date=dt.date(2023, 1, 1))
    report = run_bars_suite(frame, SESSIONS, min_rows=1)
    assert [f["expectation"] for f in report.failed] == [REGEX, IN_SET, NOT_NULL, BETWEEN]
    metadata = report.to_metadata()
    assert json.loads(json.dumps(metadata, allow_nan=False)) == metadata
    assert metadata["gx_success"] is False
    assert metadata["gx_failed_count"] == 4
    assert metadata["gx_evaluated"] == 17
    assert metadata["gx_failed_expectations"][0] == f"{REGEX}(ticker)"
    assert metadata["gx_failed"][1]["unexpected_sample"] == ["2023-01-01"]


def test_report_is_frozen() -> None:
    report = GxReport(success=True, evaluated=1, failed=[], statistics={})
    with pytest.raises(AttributeError):
        report.success = False  # type: ignore[misc]


def test_suite_contents() -> None:
    suite = bars_expectation_suite([D2, D1, D2], min_rows=0)
    configs = {gx_suite._key(e.configuration): e for e in suite.expectations}
    assert configs[(IN_SET, ("date",))].value_set == [D1, D2]
    assert configs[(REGEX, ("ticker",))].regex == TICKER_PATTERN.pattern
    assert configs[(ROW_COUNT, ())].min_value == 0
    for column in ("open", "high", "low", "close"):
        between = configs[(BETWEEN, (column,))]
        assert (between.min_value, between.strict_min, between.max_value) == (0, True, 1e12)
    for columns in (("high", "open"), ("high", "close"), ("open", "low"), ("close", "low")):
        pair = configs[(PAIR, columns)]
        assert pair.or_equal is True
        assert pair.ignore_row_if == "either_value_is_missing"


@pytest.mark.parametrize(
    ("sessions", "min_rows", "message"),
    [
        (["2024-01-02"], 1, "datetime.date values"),
        ([dt.datetime(2024, 1, 2)], 1, "datetime.date values"),
        ("2024-01-02", 1, "list of datetime.date"),
        ([D1], -1, "non-negative int"),
        ([D1], True, "non-negative int"),
    ],
)
def test_bad_arguments_raise_value_error(sessions: object, min_rows: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bars_expectation_suite(sessions, min_rows=min_rows)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_frame(_clean_rows()).drop("volume"), r"lacks contract column\(s\) \['volume'\]"),
        (_frame(_clean_rows()).with_columns(pl.col("date").cast(pl.Datetime)), "dt.date()"),
        (_frame(_clean_rows()).with_columns(pl.col("close").cast(pl.String)), "'close'"),
        (_frame(_clean_rows()).lazy(), "collect a LazyFrame"),
    ],
)
def test_bad_frames_raise_value_error(frame: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_bars_suite(frame, SESSIONS, min_rows=1)  # type: ignore[arg-type]


def test_extra_columns_are_ignored_and_integer_volume_is_accepted() -> None:
    frame = _frame(_clean_rows()).with_columns(pl.col("volume").cast(pl.Int64), origin=pl.lit("x"))
    assert run_bars_suite(frame, SESSIONS, min_rows=1).success


def test_concurrent_validations_do_not_mix_frames() -> None:
    frames = {"clean": _frame(_clean_rows()), "bad": _with_first(volume=-5.0)}
    reports: dict[str, list[GxReport]] = {name: [] for name in frames}

    def work(name: str) -> None:
        for _ in range(3):
            reports[name].append(run_bars_suite(frames[name], SESSIONS, min_rows=1))

    threads = [threading.Thread(target=work, args=(name,)) for name in frames]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.success for r in reports["clean"]] == [True, True, True]
    assert [_failed_keys(r) for r in reports["bad"]] == [{(BETWEEN, ("volume",))}] * 3


def test_context_is_offline_without_analytics_and_releases_the_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_network(self: socket.socket, *args: object) -> None:
        raise AssertionError(f"GX tried to open a connection to {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    gx_suite._batch_definition.cache_clear()
    assert run_bars_suite(_frame(_clean_rows()), SESSIONS, min_rows=1).success
    batch_definition = gx_suite._batch_definition()
    datasource = batch_definition.data_asset.datasource
    assert datasource.data_context.config.analytics_enabled is False
    assert datasource.get_execution_engine().batch_manager.batch_data_cache == {}
