"""Jobs over the asset graph. A ranged run of a job is one run over the range (single-run backfill)."""

import dagster as dg

from alphadag.defs.pipelines.partitions import sessions_partitions

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingestion"),
    partitions_def=sessions_partitions,
    description="Fetch, validate and quarantine bars for a session or a range of sessions.",
)

features_job = dg.define_asset_job(
    "features_job",
    selection=dg.AssetSelection.groups("features"),
    partitions_def=sessions_partitions,
    description="Compute features and labels for a session or a range of sessions.",
)

daily_data_job = dg.define_asset_job(
    "daily_data_job",
    selection=dg.AssetSelection.groups("ingestion", "features"),
    partitions_def=sessions_partitions,
    description="Ingest, validate, then compute features and labels for a session or range.",
)

daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.groups("ingestion", "features", "serving", "evaluation"),
    partitions_def=sessions_partitions,
    description="One session end to end: ingest -> validate -> features -> labels -> predictions "
    "-> prediction scores (the after-close schedule runs it; ranged runs backfill).",
)

serving_job = dg.define_asset_job(
    "serving_job",
    selection=dg.AssetSelection.groups("serving", "evaluation"),
    partitions_def=sessions_partitions,
    description="Score sessions with the champion (predictions) and score matured predictions "
    "(prediction_scores); the champion-change sensor re-runs it for recent sessions.",
)

train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.groups("modeling"),
    tags={"alphadag/kind": "train"},  # dagster.yaml: one training run at a time
    description="Train the return model on every materialized session, register it in MLflow, "
    "check it reloads, and promote it if it beats the champion.",
)

backtest_job = dg.define_asset_job(
    "backtest_job",
    selection=dg.AssetSelection.assets("backtest_report"),
    tags={"alphadag/kind": "backtest"},
    description="Backtest the configured strategies, the walk-forward model signal and the "
    "benchmark over a period; write the charts and HTML report and log them to MLflow.",
)
