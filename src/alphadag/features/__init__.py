"""Pure polars features, labels and the look-ahead auditor (no dagster here).

:func:`compute_features` builds the ``features`` table (TA-Lib-exact indicators, returns,
volatility, cross-sectional ranks) from ``bars`` in one lazy plan; :func:`compute_labels` builds
the separate ``labels`` table of forward returns; :func:`audit_lookahead` proves a feature
function never reads the future by recomputing it on truncated histories.
"""

from alphadag.features.compute import (
    FEATURE_COLUMNS,
    LOOKBACK_SESSIONS,
    OHLCV_FEATURE_COLUMNS,
    PATH_DEPENDENT_COLUMNS,
    TALIB_COLUMNS,
    WARMUP,
    XS_RANK_SIGNALS,
    compute_features,
    features_plan,
)
from alphadag.features.labels import compute_labels, label_columns, labels_plan
from alphadag.features.lookahead import LookaheadError, LookaheadReport, audit_lookahead

__all__ = [
    "FEATURE_COLUMNS",
    "LOOKBACK_SESSIONS",
    "OHLCV_FEATURE_COLUMNS",
    "PATH_DEPENDENT_COLUMNS",
    "TALIB_COLUMNS",
    "WARMUP",
    "XS_RANK_SIGNALS",
    "LookaheadError",
    "LookaheadReport",
    "audit_lookahead",
    "compute_features",
    "compute_labels",
    "features_plan",
    "label_columns",
    "labels_plan",
]
