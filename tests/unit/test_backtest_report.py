"""Backtest reports: the comparison table, monthly returns, the year x month table, the parameter
heatmap, drawdown periods and the trade list checked against independent computations; the PNGs and
the HTML file (its rendering in a browser: tests/integration/test_report_browser.py)."""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import polars as pl
import pytest

from alphadag.backtest import run_backtest, strategies
from alphadag.backtest.report import (
    MONTHS,
    TABLE_STATS,
    comparison_table,
    monthly_returns,
    monthly_table,
    param_heatmap,
    parse_label,
    rank_runs,
    run_comparison,
    sparkline_svg,
    strategy_label,
    trade_list,
    worst_drawdowns,
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
        bars=_bars(["AAA", "BBB"], seed=3),
        title="Test <report>",
        meta={"cash": 100_000, "commission": 0.001},
    )
    for png in (files.equity_png, files.drawdown_png, files.monthly_png):
        assert png.parent == tmp_path / "report"
        assert png.read_bytes()[:8] == PNG_MAGIC
    doc = files.html.read_text(encoding="utf-8")
    # the best run by Sharpe is first in the table and marked; the benchmark row is last
    sharpe = {name: r.stats.sharpe for name, r in results.items()}
    assert files.best == files.focus == max(sharpe, key=lambda n: sharpe[n])
    rows = re.findall(r'<tr class="(\w*)"><td>(.*?)</td>', doc)
    assert rows[0][0] == "best" and rows[0][1].endswith(files.best)
    assert [r[0] for r in rows].count("best") == 1 and rows[-1] == ("bench", "^GSPC")
    # self-contained: plotly.js inline once, no external script, stylesheet, image or frame
    assert doc.count("<script") == doc.count("</script>") and "<script src" not in doc
    assert doc.count("plotly.js v") == 1 and "<link" not in doc and "<iframe" not in doc
    markup = re.sub(r"<script[^>]*>.*?</script>", "", doc, flags=re.DOTALL)
    assert not re.search(r"(src|href)=", markup)
    for div in ("equity-chart", "price-chart"):
        assert f'id="{div}"' in doc
    assert 'id="heatmap"' not in doc  # three different strategies: no parameter grid
    assert "Test &lt;report&gt;" in doc
    # the trades of the focus run: listed and written in full
    trades = pl.read_csv(tmp_path / "report" / "trades.csv", try_parse_dates=True)
    assert trades.equals(results[files.focus].trades)
    # the monthly table in the result holds every curve's months
    assert files.monthly.height == sum(
        monthly_returns(r.equity).height for r in [*results.values(), bench]
    )
    assert files.table.height == 4
    with pytest.raises(ValueError, match="focus"):
        write_report(results, tmp_path / "x", focus="no_such_run")


def test_monthly_table_is_the_monthly_returns_laid_out_by_year(runs):
    results, bench = runs
    for res in [*results.values(), bench]:
        by_hand = _by_hand(res.equity)
        table = monthly_table(res.equity)
        assert table.columns == ["year", *MONTHS, "year_pct"]
        assert table["year"].to_list() == sorted({y for y, _ in by_hand})
        for row in table.iter_rows(named=True):
            for m, name in enumerate(MONTHS, start=1):
                expected = by_hand.get((row["year"], m))
                if expected is None:
                    assert row[name] is None
                else:
                    assert row[name] == pytest.approx(expected, rel=1e-12)
            # the year's return: its last equity over the previous year's last (or the first)
            days = res.equity.sort("date")
            year_end = days.filter(pl.col("date").dt.year() == row["year"])["equity"][-1]
            before = days.filter(pl.col("date").dt.year() < row["year"])["equity"]
            start = before[-1] if before.len() else days["equity"][0]
            assert row["year_pct"] == pytest.approx((year_end / start - 1) * 100, rel=1e-9)


