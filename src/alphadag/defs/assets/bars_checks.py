"""Blocking contract checks of ``bars``: pandera, Great Expectations, coverage (write-audit-publish).

The checks audit the staged partitions: ``validated_bars`` returns its kept rows as an ``Audited``
frame, the IO manager stages them, reads them back and calls :func:`audit_bars`, and only the
sessions that pass all three checks are published (alphadag.defs.resources.storage). So the checks
guard exactly the bytes downstream assets will read, and a failing session never replaces its
published file. Failure cases go into the check metadata.

The checks are partitioned like ``bars`` and record one evaluation per session, also in a ranged
run (:mod:`alphadag.defs.assets.session_checks`). Each validates the whole range in one pass and
attributes failing rows to the session of their ``date``; sessions without failing rows pass. A
failure no row of a known session explains (a wrong column type, a row dated outside the range)
fails every session of the run, since the file it came from cannot be told.
"""

import datetime as dt

import dagster as dg
import polars as pl

from alphadag.defs.assets.session_checks import MAX_TABLE_ROWS
from alphadag.defs.automation.partitions import sessions_partitions
from alphadag.market.contracts import check_bars
from alphadag.market.gx_suite import run_bars_suite
from alphadag.market.sources.base import Coverage

BARS_CONTRACT_CHECKS = {
    "bars_pandera_schema": "pandera (polars) schema of the bars contract: dtypes, finite positive "
    "prices, OHLC order, volume >= 0, unique (ticker, date), dates are the partitions' sessions.",
    "bars_gx_suite": "Great Expectations 1.x suite of the bars contract, run in an ephemeral "
    "context on the staged partitions.",
    "bars_sessions_complete": "Every session inside the source's coverage has bars; sessions past "
    "it are empty by design.",
}
"""The blocking checks a bars session must pass to be published, and what each checks."""

BARS_CONTRACT_CHECK_SPECS = [
    dg.AssetCheckSpec(
        name,
        asset="bars",
        blocking=True,
        description=f"{text} Audits the staged partition: a failing session is not published.",
        partitions_def=sessions_partitions,
    )
    for name, text in BARS_CONTRACT_CHECKS.items()
]


def audit_bars(bars: pl.DataFrame, days: list[dt.date], coverage: Coverage) -> dict[str, dict]:
    """Each contract check's outcome per session (ISO date) of the staged ``bars`` of ``days``."""
    return {
        "bars_pandera_schema": pandera_outcomes(bars, days),
        "bars_gx_suite": gx_outcomes(bars, days, coverage),
        "bars_sessions_complete": completeness_outcomes(bars, days, coverage),
    }


def pandera_outcomes(bars: pl.DataFrame, days: list[dt.date]) -> dict[str, tuple[bool, dict]]:
    """pandera (polars) schema of the bars contract, one outcome per session."""
    report = check_bars(bars, days)
    rows = _rows_by_session(bars, days)
    cases: dict[dt.date | None, list[dict]] = {}
    dates = bars["date"].to_list() if "date" in bars.columns else []
    for case in report.failure_cases:
        index = case.get("index")
        day = dates[index] if isinstance(index, int) and 0 <= index < len(dates) else None
        cases.setdefault(day if day in rows else None, []).append(case)
    unattributed = cases.get(None, [])
    outcomes = {}
    for day in days:
        failures = unattributed + cases.get(day, [])
        by_check: dict[str, int] = {}
        for case in failures:
            key = f"{case.get('column') or 'frame'}:{case.get('check')}"
            by_check[key] = by_check.get(key, 0) + 1
        outcomes[day.isoformat()] = (
            not failures,
            {
                "rows_checked": rows[day],
                "n_failure_cases": len(failures),
                **(
                    {
                        "failures_by_check": by_check,
                        "failure_cases": failures[:MAX_TABLE_ROWS],
                        "unattributed_failure_cases": len(unattributed),
                    }
                    if failures
                    else {}
                ),
            },
        )
    return outcomes


def gx_outcomes(
    bars: pl.DataFrame, days: list[dt.date], coverage: Coverage
) -> dict[str, tuple[bool, dict]]:
    """Great Expectations 1.x suite of the bars contract, run in an ephemeral context.

    One validation of the whole range; only when a row-level expectation fails, halves of the
    range are validated again until each failing session is found (a few runs per failing
    session, none when all pass). The row count is a range-level rule, as in a daily run: rows
    are expected when the source covers a session (``bars_sessions_complete`` checks each one).
    """
    rows = _rows_by_session(bars, days)
    known = bars.filter(pl.col("date").is_in(days))
    min_rows = 1 if any(coverage.covers(d) for d in days) else 0
    whole = run_bars_suite(bars, days, min_rows=min_rows)
    # the table-level row count (the range is empty although the source covers a session of it)
    # is the failure of each covered session; row-level failures are found by halving the range
    empty = [f for f in whole.failed if not f["columns"]]
    reports: dict[dt.date, dict] = {}
    unattributed: list[dict] = []
    if len(empty) < len(whole.failed):
        stray = bars.filter(pl.col("date").is_null() | ~pl.col("date").is_in(days))
        if stray.height:
            unattributed = run_bars_suite(stray, days, min_rows=0).failed
        _bisect(known, days, reports)
    outcomes = {}
    for day in days:
        failed = list(unattributed) + reports.get(day, {}).get("failed", [])
        if empty and coverage.covers(day):
            failed = empty + failed
        outcomes[day.isoformat()] = (
            not failed,
            {
                "rows_checked": rows[day],
                "gx_failed_count": len(failed),
                **(
                    {
                        "gx_failed_expectations": [
                            f"{f['expectation']}({', '.join(f['columns'])})" for f in failed
                        ],
                        "gx_failed": [_plain_failure(f) for f in failed],
                    }
                    if failed
                    else {}
                ),
            },
        )
    return outcomes


def _plain_failure(failure: dict) -> dict:
    return {k: v for k, v in failure.items() if v is not None and v != []}


def _bisect(bars: pl.DataFrame, days: list[dt.date], out: dict[dt.date, dict]) -> None:
    """Validate ``days``' rows; on failure split until single failing sessions remain."""
    report = run_bars_suite(bars, days, min_rows=0)
    if report.success:
        return
    if len(days) == 1:
        out[days[0]] = {"failed": report.failed}
        return
    mid = len(days) // 2
    for half in (days[:mid], days[mid:]):
        _bisect(bars.filter(pl.col("date").is_in(half)), half, out)


def completeness_outcomes(
    bars: pl.DataFrame, days: list[dt.date], coverage: Coverage
) -> dict[str, tuple[bool, dict]]:
    """Every session inside the source's coverage has bars; sessions past it are empty by design."""
    rows = _rows_by_session(bars, days)
    outcomes = {
        day.isoformat(): (
            not (coverage.covers(day) and rows[day] == 0),
            {
                "rows": rows[day],
                "beyond_coverage": not coverage.covers(day),
                "coverage": f"{coverage.start} .. {coverage.end}",
            },
        )
        for day in days
    }
    return outcomes


def _rows_by_session(bars: pl.DataFrame, days: list[dt.date]) -> dict[dt.date, int]:
    counts = dict(bars.group_by("date").len().iter_rows()) if "date" in bars.columns else {}
    return {d: counts.get(d, 0) for d in days}
