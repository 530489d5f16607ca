"""The ``var_backtest`` asset: was the served one-day VaR breached as often as it promised?

Grain: one row per (ticker, prediction date, level) whose next-day return was realised on the
partition's session: a VaR served at the close of d is tested against the return from d to the
ticker's next bar, T. Partition: that realisation session T, which reads the predictions and the
bars of every session up to T (closes up to T only: nothing after T is read). The statistics
(:mod:`alphadag.risk.var_backtest`: breach rate, Kupiec, Christoffersen, conditional coverage)
pool every matured forecast up to the run's last session; each session's materialization carries
the figures of the trailing ``rolling_sessions`` as numbers (the Dagster UI plots them), the last
session's also the overall and per-year tables. The WARN check ``var_backtest_passes`` fails when
the overall Kupiec or Christoffersen p-value of a served level is below ``alpha``.
"""

import bisect
import datetime as dt

import dagster as dg
import polars as pl
from pydantic import Field

from alphadag.defs.automation.partitions import (
    FROM_FIRST_SESSION,
    full_history_backfill,
    partition_days,
    sessions_partitions,
)
from alphadag.defs.partition_metadata import add_partition_metadata
from alphadag.markdown import markdown_table
from alphadag.risk.var_backtest import COVERAGE_COLUMNS, CoverageTest, breaches, coverage_table
from alphadag.storage import storage_metadata

_HISTORY = dg.TimeWindowPartitionMapping(
    start_offset=FROM_FIRST_SESSION, end_offset=0, allow_nonexistent_upstream_partitions=True
)


class VarBacktestConfig(dg.Config):
    """Levels tested, the test size and the rolling window of the per-session figures."""

    levels: list[float] = Field(
        default_factory=lambda: [0.95, 0.99],
        description="VaR levels to test; a level whose var_NN column is not served is skipped",
    )
    alpha: float = Field(
        0.05, gt=0.0, lt=1.0, description="size of the Kupiec/Christoffersen tests"
    )
    rolling_sessions: int = Field(
        250, ge=20, description="sessions in the trailing window of the per-session figures"
    )


@dg.asset(
    partitions_def=sessions_partitions,
    backfill_policy=full_history_backfill,
    group_name="evaluation",
    kinds={"polars", "parquet"},
    ins={
        "predictions": dg.AssetIn(
            metadata=storage_metadata(window_optional=True), partition_mapping=_HISTORY
        ),
        "bars": dg.AssetIn(
            metadata=storage_metadata(window_optional=True), partition_mapping=_HISTORY
        ),
    },
    check_specs=[
        # Unpartitioned: it tests every forecast matured by the run's last session, a property
        # of the history rather than of one session.
        dg.AssetCheckSpec(
            "var_backtest_passes",
            asset="var_backtest",
            description="WARN when the served VaR fails its backtest over every matured forecast: "
            "Kupiec's (breach rate) or Christoffersen's (breach clustering) p-value below alpha "
            "at a served level. Passes, saying so, when nothing has matured yet.",
        )
    ],
)
def var_backtest(
    context: dg.AssetExecutionContext,
    config: VarBacktestConfig,
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
):
    """Served VaR forecasts against the next day's realised return.

    Columns: date (the session the return was realised on), prediction_date, ticker, level, var,
    ret (simple return from prediction_date's close to date's close), breach (ret < -var).
    Partition T holds the forecasts that matured on T; no figure uses a close after T.
    """
    days = partition_days(context)
    served = [lv for lv in config.levels if f"var_{round(lv * 100):d}" in predictions.columns]
    skipped = sorted(set(config.levels) - set(served))
    last = days[-1]
    rows = _matured(predictions, bars, served, last)
    sessions = bars.filter(pl.col("date") <= last).get_column("date").unique().sort().to_list()
    per_session = {
        d.isoformat(): _rolling_figures(rows, sessions, d, config.rolling_sessions) for d in days
    }
    overall = coverage_table(rows)
    yearly = coverage_table(rows, by=[pl.col("prediction_date").dt.year().alias("year")])
    per_session[last.isoformat()].update(
        {
            "overall": dg.MetadataValue.md(markdown_table(_rounded(overall))),
            "per_year": dg.MetadataValue.md(markdown_table(_rounded(yearly), limit=200)),
            **_figures(overall, "overall"),
        }
    )
    add_partition_metadata(context, "var_backtest", per_session)
    yield dg.Output(
        rows.filter(pl.col("date").is_between(days[0], last)),
        metadata={
            "levels_tested": ", ".join(f"{lv:g}" for lv in served) or "none",
            "levels_not_served": ", ".join(f"{lv:g}" for lv in skipped) or "none",
            "alpha": config.alpha,
        },
    )
    yield _passes_check(overall, last, config.alpha, skipped)


