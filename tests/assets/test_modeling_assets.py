"""The ``return_model`` asset end to end against a real (temporary SQLite) MLflow store.

One ranged run of ``daily_data_job`` (module fixture) over 120 sessions of 2024 on an eight-ticker
synthetic source writes the features and labels. Each test then materializes ``return_model``
into its own fresh MLflow store and reads back what the registry recorded: versions, aliases,
promotion tags, run params, metrics and tags.
"""

from pathlib import Path

import dagster as dg
import pytest
from run_results import checks_by_name as _checks
from run_results import materializations as _materializations
from run_results import metadata_values as _meta

from alphadag.defs.assets.modeling import TrainingSetConfig, return_model, training_set
from alphadag.defs.assets.oos import ModelExperimentConfig, oos_predictions
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager
from alphadag.market.calendar import sessions

TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH")
RANGE = ("2024-01-02", "2024-06-24")  # 120 sessions
MODEL = "alphadag-returns"
TAG = "alphadag.promotion."


@pytest.fixture(scope="module")
def data_root(run_job, market, tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("modeling_data"))
    assert len(sessions(*RANGE)) == 120
    result = run_job(
        "daily_data_job", root, *RANGE, market_data=market(tickers=TICKERS, end="2024-07-31")
    )
    assert result.success
    return root


@pytest.fixture()
def mlflow_store(tmp_path) -> MlflowResource:
    return MlflowResource(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_location=str(tmp_path / "art")
    )


WALK_FORWARD = {"refit_every": 20, "min_train_sessions": 30}
"""120 sessions: a short walk-forward so the out-of-sample series covers most of them."""


def _train(instance, data_root, store: MlflowResource, **config) -> dg.ExecuteInProcessResult:
    """Materialize ``training_set``, ``oos_predictions`` and ``return_model`` (config keys routed
    to their asset; the model spec goes to both ``oos_predictions`` and ``return_model``)."""
    ts_keys = set(TrainingSetConfig.model_fields)
    model = {**WALK_FORWARD, **{k: v for k, v in config.items() if k not in ts_keys}}
    return dg.materialize(
        [training_set, oos_predictions, return_model],
        instance=instance,
        resources={"io_manager": ParquetPartitionIOManager(data_root=data_root), "mlflow": store},
        run_config={
            "ops": {
                "training_set": {"config": {k: v for k, v in config.items() if k in ts_keys}},
                "oos_predictions": {
                    "config": {
                        k: v for k, v in model.items() if k in ModelExperimentConfig.model_fields
                    }
                },
                "return_model": {"config": model},
            }
        },
        raise_on_error=False,
    )


def _version(store: MlflowResource, version: int):
    client = store.client()
    mv = client.get_model_version(MODEL, str(version))
    return mv, client.get_run(mv.run_id).data


def _aliases(store: MlflowResource) -> dict[str, int]:
    from alphadag.models.registry import versions_by_alias

    return versions_by_alias(store.client(), MODEL)


def test_first_training_registers_and_is_gated_then_same_config_reproduces(
    instance, data_root, mlflow_store, tmp_path
):
    first = _train(instance, data_root, mlflow_store)
    assert first.success
    check = _checks(first)["return_model_reloads"]
    assert check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    (mat,) = _materializations(first, "return_model")
    meta = _meta(mat)
    # random drifts on eight tickers: no out-of-sample evidence against the baselines
    assert meta["model_version"] == 1 and meta["decision"] == "refused"
    assert meta["reason"].endswith("no champion, the baseline keeps serving")
    assert {c["rival"] for c in meta["gate"]} == {"baseline_momentum", "baseline_reversal"}
    assert meta["gate_before"] == meta["segments"]["test_start"] and meta["n_models_tried"] == 1
    assert meta["mlflow_run_url"].endswith(f"/runs/{meta['mlflow_run_id']}")
    assert set(meta["rows_per_segment"]) == {"train", "valid", "test"}
    assert _aliases(mlflow_store) == {"challenger": 1}
    mv1, run1 = _version(mlflow_store, 1)
    assert mv1.tags[TAG + "decision"] == "refused"
    # provenance: the commit, the date the training labels end, the artifacts and the folds
    assert len(run1.tags["mlflow.source.git.commit"]) == 40
    trained_through = mv1.tags["alphadag.trained_through"]
    assert trained_through < meta["segments"]["valid_start"] <= mv1.tags["alphadag.test_start"]
    client = mlflow_store.client()
    folds = client.get_metric_history(meta["mlflow_run_id"], "cv/model/rank_ic_mean")
    assert [m.step for m in folds] == [0, 1, 2] and meta["cv_folds"] == 3
    logged = {
        a.path
        for d in ("plots", "calibration")
        for a in client.list_artifacts(meta["mlflow_run_id"], d)
    }
    assert logged == {"plots/predicted_vs_realised.png", "calibration/valid_residuals.parquet"}
    from alphadag.models.registry import download_model

    local = download_model(
        meta["model_uri"], tmp_path / "dl", tracking_uri=mlflow_store.tracking_uri
    )
    saved = {p.name for p in Path(local).iterdir()}
    assert {"MLmodel", "input_example.json"} <= saved
    assert run1.tags["dagster.run_id"] == first.run_id
    assert run1.params["family"] == "ridge" and run1.params["horizon"] == "5"
    assert run1.params["segment_test_end"] == meta["segments"]["test_end"]
    assert len(run1.params["data_version"]) == 64
    assert run1.params["feature_columns"].count(",") >= 10
    assert run1.metrics["test/model/rank_ic_mean"] == meta["test_rank_ic_mean"]
    # a readable run name and the training rows as an MLflow dataset input (by data version)
    import re

    full = client.get_run(meta["mlflow_run_id"])
    assert re.fullmatch(r"ridge h5 \d{4}-\d\d-\d\dT\d\d:\d\d", full.info.run_name)
    (dataset,) = full.inputs.dataset_inputs
    assert dataset.dataset.digest == run1.params["data_version"][:32]
    assert dataset.dataset.name == f"training_set@{run1.params['data_version'][:12]}"
    assert [t.value for t in dataset.tags if t.key == "mlflow.data.context"] == ["training"]

    second = _train(instance, data_root, mlflow_store)
    assert second.success
    mv2, run2 = _version(mlflow_store, 2)
    # same data, same config, same seed: same data version and the same test metrics
    assert run2.params["data_version"] == run1.params["data_version"]
    test_metrics = {k: v for k, v in run1.metrics.items() if k.startswith("test/")}
    assert test_metrics
    # exactly equal (baseline_zero has no cross-section to rank: NaN on both sides)
    assert {k: run2.metrics[k] for k in test_metrics} == pytest.approx(
        test_metrics, rel=0, abs=0, nan_ok=True
    )
    # the same out-of-sample series: the same gate numbers and decision; two models tried
    gate_metrics = {k: v for k, v in run1.metrics.items() if k.startswith("gate/")}
    assert gate_metrics["gate/n_models_tried"] == 1.0
    assert run2.metrics["gate/n_models_tried"] == 2.0
    assert {k: run2.metrics[k] for k in gate_metrics if k != "gate/n_models_tried"} == {
        k: v for k, v in gate_metrics.items() if k != "gate/n_models_tried"
    }
    assert mv2.tags[TAG + "decision"] == "refused"
    assert _meta(_materializations(second, "return_model")[0])["decision"] == "refused"
    assert _aliases(mlflow_store) == {"challenger": 2}