def test_parse_label_inverts_strategy_label():
    for name, params in [
        ("sma_cross", {"fast": 5, "slow": 20}),
        ("rsi_reversion", {"period": 14, "lower": 27.5, "upper": 70}),
        ("model_signal", {"k": 3, "long_short": True}),
        ("custom", {"mode": "fast"}),
        ("buy_and_hold", {}),
    ]:
        assert parse_label(strategy_label(name, params)) == (name, params)
    assert parse_label("odd(label)") == ("odd(label)", {})  # not k=v: left as it is


def test_param_heatmap_is_the_metric_over_the_two_varying_parameters():
    fast, slow = [5, 10, 20], [30, 50, 10]
    rows = []
    for f in fast:
        for s in slow:
            if f < s:  # fast >= slow is no run: a gap in the grid
                rows.append({"strategy": strategy_label("sma", {"fast": f, "slow": s}),
                             "sharpe": f / s, "max_drawdown_pct": -float(f + s)})  # fmt: skip
    rows.append({"strategy": "other", "sharpe": 9.0, "max_drawdown_pct": 0.0})
    table = pl.DataFrame(rows)
    heat = param_heatmap(table, "sharpe")
    assert (heat.strategy, heat.x, heat.y, heat.others) == ("sma", "fast", "slow", ())
    assert heat.xs == [5, 10, 20] and heat.ys == [10, 30, 50]
    for i, s in enumerate(heat.ys):
        for j, f in enumerate(heat.xs):
            if f < s:
                assert heat.z[i, j] == f / s
            else:
                assert np.isnan(heat.z[i, j])
    # a third varying parameter: each cell is the best over it (min for a lower-is-better metric)
    extra = pl.DataFrame(
        [{"strategy": strategy_label("sma", {"fast": f, "slow": s, "w": w}), "sharpe": f * w - s}
         for f in (1, 2) for s in (3, 4, 5) for w in (1, 2)]
    )  # fmt: skip
    best = param_heatmap(extra, "sharpe")
    assert (best.x, best.y, best.others) == ("slow", "fast", ("w",))
    np.testing.assert_array_equal(best.z, [[2 - s for s in (3, 4, 5)], [4 - s for s in (3, 4, 5)]])
    worst = param_heatmap(extra, "sharpe", lower_is_better=True)
    np.testing.assert_array_equal(worst.z, [[1 - s for s in (3, 4, 5)], [2 - s for s in (3, 4, 5)]])
    # one varying parameter, or none: no heatmap
    assert param_heatmap(table.filter(pl.col("strategy").str.contains("fast=5,")), "sharpe") is None
    assert (
        param_heatmap(pl.DataFrame({"strategy": ["a", "b"], "sharpe": [1.0, 2.0]}), "sharpe")
        is None
    )


def _drawdowns_by_hand(values: list[float]) -> list[tuple[int, int, int | None, float]]:
    """(peak, trough, recovery, depth) of every underwater stretch, scanning for new highs."""
    out, i, n = [], 0, len(values)
    while i < n - 1:
        if values[i + 1] >= values[i]:
            i += 1
            continue
        peak = i  # values[i] is the running maximum here: every earlier value is <= it
        j = i + 1
        while j < n and values[j] < values[peak]:
            j += 1
        trough = min(range(peak + 1, j), key=lambda k: (values[k], k))
        out.append((peak, trough, j if j < n else None, values[trough] / values[peak] - 1))
        i = j
    return out


