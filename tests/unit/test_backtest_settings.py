"""``BacktestSettings``: one knob type for ``run_backtest`` and ``run_grid``, checked once;
the simulator's typed result."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alphadag.backtest import BacktestSettings, _sim, run_backtest, run_grid, strategies
from alphadag.backtest.engine import _grids, _Layout, _sim_params
from alphadag.market.sources.synthetic import SyntheticSource

KNOBS = {"cash": 1e5, "commission": 0.001, "slippage_bps": 3.0, "stop_loss": 0.04}


@pytest.fixture(scope="module")
def bars():
    src = SyntheticSource(n_tickers=3, start="2021-01-04", end="2022-12-30", seed=3)
    return src.fetch(src.start, src.end).drop("origin", "parse_errors")


def test_settings_equal_the_same_keywords(bars):
    strat = strategies.SmaCross(fast=5, slow=20)
    by_keywords = run_backtest(bars, strat, **KNOBS)
    by_settings = run_backtest(bars, strat, settings=BacktestSettings(**KNOBS))
    assert by_settings.trades.equals(by_keywords.trades)
    assert by_settings.equity.equals(by_keywords.equity)


def test_keywords_override_the_settings(bars):
    strat = strategies.SmaCross(fast=5, slow=20)
    base = BacktestSettings(**KNOBS)
    overridden = run_backtest(bars, strat, settings=base, sizing="equal_weight")
    direct = run_backtest(bars, strat, **{**KNOBS, "sizing": "equal_weight"})
    assert overridden.trades.equals(direct.trades)
    assert base.sizing == "all_in"  # frozen: the override is a copy


def test_grid_takes_the_same_settings(bars):
    base = BacktestSettings(**KNOBS)
    by_settings = run_grid(bars, strategies.SmaCross, settings=base, fast=[3, 5], slow=[20])
    by_keywords = run_grid(bars, strategies.SmaCross, fast=[3, 5], slow=[20], **KNOBS)
    assert by_settings.stats.equals(by_keywords.stats)
    one = run_backtest(bars, strategies.SmaCross(fast=5, slow=20), settings=base)
    row = by_settings.stats["fast"].to_list().index(5)
    assert by_settings.result(row).trades.equals(one.trades)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cash": 0}, "cash"),
        ({"commission": 0.5}, "commission"),
        ({"commission_min": -1.0}, "commission_min"),
        ({"slippage_bps": float("nan")}, "slippage_bps"),
        ({"sizing": "kelly"}, "sizing"),
        ({"take_profit": 0.0}, "take_profit"),
        ({"cooldown": 2.5}, "cooldown"),
        ({"vol_window": 1}, "vol_window"),
    ],
)
def test_an_invalid_knob_names_its_field(change, field):
    with pytest.raises(ValueError, match=field):
        BacktestSettings(**{**KNOBS, **change})
    with pytest.raises(ValueError, match=field):
        BacktestSettings(**KNOBS).replace(**change)


def test_keyword_errors(bars):
    strat = strategies.BuyAndHold()
    with pytest.raises(TypeError, match="stop_los"):
        run_backtest(bars, strat, cash=1e5, commission=0.0, stop_los=0.1)
    with pytest.raises(TypeError, match="needs commission="):
        run_backtest(bars, strat, cash=1e5)
    with pytest.raises(TypeError, match="must be a BacktestSettings"):
        run_backtest(bars, strat, settings={"cash": 1e5, "commission": 0.0})


def test_simulation_result_is_named(bars):
    s = BacktestSettings(cash=1e5, commission=0.001, sizing="equal_weight")
    layout = _Layout(bars.sort("ticker", "date"))
    grids = _grids(layout, s)
    target, changes = _sim.targets(strategies.BuyAndHold().signal_grid(grids.close), False)
    one = _sim.simulate(grids, target, changes + layout.m + 1, _sim_params(s))
    (many,) = _sim.simulate_many(
        grids, target[None], np.array([changes + layout.m + 1]), _sim_params(s)
    )
    assert one.n_trades == layout.m
    assert (one.exit_reason == _sim.EXIT_END).all()
    for f in dataclasses.fields(_sim.SimResult):
        np.testing.assert_array_equal(getattr(one, f.name), getattr(many, f.name))
