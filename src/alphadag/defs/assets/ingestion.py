"""Ingestion assets: ``raw_bars`` as delivered, then validated ``bars`` and ``quarantined_bars``.

Grain: one row per (ticker, session); partition: one XNYS session; a ranged run (backfill) is one
run over the range. ``bars`` reads the five sessions before its range from ``raw_bars`` only to build
the move reference of each ticker (no look-ahead: a bar is judged on earlier closes only).
"""

import datetime as dt
import time

import dagster as dg
import polars as pl

from alphadag.defs.pipelines.freshness import DAILY_FRESHNESS
from alphadag.defs.pipelines.partitions import (
    full_history_backfill,
    partition_days,
    sessions_partitions,
)
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.markdown import markdown_table
from alphadag.market.ingest import RAW_PARTITION_SCHEMA, fetch_partitions
from alphadag.market.sources.csv_landing import LandingFileError
from alphadag.market.sources.errors import PermanentSourceError
from alphadag.market.validation import REFERENCE_WINDOW, MoveBounds, validate

source_fetch_retry = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


@dg.asset(
    partitions_def=sessions_partitions,
    backfill_policy=full_history_backfill,
    group_name="ingestion",
    kinds={"polars", "parquet"},
    metadata={"partition_column": "partition_date"},
    retry_policy=source_fetch_retry,
    pool="market_data",
)
def raw_bars(context: dg.AssetExecutionContext, market_data: MarketDataResource) -> dg.Output:
    """Bars exactly as the configured source delivered them, one Parquet file per session.

    Rows dated on a non-session inside the fetch window are kept, attributed to the next session.
    Transient source errors are retried with exponential backoff and jitter; permanent ones fail
    the run without retry.
    """
    days = partition_days(context)
    source = market_data.get_source()
    started = time.monotonic()
    try:
        raw = fetch_partitions(source, days)
    except (PermanentSourceError, LandingFileError) as err:
        raise dg.Failure(description=str(err), allow_retries=False) from err
    coverage = source.coverage()
    beyond = [d for d in days if not coverage.covers(d)]
    return dg.Output(
        raw,
        metadata={
            "source": source.name,
            "rows": raw.height,
            "tickers": raw["ticker"].n_unique(),
            "sessions": len(days),
            "fetch_seconds": round(time.monotonic() - started, 3),
            "fetched_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "sessions_beyond_source_coverage": len(beyond),
            "coverage": f"{coverage.start} .. {coverage.end}",
        },
    )


class BarsValidationConfig(dg.Config):
    """Bounds of the move rule (see ``alphadag.market.validation``)."""

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
        ),
        "quarantined_bars": dg.AssetOut(
            group_name="ingestion",
            kinds={"polars", "parquet"},
            metadata={"partition_column": "partition_date"},
            description="Rejected raw rows with the rule, value and a reason naming origin, "
            "ticker, date and rule.",
        ),
    },
    ins={
        "raw_bars": dg.AssetIn(
            metadata={"window_optional": True},
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
    ],
)
def validated_bars(
    context: dg.AssetExecutionContext, config: BarsValidationConfig, raw_bars: pl.DataFrame
):
    """Split raw bars into ``bars`` and ``quarantined_bars``: rows in = rows kept + quarantined."""
    days = partition_days(context)
    current = raw_bars.filter(pl.col("partition_date").is_in(days))
    history = raw_bars.filter(pl.col("partition_date") < min(days))
    res = validate(
        current.cast(RAW_PARTITION_SCHEMA),
        partition_dates=days,
        history=history,
        bounds=MoveBounds(flag_move=config.flag_move, reject_factor=config.reject_factor),
    )
    by_rule = res.counts_by_rule()
    yield dg.Output(
        res.kept,
        output_name="bars",
        metadata={
            "rows": res.kept.height,
            "tickers": res.kept["ticker"].n_unique(),
            "rows_in": current.height,
            "rows_quarantined": res.quarantined.height,
            "sessions_in_run": len(days),
            # Run totals: per-partition counts only when the run is one partition.
            **({"dagster/row_count": res.kept.height} if len(days) == 1 else {}),
        },
    )
    yield dg.Output(
        res.quarantined,
        output_name="quarantined_bars",
        metadata={"rows": res.quarantined.height, "by_rule": by_rule},
    )
    yield dg.AssetCheckResult(
        check_name="large_moves",
        asset_key="bars",
        passed=res.flagged.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "n_flagged": res.flagged.height,
            "flag_move": config.flag_move,
            "flagged": dg.MetadataValue.md(markdown_table(res.flagged)),
        },
    )
    share = res.quarantined.height / current.height if current.height else 0.0
    yield dg.AssetCheckResult(
        check_name="quarantine_share",
        asset_key="bars",
        passed=share <= config.warn_quarantine_share,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"share": round(share, 6), "by_rule": by_rule},
    )
