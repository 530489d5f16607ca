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
With no champion a refusal moves nothing (the baseline serves). Before any alias moves, a blocking check reloads each registered version by URI
and requires it to reproduce the fitted pipeline's predictions exactly.
"""

import datetime as dt
import hashlib
import io
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from alphadag.defs.assets.oos import ModelExperimentConfig, label_of, oos_series
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager
from alphadag.features import FEATURE_COLUMNS
from alphadag.features.model_inputs import model_inputs
from alphadag.market.storage import PartitionStore
from alphadag.models import (
    ModelSpec,
    Segments,
    build_training_set,
    fit_and_evaluate,
    fit_pipeline,
    flatten_metrics,
    horizon_of,
    make_segments,
    predict,
    walk_forward_cv,
)
from alphadag.models.drift import psi_reference
from alphadag.models.gate import flat_numbers, gate
from alphadag.models.oos import BASELINE_COLUMNS
from alphadag.models.serving import CALIBRATION_ARTIFACT, DRIFT_REFERENCE_ARTIFACT
from alphadag.models.training import SeedSpread, seed_spread

INPUT_EXAMPLE_ROWS = 5


class TrainingSetConfig(dg.Config):
    """Label horizon and the explicit segments in time (the embargo defaults to the horizon)."""

    horizon: int = Field(5, description="label horizon in sessions (fwd_ret_{horizon}d)")
    valid_frac: float = 0.15
    test_frac: float = 0.15
    embargo: int | None = Field(None, description="sessions between segments (>= horizon)")


class ReturnModelConfig(ModelExperimentConfig):
    """The model part of the experiment (spec and walk-forward, as ``oos_predictions``), CV
    inside the train segment and the gate (out-of-sample rank IC, before the test segment)."""

    cv_folds: int = Field(3, description="walk-forward folds inside the train segment (0: none)")
    promotion_margin: float = Field(
        0.0, description="out-of-sample rank-IC gain over each rival needed to promote"
    )
    promotion_k: float = Field(
        2.0, description="the gain must also exceed k Newey-West standard errors"
    )


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

    Unpartitioned. The challenger is fitted on the train rows (walk-forward CV inside them);
    valid and test are scored once and reported. The gate compares the challenger's
    ``oos_predictions`` with the champion's walk-forward series (recomputed from its logged
    spec) and with the baselines on the sessions before the test segment, by a paired HAC test
    on per-date rank-IC differences (:mod:`alphadag.models.gate`). On promotion the spec is
    refitted on every labelled row and that refit, tagged ``alphadag.trained_through`` (the last
    date its labels read), becomes ``champion``.
    """
    from alphadag.models import registry  # mlflow takes seconds to import

    spec = config.spec()  # fails before the fit
    settings = config.walk_forward_settings()
    _check_experiment(oos_predictions, config)
    training = training_set
    label = label_of(training)
    horizon = horizon_of(label)
    segments = Segments.of_training_set(training)
    result = fit_and_evaluate(training, spec, horizon=horizon, feature_columns=spec.feature_columns)
    folds = _cv_folds(training, spec, label, horizon, config.cv_folds)
    spread = seed_spread(
        training, spec, horizon=horizon, feature_columns=spec.feature_columns, first=result
    )
    seeds = _seed_report(spec, spread)
    client = mlflow.client()
    champion = registry.versions_by_alias(client, mlflow.model_name).get(registry.ALIAS_CHAMPION)
    logged, champion_note = _champion_spec(client, mlflow, champion)
    champion_series = _champion_series(logged, training, settings, spec, oos_predictions)
    decision = gate(
        oos_predictions,
        baselines=BASELINE_COLUMNS,
        champion=champion_series,
        before=segments.test_start,
        horizon=horizon,
        margin=config.promotion_margin,
        k=config.promotion_k,
    )
    reason = decision.reason + (f" ({champion_note})" if champion_note else "")
    tried = registry.count_trials(client, mlflow.model_name) + 1
    gate_numbers = {**flat_numbers(decision), "gate/n_models_tried": float(tried)}
    registered, example = _log_challenger(
        context, mlflow, config, result, training, folds, segments, gate_numbers, reason, seeds
    )
    checked = {
        registered.version: _reproduces(registry, mlflow, registered, result.pipeline, example)
    }
    refit = None
    if decision.promoted and all(checked.values()):
        refit, pipeline, example = _log_refit(
            context,
            mlflow,
            training,
            spec,
            spec.feature_columns,
            _spec_params(config, horizon, data_version(training)),
            oos_predictions,
            refit_of=registered.version,
        )
        checked[refit.version] = _reproduces(registry, mlflow, refit, pipeline, example)
    elif logged is not None and champion_series is not None and all(checked.values()):
        # refused, but the champion's own spec is refitted through the last labelled session:
        # the served model is never more than one retrain older than the data
        reason = f"champion refreshed (spec unchanged), challenger {reason}"
        refit, pipeline, example = _log_refit(
            context,
            mlflow,
            training,
            logged.spec,
            logged.columns,
            {**logged.params, "data_version": data_version(training), "horizon": horizon},
            champion_series,
            refit_of=champion,
            note=reason,
        )
        checked[refit.version] = _reproduces(registry, mlflow, refit, pipeline, example)
    yield dg.AssetCheckResult(
        check_name="return_model_reloads",
        passed=all(checked.values()),
        metadata={"model_uri": registered.model_uri, "reproduces": str(checked), "rows": 5},
    )
    if not all(checked.values()):
        raise dg.Failure(f"{registered.model_uri} does not reproduce its predictions; not promoted")
    registry.apply_gate(
        client,
        mlflow.model_name,
        challenger_version=registered.version,
        promoted=decision.promoted,
        reason=reason,
        evidence={"n_models_tried": str(tried), **{k: repr(v) for k, v in gate_numbers.items()}},
        serve_version=None if refit is None else refit.version,
    )
    client.set_tag(registered.run_id, "alphadag.gate.outcome", reason[:5000])
    test = result.metrics["test"]
    yield dg.MaterializeResult(
        metadata={
            "mlflow_run_id": registered.run_id,
            "model_version": registered.version,
            "model_uri": registered.model_uri,
            "decision": "promoted" if decision.promoted else "refused",
            "reason": reason,
            "champion_refreshed": refit is not None and not decision.promoted,
            "gate": dg.MetadataValue.json([c.to_dict() for c in decision.comparisons]),
            "gate_before": decision.before.isoformat(),
            "n_models_tried": tried,
            "champion_version": refit.version if refit else (champion or ""),
            "previous_champion_version": champion if refit and champion is not None else "",
            "trained_through": _train_through(training),
            "champion_trained_through": _served_through(client, mlflow, refit, champion),
            "last_labelled_session": refit_through(training),
            "test_ic_mean": test["model"]["ic_mean"],
            "test_rank_ic_mean": test["model"]["rank_ic_mean"],
            **{f"{b}_test_rank_ic_mean": test[b]["rank_ic_mean"] for b in test if b != "model"},
            **seeds,
            "cv_folds": len(folds),
            "data_version": data_version(training),
            "segments": segments.to_dict(),
            "rows_per_segment": dict(training.group_by("segment").len().sort("segment").rows()),
            "horizon": horizon,
            "mlflow_run_url": dg.MetadataValue.url(mlflow.ui_url(registered.run_id)),
            "model_version_url": dg.MetadataValue.url(mlflow.model_version_url(registered.version)),
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


def _train_through(training: pl.DataFrame) -> str:
    return training.filter(pl.col("segment") == "train")["label_end_date"].max().isoformat()


def refit_through(training: pl.DataFrame) -> str:
    """The last session any label of the training set reads (what a full refit is trained through)."""
    return training["label_end_date"].max().isoformat()


def _served_through(client, mlflow, refit, champion) -> str:
    """``alphadag.trained_through`` of the version ``champion`` now points at ("" if none)."""
    version = refit.version if refit is not None else champion
    if version is None:
        return ""
    tags = client.get_model_version(mlflow.model_name, str(version)).tags or {}
    return tags.get("alphadag.trained_through", "")


def _cv_folds(training, spec, label, horizon, n_folds):
    if not n_folds:
        return []
    return walk_forward_cv(
        training, spec, spec.feature_columns, label, n_splits=n_folds, embargo=horizon
    )


@dataclass(frozen=True, slots=True)
class LoggedSpec:
    """A registered version's spec, input columns and logged run params."""

    version: int
    spec: ModelSpec
    columns: tuple[str, ...]
    params: dict[str, str]


# run params of a challenger that describe its evaluation, not its spec (not copied to a refit)
_EVALUATION_PARAMS = ("segment_", "cv_splits", "gate/", "refit_of", "refresh_reason")


def _champion_spec(client, mlflow, champion) -> tuple[LoggedSpec | None, str]:
    """The champion's spec from its logged params, and a note when it cannot be read."""
    if champion is None:
        return None, ""
    run = client.get_run(client.get_model_version(mlflow.model_name, str(champion)).run_id)
    params = run.data.params
    try:
        resolved = json.loads(params["params"])
        resolved.pop("random_state", None)
        # a version logged before feature sets existed was fitted on the raw feature columns
        feature_set = params.get("feature_set", "raw")
        spec = ModelSpec(
            params["family"], resolved, seed=int(params["seed"]), feature_set=feature_set
        )
        columns = tuple(params["feature_columns"].split(","))
    except (KeyError, ValueError, TypeError) as err:
        # no evidence against a champion that cannot be re-scored: the baselines still gate
        return None, f"champion version {champion} could not be re-scored: {err}"
    kept = {k: v for k, v in params.items() if not k.startswith(_EVALUATION_PARAMS)}
    return LoggedSpec(int(champion), spec, columns, kept), ""


def _champion_series(logged, training, settings, challenger, oos):
    """The champion's walk-forward series over ``training`` (``None`` without a champion)."""
    if logged is None:
        return None
    if (logged.spec.to_dict(), logged.columns) == (
        challenger.to_dict(),
        challenger.feature_columns,
    ):
        # the same spec on the same rows and settings: its walk-forward is the challenger's own
        # series (fits are deterministic), so it is not computed twice
        return oos
    return oos_series(training, logged.spec, settings, logged.columns)


def _reproduces(registry, mlflow, registered, pipeline, example: pl.DataFrame) -> bool:
    reloaded = registry.load_model(
        registered.model_uri,
        tracking_uri=mlflow.tracking_uri,
        registry_uri=mlflow.resolved_registry_uri,
    )
    columns = example.columns
    return bool(
        np.array_equal(predict(pipeline, example, columns), predict(reloaded, example, columns))
    )


def _spec_params(config, horizon: int, version: str) -> dict[str, Any]:
    spec = config.spec()
    return {
        **config.model_dump(exclude={"params"}),
        "params": json.dumps(spec.resolved_params(), sort_keys=True),
        "horizon": horizon,
        "feature_columns": ",".join(spec.feature_columns),
        "data_version": version,
    }


def _seed_report(spec: ModelSpec, spread: SeedSpread | None) -> dict[str, Any]:
    """Metadata of the seed spread: ``seeds`` and ``<segment>_rank_ic_seed_{mean,std}``."""
    if spread is None:
        return {"seeds": f"deterministic ({spec.family}): one fit, no seed spread"}
    return {
        "seeds": ",".join(map(str, spread.seeds)),
        **{
            f"{seg}_rank_ic_seed_{stat}": getattr(spread, stat)(seg)
            for seg in ("valid", "test")
            for stat in ("mean", "std")
        },
    }


def _log_challenger(
    context, mlflow, config, result, training, folds, segments, gate_numbers, reason, seeds
):
    """Log and register the challenger (fitted on train) with its scores and the gate's numbers."""
    label, horizon = result.label, horizon_of(result.label)
    test = training.filter(pl.col("segment") == "test")
    valid = training.filter(pl.col("segment") == "valid")
    columns = result.feature_columns
    example = model_inputs(test.head(INPUT_EXAMPLE_ROWS), columns)
    version = data_version(training)
    cv_metrics = {
        f"cv_model_{m}_mean": float(np.nanmean([f.metrics["model"][m] for f in folds]))
        for m in ("ic_mean", "rank_ic_mean", "rmse")
        if folds
    }
    with tempfile.TemporaryDirectory() as tmp:
        from alphadag.models.plots import predicted_vs_realised_png

        plot = predicted_vs_realised_png(
            test[label].to_numpy(),
            predict(result.pipeline, test, columns),
            Path(tmp) / "predicted_vs_realised.png",
            title=f"test {segments.test_start}..{segments.test_end}: realised vs predicted",
        )
        calibration = Path(tmp) / Path(CALIBRATION_ARTIFACT).name
        _calibration_frame(valid, predict(result.pipeline, valid, columns), label).write_parquet(
            calibration
        )
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
                **{k: v for k, v in cv_metrics.items() if math.isfinite(v)},
                **{k: v for k, v in gate_numbers.items() if math.isfinite(v)},
                **{
                    "seeds/" + k.replace("_rank_ic_seed_", "/rank_ic_"): v
                    for k, v in seeds.items()
                    if k != "seeds" and math.isfinite(v)
                },
            },
            step_metrics=[flatten_metrics(f.metrics, prefix="cv_") for f in folds],
            artifacts={
                "plots": plot,
                str(Path(CALIBRATION_ARTIFACT).parent): calibration,
                str(Path(DRIFT_REFERENCE_ARTIFACT).parent): reference,
            },
            params={
                **_spec_params(config, horizon, version),
                **{f"segment_{k}": v for k, v in segments.to_dict().items()},
                "cv_splits": json.dumps(
                    [
                        [str(f.split.train_end), str(f.split.test_start), str(f.split.test_end)]
                        for f in folds
                    ]
                ),
                "seeds": seeds["seeds"],
                "gate/decision": "promoted" if gate_numbers["gate/promoted"] else "refused",
                "gate/reason": reason[:6000],
            },
            tags={
                "dagster.run_id": context.run_id,
                "alphadag.data_version": version,
                "alphadag.n_models_tried": str(int(gate_numbers["gate/n_models_tried"])),
            },
            version_tags={
                "alphadag.trained_through": _train_through(training),
                "alphadag.horizon": str(horizon),
                "alphadag.test_start": segments.test_start.isoformat(),
                "alphadag.data_version": version,
                "alphadag.kind": "challenger",
            },
        )
    return registered, example


