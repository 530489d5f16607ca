"""Study: which one-day VaR method passes its backtest on the offline sample, at 95% and 99%.

The candidates were fixed before looking at the results (no parameter is tuned here): RiskMetrics
EWMA with lambda 0.94, 250-return windows, ``min_obs`` 60 and ``min_hist_obs`` 100, all
:func:`alphadag.risk.risk_table` defaults:

- ``historical``: the empirical quantile of the last 250 returns (``var_method="auto"``, the
  previous default; parametric below 100 returns);
- ``ewma_normal``: normal with the window's mean and the EWMA sigma (``var_method="parametric"``);
- ``fhs``: filtered historical simulation, the quantile of the last 250 EWMA-standardised returns
  times today's EWMA sigma (``var_method="filtered"``);
- ``garch_normal``: normal with a GARCH(1,1) sigma refitted every session on the last 1,000
  returns (``vol_method="garch", var_method="parametric"``; slow: about 65,000 fits).

Each session ``t`` of the sample's 20 stocks from ``--start`` is scored exactly as the
``predictions`` asset does it: :func:`risk_table` on the bars of the 301 sessions up to ``t``
(``RISK_LOOKBACK_SESSIONS``), data starting at ``--start`` as the pipeline's partitions do. The
forecasts are backtested with :mod:`alphadag.risk.var_backtest` (pooled over tickers, per year,
per ticker) and a table is printed. The choice of the default was made on this same sample: the
figures are an in-sample check of four a-priori candidates, not an out-of-sample test.

    .venv/bin/python bench/var_backtest.py                  # all four (GARCH takes minutes)
    .venv/bin/python bench/var_backtest.py --methods historical ewma_normal fhs
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import polars as pl

from alphadag.market.sources.sample import SampleSource
from alphadag.risk import risk_table
from alphadag.risk.var_backtest import breaches, coverage_table

METHODS = {
    "historical": {"var_method": "auto"},
    "ewma_normal": {"var_method": "parametric"},
    "fhs": {"var_method": "filtered"},
    "garch_normal": {"var_method": "parametric", "vol_method": "garch"},
}
LOOKBACK = 300  # alphadag.defs.assets.serving.RISK_LOOKBACK_SESSIONS


def sample_bars(start: dt.date, end: dt.date) -> pl.DataFrame:
    """The sample's 20 stocks (indices excluded), ticker/date/close."""
    raw = SampleSource().fetch(start, end)
    return (
        raw.filter(~pl.col("ticker").str.starts_with("^"))
        .select("ticker", "date", "close")
        .drop_nulls()
        .sort("ticker", "date")
    )


def forecasts(bars: pl.DataFrame, method: str) -> pl.DataFrame:
    """The VaR 95/99 served for every session, as the predictions asset computes them."""
    days = bars.get_column("date").unique().sort().to_list()
    out = []
    for i, day in enumerate(days):
        window = bars.filter(pl.col("date").is_between(days[max(0, i - LOOKBACK)], day))
        out.append(risk_table(window, day, **METHODS[method]))
    return pl.concat(out).select("ticker", "date", "var_method", "var_95", "var_99")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2010-01-01")
    parser.add_argument("--end", default="2022-12-31")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--cache", default=".alphadag/var_backtest_study")
    args = parser.parse_args()
    bars = sample_bars(dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end))
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    overall, yearly, per_ticker = [], [], []
    for method in args.methods:
        path = cache / f"{method}_{args.start}_{args.end}.parquet"
        if path.exists():
            fc = pl.read_parquet(path)
        else:
            t0 = time.perf_counter()
            fc = forecasts(bars, method)
            fc.write_parquet(path)
            print(f"{method}: forecasts in {time.perf_counter() - t0:.1f} s")
        rows = breaches(fc, bars)
        tag = pl.lit(method).alias("method")
        overall.append(coverage_table(rows).select(tag, pl.all()))
        year = pl.col("date").dt.year().alias("year")
        yearly.append(coverage_table(rows, by=[year]).select(tag, pl.all()))
        per_ticker.append(coverage_table(rows, by=["ticker"]).select(tag, pl.all()))
    pl.Config.set_tbl_rows(200)
    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(200)
    cols = ["method", "level", "n", "breaches", "rate", "p_pof", "p_ind", "p_cc"]
    print("overall (pooled over tickers)")
    print(pl.concat(overall).select(cols).with_columns(pl.col(pl.Float64).round(4)))
    tick = pl.concat(per_ticker)
    print("per ticker: how many of the tickers pass each test at 5%")
    print(
        tick.group_by("method", "level")
        .agg(
            pl.len().alias("tickers"),
            (pl.col("p_pof") >= 0.05).sum().alias("kupiec_pass"),
            (pl.col("p_ind") >= 0.05).sum().alias("ind_pass"),
            ((pl.col("p_pof") >= 0.05) & (pl.col("p_ind") >= 0.05)).sum().alias("both_pass"),
            pl.col("rate").min().round(4).alias("rate_min"),
            pl.col("rate").max().round(4).alias("rate_max"),
        )
        .sort("method", "level")
    )
    print("per year: breach rate (and years failing Kupiec at 5%)")
    years = pl.concat(yearly)
    print(
        years.pivot(on="level", index=["method", "year"], values="rate")
        .with_columns(pl.col(pl.Float64).round(4))
        .sort("method", "year")
    )
    print(
        years.filter(pl.col("p_pof") < 0.05)
        .group_by("method", "level")
        .agg(pl.col("year").sort().alias("years_failing_kupiec"))
        .sort("method", "level")
    )


if __name__ == "__main__":
    main()
