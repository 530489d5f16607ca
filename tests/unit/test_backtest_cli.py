"""``alphadag backtest`` through ``alphadag.cli.main``: JSON parsed back, grids, reports, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from alphadag.backtest import run_backtest, strategies
from alphadag.backtest.cli import parse_params, read_bars
from alphadag.cli import main
from alphadag.market.calendar import sessions


def _prices(n_days: int, seed: int) -> tuple[list, np.ndarray]:
    days = sessions("2022-01-03", "2024-12-31")[:n_days]
    rng = np.random.default_rng(seed)
    return days, 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, len(days))))


@pytest.fixture()
def spy_csv(tmp_path):
    """One ticker, yfinance-style capitalised headers and no ticker column."""
    days, close = _prices(300, seed=1)
    path = tmp_path / "SPY.csv"
    pl.DataFrame(
        {
            "Date": [d.isoformat() for d in days],
            "Open": close * 0.999,
            "High": close * 1.01,
            "Low": close * 0.99,
            "Close": close,
            "Volume": 1e6,
        }
    ).write_csv(path)
    return path


@pytest.fixture()
def panel_parquet(tmp_path):
    frames = []
    for i, t in enumerate(("AAA", "BBB", "CCC")):
        days, close = _prices(250, seed=10 + i)
        frames.append(pl.DataFrame({"ticker": t, "date": days, "close": close}))
    path = tmp_path / "panel.parquet"
    pl.concat(frames).with_columns(pl.col("date").cast(pl.Date)).write_parquet(path)
    return path


def _nan_to_none(stats: dict) -> dict:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in stats.items()}


def test_json_single_ticker_file_equals_the_engine(spy_csv, capsys):
    code = main(
        ["backtest", "--bars", str(spy_csv), "--strategy", "sma_cross", "--param", "fast=10",
         "--param", "slow=20", "--cash", "10000", "--commission", "0.002", "--json"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert out["tickers"] == ["SPY"] and out["sessions"] == 300
    assert out["settings"]["sizing"] == "all_in" and out["settings"]["cash"] == 10_000
    (run,) = out["runs"]
    assert run["params"] == {"fast": 10, "slow": 20}
    bars = read_bars(spy_csv)
    # the CLI's benchmark: equal-weight buy-and-hold of the same bars with the same costs
    hold = run_backtest(bars, strategies.BuyAndHold(), cash=10_000, commission=0.002,
                        sizing="equal_weight")  # fmt: skip
    expected = run_backtest(
        bars, strategies.SmaCross(fast=10, slow=20), cash=10_000, commission=0.002,
        benchmark=hold.equity.select("date", pl.col("equity").alias("close")),
    )  # fmt: skip
    assert run["stats"] == pytest.approx(_nan_to_none(expected.stats.to_dict()))
    assert run["stats"]["n_trades"] > 0


def test_parameter_grid_on_a_multi_ticker_parquet_and_a_report(panel_parquet, tmp_path, capsys):
    code = main(
        ["backtest", "--bars", str(panel_parquet), "--strategy", "sma_cross", "--param",
         "fast=5,10", "--param", "slow=30", "--json", "--report", str(tmp_path / "rep")]
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["tickers"] == ["AAA", "BBB", "CCC"] and out["settings"]["sizing"] == "equal_weight"
    assert [r["params"] for r in out["runs"]] == [{"fast": 5, "slow": 30}, {"fast": 10, "slow": 30}]
    doc = (tmp_path / "rep" / "report.html").read_text()
    assert out["report"] == str(tmp_path / "rep" / "report.html")
    assert "sma_cross(fast=5,slow=30)" in doc and "sma_cross(fast=10,slow=30)" in doc


def test_text_output_and_date_filter(spy_csv, capsys):
    code = main(["backtest", "--bars", str(spy_csv), "--strategy", "buy_and_hold",
                 "--start", "2022-03-01", "--end", "2022-06-30"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "buy_and_hold on" in out and "2022-03-01..2022-06-30" in out
    assert "total_return_pct" in out and "sharpe" in out


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("date,open\n2024-01-02,1.0\n", ["bad.csv", "missing column(s) ['close']"]),
        ("date,close\n2024-01-02,abc\n2024-01-03,1.0\n", ["bad.csv", "'close'", "non-numeric"]),
        ("date,close\n2024-01-02,1.0\nnot-a-date,2.0\n", ["bad.csv", "'date'", "not-a-date"]),
        ("date,close\n2024-01-02,1.0\n2024-01-03,\n", ["bad.csv", "'close'", "data row 2"]),
        ("date,close\n2024-01-02,1.0\n2024-01-03,-2.0\n", ["bad.csv", "'close'", "> 0"]),
        ("date,close\n2024-01-02,1.0\n2024-01-02,2.0\n", ["bad.csv", "duplicate"]),
    ],
)
def test_bad_bars_files_fail_naming_the_file_and_column(tmp_path, capsys, content, fragments):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code = main(["backtest", "--bars", str(path), "--strategy", "buy_and_hold", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith("alphadag backtest: error: ")
    for fragment in fragments:
        assert fragment in captured.err


def test_other_input_errors(tmp_path, spy_csv, capsys):
    cases = [
        (["--bars", str(tmp_path / "nope.csv"), "--strategy", "sma_cross"], "no such file"),
        (["--bars", str(spy_csv.with_suffix(".txt")), "--strategy", "sma_cross"], "no such file"),
        (["--bars", str(spy_csv), "--strategy", "nope"], "unknown strategy 'nope'"),
        (["--bars", str(spy_csv), "--strategy", "sma_cross", "--param", "fast"], "key=value"),
        (["--bars", str(spy_csv), "--strategy", "sma_cross", "--param", "fats=3"], "fats"),
        (["--bars", str(spy_csv), "--strategy", "sma_cross", "--param", "fast=30"], "shorter"),
        (["--bars", str(spy_csv), "--strategy", "model_signal"], "--predictions"),
    ]
    for argv, fragment in cases:
        assert main(["backtest", *argv]) == 2, argv
        assert fragment in capsys.readouterr().err, argv
    txt = tmp_path / "bars.txt"
    txt.write_text("date,close\n")
    assert main(["backtest", "--bars", str(txt), "--strategy", "sma_cross"]) == 2
    assert "unsupported file type '.txt'" in capsys.readouterr().err


def test_model_signal_with_a_predictions_file(panel_parquet, tmp_path, capsys):
    bars = read_bars(panel_parquet)
    preds = bars.select(
        "date", "ticker", (pl.col("close").pct_change().over("ticker")).alias("y_pred")
    )
    path = tmp_path / "preds.csv"
    preds.write_csv(path)
    code = main(["backtest", "--bars", str(panel_parquet), "--strategy", "model_signal",
                 "--param", "k=1", "--predictions", str(path), "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["settings"]["sizing"] == "weight"
    assert out["runs"][0]["stats"]["n_trades"] > 0


def test_parse_params_types_and_grid():
    assert parse_params(["a=1", "b=2.5", "c=true", "d=x"]) == [
        {"a": 1, "b": 2.5, "c": True, "d": "x"}
    ]
    assert len(parse_params(["a=1,2,3", "b=4,5"])) == 6
    with pytest.raises(ValueError, match="twice"):
        parse_params(["a=1", "a=2"])


def test_a_grid_shows_progress_on_a_terminal(spy_csv, capsys, monkeypatch):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    code = main(["backtest", "--bars", str(spy_csv), "--strategy", "sma_cross",
                 "--param", "fast=5,10,15", "--param", "slow=40"])  # fmt: skip
    assert code == 0
    assert "3/3" in err.getvalue()  # tqdm's "3/3 [..]" or the plain "backtest 3/3" counter
    assert "sma_cross on" in capsys.readouterr().out
