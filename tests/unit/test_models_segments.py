"""Segments, the embargo and ``build_training_set``: no label window overlaps the next segment."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from alphadag.features import FEATURE_COLUMNS, compute_features, compute_labels
from alphadag.market.sources.synthetic import SyntheticSource
from alphadag.models import (
    Segments,
    build_training_set,
    label_end_date,
    make_segments,
)

D0 = dt.date(2020, 1, 1)


def days(n: int, start: dt.date = D0) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n)]


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    src = SyntheticSource(n_tickers=4, start="2019-01-02", end="2020-06-30", seed=3)
    return src.fetch(src.start, src.end).drop("origin")


@pytest.fixture(scope="module")
def features(bars: pl.DataFrame) -> pl.DataFrame:
    return compute_features(bars)


@pytest.fixture(scope="module")
def labels(bars: pl.DataFrame) -> pl.DataFrame:
    return compute_labels(bars, horizons=(1, 5))


# -- make_segments: the embargo property ---------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 4), min_size=10, max_size=300),
    horizon=st.integers(1, 10),
    extra=st.integers(0, 3),
    valid_frac=st.floats(0.01, 0.3),
    test_frac=st.floats(0.01, 0.3),
)
def test_no_label_window_reaches_the_next_segment(
    gaps: list[int], horizon: int, extra: int, valid_frac: float, test_frac: float
) -> None:
    """Random (irregular) session lists and horizons: the embargo always separates labels."""
    sessions = [D0 + dt.timedelta(days=int(o)) for o in np.cumsum(gaps)]
    embargo = horizon + extra
    try:
        seg = make_segments(
            sessions,
            horizon=horizon,
            valid_frac=valid_frac,
            test_frac=test_frac,
            embargo=embargo,
        )
    except ValueError as exc:
        assert "too few" in str(exc)
        assume(False)
        return
    by_segment: dict[str, list[dt.date]] = {"train": [], "valid": [], "test": []}
    gap = 0
    for s in sessions:
        name = seg.segment_of(s)
        if name is None:
            gap += 1
        else:
            by_segment[name].append(s)
    assert all(by_segment.values()), "every segment is non-empty"
    assert gap == 2 * embargo
    assert max(by_segment["train"]) < min(by_segment["valid"])
    assert max(by_segment["valid"]) < min(by_segment["test"])
    # the label of t spans the sessions t .. t+h: its end must come before the next segment
    for name, nxt in (("train", seg.valid_start), ("valid", seg.test_start)):
        for t in by_segment[name]:
            end = label_end_date(t, sessions, horizon)
            assert end is not None and end < nxt, (name, t, end, nxt)
    # the embargo is exactly the sessions strictly between the segments
    train_gap = [s for s in sessions if seg.train_end < s < seg.valid_start]
    valid_gap = [s for s in sessions if seg.valid_end < s < seg.test_start]
    assert len(train_gap) == len(valid_gap) == embargo


def test_make_segments_rejects_an_embargo_shorter_than_the_horizon() -> None:
    with pytest.raises(ValueError, match="at least the label horizon"):
        make_segments(days(200), horizon=5, embargo=4)


def test_make_segments_rejects_too_few_sessions() -> None:
    with pytest.raises(ValueError, match="too few"):
        make_segments(days(12), horizon=5)


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1, "0.2"])
def test_make_segments_rejects_bad_fractions(frac: object) -> None:
    with pytest.raises(ValueError, match="valid_frac"):
        make_segments(days(200), horizon=5, valid_frac=frac)  # type: ignore[arg-type]


def test_segments_validate_order_and_emptiness() -> None:
    d = days(6)
    Segments(*d)
    with pytest.raises(ValueError, match="empty"):
        Segments(d[1], d[0], d[2], d[3], d[4], d[5])
    with pytest.raises(ValueError, match="after train_end"):
        Segments(d[0], d[2], d[2], d[3], d[4], d[5])
    with pytest.raises(ValueError, match="after valid_end"):
        Segments(d[0], d[1], d[2], d[4], d[4], d[5])
    with pytest.raises(TypeError, match=r"datetime\.date"):
        Segments(d[0], d[1], d[2], d[3], d[4], "2020-01-09")  # type: ignore[arg-type]


def test_segments_to_dict_is_plain_data() -> None:
    seg = make_segments(days(100), horizon=5)
    out = seg.to_dict()
    assert list(out) == [
        "train_start",
        "train_end",
        "valid_start",
        "valid_end",
        "test_start",
        "test_end",
    ]
    assert Segments(*(dt.date.fromisoformat(v) for v in out.values())) == seg


def test_label_end_date() -> None:
    sessions = [dt.date(2024, 1, d) for d in (2, 3, 4, 5, 8, 9)]
    assert label_end_date(dt.date(2024, 1, 4), sessions, 2) == dt.date(2024, 1, 8)
    assert label_end_date(dt.date(2024, 1, 8), sessions, 1) == dt.date(2024, 1, 9)
    assert label_end_date(dt.date(2024, 1, 8), sessions, 2) is None
    with pytest.raises(ValueError, match="not one of the given sessions"):
        label_end_date(dt.date(2024, 1, 6), sessions, 1)
    with pytest.raises(ValueError, match="horizon"):
        label_end_date(dt.date(2024, 1, 2), sessions, 0)


# -- build_training_set --------------------------------------------------------------------------


def test_training_set_from_real_features_and_labels(
    features: pl.DataFrame, labels: pl.DataFrame
) -> None:
    sessions = features.get_column("date").unique().sort().to_list()
    seg = make_segments(sessions, horizon=5)
    ts = build_training_set(features, labels, horizon=5, segments=seg)
    assert ts.columns == [
        "ticker",
        "date",
        "segment",
        "label_end_date",
        *FEATURE_COLUMNS,
        "fwd_ret_5d",
    ]
    assert not any(c.startswith("fwd_ret_") for c in ts.columns[:-1]), "no other label leaks in"
    assert ts.get_column("fwd_ret_5d").null_count() == 0
    assert set(ts.get_column("segment").unique()) == {"train", "valid", "test"}
    # every row is inside its segment, gaps dropped
    for row in ts.select("date", "segment").unique().iter_rows():
        assert seg.segment_of(row[0]) == row[1]
    # labels are the labels table's values for the same (ticker, date)
    joined = ts.join(labels, on=["ticker", "date"], suffix="_src")
    np.testing.assert_array_equal(
        joined.get_column("fwd_ret_5d").to_numpy(), joined.get_column("fwd_ret_5d_src").to_numpy()
    )
    # features are untouched
    back = ts.select("ticker", "date", *FEATURE_COLUMNS).join(
        features, on=["ticker", "date"], suffix="_src"
    )
    for c in FEATURE_COLUMNS:
        assert back.get_column(c).equals(back.get_column(f"{c}_src"), null_equal=True), c
    # the embargo holds row by row
    assert (ts.filter(pl.col("segment") == "train")["label_end_date"] < seg.valid_start).all()
    assert (ts.filter(pl.col("segment") == "valid")["label_end_date"] < seg.test_start).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_sessions=st.integers(40, 120),
    horizon=st.integers(1, 6),
    drop=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 119)), max_size=40),
)
def test_tickers_with_missing_sessions_cannot_leak(
    n_sessions: int, horizon: int, drop: list[tuple[int, int]]
) -> None:
    """A ticker's label spans its own next ``h`` rows, which may be more than ``h`` sessions."""
    sessions = days(n_sessions)
    rows = [
        (f"T{k}", s, float(i), 1.0 + 0.001 * i)
        for k in range(3)
        for i, s in enumerate(sessions)
        if (k, i) not in set(drop)
    ]
    frame = pl.DataFrame(rows, schema=["ticker", "date", "x", "close"], orient="row")
    assume(frame.height > 0)
    labels = compute_labels(frame, horizons=(horizon,))
    features = frame.select("ticker", "date", "x")
    seg = make_segments(sessions, horizon=horizon, valid_frac=0.2, test_frac=0.2)
    ts = build_training_set(features, labels, horizon=horizon, segments=seg)
    own_dates = {
        t: sorted(d for tt, d in frame.select("ticker", "date").iter_rows() if tt == t)
        for t in ("T0", "T1", "T2")
    }
    kept = set()
    for ticker, date, segment in ts.select("ticker", "date", "segment").iter_rows():
        mine = own_dates[ticker]
        end = mine[mine.index(date) + horizon]  # the label's true end: the ticker's h-th next row
        nxt = {"train": seg.valid_start, "valid": seg.test_start, "test": None}[segment]
        assert nxt is None or end < nxt
        kept.add((ticker, date))
    # and nothing is dropped that did not need to be
    for ticker, mine in own_dates.items():
        for i, date in enumerate(mine[:-horizon] if horizon < len(mine) else []):
            segment = seg.segment_of(date)
            if segment is None:
                continue
            nxt = {"train": seg.valid_start, "valid": seg.test_start, "test": None}[segment]
            if nxt is None or mine[i + horizon] < nxt:
                assert (ticker, date) in kept


def test_training_set_rejects_label_columns_in_features(
    features: pl.DataFrame, labels: pl.DataFrame
) -> None:
    seg = make_segments(features.get_column("date").unique().to_list(), horizon=5)
    leaky = features.join(labels.select("ticker", "date", "fwd_ret_1d"), on=["ticker", "date"])
    with pytest.raises(ValueError, match="fwd_ret_1d"):
        build_training_set(leaky, labels, horizon=5, segments=seg)


def test_training_set_needs_the_horizon_label(features: pl.DataFrame, labels: pl.DataFrame) -> None:
    seg = make_segments(features.get_column("date").unique().to_list(), horizon=20)
    with pytest.raises(ValueError, match="fwd_ret_20d"):
        build_training_set(features, labels, horizon=20, segments=seg)


def test_training_set_accepts_lazy_frames(features: pl.DataFrame, labels: pl.DataFrame) -> None:
    seg = make_segments(features.get_column("date").unique().to_list(), horizon=1)
    eager = build_training_set(features, labels, horizon=1, segments=seg)
    lazy = build_training_set(features.lazy(), labels.lazy(), horizon=1, segments=seg)
    assert eager.equals(lazy)
