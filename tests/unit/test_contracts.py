"""Unit tests for the pandera ``bars`` contract (:func:`alphadag.market.contracts.check_bars`)."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.market.calendar import sessions
from alphadag.market.contracts import SchemaReport, bars_schema, check_bars
from alphadag.market.schema import BARS_SCHEMA

D1, D2 = dt.date(2022, 12, 27), dt.date(2022, 12, 28)
SESSIONS = [D1, D2]


def clean() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ticker": ["AAPL", "BRK-B", "^GSPC", "AAPL"],
            "date": [D1, D1, D1, D2],
            "open": [130.0, None, 3800.0, 131.0],
            "high": [131.0, None, 3850.0, 132.5],
            "low": [129.0, None, 3790.0, 130.0],
            "close": [130.5, 300.0, 3820.0, 132.0],
            "volume": [1e6, None, 3e9, 0.0],
        },
        schema=BARS_SCHEMA,
    )


def with_value(column: str, index: int, value: object) -> pl.DataFrame:
    frame = clean()
    values = frame[column].to_list()
    values[index] = value
    return frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))


def checks(report: SchemaReport) -> set[tuple[str, str]]:
    return {(c["column"], c["check"]) for c in report.failure_cases}


def test_a_clean_frame_passes() -> None:
    report = check_bars(clean(), SESSIONS)
    assert report == SchemaReport(success=True, rows=4, failure_cases=[])
    assert report.to_metadata() == {
        "rows_checked": 4,
        "n_failure_cases": 0,
        "failures_by_check": {},
        "failure_cases": [],
    }


def test_a_lazy_frame_is_collected_and_its_data_checked() -> None:
    report = check_bars(with_value("close", 0, -1.0).lazy(), SESSIONS)
    assert not report.success
    assert ("close", "finite_positive") in checks(report)


def test_an_empty_frame_passes() -> None:
    assert check_bars(clean().clear(), SESSIONS).success


@pytest.mark.parametrize(
    ("column", "index", "value", "check"),
    [
        ("close", 0, math.nan, "finite_positive"),
        ("open", 0, math.nan, "finite_positive"),
        ("high", 3, math.inf, "finite_positive"),
        ("low", 0, -math.inf, "finite_positive"),
        ("close", 1, -300.0, "finite_positive"),
        ("open", 3, 0.0, "finite_positive"),
        ("volume", 0, -1.0, "finite_non_negative"),
        ("volume", 2, math.inf, "finite_non_negative"),
        ("volume", 2, math.nan, "finite_non_negative"),
        ("close", 1, None, "not_nullable"),
    ],
)
def test_value_violations_name_the_check_and_column(
    column: str, index: int, value: object, check: str
) -> None:
    report = check_bars(with_value(column, index, value), SESSIONS)
    assert not report.success
    assert report.rows == 4
    assert (column, check) in checks(report)
    case = next(c for c in report.failure_cases if (c["column"], c["check"]) == (column, check))
    assert case["index"] == index
    assert report.to_metadata()["failures_by_check"][f"{column}:{check}"] >= 1


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"high": 129.5}, "high_consistent"),  # high below close (and below open)
        ({"high": 128.0, "low": 131.5}, "high_consistent"),  # high < low
        ({"low": 131.0}, "low_consistent"),  # low above close and open
        ({"high": 128.0, "low": 131.5}, "low_consistent"),
    ],
)
def test_ohlc_inconsistency_fails_the_frame_check(changes: dict, check: str) -> None:
    frame = clean()
    for column, value in changes.items():
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == 0).then(value).otherwise(pl.col(column)).alias(column)
        )
    report = check_bars(frame, SESSIONS)
    assert not report.success
    cases = [c for c in report.failure_cases if c["check"] == check]
    assert [c["index"] for c in cases] == [0]
    assert cases[0]["column"] == "bars"  # a frame-wide check: the column is the schema's name


def test_a_duplicate_key_fails_uniqueness() -> None:
    frame = pl.concat([clean(), clean().slice(0, 1)])
    report = check_bars(frame, SESSIONS)
    assert not report.success
    cases = [c for c in report.failure_cases if "uniqueness" in c["check"]]
    assert cases
    assert {c["index"] for c in cases} == {0, 4}
    assert all("AAPL" in c["failure_case"] for c in cases)


def test_a_date_outside_the_sessions_fails() -> None:
    report = check_bars(with_value("date", 3, dt.date(2022, 12, 26)), SESSIONS)
    assert not report.success
    cases = [c for c in report.failure_cases if c["column"] == "date"]
    assert [(c["index"], c["failure_case"]) for c in cases] == [(3, "2022-12-26")]


def test_the_date_check_is_named_date_is_session() -> None:
    # bars_schema names the check "date_is_session"; the failure case must carry that name, not
    # pandera's default "isin([...])", which embeds every allowed session (~160 kB for the sample
    # history) in each failure case and in the Dagster metadata key.
    all_sessions = sessions("2000-01-01", "2022-12-31")
    report = check_bars(with_value("date", 3, dt.date(2022, 12, 26)), all_sessions)
    assert not report.success
    assert [c["check"] for c in report.failure_cases if c["column"] == "date"] == [
        "date_is_session"
    ]
    assert list(report.to_metadata()["failures_by_check"]) == ["date:date_is_session"]


@pytest.mark.parametrize("ticker", ["aapl", "BRK.B", "../X", "", "A B", "ABCDEFGHIJKLMNOP"])
def test_a_non_canonical_ticker_fails(ticker: str) -> None:
    report = check_bars(with_value("ticker", 0, ticker), SESSIONS)
    assert not report.success
    cases = [c for c in report.failure_cases if c["column"] == "ticker"]
    assert [(c["index"], c["failure_case"]) for c in cases] == [(0, ticker)]
    assert "str_matches" in cases[0]["check"]


def test_an_extra_column_fails_strictness() -> None:
    report = check_bars(clean().with_columns(origin=pl.lit("x")), SESSIONS)
    assert not report.success
    assert [(c["check"], c["failure_case"]) for c in report.failure_cases] == [
        ("column_in_schema", "origin")
    ]


def test_a_missing_column_fails() -> None:
    report = check_bars(clean().drop("volume"), SESSIONS)
    assert not report.success
    assert any(c["failure_case"] == "volume" for c in report.failure_cases)


def test_columns_out_of_order_fail() -> None:
    frame = clean().select("date", "ticker", "open", "high", "low", "close", "volume")
    assert not check_bars(frame, SESSIONS).success


def test_a_wrong_dtype_fails() -> None:
    frame = clean().with_columns(pl.col("volume").cast(pl.Int64))
    report = check_bars(frame, SESSIONS)
    assert not report.success
    assert any(c["column"] == "volume" for c in report.failure_cases)


def test_metadata_limits_the_cases_but_counts_them_all() -> None:
    frame = clean().with_columns(pl.lit(-1.0).alias("close"))
    meta = check_bars(frame, SESSIONS).to_metadata(limit=2)
    assert meta["failures_by_check"]["close:finite_positive"] == 4
    assert meta["n_failure_cases"] >= 4
    assert len(meta["failure_cases"]) == 2


def test_the_schema_is_the_documented_contract() -> None:
    schema = bars_schema(SESSIONS)
    assert list(schema.columns) == list(BARS_SCHEMA)
    assert schema.strict is True
    assert {c: schema.columns[c].nullable for c in schema.columns} == {
        "ticker": False,
        "date": False,
        "open": True,
        "high": True,
        "low": True,
        "close": False,
        "volume": True,
    }


PRICE = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=80, deadline=None)
@given(
    o=PRICE,
    h=PRICE,
    low=PRICE,
    c=st.floats(allow_nan=True, allow_infinity=True),
    v=PRICE,
)
def test_contract_agrees_with_a_plain_python_statement_of_the_rules(o, h, low, c, v) -> None:
    frame = pl.DataFrame(
        {
            "ticker": ["AAA"],
            "date": [D1],
            "open": [o],
            "high": [h],
            "low": [low],
            "close": [c],
            "volume": [v],
        },
        schema=BARS_SCHEMA,
    )

    def fine(x: float | None) -> bool:
        return x is None or (math.isfinite(x) and x > 0)

    prices_ok = all(fine(x) for x in (o, h, low, c))
    volume_ok = v is None or (math.isfinite(v) and v >= 0)
    high_ok = h is None or all(x is None or h >= x for x in (o, c))
    low_ok = low is None or all(x is None or low <= x for x in (o, c))
    expected = prices_ok and volume_ok and high_ok and low_ok
    assert check_bars(frame, SESSIONS).success is expected
