"""Serving: interval calibration, the baseline, the signal, PSI, scores; then the model chain
against a real temporary registry (SQLite + local artifacts): an untouched champion serves, a
swapped model file and an unreachable registry fall back with a reason."""

import datetime as dt
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow_http import bounds, closed_port_uri, record_http_calls
from scipy import stats

from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.models import ModelSpec, build_pipeline, fit_pipeline
from alphadag.models import registry as reg
from alphadag.models.drift import psi, psi_reference
from alphadag.models.scoring import SCORES_SCHEMA, realised_returns, score_predictions
from alphadag.models.serving import (
    PREDICTIONS_SCHEMA,
    ServedModel,
    baseline_model,
    build_predictions,
    clear_model_cache,
    interval_quantile,
    resolve_served_model,
    volatility_scale,
)

H = 5
COLUMNS = ("x1", "x2", "rvol_20", "logret_20")


def _synthetic(n_dates: int, n_tickers: int, seed: int) -> pl.DataFrame:
    """Features with a known linear signal and heteroscedastic Gaussian noise.

    The noise of a row has standard deviation ``rvol_20 * sqrt(H / 252)``: its scale is known at
    prediction time, as the serving intervals assume.
    """
    rng = np.random.default_rng(seed)
    n = n_dates * n_tickers
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    rvol = rng.uniform(0.1, 0.6, size=n)
    noise = rng.normal(size=n) * rvol * math.sqrt(H / 252)
    start = dt.date(2020, 1, 1)
    return pl.DataFrame(
        {
            "ticker": [f"T{i:02d}" for _ in range(n_dates) for i in range(n_tickers)],
            "date": [
                start + dt.timedelta(days=d) for d in range(n_dates) for _ in range(n_tickers)
            ],
            "x1": x1,
            "x2": x2,
            "rvol_20": rvol,
            "logret_20": rng.normal(scale=0.05, size=n),
            "y": 0.01 * x1 - 0.005 * x2 + noise,
        }
    )


def _fitted_model(train: pl.DataFrame, valid: pl.DataFrame) -> ServedModel:
    pipe = build_pipeline(ModelSpec("ridge", {}, seed=0), COLUMNS)
    pipe.fit(train.select(COLUMNS).to_numpy(), train["y"])
    y_valid = pipe.predict(valid.select(COLUMNS).to_numpy())
    residuals = pl.DataFrame(
        {"residual": valid["y"].to_numpy() - y_valid, "scale": volatility_scale(valid, H)}
    )
    return ServedModel(
        source="champion",
        name="m",
        version="1",
        horizon=H,
        feature_columns=COLUMNS,
        predict_fn=pipe.predict,
        residuals=residuals,
    )


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_split_conformal_coverage_is_nominal_over_many_dates(coverage):
    train, valid, test = _synthetic(300, 20, 1), _synthetic(100, 20, 2), _synthetic(400, 20, 3)
    model = _fitted_model(train, valid)
    batch = build_predictions(test.drop("y"), model, coverage=coverage, risk=None)
    assert set(batch["interval_method"]) == {"split_conformal"}
    joined = batch.join(test.select("ticker", "date", "y", "rvol_20"), on=["ticker", "date"])
    inside = (joined["y"] >= joined["y_lo"]) & (joined["y"] <= joined["y_hi"])
    assert joined.height == 8000
    assert abs(inside.mean() - coverage) <= 0.03
    # locally adaptive: wider intervals where the known volatility is higher
    width = (joined["y_hi"] - joined["y_lo"]).to_numpy()
    assert stats.spearmanr(width, joined["rvol_20"].to_numpy()).statistic > 0.99


