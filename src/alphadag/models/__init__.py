"""Pure modelling: segments and the training set, sklearn pipelines, walk-forward CV, metrics.

No dagster here, and no mlflow in the modules exported below: :mod:`alphadag.models.registry`
(import it explicitly) is the one module that talks to the MLflow tracking store and registry.
The experiment is data: :class:`Segments` (explicit train / valid /
test date ranges with an embargo of at least the label horizon) and :class:`ModelSpec` (family,
hyper-parameters, seed) describe a run completely and serialise with ``to_dict()``.
"""

from alphadag.models.cv import FoldResult, WalkForwardSplit, walk_forward_cv, walk_forward_splits
from alphadag.models.estimators import (
    DEFAULT_PARAMS,
    ModelFamily,
    ModelSpec,
    build_pipeline,
    feature_matrix,
    fit_pipeline,
    predict,
)
from alphadag.models.metrics import (
    BASELINES,
    METRIC_NAMES,
    MIN_TICKERS_PER_DATE,
    evaluate_predictions,
    flatten_metrics,
    ic_metrics,
    naive_baseline_predictions,
)
from alphadag.models.segments import (
    SEGMENT_NAMES,
    SegmentName,
    Segments,
    build_training_set,
    horizon_of,
    label_column,
    label_end_date,
    make_segments,
)
from alphadag.models.training import TrainResult, fit_and_evaluate

__all__ = [
    "BASELINES",
    "DEFAULT_PARAMS",
    "METRIC_NAMES",
    "MIN_TICKERS_PER_DATE",
    "SEGMENT_NAMES",
    "FoldResult",
    "ModelFamily",
    "ModelSpec",
    "SegmentName",
    "Segments",
    "TrainResult",
    "WalkForwardSplit",
    "build_pipeline",
    "build_training_set",
    "evaluate_predictions",
    "feature_matrix",
    "fit_and_evaluate",
    "fit_pipeline",
    "flatten_metrics",
    "horizon_of",
    "ic_metrics",
    "label_column",
    "label_end_date",
    "make_segments",
    "naive_baseline_predictions",
    "predict",
    "walk_forward_cv",
    "walk_forward_splits",
]
