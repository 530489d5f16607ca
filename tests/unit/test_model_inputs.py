"""The default model inputs are scale-free: rescaling one ticker's prices (or volume) leaves them,
and a fitted model's predictions, unchanged to 1e-9; they read only their own row (no look-ahead,
no history), and serving builds them with the same function as training (issue 13, item 5)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphadag.features import (
    FEATURE_COLUMNS,
    audit_lookahead,
    compute_features,
    compute_labels,
)
from alphadag.features.model_inputs import (
    DERIVED_COLUMNS,
    FEATURE_SETS,
    KEPT_COLUMNS,
    MODEL_FEATURE_COLUMNS,
    PRICE_LEVEL_COLUMNS,
    feature_set_columns,
    implied_close,
    missing_sources,
    model_inputs,
    with_model_inputs,
)
from alphadag.market.sources.synthetic import SyntheticSource
from alphadag.models import ModelSpec, feature_matrix, fit_pipeline, predict
from alphadag.models.serving import ServedModel, _check_schema, _Unusable

H = 5
LABEL = f"fwd_ret_{H}d"
PRICES = ("open", "high", "low", "close")
TICKERS = tuple(f"SYN{i:03d}" for i in range(6))
# |a - b| <= RTOL * max(|a|, |b|) + ATOL. The absolute floor covers values that are themselves a
# cancellation near zero: a 1e-6 log return whose log prices carry a 1e-15 rounding error is
# already 1e-9 off in relative terms (the largest differences seen are ~3e-13 absolute).
RTOL, ATOL = 1e-9, 1e-12


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    """Six synthetic OHLCV tickers over ~300 sessions."""
    src = SyntheticSource(n_tickers=len(TICKERS), start="2022-01-03", end="2023-03-15", seed=5)
    return src.fetch(src.start, src.end).drop("origin")


@pytest.fixture(scope="module")
def features(bars: pl.DataFrame) -> pl.DataFrame:
    return compute_features(bars)


@pytest.fixture(scope="module")
def labelled(features: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    return _labelled(features, compute_labels(bars, (H,)))


def _labelled(features: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    return features.join(labels, on=["ticker", "date"]).drop_nulls(LABEL).sort("date", "ticker")


def _scaled(bars: pl.DataFrame, ticker: str, c: float, columns: tuple[str, ...]) -> pl.DataFrame:
    one = pl.col("ticker") == ticker
    return bars.with_columns(
        pl.when(one).then(pl.col(k) * c).otherwise(pl.col(k)).alias(k) for k in columns
    )


def _assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=f"{what}: nulls")
    a, e = np.nan_to_num(actual), np.nan_to_num(expected)
    bound = RTOL * np.maximum(np.abs(a), np.abs(e)) + ATOL
    bad = np.abs(a - e) > bound
    assert not bad.any(), f"{what}: {int(bad.sum())} value(s) differ, max {np.abs(a - e).max()}"


def _check_inputs_invariant(base: pl.DataFrame, other: pl.DataFrame, ticker: str) -> None:
    """Model inputs: within 1e-9 for ``ticker``, bit-identical for every other ticker."""
    assert base.select("ticker", "date").equals(other.select("ticker", "date"))
    mine = (base["ticker"] == ticker).to_numpy()
    x0 = model_inputs(base).to_numpy()
    x1 = model_inputs(other).to_numpy()
    for j, col in enumerate(MODEL_FEATURE_COLUMNS):
        _assert_close(x1[mine, j], x0[mine, j], f"{ticker} {col}")
    np.testing.assert_array_equal(x1[~mine], x0[~mine])


def _assert_same_predictions(a: np.ndarray, b: np.ndarray, what: str) -> None:
    # equal to 1e-9 of the predictions' own scale (they are returns, ~1e-2)
    np.testing.assert_allclose(b, a, rtol=RTOL, atol=RTOL * np.abs(a).max(), err_msg=what)


# -- the feature set -------------------------------------------------------------------------


def test_the_default_set_replaces_every_price_level_column() -> None:
    assert (
        feature_set_columns("scale_free")
        == MODEL_FEATURE_COLUMNS
        == ModelSpec("ridge").feature_columns
    )
    assert ModelSpec("ridge", feature_set="raw").feature_columns == FEATURE_COLUMNS
    assert not set(MODEL_FEATURE_COLUMNS) & set(PRICE_LEVEL_COLUMNS)
    assert set(MODEL_FEATURE_COLUMNS) == set(KEPT_COLUMNS) | set(DERIVED_COLUMNS)
    assert len(set(MODEL_FEATURE_COLUMNS)) == len(MODEL_FEATURE_COLUMNS)
    assert set(PRICE_LEVEL_COLUMNS) < set(FEATURE_COLUMNS)
    assert set(FEATURE_SETS) == {"scale_free", "raw"}
    with pytest.raises(ValueError, match="feature_set must be one of"):
        ModelSpec("ridge", feature_set="levels")
    with pytest.raises(ValueError, match="feature set must be one of"):
        feature_set_columns("levels")


def test_the_implied_close_is_the_close(bars: pl.DataFrame, features: pl.DataFrame) -> None:
    both = features.join(bars.select("ticker", "date", "close"), on=["ticker", "date"])
    got = both.select((implied_close() / pl.col("close") - 1.0).abs().alias("e"))["e"]
    assert got.null_count() == both.filter(pl.col("zscore_20").is_null()).height
    assert got.max() < 1e-14


def test_derived_values_follow_their_formulas(bars: pl.DataFrame, features: pl.DataFrame) -> None:
    both = features.join(bars.select("ticker", "date", "close"), on=["ticker", "date"])
    x = with_model_inputs(both).drop_nulls(["zscore_20", "sma_50", "macd", "atr_14"])
    close = x["close"].to_numpy()
    for col in ("sma_10", "sma_20", "sma_50", "ema_12", "ema_26"):
        np.testing.assert_allclose(
            x[f"{col}_rel"], x[col].to_numpy() / close - 1, rtol=1e-9, atol=1e-14
        )
    for col in ("macd", "macd_signal", "macd_hist", "atr_14"):
        np.testing.assert_allclose(
            x[f"{col}_rel"], x[col].to_numpy() / close, rtol=1e-9, atol=1e-14
        )
    width = (x["bb_upper_20"] - x["bb_lower_20"]) / x["bb_mid_20"]
    np.testing.assert_allclose(x["bb_width_20"], width, rtol=1e-12)


def test_model_inputs_are_finite_or_null(features: pl.DataFrame) -> None:
    x = model_inputs(features)
    assert x.columns == list(MODEL_FEATURE_COLUMNS)
    assert all(dtype == pl.Float64 for dtype in x.dtypes)
    assert x.select(pl.all().is_nan().any()).row(0) == (False,) * x.width
    assert x.select(pl.all().is_infinite().any()).row(0) == (False,) * x.width
    # after the longest warm-up (52-week distances) every input of an OHLCV ticker is present
    late = features.filter(pl.int_range(pl.len()).over("ticker", order_by="date") >= 251)
    assert late.height > 0
    assert model_inputs(late).null_count().sum_horizontal().item() == 0


# -- scale invariance ------------------------------------------------------------------------


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    log_c=st.floats(min_value=-2.0, max_value=2.0, allow_nan=False),
    ticker=st.sampled_from(TICKERS),
)
def test_rescaling_one_tickers_prices_changes_no_input_and_no_prediction(
    bars: pl.DataFrame, features: pl.DataFrame, labelled: pl.DataFrame, log_c: float, ticker: str
) -> None:
    """c in [0.01, 100] on one ticker's open/high/low/close, volume unchanged: returns and labels
    are the same, so the model inputs and a fitted ridge's predictions must be too."""
    c = 10.0**log_c
    scaled_bars = _scaled(bars, ticker, c, PRICES)
    scaled = compute_features(scaled_bars)
    # the raw price-level columns do move (what made the old default scale-dependent) ...
    mine = pl.col("ticker") == ticker
    ratio = scaled.filter(mine)["sma_20"] / features.filter(mine)["sma_20"]
    np.testing.assert_allclose(ratio.drop_nulls(), c, rtol=1e-12)
    # ... the model inputs do not
    _check_inputs_invariant(features, scaled, ticker)

    spec = ModelSpec("ridge")
    cols = spec.feature_columns
    scaled_labelled = _labelled(scaled, compute_labels(scaled_bars, (H,)))
    np.testing.assert_allclose(scaled_labelled[LABEL], labelled[LABEL], rtol=1e-9, atol=1e-15)
    fitted = fit_pipeline(labelled, spec, cols, LABEL)
    refitted = fit_pipeline(scaled_labelled, spec, cols, LABEL)
    expected = predict(fitted, features, cols)
    _assert_same_predictions(expected, predict(fitted, scaled, cols), "fit on the original")
    _assert_same_predictions(expected, predict(refitted, scaled, cols), "fit on each panel")


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    log_c=st.floats(min_value=-2.0, max_value=2.0, allow_nan=False),
    ticker=st.sampled_from(TICKERS),
)
def test_rescaling_one_tickers_volume_changes_no_input_and_no_prediction(
    bars: pl.DataFrame, features: pl.DataFrame, labelled: pl.DataFrame, log_c: float, ticker: str
) -> None:
    """Volume times c (a share split's volume side, or a different unit), prices unchanged."""
    c = 10.0**log_c
    scaled = compute_features(_scaled(bars, ticker, c, ("volume",)))
    _check_inputs_invariant(features, scaled, ticker)
    spec = ModelSpec("ridge")
    fitted = fit_pipeline(labelled, spec, spec.feature_columns, LABEL)
    refitted = fit_pipeline(
        _labelled(scaled, labelled.select("ticker", "date", LABEL)),
        spec,
        spec.feature_columns,
        LABEL,
    )
    expected = predict(fitted, features, spec.feature_columns)
    _assert_same_predictions(
        expected, predict(fitted, scaled, spec.feature_columns), "fit on the original"
    )
    _assert_same_predictions(
        expected, predict(refitted, scaled, spec.feature_columns), "fit on each panel"
    )


