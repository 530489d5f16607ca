"""Fit one model on the training segment and score it on validation and test.

:func:`fit_and_evaluate` is the pure core of the ``return_model`` asset: it takes the
``training_set`` (see :func:`alphadag.models.segments.build_training_set`), a
:class:`~alphadag.models.pipelines.ModelSpec` and the horizon, fits on the ``train`` rows only and
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

import numpy as np
import polars as pl
from sklearn.pipeline import Pipeline

from alphadag.models.ic import daily_ic
from alphadag.models.metrics import evaluate_predictions
from alphadag.models.pipelines import ModelSpec, fit_pipeline, predict
from alphadag.models.segments import label_column

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
