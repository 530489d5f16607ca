"""Feature and label assets: ``features`` (no look-ahead) and ``labels`` (forward returns, apart).

Grain: one row per (ticker, session) with a bar. Partition: one XNYS session; a ranged run is one
run. ``features`` of session t read every ``bars`` partition up to and including t (and nothing
after), so a session computed alone is byte-identical to the same session computed in a full
history backfill: the rows in are the same, so the bytes out are. ``labels`` of t read the bars of
t .. t+20 sessions; they are a separate table that no feature ever reads.
"""

import random
import zlib

import dagster as dg
import polars as pl

from alphadag.defs.assets.session_checks import MAX_TABLE_ROWS, session_check_results
from alphadag.defs.automation.freshness import DAILY_FRESHNESS
from alphadag.defs.automation.partitions import (
    FROM_FIRST_SESSION,
    full_history_backfill,
    partition_days,
    sessions_partitions,
)
from alphadag.defs.partition_metadata import add_partition_metadata
from alphadag.defs.resources.storage import Audited
from alphadag.features import (
    FEATURE_COLUMNS,
    audit_lookahead,
    compute_features,
    compute_labels,
    label_columns,
)
from alphadag.features.contracts import check_features
from alphadag.markdown import markdown_table
from alphadag.storage import storage_metadata

LABEL_HORIZONS = (1, 5, 20)


class FeaturesConfig(dg.Config):
    """How many tickers and cut dates the look-ahead audit samples per run."""

    audit_tickers: int = 3
    audit_cuts: int = 6


def _null_share(frame: pl.DataFrame, columns: list[str]) -> dict[str, float]:
    """Share of null values of each column that has any (warm-up); {} means no nulls.

    Only those columns: the metadata is stored with every session's materialization event.
    """
    if frame.height == 0:
        return {}
    nulls = frame.select(pl.col(columns).null_count()).row(0)
    return {c: round(n / frame.height, 4) for c, n in zip(columns, nulls, strict=True) if n}


def _by_session(frame: pl.DataFrame, days: list) -> dict:
    """``frame`` split by its ``date`` into one (possibly empty) frame per session of ``days``."""
    parts = {k[0]: p for k, p in frame.partition_by("date", as_dict=True).items()}
    return {d: parts.get(d, frame.clear()) for d in days}


def _contract_by_session(own: pl.DataFrame, bars: pl.DataFrame, sessions: list[str]) -> dict:
    """features_contract per session from one validation of the whole range.

    A pandera failure case names its row (``index``); a null-rule case names "TICKER DATE"
    (tickers have no whitespace). A case that names neither fails every session.
    """
    report = check_features(own, bars)
    dates = own["date"].cast(pl.String).to_list()
    cases: dict[str | None, list[dict]] = {}
    for case in report.failure_cases:
        index = case.get("index")
        if isinstance(index, int) and 0 <= index < len(dates):
            session = dates[index]
        elif case.get("check") == "null_outside_warmup":
            session = str(case.get("failure_case", "")).split(" ")[1]
        else:
            session = None
        cases.setdefault(session if session in sessions else None, []).append(case)
    rows = {k: n for k, n in own.group_by(pl.col("date").cast(pl.String)).len().iter_rows()}
    out = {}
    for k in sessions:
        failures = cases.get(None, []) + cases.get(k, [])
        by_check: dict[str, int] = {}
        for case in failures:
            key = f"{case.get('column') or 'frame'}:{case.get('check')}"
            by_check[key] = by_check.get(key, 0) + 1
        out[k] = (
            not failures,
            {
                "rows_checked": rows.get(k, 0),
                "n_failure_cases": len(failures),
                **(
                    {
                        "failures_by_check": by_check,
                        "failure_cases": failures[:MAX_TABLE_ROWS],
                    }
                    if failures
                    else {}
                ),
            },
        )
    return out


