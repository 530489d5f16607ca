"""Fit one model on the training segment and score it on validation and test.

:func:`fit_and_evaluate` is the pure core of the ``return_model`` asset: it takes the
``training_set`` (see :func:`alphadag.models.segments.build_training_set`), a
:class:`~alphadag.models.estimators.ModelSpec` and the horizon, fits on the ``train`` rows only and
returns the fitted Pipeline with metrics for the model and the naive baselines per segment.
:func:`seed_spread` refits a family with randomness (:data:`RANDOM_FAMILIES`) with
:data:`N_SEEDS` consecutive seeds and reports the validation and test rank IC mean +- std over
them (ridge is deterministic: one fit says everything).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sklearn.pipeline import Pipeline

from alphadag.features.labels import is_label_column
from alphadag.models.estimators import ModelSpec, fit_pipeline, predict
from alphadag.models.ic import daily_ic
from alphadag.models.metrics import evaluate_predictions
from alphadag.models.segments import horizon_of, label_column

__all__ = [
    "N_SEEDS",
    "RANDOM_FAMILIES",
    "SeedSpread",
    "TrainResult",
    "fit_and_evaluate",
    "seed_spread",
]

RANDOM_FAMILIES = ("hgb", "random_forest")
"""Families whose fit depends on the seed (ridge is deterministic)."""
N_SEEDS = 3


@dataclass(frozen=True, slots=True)
class TrainResult:
    """The fitted pipeline and ``metrics[segment][model | baseline][metric]``."""

    pipeline: Pipeline
    feature_columns: tuple[str, ...]
    label: str
    metrics: dict[str, dict[str, dict[str, float]]]


def fit_and_evaluate(
    training_set: pl.DataFrame,
    spec: ModelSpec,
    *,
    horizon: int,
    feature_columns: Sequence[str],
) -> TrainResult:
    """Fit ``spec`` on the ``train`` segment; score model and baselines on ``valid`` and ``test``."""
    label = label_column(horizon)
    if "segment" not in training_set.columns:
        raise ValueError("training_set needs a segment column (build_training_set adds it)")
    parts = {s: training_set.filter(pl.col("segment") == s) for s in ("train", "valid", "test")}
    for name, part in parts.items():
        if part.height == 0:
            raise ValueError(f"the {name} segment of the training set is empty")
    pipeline = fit_pipeline(parts["train"], spec, feature_columns, label)
    metrics = {
        name: evaluate_predictions(
            parts[name],
            predict(pipeline, parts[name], feature_columns),
            label=label,
            horizon=horizon,
        )
        for name in ("valid", "test")
    }
    return TrainResult(pipeline, tuple(feature_columns), label, metrics)


@dataclass(frozen=True, slots=True)
class SeedSpread:
    """Rank IC of one spec fitted with several seeds on the train segment, per segment."""

    seeds: tuple[int, ...]
    rank_ic: dict[str, tuple[float, ...]]  # segment -> one mean rank IC per seed

    def mean(self, segment: str) -> float:
        return float(np.mean(self.rank_ic[segment]))

    def std(self, segment: str) -> float:
        """Sample standard deviation over seeds (ddof 1)."""
        return float(np.std(self.rank_ic[segment], ddof=1))

    def summary(self) -> dict[str, float]:
        """``{"<segment>/rank_ic_mean": m, "<segment>/rank_ic_std": s}`` for valid and test."""
        return {
            f"{seg}/rank_ic_{stat}": getattr(self, stat)(seg)
            for seg in self.rank_ic
            for stat in ("mean", "std")
        }


def _rank_ic_mean(frame: pl.DataFrame, y_pred: np.ndarray, label: str) -> float:
    scored = frame.select("date", pl.col(label).alias("y_true")).with_columns(
        pl.Series("y_pred", np.asarray(y_pred, dtype=np.float64))
    )
    values = daily_ic(scored)["rank_ic"].to_numpy()
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def seed_spread(
    training_set: pl.DataFrame,
    spec: ModelSpec,
    *,
    horizon: int,
    feature_columns: Sequence[str],
    n_seeds: int = N_SEEDS,
    first: TrainResult | None = None,
) -> SeedSpread | None:
    """Valid and test rank IC of ``spec`` fitted on the train rows with seeds ``seed .. seed +
    n_seeds - 1`` (``None`` for a deterministic family). ``first``: the fit with ``spec.seed``,
    already made by :func:`fit_and_evaluate` (reused, not fitted again)."""
    if spec.family not in RANDOM_FAMILIES:
        return None
    if n_seeds < 2:
        raise ValueError(f"n_seeds must be at least 2 to report a spread, got {n_seeds}")
    label = label_column(horizon)
    parts = {s: training_set.filter(pl.col("segment") == s) for s in ("train", "valid", "test")}
    seeds = tuple(range(spec.seed, spec.seed + n_seeds))
    scores: dict[str, list[float]] = {"valid": [], "test": []}
    for seed in seeds:
        if first is not None and seed == spec.seed:
            pipeline = first.pipeline
        else:
            pipeline = fit_pipeline(
                parts["train"], dataclasses.replace(spec, seed=seed), feature_columns, label
            )
        for seg, values in scores.items():
            part = parts[seg]
            values.append(_rank_ic_mean(part, predict(pipeline, part, feature_columns), label))
    return SeedSpread(seeds, {seg: tuple(v) for seg, v in scores.items()})


# ---------------------------------------------------------------------------------------------
# The model boundary: one pure training function, then register -> gate -> refit -> aliases.
# ---------------------------------------------------------------------------------------------

INPUT_EXAMPLE_ROWS = 5


def label_of(training: pl.DataFrame) -> str:
    """The one ``fwd_ret_{h}d`` column of a training set."""
    labels = [c for c in training.columns if is_label_column(c)]
    if len(labels) != 1:
        raise ValueError(f"training_set must carry exactly one label column, found {labels}")
    return labels[0]


def data_version(frame: pl.DataFrame) -> str:
    """sha256 of ``frame``'s Parquet bytes (uncompressed, no statistics: stable across runs)."""
    import hashlib
    import io

    buf = io.BytesIO()
    frame.write_parquet(buf, compression="uncompressed", statistics=False)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def train_through(training: pl.DataFrame) -> str:
    """The last session a ``train``-segment label reads (what the challenger is trained through)."""
    return training.filter(pl.col("segment") == "train")["label_end_date"].max().isoformat()