def test_worst_drawdowns_match_a_scan_by_hand_and_the_max_drawdown(runs):
    results, bench = runs
    for res in [*results.values(), bench]:
        eq = res.equity.sort("date")
        values, dates = eq["equity"].to_list(), eq["date"].to_list()
        expected = sorted(_drawdowns_by_hand(values), key=lambda r: r[3])[:5]
        got = worst_drawdowns(eq, n=5)
        assert got["peak"].to_list() == [dates[p] for p, _, _, _ in expected]
        assert got["trough"].to_list() == [dates[t] for _, t, _, _ in expected]
        assert got["recovery"].to_list() == [dates[r] if r else None for _, _, r, _ in expected]
        assert got["sessions"].to_list() == [
            (r if r else len(values) - 1) - p for p, _, r, _ in expected
        ]
        np.testing.assert_allclose(got["depth_pct"], [d * 100 for *_, d in expected], rtol=1e-12)
        # the deepest is the run's maximum drawdown
        assert got["depth_pct"][0] == pytest.approx(res.stats.max_drawdown_pct, rel=1e-9)


def test_trade_list_is_newest_first_capped_and_counts_all(runs):
    results, _ = runs
    trades = results["sma_cross"].trades
    assert trades.height > 5
    shown, total = trade_list(trades, limit=5)
    assert total == trades.height and shown.height == 5
    newest = sorted(trades.iter_rows(named=True), key=lambda t: (t["exit_date"], t["entry_date"],
                                                                t["ticker"]), reverse=True)[:5]  # fmt: skip
    assert shown.select(trades.columns).rows(named=True) == newest
    assert shown["days"].to_list() == [(t["exit_date"] - t["entry_date"]).days for t in newest]
    everything, _ = trade_list(trades, limit=10_000)
    assert everything.height == trades.height
    with pytest.raises(ValueError, match="limit"):
        trade_list(trades, limit=0)


def test_rank_runs_puts_the_best_first_nan_last_and_the_benchmark_after(runs):
    results, bench = runs
    table = comparison_table(results, bench, benchmark_name="^GSPC")
    ranked = rank_runs(table, "sharpe")
    sharpe = {n: r.stats.sharpe for n, r in results.items()}
    assert ranked["strategy"].to_list() == [*sorted(sharpe, key=lambda n: -sharpe[n]), "^GSPC"]
    with_nan = table.with_columns(
        pl.when(pl.col("strategy") == ranked["strategy"][0]).then(float("nan"))
        .otherwise(pl.col("sharpe")).alias("sharpe")
    )  # fmt: skip
    assert rank_runs(with_nan, "sharpe")["strategy"][2] == ranked["strategy"][0]
    low = rank_runs(table, "turnover", lower_is_better=True).filter(pl.col("role") == "strategy")
    assert low["turnover"].to_list() == sorted(low["turnover"].to_list())
    with pytest.raises(ValueError, match="no_such"):
        rank_runs(table, "no_such")


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


def test_sparkline_svg_fits_its_budget_and_is_valid_svg(runs):
    import urllib.parse
    import xml.etree.ElementTree as ET

    results, bench = runs
    eq = results["sma_cross"].equity["equity"].to_numpy()
    dd = results["sma_cross"].equity["drawdown_pct"].to_numpy()
    for lines, budget in [([(eq, "solid"), (bench.equity["equity"].to_numpy(), "dashed")], 700),
                          ([(dd, "area")], 500)]:  # fmt: skip
        uri = sparkline_svg(lines, max_chars=budget)
        assert len(uri) <= budget and not re.search(r"[\s()<>#]", uri)
        svg = ET.fromstring(urllib.parse.unquote(uri.removeprefix("data:image/svg+xml,")))
        paths = svg.findall("{http://www.w3.org/2000/svg}path")
        assert len(paths) == len(lines) and svg.get("width") == "320"
        # every path stays inside the 320 x 70 box: absolute moves plus relative steps
        for path in paths:
            d = path.get("d")
            x, y = map(int, re.match(r"M(-?\d+),(-?\d+)", d).groups())
            steps = re.search(r"l([-\d,]*)", d).group(1).split(",")
            for dx, dy in zip(steps[::2], steps[1::2], strict=True):
                x, y = x + int(dx), y + int(dy)
                assert 0 <= x <= 320 and 0 <= y <= 70
    with pytest.raises(ValueError, match="at least one"):
        sparkline_svg([])