@dg.asset(
    partitions_def=sessions_partitions,
    backfill_policy=full_history_backfill,
    group_name="features",
    kinds={"polars", "parquet"},
    freshness_policy=DAILY_FRESHNESS,
    ins={
        "bars": dg.AssetIn(
            metadata=storage_metadata(window_optional=True),
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=FROM_FIRST_SESSION,
                end_offset=0,
                allow_nonexistent_upstream_partitions=True,
            ),
        )
    },
    check_specs=[
        dg.AssetCheckSpec(
            "features_contract",
            asset="features",
            blocking=True,
            description="pandera schema: Float64, finite; nulls only in warm-up or OHLCV on "
            "close-only rows. One evaluation per session.",
            partitions_def=sessions_partitions,
        ),
        # Unpartitioned on purpose: the audit samples tickers and cut dates across the run's
        # range to test the feature code, a property of no single session.
        dg.AssetCheckSpec(
            "features_no_lookahead",
            asset="features",
            blocking=True,
            description="Recomputed on histories truncated at sampled cut dates, every value at t "
            "is unchanged: no feature reads rows after t.",
        ),
    ],
)
def features(context: dg.AssetExecutionContext, config: FeaturesConfig, bars: pl.DataFrame):
    """Features per (ticker, session): TA-Lib-exact indicators, returns, volatility, ranks.

    Partition t is computed from bars of sessions <= t only. Labels are never joined in here.
    """
    days = partition_days(context)
    table = compute_features(bars)
    own = table.filter(pl.col("date").is_in(days)).sort("date", "ticker")
    sessions = [d.isoformat() for d in days]
    # bars rows up to and including each session: what a one-session run of it reads
    counts = bars.group_by("date").len().sort("date")
    dates, cumulative = counts["date"].to_list(), counts["len"].cum_sum().to_list()
    through: dict[str, int] = {}
    j, running = 0, 0
    for day in days:  # ascending
        while j < len(dates) and dates[j] <= day:
            running, j = cumulative[j], j + 1
        through[day.isoformat()] = running
    add_partition_metadata(
        context,
        "features",
        {
            day.isoformat(): {
                "history_rows_read": through[day.isoformat()],
                "null_share": _null_share(part, list(FEATURE_COLUMNS)),
            }
            for day, part in _by_session(own, days).items()
        },
    )
    if len(days) > 1:
        context.log.info(
            f"features: {own.height} rows over {len(days)} sessions from {bars.height} bars rows"
        )
    tickers = sorted(own["ticker"].unique().to_list())
    rng = random.Random(zlib.crc32(f"{days[0]}:{days[-1]}".encode()))
    sample = rng.sample(tickers, min(config.audit_tickers, len(tickers)))
    audit = audit_lookahead(
        compute_features, bars.filter(pl.col("ticker").is_in(sample)), n_cuts=config.audit_cuts
    )
    lookahead = (
        audit.ok,
        {
            "tickers_audited": ", ".join(sample),
            "cuts_checked": len(audit.cuts_checked),
            "violations": audit.n_violations,
            "violating_columns": ", ".join(audit.columns) or "none",
            "examples": dg.MetadataValue.md(markdown_table(pl.DataFrame(audit.violations[:20]))),
        },
    )
    # write-audit-publish: the contract is checked on the staged files; a session is published
    # only if it passes, and none is when the look-ahead audit (a property of the code) fails
    staged = Audited(
        own,
        audit=lambda rows: {
            "features_contract": _contract_by_session(rows, bars, sessions),
            "features_no_lookahead": lookahead,
        },
        blocking=frozenset({"features_contract", "features_no_lookahead"}),
    )
    yield dg.Output(staged)
    yield from session_check_results(
        context,
        "features",
        "features_contract",
        staged.session_outcomes("features_contract", sessions),
    )
    yield dg.AssetCheckResult(
        check_name="features_no_lookahead",
        passed=audit.ok,
        metadata={**lookahead[1], "sessions_published": len(staged.published)},
    )


@dg.asset(
    partitions_def=sessions_partitions,
    backfill_policy=full_history_backfill,
    group_name="features",
    kinds={"polars", "parquet"},
    ins={
        "bars": dg.AssetIn(
            metadata=storage_metadata(window_optional=True),
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=0,
                end_offset=max(LABEL_HORIZONS),
                allow_nonexistent_upstream_partitions=True,
            ),
        )
    },
)
def labels(context: dg.AssetExecutionContext, bars: pl.DataFrame) -> dg.Output:
    """Forward log returns fwd_ret_{h}d (close of t to close of t+h sessions) per ticker.

    Partition t reads bars t .. t+20: a horizon whose end is not materialized yet is null, and
    the partition fills in when it is re-materialized later. Kept apart from features.
    """
    days = partition_days(context)
    table = compute_labels(bars, horizons=LABEL_HORIZONS)
    own = table.filter(pl.col("date").is_in(days)).sort("date", "ticker")
    cols = list(label_columns(LABEL_HORIZONS))
    add_partition_metadata(
        context,
        "labels",
        {
            d.isoformat(): {"null_share": _null_share(p, cols)}
            for d, p in _by_session(own, days).items()
        },
    )
    return dg.Output(own)
