"""``predictions`` and ``prediction_scores`` against a real (temporary SQLite) MLflow registry.

A module fixture writes 120 sessions of an eight-ticker synthetic market (daily_data_job) and
trains two registered versions (ridge, then hgb). Each test gets its own copy of that registry
(the SQLite file and the artifacts), points the aliases where it needs them, then breaks what it
means to break: it deletes the champion's model file, corrupts it, points the alias at a model
whose signature does not match the features, or makes the registry unreachable, and reads back
what the batch, the checks and the alert log say.
"""

import math
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from run_results import checks_by_session, materializations, metadata_values

from alphadag.defs.resources.alerting import AlertSink, read_alerts
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.market.calendar import sessions
from alphadag.models.serving import PREDICTIONS_SCHEMA, clear_model_cache

TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH")
RANGE = ("2024-01-02", "2024-06-24")  # 120 sessions
SERVE = ("2024-06-10", "2024-06-14")  # five sessions inside the test segment
MODEL = "alphadag-returns"
WALK_FORWARD = {"refit_every": 20, "min_train_sessions": 30}  # 120 sessions: a short history


@pytest.fixture(scope="module")
def data_root(run_job, market, tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("serving_data"))
    result = run_job(
        "daily_data_job", root, *RANGE, market_data=market(tickers=TICKERS, end="2024-07-31")
    )
    assert result.success
    return root


@pytest.fixture(scope="module")
def trained_registry(run_job, data_root, tmp_path_factory) -> Path:
    """A registry directory with versions 1 (ridge) and 2 (hgb) of the model (and, if the gate
    promotes hgb, its refit as version 3; the aliases are set by :func:`registry`)."""
    base = tmp_path_factory.mktemp("registry")
    store = _store(base)
    for family in ("ridge", "hgb"):
        result = run_job(
            "train_job",
            data_root,
            None,
            run_config={
                "ops": {
                    "oos_predictions": {"config": {"family": family, **WALK_FORWARD}},
                    "return_model": {"config": {"family": family, "cv_folds": 0, **WALK_FORWARD}},
                }
            },
            resources={"mlflow": store},
        )
        assert result.success, family
    return base


def _store(base: Path) -> MlflowResource:
    return MlflowResource(
        tracking_uri=f"sqlite:///{base}/mlflow.db", artifact_location=str(base / "art")
    )


@pytest.fixture()
def registry(trained_registry, tmp_path) -> MlflowResource:
    """A private copy of the trained registry: champion -> 2, previous -> 1."""
    clear_model_cache()
    base = tmp_path / "registry"
    shutil.copytree(trained_registry, base)
    store = _store(base)
    # the copied runs still name the original artifact directory: point them at the copy
    import sqlite3

    con = sqlite3.connect(base / "mlflow.db")
    old, new = Path(trained_registry).as_uri(), base.as_uri()
    for table, col in (
        ("runs", "artifact_uri"),
        ("experiments", "artifact_location"),
        ("model_versions", "source"),
        ("model_versions", "storage_location"),
        ("logged_models", "artifact_location"),
    ):
        cols = {r[1] for r in con.execute(f"pragma table_info({table})")}
        if col in cols:
            con.execute(f"update {table} set {col} = replace({col}, ?, ?)", (old, new))
    con.commit()
    con.close()
    client = store.client()
    client.set_registered_model_alias(MODEL, "champion", "2")
    client.set_registered_model_alias(MODEL, "previous", "1")
    yield store
    clear_model_cache()


def _serve(run_job, data_root, store, alerts, start=SERVE[0], end=SERVE[1]):
    return run_job(
        "serving_job", data_root, start, end, resources={"mlflow": store, "alerts": alerts}
    )


def _read(data_root, dataset: str, start: str, end: str) -> pl.DataFrame:
    """The partitions of ``dataset`` for the sessions start..end, read back from disk."""
    wanted = {str(d) for d in sessions(start, end)}
    found = sorted(Path(data_root, dataset).rglob("*.parquet"))
    return pl.concat([pl.read_parquet(p) for p in found if p.stem in wanted])


def _batch(data_root, start=SERVE[0], end=SERVE[1]) -> pl.DataFrame:
    return _read(data_root, "predictions", start, end).sort("date", "ticker")


def _model_file(store: MlflowResource, version: int) -> Path:
    """The skops file of a registered version, on local disk."""
    from urllib.parse import urlparse

    mv = store.client().get_model_version(MODEL, str(version))
    src = mv.source
    if src.startswith("models:/"):
        logged = store.client().get_logged_model(src.split("/")[-1])
        src = logged.artifact_location
    root = Path(urlparse(src).path)
    (skops,) = root.rglob("*.skops") or list(root.rglob("model.*"))
    return skops


@pytest.fixture()
def alerts(tmp_path) -> AlertSink:
    return AlertSink(jsonl_path=str(tmp_path / "alerts.jsonl"))