def refit_through(training: pl.DataFrame) -> str:
    """The last session any label of the training set reads (what a full refit is trained through)."""
    return training["label_end_date"].max().isoformat()


def calibration_frame(rows: pl.DataFrame, y_pred: np.ndarray, label: str) -> pl.DataFrame:
    """Residuals with the volatility scale known at t (``rvol_20`` per horizon)."""
    horizon = horizon_of(label)
    return rows.select(
        "ticker",
        "date",
        pl.col(label).alias("y_true"),
        pl.Series("y_pred", y_pred),
        (pl.col("rvol_20") * math.sqrt(horizon / 252.0)).alias("scale"),
    ).with_columns((pl.col("y_true") - pl.col("y_pred")).alias("residual"))


def slash_metrics(metrics: dict[str, dict[str, float]], prefix: str) -> dict[str, float]:
    """``{"model": {"rank_ic_mean": x}}`` -> ``{"<prefix>/model/rank_ic_mean": x}`` (MLflow)."""
    return {f"{prefix}/{who}/{k}": v for who, m in metrics.items() for k, v in m.items()}


@dataclass(frozen=True)
class Trained:
    """What :func:`train` returns: the fit, its CV, segment scores, seed spread and artifacts."""

    spec: ModelSpec
    result: TrainResult
    folds: list
    spread: SeedSpread | None
    segments: Any
    horizon: int
    data_version: str
    example: pl.DataFrame
    calibration: pl.DataFrame
    drift_reference: pl.DataFrame

    def metrics(self) -> dict[str, float]:
        """Slash-grouped, finite MLflow metrics: ``valid/model/rank_ic_mean``,
        ``test/baseline_momentum/ic_mean``, ``cv_mean/model/rank_ic_mean``,
        ``seeds/test/rank_ic_std``."""
        out = {
            **slash_metrics(self.result.metrics["valid"], "valid"),
            **slash_metrics(self.result.metrics["test"], "test"),
        }
        if self.folds:
            for m in ("ic_mean", "rank_ic_mean", "rmse"):
                out[f"cv_mean/model/{m}"] = float(
                    np.nanmean([f.metrics["model"][m] for f in self.folds])
                )
        if self.spread is not None:
            out.update({f"seeds/{k}": v for k, v in self.spread.summary().items()})
        return {k: float(v) for k, v in out.items() if math.isfinite(float(v))}

    def step_metrics(self) -> list[dict[str, float]]:
        """Per-fold ``cv/<who>/<metric>`` (logged with ``step`` = fold)."""
        return [slash_metrics(f.metrics, "cv") for f in self.folds]

    def seed_report(self) -> dict[str, Any]:
        """Metadata: ``seeds`` and ``<segment>_rank_ic_seed_{mean,std}`` (random families)."""
        if self.spread is None:
            return {"seeds": f"deterministic ({self.spec.family}): one fit, no seed spread"}
        return {
            "seeds": ",".join(map(str, self.spread.seeds)),
            **{
                f"{seg}_rank_ic_seed_{stat}": getattr(self.spread, stat)(seg)
                for seg in ("valid", "test")
                for stat in ("mean", "std")
            },
        }


