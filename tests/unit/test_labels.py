"""``compute_labels``: forward log returns per ticker, null at the end, never mixed into features."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from alphadag.features import FEATURE_COLUMNS, compute_features, compute_labels, label_columns


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    """Two tickers with different histories (B misses a session), rows in date order."""
    days = [dt.date(2024, 1, d) for d in (2, 3, 4, 5, 8, 9, 10, 11)]
    a_close = [100.0, 101.0, 99.5, 102.0, 103.5, 103.5, 101.0, 104.0]
    b_days = [d for d in days if d != dt.date(2024, 1, 5)]
    b_close = [10.0, 9.0, 9.9, 10.5, 10.4, 11.0, 12.0]
    frame = pl.DataFrame(
        {
            "ticker": ["A"] * len(days) + ["B"] * len(b_days),
            "date": days + b_days,
            "close": a_close + b_close,
        }
    )
    return frame.sort("date", "ticker")


def expected_forward(close: list[float], h: int) -> list[float | None]:
    values = np.asarray(close)
    out: list[float | None] = [None] * len(values)
    for t in range(len(values) - h):
        out[t] = float(np.log(values[t + h] / values[t]))
    return out


@pytest.mark.parametrize("horizons", [(1, 5, 20), (1,), (2, 3)])
def test_forward_returns_match_numpy(bars: pl.DataFrame, horizons: tuple[int, ...]) -> None:
    labels = compute_labels(bars, horizons)
    assert labels.columns == ["ticker", "date", *label_columns(horizons)]
    for ticker in ("A", "B"):
        close = bars.filter(pl.col("ticker") == ticker).sort("date")["close"].to_list()
        rows = labels.filter(pl.col("ticker") == ticker)
        for h in horizons:
            got = rows[f"fwd_ret_{h}d"].to_list()
            want = expected_forward(close, h)
            assert [g is None for g in got] == [w is None for w in want]
            np.testing.assert_allclose(
                [g for g in got if g is not None], [w for w in want if w is not None], rtol=1e-12
            )


def test_last_h_rows_of_each_ticker_are_null(bars: pl.DataFrame) -> None:
    labels = compute_labels(bars)
    for (ticker,), rows in labels.group_by("ticker"):
        for h in (1, 5, 20):
            column = rows.sort("date")[f"fwd_ret_{h}d"]
            tail = min(h, rows.height)
            assert column.tail(tail).is_null().all(), (ticker, h)
            assert column.head(rows.height - tail).is_not_null().all(), (ticker, h)


def test_a_gap_counts_rows_not_calendar_days(bars: pl.DataFrame) -> None:
    b = compute_labels(bars, (1,)).filter(pl.col("ticker") == "B")
    # B has no bar on Jan 5: its label on Jan 4 runs to Jan 8, its next row
    jan4 = b.filter(pl.col("date") == dt.date(2024, 1, 4))["fwd_ret_1d"].item()
    assert jan4 == pytest.approx(np.log(10.5 / 9.9), rel=1e-12)


def test_labels_never_share_columns_with_features(bars: pl.DataFrame) -> None:
    labels = compute_labels(bars)
    features = compute_features(bars)
    shared = set(labels.columns) & set(features.columns)
    assert shared == {"ticker", "date"}
    assert not set(label_columns((1, 5, 20, 60, 120))) & set(FEATURE_COLUMNS)
    assert not any(c.startswith("fwd_") for c in FEATURE_COLUMNS)


def test_lazy_input_and_row_order(bars: pl.DataFrame) -> None:
    eager = compute_labels(bars)
    assert compute_labels(bars.reverse().lazy()).equals(eager)
    assert eager.select("ticker", "date").equals(
        eager.select("ticker", "date").sort("ticker", "date")
    )


@pytest.mark.parametrize(
    ("horizons", "error"),
    [
        ((), ValueError),
        ((0,), ValueError),
        ((1, 1), ValueError),
        ((1.5,), ValueError),
        (5, TypeError),
    ],
)
def test_bad_horizons_are_rejected(bars: pl.DataFrame, horizons, error) -> None:
    with pytest.raises(error):
        compute_labels(bars, horizons)


def test_bad_bars_are_rejected() -> None:
    with pytest.raises(TypeError):
        compute_labels([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="close"):
        compute_labels(pl.DataFrame({"ticker": ["A"], "date": [dt.date(2024, 1, 2)]}))
