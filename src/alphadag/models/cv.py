"""Walk-forward cross-validation by date on the training segment, with an embargo.

:func:`walk_forward_splits` cuts the sorted unique dates into ``n_splits + 1`` contiguous blocks;
fold ``k`` tests on block ``k`` and trains on every date before it *except* the last ``embargo``
dates (an expanding window). With ``embargo >= horizon`` no training label window ``[t, t+h]``
reaches a test date. :func:`walk_forward_cv` fits a fresh Pipeline per fold and scores it (and
the naive baselines) with :func:`alphadag.models.metrics.evaluate_predictions`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from alphadag.features.labels import label_horizon
from alphadag.models.estimators import ModelSpec, fit_pipeline, predict
from alphadag.models.metrics import evaluate_predictions

__all__ = ["FoldResult", "WalkForwardSplit", "walk_forward_cv", "walk_forward_splits"]


@dataclass(frozen=True, slots=True)
class WalkForwardSplit:
    """One fold: train on ``[train_start, train_end]``, test on ``[test_start, test_end]``."""

    fold: int
    train_start: dt.date
    train_end: dt.date
    test_start: dt.date
    test_end: dt.date


@dataclass(frozen=True, slots=True)
class FoldResult:
    """A fold's split, its row counts and metrics (``{"model" | baseline: {metric: value}}``)."""

    split: WalkForwardSplit
    n_train: int
    n_test: int
    metrics: dict[str, dict[str, float]]


def walk_forward_splits(
    dates: Sequence[dt.date], n_splits: int, *, embargo: int
) -> list[WalkForwardSplit]:
    """Expanding-window splits over the unique ``dates`` with ``embargo`` dates dropped before each test.

    >>> days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(12)]
    >>> [(s.train_end.day, s.test_start.day, s.test_end.day)
    ...  for s in walk_forward_splits(days, 2, embargo=2)]
    [(2, 5, 8), (6, 9, 12)]
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer, got {n_splits!r}")
    if isinstance(embargo, bool) or not isinstance(embargo, int) or embargo < 0:
        raise ValueError(f"embargo must be a non-negative integer, got {embargo!r}")
    ordered = sorted(set(dates))
    n = len(ordered)
    block = n // (n_splits + 1)
    if block < 1 or block <= embargo:
        raise ValueError(
            f"{n} dates are too few for {n_splits} walk-forward folds with an embargo of "
            f"{embargo}: each of the {n_splits + 1} blocks needs more than {embargo} dates"
        )
    splits: list[WalkForwardSplit] = []
    for k in range(1, n_splits + 1):
        t0 = n - (n_splits + 1 - k) * block  # the last block absorbs the remainder at the front
        t1 = t0 + block - 1
        train_last = t0 - embargo - 1
        splits.append(
            WalkForwardSplit(
                fold=k - 1,
                train_start=ordered[0],
                train_end=ordered[train_last],
                test_start=ordered[t0],
                test_end=ordered[t1],
            )
        )
    return splits


def walk_forward_cv(
    frame: pl.DataFrame,
    spec: ModelSpec,
    feature_columns: Sequence[str],
    label: str,
    n_splits: int,
    embargo: int,
    *,
    horizon: int | None = None,
) -> list[FoldResult]:
    """Fit and score ``spec`` on each walk-forward fold of ``frame``'s dates.

    If ``frame`` has a ``segment`` column only its ``train`` rows are used: cross-validation
    never sees validation or test data. ``horizon`` (for the momentum baseline) defaults to the
    one in ``label`` (``fwd_ret_{h}d``). ``embargo`` should be at least the horizon.
    """
    if "segment" in frame.columns:
        frame = frame.filter(pl.col("segment") == "train")
    if horizon is None:
        horizon = _horizon_of(label)
    if embargo < horizon:
        raise ValueError(f"embargo ({embargo}) must be at least the label horizon ({horizon})")
    dates = frame.get_column("date").unique().sort().to_list()
    results: list[FoldResult] = []
    for split in walk_forward_splits(dates, n_splits, embargo=embargo):
        train = frame.filter(pl.col("date").is_between(split.train_start, split.train_end))
        test = frame.filter(pl.col("date").is_between(split.test_start, split.test_end))
        pipeline = fit_pipeline(train, spec, feature_columns, label)
        y_pred = predict(pipeline, test, feature_columns)
        metrics = evaluate_predictions(test, y_pred, label=label, horizon=horizon)
        results.append(FoldResult(split, train.height, test.height, metrics))
    return results


def _horizon_of(label: str) -> int:
    horizon = label_horizon(label)
    if horizon is not None:
        return horizon
    raise ValueError(f"cannot read a horizon from label {label!r}; pass horizon=...")