def test_champion_scores_every_ticker_with_intervals_and_risk(run_job, data_root, registry, alerts):
    result = _serve(run_job, data_root, registry, alerts)
    assert result.success
    batch = _batch(data_root)
    assert batch.columns == list(PREDICTIONS_SCHEMA)
    assert batch.height == len(TICKERS) * 5
    assert set(batch["model_source"]) == {"champion"}
    assert set(batch["model_version"]) == {"2"}
    assert set(batch["interval_method"]) == {"split_conformal"}
    assert (batch["y_lo"] < batch["y_pred"]).all() and (batch["y_pred"] < batch["y_hi"]).all()
    assert batch["coverage"].unique().to_list() == [0.9]
    # 110+ sessions of history: every risk figure is known, CVaR beyond VaR, both losses
    assert batch["vol_forecast"].null_count() == 0 and (batch["vol_forecast"] > 0).all()
    assert (batch["cvar_95"] >= batch["var_95"]).all() and (batch["var_95"] > 0).all()
    # the signal ranks y_pred within each session onto [-1, 1]
    for (_,), day in batch.group_by("date"):
        order = day.sort("y_pred")["signal"].to_list()
        assert order[0] == -1.0 and order[-1] == 1.0 and order == sorted(order)
    served = [d.isoformat() for d in sessions(*SERVE)]
    checks = checks_by_session(result)
    for name in ("predictions_contract", "predictions_model_source"):  # one per session
        assert sorted(checks[name]) == served, name
        assert all(ev.passed for ev in checks[name].values()), name
    assert all(
        metadata_values(ev)["rows"] == len(TICKERS)
        for ev in checks["predictions_contract"].values()
    )
    (drift,) = checks["predictions_feature_drift"].values()  # unpartitioned: the last session
    assert drift.partition is None and metadata_values(drift)["evaluated"] is True
    # a small universe: 10 sessions of len(TICKERS) rows are under drift_min_rows (200), so the
    # check passes and says why instead of firing on noise
    drift_meta = metadata_values(drift)
    assert drift.passed and "insufficient sample" in drift.description
    assert drift_meta["rows_pooled"] == 10 * len(TICKERS) < drift_meta["min_rows"] == 200
    assert drift_meta["features_tested"] == 0 and drift_meta["features_drifted"] == 0
    assert read_alerts(alerts.jsonl_path) == []
    mats = {m.partition: metadata_values(m) for m in materializations(result, "predictions")}
    assert sorted(mats) == served
    through = registry.client().get_model_version(MODEL, "2").tags["alphadag.trained_through"]
    for key, meta in mats.items():
        assert meta["model_source"] == "champion" and meta["model"] == f"{MODEL}/2"
        # the served sessions lie in the test segment, after every training label: out of sample
        assert meta["model_trained_through"] == through and through < SERVE[0]
        assert meta["rows_in_sample"] == 0 and meta["rows"] == len(TICKERS)
        assert meta["published"] is True and "staged_path" not in meta
        assert meta["path"].endswith(f"{key}.parquet")
        width = _batch(data_root, key, key).select((pl.col("y_hi") - pl.col("y_lo")).mean()).item()
        assert meta["mean_interval_width"] == pytest.approx(width)
    assert len({m["mean_interval_width"] for m in mats.values()}) > 1  # figures of each session
    # the top-k book is a figure of the run's last session only
    last = mats[served[-1]]
    assert math.isfinite(last["portfolio_var_95"])
    assert last["portfolio_cvar_95"] >= last["portfolio_var_95"]
    assert all("portfolio_var_95" not in mats[k] for k in served[:-1])


def _assert_fell_back(result, data_root, alerts, source, version, reason):
    assert result.success  # a fallback never fails the run
    batch = _batch(data_root)
    assert batch.height == len(TICKERS) * 5  # never empty
    assert set(batch["model_source"]) == {source}
    assert set(batch["model_version"]) == {version}
    by_session = checks_by_session(result)["predictions_model_source"]
    assert sorted(by_session) == [d.isoformat() for d in sessions(*SERVE)]
    for check in by_session.values():  # every session was scored by the fallback
        assert not check.passed
        assert check.severity.value == "WARN"
        assert reason in metadata_values(check)["fallback_reasons"]
    records = [r for r in read_alerts(alerts.jsonl_path) if r["kind"] == "model_fallback"]
    assert len(records) == 1
    assert records[0]["model_source"] == source and reason in " ".join(records[0]["reasons"])
    assert records[0]["partitions"] == [d.isoformat() for d in sessions(*SERVE)]
    return batch


def test_deleted_champion_artifact_falls_back_to_previous(run_job, data_root, registry, alerts):
    _model_file(registry, 2).unlink()
    result = _serve(run_job, data_root, registry, alerts)
    _assert_fell_back(result, data_root, alerts, "previous", "1", "artifact missing or corrupt")