def _matured(
    predictions: pl.DataFrame, bars: pl.DataFrame, levels: list[float], last: dt.date
) -> pl.DataFrame:
    """Every forecast whose next bar is on or before ``last``, keyed by its realisation date."""
    if not levels:
        return _empty()
    cols = [f"var_{round(lv * 100):d}" for lv in levels]
    out = breaches(
        predictions.select("ticker", "date", *cols),
        bars.filter(pl.col("date") <= last),  # the no-look-ahead rule: no close after the run
        levels=levels,
    )
    return out.select(
        pl.col("realised_date").alias("date"),
        pl.col("date").alias("prediction_date"),
        "ticker",
        "level",
        "var",
        "ret",
        "breach",
    ).sort("date", "level", "ticker")


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "date": pl.Date,
            "prediction_date": pl.Date,
            "ticker": pl.String,
            "level": pl.Float64,
            "var": pl.Float64,
            "ret": pl.Float64,
            "breach": pl.Boolean,
        }
    )


def _rolling_figures(rows: pl.DataFrame, sessions: list, day: dt.date, n: int) -> dict:
    """The trailing-``n``-session figures of one realisation session, as plottable numbers."""
    k = bisect.bisect_right(sessions, day)  # sessions[:k] are the sessions up to day
    start = sessions[max(0, k - n)] if k else day
    window = rows.filter(pl.col("date").is_between(start, day))
    today = window.filter(pl.col("date") == day)
    out: dict = {
        "matured_forecasts": today.height,
        "breaches": int(today["breach"].sum()),
        "rolling_window": f"{start}..{day}",
    }
    # coverage_table orders each ticker's rows by "date", the realisation session here: the same
    # order as the forecast dates
    return out | _figures(coverage_table(window), "rolling")


def _figures(table: pl.DataFrame, prefix: str) -> dict:
    out = {}
    for row in table.iter_rows(named=True):
        s = f"{round(row['level'] * 100):d}"
        out |= {
            f"{prefix}_n_{s}": row["n"],
            f"{prefix}_breach_rate_{s}": row["rate"],
            f"{prefix}_kupiec_p_{s}": row["p_pof"],
            f"{prefix}_christoffersen_p_{s}": row["p_ind"],
            f"{prefix}_cc_p_{s}": row["p_cc"],
        }
    return out


def _rounded(table: pl.DataFrame) -> pl.DataFrame:
    return table.select(
        pl.exclude("nominal", "lr_pof", "lr_ind", "lr_cc", "n00", "n01", "n10", "n11")
    ).with_columns(pl.col("rate", "p_pof", "p_ind", "p_cc").round(4))


def _passes_check(overall: pl.DataFrame, day: dt.date, alpha: float, skipped: list[float]):
    meta = {
        "through": day.isoformat(),
        "alpha": alpha,
        "levels_not_served": ", ".join(f"{lv:g}" for lv in skipped) or "none",
    }
    if overall.height == 0:
        return dg.AssetCheckResult(
            check_name="var_backtest_passes",
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"not evaluated: no served VaR forecast has matured by {day}",
            metadata={**meta, "evaluated": False},
        )
    failing = [
        f"{row['level']:g}: breach rate {row['rate']:.4f} vs {row['nominal']:g}, "
        f"Kupiec p {row['p_pof']:.3g}, Christoffersen p {row['p_ind']:.3g}"
        for row in overall.iter_rows(named=True)
        if not CoverageTest(**{c: row[c] for c in COVERAGE_COLUMNS}).passes(alpha)
    ]
    n = int(overall["n"].max())
    return dg.AssetCheckResult(
        check_name="var_backtest_passes",
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"VaR fails its backtest over {n} forecasts per level up to {day}: "
            + "; ".join(failing)
            if failing
            else f"VaR passes Kupiec and Christoffersen at {alpha:g} over {n} forecasts per "
            f"level up to {day}"
        ),
        metadata={
            **meta,
            "evaluated": True,
            **_figures(overall, "overall"),
            "overall": dg.MetadataValue.md(markdown_table(_rounded(overall))),
        },
    )
