"""Label options of the training set: the execution-aligned label (t+1 -> t+1+h) and per-date
cross-sectional normalisation (issue 13, item 5). The stored ``labels`` table is unchanged."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from alphadag.features import compute_labels
from alphadag.features.labels import (
    LABEL_NORMALIZATIONS,
    align_to_execution,
    normalize_cross_section,
)
from alphadag.market.sources.synthetic import SyntheticSource
from alphadag.models import build_training_set, make_segments

H = 5
LABEL = f"fwd_ret_{H}d"
D0 = dt.date(2020, 1, 1)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    src = SyntheticSource(n_tickers=5, start="2021-01-04", end="2021-12-31", seed=9)
    return src.fetch(src.start, src.end).drop("origin")


@pytest.fixture(scope="module")
def labels(bars: pl.DataFrame) -> pl.DataFrame:
    return compute_labels(bars, (1, H))


@pytest.fixture(scope="module")
def features(bars: pl.DataFrame) -> pl.DataFrame:
    # a stand-in feature: the close is enough to check the label's alignment
    return bars.select("ticker", "date", pl.col("close").alias("x"))


# -- execution-aligned label ---------------------------------------------------------------------


def test_the_execution_aligned_label_runs_from_the_next_close(
    bars: pl.DataFrame, labels: pl.DataFrame
) -> None:
    lagged = compute_labels(bars, (1, H), lag=1)
    assert lagged.equals(align_to_execution(labels, 1).collect())
    assert align_to_execution(labels, 0).collect().equals(labels)
    for ticker, rows in bars.sort("date").group_by("ticker"):
        close = rows["close"].to_numpy()
        want = np.full(close.size, np.nan)
        want[: close.size - H - 1] = np.log(close[H + 1 :] / close[1 : close.size - H])
        got = lagged.filter(pl.col("ticker") == ticker[0])[LABEL].fill_null(np.nan).to_numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="lag must be"):
        compute_labels(bars, (H,), lag=-1)


def test_make_segments_embargoes_horizon_plus_lag() -> None:
    sessions = [D0 + dt.timedelta(days=i) for i in range(100)]
    plain = make_segments(sessions, horizon=H)
    lagged = make_segments(sessions, horizon=H, execution_lag=1)
    gap = sessions.index(lagged.valid_start) - sessions.index(lagged.train_end) - 1
    assert gap == H + 1 == sessions.index(plain.valid_start) - sessions.index(plain.train_end)
    with pytest.raises(ValueError, match=r"horizon \+ execution_lag \(6\)"):
        make_segments(sessions, horizon=H, embargo=H, execution_lag=1)
    with pytest.raises(ValueError, match="execution_lag must be"):
        make_segments(sessions, horizon=H, execution_lag=-1)


def test_training_set_with_execution_lag(
    features: pl.DataFrame, labels: pl.DataFrame, bars: pl.DataFrame
) -> None:
    sessions = features["date"].unique().sort().to_list()
    seg = make_segments(sessions, horizon=H, execution_lag=1)
    ts = build_training_set(features, labels, horizon=H, segments=seg, execution_lag=1)
    assert ts.columns == ["ticker", "date", "segment", "label_end_date", "x", LABEL]
    want = compute_labels(bars, (H,), lag=1).rename({LABEL: "want"})
    both = ts.join(want, on=["ticker", "date"])
    assert both.height == ts.height
    np.testing.assert_array_equal(both[LABEL], both["want"])
    pos = {d: i for i, d in enumerate(sessions)}
    ends = [pos[e] - pos[d] for d, e in ts.select("date", "label_end_date").iter_rows()]
    assert set(ends) == {H + 1}
    assert (ts.filter(pl.col("segment") == "train")["label_end_date"] < seg.valid_start).all()
    assert (ts.filter(pl.col("segment") == "valid")["label_end_date"] < seg.test_start).all()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_sessions=st.integers(40, 100),
    horizon=st.integers(1, 5),
    lag=st.integers(0, 2),
    drop=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 99)), max_size=30),
)
def test_a_lagged_label_window_never_reaches_the_next_segment(
    n_sessions: int, horizon: int, lag: int, drop: list[tuple[int, int]]
) -> None:
    """Even with the plain embargo of ``h`` and tickers that skip sessions, the per-row filter
    drops every row whose window ``[t+lag, t+lag+h]`` (its own rows) reaches the next segment."""
    sessions = [D0 + dt.timedelta(days=i) for i in range(n_sessions)]
    rows = [
        (f"T{k}", s, 1.0 + 0.01 * i + 0.001 * k)
        for k in range(3)
        for i, s in enumerate(sessions)
        if (k, i) not in set(drop)
    ]
    frame = pl.DataFrame(rows, schema=["ticker", "date", "close"], orient="row")
    assume(frame.height > 0)
    seg = make_segments(sessions, horizon=horizon, valid_frac=0.2, test_frac=0.2)
    ts = build_training_set(
        frame.select("ticker", "date", pl.col("close").alias("x")),
        compute_labels(frame, (horizon,)),
        horizon=horizon,
        segments=seg,
        execution_lag=lag,
    )
    own = {t: rows["date"].sort().to_list() for (t,), rows in frame.group_by("ticker")}
    for ticker, date, segment, end in ts.select(
        "ticker", "date", "segment", "label_end_date"
    ).iter_rows():
        mine = own[ticker]
        assert end == mine[mine.index(date) + horizon + lag]
        nxt = {"train": seg.valid_start, "valid": seg.test_start, "test": None}[segment]
        assert nxt is None or end < nxt


# -- per-date cross-sectional normalisation ------------------------------------------------------


@pytest.mark.parametrize("method", LABEL_NORMALIZATIONS)
def test_training_set_label_normalisation(
    features: pl.DataFrame, labels: pl.DataFrame, method: str
) -> None:
    sessions = features["date"].unique().sort().to_list()
    seg = make_segments(sessions, horizon=H)
    raw = build_training_set(features, labels, horizon=H, segments=seg)
    ts = build_training_set(features, labels, horizon=H, segments=seg, label_normalization=method)
    assert ts.drop(LABEL).equals(raw.drop(LABEL)), "only the label changes"
    assert ts[LABEL].null_count() == 0
    by_date = ts.join(raw.rename({LABEL: "raw"}), on=["ticker", "date"]).group_by("date")
    for _, day in by_date:
        y, r = day[LABEL].to_numpy(), day["raw"].to_numpy()
        # the per-date ordering is what the label keeps: rank IC is unchanged
        np.testing.assert_array_equal(stats.rankdata(y), stats.rankdata(r))
        if method == "none":
            np.testing.assert_array_equal(y, r)
        elif method == "demean":
            np.testing.assert_allclose(y, r - r.mean(), atol=1e-15)
        elif method == "zscore":
            np.testing.assert_allclose(y, (r - r.mean()) / r.std(), rtol=1e-9, atol=1e-12)
        else:
            n = r.size
            np.testing.assert_allclose(y, stats.norm.ppf(stats.rankdata(r) / (n + 1)), atol=1e-12)
    with pytest.raises(ValueError, match="label_normalization must be one of"):
        build_training_set(features, labels, horizon=H, segments=seg, label_normalization="rank")


def test_normalisation_uses_only_the_rows_kept(
    features: pl.DataFrame, labels: pl.DataFrame
) -> None:
    """A row dropped from the training set (here: a ticker outside the features) is not in any
    date's mean."""
    sessions = features["date"].unique().sort().to_list()
    seg = make_segments(sessions, horizon=H)
    some = features.filter(pl.col("ticker") != "SYN000")
    ts = build_training_set(some, labels, horizon=H, segments=seg, label_normalization="demean")
    means = ts.group_by("date").agg(pl.col(LABEL).mean().abs())[LABEL]
    assert means.max() < 1e-15


def test_normalize_cross_section_edge_cases() -> None:
    f = pl.DataFrame(
        {
            "date": [D0, D0, D0, D0 + dt.timedelta(days=1), D0 + dt.timedelta(days=2)],
            "y": [0.02, 0.02, None, 0.5, 0.03],
        }
    )
    for method in ("demean", "zscore", "rank_gauss"):
        y = normalize_cross_section(f, "y", method).collect()["y"].to_list()
        assert y[2] is None
        assert y[3] == pytest.approx(0.0) and y[4] == pytest.approx(0.0), method  # one row a date
        assert y[0] == pytest.approx(0.0, abs=1e-15), method  # no dispersion
    with pytest.raises(ValueError, match="method must be one of"):
        normalize_cross_section(f, "y", "winsor")
