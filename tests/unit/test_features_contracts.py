"""The ``features`` contract: ``check_features`` (pandera schema + the null rule) and ``row_context``.

A synthetic panel of four tickers over fifteen months (longer than the 252-row warm-up of the
``dist_52w_*`` columns), one of them close-only, is computed once per module; each test damages a
copy of the feature table in one known place and reads the failure cases back.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from alphadag.features import FEATURE_COLUMNS, OHLCV_FEATURE_COLUMNS, WARMUP, compute_features
from alphadag.features.contracts import check_features, null_violations, row_context
from alphadag.market.calendar import sessions
from alphadag.market.contracts import check_bars
from alphadag.market.sources.synthetic import SyntheticSource

START, END = "2023-01-03", "2024-03-28"
CLOSE_ONLY = "SYN003"
FULL = "SYN001"
OHLV = ("open", "high", "low", "volume")
D = dt.date


def _close_only(bars: pl.DataFrame, ticker: str) -> pl.DataFrame:
    """Null open/high/low/volume for ``ticker``, as a close-only source delivers it."""
    keep = pl.col("ticker") != ticker
    return bars.with_columns(pl.when(keep).then(pl.col(c)).alias(c) for c in OHLV)


@pytest.fixture(scope="module")
def ohlcv_bars() -> pl.DataFrame:
    src = SyntheticSource(n_tickers=4, start=START, end=END, seed=5)
    return src.fetch(src.start, src.end).drop("origin", "parse_errors")


@pytest.fixture(scope="module")
def bars(ohlcv_bars: pl.DataFrame) -> pl.DataFrame:
    return _close_only(ohlcv_bars, CLOSE_ONLY)


@pytest.fixture(scope="module")
def features(bars: pl.DataFrame) -> pl.DataFrame:
    return compute_features(bars)


def _row(features: pl.DataFrame, ticker: str, k: int) -> tuple[int, dt.date]:
    """Position in ``features`` and date of the ``k``-th (0-based) row of ``ticker``."""
    indexed = features.with_row_index("_pos").filter(pl.col("ticker") == ticker)
    pos, day = indexed.select("_pos", "date").row(k)
    return pos, day


def _set(features: pl.DataFrame, pos: int, column: str, value: float | None) -> pl.DataFrame:
    hit = pl.int_range(pl.len()) == pos
    return features.with_columns(
        pl.when(hit).then(pl.lit(value, dtype=pl.Float64)).otherwise(pl.col(column)).alias(column)
    )


def test_compute_features_output_passes_with_a_close_only_ticker(ohlcv_bars, bars, features):
    assert bars.filter(pl.col("ticker") == CLOSE_ONLY).height > max(WARMUP.values()) + 1
    report = check_features(features, bars)
    assert report.success, report.failure_cases[:5]
    assert report.rows == features.height == bars.height
    assert report.failure_cases == []
    assert report.to_metadata()["n_failure_cases"] == 0
    # the close-only exemption is what lets it pass: its OHLCV features are null on every row
    close_only = features.filter(pl.col("ticker") == CLOSE_ONLY)
    assert close_only.select(OHLCV_FEATURE_COLUMNS).null_count().row(0) == (
        close_only.height,
    ) * len(OHLCV_FEATURE_COLUMNS)
    # judged as if the ticker had full OHLCV, exactly those columns of exactly it would fail
    strict = null_violations(features, row_context(ohlcv_bars))
    assert set(strict["column"]) == set(OHLCV_FEATURE_COLUMNS)
    assert set(strict["ticker"]) == {CLOSE_ONLY}


@pytest.mark.parametrize(
    "column", ["sma_10", "macd_hist", "atr_14", "obv", "xs_rank_rsi_14", "dist_52w_high"]
)
def test_a_null_right_after_warmup_fails_naming_column_ticker_and_date(features, bars, column):
    warm = WARMUP[column]
    if warm:  # the warm-up boundary is tight: null before it, a value from it on
        assert features[column][_row(features, FULL, warm - 1)[0]] is None
    pos, day = _row(features, FULL, warm)
    assert features[column][pos] is not None

    report = check_features(_set(features, pos, column, None), bars)

    assert not report.success
    assert report.failure_cases == [
        {
            "column": column,
            "check": "null_outside_warmup",
            "failure_case": f"{FULL} {day} (row {warm + 1} of the ticker)",
            "index": None,
        }
    ]
    assert report.to_metadata()["failures_by_check"] == {f"{column}:null_outside_warmup": 1}


def test_a_close_feature_of_a_close_only_ticker_must_not_be_null(features, bars):
    pos, day = _row(features, CLOSE_ONLY, 100)
    report = check_features(_set(features, pos, "sma_20", None), bars)
    assert not report.success
    assert [(c["column"], c["check"]) for c in report.failure_cases] == [
        ("sma_20", "null_outside_warmup")
    ]
    assert report.failure_cases[0]["failure_case"].startswith(f"{CLOSE_ONLY} {day} ")


@pytest.mark.parametrize(
    ("value", "shown"), [(float("inf"), "inf"), (float("-inf"), "-inf"), (float("nan"), "NaN")]
)
def test_a_non_finite_value_fails_the_finite_check(features, bars, value, shown):
    pos, _ = _row(features, FULL, 200)
    report = check_features(_set(features, pos, "rsi_14", value), bars)
    assert not report.success
    assert report.failure_cases == [
        {"column": "rsi_14", "check": "finite", "failure_case": shown, "index": pos}
    ]


def test_a_missing_column_fails(features, bars):
    """A missing feature column is a failed contract (a report), not a crash of the check."""
    report = check_features(features.drop("rsi_14"), bars)
    assert not report.success
    assert {"column": "features", "check": "column_in_dataframe", "failure_case": "rsi_14"} in [
        {k: c[k] for k in ("column", "check", "failure_case")} for c in report.failure_cases
    ]


def test_an_extra_column_fails(features, bars):
    report = check_features(features.with_columns(fwd_ret_1d=pl.lit(0.0)), bars)
    assert not report.success
    assert [(c["check"], c["failure_case"]) for c in report.failure_cases] == [
        ("column_in_schema", "fwd_ret_1d")
    ]


def test_wrong_dtype_order_and_duplicates_fail(features, bars):
    float32 = check_features(features.with_columns(pl.col("sma_10").cast(pl.Float32)), bars)
    assert [(c["column"], c["failure_case"]) for c in float32.failure_cases] == [
        ("sma_10", "Float32")
    ]
    reordered = features.select("ticker", "date", *reversed(FEATURE_COLUMNS))
    assert {c["check"] for c in check_features(reordered, bars).failure_cases} == {"column_ordered"}
    duplicated = check_features(pl.concat([features, features.head(1)]), bars)
    assert not duplicated.success
    assert duplicated.failure_cases and all(
        "unique" in c["check"] for c in duplicated.failure_cases
    )


def test_valid_bars_missing_one_volume_still_pass(ohlcv_bars):
    """A row of an OHLCV ticker without volume is valid ``bars`` ("volume where present"), so
    the features computed from it must pass the blocking contract."""
    hole = (pl.col("ticker") == FULL) & (pl.col("date") == D(2023, 9, 1))
    bars = ohlcv_bars.with_columns(pl.when(~hole).then(pl.col("volume")).alias("volume"))
    assert check_bars(bars, sessions(START, END)).success
    report = check_features(compute_features(bars), bars)
    assert report.success, report.failure_cases[:5]


# -- row_context -----------------------------------------------------------------------------

A, B, C = "AAA", "BBB", "CCC"


def _bars(rows: list[tuple]) -> pl.DataFrame:
    """Rows of (ticker, day of January 2024, full OHLCV?, volume present?)."""
    return pl.DataFrame(
        [
            {
                "ticker": t,
                "date": D(2024, 1, day),
                "open": 10.0 if full else None,
                "high": 11.0 if full else None,
                "low": 9.0 if full else None,
                "close": 10.0,
                "volume": 100.0 if full and vol else None,
            }
            for t, day, full, vol in rows
        ],
        schema={
            "ticker": pl.String,
            "date": pl.Date,
            **dict.fromkeys(("open", "high", "low", "close", "volume"), pl.Float64),
        },
    )


def test_row_context_counts_rows_and_the_run_of_full_ohlcv_rows_per_ticker():
    bars = _bars(
        [  # deliberately out of order
            (B, 3, False, False),
            (A, 4, True, True),
            (C, 2, False, False),
            (A, 2, True, True),
            (A, 3, True, False),  # volume missing: not a full OHLCV row
            (B, 2, False, False),
            (C, 3, True, True),  # close-only first, full OHLCV later
            (A, 5, True, True),
            (C, 4, True, True),
        ]
    )
    context = row_context(bars)
    assert context.columns == ["ticker", "date", "n_obs", "n_ohlcv"]
    assert context.schema["n_obs"].is_integer() and context.schema["n_ohlcv"].is_integer()
    assert context.rows() == [
        (A, D(2024, 1, 2), 1, 1),
        (A, D(2024, 1, 3), 2, 0),  # the missing volume restarts the run of full rows
        (A, D(2024, 1, 4), 3, 1),
        (A, D(2024, 1, 5), 4, 2),
        (B, D(2024, 1, 2), 1, 0),
        (B, D(2024, 1, 3), 2, 0),
        (C, D(2024, 1, 2), 1, 0),
        (C, D(2024, 1, 3), 2, 1),
        (C, D(2024, 1, 4), 3, 2),
    ]


def test_row_context_of_a_truncated_history_is_the_prefix(bars):
    full = row_context(bars)
    for cut in (D(2023, 1, 3), D(2023, 6, 30), D(2024, 3, 27)):
        assert row_context(bars.filter(pl.col("date") <= cut)).equals(
            full.filter(pl.col("date") <= cut)
        )
    last = full.group_by("ticker").agg(pl.col("n_obs", "n_ohlcv").max()).sort("ticker")
    n = bars.group_by("ticker").len().sort("ticker")["len"]
    assert last["n_obs"].to_list() == n.to_list()
    assert last["n_ohlcv"].to_list() == [
        0 if t == CLOSE_ONLY else k for t, k in zip(last["ticker"], n, strict=True)
    ]