def train(training: pl.DataFrame, spec: ModelSpec, *, cv_folds: int) -> Trained:
    """Fit ``spec`` on the train segment, CV inside it, score valid / test, seed spread and the
    artifacts to log (validation residuals, the drift reference, an input example). Pure."""
    from alphadag.features import FEATURE_COLUMNS
    from alphadag.features.model_inputs import model_inputs
    from alphadag.models.cv import walk_forward_cv
    from alphadag.models.drift import psi_reference
    from alphadag.models.segments import Segments

    label = label_of(training)
    horizon = horizon_of(label)
    columns = spec.feature_columns
    result = fit_and_evaluate(training, spec, horizon=horizon, feature_columns=columns)
    folds = (
        walk_forward_cv(training, spec, columns, label, n_splits=cv_folds, embargo=horizon)
        if cv_folds
        else []
    )
    valid = training.filter(pl.col("segment") == "valid")
    test = training.filter(pl.col("segment") == "test")
    return Trained(
        spec=spec,
        result=result,
        folds=folds,
        spread=seed_spread(training, spec, horizon=horizon, feature_columns=columns, first=result),
        segments=Segments.of_training_set(training),
        horizon=horizon,
        data_version=data_version(training),
        example=model_inputs(test.head(INPUT_EXAMPLE_ROWS), columns),
        calibration=calibration_frame(valid, predict(result.pipeline, valid, columns), label),
        drift_reference=psi_reference(
            training.filter(pl.col("segment") == "train"), FEATURE_COLUMNS
        ),
    )


