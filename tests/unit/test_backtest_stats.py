"""Every figure of ``compute_stats`` against a formula written in the test (numpy/scipy, not the
code under test): a hand-made curve, random curves, and hypothesis properties (scale
invariance, an IR undefined for a strategy that is its benchmark, Omega >= 1 iff the mean
return >= 0, the longest drawdown at least the average one)."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from alphadag.backtest import run_backtest, strategies
from alphadag.backtest import stats as stats_module
from alphadag.backtest.analysis import ANALYSIS_COLUMNS, analysis_table, format_analysis
from alphadag.backtest.stats import Stats, compute_stats, gross_equity_curve

A = 252


def _run(equity, *, bench=None, gross=None, pnl=(), ret=(), entry=(), exit_=(), turnover=0.0):
    equity = np.asarray(equity, dtype=float)
    return compute_stats(
        equity=equity,
        trade_pnl=np.asarray(pnl, dtype=float),
        trade_return=np.asarray(ret, dtype=float),
        trade_commission=np.zeros(len(pnl)),
        trade_entry_bar=np.asarray(entry, dtype=int),
        trade_exit_bar=np.asarray(exit_, dtype=int),
        benchmark=np.ones(equity.size),
        years=equity.size / A,
        turnover=turnover,
        benchmark_returns=None if bench is None else np.asarray(bench, dtype=float),
        gross_equity=None if gross is None else np.asarray(gross, dtype=float),
    )


def _underwater_runs(equity) -> list[int]:
    """Lengths of the runs of sessions strictly below the running peak, by a plain loop."""
    peak, runs, current = -math.inf, [], 0
    for e in equity:
        peak = max(peak, e)
        if e < peak:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    if current:
        runs.append(current)
    return runs


def _cum_drawdown(x) -> float:
    """Deepest fall of the cumulated sum (starting at 0) below its running maximum, by a loop."""
    level, peak, worst = 0.0, 0.0, 0.0
    for v in x:
        level += v
        peak = max(peak, level)
        worst = min(worst, level - peak)
    return worst


HAND = [100.0, 102.0, 101.0, 99.0, 103.0, 104.0, 100.0, 98.0, 105.0, 104.0]
HAND_BENCH = [0.01, -0.005, 0.0, 0.02, 0.0, -0.03, 0.01, 0.05, 0.0]


def test_hand_made_curve():
    eq = np.array(HAND)
    b = np.array(HAND_BENCH)
    gross = eq + np.array([0, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.5, 1.5, 1.5])
    s = _run(
        eq, bench=b, gross=gross, pnl=[3.0, -2.0, 5.0], ret=[0.03, -0.02, 0.05],
        entry=[1, 4, 6], exit_=[3, 6, 9], turnover=4.5,
    )  # fmt: skip
    r = np.diff(eq) / eq[:-1]
    assert s.total_return_pct == pytest.approx(4.0)
    assert s.return_ann_pct == pytest.approx((sps.gmean(1 + r) ** A - 1) * 100, rel=1e-12)
    assert s.volatility_ann_pct == pytest.approx(np.std(r, ddof=1) * math.sqrt(A) * 100)
    assert s.sharpe == pytest.approx(np.mean(r) / np.std(r, ddof=1) * math.sqrt(A), rel=1e-12)
    dd = math.sqrt(sum(min(v, 0) ** 2 for v in r) / r.size)
    assert s.sortino == pytest.approx(np.mean(r) / dd * math.sqrt(A), rel=1e-12)
    gains, losses = sum(v for v in r if v > 0), -sum(v for v in r if v < 0)
    assert s.omega == pytest.approx(gains / losses, rel=1e-12)
    # the curve: peak 104 at session 5, under it at 6, 7; peak 105 at 8, under at 9
    # (and 101, 99 under 102 before): runs of 2, 2, 1
    assert (s.max_drawdown_duration_sessions, s.avg_drawdown_duration_sessions) == (2.0, 5 / 3)
    assert s.max_drawdown_pct == pytest.approx((98 / 104 - 1) * 100)
    assert s.benchmark_return_pct == pytest.approx((np.prod(1 + b) - 1) * 100)
    x = r - b
    assert s.excess_return_ann_pct == pytest.approx(x.mean() * A * 100, rel=1e-12)
    assert s.information_ratio == pytest.approx(x.mean() / x.std(ddof=1) * math.sqrt(A))
    assert s.excess_max_drawdown_pct == pytest.approx(_cum_drawdown(x) * 100)
    rg = np.diff(gross) / gross[:-1]
    xg = rg - b
    assert s.total_return_gross_pct == pytest.approx((gross[-1] / gross[0] - 1) * 100)
    assert s.excess_return_ann_gross_pct == pytest.approx(xg.mean() * A * 100, rel=1e-12)
    assert s.information_ratio_gross == pytest.approx(xg.mean() / xg.std(ddof=1) * math.sqrt(A))
    assert s.excess_max_drawdown_gross_pct == pytest.approx(_cum_drawdown(xg) * 100)
    assert s.information_ratio_gross > s.information_ratio  # costs only take away
    assert s.avg_win_pct == pytest.approx(4.0) and s.avg_loss_pct == pytest.approx(-2.0)
    assert s.avg_trade_duration_sessions == pytest.approx(7 / 3)
    assert s.median_trade_duration_sessions == 2.0
    assert s.turnover_total == 4.5
    assert s.turnover == pytest.approx(4.5 / (9 / A))  # x equity a year over 9 steps


@pytest.mark.parametrize("seed", range(4))
def test_random_curves_match_numpy_and_scipy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 400))
    r = rng.normal(0.0004, 0.012, n - 1)
    b = 0.7 * r + rng.normal(0.0, 0.008, n - 1)
    eq = 1e6 * np.cumprod(np.r_[1.0, 1 + r])
    gross = eq * np.cumprod(np.r_[1.0, 1 + rng.uniform(0, 1e-4, n - 1)])
    k = int(rng.integers(1, 20))
    entry = np.sort(rng.integers(0, n - 1, k))
    exit_ = entry + rng.integers(0, 15, k).clip(max=n - 1 - entry)
    tr = rng.normal(0.0, 0.04, k)
    s = _run(eq, bench=b, gross=gross, pnl=tr * 1e4, ret=tr, entry=entry, exit_=exit_)
    r = np.diff(eq) / eq[:-1]  # as the curve holds them, after rounding
    x, xg = r - b, np.diff(gross) / gross[:-1] - b
    assert s.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(A), rel=1e-10)
    assert s.volatility_ann_pct == pytest.approx(sps.tstd(r) * math.sqrt(A) * 100, rel=1e-10)
    assert s.return_ann_pct == pytest.approx((sps.gmean(1 + r) ** A - 1) * 100, rel=1e-9)
    lpm2 = np.mean(np.clip(r, None, 0) ** 2)
    assert s.sortino == pytest.approx(r.mean() / math.sqrt(lpm2) * math.sqrt(A), rel=1e-10)
    # Omega = 1 + mean / first lower partial moment: another form of gains over losses
    assert s.omega == pytest.approx(1 + r.mean() / np.mean(np.clip(-r, 0, None)), rel=1e-10)
    runs = _underwater_runs(eq)
    assert s.max_drawdown_duration_sessions == max(runs)
    assert s.avg_drawdown_duration_sessions == pytest.approx(np.mean(runs))
    assert s.information_ratio == pytest.approx(x.mean() / sps.tstd(x) * math.sqrt(A), rel=1e-9)
    assert s.excess_return_ann_pct == pytest.approx(x.mean() * A * 100, rel=1e-9)
    assert s.excess_max_drawdown_pct == pytest.approx(_cum_drawdown(x) * 100, rel=1e-9)
    assert s.information_ratio_gross == pytest.approx(
        xg.mean() / sps.tstd(xg) * math.sqrt(A), rel=1e-9
    )
    won, lost = tr[tr * 1e4 > 0], tr[tr * 1e4 < 0]
    assert (
        s.avg_win_pct == pytest.approx(won.mean() * 100) if won.size else math.isnan(s.avg_win_pct)
    )
    assert s.avg_loss_pct == pytest.approx(lost.mean() * 100) if lost.size else True
    assert s.median_trade_duration_sessions == pytest.approx(np.median(exit_ - entry))


def _curve(returns: list[float]) -> np.ndarray:
    return 100.0 * np.cumprod(np.r_[1.0, 1.0 + np.asarray(returns)])


returns_lists = st.lists(
    st.floats(-0.2, 0.2, allow_nan=False, allow_subnormal=False), min_size=3, max_size=120
)


@settings(max_examples=150, deadline=None)
@given(returns_lists, st.floats(0.01, 1e4))
def test_ratios_do_not_depend_on_the_equity_scale(returns, k):
    eq = _curve(returns)
    b = np.resize([0.01, -0.004, 0.002], eq.size - 1)
    one, scaled = _run(eq, bench=b), _run(eq * k, bench=b)
    for name in ("sharpe", "sortino", "omega", "information_ratio", "excess_return_ann_pct",
                 "max_drawdown_duration_sessions", "return_ann_pct", "volatility_ann_pct"):  # fmt: skip
        a, c = getattr(one, name), getattr(scaled, name)
        assert (math.isnan(a) and math.isnan(c)) or a == pytest.approx(c, rel=1e-6, abs=1e-6), name


@settings(max_examples=150, deadline=None)
@given(returns_lists, st.sampled_from([1.0, 3.0, 0.37]))
def test_a_strategy_equal_to_its_benchmark_has_no_excess_and_no_ir(returns, k):
    eq = _curve(returns)
    bench_close = eq * k  # the same path on another scale: the returns differ by rounding only
    b = bench_close[1:] / bench_close[:-1] - 1
    s = _run(eq, bench=b)
    assert math.isnan(s.information_ratio)
    assert s.excess_return_ann_pct == pytest.approx(0.0, abs=1e-9)
    assert s.excess_max_drawdown_pct == pytest.approx(0.0, abs=1e-9)
    assert s.benchmark_return_pct == pytest.approx(s.total_return_pct, rel=1e-9, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(returns_lists)
def test_omega_at_least_one_iff_the_mean_return_is_not_negative(returns):
    eq = _curve(returns)
    r = eq[1:] / eq[:-1] - 1
    s = _run(eq)
    if np.all(r == 0):
        assert math.isnan(s.omega)
    elif abs(r.mean()) > 1e-12:  # the sign is clear beyond rounding
        assert (s.omega >= 1) == (r.mean() >= 0)


@settings(max_examples=200, deadline=None)
@given(returns_lists)
def test_drawdown_durations_are_ordered_and_bounded(returns):
    eq = _curve(returns)
    s = _run(eq)
    assert 0 <= s.avg_drawdown_duration_sessions <= s.max_drawdown_duration_sessions <= eq.size - 1
    assert (s.max_drawdown_duration_sessions == 0) == (s.max_drawdown_pct == 0)


@settings(max_examples=100, deadline=None)
@given(returns_lists)
def test_without_costs_the_gross_figures_are_the_net_ones(returns):
    eq = _curve(returns)
    b = np.resize([0.003, -0.01], eq.size - 1)
    s = _run(eq, bench=b, gross=eq)
    assert s.total_return_gross_pct == s.total_return_pct
    assert s.excess_return_ann_gross_pct == s.excess_return_ann_pct
    for a, c in ((s.information_ratio_gross, s.information_ratio),
                 (s.excess_max_drawdown_gross_pct, s.excess_max_drawdown_pct)):  # fmt: skip
        assert (math.isnan(a) and math.isnan(c)) or a == c


def test_undefined_figures_are_nan():
    s = _run([100.0, 100.0, 100.0])
    for name in ("sharpe", "omega", "information_ratio", "benchmark_return_pct", "avg_win_pct",
                 "avg_trade_duration_sessions", "total_return_gross_pct"):  # fmt: skip
        assert math.isnan(getattr(s, name)), name
    assert s.max_drawdown_duration_sessions == 0 == s.avg_drawdown_duration_sessions
    assert math.isnan(_run([100.0]).turnover)
    with pytest.raises(ValueError, match="gross_equity needs 3 values"):
        _run([1.0, 2.0, 3.0], gross=[1.0, 2.0])


def test_gross_equity_curve_adds_back_each_commission_from_its_session_on():
    rng = np.random.default_rng(3)
    eq = rng.uniform(90, 110, 50)
    bars, comm = rng.integers(0, 50, 30), rng.uniform(0, 2, 30)
    expected = eq.copy()
    for bar, c in zip(bars, comm, strict=True):
        expected[bar:] += c
    np.testing.assert_allclose(gross_equity_curve(eq, bars, comm), expected, rtol=1e-12)


def _bars_and_bench(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    dates = [dt.date(2016, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    market = rng.normal(0.0003, 0.01, n)
    bars = pl.concat(
        pl.DataFrame({"ticker": tk, "date": dates,
                      "close": 40 * np.exp(np.cumsum(0.9 * market + rng.normal(0, 0.01, n)))})
        for tk in ("A", "B")
    )  # fmt: skip
    return bars, pl.DataFrame({"date": dates, "close": 2000 * np.exp(np.cumsum(market))})


def test_a_run_against_a_benchmark_and_the_analysis_table():
    bars, bench = _bars_and_bench(11)
    runs = {
        f"sma({f},{s})": run_backtest(bars, strategies.SmaCross(fast=f, slow=s), cash=1e6,
                                      commission=0.001, sizing="equal_weight", benchmark=bench)
        for f, s in ((5, 20), (10, 40))
    }  # fmt: skip
    hold = run_backtest(bench.with_columns(ticker=pl.lit("^X")), strategies.BuyAndHold(),
                        cash=1e6, commission=0.0, fractional=True, benchmark=bench)  # fmt: skip
    c = bench["close"].to_numpy()
    b = c[1:] / c[:-1] - 1
    for res in runs.values():
        eq = res.equity["equity"].to_numpy()
        x = eq[1:] / eq[:-1] - 1 - b
        assert res.stats.information_ratio == pytest.approx(
            x.mean() / x.std(ddof=1) * math.sqrt(A), rel=1e-9
        )
        assert res.stats.benchmark_return_pct == pytest.approx((c[-1] / c[0] - 1) * 100)
        held = (res.trades["exit_date"] - res.trades["entry_date"]).dt.total_days().to_numpy()
        assert res.stats.avg_trade_duration_sessions == pytest.approx(held.mean())  # daily dates
    table = analysis_table(runs, hold, benchmark_name="^X")
    assert table.columns == ["run", "role", *(col.name for col in ANALYSIS_COLUMNS)]
    assert table["run"].to_list() == [*runs, "^X"]
    assert table["role"].to_list() == ["strategy", "strategy", "benchmark"]
    for row, res in zip(table.iter_rows(named=True), [*runs.values(), hold], strict=True):
        for col in ANALYSIS_COLUMNS:
            want = getattr(res.stats, col.name)
            assert row[col.name] == want or (math.isnan(row[col.name]) and math.isnan(want))
    assert hold.stats.benchmark_return_pct == pytest.approx((c[-1] / c[0] - 1) * 100)
    shown = format_analysis(table)
    assert shown.columns[2] == "Total return [%]"
    assert shown["Sharpe [ratio]"][0] == f"{table['sharpe'][0]:,.3f}"
    assert shown["Trades [trades]"].to_list() == [str(v) for v in table["n_trades"]]


# the backtest result contract of docs/ARCHITECTURE.md
DESIGN_FIELDS = (
    "total_return_pct", "equity_final", "n_trades", "max_drawdown_pct", "win_rate_pct",
    "exposure_pct", "buy_hold_return_pct", "cagr_pct", "volatility_ann_pct", "sharpe", "sortino",
    "calmar", "profit_factor", "expectancy_pct", "sqn", "kelly", "commissions", "turnover",
)  # fmt: skip


def test_every_column_and_contract_field_is_defined_in_the_stats_docstring():
    doc = stats_module.__doc__
    fields = set(Stats.__dataclass_fields__)
    table = {w[0] for w in (line.split() for line in doc.splitlines()) if w and w[0] in fields}
    assert set(DESIGN_FIELDS) <= fields
    for name in itertools.chain((c.name for c in ANALYSIS_COLUMNS), DESIGN_FIELDS):
        assert name in fields, name
        bt_only = name in ("sqn", "kelly")  # backtesting.py's, named in the text
        assert name in table or (bt_only and f"``{name}``" in doc), name
