"""The modeling assets: ``training_set`` and ``return_model`` (train, register, verify, promote).

``training_set`` (unpartitioned, one Parquet file) joins every materialized ``features`` partition
to its ``fwd_ret_{horizon}d`` label and tags each row with an explicit train / valid / test segment
in time, with an embargo of at least the label horizon between segments (no label window crosses a
segment boundary: no look-ahead). ``return_model`` fits the configured sklearn Pipeline on the
train rows, runs walk-forward CV inside them, scores model and naive baselines on valid and test
(once per version: reported, never used to choose; a family with randomness is also fitted with
three consecutive seeds and its valid / test rank IC reported as mean +- std over them), and logs everything to MLflow (config,
per-fold and overall metrics, feature list, data version, git commit, Dagster run id, model with
signature and input example in the skops format, a predicted-vs-realised plot, the validation
residuals that calibrate the serving intervals and the feature reference of the drift check).

**The gate** reads ``oos_predictions`` (the spec's walk-forward series, see
:mod:`alphadag.defs.assets.oos`): on the sessions before the test segment the challenger must
beat the champion (whose series is recomputed from its logged spec with the same walk-forward
settings) and each naive baseline by more than ``promotion_margin`` and ``promotion_k`` Newey-West
standard errors of the per-date rank-IC difference (:mod:`alphadag.models.gate`). With no
champion the baselines alone decide; a refused first model leaves the baseline serving. How many
models were tried for the name and every comparison's gain, se, t and dates go to the metadata,
the MLflow run and the version tags. **On promotion** the spec is refitted on every labelled row
and that refit (``alphadag.kind = refit``, ``alphadag.trained_through`` = the last labelled
session) becomes ``champion``; ``previous`` keeps the old champion and the challenger keeps its
version and tags. **When the gate refuses and a champion exists**, the champion's own spec (read
from its logged params) is refitted on every labelled row, registered as a refit of the champion
and made ``champion`` (``previous``: the old one), so the served model is never more than one
retrain older than the data ("champion refreshed (spec unchanged), challenger refused: ...").
With no champion a refusal moves nothing (the baseline serves). Before any alias moves, a
blocking check reloads each registered version through the registry's one loader
(``ModelRegistry.load``, signature checked) and requires it to reproduce the fitted pipeline's
predictions exactly.

The work is :func:`alphadag.models.training.train_and_register` (a typed
:class:`~alphadag.models.training.TrainOutcome`); ``return_model`` is the glue. MLflow runs are
named ``<family> h<horizon> <UTC minute>`` (a refit adds ``refit of v<N>``), metrics are
slash-grouped (``test/model/rank_ic_mean``, ``cv/model/ic_mean`` per fold,
``gate/baseline_momentum/t``, ``seeds/test/rank_ic_std``) and the rows the model was fitted on
are logged as an MLflow dataset input named and digested by their data version.
"""

import dagster as dg
import polars as pl
from pydantic import Field

from alphadag.defs.assets.oos import ModelExperimentConfig
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager
from alphadag.models import build_training_set, make_segments
from alphadag.models.training import data_version
from alphadag.settings import DEFAULT_HORIZON

__all__ = ["ReturnModelConfig", "TrainingSetConfig", "data_version", "return_model", "training_set"]


class TrainingSetConfig(dg.Config):
    """Label horizon and the explicit segments in time (the embargo defaults to the horizon)."""

    horizon: int = Field(
        DEFAULT_HORIZON, description="label horizon in sessions (fwd_ret_{horizon}d)"
    )
    valid_frac: float = 0.15
    test_frac: float = 0.15
    embargo: int | None = Field(None, description="sessions between segments (>= horizon)")


class ReturnModelConfig(ModelExperimentConfig):
    """The model part of the experiment (spec and walk-forward, as oos_predictions), CV
    inside the train segment and the gate (out-of-sample rank IC, before the test segment)."""

    cv_folds: int = Field(3, description="walk-forward folds inside the train segment (0: none)")
    promotion_margin: float = Field(
        0.0, description="out-of-sample rank-IC gain over each rival needed to promote"
    )
    promotion_k: float = Field(
        2.0, description="the gain must also exceed k Newey-West standard errors"
    )


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
    """Features joined to fwd_ret_{horizon}d, one row per (ticker, session), with a segment.

    Unpartitioned: rebuilt from every session that has both features and labels. Segments are
    consecutive date ranges (train < valid < test) separated by an embargo of at least
    horizon sessions, and a row whose label window reaches the next segment is dropped, so no
    training label looks into the evaluation periods.
    """
    store = io_manager.store
    days = sorted(set(store.sessions("features")) & set(store.sessions("labels")))
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
            description="The registered version (and, on promotion, its refit on every labelled "
            "row), loaded back by models:/<name>/<version>, reproduces the fitted pipeline's "
            "predictions on the input example exactly; checked before any alias moves.",
        )
    ],
)
def return_model(
    context: dg.AssetExecutionContext,
    config: ReturnModelConfig,
    mlflow: MlflowResource,
    training_set: pl.DataFrame,
    oos_predictions: pl.DataFrame,
):
    """Cross-sectional return model in MLflow, promoted only on out-of-sample evidence.

    Glue: alphadag.models.training.train_and_register fits, registers, gates on
    oos_predictions, refits and reload-checks through the registry (MlflowResource.registry);
    the asset reports the check and the metadata.
    """
    from alphadag.models.training import train_and_register  # mlflow-heavy path, imported late

    _check_experiment(oos_predictions, config)
    outcome = train_and_register(
        training_set,
        oos_predictions,
        spec=config.spec(),
        settings=config.walk_forward_settings(),
        cv_folds=config.cv_folds,
        margin=config.promotion_margin,
        k=config.promotion_k,
        registry=mlflow.registry(),
        config_params=config.model_dump(exclude={"params"}),
        run_tags={"dagster.run_id": context.run.run_id},
    )
    challenger = outcome.challenger
    yield dg.AssetCheckResult(
        check_name="return_model_reloads",
        passed=outcome.ok,
        metadata={"model_uri": challenger.model_uri, "reproduces": str(outcome.reproduces)},
    )
    if not outcome.ok:
        raise dg.Failure(f"{challenger.model_uri} does not reproduce its predictions; not promoted")
    meta = outcome.metadata()
    yield dg.MaterializeResult(
        metadata={
            **meta,
            "gate": dg.MetadataValue.json(meta["gate"]),
            "oos_rank_ic": dg.MetadataValue.json(meta["oos_rank_ic"]),
            "mlflow_run_url": dg.MetadataValue.url(mlflow.ui_url(challenger.run_id)),
            "model_version_url": dg.MetadataValue.url(mlflow.model_version_url(challenger.version)),
        }
    )


def _check_experiment(oos: pl.DataFrame, config: ReturnModelConfig) -> None:
    """``oos_predictions`` must be the walk-forward of the spec ``return_model`` is configured with."""
    found = oos.get_column("experiment").unique().to_list() if "experiment" in oos.columns else []
    if found != [config.experiment()]:
        raise ValueError(
            "oos_predictions was computed for a different model spec or walk-forward settings "
            f"({found[:1]}) than return_model's ({config.experiment()}): give both assets the "
            "same family, params, seed, refit_every, window, embargo and min_train_sessions"
        )
