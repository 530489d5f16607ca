"""The ``return_model`` asset: train, register, verify and (maybe) promote the return model.

Grain: one registered MLflow model version per materialization; unpartitioned. It reads every
``features`` and ``labels`` partition materialized so far (through the Parquet IO manager's store:
the IO manager itself writes partitioned outputs only), joins them into the training set with
explicit train / valid / test segments and an embargo of at least the label horizon (no label
window crosses a segment boundary: no look-ahead), fits the configured model and logs it. Before
any alias moves, a blocking check reloads the registered version by URI and requires it to
reproduce the fitted pipeline's predictions exactly; only then is the challenger compared with the
current champion on the same held-out test period and promoted if it wins by the margin.
"""

import datetime as dt
import hashlib
import io
import json
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
    build_training_set,
    evaluate_predictions,
    fit_and_evaluate,
    flatten_metrics,
    make_segments,
    predict,
)

INPUT_EXAMPLE_ROWS = 5


class ReturnModelConfig(dg.Config):
    """The experiment as data: model, label horizon, segments, seed and the promotion gate."""

    family: str = Field("ridge", description="ridge | hgb | random_forest")
    params: dict[str, Any] = Field(default_factory=dict, description="estimator parameters")
    horizon: int = Field(5, description="label horizon in sessions (fwd_ret_{horizon}d)")
    valid_frac: float = 0.15
    test_frac: float = 0.15
    seed: int = 0
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
    io_manager: dg.ResourceParam[ParquetPartitionIOManager],
):
    """Cross-sectional return model trained on all materialized sessions, registered in MLflow.

    Unpartitioned. Segments are consecutive date ranges (train < valid < test) separated by an
    embargo of ``horizon`` sessions, so no training label looks into the evaluation periods.
    """
    from alphadag.models import registry  # mlflow takes seconds to import

    spec = ModelSpec(config.family, config.params, seed=config.seed)  # fails before any I/O
    store = io_manager.store
    days = sorted(_sessions(store, "features") & _sessions(store, "labels"))
    if not days:
        raise ValueError("no session has both features and labels: run daily_data_job first")
    segments = make_segments(
        days, horizon=config.horizon, valid_frac=config.valid_frac, test_frac=config.test_frac
    )
    features, labels = store.read("features", days), store.read("labels", days)
    training = build_training_set(features, labels, horizon=config.horizon, segments=segments)
    result = fit_and_evaluate(
        training, spec, horizon=config.horizon, feature_columns=FEATURE_COLUMNS
    )
    test = training.filter(pl.col("segment") == "test")
    example = test.head(INPUT_EXAMPLE_ROWS).select(FEATURE_COLUMNS)
    version = data_version(training)
    registered = mlflow.log_and_register(
        pipeline=result.pipeline,
        input_example=example,
        metrics={
            **flatten_metrics(result.metrics["valid"], prefix="valid_"),
            **flatten_metrics(result.metrics["test"], prefix="test_"),
        },
        params={
            **config.model_dump(exclude={"params"}),
            "params": json.dumps(spec.resolved_params(), sort_keys=True),
            "feature_columns": ",".join(FEATURE_COLUMNS),
            "data_version": version,
            "sessions": f"{days[0]}..{days[-1]}",
        },
        tags={"dagster.run_id": context.run_id, "alphadag.data_version": version},
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
            test, predict(model, test, FEATURE_COLUMNS), label=result.label, horizon=config.horizon
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
            "data_version": version,
            "segments": segments.to_dict(),
            "rows_per_segment": dict(training.group_by("segment").len().sort("segment").rows()),
            "embargo_sessions": config.horizon,
            "mlflow_run_url": dg.MetadataValue.url(mlflow.ui_url(registered.run_id)),
            "model_version_url": dg.MetadataValue.url(mlflow.model_version_url(registered.version)),
        }
    )
