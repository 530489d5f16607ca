"""Serving: pick the model that scores a session, and turn its predictions into the batch.

**Which model** (:func:`resolve_served_model`). The chain is ``champion`` -> ``previous`` ->
the naive baseline. A registry model is used only if every step works: the registry answers, the
alias exists, the model files download, the features provide every column the MLmodel
signature names, as numbers (a derived, scale-free input such as ``sma_20_rel`` is provided when
its raw sources are: :func:`~alphadag.models.feature_matrix` computes it from the same row with
:func:`~alphadag.features.model_inputs.with_model_inputs`, exactly as at training time), the
skops file loads with the project's allow-list,
and the model predicts a finite number for every row of the session. The first failure moves to
the next candidate and is recorded as a reason (``"champion: artifact missing or corrupt: ..."``).
The bytes loaded must hash to the sha256 recorded when the version was registered: a model file
swapped for another (even a valid one of another version) is a fallback whose reason names the
model, version, file, and the expected and actual digests (``"champion (version 3): artifact
missing or corrupt: digest mismatch: ..."``). An unreachable registry is a fallback within
seconds, not minutes: MLflow's client retries and timeout are bounded
(:func:`alphadag.models.registry.bound_http_waits`).
When both registry candidates fail, the **baseline** scores the session: ``y_pred =
logret_20 * horizon / 20`` (the trailing 20-session log return scaled to the horizon, 0 in
warm-up; the momentum baseline every model is compared with at training time) with a
volatility-based normal interval. Every row says which model made it (``model_source``,
``model_name``, ``model_version``), so a fallback is never mislabelled, and the batch is never
empty when the session has features.

Registry versions load through the one loader, :meth:`alphadag.models.registry.ModelRegistry.load`,
cached per process, keyed by (registry, name, version): an alias that moves to a new version
loads the new one; the same version (and its calibration and drift artifacts) is never
downloaded twice.

**Intervals** (:func:`interval_quantile`, :func:`build_predictions`). Split conformal on the
model's validation residuals logged at training time (``calibration/valid_residuals.parquet``),
normalised by the volatility scale known at t, ``rvol_20 * sqrt(h / 252)``: ``q`` is the
conformal quantile of ``|residual| / scale`` at the configured coverage, and the interval is
``y_pred ± q * scale_t`` (``interval_method = "split_conformal"``). A model logged without
residuals, and the baseline, get ``y_pred ± z * scale_t`` with the normal quantile ``z``
(``interval_method = "normal_vol"``). A ticker whose ``rvol_20`` is still in warm-up takes the
session's median scale.

**Signal**: the cross-sectional rank of ``y_pred`` in the session scaled to [-1, 1] (1 = highest
predicted return, 0 for a single ticker). No dagster here.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from alphadag.features.model_inputs import DERIVED_COLUMNS, missing_sources
from alphadag.models.estimators import feature_matrix
from alphadag.models.metrics import naive_baseline_predictions
from alphadag.risk.intervals import conformal_quantile, min_calibration_size
from alphadag.settings import DEFAULT_HORIZON

__all__ = [
    "BASELINE_NAME",
    "BASELINE_VERSION",
    "CALIBRATION_ARTIFACT",
    "DRIFT_REFERENCE_ARTIFACT",
    "MODEL_SOURCES",
    "PREDICTIONS_SCHEMA",
    "ServedModel",
    "baseline_model",
    "build_predictions",
    "clear_model_cache",
    "interval_quantile",
    "resolve_served_model",
    "volatility_scale",
]

MODEL_SOURCES = ("champion", "previous", "baseline")
BASELINE_NAME = "baseline_momentum"
BASELINE_VERSION = "logret_20*h/20"
CALIBRATION_ARTIFACT = "calibration/valid_residuals.parquet"
DRIFT_REFERENCE_ARTIFACT = "drift/feature_reference.parquet"

PREDICTIONS_SCHEMA: dict[str, Any] = {
    "date": pl.Date,
    "ticker": pl.String,
    "horizon": pl.Int64,
    "y_pred": pl.Float64,
    "y_lo": pl.Float64,
    "y_hi": pl.Float64,
    "coverage": pl.Float64,
    "signal": pl.Float64,
    "vol_forecast": pl.Float64,
    "var_95": pl.Float64,
    "cvar_95": pl.Float64,
    "var_99": pl.Float64,
    "cvar_99": pl.Float64,
    "model_name": pl.String,
    "model_version": pl.String,
    "model_source": pl.String,
    "interval_method": pl.String,
}
"""The ``predictions`` contract (docs/ARCHITECTURE.md, Data contracts)."""


@dataclass(frozen=True)
class ServedModel:
    """What scores a session: a registry version (champion / previous) or the baseline.

    ``predict_fn`` maps a feature matrix (rows x ``feature_columns``, NaN for nulls) to
    predictions; ``residuals`` (``residual``, ``scale``) calibrates the intervals (``None``:
    normal intervals); ``drift_reference`` is the PSI reference of its training data.
    ``fallback_reasons`` lists why earlier candidates of the chain were not used;
    ``trained_through`` is the last date the model's training labels read (a session on or
    before it is in-sample for this model: backfilled history is not an out-of-sample record).
    """

    source: str
    name: str
    version: str
    horizon: int
    feature_columns: tuple[str, ...]
    predict_fn: Callable[[np.ndarray], np.ndarray] | None
    residuals: pl.DataFrame | None = None
    drift_reference: pl.DataFrame | None = None
    run_id: str | None = None
    trained_through: dt.date | None = None
    fallback_reasons: tuple[str, ...] = field(default=())

    @property
    def is_fallback(self) -> bool:
        return self.source != "champion"

    def predict(self, features: pl.DataFrame) -> np.ndarray:
        """Point predictions for the rows of ``features`` (must be finite)."""
        if self.predict_fn is None:  # the baseline
            y = naive_baseline_predictions(features, horizon=self.horizon)["baseline_momentum"]
            return y.to_numpy().astype(np.float64)
        y = np.asarray(
            self.predict_fn(feature_matrix(features, self.feature_columns)), dtype=np.float64
        )
        if y.shape != (features.height,):
            raise ValueError(f"model returned shape {y.shape} for {features.height} rows")
        if not np.isfinite(y).all():
            raise ValueError(f"model returned {int((~np.isfinite(y)).sum())} non-finite values")
        return y


def baseline_model(
    horizon: int, feature_columns: Sequence[str], reasons: Sequence[str] = ()
) -> ServedModel:
    """The naive momentum baseline (see the module docstring)."""
    return ServedModel(
        source="baseline",
        name=BASELINE_NAME,
        version=BASELINE_VERSION,
        horizon=horizon,
        feature_columns=tuple(feature_columns),
        predict_fn=None,
        fallback_reasons=tuple(reasons),
    )


def clear_model_cache() -> None:
    """Forget every loaded version (tests; a long-lived process never needs it)."""
    from alphadag.models import registry

    registry.clear_model_cache()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


def _load_version(
    client: Any, name: str, version: int, *, tracking_uri: str, registry_uri: str
) -> ServedModel:
    """One registry version through :meth:`~alphadag.models.registry.ModelRegistry.load`
    (downloaded, loaded and cached once per process), as a ServedModel; raises with a reason."""
    from alphadag.models import registry

    models = registry.ModelRegistry(
        name, tracking_uri=tracking_uri, registry_uri=registry_uri, client=client
    )
    try:
        loaded = models.load(version)
    except registry.ModelIntegrityError as err:  # whole: the digests and path are the point
        kind = "unverifiable artifact" if err.expected is None else "artifact missing or corrupt"
        raise _Unusable(f"{kind}: {err}") from err
    except registry.RegistryUnavailable as err:
        raise _Unusable(f"registry unreachable: {err}") from err
    except Exception as err:
        raise _Unusable(f"artifact missing or corrupt: {_first_line(err)}") from err
    if not loaded.inputs:
        raise _Unusable("the model has no input signature")
    through = loaded.tags.get("alphadag.trained_through")
    return ServedModel(
        source="champion",
        name=name,
        version=str(version),
        horizon=int(loaded.tags.get("alphadag.horizon", str(DEFAULT_HORIZON))),
        feature_columns=tuple(loaded.inputs),
        predict_fn=loaded.pipeline.predict,
        residuals=loaded.run_frame(CALIBRATION_ARTIFACT),
        drift_reference=loaded.run_frame(DRIFT_REFERENCE_ARTIFACT),
        run_id=loaded.run_id,
        trained_through=dt.date.fromisoformat(through) if through else None,
    )


class _Unusable(Exception):
    """A registry candidate cannot serve; the message is the reason."""


def resolve_served_model(
    client: Any,
    name: str,
    features: pl.DataFrame,
    *,
    tracking_uri: str,
    registry_uri: str,
    default_horizon: int,
    aliases: Sequence[str] = ("champion", "previous"),
) -> ServedModel:
    """The first candidate of ``aliases`` that can score ``features``, else the baseline.

    ``client`` is an ``MlflowClient`` of the registry. Each failure (registry unreachable, alias
    missing, artifact missing or corrupt, model file not the registered bytes, signature not
    matching the features' columns, a prediction that fails or is not finite) becomes a reason
    in ``fallback_reasons``. MLflow's HTTP waits are bounded first
    (:func:`~alphadag.models.registry.bound_http_waits`; the environment's own values win).
    """
    from alphadag.models import registry

    models = registry.ModelRegistry(  # bounds MLflow's HTTP waits (the environment's win)
        name, tracking_uri=tracking_uri, registry_uri=registry_uri, client=client
    )
    reasons: list[str] = []
    try:
        by_alias = models.aliases()
    except registry.RegistryUnavailable as err:  # names the URI, the bounds and the last error
        reasons.append(f"registry unreachable: {err}")
        return baseline_model(default_horizon, _feature_columns(features), reasons)
    except Exception as err:
        reasons.append(f"registry unreachable at {registry_uri}: {_first_line(err)}")
        return baseline_model(default_horizon, _feature_columns(features), reasons)
    for alias in aliases:
        version = by_alias.get(alias)
        if version is None:
            reasons.append(f"{alias}: no '{alias}' alias on {name}")
            continue
        try:
            model = _load_version(
                client, name, version, tracking_uri=tracking_uri, registry_uri=registry_uri
            )
            _check_schema(model, features)
            if features.height:
                model.predict(features)  # a model that cannot score this session is unusable
        except _Unusable as err:
            reasons.append(f"{alias} (version {version}): {err}")
            continue
        except Exception as err:
            reasons.append(f"{alias} (version {version}): {_first_line(err)}")
            continue
        return replace(model, source=alias, fallback_reasons=tuple(reasons))
    return baseline_model(default_horizon, _feature_columns(features), reasons)


def _check_schema(model: ServedModel, features: pl.DataFrame) -> None:
    """The features must provide every signature column (or its sources), as a number."""
    missing = missing_sources(model.feature_columns, features.columns)
    if missing:
        raise _Unusable(
            f"input schema mismatch: the model's signature needs {len(missing)} column(s) the "
            f"features lack: {missing[:5]}"
        )
    read = [  # the columns predict reads: a signature column, or a derived one's sources
        src
        for c in model.feature_columns
        for src in ((c,) if c in features.columns else DERIVED_COLUMNS[c].sources)
    ]
    wrong = list(dict.fromkeys(c for c in read if not features.schema[c].is_numeric()))
    if wrong:
        raise _Unusable(f"input schema mismatch: non-numeric feature column(s) {wrong[:5]}")


def _feature_columns(features: pl.DataFrame) -> tuple[str, ...]:
    return tuple(c for c in features.columns if c not in ("ticker", "date"))


def volatility_scale(features: pl.DataFrame, horizon: int) -> np.ndarray:
    """``rvol_20 * sqrt(h / 252)`` per row; warm-up rows take the session's median scale.

    Returns NaN for every row when no row of the session has ``rvol_20``.

    >>> f = pl.DataFrame({"rvol_20": [0.252, None, 0.504]})
    >>> volatility_scale(f, 252).round(4).tolist()
    [0.252, 0.378, 0.504]
    """
    s = features.get_column("rvol_20").cast(pl.Float64).to_numpy() * math.sqrt(horizon / 252.0)
    ok = np.isfinite(s) & (s > 0)
    if not ok.any():
        return np.full(s.shape, np.nan)
    return np.where(ok, s, statistics.median(s[ok].tolist()))


def interval_quantile(model: ServedModel, coverage: float) -> tuple[float, str]:
    """``(q, method)``: the conformal quantile of the model's scaled residuals, or ``z``.

    ``"split_conformal"`` needs at least :func:`~alphadag.risk.min_calibration_size` residuals
    with a positive scale; otherwise (and for the baseline) ``q`` is the two-sided normal
    quantile and the method ``"normal_vol"``.
    """
    from scipy.stats import norm

    res = model.residuals
    if res is not None and {"residual", "scale"} <= set(res.columns):
        ok = res.filter(
            pl.col("residual").is_finite() & pl.col("scale").is_finite() & (pl.col("scale") > 0)
        )
        if ok.height >= min_calibration_size(coverage):
            return conformal_quantile(
                ok["residual"], coverage, scale=ok["scale"]
            ), "split_conformal"
    return float(norm.ppf(0.5 + coverage / 2.0)), "normal_vol"


def build_predictions(
    features: pl.DataFrame, model: ServedModel, *, coverage: float, risk: pl.DataFrame | None
) -> pl.DataFrame:
    """The predictions batch of ``features`` (one or more sessions) scored by ``model``.

    ``risk`` is a :func:`~alphadag.risk.risk_table`-shaped frame (``ticker, date,
    vol_forecast, var_95, cvar_95, var_99, cvar_99``) joined on (ticker, date); ``None``: nulls.
    """
    if features.height == 0:
        return pl.DataFrame(schema=PREDICTIONS_SCHEMA)
    q, method = interval_quantile(model, coverage)
    parts = []
    for _, day in features.sort("date", "ticker").group_by("date", maintain_order=True):
        y = model.predict(day)
        scale = volatility_scale(day, model.horizon)
        half = q * scale
        parts.append(
            day.select("date", "ticker").with_columns(
                pl.Series("y_pred", y),
                pl.Series("y_lo", y - half).fill_nan(None),
                pl.Series("y_hi", y + half).fill_nan(None),
            )
        )
    out = pl.concat(parts)
    n = pl.len().over("date")
    rank = pl.col("y_pred").rank("average").over("date")
    out = out.with_columns(
        pl.lit(model.horizon, dtype=pl.Int64).alias("horizon"),
        pl.lit(coverage, dtype=pl.Float64).alias("coverage"),
        pl.when(n > 1).then((rank - 1) / (n - 1) * 2 - 1).otherwise(0.0).alias("signal"),
        pl.lit(model.name).alias("model_name"),
        pl.lit(model.version).alias("model_version"),
        pl.lit(model.source).alias("model_source"),
        pl.lit(method).alias("interval_method"),
    )
    if risk is not None and risk.height:
        out = out.join(
            risk.select("ticker", "date", "vol_forecast", "var_95", "cvar_95", "var_99", "cvar_99"),
            on=["ticker", "date"],
            how="left",
        )
    else:
        out = out.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(c)
            for c in ("vol_forecast", "var_95", "cvar_95", "var_99", "cvar_99")
        )
    return out.select([pl.col(c).cast(t) for c, t in PREDICTIONS_SCHEMA.items()])
