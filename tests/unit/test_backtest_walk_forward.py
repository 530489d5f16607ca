"""Walk-forward predictions against a real temporary MLflow registry (SQLite + local artifacts).

Three versions of a tiny ridge Pipeline are registered with :func:`registry.log_and_register`:
v1 trained through 2024-02-15, v2 through 2024-04-15, v3 without the tag. Each date of half a
year of features must be scored by the latest version trained strictly before it, and by no
model trained on or after it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from alphadag.backtest.walk_forward import (
    models_for_dates,
    registry_history,
    registry_loader,
    walk_forward_predictions,
)
from alphadag.features import FEATURE_COLUMNS
from alphadag.market.calendar import sessions
from alphadag.models import ModelSpec, fit_pipeline, predict
from alphadag.models import registry as reg

MODEL = "wf-test"
THROUGH = {1: dt.date(2024, 2, 15), 2: dt.date(2024, 4, 15)}
TICKERS = ("AAA", "BBB", "CCC")


def _features() -> pl.DataFrame:
    days = sessions("2024-01-02", "2024-06-28")
    rng = np.random.default_rng(5)
    n = len(days) * len(TICKERS)
    x = rng.standard_normal((n, len(FEATURE_COLUMNS)))
    return pl.DataFrame(
        {
            "ticker": [t for _ in days for t in TICKERS],
            "date": [d for d in days for _ in TICKERS],
            **{c: x[:, i] for i, c in enumerate(FEATURE_COLUMNS)},
        }
    ).with_columns(pl.col("date").cast(pl.Date))


def _fitted(seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((200, len(FEATURE_COLUMNS)))
    y = x @ rng.standard_normal(len(FEATURE_COLUMNS)) * 0.01
    frame = pl.DataFrame({**{c: x[:, i] for i, c in enumerate(FEATURE_COLUMNS)}, "y": y})
    return fit_pipeline(frame, ModelSpec("ridge", {"alpha": 1.0}), FEATURE_COLUMNS, "y"), frame


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("wf_mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    for version, tags in ((1, THROUGH[1]), (2, THROUGH[2]), (3, None)):
        pipeline, frame = _fitted(seed=version)
        registered = reg.log_and_register(
            tracking_uri=uri,
            experiment="wf",
            artifact_location=(root / "art").as_uri(),
            model_name=MODEL,
            pipeline=pipeline,
            input_example=frame.select(FEATURE_COLUMNS).head(3),
            metrics={},
            params={"seed": version},
            tags={},
            version_tags={} if tags is None else {"alphadag.trained_through": tags.isoformat()},
        )
        assert registered.version == version
    return uri


def test_registry_history_reads_trained_through_and_skips_untagged_versions(store):
    client = reg.MlflowClient(tracking_uri=store, registry_uri=store)
    assert registry_history(client, MODEL) == THROUGH
    assert registry_history(client, "no-such-model") == {}


def test_each_date_uses_only_a_model_trained_before_it(store):
    features = _features()
    client = reg.MlflowClient(tracking_uri=store, registry_uri=store)
    history = registry_history(client, MODEL)
    load = registry_loader(MODEL, tracking_uri=store)
    loaded: list[int] = []

    def recording_load(version: int):
        loaded.append(version)
        return load(version)

    out = walk_forward_predictions(features, history, recording_load)
    assert out.columns == ["date", "ticker", "y_pred", "model_version"]
    assert sorted(loaded) == [1, 2]  # each used version loaded once; v3 (untagged) never

    # no future model: every row's model was trained through a date strictly before the row
    through = out.select(
        "date", pl.col("model_version").replace_strict(history, return_dtype=pl.Date).alias("t")
    )
    assert (through["t"] < through["date"]).all()
    # and it is the latest such model: v1 from Feb 16 to Apr 15, v2 after; nothing before
    expected = pl.Series([1 if d <= THROUGH[2] else 2 for d in out["date"]], dtype=pl.Int64)
    assert out["model_version"].to_list() == expected.to_list()
    assert out["date"].min() == dt.date(2024, 2, 16)
    assert out.height == features.filter(pl.col("date") > THROUGH[1]).height

    # y_pred is the allowed model's own prediction for the row, and the other model's differs
    models = {v: load(v) for v in (1, 2)}
    joined = out.join(features, on=["date", "ticker"], how="left")
    for version, rows in joined.group_by("model_version"):
        (v,) = version
        own = predict(models[v], rows, FEATURE_COLUMNS)
        other = predict(models[3 - v], rows, FEATURE_COLUMNS)
        np.testing.assert_array_equal(rows["y_pred"].to_numpy(), own)
        assert np.all(own != other)


def test_a_newer_model_never_changes_earlier_predictions(store):
    features = _features()
    load = registry_loader(MODEL, tracking_uri=store)
    only_v1 = walk_forward_predictions(features, {1: THROUGH[1]}, load)
    both = walk_forward_predictions(features, THROUGH, load)
    cutoff = pl.col("date") <= THROUGH[2]
    assert only_v1.filter(cutoff).equals(both.filter(cutoff))
    # and predicting a truncated history equals the full run truncated (no look-ahead)
    head = walk_forward_predictions(features.filter(cutoff), THROUGH, load)
    assert head.equals(both.filter(cutoff))


def test_models_for_dates_boundaries_and_ties():
    d = dt.date
    history = {1: d(2024, 1, 10), 2: d(2024, 1, 10), 3: d(2024, 1, 5)}
    chosen = models_for_dates(
        [d(2024, 1, 5), d(2024, 1, 6), d(2024, 1, 10), d(2024, 1, 11)], history
    )
    assert chosen == {d(2024, 1, 5): None, d(2024, 1, 6): 3, d(2024, 1, 10): 3, d(2024, 1, 11): 2}
    assert models_for_dates([d(2024, 1, 1)], {}) == {d(2024, 1, 1): None}


def test_no_allowed_model_gives_an_empty_frame_and_bad_features_name_the_columns():
    features = _features()
    out = walk_forward_predictions(features, {1: dt.date(2030, 1, 1)}, lambda v: 1 / 0)
    assert out.height == 0 and out.columns == ["date", "ticker", "y_pred", "model_version"]
    with pytest.raises(ValueError, match="rsi_14"):
        walk_forward_predictions(features.drop("rsi_14"), THROUGH, lambda v: 1 / 0)
