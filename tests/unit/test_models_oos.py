"""The walk-forward out-of-sample series: no date is scored by a fit trained on or after it.

The property test records every fit's training rows (a fake ``fit`` that wraps the real one) and
checks, over random refit intervals, embargoes, windows, horizons and panels with missing dates
and tickers, that each scored date comes after every training label window of its fit, that the
embargo holds, and that the series covers every date after the first fit exactly once.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.models import ModelSpec, fit_pipeline
from alphadag.models.oos import (
    BASELINE_COLUMNS,
    OOS_SCHEMA,
    WalkForwardSettings,
    fit_schedule,
    walk_forward,
)

D0 = dt.date(2020, 1, 1)
FEATURES = ["logret_5", "logret_20", "x"]


def _panel(n_dates: int, horizon: int, seed: int, gaps: int = 0) -> pl.DataFrame:
    """A training-set-shaped panel; ``label_end_date`` is the date ``horizon`` sessions on."""
    rng = np.random.default_rng(seed)
    sessions = [D0 + dt.timedelta(days=i) for i in range(n_dates + horizon + gaps)]
    keep = sorted(rng.choice(len(sessions) - horizon, size=n_dates, replace=False))
    rows = []
    for i in keep:
        for t in ("A", "B", "C", "D"):
            if rng.random() < 0.1:
                continue  # a missing (ticker, date)
            x = rng.normal()
            rows.append((t, sessions[i], sessions[i + horizon], *rng.normal(size=2), x, 0.1 * x))
    return pl.DataFrame(
        rows,
        schema=["ticker", "date", "label_end_date", "logret_5", "logret_20", "x", "y"],
        orient="row",
    ).with_columns(segment=pl.lit("train"))


@settings(max_examples=60, deadline=None)
@given(
    n_dates=st.integers(10, 90),
    horizon=st.integers(1, 6),
    extra_embargo=st.integers(0, 4),
    refit_every=st.integers(1, 30),
    window=st.one_of(st.none(), st.integers(3, 40)),
    min_train=st.integers(1, 20),
    gaps=st.integers(0, 20),
    seed=st.integers(0, 10_000),
)
def test_no_date_is_scored_by_a_fit_trained_on_or_after_it(
    n_dates, horizon, extra_embargo, refit_every, window, min_train, gaps, seed
) -> None:
    if window is not None and window < min_train:
        window = min_train
    wf = WalkForwardSettings(
        refit_every=refit_every,
        window=window,
        embargo=horizon + extra_embargo,
        min_train_sessions=min_train,
    )
    panel = _panel(n_dates, horizon, seed, gaps)
    dates = panel["date"].unique().sort().to_list()
    fits: list[pl.DataFrame] = []

    def recording_fit(frame, spec, columns, label):
        fits.append(frame)
        return fit_pipeline(frame, spec, columns, label)

    try:
        out = walk_forward(
            panel,
            ModelSpec("ridge"),
            feature_columns=FEATURES,
            label="y",
            horizon=horizon,
            settings=wf,
            fit=recording_fit,
        )
    except ValueError as err:
        assert "too few" in str(err)
        assert len(dates) <= horizon + extra_embargo + min_train
        return
    assert dict(out.schema) == OOS_SCHEMA
    first = horizon + extra_embargo + min_train
    # contiguous: every date from the first prediction on, each (date, ticker) exactly once
    assert out["date"].unique().sort().to_list() == dates[first:]
    scored = panel.filter(pl.col("date") >= dates[first])
    assert out.height == scored.height == out.select("date", "ticker").n_unique()
    blocks = out.group_by("fit_trained_through", "fit_start").agg(
        pl.col("date").min().alias("first"), pl.col("date").max().alias("last")
    )
    assert blocks.height == len(fits) == len(fit_schedule(len(dates), wf, horizon=horizon))
    for train, block in zip(fits, blocks.sort("first").iter_rows(named=True), strict=True):
        # the fit's every label window ends strictly before the first date it scores
        assert train["label_end_date"].max() < block["first"]
        assert train["label_end_date"].max() == block["fit_trained_through"]
        assert train["date"].min() == block["fit_start"]
        # the embargo: at least `embargo` dates of the set between training and scoring
        i_last, i_first = dates.index(train["date"].max()), dates.index(block["first"])
        assert i_first - i_last >= wf.embargo + 1
        if window is not None:
            assert dates.index(train["date"].max()) - dates.index(train["date"].min()) < window
    assert (out["fit_trained_through"] < out["date"]).all()
    assert (out["fit_start"] <= out["fit_trained_through"]).all()


def test_predictions_come_from_the_fit_and_baselines_from_the_features() -> None:
    panel = _panel(80, 5, seed=1)
    wf = WalkForwardSettings(refit_every=20, min_train_sessions=30)
    out = walk_forward(
        panel, ModelSpec("ridge"), feature_columns=FEATURES, label="y", horizon=5, settings=wf
    )
    joined = out.join(panel, on=["date", "ticker"])
    assert joined.height == out.height
    np.testing.assert_allclose(joined["y_true"], joined["y"])
    np.testing.assert_allclose(joined["baseline_momentum"], joined["logret_20"] * 5 / 20)
    np.testing.assert_allclose(joined["baseline_reversal"], -joined["logret_5"])
    assert set(BASELINE_COLUMNS) <= set(out.columns)
    # y = 0.1 x is learnable: the out-of-sample predictions track it
    assert np.corrcoef(joined["y_pred"], joined["y"])[0, 1] > 0.99
    # refits every 20 dates: the number of distinct fits
    assert out["fit_trained_through"].n_unique() == len(fit_schedule(80, wf, horizon=5))


def test_settings_and_input_errors() -> None:
    with pytest.raises(ValueError, match="at least the label horizon"):
        WalkForwardSettings(embargo=2).embargo_for(5)
    with pytest.raises(ValueError, match="refit_every"):
        WalkForwardSettings(refit_every=0)
    with pytest.raises(ValueError, match="shorter than"):
        WalkForwardSettings(window=10, min_train_sessions=20)
    with pytest.raises(ValueError, match="too few"):
        fit_schedule(10, WalkForwardSettings(min_train_sessions=5), horizon=5)
    with pytest.raises(ValueError, match="lacks column"):
        walk_forward(
            _panel(40, 2, 0).drop("label_end_date"),
            ModelSpec("ridge"),
            feature_columns=FEATURES,
            label="y",
            horizon=2,
            settings=WalkForwardSettings(min_train_sessions=5),
        )
