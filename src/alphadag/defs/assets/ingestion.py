"""Ingestion assets: ``raw_bars`` as delivered, then validated ``bars`` and ``quarantined_bars``.

Grain: one row per (ticker, session); partition: one XNYS session; a ranged run (backfill) is one
run over the range. ``bars`` reads the five sessions before its range from ``raw_bars`` only to build
the move reference of each ticker (no look-ahead: a bar is judged on earlier closes only).
"""

import datetime as dt
import time

import dagster as dg
import polars as pl

from alphadag.defs.assets.bars_checks import (
    BARS_CONTRACT_CHECK_SPECS,
    BARS_CONTRACT_CHECKS,
    audit_bars,
)
from alphadag.defs.assets.session_checks import MAX_TABLE_ROWS, session_check_results
from alphadag.defs.automation.freshness import DAILY_FRESHNESS
from alphadag.defs.automation.partitions import (
    full_history_backfill,
    partition_days,
    sessions_partitions,
)
from alphadag.defs.partition_metadata import add_partition_metadata
from alphadag.defs.resources.alerting import AlertSink
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.defs.resources.storage import Audited
from alphadag.markdown import markdown_table
from alphadag.market.ingest import RAW_PARTITION_SCHEMA, read_partitions
from alphadag.market.sources.csv_landing import record_rejected
from alphadag.market.sources.errors import TransientSourceError, is_transient_exception
from alphadag.market.validation import REFERENCE_WINDOW, MoveBounds, validate
from alphadag.storage import storage_metadata

source_fetch_retry = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


@dg.asset(
    partitions_def=sessions_partitions,
    backfill_policy=full_history_backfill,
    group_name="ingestion",
    kinds={"polars", "parquet"},
    metadata=storage_metadata(partition_column="partition_date"),
    retry_policy=source_fetch_retry,
    pool="market_data",
)
def raw_bars(
    context: dg.AssetExecutionContext, market_data: MarketDataResource, alerts: AlertSink
) -> dg.Output:
    """Bars exactly as the configured source delivered them, one Parquet file per session.

    Rows dated on a non-session inside the fetch window are kept, attributed to the next session.
    A landing file that cannot be read (empty, an HTML page, cut mid-line, a truncated Parquet
    file) is set aside whole: recorded with its reason in the landing directory's
    _quarantine/manifest.jsonl, listed in this run's metadata (rejected_files) and alerted once
    (landing_file_rejected); the good files are ingested. Only transient source errors
    (connection, timeout, rate limit, HTTP 5xx) are retried, with exponential backoff and jitter;
    configuration errors (an invalid ticker, a bad column map) and permanent source errors fail
    the run at once.
    """
    days = partition_days(context)
    started = time.monotonic()
    try:
        source = market_data.get_source()
        fetched = read_partitions(source, days)
    except Exception as err:
        if isinstance(err, TransientSourceError) or is_transient_exception(err):
            raise  # the retry policy tries again after a backoff
        raise dg.Failure(
            description=f"raw_bars {days[0]}..{days[-1]} ({market_data.source} source): {err}",
            allow_retries=False,
        ) from err
    raw = fetched.raw
    _report_rejected(context, market_data, alerts, fetched.rejected, days)
    coverage = source.coverage()
    # rows, tickers, bytes and path of each session come from the IO manager
    add_partition_metadata(
        context,
        "raw_bars",
        {d.isoformat(): {"beyond_source_coverage": not coverage.covers(d)} for d in days},
    )
    beyond = sum(not coverage.covers(d) for d in days)
    if len(days) > 1:
        context.log.info(f"raw_bars: {raw.height} rows over {len(days)} sessions, {beyond} beyond")
    rejected = [
        {"path": r.path, "fingerprint": r.fingerprint or "", "reason": r.reason}
        for r in fetched.rejected
    ]
    return dg.Output(
        raw,
        metadata={  # one fetch for the whole run: true of every session
            "source": source.name,
            "fetch_seconds": round(time.monotonic() - started, 3),
            "fetched_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "coverage": f"{coverage.start} .. {coverage.end}",
            "rejected_files": len(rejected),
            **({"rejected": dg.MetadataValue.json(rejected)} if rejected else {}),
        },
    )


def _report_rejected(context, market_data, alerts, rejected, days) -> None:
    """Record rejected landing files in the landing quarantine and alert once per new one."""
    if not rejected:
        return
    for r in rejected:
        context.log.warning(f"raw_bars: {r.reason}; the other files are ingested")
    new = list(rejected)
    if market_data.source == "csv":
        try:  # once per (file, fingerprint): the landing sensor may have recorded it already
            new = record_rejected(market_data.landing_dir, rejected)
        except OSError as err:
            context.log.error(f"raw_bars: could not record rejected files in the quarantine: {err}")
    for r in new:
        alerts.send(
            "landing_file_rejected",
            r.reason,
            severity="error",
            source="raw_bars",
            path=r.path,
            fingerprint=r.fingerprint,
            partitions=[days[0].isoformat(), days[-1].isoformat()],
        )


class BarsValidationConfig(dg.Config):
    """Bounds of the move rule (see alphadag.market.validation)."""

    flag_move: float = 0.5
    reject_factor: float = 4.0
    warn_quarantine_share: float = 0.01


