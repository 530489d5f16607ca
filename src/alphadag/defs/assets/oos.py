"""The ``oos_predictions`` asset: the configured model's walk-forward out-of-sample series.

Unpartitioned, one Parquet file. The model spec (family, params, seed) is refitted every
``refit_every`` sessions on an expanding (or rolling) window of the ``training_set`` and scores
the sessions up to the next refit; a fit's training labels all end strictly before the first
session it scores, with an embargo of at least the horizon (:mod:`alphadag.models.oos`). The
momentum and reversal baselines are scored on the same rows. The promotion gate in
``return_model`` and ``backtest_report``'s model signal read this series as asset inputs.
"""

from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from alphadag.features.model_inputs import DEFAULT_FEATURE_SET
from alphadag.models import ModelSpec, horizon_of
from alphadag.models.oos import WalkForwardSettings, experiment_key, walk_forward
from alphadag.models.training import label_of


class ModelExperimentConfig(dg.Config):
    """The model spec and its walk-forward evaluation (shared by oos_predictions and
    return_model: give both the same values, or return_model refuses the series)."""

    family: str = Field("ridge", description="ridge | hgb | random_forest")
    params: dict[str, Any] = Field(default_factory=dict, description="estimator parameters")
    seed: int = 0
    feature_set: str = Field(
        DEFAULT_FEATURE_SET, description="model inputs: scale_free (default) | raw"
    )
    refit_every: int = Field(63, description="walk-forward: sessions between refits")
    window: int | None = Field(
        None, description="walk-forward: rolling window in sessions (None: expanding)"
    )
    embargo: int | None = Field(
        None, description="walk-forward: sessions between training and scoring (>= horizon)"
    )
    min_train_sessions: int = Field(
        126, description="walk-forward: sessions of history before the first fit"
    )

    def spec(self) -> ModelSpec:
        return ModelSpec(
            self.family,  # type: ignore[arg-type]
            self.params,
            seed=self.seed,
            feature_set=self.feature_set,
        )

    def walk_forward_settings(self) -> WalkForwardSettings:
        return WalkForwardSettings(
            refit_every=self.refit_every,
            window=self.window,
            embargo=self.embargo,
            min_train_sessions=self.min_train_sessions,
        )

    def experiment(self) -> str:
        spec = self.spec()
        return experiment_key(spec, spec.feature_columns, self.walk_forward_settings())


def oos_series(
    training: pl.DataFrame,
    spec: ModelSpec,
    settings: WalkForwardSettings,
    feature_columns: tuple[str, ...] | None = None,
) -> pl.DataFrame:
    """:func:`alphadag.models.oos.walk_forward` over ``training`` (default: the spec's inputs)."""
    label = label_of(training)
    return walk_forward(
        training,
        spec,
        feature_columns=spec.feature_columns if feature_columns is None else feature_columns,
        label=label,
        horizon=horizon_of(label),
        settings=settings,
    )


@dg.asset(group_name="modeling", kinds={"sklearn", "polars", "parquet"})
def oos_predictions(
    context: dg.AssetExecutionContext,
    config: ModelExperimentConfig,
    training_set: pl.DataFrame,
) -> pl.DataFrame:
    """Walk-forward out-of-sample predictions of the configured model, baselines beside them.

    Grain: one row per (ticker, session) of training_set from the first fit on. Unpartitioned.
    No look-ahead: each session is scored by a fit whose training labels all end before it
    (fit_trained_through < date), embargo >= horizon sessions earlier. Columns: date,
    ticker, segment, y_true, y_pred, baseline_momentum, baseline_reversal, fit_start,
    fit_trained_through, experiment (the spec and settings, JSON).
    """
    settings = config.walk_forward_settings()
    series = oos_series(training_set, config.spec(), settings)
    fits = series.select("fit_start", "fit_trained_through").unique()
    context.add_output_metadata(
        {
            "rows": series.height,
            "sessions": f"{series['date'].min()}..{series['date'].max()}",
            "n_dates": series["date"].n_unique(),
            "fits": fits.height,
            "last_fit_trained_through": str(series["fit_trained_through"].max()),
            "walk_forward": settings.to_dict(),
            "rows_per_segment": dict(series.group_by("segment").len().sort("segment").rows()),
        }
    )
    return series.with_columns(pl.lit(config.experiment()).alias("experiment"))
