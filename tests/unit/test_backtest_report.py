"""Backtest reports: the comparison table, monthly returns checked by hand, PNGs and the HTML file."""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import polars as pl
import pytest

from alphadag.backtest import run_backtest, strategies
from alphadag.backtest.report import (
    TABLE_STATS,
    comparison_table,
    monthly_returns,
    run_comparison,
    write_report,
)
from alphadag.market.calendar import sessions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _bars(tickers, seed: int, start="2023-01-03", end="2024-06-28") -> pl.DataFrame:
    days = sessions(start, end)
    rng = np.random.default_rng(seed)
    frames = []
    for t in tickers:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0004, 0.015, len(days))))
        opens = close * np.exp(rng.normal(0.0, 0.003, len(days)))
        frames.append(pl.DataFrame({"ticker": t, "date": days, "open": opens, "close": close}))
    return pl.concat(frames).with_columns(pl.col("date").cast(pl.Date))


@pytest.fixture(scope="module")
def runs():
    bars = _bars(["AAA", "BBB"], seed=3)
    kw = {"cash": 100_000.0, "commission": 0.001}
    results = {
        "sma_cross": run_backtest(bars, strategies.SmaCross(fast=10, slow=30), **kw),
        "rsi_reversion": run_backtest(bars, strategies.RsiReversion(), sizing="equal_weight", **kw),
        "buy_and_hold": run_backtest(bars, strategies.BuyAndHold(), sizing="equal_weight", **kw),
    }
    bench = run_backtest(_bars(["^GSPC"], seed=9), strategies.BuyAndHold(), **kw)
    return results, bench


def _by_hand(equity: pl.DataFrame) -> dict[tuple[int, int], float]:
    """Month-end equity over the previous month-end (the first month over the first value)."""
    ends: dict[tuple[int, int], float] = {}
    for day, value in sorted(zip(equity["date"], equity["equity"], strict=True)):
        ends[(day.year, day.month)] = value  # the last value seen in the month wins
    out, prev = {}, float(equity.sort("date")["equity"][0])
    for key in sorted(ends):
        out[key] = (ends[key] / prev - 1.0) * 100.0
        prev = ends[key]
    return out


def test_monthly_returns_match_an_independent_computation(runs):
    results, bench = runs
    for res in [*results.values(), bench]:
        got = monthly_returns(res.equity)
        expected = _by_hand(res.equity)
        assert [(y, m) for y, m in got.select("year", "month").iter_rows()] == list(expected)
        np.testing.assert_allclose(
            got["return_pct"].to_numpy(), list(expected.values()), rtol=1e-12
        )
        # compounding the months gives the total return
        total = np.prod(1 + got["return_pct"].to_numpy() / 100) - 1
        assert total * 100 == pytest.approx(res.stats.total_return_pct, rel=1e-9)
    # a curve with one row has one month and a zero return; a missing column is named
    one = pl.DataFrame({"date": [dt.date(2024, 3, 1)], "equity": [5.0]})
    assert monthly_returns(one)["return_pct"].to_list() == [0.0]
    with pytest.raises(ValueError, match="equity"):
        monthly_returns(one.drop("equity"))


def test_comparison_table_has_a_row_per_strategy_and_the_benchmark(runs):
    results, bench = runs
    table = comparison_table(results, bench, benchmark_name="^GSPC")
    assert table["strategy"].to_list() == [*results, "^GSPC"]
    assert table["role"].to_list() == ["strategy"] * 3 + ["benchmark"]
    assert set(TABLE_STATS) <= set(table.columns)
    for row in table.iter_rows(named=True):
        res = results.get(row["strategy"], bench)
        assert row["total_return_pct"] == res.stats.total_return_pct
        assert row["excess_return_pct"] == pytest.approx(
            res.stats.total_return_pct - bench.stats.total_return_pct
        )
    bench_row = table.row(3, named=True)
    assert bench_row["correlation"] == pytest.approx(1.0)
    # alpha and beta come from the stats: nan unless the runs were given benchmark=
    assert all(math.isnan(v) for v in table["beta"])
    assert "beta" not in comparison_table(results).columns
    with pytest.raises(ValueError, match="empty"):
        comparison_table({})


def test_write_report_files_pngs_and_a_self_contained_html(runs, tmp_path):
    results, bench = runs
    files = write_report(
        results,
        tmp_path / "report",
        benchmark=bench,
        benchmark_name="^GSPC",
        title="Test <report>",
        meta={"cash": 100_000, "commission": 0.001},
    )
    for png in (files.equity_png, files.drawdown_png, files.monthly_png):
        assert png.parent == tmp_path / "report"
        assert png.read_bytes()[:8] == PNG_MAGIC
    doc = files.html.read_text(encoding="utf-8")
    for name in [*results, "^GSPC"]:
        assert f"<td>{name}</td>" in doc
    assert not re.search(r"https?:", doc, re.IGNORECASE)
    sources = re.findall(r'src="([^"]*)"', doc)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "Test &lt;report&gt;" in doc and "<link" not in doc and "<script" not in doc
    # the monthly table in the report is the one returned
    assert files.monthly.height == sum(
        monthly_returns(r.equity).height for r in [*results.values(), bench]
    )
    assert files.table.height == 4


def test_run_comparison_trades_the_universe_and_regresses_on_the_benchmark():
    bars = pl.concat([_bars(["AAA", "BBB"], 3), _bars(["^GSPC"], 9), _bars(["^IXIC"], 4)])
    strats = {"hold": strategies.BuyAndHold(), "model": strategies.ModelSignal(k=1)}
    preds = bars.select(
        "date", "ticker", pl.col("close").pct_change().over("ticker").alias("y_pred")
    )
    kw = {"cash": 1e5, "commission": 0.0}
    results, bench = run_comparison(bars, strats, benchmark_ticker="^GSPC", predictions=preds, **kw)
    # indices are never traded; the model signal is sized by its weights
    assert set(results["hold"].trades["ticker"]) == {"AAA", "BBB"}
    assert set(results["model"].trades["ticker"]) <= {"AAA", "BBB"}
    assert set(bench.trades["ticker"]) == {"^GSPC"}
    # the benchmark regressed on itself: beta near 1 (its first day fills at the open)
    assert bench.stats.benchmark_beta == pytest.approx(1.0, abs=0.05)
    assert math.isfinite(results["hold"].stats.benchmark_beta)
    table = comparison_table(results, bench, benchmark_name="^GSPC")
    assert table["beta"][0] == results["hold"].stats.benchmark_beta
    assert table["alpha_ann_pct"][0] == results["hold"].stats.benchmark_alpha_ann_pct
    others, none = run_comparison(bars, strats, benchmark_ticker="^DJI", predictions=preds, **kw)
    assert none is None and set(others) == {"hold", "model"}
    with pytest.raises(ValueError, match="tradable"):
        run_comparison(_bars(["^GSPC"], 1), strats, benchmark_ticker=None, **kw)
