"""Model families as scikit-learn Pipelines: preprocessing and estimator in one fitted object.

:class:`ModelSpec` names a family (``ridge``, ``hgb`` for HistGradientBoostingRegressor,
``random_forest``), its hyper-parameters (merged over :data:`DEFAULT_PARAMS`) and a seed;
:func:`build_pipeline` turns it into an unfitted Pipeline. Preprocessing per family:

- ``ridge``: median imputation (warm-up nulls) then standardisation, then Ridge.
- ``random_forest``: median imputation, then the forest (scale-free, so no scaler).
- ``hgb``: no imputer by default, because HistGradientBoostingRegressor handles NaN natively
  (each split learns which side missing values go to, which is informative in warm-up rows);
  ``ModelSpec(..., impute=True)`` gives the median-imputed variant for comparison. A
  ``drop_empty`` step (``VarianceThreshold(0)``, which ignores NaN) first drops the columns that
  are entirely missing or constant in the training rows: HGB's binning raises on an all-NaN
  column (``roc_60`` on a history shorter than 60 sessions), and neither kind can be split on.

Inputs: :attr:`ModelSpec.feature_set` names the model's input columns
(:data:`alphadag.features.model_inputs.FEATURE_SETS`): ``"scale_free"`` (default,
:data:`~alphadag.features.model_inputs.MODEL_FEATURE_COLUMNS`: price-level indicators as ratios
to the close, no ``obv`` / ``mom_*``) or ``"raw"`` (every ``features`` column as stored).
:func:`feature_matrix` derives the scale-free columns a frame lacks from the same row's raw
features (:func:`~alphadag.features.model_inputs.with_model_inputs`), so fitting, predicting,
cross-validation, walk-forward and serving all read a ``features`` frame and build identical
matrices.

Reproducibility: the seed is the estimator's ``random_state``, HGB's early stopping is off
(``early_stopping=False``; on by default above 10k rows it draws a random validation split)
and the forest runs with ``n_jobs=1``. Same spec and data give identical predictions.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from alphadag.features.labels import is_label_column
from alphadag.features.model_inputs import (
    DEFAULT_FEATURE_SET,
    FEATURE_SETS,
    feature_set_columns,
    with_model_inputs,
)

__all__ = [
    "DEFAULT_PARAMS",
    "ModelFamily",
    "ModelSpec",
    "build_pipeline",
    "feature_matrix",
    "fit_pipeline",
    "predict",
]

ModelFamily = Literal["ridge", "hgb", "random_forest"]
MODEL_FAMILIES: tuple[str, ...] = get_args(ModelFamily)

DEFAULT_PARAMS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "ridge": MappingProxyType({"alpha": 1.0}),
        "hgb": MappingProxyType(
            {
                "max_iter": 200,
                "learning_rate": 0.05,
                "max_leaf_nodes": 31,
                "min_samples_leaf": 200,
                "l2_regularization": 1.0,
                "early_stopping": False,
            }
        ),
        "random_forest": MappingProxyType(
            {
                "n_estimators": 100,
                "max_depth": 8,
                "min_samples_leaf": 100,
                "max_features": 0.33,
                "max_samples": 0.5,
                "n_jobs": 1,
            }
        ),
    }
)
"""Hyper-parameters per family; :attr:`ModelSpec.params` override them key by key."""

_ESTIMATORS: dict[str, type] = {
    "ridge": Ridge,
    "hgb": HistGradientBoostingRegressor,
    "random_forest": RandomForestRegressor,
}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model family, its hyper-parameters and a seed: the part of the experiment that is a model.

    ``impute`` is ``None`` for the family default (see the module docstring); only ``hgb`` may
    turn it off. ``feature_set`` names the input columns (:attr:`feature_columns`):
    ``"scale_free"`` (default) or ``"raw"``.

    >>> spec = ModelSpec("ridge", {"alpha": 10.0}, seed=7)
    >>> spec.resolved_params()
    {'alpha': 10.0, 'random_state': 7}
    >>> spec.feature_columns[:3], len(ModelSpec("ridge", feature_set="raw").feature_columns)
    (('sma_10_rel', 'sma_20_rel', 'sma_50_rel'), 36)
    """

    family: ModelFamily
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    impute: bool | None = None
    feature_set: str = DEFAULT_FEATURE_SET

    def __post_init__(self) -> None:
        if self.family not in MODEL_FAMILIES:
            raise ValueError(f"family must be one of {MODEL_FAMILIES}, got {self.family!r}")
        if not isinstance(self.params, Mapping):
            raise TypeError(f"params must be a mapping, got {type(self.params).__name__}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.impute is not None and not isinstance(self.impute, bool):
            raise TypeError(f"impute must be True, False or None, got {self.impute!r}")
        if self.impute is False and self.family != "hgb":
            raise ValueError(
                f"{self.family} cannot take missing values: only hgb runs with impute=False"
            )
        valid = set(_ESTIMATORS[self.family]().get_params())
        unknown = sorted(set(self.params) - valid)
        if unknown:
            raise ValueError(
                f"unknown {self.family} parameter(s) {unknown}; valid: {sorted(valid)}"
            )
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(
                f"feature_set must be one of {sorted(FEATURE_SETS)}, got {self.feature_set!r}"
            )
        if "random_state" in self.params:
            raise ValueError("set the seed with ModelSpec(seed=...), not params['random_state']")
        # freeze a copy so the spec cannot change after construction
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def imputes(self) -> bool:
        """Whether the pipeline median-imputes missing features."""
        return self.impute if self.impute is not None else self.family != "hgb"

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """The model's input columns: those of :attr:`feature_set`, in matrix order."""
        return feature_set_columns(self.feature_set)

    def resolved_params(self) -> dict[str, Any]:
        """Defaults, overridden by :attr:`params`, plus ``random_state=seed``."""
        return {**DEFAULT_PARAMS[self.family], **self.params, "random_state": self.seed}

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (for logging with a run)."""
        return {
            "family": self.family,
            "params": self.resolved_params(),
            "seed": self.seed,
            "impute": self.imputes,
            "feature_set": self.feature_set,
        }


def _check_feature_columns(feature_columns: Sequence[str]) -> list[str]:
    if isinstance(feature_columns, str) or not isinstance(feature_columns, Sequence):
        raise TypeError("feature_columns must be a sequence of column names")
    cols = list(feature_columns)
    if not cols:
        raise ValueError("feature_columns must name at least one feature")
    if len(set(cols)) != len(cols):
        raise ValueError(f"feature_columns has duplicates: {cols}")
    leaks = [c for c in cols if is_label_column(c)]
    if leaks:
        raise ValueError(f"feature_columns must not include labels, found {leaks}")
    return cols


def build_pipeline(spec: ModelSpec, feature_columns: Sequence[str]) -> Pipeline:
    """The unfitted Pipeline for ``spec`` over ``feature_columns`` (in that column order).

    The Pipeline takes a float matrix with NaN for missing values, as :func:`feature_matrix`
    returns; ``feature_columns`` fixes the order and is checked for label columns.

    >>> build_pipeline(ModelSpec("ridge"), ["a", "b"]).named_steps.keys()
    dict_keys(['impute', 'scale', 'model'])
    >>> list(build_pipeline(ModelSpec("hgb"), ["a"]).named_steps)
    ['drop_empty', 'model']
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec, got {type(spec).__name__}")
    _check_feature_columns(feature_columns)
    steps: list[tuple[str, Any]] = []
    if spec.imputes:
        # keep_empty_features: an all-null column (e.g. volume features on close-only data)
        # becomes zeros instead of silently changing the matrix width
        steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
    elif spec.family == "hgb":
        # all-NaN or constant in the training rows: nothing to split on, and HGB's binning
        # raises on an all-NaN column; nanvar ignores the NaNs HGB keeps for the other columns
        steps.append(("drop_empty", VarianceThreshold(threshold=0.0)))
    if spec.family == "ridge":
        steps.append(("scale", StandardScaler()))
    steps.append(("model", _ESTIMATORS[spec.family](**spec.resolved_params())))
    return Pipeline(steps)


def feature_matrix(frame: pl.DataFrame, feature_columns: Sequence[str]) -> np.ndarray:
    """``frame[feature_columns]`` as a C-ordered float64 matrix, nulls as NaN.

    A derived model input (e.g. ``sma_20_rel``) that ``frame`` lacks is computed from the same
    row's features by :func:`~alphadag.features.model_inputs.with_model_inputs`: the one place
    the model's inputs are built, for training and serving alike.

    >>> feature_matrix(pl.DataFrame({"a": [1.0, None], "b": [2.0, 3.0]}), ["b", "a"]).tolist()
    [[2.0, 1.0], [3.0, nan]]
    """
    cols = _check_feature_columns(feature_columns)
    frame = with_model_inputs(frame, cols)  # raises "frame lacks feature column(s) ..."
    x = frame.select(pl.col(c).cast(pl.Float64).fill_null(float("nan")) for c in cols).to_numpy()
    return np.ascontiguousarray(x, dtype=np.float64)


def fit_pipeline(
    frame: pl.DataFrame, spec: ModelSpec, feature_columns: Sequence[str], label: str
) -> Pipeline:
    """Build and fit the Pipeline of ``spec`` on ``frame`` (rows with a null label are an error).

    >>> f = pl.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 2.0, 4.0, 6.0]})
    >>> p = fit_pipeline(f, ModelSpec("ridge", {"alpha": 1e-9}), ["x"], "y")
    >>> predict(p, f, ["x"]).round(6).tolist()
    [0.0, 2.0, 4.0, 6.0]
    """
    if label not in frame.columns:
        raise ValueError(f"frame lacks the label column {label!r}")
    if label in feature_columns:
        raise ValueError(f"the label {label!r} cannot also be a feature")
    y = frame.get_column(label).cast(pl.Float64)
    if y.null_count() or not y.is_finite().all():
        raise ValueError(f"label {label!r} has null or non-finite values; drop those rows first")
    if frame.height == 0:
        raise ValueError("cannot fit on an empty frame")
    pipeline = build_pipeline(spec, feature_columns)
    with warnings.catch_warnings():
        # VarianceThreshold's nanvar on an all-NaN column warns; dropping it is the point
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "Degrees of freedom", RuntimeWarning)
        pipeline.fit(feature_matrix(frame, feature_columns), y.to_numpy())
    return pipeline


def predict(pipeline: Pipeline, frame: pl.DataFrame, feature_columns: Sequence[str]) -> np.ndarray:
    """Predictions of a fitted ``pipeline`` for the rows of ``frame`` (float64 vector)."""
    return np.asarray(pipeline.predict(feature_matrix(frame, feature_columns)), dtype=np.float64)