@dg.multi_asset(
    outs={
        "bars": dg.AssetOut(
            group_name="ingestion",
            kinds={"polars", "parquet"},
            description="Validated, canonical daily bars (the bars contract), one file per session.",
            freshness_policy=DAILY_FRESHNESS,
            # rebuilt with quarantined_bars, never alone
            metadata=storage_metadata(rebuild_job="ingest_job"),
        ),
        "quarantined_bars": dg.AssetOut(
            group_name="ingestion",
            kinds={"polars", "parquet"},
            metadata=storage_metadata(partition_column="partition_date", rebuild_job="ingest_job"),
            description="Rejected raw rows with the rule, value and a reason naming origin, "
            "ticker, date and rule.",
        ),
    },
    ins={
        "raw_bars": dg.AssetIn(
            metadata=storage_metadata(window_optional=True),
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-REFERENCE_WINDOW, allow_nonexistent_upstream_partitions=True
            ),
        )
    },
    partitions_def=sessions_partitions,
    backfill_policy=full_history_backfill,
    check_specs=[
        dg.AssetCheckSpec(
            "large_moves",
            asset="bars",
            description="Kept bars beyond flag_move.",
            partitions_def=sessions_partitions,
        ),
        dg.AssetCheckSpec(
            "quarantine_share",
            asset="bars",
            description="Share of raw rows quarantined.",
            partitions_def=sessions_partitions,
        ),
        *BARS_CONTRACT_CHECK_SPECS,
    ],
)
def validated_bars(
    context: dg.AssetExecutionContext,
    config: BarsValidationConfig,
    raw_bars: pl.DataFrame,
    market_data: MarketDataResource,
):
    """Split raw bars into bars and quarantined_bars: rows in = rows kept + quarantined.

    Write-audit-publish: the kept rows are staged, the blocking contract checks (pandera, Great
    Expectations, completeness) audit the staged files, and only the sessions that pass replace
    their published bars file. A failing session keeps its old file (or none); its staged file's
    path is in the check's metadata. Quarantined rows are always kept.
    """
    days = partition_days(context)
    current = raw_bars.filter(pl.col("partition_date").is_in(days))
    history = raw_bars.filter(pl.col("partition_date") < min(days))
    res = validate(
        _conform(current),
        partition_dates=days,
        history=history,
        bounds=MoveBounds(flag_move=config.flag_move, reject_factor=config.reject_factor),
    )
    sessions = [d.isoformat() for d in days]
    rows_in = _counts(current, "partition_date")
    rows_out = _counts(res.quarantined, "partition_date")
    rules = _counts_by_rule(res.quarantined)
    add_partition_metadata(
        context,
        "bars",
        {
            k: {"rows_in": rows_in.get(k, 0), "rows_quarantined": rows_out.get(k, 0)}
            for k in sessions
        },
    )
    add_partition_metadata(
        context, "quarantined_bars", {k: {"by_rule": rules.get(k, {})} for k in sessions}
    )
    if len(days) > 1:
        context.log.info(
            f"bars: {current.height} raw rows over {len(days)} sessions, {res.kept.height} kept, "
            f"{res.quarantined.height} quarantined {res.counts_by_rule()}"
        )
    coverage = market_data.get_source().coverage()
    kept = Audited(
        res.kept,
        audit=lambda staged: audit_bars(staged, days, coverage),
        blocking=frozenset(BARS_CONTRACT_CHECKS),
    )
    yield dg.Output(kept, output_name="bars")
    yield dg.Output(res.quarantined, output_name="quarantined_bars")
    for name in BARS_CONTRACT_CHECKS:
        yield from session_check_results(
            context, "bars", name, kept.session_outcomes(name, sessions)
        )

    flagged = res.flagged.with_columns(pl.col("date").cast(pl.String).alias("_session"))
    moves = {}
    for k in sessions:
        rows = flagged.filter(pl.col("_session") == k).drop("_session")
        moves[k] = (
            rows.height == 0,
            {
                "n_flagged": rows.height,
                "flag_move": config.flag_move,
                **(
                    {"flagged": dg.MetadataValue.md(markdown_table(rows.head(MAX_TABLE_ROWS)))}
                    if rows.height
                    else {}
                ),
            },
        )
    yield from session_check_results(
        context, "bars", "large_moves", moves, severity=dg.AssetCheckSeverity.WARN
    )
    shares = {}
    for k in sessions:
        n_in, n_out = rows_in.get(k, 0), rows_out.get(k, 0)
        share = n_out / n_in if n_in else 0.0
        shares[k] = (
            share <= config.warn_quarantine_share,
            {
                "share": round(share, 6),
                "rows_in": n_in,
                "rows_quarantined": n_out,
                "by_rule": rules.get(k, {}),
            },
        )
    yield from session_check_results(
        context, "bars", "quarantine_share", shares, severity=dg.AssetCheckSeverity.WARN
    )


def _conform(raw: pl.DataFrame) -> pl.DataFrame:
    """Raw rows in the current raw partition schema; columns added since a partition was
    written (parse_errors) are null in it."""
    missing = [
        pl.lit(None, dtype).alias(c)
        for c, dtype in RAW_PARTITION_SCHEMA.items()
        if c not in raw.columns
    ]
    return raw.with_columns(missing).select(list(RAW_PARTITION_SCHEMA)).cast(RAW_PARTITION_SCHEMA)


def _counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    """Rows per session (ISO date) of ``frame[column]``."""
    return {d.isoformat(): n for d, n in frame.group_by(column).len().iter_rows()}


def _counts_by_rule(quarantined: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Quarantined rows per session and first-failed rule (rules with rows only)."""
    out: dict[str, dict[str, int]] = {}
    for d, rule, n in quarantined.group_by("partition_date", "rule").len().sort("rule").iter_rows():
        out.setdefault(d.isoformat(), {})[rule] = n
    return out
