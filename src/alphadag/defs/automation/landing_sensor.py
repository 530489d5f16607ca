"""Sensors: ``landing_zone_sensor`` turns new or corrected vendor files into ingestion runs."""

import dagster as dg

from alphadag import settings
from alphadag.defs.automation.jobs import ingest_job
from alphadag.defs.automation.partitions import sessions_partitions
from alphadag.defs.resources.alerting import AlertSink
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.market.landing import (
    changed_files,
    dump_cursor,
    parse_cursor,
    plan_runs,
    plan_tick,
    touched_partitions,
)
from alphadag.market.sources.base import RejectedFile
from alphadag.market.sources.csv_landing import (
    QUARANTINE_DIR,
    QUARANTINE_MANIFEST,
    check_file,
    file_fingerprint,
    landing_files,
    record_rejected,
)

BUILT_FROM = settings.loaded()
"""The settings this module's objects were built from."""


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=60,
    default_status=(
        dg.DefaultSensorStatus.RUNNING
        if BUILT_FROM.source == "csv"  # a decorator value: read when definitions load
        else dg.DefaultSensorStatus.STOPPED
    ),
    description=(
        "Every minute: ingest_job for exactly the sessions a new or changed landing file touches "
        "(csv source; on by default when ALPHADAG_SOURCE=csv). A broken file is quarantined and "
        "alerted once, never stops the sensor; a cursor that moved backwards is alerted "
        "(sensor_cursor_rewound), never handled silently."
    ),
)
def landing_zone_sensor(
    context: dg.SensorEvaluationContext, market_data: MarketDataResource, alerts: AlertSink
):
    """Launch ``ingest_job`` for exactly the sessions a new or changed landing file touches.

    Cursor: JSON ``{path: sha256}``. Run key: hash of the changed files' contents + the range, so
    a file seen again launches nothing and a corrected file backfills its sessions.

    A broken file (empty, an HTML page, cut mid-line, truncated Parquet, no date or close
    column, ...: judged by ``check_file`` exactly as ``raw_bars`` reads it) never stops the
    sensor: it sends one ``landing_file_rejected`` alert (path, fingerprint, reason), is recorded
    in the landing directory's ``_quarantine/manifest.jsonl`` with a copy of its bytes, and its
    fingerprint goes into the cursor like any handled file, so the next tick neither alerts nor
    re-reads it; runs are launched for the good new files only. When the vendor replaces it (a
    new fingerprint), it is judged again: ingested if good, alerted once more if still broken.

    A cursor that moved backwards is never handled silently; it sends a ``sensor_cursor_rewound``
    alert (reason ``cursor_reset`` or ``file_reverted``):

    - *cursor_reset*: the cursor is empty while the instance holds runs this sensor launched (tag
      ``alphadag/trigger=landing_zone``). Every file would look new and re-ingest its whole range
      under new run keys, so nothing is launched: the alert lists the files and ranges held back
      (re-ingest them with ``alphadag materialize`` if needed) and the cursor restarts from now.
    - *file_reverted*: a file differs from the cursor, but the run key planned for it was already
      used: the file is back at a state ingested before, which the daemon would skip silently
      (run keys are unique). The run is launched under ``<run key>:rewound:<n>`` so the partitions
      follow the file again.
    """
    try:
        files = landing_files(market_data.landing_dir, market_data.csv_pattern)
    except ValueError as err:
        return dg.SkipReason(f"landing directory unavailable: {err}")
    seen = parse_cursor(context.cursor)
    current = {str(p): file_fingerprint(p) for p in files}
    candidates = changed_files(current, seen)
    if not candidates:
        return dg.SkipReason(f"no new or changed files among {len(current)}")
    keys = sessions_partitions.get_partition_keys()
    column_map = market_data.csv_column_map or None
    changed: dict[str, str] = {}  # the good new or changed files: path -> fingerprint
    broken: list[RejectedFile] = []
    dates = set()
    for path in candidates:
        checked = check_file(path, column_map, market_data.csv_date_format)
        if isinstance(checked, RejectedFile):
            broken.append(checked)
        else:
            changed[path] = checked.fingerprint
            dates.update(checked.dates)
    # the cursor holds the content each file was judged on: a broken file is not judged (nor
    # alerted) again until its content changes
    judged = {
        **current,
        **changed,
        **{r.path: r.fingerprint for r in broken if r.fingerprint is not None},
    }
    if broken:
        _alert_rejected(context, alerts, market_data.landing_dir, broken)
    if not changed:
        return dg.SensorResult(
            run_requests=[],
            cursor=dump_cursor({**seen, **judged}),
            skip_reason=f"{len(broken)} new or changed landing file(s) rejected, none to ingest",
        )
    touched = touched_partitions(dates, keys)
    instance = context.instance
    plan = plan_tick(
        plan_runs(changed, touched, keys),
        seen,
        judged,
        launched_before=lambda: (
            instance.get_runs_count(dg.RunsFilter(tags={"alphadag/trigger": "landing_zone"})) > 0
        ),
        key_used=lambda run_key: (
            instance.get_runs_count(dg.RunsFilter(tags={"dagster/run_key": run_key})) > 0
        ),
    )
    if plan.rewind == "cursor_reset":
        held = [[run.start, run.end] for run in plan.held]
        alerts.send(
            "sensor_cursor_rewound",
            f"landing_zone_sensor cursor is empty but it launched runs before: {len(changed)} "
            f"file(s) over {len(held)} range(s) held back, not re-ingested",
            severity="error",
            source="landing_zone_sensor",
            reason="cursor_reset",
            files=sorted(changed),
            held_ranges=held,
        )
        return dg.SensorResult(run_requests=[], cursor=dump_cursor(plan.cursor))
    if plan.rewind == "file_reverted":
        alerts.send(
            "sensor_cursor_rewound",
            f"{len(changed)} landing file(s) went back to a state ingested before; "
            f"re-launching {len(plan.rewound)} range(s) under new run keys",
            severity="warning",
            source="landing_zone_sensor",
            reason="file_reverted",
            files=sorted(changed),
            ranges=[[run.start, run.end] for run in plan.rewound],
            run_keys=[run.run_key for run in plan.rewound],
        )
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
            for run in plan.runs
        ],
        cursor=dump_cursor(plan.cursor),
    )


def _alert_rejected(
    context: dg.SensorEvaluationContext,
    alerts: AlertSink,
    landing_dir: str,
    broken: list[RejectedFile],
) -> None:
    """Record the broken files in the landing quarantine and send one alert per file."""
    manifest: str | None = f"{landing_dir.rstrip('/')}/{QUARANTINE_DIR}/{QUARANTINE_MANIFEST}"
    try:
        record_rejected(landing_dir, broken)
    except OSError as err:  # a read-only landing directory must not stop the sensor
        context.log.warning(f"could not record rejected landing files in {manifest}: {err}")
        manifest = None
    for rejected in broken:
        alerts.send(
            "landing_file_rejected",
            f"landing file {rejected.path} cannot be ingested and was set aside: {rejected.reason}",
            severity="error",
            source="landing_zone_sensor",
            path=rejected.path,
            fingerprint=rejected.fingerprint,
            reason=rejected.reason,
            quarantine_manifest=manifest,
        )
    context.log.warning(f"{len(broken)} landing file(s) rejected: {[r.path for r in broken]}")