def test_unscaled_residuals_would_not_be_calibrated_per_volatility_bucket():
    """Why the scale matters: the same residuals without it under-cover the volatile half."""
    train, valid, test = _synthetic(300, 20, 1), _synthetic(100, 20, 2), _synthetic(400, 20, 3)
    model = _fitted_model(train, valid)
    batch = build_predictions(test.drop("y"), model, coverage=0.9, risk=None).join(
        test.select("ticker", "date", "y"), on=["ticker", "date"]
    )
    volatile = batch.join(test.select("ticker", "date", "rvol_20"), on=["ticker", "date"]).filter(
        pl.col("rvol_20") > 0.45
    )
    inside = (volatile["y"] >= volatile["y_lo"]) & (volatile["y"] <= volatile["y_hi"])
    assert abs(inside.mean() - 0.9) <= 0.04  # scaled: calibrated in the volatile bucket too
    from alphadag.risk import conformal_quantile

    q_flat = conformal_quantile(model.residuals["residual"], 0.9)
    err = (volatile["y"] - volatile["y_pred"]).abs()
    assert (err <= q_flat).mean() < 0.85  # a constant width under-covers volatile rows


def test_too_few_residuals_fall_back_to_normal_intervals_and_say_so():
    train, valid = _synthetic(50, 10, 1), _synthetic(1, 5, 2)  # 5 residuals < 9 needed at 90%
    model = _fitted_model(train, valid)
    q, method = interval_quantile(model, 0.9)
    assert method == "normal_vol"
    assert q == pytest.approx(stats.norm.ppf(0.95))


def test_baseline_is_momentum_with_a_volatility_interval_and_labelled():
    feats = _synthetic(3, 4, 9).drop("y")
    feats = feats.with_columns(
        pl.when(pl.col("ticker") == "T00")
        .then(None)
        .otherwise(pl.col("logret_20"))
        .alias("logret_20")
    )
    batch = build_predictions(feats, baseline_model(H, COLUMNS), coverage=0.9, risk=None)
    assert batch.columns == list(PREDICTIONS_SCHEMA)
    assert set(batch["model_source"]) == {"baseline"}
    joined = batch.join(feats, on=["ticker", "date"])
    np.testing.assert_allclose(joined["y_pred"], joined["logret_20"].fill_null(0.0) * H / 20)
    half = stats.norm.ppf(0.95) * joined["rvol_20"] * math.sqrt(H / 252)
    np.testing.assert_allclose(joined["y_hi"] - joined["y_pred"], half)
    np.testing.assert_allclose(joined["y_pred"] - joined["y_lo"], half)


def test_warm_up_rows_take_the_sessions_median_scale():
    feats = pl.DataFrame({"rvol_20": [0.2, None, 0.4, 0.6]})
    assert volatility_scale(feats, 252).tolist() == pytest.approx([0.2, 0.4, 0.4, 0.6])
    assert np.isnan(volatility_scale(pl.DataFrame({"rvol_20": [None, None]}), 5)).all()


def test_a_model_that_returns_nan_is_refused():
    model = ServedModel("champion", "m", "1", H, COLUMNS, lambda x: np.full(len(x), np.nan))
    with pytest.raises(ValueError, match="non-finite"):
        model.predict(_synthetic(1, 3, 0))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(0, 10_000))
def test_signal_is_a_rank_on_minus_one_to_one(n_tickers, seed):
    feats = _synthetic(2, n_tickers, seed).drop("y")
    batch = build_predictions(feats, baseline_model(H, COLUMNS), coverage=0.9, risk=None)
    assert batch.height == feats.height  # one row per feature row, none lost
    for (_,), day in batch.group_by("date"):
        s = day["signal"].to_numpy()
        assert ((s >= -1) & (s <= 1)).all()
        if n_tickers == 1:
            assert s.tolist() == [0.0]
        else:
            assert stats.spearmanr(s, day["y_pred"]).statistic == pytest.approx(1.0) or (
                np.ptp(day["y_pred"].to_numpy()) == 0
            )