def test_the_raw_feature_set_is_not_scale_free(
    bars: pl.DataFrame, features: pl.DataFrame, labelled: pl.DataFrame
) -> None:
    """The contrast the issue reported: the raw columns make the prediction depend on the level."""
    scaled = compute_features(_scaled(bars, TICKERS[2], 10.0, PRICES))
    spec = ModelSpec("ridge", feature_set="raw")
    fitted = fit_pipeline(labelled, spec, spec.feature_columns, LABEL)
    a = predict(fitted, features, spec.feature_columns)
    b = predict(fitted, scaled, spec.feature_columns)
    assert np.abs(a - b).max() > 1e-3


# -- no look-ahead, no history ---------------------------------------------------------------


def _keyed_inputs(b: pl.DataFrame) -> pl.DataFrame:
    f = compute_features(b)
    return f.select("ticker", "date").hstack(model_inputs(f))


def test_model_inputs_never_read_a_later_session(bars: pl.DataFrame) -> None:
    report = audit_lookahead(_keyed_inputs, bars, n_cuts=6, seed=3, rtol=1e-12)
    report.raise_on_violation()
    assert report.ok and len(report.cuts_checked) == 6


def test_inputs_of_one_session_equal_those_of_the_full_history(features: pl.DataFrame) -> None:
    """Serving derives from one session's features: the same values as over the whole panel."""
    full = features.select("ticker", "date").hstack(model_inputs(features))
    for day in features["date"].unique().sort().gather([30, 150, -1]):
        one = features.filter(pl.col("date") == day)
        assert (
            one.select("ticker", "date")
            .hstack(model_inputs(one))
            .equals(full.filter(pl.col("date") == day))
        )


