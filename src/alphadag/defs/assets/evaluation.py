"""The ``prediction_scores`` asset: how good were the predictions, once their horizon passed.

Grain: one row per prediction date that matures on the partition's session (a prediction of d
with horizon h matures h sessions later). Partition: the scoring session T, which reads the
predictions of the 80 sessions up to T (for the rolling 20/60-date figures) and the bars of the
same sessions: closes up to T only. The scores of T are numeric metadata, so the Dagster UI plots
IC, rank IC, hit rate and coverage over materializations.
"""

import math

import dagster as dg
import polars as pl

from alphadag.defs.automation.partitions import (
    full_history_backfill,
    partition_days,
    sessions_partitions,
)
from alphadag.defs.partition_metadata import add_partition_metadata
from alphadag.models.scoring import ROLLING_WINDOWS, score_predictions
from alphadag.storage import storage_metadata

SCORE_LOOKBACK_SESSIONS = 80
"""Predictions read before T: the 60-date rolling window plus horizons up to 20 sessions."""

_WINDOW = dg.TimeWindowPartitionMapping(
    start_offset=-SCORE_LOOKBACK_SESSIONS,
    end_offset=0,
    allow_nonexistent_upstream_partitions=True,
)


@dg.asset(
    partitions_def=sessions_partitions,
    backfill_policy=full_history_backfill,
    group_name="evaluation",
    kinds={"polars", "parquet"},
    ins={
        "predictions": dg.AssetIn(
            metadata=storage_metadata(window_optional=True), partition_mapping=_WINDOW
        ),
        "bars": dg.AssetIn(
            metadata=storage_metadata(window_optional=True), partition_mapping=_WINDOW
        ),
    },
)
def prediction_scores(
    context: dg.AssetExecutionContext, predictions: pl.DataFrame, bars: pl.DataFrame
) -> dg.Output:
    """Realised vs predicted per matured prediction date: IC, rank IC, hit rate, interval
    coverage, RMSE, and their rolling means over the last 20 and 60 matured dates.

    Columns: date (the scoring session), prediction_date, horizon, n, ic, rank_ic, hit_rate,
    coverage, nominal_coverage, rmse, model_source, model_version, {figure}_{20,60}.
    """
    days = partition_days(context)
    scores = pl.concat(
        [score_predictions(predictions.filter(pl.col("date") <= d), bars, d) for d in days]
    )
    parts = {k[0]: p for k, p in scores.partition_by("date", as_dict=True).items()}
    add_partition_metadata(
        context,
        "prediction_scores",
        {d.isoformat(): _session_figures(parts.get(d, scores.clear()), d) for d in days},
    )
    if len(days) > 1:
        context.log.info(
            f"prediction_scores: {scores.height} matured dates over {len(days)} sessions"
        )
    return dg.Output(scores)


FIGURES = ["ic", "rank_ic", "hit_rate", "coverage"] + [
    f"{f}_{w}" for w in ROLLING_WINDOWS for f in ("ic", "rank_ic", "hit_rate", "coverage")
]


def _session_figures(scores: pl.DataFrame, day) -> dict:
    """The scores of one scoring session as numeric metadata (its last matured date's row)."""
    last = scores.tail(1).to_dicts()[0] if scores.height else {}
    return {
        "matured_prediction_dates": scores.height,
        **{
            f: float(last[f]) for f in FIGURES if last.get(f) is not None and math.isfinite(last[f])
        },
        **(
            {"prediction_date": last["prediction_date"].isoformat()}
            if last
            else {"note": f"no prediction matured on {day}"}
        ),
    }