# --- drift -------------------------------------------------------------------------------------


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    ref = psi_reference(pl.DataFrame({"x": rng.normal(size=20_000)}), ["x"])
    assert ref["share"].sum() == pytest.approx(1.0)
    same = psi(ref, pl.DataFrame({"x": rng.normal(size=5_000)}))["x"]
    shifted = psi(ref, pl.DataFrame({"x": rng.normal(loc=1.0, size=5_000)}))["x"]
    assert same < 0.01
    assert shifted > 0.25
    # closed form check on the bins: the index equals sum (a - e) ln(a / e) computed here
    x = rng.normal(loc=1.0, size=5_000)
    uppers = ref["upper"].to_numpy()
    counts = np.array(
        [((x <= u) & (x > lo)).sum() for lo, u in zip([-np.inf, *uppers[:-1]], uppers, strict=True)]
    )
    a, e = np.maximum(counts / x.size, 1e-4), np.maximum(ref["share"].to_numpy(), 1e-4)
    assert psi(ref, pl.DataFrame({"x": x}))["x"] == pytest.approx(
        float(np.sum((a - e) * np.log(a / e)))
    )


def test_psi_of_a_feature_with_no_values_is_nan():
    ref = psi_reference(pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), ["x"], bins=2)
    assert math.isnan(psi(ref, pl.DataFrame({"x": [None, None]}, schema={"x": pl.Float64}))["x"])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=5, max_size=200),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200),
)
def test_psi_is_never_negative_and_shares_sum_to_one(reference, sample):
    ref = psi_reference(pl.DataFrame({"x": reference}), ["x"])
    assert ref["share"].sum() == pytest.approx(1.0)
    assert psi(ref, pl.DataFrame({"x": sample}))["x"] >= -1e-12


# --- scores ------------------------------------------------------------------------------------


def _bars(days, tickers, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for t in tickers:
        close = 100 * np.exp(np.cumsum(rng.normal(scale=0.02, size=len(days))))
        rows += [(t, d, float(c)) for d, c in zip(days, close, strict=True)]
    return pl.DataFrame(
        rows, schema={"ticker": pl.String, "date": pl.Date, "close": pl.Float64}, orient="row"
    )


def test_a_prediction_is_scored_exactly_when_its_horizon_has_passed():
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(12)]
    tickers = [f"T{i}" for i in range(6)]
    bars = _bars(days, tickers)
    rng = np.random.default_rng(1)
    preds = pl.DataFrame(
        {
            "date": [days[2]] * 6,
            "ticker": tickers,
            "horizon": [3] * 6,
            "y_pred": rng.normal(size=6),
            "y_lo": [-0.02] * 6,
            "y_hi": [0.02] * 6,
            "coverage": [0.9] * 6,
            "model_source": ["champion"] * 6,
            "model_version": ["4"] * 6,
        }
    )
    for as_of in days[:5]:  # before days[2 + 3]: nothing matured
        assert score_predictions(preds, bars, as_of).height == 0
    assert score_predictions(preds, bars, days[6]).height == 0  # matured on days[5], not days[6]
    out = score_predictions(preds, bars, days[5])
    assert out.schema == pl.Schema(SCORES_SCHEMA)
    (row,) = out.to_dicts()
    assert row["date"] == days[5] and row["prediction_date"] == days[2]
    c = bars.pivot(on="date", index="ticker", values="close").sort("ticker")
    realised = np.log(c[str(days[5])].to_numpy() / c[str(days[2])].to_numpy())
    y = preds.sort("ticker")["y_pred"].to_numpy()
    assert row["ic"] == pytest.approx(np.corrcoef(y, realised)[0, 1])
    assert row["rank_ic"] == pytest.approx(stats.spearmanr(y, realised).statistic)
    assert row["hit_rate"] == pytest.approx(np.mean(np.sign(y) == np.sign(realised)))
    assert row["coverage"] == pytest.approx(np.mean(np.abs(realised) <= 0.02))
    assert row["rmse"] == pytest.approx(np.sqrt(np.mean((y - realised) ** 2)))


def test_scores_never_read_a_close_after_as_of():
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(8)]
    bars = _bars(days, ["A", "B", "C"])
    preds = pl.DataFrame(
        {
            "date": [days[1]] * 3,
            "ticker": ["A", "B", "C"],
            "horizon": [2] * 3,
            "y_pred": [0.1, 0.0, -0.1],
        }
    )
    before = realised_returns(preds, bars, days[2])
    assert before["realised"].null_count() == 3  # days[3] is after as_of: unknown
    later_changed = bars.with_columns(
        pl.when(pl.col("date") > days[3]).then(pl.col("close") * 10).otherwise(pl.col("close"))
    )
    a = realised_returns(preds, bars, days[3])["realised"]
    b = realised_returns(preds, later_changed, days[3])["realised"]
    assert a.to_list() == b.to_list()


