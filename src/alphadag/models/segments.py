"""Explicit train / validation / test segments in time, with an embargo, and the training set.

The label of ``(ticker, t)`` (``fwd_ret_{h}d``) is the log return from the close of ``t`` to the
close of the session ``t + h``, so its window spans the sessions ``t .. t+h``. If the last training
date were within ``h`` sessions of the first validation date, the training label would be
computed from prices that the validation segment is scored on (overlap leakage). The
:class:`Segments` produced by :func:`make_segments` therefore leave an *embargo* of at least
``h`` sessions between train and validation and between validation and test: a training label
window ``[t, t+h]`` then ends strictly before the validation segment starts (and likewise for
validation and test). :func:`build_training_set` enforces this a second time per row, using each
ticker's own rows, so a ticker with missing sessions (whose label spans more calendar sessions)
cannot leak either. The segments are data: :meth:`Segments.to_dict` is what gets logged with a run.

Label options of :func:`build_training_set` (the stored ``labels`` table is never changed):
``execution_lag = 1`` trains on the execution-aligned label, the return from the close of
``t + 1`` to the close of ``t + 1 + h`` (:func:`alphadag.features.labels.align_to_execution`);
its window spans ``t .. t+h+lag``, so ``label_end_date`` moves with it and :func:`make_segments`
(given the same ``execution_lag``) embargoes ``h + lag`` sessions. ``label_normalization``
(:data:`alphadag.features.labels.LABEL_NORMALIZATIONS`) normalises the label across the
tickers of each date (:func:`alphadag.features.labels.normalize_cross_section`), after the
rows are selected.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from alphadag.features.labels import (
    LABEL_NORMALIZATIONS,
    align_to_execution,
    is_label_column,
    label_column,
    label_horizon,
    normalize_cross_section,
)

__all__ = [
    "SEGMENT_NAMES",
    "SegmentName",
    "Segments",
    "build_training_set",
    "horizon_of",
    "label_column",
    "label_end_date",
    "make_segments",
]

SegmentName = Literal["train", "valid", "test"]
SEGMENT_NAMES: tuple[SegmentName, ...] = ("train", "valid", "test")
"""The values of the ``segment`` column, in time order."""


def horizon_of(label: str) -> int:
    """The horizon in sessions of a ``fwd_ret_{h}d`` label column.

    >>> horizon_of("fwd_ret_20d")
    20
    """
    horizon = label_horizon(label)
    if horizon is not None:
        return horizon
    raise ValueError(f"{label!r} is not a label column of the form fwd_ret_<h>d")


def _check_horizon(horizon: object) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer number of sessions, got {horizon!r}")
    return horizon


def _check_lag(lag: object) -> int:
    if isinstance(lag, bool) or not isinstance(lag, int) or lag < 0:
        raise ValueError(f"execution_lag must be a non-negative integer, got {lag!r}")
    return lag


def _check_sessions(sessions: Sequence[dt.date]) -> list[dt.date]:
    if isinstance(sessions, str) or not isinstance(sessions, Sequence):
        raise TypeError(f"sessions must be a sequence of dates, got {type(sessions).__name__}")
    for s in sessions:
        if not isinstance(s, dt.date) or isinstance(s, dt.datetime):
            raise TypeError(f"sessions must hold datetime.date values, got {s!r}")
    return sorted(set(sessions))


@dataclass(frozen=True, slots=True)
class Segments:
    """Inclusive date ranges of the train, validation and test segments, in time order.

    >>> s = Segments(dt.date(2020, 1, 1), dt.date(2020, 6, 30), dt.date(2020, 7, 10),
    ...              dt.date(2020, 9, 30), dt.date(2020, 10, 10), dt.date(2020, 12, 31))
    >>> s.segment_of(dt.date(2020, 7, 5)) is None   # in the embargo gap
    True
    >>> s.segment_of(dt.date(2020, 8, 3))
    'valid'
    """

    train_start: dt.date
    train_end: dt.date
    valid_start: dt.date
    valid_end: dt.date
    test_start: dt.date
    test_end: dt.date

    def __post_init__(self) -> None:
        names = ("train_start", "train_end", "valid_start", "valid_end", "test_start", "test_end")
        values = [getattr(self, n) for n in names]
        for name, value in zip(names, values, strict=True):
            if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
                raise TypeError(f"{name} must be a datetime.date, got {value!r}")
        for seg in SEGMENT_NAMES:
            start, end = self.bounds(seg)
            if start > end:
                raise ValueError(f"segment {seg!r} is empty: start {start} is after end {end}")
        if not self.train_end < self.valid_start:
            raise ValueError(
                f"valid_start ({self.valid_start}) must come after train_end ({self.train_end})"
            )
        if not self.valid_end < self.test_start:
            raise ValueError(
                f"test_start ({self.test_start}) must come after valid_end ({self.valid_end})"
            )

    def bounds(self, segment: SegmentName) -> tuple[dt.date, dt.date]:
        """``(start, end)`` of ``segment`` (inclusive)."""
        if segment not in SEGMENT_NAMES:
            raise ValueError(f"segment must be one of {SEGMENT_NAMES}, got {segment!r}")
        return getattr(self, f"{segment}_start"), getattr(self, f"{segment}_end")

    def segment_of(self, date: dt.date) -> SegmentName | None:
        """The segment holding ``date``, or ``None`` (before, after, or in an embargo gap)."""
        for seg in SEGMENT_NAMES:
            start, end = self.bounds(seg)
            if start <= date <= end:
                return seg
        return None

    @classmethod
    def of_training_set(cls, frame: pl.DataFrame) -> Segments:
        """The segments a training set actually covers: first and last date of each segment.

        >>> days = [dt.date(2024, 1, d) for d in (2, 3, 8, 9, 12, 15)]
        >>> ts = pl.DataFrame({"date": days, "segment": ["train"] * 2 + ["valid"] * 2 + ["test"] * 2})
        >>> Segments.of_training_set(ts).valid_end
        datetime.date(2024, 1, 9)
        """
        bounds = frame.group_by("segment").agg(
            pl.col("date").min().alias("start"), pl.col("date").max().alias("end")
        )
        found = {row["segment"]: (row["start"], row["end"]) for row in bounds.iter_rows(named=True)}
        missing = [s for s in SEGMENT_NAMES if s not in found]
        if missing:
            raise ValueError(f"the training set has no rows in segment(s) {missing}")
        return cls(*(edge for seg in SEGMENT_NAMES for edge in found[seg]))

    def to_dict(self) -> dict[str, str]:
        """ISO dates keyed by field name: the form logged with a training run.

        >>> Segments(*(dt.date(2020, 1, d) for d in range(1, 7))).to_dict()["test_end"]
        '2020-01-06'
        """
        return {
            f"{seg}_{edge}": getattr(self, f"{seg}_{edge}").isoformat()
            for seg in SEGMENT_NAMES
            for edge in ("start", "end")
        }


def label_end_date(date: dt.date, sessions: Sequence[dt.date], horizon: int) -> dt.date | None:
    """The session ``t + horizon`` whose close ends the label window of ``date``.

    ``None`` when the session list ends before it (the label is not known yet).

    >>> days = [dt.date(2024, 1, d) for d in (2, 3, 4, 5, 8)]
    >>> label_end_date(dt.date(2024, 1, 3), days, 2)
    datetime.date(2024, 1, 5)
    >>> label_end_date(dt.date(2024, 1, 5), days, 2) is None
    True
    """
    _check_horizon(horizon)
    ordered = _check_sessions(sessions)
    i = bisect.bisect_left(ordered, date)
    if i == len(ordered) or ordered[i] != date:
        raise ValueError(f"{date} is not one of the given sessions")
    j = i + horizon
    return ordered[j] if j < len(ordered) else None


def make_segments(
    sessions: Sequence[dt.date],
    *,
    horizon: int,
    valid_frac: float = 0.15,
    test_frac: float = 0.15,
    embargo: int | None = None,
    execution_lag: int = 0,
) -> Segments:
    """Split ``sessions`` into train / valid / test with ``embargo`` sessions dropped between.

    The test segment takes the last ``ceil(test_frac * n)`` sessions, validation the
    ``ceil(valid_frac * n)`` before the embargo gap that precedes test, train what is left before
    the first gap. With ``embargo >= horizon`` (default ``embargo = horizon``) the label window
    ``[t, t+horizon]`` of the last training date ends before the first validation date, and the
    same holds between validation and test. With an ``execution_lag`` (the label window
    ``[t + lag, t + lag + horizon]``) the embargo defaults to, and must be at least,
    ``horizon + execution_lag``.

    Parameters
    ----------
    sessions:
        Trading sessions (any order, duplicates ignored).
    horizon:
        Label horizon in sessions.
    valid_frac, test_frac:
        Fractions of the sessions for validation and test, each in ``(0, 1)``.
    embargo:
        Sessions left out between consecutive segments; at least ``horizon + execution_lag``.
    execution_lag:
        Sessions between a row's date and the start of its label window (0: the ``labels``
        table's ``fwd_ret_{h}d``; 1: the execution-aligned label).

    >>> days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(100)]
    >>> s = make_segments(days, horizon=5)
    >>> [days.index(d) for d in (s.train_end, s.valid_start, s.valid_end, s.test_start)]
    [59, 65, 79, 85]
    """
    h = _check_horizon(horizon)
    span = h + _check_lag(execution_lag)  # sessions from a row's date to its label's end
    ordered = _check_sessions(sessions)
    if embargo is None:
        embargo = span
    if isinstance(embargo, bool) or not isinstance(embargo, int):
        raise TypeError(f"embargo must be an integer number of sessions, got {embargo!r}")
    if embargo < span:
        what = f"the label horizon ({h})" if span == h else f"horizon + execution_lag ({span})"
        raise ValueError(
            f"embargo ({embargo}) must be at least {what} so that no label "
            "window overlaps the next segment"
        )
    for name, frac in (("valid_frac", valid_frac), ("test_frac", test_frac)):
        if not isinstance(frac, int | float) or not 0.0 < frac < 1.0:
            raise ValueError(f"{name} must be a fraction in (0, 1), got {frac!r}")
    n = len(ordered)
    n_valid = max(1, math.ceil(valid_frac * n))
    n_test = max(1, math.ceil(test_frac * n))
    n_train = n - n_valid - n_test - 2 * embargo
    if n_train < 1:
        raise ValueError(
            f"{n} sessions are too few for {n_valid} validation + {n_test} test sessions and two "
            f"embargo gaps of {embargo}: need at least {n_valid + n_test + 2 * embargo + 1}"
        )
    v0 = n_train + embargo
    t0 = v0 + n_valid + embargo
    return Segments(
        train_start=ordered[0],
        train_end=ordered[n_train - 1],
        valid_start=ordered[v0],
        valid_end=ordered[v0 + n_valid - 1],
        test_start=ordered[t0],
        test_end=ordered[-1],
    )


def build_training_set(
    features: pl.DataFrame | pl.LazyFrame,
    labels: pl.DataFrame | pl.LazyFrame,
    *,
    horizon: int,
    segments: Segments,
    execution_lag: int = 0,
    label_normalization: str = "none",
) -> pl.DataFrame:
    """Features joined to the ``fwd_ret_{horizon}d`` label, tagged with their segment.

    Rows are joined on ``(ticker, date)``; rows whose label is null (the last ``horizon`` rows of
    each ticker) or whose date falls outside the segments (in an embargo gap, before train or
    after test) are dropped. A row is also dropped when its label window reaches the next
    segment: its ``label_end_date`` (the date of that ticker's row ``horizon`` rows later, see
    :mod:`alphadag.features.labels`) is on or after the next segment's start. With segments from
    :func:`make_segments` this only bites for tickers with missing sessions.

    Label options (see the module docstring): ``execution_lag`` rows shift the label window to
    ``[t + lag, t + lag + horizon]`` (``label_end_date`` is then the row ``horizon + lag``
    later); ``label_normalization`` (``"none"``, ``"demean"``, ``"zscore"``, ``"rank_gauss"``)
    normalises the label per date over the rows kept, so no dropped row (e.g. one whose window
    reaches the next segment) enters a date's mean. The label column keeps its name
    ``fwd_ret_{horizon}d``.

    Output: ``ticker``, ``date``, ``segment`` (``train`` | ``valid`` | ``test``),
    ``label_end_date``, the feature columns in their input order, then the label; sorted by
    ``(date, ticker)``.

    >>> days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    >>> feats = pl.DataFrame({"ticker": "A", "date": days, "x": [float(i) for i in range(40)]})
    >>> labs = pl.DataFrame({"ticker": "A", "date": days,
    ...                      "fwd_ret_2d": [0.01] * 38 + [None, None]})
    >>> seg = make_segments(days, horizon=2, valid_frac=0.2, test_frac=0.2)
    >>> ts = build_training_set(feats, labs, horizon=2, segments=seg)
    >>> ts.group_by("segment").len().sort("segment").rows()
    [('test', 6), ('train', 20), ('valid', 8)]
    """
    h = _check_horizon(horizon)
    lag = _check_lag(execution_lag)
    label = label_column(h)
    if label_normalization not in LABEL_NORMALIZATIONS:
        raise ValueError(
            f"label_normalization must be one of {LABEL_NORMALIZATIONS}, "
            f"got {label_normalization!r}"
        )
    if not isinstance(segments, Segments):
        raise TypeError(f"segments must be a Segments, got {type(segments).__name__}")
    feats = _lazy(features, "features")
    labs = _lazy(labels, "labels")
    f_schema = feats.collect_schema()
    l_schema = labs.collect_schema()
    for name, schema in (("features", f_schema), ("labels", l_schema)):
        missing = [c for c in ("ticker", "date") if c not in schema]
        if missing:
            raise ValueError(f"{name} lacks column(s) {missing}; got {list(schema)}")
    if label not in l_schema:
        raise ValueError(
            f"labels has no {label!r} column for horizon {h}; got {list(l_schema)} "
            "(compute_labels(bars, horizons=(..., h)))"
        )
    feature_cols = [c for c in f_schema if c not in ("ticker", "date")]
    leaks = [c for c in feature_cols if is_label_column(c) or c in ("segment", "label_end_date")]
    if leaks:
        raise ValueError(f"features must not carry label or reserved columns, found {leaks}")

    seg_expr = pl.lit(None, dtype=pl.String)
    next_start: pl.Expr = pl.lit(None, dtype=pl.Date)
    for seg, following in (("test", None), ("valid", "test"), ("train", "valid")):
        start, end = segments.bounds(seg)
        in_seg = pl.col("date").is_between(start, end, closed="both")
        seg_expr = pl.when(in_seg).then(pl.lit(seg)).otherwise(seg_expr)
        if following is not None:
            nxt = segments.bounds(following)[0]
            next_start = pl.when(in_seg).then(pl.lit(nxt)).otherwise(next_start)

    label_rows = align_to_execution(
        labs.select(
            pl.col("ticker").cast(pl.String), pl.col("date"), pl.col(label).cast(pl.Float64)
        ),
        lag,
    ).with_columns(
        # shift(-h-lag) reads later rows on purpose: the date on which this row's label window ends
        pl.col("date").shift(-h - lag).over("ticker", order_by="date").alias("label_end_date"),
    )
    out = (
        feats.with_columns(pl.col("ticker").cast(pl.String))
        .join(label_rows, on=["ticker", "date"], how="inner")
        .with_columns(seg_expr.alias("segment"), next_start.alias("_next_start"))
        .filter(
            pl.col("segment").is_not_null()
            & pl.col(label).is_not_null()
            & pl.col(label).is_finite()
            & pl.col("label_end_date").is_not_null()
            & (pl.col("_next_start").is_null() | (pl.col("label_end_date") < pl.col("_next_start")))
        )
        .select("ticker", "date", "segment", "label_end_date", *feature_cols, label)
    )
    out = normalize_cross_section(out, label, label_normalization).sort("date", "ticker")
    return out.collect(engine="in-memory")


def _lazy(frame: pl.DataFrame | pl.LazyFrame, what: str) -> pl.LazyFrame:
    if isinstance(frame, pl.DataFrame):
        return frame.lazy()
    if isinstance(frame, pl.LazyFrame):
        return frame
    raise TypeError(f"{what} must be a polars DataFrame or LazyFrame, got {type(frame).__name__}")