def test_corrupt_champion_artifact_falls_back_to_previous(run_job, data_root, registry, alerts):
    _model_file(registry, 2).write_bytes(b"not a skops archive")
    result = _serve(run_job, data_root, registry, alerts)
    _assert_fell_back(result, data_root, alerts, "previous", "1", "artifact missing or corrupt")


def test_champion_with_another_signature_falls_back_to_previous(
    run_job, data_root, registry, alerts
):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    x = pl.DataFrame({"not_a_feature": [0.0, 1.0, 2.0], "other": [1.0, 0.0, 1.0]})
    pipe = Pipeline([("ridge", Ridge())]).fit(x.to_numpy(), [0.0, 0.1, 0.2])
    other = registry.log_and_register(
        pipeline=pipe, input_example=x, metrics={}, params={}, tags={}
    )
    registry.client().set_registered_model_alias(MODEL, "champion", str(other.version))
    result = _serve(run_job, data_root, registry, alerts)
    _assert_fell_back(result, data_root, alerts, "previous", "1", "input schema mismatch")


def test_both_broken_falls_back_to_the_labelled_momentum_baseline(
    run_job, data_root, registry, alerts
):
    _model_file(registry, 2).unlink()
    _model_file(registry, 1).write_bytes(b"garbage")
    result = _serve(run_job, data_root, registry, alerts)
    batch = _assert_fell_back(
        result, data_root, alerts, "baseline", "logret_20*h/20", "previous (version 1)"
    )
    assert set(batch["model_name"]) == {"baseline_momentum"}
    assert set(batch["interval_method"]) == {"normal_vol"}
    feats = _read(data_root, "features", *SERVE)
    joined = batch.join(
        feats.select("ticker", "date", "logret_20", "rvol_20"), on=["ticker", "date"]
    )
    h = int(batch["horizon"][0])
    np.testing.assert_allclose(joined["y_pred"], joined["logret_20"].fill_null(0.0) * h / 20)
    half = 1.6448536269514722 * joined["rvol_20"] * math.sqrt(h / 252)  # z(0.95)
    np.testing.assert_allclose(joined["y_hi"] - joined["y_pred"], half, rtol=1e-9)


def test_unreachable_registry_serves_the_baseline(run_job, data_root, alerts, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    down = MlflowResource(tracking_uri="http://127.0.0.1:9")  # discard port: nothing listens
    result = _serve(run_job, data_root, down, alerts)
    _assert_fell_back(
        result, data_root, alerts, "baseline", "logret_20*h/20", "registry unreachable"
    )


def test_scores_match_the_labels_once_the_horizon_has_passed(run_job, data_root, registry, alerts):
    start, end = "2024-05-20", "2024-06-14"  # 19 sessions: predictions of the first 14 mature
    result = _serve(run_job, data_root, registry, alerts, start, end)
    assert result.success
    days = sessions(start, end)
    scores = _read(data_root, "prediction_scores", start, end).sort("date")
    horizon = int(scores["horizon"][0])
    assert scores.height == len(days) - horizon
    # every row matured exactly `horizon` sessions after its prediction date
    for pred_day, matured in scores.select("prediction_date", "date").iter_rows():
        assert days.index(matured) - days.index(pred_day) == horizon
    # the realised returns behind the scores are the labels: recompute IC from them
    preds = _batch(data_root, start, end)
    labels = _read(data_root, "labels", start, end)
    joined = preds.join(labels, on=["ticker", "date"])
    for row in scores.iter_rows(named=True):
        day = joined.filter(pl.col("date") == row["prediction_date"])
        y, r = day["y_pred"].to_numpy(), day[f"fwd_ret_{horizon}d"].to_numpy()
        assert row["n"] == len(TICKERS)
        assert row["ic"] == pytest.approx(np.corrcoef(y, r)[0, 1], abs=1e-9)
        inside = ((r >= day["y_lo"].to_numpy()) & (r <= day["y_hi"].to_numpy())).mean()
        assert row["coverage"] == pytest.approx(inside)
    # rolling 20 = mean of the daily figures so far (fewer than 20 dates here)
    assert scores["ic_20"][-1] == pytest.approx(scores["ic"].drop_nulls().mean())
    # each scoring session's materialization carries that session's figures (the UI plots them)
    mats = {m.partition: metadata_values(m) for m in materializations(result, "prediction_scores")}
    assert sorted(mats) == [d.isoformat() for d in days]
    for row in scores.iter_rows(named=True):
        meta = mats[row["date"].isoformat()]
        assert meta["prediction_date"] == row["prediction_date"].isoformat()
        assert meta["matured_prediction_dates"] == 1
        for figure in ("ic", "rank_ic", "hit_rate", "coverage", "ic_20"):
            assert meta[figure] == pytest.approx(row[figure]), figure
    assert len({mats[r["date"].isoformat()]["ic"] for r in scores.iter_rows(named=True)}) > 1
    for day in days[:horizon]:  # nothing matured yet on the first sessions
        assert mats[day.isoformat()]["matured_prediction_dates"] == 0
        assert "ic" not in mats[day.isoformat()]