def test_failures_before_promotion_and_a_refused_challenger_leave_the_champion(
    instance, data_root, mlflow_store
):
    assert _train(instance, data_root, mlflow_store).success
    before = _aliases(mlflow_store)
    assert before == {"challenger": 1}

    for bad in ({"family": "xgboost"}, {"params": {"no_such_param": 1}}):
        failed = _train(instance, data_root, mlflow_store, **bad)
        assert not failed.success, bad
        assert _materializations(failed, "return_model") == []
        assert _aliases(mlflow_store) == before, bad
    assert len(mlflow_store.client().search_model_versions(f"name='{MODEL}'")) == 1

    worse = _train(
        instance, data_root, mlflow_store, params={"alpha": 1e4}, seed=3, promotion_margin=1e6
    )
    assert worse.success
    assert _checks(worse)["return_model_reloads"].passed
    mv2, _ = _version(mlflow_store, 2)
    assert mv2.tags[TAG + "decision"] == "refused"
    assert "is not above the margin 1e+06" in mv2.tags[TAG + "reason"]
    assert mv2.tags[TAG + "champion_version"] == ""
    assert _aliases(mlflow_store) == {"challenger": 2}


def test_a_version_that_does_not_reload_identically_is_never_promoted(
    instance, data_root, mlflow_store, monkeypatch
):
    from alphadag.models import registry

    real_load = registry.load_pipeline_dir  # what the registry's one loader deserialises with

    def drifted_load(local, model_uri=""):
        model = real_load(local, model_uri)
        model[-1].intercept_ = model[-1].intercept_ + 1e-9  # a reload that is not bit-exact
        return model

    monkeypatch.setattr(registry, "load_pipeline_dir", drifted_load)
    result = _train(instance, data_root, mlflow_store)
    assert not result.success
    check = _checks(result)["return_model_reloads"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert _meta(check)["model_uri"] == f"models:/{MODEL}/1"
    assert _materializations(result, "return_model") == []
    mv1, _ = _version(mlflow_store, 1)
    assert not any(k.startswith(TAG) for k in mv1.tags)  # the gate never ran
    assert _aliases(mlflow_store) == {"challenger": 1}  # registered, never champion


def test_training_set_is_one_file_with_embargoed_segments(instance, data_root, mlflow_store):
    import polars as pl

    from alphadag.market.storage import PartitionStore

    # 120 sessions: the 18 test sessions are the last ones, whose 20-session labels are unknown
    failed = _train(instance, data_root, mlflow_store, horizon=20, cv_folds=0)
    assert not failed.success and _materializations(failed, "training_set") == []
    (failure,) = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "['test']" in failure.event_specific_data.error.cause.message

    config = {"horizon": 1, "embargo": 3, "valid_frac": 0.2, "cv_folds": 0}
    assert _train(instance, data_root, mlflow_store, **config).success
    frame = PartitionStore(data_root).read_table("training_set")
    assert [c for c in frame.columns if c.startswith("fwd_ret_")] == ["fwd_ret_1d"]
    starts = frame.group_by("segment").agg(pl.col("date").min()).rows()
    start = dict(starts)
    for seg, nxt in (("train", "valid"), ("valid", "test")):
        ends = frame.filter(pl.col("segment") == seg)["label_end_date"]
        assert ends.max() < start[nxt], seg  # no label window reaches the next segment
    # the configured embargo of 3 sessions lies between the segments
    days = sessions(*RANGE)
    train_last = frame.filter(pl.col("segment") == "train")["date"].max()
    assert days.index(start["valid"]) - days.index(train_last) == 3 + 1


def test_train_job_runs_weekly_after_the_close(defs):
    schedule = defs.resolve_schedule_def("train_job_weekly_schedule")
    assert schedule.job_name == "train_job"
    assert schedule.cron_schedule == "0 6 * * 6"
    assert schedule.execution_timezone == "America/New_York"
    assert defs.resolve_job_def("train_job").partitions_def is None
