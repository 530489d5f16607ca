"""``audit_lookahead``: compute_features passes, deliberately leaky functions are caught."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.features import (
    LookaheadError,
    LookaheadReport,
    audit_lookahead,
    compute_features,
    compute_labels,
)
from alphadag.market.sources.synthetic import SyntheticSource


@pytest.fixture(scope="session")
def bars() -> pl.DataFrame:
    """Four synthetic tickers over ~15 months, one of them close-only, one with a gap."""
    src = SyntheticSource(n_tickers=4, start="2022-01-03", end="2023-03-31", seed=21)
    raw = src.fetch(src.start, src.end).drop("origin")
    gap = (pl.col("ticker") == "SYN001") & (pl.col("date") == dt.date(2022, 6, 1))
    close_only = pl.col("ticker") == "SYN003"
    return raw.filter(~gap).with_columns(
        pl.when(~close_only).then(pl.col(c)).alias(c) for c in ("open", "high", "low", "volume")
    )


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**31 - 1))
def test_compute_features_has_no_lookahead(bars: pl.DataFrame, seed: int) -> None:
    report = audit_lookahead(compute_features, bars, n_cuts=4, seed=seed)
    assert report.ok, report.violations[:3]
    assert report.n_violations == 0 and report.violations == []
    assert len(report.cuts_checked) == 4
    report.raise_on_violation()  # no error


def test_cuts_are_reproducible_and_spread(bars: pl.DataFrame) -> None:
    identity = lambda b: b.select("ticker", "date", "close")  # noqa: E731
    a = audit_lookahead(identity, bars, n_cuts=5, seed=3)
    b = audit_lookahead(identity, bars, n_cuts=5, seed=3)
    assert a.cuts_checked == b.cuts_checked and len(set(a.cuts_checked)) == 5
    assert list(a.cuts_checked) == sorted(a.cuts_checked)
    dates = sorted(bars["date"].unique())
    assert (
        a.cuts_checked[0] < dates[len(dates) // 5]
        and a.cuts_checked[-1] >= dates[len(dates) * 4 // 5]
    )
    assert dates[-1] not in a.cuts_checked
    assert audit_lookahead(identity, bars, n_cuts=5, seed=4).cuts_checked != a.cuts_checked


def leaky_features(bars: pl.DataFrame) -> pl.DataFrame:
    """compute_features plus one column that peeks at the next session's close."""
    nxt = pl.col("close").shift(-1).over("ticker", order_by="date")
    peek = bars.select("ticker", "date", (nxt / pl.col("close") - 1.0).alias("peek_ret_1"))
    return compute_features(bars).join(peek, on=["ticker", "date"], how="left")


def test_a_shift_minus_one_is_caught_and_named(bars: pl.DataFrame) -> None:
    report = audit_lookahead(leaky_features, bars, n_cuts=3, seed=0)
    assert not report.ok
    assert report.columns == ("peek_ret_1",)
    # the leak shows on the last session before each cut, for every ticker
    first = report.violations[0]
    assert first["column"] == "peek_ret_1" and first["date"] <= first["cut"]
    assert first["full"] is not None and first["truncated"] is None
    assert report.n_violations == 3 * 4
    with pytest.raises(
        LookaheadError, match=r"column 'peek_ret_1' for ticker 'SYN00\d' on 20\d\d-"
    ):
        report.raise_on_violation()
    assert issubclass(LookaheadError, ValueError)


def test_full_sample_normalisation_is_caught(bars: pl.DataFrame) -> None:
    def demeaned(b: pl.DataFrame) -> pl.DataFrame:
        # subtracting the whole-history mean leaks every later price into every row
        mean = pl.col("close").mean().over("ticker")
        return b.select("ticker", "date", (pl.col("close") - mean).alias("close_demeaned"))

    report = audit_lookahead(demeaned, bars, n_cuts=2)
    assert report.columns == ("close_demeaned",)
    assert report.n_violations > 100 and len(report.violations) == 100


def test_labels_look_ahead_by_design(bars: pl.DataFrame) -> None:
    report = audit_lookahead(compute_labels, bars, n_cuts=2)
    assert set(report.columns) == {"fwd_ret_1d", "fwd_ret_5d", "fwd_ret_20d"}


def test_rows_that_appear_only_in_one_computation_are_violations(bars: pl.DataFrame) -> None:
    def drops_last_row(b: pl.DataFrame) -> pl.DataFrame:
        # a function that silently drops each ticker's last row changes which rows exist
        return b.select("ticker", "date", "close").filter(
            pl.col("date") < pl.col("date").max().over("ticker")
        )

    report = audit_lookahead(drops_last_row, bars, n_cuts=1)
    assert report.columns == ("<row>",)
    assert report.violations[0]["full"] is True and report.violations[0]["truncated"] is False


def test_tolerance_and_report_type(bars: pl.DataFrame) -> None:
    def noisy(b: pl.DataFrame) -> pl.DataFrame:
        # a value that depends on the history length by ~1e-15 relative: rounding, not a leak
        wobble = 1.0 + 1e-14 * pl.len().log()
        return b.select("ticker", "date", (pl.col("close") * wobble).alias("c"))

    assert audit_lookahead(noisy, bars, n_cuts=3, rtol=1e-12).ok
    report = audit_lookahead(noisy, bars, n_cuts=3, rtol=0.0)
    assert isinstance(report, LookaheadReport) and not report.ok


def test_argument_errors(bars: pl.DataFrame) -> None:
    with pytest.raises(TypeError):
        audit_lookahead("compute_features", bars)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_cuts"):
        audit_lookahead(compute_features, bars, n_cuts=0)
    with pytest.raises(ValueError, match="rtol"):
        audit_lookahead(compute_features, bars, rtol=-1.0)
    with pytest.raises(ValueError, match="key column"):
        audit_lookahead(lambda b: b.select("close"), bars)
