"""Walk-forward splits (expanding window, embargo), walk-forward CV and ``fit_and_evaluate``."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.models import (
    BASELINES,
    METRIC_NAMES,
    ModelSpec,
    fit_and_evaluate,
    fit_pipeline,
    make_segments,
    walk_forward_cv,
    walk_forward_splits,
)

D0 = dt.date(2020, 1, 1)
LABEL = "fwd_ret_5d"
FEATURES = ["logret_20", "f1", "f2"]


@settings(max_examples=150, deadline=None)
@given(
    n_dates=st.integers(2, 300),
    n_splits=st.integers(1, 8),
    embargo=st.integers(0, 15),
    shuffle=st.randoms(use_true_random=False),
)
def test_folds_never_train_within_embargo_of_their_test(
    n_dates: int, n_splits: int, embargo: int, shuffle: object
) -> None:
    dates = [D0 + dt.timedelta(days=3 * i) for i in range(n_dates)]
    given_dates = dates + dates[: n_dates // 3]  # duplicates and any order are fine
    shuffle.shuffle(given_dates)  # type: ignore[attr-defined]
    try:
        splits = walk_forward_splits(given_dates, n_splits, embargo=embargo)
    except ValueError as exc:
        assert "too few" in str(exc)
        assert n_dates // (n_splits + 1) <= embargo or n_dates < n_splits + 1
        return
    assert [s.fold for s in splits] == list(range(n_splits))
    index = {d: i for i, d in enumerate(dates)}
    prev_test_end = -1
    for s in splits:
        train_end, test_start, test_end = index[s.train_end], index[s.test_start], index[s.test_end]
        assert s.train_start == dates[0]  # expanding window
        assert train_end <= test_start - embargo - 1  # never a date >= test_start - embargo
        assert train_end == test_start - embargo - 1  # and nothing more is thrown away
        assert test_start == prev_test_end + 1 or prev_test_end == -1  # contiguous test blocks
        assert test_start <= test_end
        prev_test_end = test_end
    assert prev_test_end == n_dates - 1  # the last fold tests up to the last date


def test_walk_forward_splits_argument_errors() -> None:
    dates = [D0 + dt.timedelta(days=i) for i in range(30)]
    with pytest.raises(ValueError, match="n_splits"):
        walk_forward_splits(dates, 0, embargo=1)
    with pytest.raises(ValueError, match="embargo"):
        walk_forward_splits(dates, 2, embargo=-1)
    with pytest.raises(ValueError, match="too few"):
        walk_forward_splits(dates, 4, embargo=6)


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    """6 tickers x 220 dates; the label depends on f1, with the segment column of a training set."""
    rng = np.random.default_rng(2)
    dates = [D0 + dt.timedelta(days=i) for i in range(220)]
    rows = []
    for d in dates:
        f1 = rng.standard_normal(6)
        f2 = rng.standard_normal(6)
        mom = rng.standard_normal(6) * 0.05
        y = 0.01 * f1 + 0.01 * rng.standard_normal(6)
        rows += [(f"T{k}", d, mom[k], f1[k], f2[k], y[k]) for k in range(6)]
    frame = pl.DataFrame(rows, schema=["ticker", "date", *FEATURES, LABEL], orient="row")
    seg = make_segments(dates, horizon=5)
    segment = pl.col("date").map_elements(seg.segment_of, return_dtype=pl.String)
    return frame.with_columns(segment.alias("segment")).filter(pl.col("segment").is_not_null())


def test_walk_forward_cv_trains_only_on_the_training_segment(panel: pl.DataFrame) -> None:
    spec = ModelSpec("ridge")
    folds = walk_forward_cv(panel, spec, FEATURES, LABEL, n_splits=3, embargo=5)
    train_dates = panel.filter(pl.col("segment") == "train")["date"].unique().sort().to_list()
    assert len(folds) == 3
    for fold in folds:
        s = fold.split
        assert s.test_end <= train_dates[-1]  # never validation or test data
        assert train_dates.index(s.train_end) <= train_dates.index(s.test_start) - 5 - 1
        in_train = panel.filter(pl.col("date").is_between(s.train_start, s.train_end))
        in_test = panel.filter(pl.col("date").is_between(s.test_start, s.test_end))
        assert fold.n_train == in_train.height
        assert fold.n_test == in_test.height
        assert list(fold.metrics) == ["model", *BASELINES]
        assert set(fold.metrics["model"]) == set(METRIC_NAMES)
        assert fold.metrics["model"]["n_rows"] == in_test.height
        assert fold.metrics["model"]["rank_ic_mean"] > 0.3  # f1 drives the label


def test_walk_forward_cv_is_reproducible_for_each_family(panel: pl.DataFrame) -> None:
    for spec in (
        ModelSpec("hgb", {"max_iter": 10, "min_samples_leaf": 20}, seed=1),
        ModelSpec("random_forest", {"n_estimators": 5, "max_depth": 4}, seed=1),
    ):
        a = walk_forward_cv(panel, spec, FEATURES, LABEL, n_splits=2, embargo=5)
        b = walk_forward_cv(panel, spec, FEATURES, LABEL, n_splits=2, embargo=5)
        assert [(f.split, f.n_train, f.n_test) for f in a] == [
            (f.split, f.n_train, f.n_test) for f in b
        ]
        np.testing.assert_equal([f.metrics for f in a], [f.metrics for f in b])  # NaN == NaN here


def test_walk_forward_cv_rejects_an_embargo_shorter_than_the_horizon(panel: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="at least the label horizon"):
        walk_forward_cv(panel, ModelSpec("ridge"), FEATURES, LABEL, n_splits=2, embargo=4)


def test_fit_and_evaluate_scores_valid_and_test_with_baselines(panel: pl.DataFrame) -> None:
    result = fit_and_evaluate(panel, ModelSpec("ridge"), horizon=5, feature_columns=FEATURES)
    assert result.label == LABEL
    assert list(result.metrics) == ["valid", "test"]
    for seg, metrics in result.metrics.items():
        assert list(metrics) == ["model", *BASELINES]
        n = panel.filter(pl.col("segment") == seg).height
        assert metrics["model"]["n_rows"] == n
        # the model sees f1; the naive forecasts do not
        assert metrics["model"]["rank_ic_mean"] > metrics["baseline_momentum"]["rank_ic_mean"]
        assert metrics["model"]["rmse"] < metrics["baseline_zero"]["rmse"]
    # fitted on train rows only: refitting on them reproduces the coefficients
    train = panel.filter(pl.col("segment") == "train")
    refit = fit_pipeline(train, ModelSpec("ridge"), FEATURES, LABEL)
    np.testing.assert_array_equal(
        result.pipeline.named_steps["model"].coef_, refit.named_steps["model"].coef_
    )
    with pytest.raises(ValueError, match="segment"):
        fit_and_evaluate(
            panel.drop("segment"), ModelSpec("ridge"), horizon=5, feature_columns=FEATURES
        )
