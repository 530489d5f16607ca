"""``alphadag backtest`` prints the analysis table of :mod:`alphadag.backtest.analysis` against
the buy-and-hold benchmark it also gives the report: one benchmark, one set of numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from alphadag.backtest.analysis import ANALYSIS_COLUMNS, analysis_table, format_analysis
from alphadag.backtest.stats import Stats
from alphadag.cli import main
from alphadag.market.calendar import sessions


@pytest.fixture()
def panel_csv(tmp_path):
    days = sessions("2022-01-03", "2023-12-29")[:300]
    rng = np.random.default_rng(5)
    frames = [
        pl.DataFrame({"ticker": t, "date": [d.isoformat() for d in days],
                      "close": 30 * np.exp(np.cumsum(rng.normal(0.0004, 0.02, len(days))))})
        for t in ("AAA", "BBB")
    ]  # fmt: skip
    path = tmp_path / "panel.csv"
    pl.concat(frames).write_csv(path)
    return path


ARGS = ["--strategy", "sma_cross", "--param", "fast=5", "--param", "slow=30", "--commission",
        "0.002"]  # fmt: skip


def test_every_run_is_measured_against_the_reports_benchmark(panel_csv, tmp_path, capsys):
    code = main(["backtest", "--bars", str(panel_csv), *ARGS, "--json",
                 "--report", str(tmp_path / "rep")])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    (run,) = out["runs"]
    bench = out["benchmark"]
    assert bench["name"] == "buy_and_hold"
    # the benchmark return of the run is the benchmark row's total return (one definition)
    assert run["stats"]["benchmark_return_pct"] == pytest.approx(
        bench["stats"]["total_return_pct"], rel=1e-12
    )
    for key in ("benchmark_alpha_ann_pct", "benchmark_beta", "information_ratio",
                "excess_return_ann_pct"):  # fmt: skip
        assert run["stats"][key] is not None and math.isfinite(run["stats"][key]), key
    assert bench["stats"]["benchmark_beta"] == pytest.approx(1.0)
    assert bench["stats"]["information_ratio"] is None  # the benchmark against itself


def test_text_output_is_the_rounded_analysis_table(panel_csv, capsys):
    assert main(["backtest", "--bars", str(panel_csv), *ARGS, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert main(["backtest", "--bars", str(panel_csv), *ARGS]) == 0
    text = capsys.readouterr().out

    def stats(d):
        return Stats(**{k: math.nan if v is None else v for k, v in d.items()})

    table = analysis_table({"strategy": stats(out["runs"][0]["stats"])},
                           stats(out["benchmark"]["stats"]), benchmark_name="buy_and_hold")  # fmt: skip
    shown = format_analysis(table, labels=False)
    for col in ANALYSIS_COLUMNS:
        line = next(ln for ln in text.splitlines() if f" {col.name} " in ln)
        assert line.strip().startswith(f"{col.label} [{col.unit}]"), col.name
        assert line.split()[-2:] == shown[col.name].to_list(), col.name
    assert "buy_hold_return_pct" in text  # backtesting.py's, listed with its definition
