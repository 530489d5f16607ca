"""The modeling assets: ``training_set`` and ``return_model`` (train, register, verify, promote).

``training_set`` (unpartitioned, one Parquet file) joins every materialized ``features`` partition
to its ``fwd_ret_{horizon}d`` label and tags each row with an explicit train / valid / test segment
in time, with an embargo of at least the label horizon between segments (no label window crosses a
segment boundary: no look-ahead). ``return_model`` fits the configured sklearn Pipeline on the
train rows, runs walk-forward CV inside them, scores model and naive baselines on valid and test,
and logs everything to MLflow (config, per-fold and overall metrics, feature list, data version,
git commit, Dagster run id, model with signature and input example in the skops format, a
predicted-vs-realised plot, the validation residuals that calibrate the serving intervals and
the feature reference of the serving drift check).
Before any alias moves, a blocking check reloads the registered version by URI and requires it to
reproduce the fitted pipeline's predictions exactly; only then is the challenger compared with the
current champion on the same held-out test period and promoted if it wins by the margin.
"""

import datetime as dt
import hashlib
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager
from alphadag.features import FEATURE_COLUMNS
from alphadag.market.storage import PartitionStore
from alphadag.models import (
    ModelSpec,
    Segments,
    build_training_set,
    evaluate_predictions,
    fit_and_evaluate,
    flatten_metrics,
    horizon_of,
    make_segments,
    predict,
    walk_forward_cv,
)
from alphadag.models.drift import psi_reference
from alphadag.models.serving import CALIBRATION_ARTIFACT, DRIFT_REFERENCE_ARTIFACT

INPUT_EXAMPLE_ROWS = 5


class TrainingSetConfig(dg.Config):
    """Label horizon and the explicit segments in time (the embargo defaults to the horizon)."""

    horizon: int = Field(5, description="label horizon in sessions (fwd_ret_{horizon}d)")
    valid_frac: float = 0.15
    test_frac: float = 0.15
    embargo: int | None = Field(None, description="sessions between segments (>= horizon)")


class ReturnModelConfig(dg.Config):
    """The model part of the experiment: family, hyper-parameters, seed, CV and the gate."""

    family: str = Field("ridge", description="ridge | hgb | random_forest")
    params: dict[str, Any] = Field(default_factory=dict, description="estimator parameters")
    seed: int = 0
    cv_folds: int = Field(3, description="walk-forward folds inside the train segment (0: none)")
    promotion_margin: float = Field(0.0, description="test-metric gain needed to promote")
    gate_metric: str = Field("rank_ic_mean", description="test metric compared by the gate")


def _sessions(store: PartitionStore, dataset: str) -> set[dt.date]:
    """The session dates with a ``dataset`` partition file."""
    return {dt.date.fromisoformat(p.stem) for p in (store.root / dataset).glob("*/*.parquet")}


def data_version(frame: pl.DataFrame) -> str:
    """sha256 of ``frame``'s Parquet bytes (uncompressed, no statistics: stable across runs)."""
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="uncompressed", statistics=False)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def _label_of(training: pl.DataFrame) -> str:
    labels = [c for c in training.columns if c.startswith("fwd_ret_")]
    if len(labels) != 1:
        raise ValueError(f"training_set must carry exactly one label column, found {labels}")
    return labels[0]


@dg.asset(
    group_name="modeling",
    kinds={"polars", "parquet"},
    deps=["features", "labels"],
)
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    io_manager: dg.ResourceParam[ParquetPartitionIOManager],
) -> pl.DataFrame:
    """Features joined to ``fwd_ret_{horizon}d``, one row per (ticker, session), with ``segment``.

    Unpartitioned: rebuilt from every session that has both features and labels. Segments are
    consecutive date ranges (train < valid < test) separated by an embargo of at least
    ``horizon`` sessions, and a row whose label window reaches the next segment is dropped, so no
    training label looks into the evaluation periods.
    """
    store = io_manager.store
    days = sorted(_sessions(store, "features") & _sessions(store, "labels"))
    if not days:
        raise ValueError("no session has both features and labels: run daily_data_job first")
    segments = make_segments(
        days,
        horizon=config.horizon,
        valid_frac=config.valid_frac,
        test_frac=config.test_frac,
        embargo=config.embargo,
    )
    training = build_training_set(
        store.read("features", days),
        store.read("labels", days),
        horizon=config.horizon,
        segments=segments,
    )
    empty = [seg for seg in ("train", "valid", "test") if seg not in set(training["segment"])]
    if empty:
        raise ValueError(
            f"segment(s) {empty} of the training set have no row with an observed "
            f"fwd_ret_{config.horizon}d label ({segments.to_dict()}): materialize more sessions, "
            "or lower horizon or raise valid_frac / test_frac"
        )
    context.add_output_metadata(
        {
            "horizon": config.horizon,
            "embargo_sessions": config.embargo if config.embargo is not None else config.horizon,
            "segments": segments.to_dict(),
            "rows_per_segment": dict(training.group_by("segment").len().sort("segment").rows()),
            "tickers": training.get_column("ticker").n_unique(),
            "sessions": f"{days[0]}..{days[-1]}",
            "data_version": data_version(training),
        }
    )
    return training


