"""Blocking contract checks on the stored ``bars`` partitions: pandera, Great Expectations, coverage.

Each check reads back what was written for the run's partition range, so it guards the files that
downstream assets will read, not an in-memory copy. Failure cases go into the check metadata.

The checks are partitioned like ``bars``: a daily run records one evaluation for its session. A
ranged run (a backfill) evaluates the whole range once; Dagster 1.13 records that evaluation
without a partition key (``AssetCheckResult`` has no partition), so the range's per-session check
rows show as not executed while the range-level evaluation carries the outcome and metadata.
"""

import dagster as dg
import polars as pl

from alphadag.defs.pipelines.partitions import partition_days, sessions_partitions
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.markdown import markdown_table
from alphadag.market.contracts import check_bars
from alphadag.market.gx_suite import run_bars_suite


@dg.asset_check(asset="bars", blocking=True, partitions_def=sessions_partitions)
def bars_pandera_schema(
    context: dg.AssetCheckExecutionContext, bars: pl.DataFrame
) -> dg.AssetCheckResult:
    """pandera (polars) schema of the bars contract: dtypes, finite positive prices, OHLC order,
    volume >= 0, unique (ticker, date), dates are the partitions' sessions."""
    report = check_bars(bars, partition_days(context))
    return dg.AssetCheckResult(passed=report.success, metadata=report.to_metadata())


@dg.asset_check(asset="bars", blocking=True, partitions_def=sessions_partitions)
def bars_gx_suite(
    context: dg.AssetCheckExecutionContext, bars: pl.DataFrame, market_data: MarketDataResource
) -> dg.AssetCheckResult:
    """Great Expectations 1.x suite of the bars contract, run in an ephemeral context."""
    days = partition_days(context)
    coverage = market_data.get_source().coverage()
    min_rows = 1 if any(coverage.covers(d) for d in days) else 0
    report = run_bars_suite(bars, days, min_rows=min_rows)
    return dg.AssetCheckResult(passed=report.success, metadata=report.to_metadata())


@dg.asset_check(asset="bars", blocking=True, partitions_def=sessions_partitions)
def bars_sessions_complete(
    context: dg.AssetCheckExecutionContext, bars: pl.DataFrame, market_data: MarketDataResource
) -> dg.AssetCheckResult:
    """Every session inside the source's coverage has bars; sessions past it are empty by design."""
    days = partition_days(context)
    coverage = market_data.get_source().coverage()
    counts = dict(bars.group_by("date").len().iter_rows())
    missing = [d for d in days if coverage.covers(d) and counts.get(d, 0) == 0]
    beyond = [d for d in days if not coverage.covers(d)]
    return dg.AssetCheckResult(
        passed=not missing,
        metadata={
            "sessions": len(days),
            "empty_sessions_in_coverage": len(missing),
            "empty_sessions": dg.MetadataValue.md(
                markdown_table(pl.DataFrame({"date": missing[:50]}, schema={"date": pl.Date}))
            ),
            "sessions_beyond_coverage": len(beyond),
            "coverage": f"{coverage.start} .. {coverage.end}",
        },
    )