# --- the model chain against a real registry ----------------------------------------------------

SERVED = ("x1", "x2")


def _registered(tmp_path, name: str) -> tuple[reg.ModelRegistry, pl.DataFrame]:
    """``name`` with versions 1 (ridge, previous) and 2 (hgb, champion) and a session to score."""
    train = _synthetic(60, 10, 1)
    models = reg.ModelRegistry(
        name, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_location=str(tmp_path / "mlartifacts"),
    )  # fmt: skip
    for spec in (ModelSpec("ridge", {}), ModelSpec("hgb", {"max_iter": 10})):
        models.register(
            pipeline=fit_pipeline(train, spec, SERVED, "y"), input_example=train.select(SERVED),
            metrics={}, params={}, tags={}, version_tags={"alphadag.horizon": str(H)},
        )  # fmt: skip
    for alias, version in (("previous", "1"), ("champion", "2")):
        models.client.set_registered_model_alias(name, alias, version)
    clear_model_cache()
    return models, _synthetic(1, 10, 2).drop("y")


def _resolve(models: reg.ModelRegistry, session: pl.DataFrame) -> ServedModel:
    return resolve_served_model(
        models.client, models.name, session, tracking_uri=models.tracking_uri,
        registry_uri=models.registry_uri, default_horizon=H,
    )  # fmt: skip


def test_an_untouched_champion_serves(tmp_path):
    models, session = _registered(tmp_path, "served-untouched")
    model = _resolve(models, session)
    assert (model.source, model.version, model.fallback_reasons) == ("champion", "2", ())
    assert build_predictions(session, model, coverage=0.9, risk=None)["model_source"].unique(
    ).to_list() == ["champion"]  # fmt: skip


def test_a_champion_file_swapped_for_another_versions_falls_back_naming_the_digests(tmp_path):
    models, session = _registered(tmp_path, "served-swapped")
    files = {}
    for version in ("1", "2"):
        mv = models.client.get_model_version(models.name, version)
        root = models.client.get_model_version_download_uri(models.name, version)
        files[version] = (
            Path(root.removeprefix("file://"), mv.tags[reg.TAG_MODEL_FILE]),
            mv.tags[reg.TAG_MODEL_SHA256],
        )
    (champion_file, expected), (previous_file, actual) = files["2"], files["1"]
    champion_file.write_bytes(previous_file.read_bytes())  # valid skops, the wrong version's
    clear_model_cache()
    model = _resolve(models, session)
    assert (model.source, model.version) == ("previous", "1")
    (reason,) = model.fallback_reasons
    assert reason.startswith(
        "champion (version 2): artifact missing or corrupt: "
        "digest mismatch: served-swapped version 2: "
    )
    assert f"{champion_file} has sha256 {actual}, expected {expected}" in reason


@pytest.fixture()
def http_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    return record_http_calls(monkeypatch)


def test_an_unreachable_registry_falls_back_to_the_baseline_after_bounded_retries(
    http_calls,
):
    uri = closed_port_uri()
    mlflow = MlflowResource(tracking_uri=uri)
    session = _synthetic(1, 4, 0).drop("y")
    model = resolve_served_model(
        mlflow.client(), mlflow.model_name, session, tracking_uri=uri, registry_uri=uri,
        default_horizon=H,
    )  # fmt: skip
    assert model.source == "baseline"
    (reason,) = model.fallback_reasons
    assert reason.startswith(f"registry unreachable: the MLflow server at {uri} did not answer")
    # bounded: 2 retries, backoff factor 1, 10 s per try (MLflow's defaults: 7, 2 and 120 s)
    assert http_calls and bounds(http_calls) == {(2, 1, 10)}
