"""Jobs over the asset graph. A ranged run of a job is one run over the range (single-run backfill).

Executors, per job. Every job here is a chain (ingest -> validate -> checks -> features ->
predictions -> scores; training_set -> return_model; one backtest asset), so parallel steps would
buy almost nothing on the data, while Dagster's default multiprocess executor starts a fresh Python
for every step and pays the imports (dagster, polars, numba, mlflow) each time: a one-session
daily_job spent most of its wall in those start-ups. These jobs therefore run their steps in the
run worker's own process (in_process_executor), which keeps step retries (raw_bars' retry policy),
pools (market_data) and blocking checks. Ad-hoc selections from the UI, which may fan out, use the
code location's default executor (alphadag.definitions: multiprocess with a forkserver that has
preloaded the code, so a step forks instead of importing again).
"""

import dagster as dg

ONE_PROCESS = dg.in_process_executor

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingestion"),
    executor_def=ONE_PROCESS,
    description="Fetch, validate and quarantine bars for a session or a range of sessions.",
)

features_job = dg.define_asset_job(
    "features_job",
    selection=dg.AssetSelection.groups("features"),
    executor_def=ONE_PROCESS,
    description="Compute features and labels for a session or a range of sessions.",
)

daily_data_job = dg.define_asset_job(
    "daily_data_job",
    selection=dg.AssetSelection.groups("ingestion", "features"),
    executor_def=ONE_PROCESS,
    description="Ingest, validate, then compute features and labels for a session or range.",
)

daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.groups("ingestion", "features", "serving", "evaluation"),
    executor_def=ONE_PROCESS,
    description="One session end to end: ingest -> validate -> features -> labels -> predictions "
    "-> prediction scores (the after-close schedule runs it; ranged runs backfill).",
)

serving_job = dg.define_asset_job(
    "serving_job",
    selection=dg.AssetSelection.groups("serving", "evaluation"),
    executor_def=ONE_PROCESS,
    description="Score sessions with the champion (predictions) and score matured predictions "
    "(prediction_scores); the champion-change sensor re-runs it for recent sessions.",
)

train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.groups("modeling"),
    tags={"alphadag/kind": "train"},  # dagster.yaml: one training run at a time
    executor_def=ONE_PROCESS,
    description="Train the return model on every materialized session, register it in MLflow, "
    "check it reloads, and promote it if it beats the champion.",
)

backtest_job = dg.define_asset_job(
    "backtest_job",
    selection=dg.AssetSelection.assets("backtest_report"),
    tags={"alphadag/kind": "backtest"},
    executor_def=ONE_PROCESS,
    description="Backtest the configured strategies, the walk-forward model signal and the "
    "benchmark over a period; write the charts and HTML report and log them to MLflow.",
)