@dg.asset(
    group_name="modeling",
    kinds={"sklearn", "mlflow"},
    deps=["features", "labels"],
    check_specs=[
        dg.AssetCheckSpec(
            "return_model_reloads",
            asset="return_model",
            blocking=True,
            description="The registered version, loaded back by models:/<name>/<version>, "
            "reproduces the fitted pipeline's predictions on the input example exactly; checked "
            "before the promotion gate, so a failure moves no alias.",
        )
    ],
)
def return_model(
    context: dg.AssetExecutionContext,
    config: ReturnModelConfig,
    mlflow: MlflowResource,
    training_set: pl.DataFrame,
):
    """Cross-sectional return model fitted on the ``training_set``'s train rows, in MLflow.

    Unpartitioned. Walk-forward CV runs inside the train segment only; valid and test are
    scored once, model and naive baselines side by side. The registered version is tagged with
    ``alphadag.trained_through`` (the last date any training label reads), so a backtest can
    use only models whose training ended before each date.
    """
    from alphadag.models import registry  # mlflow takes seconds to import

    spec = ModelSpec(config.family, config.params, seed=config.seed)  # fails before the fit
    training = training_set
    label = _label_of(training)
    horizon = horizon_of(label)
    segments = Segments.of_training_set(training)
    result = fit_and_evaluate(training, spec, horizon=horizon, feature_columns=FEATURE_COLUMNS)
    folds = (
        walk_forward_cv(
            training, spec, FEATURE_COLUMNS, label, n_splits=config.cv_folds, embargo=horizon
        )
        if config.cv_folds
        else []
    )
    test = training.filter(pl.col("segment") == "test")
    valid = training.filter(pl.col("segment") == "valid")
    example = test.head(INPUT_EXAMPLE_ROWS).select(FEATURE_COLUMNS)
    version = data_version(training)
    trained_through = training.filter(pl.col("segment") == "train")["label_end_date"].max()
    cv_metrics = {
        f"cv_model_{m}_mean": float(np.nanmean([f.metrics["model"][m] for f in folds]))
        for m in ("ic_mean", "rank_ic_mean", "rmse")
        if folds
    }
    with tempfile.TemporaryDirectory() as tmp:
        from alphadag.models.plots import predicted_vs_realised_png

        plot = predicted_vs_realised_png(
            test[label].to_numpy(),
            predict(result.pipeline, test, FEATURE_COLUMNS),
            Path(tmp) / "predicted_vs_realised.png",
            title=f"test {segments.test_start}..{segments.test_end}: realised vs predicted",
        )
        calibration = Path(tmp) / Path(CALIBRATION_ARTIFACT).name
        _calibration_frame(
            valid, predict(result.pipeline, valid, FEATURE_COLUMNS), label
        ).write_parquet(calibration)
        reference = Path(tmp) / Path(DRIFT_REFERENCE_ARTIFACT).name
        psi_reference(training.filter(pl.col("segment") == "train"), FEATURE_COLUMNS).write_parquet(
            reference
        )
        registered = mlflow.log_and_register(
            pipeline=result.pipeline,
            input_example=example,
            metrics={
                **flatten_metrics(result.metrics["valid"], prefix="valid_"),
                **flatten_metrics(result.metrics["test"], prefix="test_"),
                **cv_metrics,
            },
            step_metrics=[flatten_metrics(f.metrics, prefix="cv_") for f in folds],
            artifacts={
                "plots": plot,
                str(Path(CALIBRATION_ARTIFACT).parent): calibration,
                str(Path(DRIFT_REFERENCE_ARTIFACT).parent): reference,
            },
            params={
                **config.model_dump(exclude={"params"}),
                "params": json.dumps(spec.resolved_params(), sort_keys=True),
                "horizon": horizon,
                "feature_columns": ",".join(FEATURE_COLUMNS),
                "data_version": version,
                **{f"segment_{k}": v for k, v in segments.to_dict().items()},
                "cv_splits": json.dumps(
                    [
                        [str(f.split.train_end), str(f.split.test_start), str(f.split.test_end)]
                        for f in folds
                    ]
                ),
            },
            tags={"dagster.run_id": context.run_id, "alphadag.data_version": version},
            version_tags={
                "alphadag.trained_through": trained_through.isoformat(),
                "alphadag.horizon": str(horizon),
                "alphadag.test_start": segments.test_start.isoformat(),
                "alphadag.data_version": version,
            },
        )
    reloaded = registry.load_model(
        registered.model_uri,
        tracking_uri=mlflow.tracking_uri,
        registry_uri=mlflow.resolved_registry_uri,
    )
    expected = predict(result.pipeline, example, FEATURE_COLUMNS)
    got = predict(reloaded, example, FEATURE_COLUMNS)
    reproduces = bool(np.array_equal(expected, got))
    yield dg.AssetCheckResult(
        check_name="return_model_reloads",
        passed=reproduces,
        metadata={"model_uri": registered.model_uri, "rows": example.height},
    )
    if not reproduces:
        raise dg.Failure(f"{registered.model_uri} does not reproduce its predictions; not promoted")

    client = mlflow.client()
    champion = registry.versions_by_alias(client, mlflow.model_name).get(registry.ALIAS_CHAMPION)
    champion_score = None
    if champion is not None:
        model = registry.load_model(
            f"models:/{mlflow.model_name}/{champion}",
            tracking_uri=mlflow.tracking_uri,
            registry_uri=mlflow.resolved_registry_uri,
        )
        scored = evaluate_predictions(
            test, predict(model, test, FEATURE_COLUMNS), label=result.label, horizon=horizon
        )
        champion_score = scored["model"][config.gate_metric]
    test_metrics = result.metrics["test"]
    decision = registry.promote_if_better(
        client,
        mlflow.model_name,
        challenger_version=registered.version,
        challenger_score=test_metrics["model"][config.gate_metric],
        champion_score=champion_score,
        margin=config.promotion_margin,
    )
    yield dg.MaterializeResult(
        metadata={
            "mlflow_run_id": registered.run_id,
            "model_version": registered.version,
            "model_uri": registered.model_uri,
            "decision": "promoted" if decision.promoted else "refused",
            "reason": decision.reason,
            "champion_version": champion if champion is not None else "",
            "champion_test_score": champion_score if champion_score is not None else "",
            "gate_metric": f"test_{config.gate_metric}",
            "test_ic_mean": test_metrics["model"]["ic_mean"],
            "test_rank_ic_mean": test_metrics["model"]["rank_ic_mean"],
            **{
                f"{b}_test_rank_ic_mean": test_metrics[b]["rank_ic_mean"]
                for b in test_metrics
                if b != "model"
            },
            **{k: v for k, v in cv_metrics.items() if math.isfinite(v)},
            "cv_folds": len(folds),
            "trained_through": trained_through.isoformat(),
            "data_version": version,
            "segments": segments.to_dict(),
            "rows_per_segment": dict(training.group_by("segment").len().sort("segment").rows()),
            "horizon": horizon,
            "mlflow_run_url": dg.MetadataValue.url(mlflow.ui_url(registered.run_id)),
            "model_version_url": dg.MetadataValue.url(mlflow.model_version_url(registered.version)),
        }
    )


def _calibration_frame(valid: pl.DataFrame, y_pred: np.ndarray, label: str) -> pl.DataFrame:
    """Validation residuals with the volatility scale known at t (``rvol_20`` per horizon)."""
    horizon = horizon_of(label)
    return valid.select(
        "ticker",
        "date",
        pl.col(label).alias("y_true"),
        pl.Series("y_pred", y_pred),
        (pl.col("rvol_20") * math.sqrt(horizon / 252.0)).alias("scale"),
    ).with_columns((pl.col("y_true") - pl.col("y_pred")).alias("residual"))
