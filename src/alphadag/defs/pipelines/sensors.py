"""Sensors: ``landing_zone_sensor`` turns new or corrected vendor files into ingestion runs."""

import dagster as dg

from alphadag import settings
from alphadag.defs.pipelines.jobs import ingest_job
from alphadag.defs.pipelines.partitions import sessions_partitions
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.market.landing import (
    changed_files,
    dump_cursor,
    parse_cursor,
    plan_runs,
    touched_partitions,
)
from alphadag.market.sources.csv_landing import dates_in_file, file_fingerprint, landing_files


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=60,
    default_status=(
        dg.DefaultSensorStatus.RUNNING
        if settings.source_name() == "csv"
        else dg.DefaultSensorStatus.STOPPED
    ),
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, market_data: MarketDataResource):
    """Launch ``ingest_job`` for exactly the sessions a new or changed landing file touches.

    Cursor: JSON ``{path: sha256}``. Run key: hash of the changed files' contents + the range, so
    a file seen again launches nothing and a corrected file backfills its sessions.
    """
    try:
        files = landing_files(market_data.landing_dir, market_data.csv_pattern)
    except ValueError as err:
        return dg.SkipReason(f"landing directory unavailable: {err}")
    seen = parse_cursor(context.cursor)
    current = {str(p): file_fingerprint(p) for p in files}
    changed = {p: current[p] for p in changed_files(current, seen)}
    if not changed:
        return dg.SkipReason(f"no new or changed files among {len(current)}")
    keys = sessions_partitions.get_partition_keys()
    dates = set()
    for path in changed:
        dates.update(
            dates_in_file(path, market_data.csv_column_map or None, market_data.csv_date_format)
        )
    touched = touched_partitions(dates, keys)
    runs = plan_runs(changed, touched, keys)
    context.log.info(f"{len(changed)} changed file(s) touch {len(touched)} session(s)")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=run.run_key,
                tags={
                    "dagster/asset_partition_range_start": run.start,
                    "dagster/asset_partition_range_end": run.end,
                    "alphadag/trigger": "landing_zone",
                },
            )
            for run in runs
        ],
        cursor=dump_cursor({**seen, **current}),
    )
