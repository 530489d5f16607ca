"""Fit one model on the training segment and score it on validation and test.

:func:`fit_and_evaluate` is the pure core of the ``return_model`` asset: it takes the
``training_set`` (see :func:`alphadag.models.segments.build_training_set`), a
:class:`~alphadag.models.pipelines.ModelSpec` and the horizon, fits on the ``train`` rows only and
returns the fitted Pipeline with metrics for the model and the naive baselines per segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from sklearn.pipeline import Pipeline

from alphadag.models.metrics import evaluate_predictions
from alphadag.models.pipelines import ModelSpec, fit_pipeline, predict
from alphadag.models.segments import label_column

__all__ = ["TrainResult", "fit_and_evaluate"]


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