# -- one function for training and serving -------------------------------------------------------


def test_serving_predicts_from_raw_features_as_training_did(
    features: pl.DataFrame, labelled: pl.DataFrame
) -> None:
    spec = ModelSpec("ridge")
    cols = spec.feature_columns
    pipeline = fit_pipeline(labelled, spec, cols, LABEL)
    served = ServedModel(
        source="champion",
        name="m",
        version="1",
        horizon=H,
        feature_columns=cols,  # the signature lists the derived names
        predict_fn=pipeline.predict,
    )
    day = features.filter(pl.col("date") == features["date"].max())
    _check_schema(served, day)  # the raw features provide every derived input
    np.testing.assert_array_equal(served.predict(day), predict(pipeline, day, cols))
    # a frame of model inputs (an MLflow input example) gives the same matrix as the features
    np.testing.assert_array_equal(
        feature_matrix(model_inputs(day, cols), cols), feature_matrix(day, cols)
    )

    with pytest.raises(_Unusable, match=r"features lack: \['bb_mid_20'\]"):
        _check_schema(served, day.drop("bb_mid_20"))
    with pytest.raises(_Unusable, match="non-numeric feature column"):
        _check_schema(served, day.with_columns(pl.col("sma_10").cast(pl.String)))
    with pytest.raises(ValueError, match="lacks feature column"):
        feature_matrix(day.drop("atr_14"), cols)


def test_missing_sources_names_what_a_frame_lacks() -> None:
    assert missing_sources(["rsi_14", "bb_width_20"], ["rsi_14", "bb_mid_20"]) == [
        "bb_upper_20",
        "bb_lower_20",
    ]
    assert missing_sources(["sma_10_rel"], ["sma_10_rel"]) == []
    assert missing_sources(["nope"], []) == ["nope"]