def _log_refit(
    context, mlflow, training, spec, columns, params, series, *, refit_of, note: str = ""
):
    """Refit ``spec`` on every labelled row and register it (no alias yet) as a served version.

    ``series`` is the spec's walk-forward series over ``training``: its out-of-sample residuals
    calibrate the refit's serving intervals. ``refit_of`` is the version refitted (the promoted
    challenger, or the champion refreshed when the gate refuses); ``note`` says why.
    """
    label = label_of(training)
    horizon = horizon_of(label)
    pipeline = fit_pipeline(training, spec, columns, label)
    example = model_inputs(training.tail(INPUT_EXAMPLE_ROWS), columns)
    version = data_version(training)
    rows = series.join(training.select("ticker", "date", "rvol_20"), on=["ticker", "date"])
    residuals = _calibration_frame(
        rows.rename({"y_true": label}).drop("y_pred"), rows["y_pred"].to_numpy(), label
    )
    with tempfile.TemporaryDirectory() as tmp:
        calibration = Path(tmp) / Path(CALIBRATION_ARTIFACT).name
        residuals.write_parquet(calibration)
        reference = Path(tmp) / Path(DRIFT_REFERENCE_ARTIFACT).name
        psi_reference(training, FEATURE_COLUMNS).write_parquet(reference)
        refit = mlflow.log_and_register(
            pipeline=pipeline,
            input_example=example,
            metrics={},
            artifacts={
                str(Path(CALIBRATION_ARTIFACT).parent): calibration,
                str(Path(DRIFT_REFERENCE_ARTIFACT).parent): reference,
            },
            params={
                **params,
                "refit_of": str(refit_of),
                **({"refresh_reason": note[:6000]} if note else {}),
            },
            tags={"dagster.run_id": context.run_id, "alphadag.data_version": version},
            version_tags={
                "alphadag.trained_through": refit_through(training),
                "alphadag.horizon": str(horizon),
                "alphadag.data_version": version,
                "alphadag.kind": "refit",
                "alphadag.refit_of": str(refit_of),
                **({"alphadag.refresh_reason": note[:5000]} if note else {}),
            },
            alias=None,
        )
    return refit, pipeline, example


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
