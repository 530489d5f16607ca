"""``ModelSpec`` and ``build_pipeline``: preprocessing per family, argument checks, reproducibility."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from alphadag.features import FEATURE_COLUMNS
from alphadag.models import (
    DEFAULT_PARAMS,
    ModelSpec,
    build_pipeline,
    feature_matrix,
    fit_pipeline,
    predict,
)

LABEL = "fwd_ret_5d"
FAST = {
    "ridge": {"alpha": 3.0},
    "hgb": {"max_iter": 15, "min_samples_leaf": 20},
    "random_forest": {"n_estimators": 8, "max_depth": 5, "min_samples_leaf": 10},
}


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    """1,500 rows of the 36 feature columns with warm-up-like nulls and a noisy linear label."""
    rng = np.random.default_rng(5)
    n = 1_500
    x = rng.standard_normal((n, len(FEATURE_COLUMNS)))
    y = 0.02 * x[:, 0] - 0.01 * x[:, 3] + 0.01 * rng.standard_normal(n)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:50, :10] = np.nan  # warm-up block
    data = {c: x[:, i] for i, c in enumerate(FEATURE_COLUMNS)}
    return pl.DataFrame(data).fill_nan(None).with_columns(pl.Series(LABEL, y))


@pytest.mark.parametrize("family", ["ridge", "hgb", "random_forest"])
@pytest.mark.parametrize("impute", [None, True])
def test_same_spec_and_data_give_identical_predictions(
    frame: pl.DataFrame, family: str, impute: bool | None
) -> None:
    spec = ModelSpec(family, FAST[family], seed=11, impute=impute)  # type: ignore[arg-type]
    first = predict(fit_pipeline(frame, spec, FEATURE_COLUMNS, LABEL), frame, FEATURE_COLUMNS)
    again = predict(fit_pipeline(frame, spec, FEATURE_COLUMNS, LABEL), frame, FEATURE_COLUMNS)
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, again)
    # and the model learned something: positive correlation with the label in-sample
    assert np.corrcoef(first, frame[LABEL].to_numpy())[0, 1] > 0.3


def test_the_seed_matters_for_the_forest(frame: pl.DataFrame) -> None:
    preds = [
        predict(
            fit_pipeline(
                frame,
                ModelSpec("random_forest", FAST["random_forest"], seed=s),
                FEATURE_COLUMNS,
                LABEL,
            ),
            frame,
            FEATURE_COLUMNS,
        )
        for s in (1, 2)
    ]
    assert not np.array_equal(preds[0], preds[1])


def test_preprocessing_per_family() -> None:
    ridge = build_pipeline(ModelSpec("ridge"), FEATURE_COLUMNS)
    assert [type(s) for _, s in ridge.steps] == [SimpleImputer, StandardScaler, Ridge]
    assert ridge.named_steps["impute"].strategy == "median"
    forest = build_pipeline(ModelSpec("random_forest", seed=3), FEATURE_COLUMNS)
    assert [type(s) for _, s in forest.steps] == [SimpleImputer, RandomForestRegressor]
    assert forest.named_steps["model"].n_jobs == 1
    assert forest.named_steps["model"].random_state == 3
    hgb = build_pipeline(ModelSpec("hgb", seed=4), FEATURE_COLUMNS)
    assert [type(s) for _, s in hgb.steps] == [VarianceThreshold, HistGradientBoostingRegressor]
    assert hgb.named_steps["model"].early_stopping is False
    assert hgb.named_steps["model"].random_state == 4
    hgb_imputed = build_pipeline(ModelSpec("hgb", impute=True), FEATURE_COLUMNS)
    assert [type(s) for _, s in hgb_imputed.steps] == [SimpleImputer, HistGradientBoostingRegressor]


@pytest.mark.parametrize("family", ["ridge", "hgb", "random_forest"])
def test_an_all_null_training_column_fits_and_predicts(family) -> None:
    # a history shorter than a feature's warm-up (roc_60 on 50 sessions) leaves it all null
    rng = np.random.default_rng(5)
    n = 400
    frame = pl.DataFrame(
        {
            "x": rng.normal(size=n),
            "empty": pl.Series([None] * n, dtype=pl.Float64),
            "flat": np.full(n, 3.0),
        }
    ).with_columns(y=pl.col("x") * 0.5 + rng.normal(scale=0.1, size=n))
    spec = ModelSpec(family, FAST[family])
    pipeline = fit_pipeline(frame, spec, ["x", "empty", "flat"], "y")
    later = frame.with_columns(empty=pl.lit(1.0))  # present at serving time: still ignored
    pred = predict(pipeline, later, ["x", "empty", "flat"])
    assert pred.shape == (n,) and np.isfinite(pred).all()
    assert np.corrcoef(pred, frame["y"].to_numpy())[0, 1] > 0.5
    if family == "hgb":
        assert pipeline.named_steps["drop_empty"].get_support().tolist() == [True, False, False]


def test_params_override_defaults_key_by_key() -> None:
    spec = ModelSpec("hgb", {"max_iter": 7}, seed=2)
    resolved = spec.resolved_params()
    assert resolved["max_iter"] == 7
    assert resolved["learning_rate"] == DEFAULT_PARAMS["hgb"]["learning_rate"]
    assert resolved["early_stopping"] is False
    assert resolved["random_state"] == 2
    assert spec.to_dict() == {
        "family": "hgb",
        "params": resolved,
        "seed": 2,
        "impute": False,
        "feature_set": "scale_free",
    }


def test_spec_is_frozen_against_later_edits_of_params() -> None:
    params = {"alpha": 2.0}
    spec = ModelSpec("ridge", params)
    params["alpha"] = 99.0
    assert spec.resolved_params()["alpha"] == 2.0
    with pytest.raises(TypeError):
        spec.params["alpha"] = 5.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"family": "xgboost"}, ValueError, "family must be one of"),
        ({"family": "ridge", "params": {"n_estimators": 3}}, ValueError, "unknown ridge parameter"),
        ({"family": "hgb", "params": {"random_state": 1}}, ValueError, "seed"),
        ({"family": "ridge", "seed": -1}, ValueError, "seed"),
        ({"family": "ridge", "impute": False}, ValueError, "only hgb"),
        ({"family": "ridge", "params": [("alpha", 1.0)]}, TypeError, "mapping"),
    ],
)
def test_spec_argument_errors(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ModelSpec(**kwargs)


def test_feature_columns_are_checked() -> None:
    with pytest.raises(ValueError, match="labels"):
        build_pipeline(ModelSpec("ridge"), ["sma_10", "fwd_ret_5d"])
    with pytest.raises(ValueError, match="duplicates"):
        build_pipeline(ModelSpec("ridge"), ["sma_10", "sma_10"])
    with pytest.raises(ValueError, match="at least one"):
        build_pipeline(ModelSpec("ridge"), [])


def test_fit_rejects_null_labels(frame: pl.DataFrame) -> None:
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col(LABEL)).alias(LABEL)
    )
    with pytest.raises(ValueError, match="null or non-finite"):
        fit_pipeline(broken, ModelSpec("ridge"), FEATURE_COLUMNS, LABEL)


def test_feature_matrix_keeps_column_order_and_turns_nulls_into_nan() -> None:
    f = pl.DataFrame({"a": [1.0, None], "b": [2, 3]})
    x = feature_matrix(f, ["b", "a"])
    assert x.dtype == np.float64
    np.testing.assert_array_equal(x, np.array([[2.0, 1.0], [3.0, np.nan]]))
    with pytest.raises(ValueError, match="lacks feature"):
        feature_matrix(f, ["c"])


def test_an_all_null_feature_keeps_the_matrix_width(frame: pl.DataFrame) -> None:
    """Close-only data leaves volume features entirely null: the imputer must not drop them."""
    empty = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("obv"))
    pipe = fit_pipeline(empty, ModelSpec("ridge"), FEATURE_COLUMNS, LABEL)
    assert pipe.named_steps["model"].coef_.shape == (len(FEATURE_COLUMNS),)