@dataclass(frozen=True)
class TrainOutcome:
    """The typed result of :func:`train_and_register`: the fit, the gate, the versions."""

    trained: Trained
    decision: Any  # alphadag.models.gate.GateDecision
    reason: str
    n_models_tried: int
    challenger: Any  # RegisteredVersion
    refit: Any | None  # the promoted challenger's refit, or the refreshed champion
    refreshed: bool
    champion_before: int | None
    reproduces: dict[int, bool]
    champion_trained_through: str
    trained_through: str
    last_labelled_session: str
    rows_per_segment: dict[str, int]
    oos_rank_ic: tuple[dict[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        """Every registered version reloads and reproduces its predictions (the gate ran)."""
        return all(self.reproduces.values())

    def metadata(self) -> dict[str, Any]:
        """The ``return_model`` materialization metadata (plain values; ``gate`` a list)."""
        test = self.trained.result.metrics["test"]
        refit, champion = self.refit, self.champion_before
        return {
            "mlflow_run_id": self.challenger.run_id,
            "model_version": self.challenger.version,
            "model_uri": self.challenger.model_uri,
            "decision": "promoted" if self.decision.promoted else "refused",
            "reason": self.reason,
            "champion_refreshed": self.refreshed,
            "gate": [c.to_dict() for c in self.decision.comparisons],
            "gate_before": self.decision.before.isoformat(),
            "oos_rank_ic": [
                {
                    k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in r.items()
                }
                for r in self.oos_rank_ic
            ],
            "n_models_tried": self.n_models_tried,
            "champion_version": refit.version if refit else (champion or ""),
            "previous_champion_version": champion if refit and champion is not None else "",
            "trained_through": self.trained_through,
            "champion_trained_through": self.champion_trained_through,
            "last_labelled_session": self.last_labelled_session,
            "test_ic_mean": test["model"]["ic_mean"],
            "test_rank_ic_mean": test["model"]["rank_ic_mean"],
            **{f"{b}_test_rank_ic_mean": test[b]["rank_ic_mean"] for b in test if b != "model"},
            **self.trained.seed_report(),
            "cv_folds": len(self.trained.folds),
            "data_version": self.trained.data_version,
            "segments": self.trained.segments.to_dict(),
            "rows_per_segment": self.rows_per_segment,
            "horizon": self.trained.horizon,
        }


def run_name(spec: ModelSpec, horizon: int, now: Any, suffix: str = "") -> str:
    """A readable MLflow run name: ``ridge h5 2026-12-06T12:00`` (+ ``suffix``)."""
    return f"{spec.family} h{horizon} {now:%Y-%m-%dT%H:%M}" + (f" {suffix}" if suffix else "")


def train_and_register(
    training: pl.DataFrame,
    oos: pl.DataFrame,
    *,
    spec: ModelSpec,
    settings: Any,
    cv_folds: int,
    margin: float,
    k: float,
    registry: Any,
    config_params: dict[str, Any],
    run_tags: dict[str, str],
    now: Any = None,
) -> TrainOutcome:
    """Train, register the challenger, gate it on ``oos``, refit, reload-check, move aliases.

    ``registry`` is a :class:`~alphadag.models.registry.ModelRegistry`. The challenger is fitted
    on the train segment (:func:`train`) and registered with its scores and the gate's numbers.
    The gate (:func:`alphadag.models.gate.gate`) compares its out-of-sample series with the
    champion's (recomputed from the champion's logged spec) and the baselines before the test
    segment. On promotion the spec is refitted on every labelled row and that refit becomes
    ``champion``; on a refusal with a champion, the champion's own spec is refitted and
    registered as its refresh. Each registered version must reload through ``registry.load``
    and reproduce its predictions; only then are the decision and aliases applied (otherwise
    :attr:`TrainOutcome.ok` is false and nothing moves). The registry is asked for its aliases
    before anything is fitted: an unreachable one raises
    :class:`~alphadag.models.registry.RegistryUnavailable` (naming its URI) within seconds.
    """
    import datetime as dt

    from alphadag.models.gate import flat_numbers, gate
    from alphadag.models.oos import BASELINE_COLUMNS, oos_ic_metrics, oos_ic_table

    now = now or dt.datetime.now(dt.UTC)
    aliases = registry.aliases()  # first: an unreachable registry fails before any fit
    trained = train(training, spec, cv_folds=cv_folds)
    champion = aliases.get("champion")
    logged, champion_note = _logged_champion(registry, champion)
    champion_series = _champion_series(logged, training, settings, spec, oos)
    decision = gate(
        oos,
        baselines=BASELINE_COLUMNS,
        champion=champion_series,
        before=trained.segments.test_start,
        horizon=trained.horizon,
        margin=margin,
        k=k,
    )
    reason = decision.reason + (f" ({champion_note})" if champion_note else "")
    tried = registry.count_trials() + 1
    oos_table = oos_ic_table(oos)
    gate_numbers = {
        **flat_numbers(decision),
        "gate/n_models_tried": float(tried),
        **oos_ic_metrics(oos_table),
    }
    spec_params = _spec_params(spec, config_params, trained.horizon, trained.data_version)
    challenger = _register_challenger(
        registry, trained, training, spec_params, gate_numbers, reason, run_tags, now
    )
    reproduces = {
        challenger.version: _reproduces(
            registry, challenger, trained.result.pipeline, trained.example
        )
    }
    refit, refreshed = None, False
    if decision.promoted and all(reproduces.values()):
        refit, pipeline, example = _register_refit(
            registry, training, spec, spec.feature_columns, spec_params, oos,
            refit_of=challenger.version, run_tags=run_tags, now=now,
        )  # fmt: skip
        reproduces[refit.version] = _reproduces(registry, refit, pipeline, example)
    elif logged is not None and champion_series is not None and all(reproduces.values()):
        # refused, but the champion's own spec is refitted through the last labelled session:
        # the served model is never more than one retrain older than the data
        reason = f"champion refreshed (spec unchanged), challenger {reason}"
        refreshed = True
        champion_spec = _as_spec(logged)
        params = {
            **{k: v for k, v in logged.run_params.items() if not k.startswith(_EVALUATION_PARAMS)},
            "data_version": trained.data_version,
            "horizon": trained.horizon,
        }
        refit, pipeline, example = _register_refit(
            registry, training, champion_spec, logged.columns, params, champion_series,
            refit_of=champion, run_tags=run_tags, now=now, note=reason,
        )  # fmt: skip
        reproduces[refit.version] = _reproduces(registry, refit, pipeline, example)
    if all(reproduces.values()):
        registry.apply_gate(
            challenger_version=challenger.version,
            promoted=decision.promoted,
            reason=reason,
            evidence={
                "n_models_tried": str(tried),
                **{key: repr(v) for key, v in gate_numbers.items()},
            },
            serve_version=None if refit is None else refit.version,
        )
        registry.client.set_tag(challenger.run_id, "alphadag.gate.outcome", reason[:5000])
    served = refit.version if refit is not None and all(reproduces.values()) else champion
    return TrainOutcome(
        trained=trained,
        decision=decision,
        reason=reason,
        n_models_tried=tried,
        challenger=challenger,
        refit=refit,
        refreshed=refreshed,
        champion_before=champion,
        reproduces=reproduces,
        champion_trained_through=_trained_through_tag(registry, served),
        trained_through=train_through(training),
        last_labelled_session=refit_through(training),
        rows_per_segment=dict(training.group_by("segment").len().sort("segment").rows()),
        oos_rank_ic=tuple(oos_table),
    )


# run params of a challenger that describe its evaluation, not its spec (not copied to a refit)
_EVALUATION_PARAMS = ("segment_", "cv_splits", "gate/", "refit_of", "refresh_reason", "seeds")


def _logged_champion(registry: Any, champion: int | None) -> tuple[Any, str]:
    """The champion's logged spec, and a note when it cannot be re-scored."""
    if champion is None:
        return None, ""
    try:
        logged = registry.logged_spec(champion)
        _as_spec(logged)
    except (ValueError, TypeError) as err:
        # no evidence against a champion that cannot be re-scored: the baselines still gate
        return None, f"champion version {champion} could not be re-scored: {err}"
    return logged, ""


def _as_spec(logged: Any) -> ModelSpec:
    return ModelSpec(logged.family, logged.params, seed=logged.seed, feature_set=logged.feature_set)


def _champion_series(logged, training, settings, challenger: ModelSpec, oos):
    """The champion's walk-forward series over ``training`` (``None`` without a champion)."""
    from alphadag.models.oos import walk_forward

    if logged is None:
        return None
    spec = _as_spec(logged)
    if (spec.to_dict(), logged.columns) == (challenger.to_dict(), challenger.feature_columns):
        # the same spec on the same rows and settings: its walk-forward is the challenger's own
        # series (fits are deterministic), so it is not computed twice
        return oos
    label = label_of(training)
    return walk_forward(
        training,
        spec,
        feature_columns=logged.columns,
        label=label,
        horizon=horizon_of(label),
        settings=settings,
    )


def _spec_params(spec: ModelSpec, config_params: dict[str, Any], horizon: int, version: str):
    import json

    return {
        **config_params,
        "params": json.dumps(spec.resolved_params(), sort_keys=True),
        "horizon": horizon,
        "feature_columns": ",".join(spec.feature_columns),
        "data_version": version,
    }


def _reproduces(registry: Any, registered: Any, pipeline: Any, example: pl.DataFrame) -> bool:
    """The version, loaded back through ``registry.load`` (signature = the example's columns),
    predicts exactly what the fitted pipeline predicts."""
    columns = example.columns
    loaded = registry.load(registered.version, expected_columns=columns)
    return bool(
        np.array_equal(
            predict(pipeline, example, columns), predict(loaded.pipeline, example, columns)
        )
    )


def _trained_through_tag(registry: Any, version: int | None) -> str:
    if version is None:
        return ""
    mv = registry.client.get_model_version(registry.name, str(version))
    return (mv.tags or {}).get("alphadag.trained_through", "")


def _register_challenger(registry, trained, training, spec_params, gate_numbers, reason, tags, now):
    """Log and register the challenger (fitted on train) with its scores and the gate's numbers."""
    import json
    import tempfile
    from pathlib import Path

    from alphadag.models.plots import predicted_vs_realised_png
    from alphadag.models.serving import CALIBRATION_ARTIFACT, DRIFT_REFERENCE_ARTIFACT

    result, segments = trained.result, trained.segments
    label, columns = result.label, result.feature_columns
    test = training.filter(pl.col("segment") == "test")
    train_rows = training.filter(pl.col("segment") == "train")
    with tempfile.TemporaryDirectory() as tmp:
        plot = predicted_vs_realised_png(
            test[label].to_numpy(),
            predict(result.pipeline, test, columns),
            Path(tmp) / "predicted_vs_realised.png",
            title=f"test {segments.test_start}..{segments.test_end}: realised vs predicted",
        )
        calibration = Path(tmp) / Path(CALIBRATION_ARTIFACT).name
        trained.calibration.write_parquet(calibration)
        reference = Path(tmp) / Path(DRIFT_REFERENCE_ARTIFACT).name
        trained.drift_reference.write_parquet(reference)
        return registry.register(
            pipeline=result.pipeline,
            input_example=trained.example,
            metrics={
                **trained.metrics(),
                **{k: v for k, v in gate_numbers.items() if math.isfinite(v)},
            },
            step_metrics=trained.step_metrics(),
            artifacts={
                "plots": plot,
                str(Path(CALIBRATION_ARTIFACT).parent): calibration,
                str(Path(DRIFT_REFERENCE_ARTIFACT).parent): reference,
            },
            params={
                **spec_params,
                **{f"segment_{k}": v for k, v in segments.to_dict().items()},
                "cv_splits": json.dumps(
                    [
                        [str(f.split.train_end), str(f.split.test_start), str(f.split.test_end)]
                        for f in trained.folds
                    ]
                ),
                "seeds": trained.seed_report()["seeds"],
                "gate/decision": "promoted" if gate_numbers["gate/promoted"] else "refused",
                "gate/reason": reason[:6000],
            },
            tags={
                **tags,
                "alphadag.data_version": trained.data_version,
                "alphadag.n_models_tried": str(int(gate_numbers["gate/n_models_tried"])),
            },
            version_tags={
                "alphadag.trained_through": train_through(training),
                "alphadag.horizon": str(trained.horizon),
                "alphadag.test_start": segments.test_start.isoformat(),
                "alphadag.data_version": trained.data_version,
                "alphadag.kind": "challenger",
            },
            run_name=run_name(trained.spec, trained.horizon, now),
            training_data=train_rows,
            training_data_version=trained.data_version,
            training_data_targets=label,
        )


def _register_refit(
    registry, training, spec, columns, params, series, *, refit_of, run_tags, now, note=""
):
    """Refit ``spec`` on every labelled row and register it (no alias yet) as a served version.

    ``series`` is the spec's walk-forward series over ``training``: its out-of-sample residuals
    calibrate the refit's serving intervals. ``refit_of`` is the version refitted (the promoted
    challenger, or the champion refreshed when the gate refuses); ``note`` says why.
    """
    import tempfile
    from pathlib import Path

    from alphadag.features import FEATURE_COLUMNS
    from alphadag.features.model_inputs import model_inputs
    from alphadag.models.drift import psi_reference
    from alphadag.models.serving import CALIBRATION_ARTIFACT, DRIFT_REFERENCE_ARTIFACT

    label = label_of(training)
    horizon = horizon_of(label)
    pipeline = fit_pipeline(training, spec, columns, label)
    example = model_inputs(training.tail(INPUT_EXAMPLE_ROWS), columns)
    version = data_version(training)
    rows = series.join(training.select("ticker", "date", "rvol_20"), on=["ticker", "date"])
    residuals = calibration_frame(
        rows.rename({"y_true": label}).drop("y_pred"), rows["y_pred"].to_numpy(), label
    )
    with tempfile.TemporaryDirectory() as tmp:
        calibration = Path(tmp) / Path(CALIBRATION_ARTIFACT).name
        residuals.write_parquet(calibration)
        reference = Path(tmp) / Path(DRIFT_REFERENCE_ARTIFACT).name
        psi_reference(training, FEATURE_COLUMNS).write_parquet(reference)
        refit = registry.register(
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
            tags={**run_tags, "alphadag.data_version": version},
            version_tags={
                "alphadag.trained_through": refit_through(training),
                "alphadag.horizon": str(horizon),
                "alphadag.data_version": version,
                "alphadag.kind": "refit",
                "alphadag.refit_of": str(refit_of),
                **({"alphadag.refresh_reason": note[:5000]} if note else {}),
            },
            alias=None,
            run_name=run_name(spec, horizon, now, f"refit of v{refit_of}"),
            training_data=training,
            training_data_version=version,
            training_data_targets=label,
        )
    return refit, pipeline, example
