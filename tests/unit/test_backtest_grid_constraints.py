"""Grids with constraints: invalid combinations skipped with their reason, a constraint (callable
or expression) filters, the rows come best first and the best is marked."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from alphadag.backtest import run_backtest, run_grid, strategies
from alphadag.backtest.engine import parse_constraint, plan_grid, rank_order


def _bars(seed: int = 2, tickers: int = 2, n: int = 260) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    return pl.concat(
        pl.DataFrame(
            {
                "ticker": f"T{k}",
                "date": dates,
                "close": 30 * np.exp(np.cumsum(rng.normal(0, 0.02, n))),
            }
        )
        for k in range(tickers)
    )


KW = dict(cash=1e5, commission=0.001, sizing="equal_weight")


def test_invalid_combinations_are_skipped_with_their_reason_and_the_rest_run():
    bars = _bars()
    g = run_grid(bars, strategies.SmaCross, fast=[5, 20, 50], slow=[20, 50], **KW)
    assert sorted(g.stats.select("fast", "slow").rows()) == [(5, 20), (5, 50), (20, 50)]
    assert g.skipped.columns == ["fast", "slow", "reason"]
    assert g.skipped.rows() == [
        (20, 20, "fast (20) must be shorter than slow (20)"),
        (50, 20, "fast (50) must be shorter than slow (20)"),
        (50, 50, "fast (50) must be shorter than slow (50)"),
    ]
    for i, (fast, slow) in enumerate(g.stats.select("fast", "slow").rows()):
        single = run_backtest(bars, strategies.SmaCross(fast=fast, slow=slow), **KW)
        np.testing.assert_array_equal(g.equity[i], single.equity["equity"].to_numpy())
        assert g.result(i).trades.equals(single.trades)
        assert g.stats.row(i, named=True)["sharpe"] == single.stats.sharpe


def test_sorted_by_sharpe_best_first_and_marked():
    g = run_grid(_bars(), strategies.SmaCross, fast=[3, 5, 8, 12], slow=[20, 30, 40], **KW)
    sharpe = g.stats["sharpe"].to_list()
    finite = [s for s in sharpe if math.isfinite(s)]
    assert finite == sorted(finite, reverse=True) and sharpe[: len(finite)] == finite
    assert g.maximize == "sharpe" and g.best == 0
    assert g.stats["best"].to_list() == [True] + [False] * (g.stats.height - 1)
    by_return = run_grid(_bars(), strategies.SmaCross, fast=[3, 5, 8], slow=[20, 30], **KW,
                         maximize="total_return_pct")  # fmt: skip
    ret = by_return.stats["total_return_pct"].to_list()
    assert ret == sorted(ret, reverse=True)
    plain = run_grid(_bars(), strategies.SmaCross, fast=[3, 5, 8], slow=[20, 30], **KW,
                     maximize=None)  # fmt: skip
    assert plain.stats.select("fast", "slow").rows() == [(3, 20), (3, 30), (5, 20), (5, 30),
                                                         (8, 20), (8, 30)]  # fmt: skip
    assert plain.best is None and not plain.stats["best"].any()
    with pytest.raises(ValueError, match="maximize must be a Stats field"):
        run_grid(_bars(), strategies.SmaCross, fast=[3], slow=[20], maximize="Sharpe", **KW)


def test_nan_metrics_sort_last_and_are_never_best():
    assert rank_order([float("nan"), 1.0, None, -2.0, 1.0]) == [1, 4, 3, 0, 2]
    # an infinite value (no losing trade) ranks with the missing ones, as the report ranks it
    assert rank_order([float("inf"), 1.0, float("-inf"), 2.0]) == [3, 1, 0, 2]
    flat = pl.DataFrame({"ticker": "A", "date": [dt.date(2020, 1, 1) + dt.timedelta(days=i)
                         for i in range(60)], "close": 10.0})  # fmt: skip
    g = run_grid(flat, strategies.SmaCross, fast=[2, 3], slow=[5], cash=1e4, commission=0.0)
    assert g.best is None and not g.stats["best"].any()  # no trade: every Sharpe is NaN


def test_a_constraint_filters_as_an_expression_or_a_callable():
    bars = _bars()
    by_text = run_grid(bars, strategies.SmaCross, fast=[5, 10, 20], slow=[20, 40], **KW,
                       constraint="slow >= 3 * fast")  # fmt: skip
    assert sorted(by_text.stats.select("fast", "slow").rows()) == [(5, 20), (5, 40), (10, 40)]
    reasons = dict(((f, s), r) for f, s, r in by_text.skipped.rows())
    assert reasons[(10, 20)] == "excluded by the constraint 'slow >= 3 * fast'"
    assert reasons[(20, 20)] == "excluded by the constraint 'slow >= 3 * fast'"

    def wide(p):
        return p["slow"] - p["fast"] >= 20

    by_call = run_grid(bars, strategies.SmaCross, fast=[5, 10, 20], slow=[20, 40], **KW,
                       constraint=wide)  # fmt: skip
    assert sorted(by_call.stats.select("fast", "slow").rows()) == [(5, 40), (10, 40), (20, 40)]
    assert set(by_call.skipped["reason"]) == {"excluded by the constraint wide"}
    # a parameter left at its default is visible to the constraint
    only_fast = run_grid(
        bars, strategies.SmaCross, fast=[5, 10, 15], **KW, constraint="fast < slow / 2"
    )
    assert sorted(only_fast.stats["fast"].to_list()) == [5]


def test_every_combination_invalid_is_an_error_listing_why():
    with pytest.raises(ValueError) as e:
        run_grid(_bars(), strategies.SmaCross, fast=[50, 60], slow=[20], **KW)
    message = str(e.value)
    assert message.startswith("no parameter combination is valid for SmaCross (2 skipped)")
    assert "fast=50, slow=20: fast (50) must be shorter than slow (20)" in message
    assert "fast=60, slow=20" in message
    with pytest.raises(ValueError, match="excluded by the constraint 'fast > 100'"):
        run_grid(_bars(), strategies.SmaCross, fast=[5], slow=[20], constraint="fast > 100", **KW)
    with pytest.raises(ValueError, match="and 2 more"):  # the first 10 reasons, then a count
        plan_grid(strategies.SmaCross, [{"fast": 30 + i, "slow": 20} for i in range(12)])


def test_an_unknown_parameter_stays_fatal():
    with pytest.raises(TypeError):
        run_grid(_bars(), strategies.SmaCross, fats=[5], slow=[20], **KW)
    with pytest.raises(ValueError, match="names 'slwo', which is not a parameter"):
        run_grid(_bars(), strategies.SmaCross, fast=[5], constraint="fast < slwo", **KW)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("__import__('os').system('true')", "Call is not allowed"),
        ("fast.real < 3", "Attribute is not allowed"),
        ("[fast][0] < 3", "is not allowed"),
        ("fast ** 99999 > 1", "Pow is not allowed"),
        ("fast <", "is not an expression"),
        ("  ", "non-empty expression"),
    ],
)
def test_constraint_expressions_are_parsed_never_evaluated(text, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")):
        parse_constraint(text)


def test_constraint_expression_semantics():
    c = parse_constraint("1 < fast < slow and not (period == 3 or slow % 2 == 1)")
    assert c({"fast": 2, "slow": 4, "period": 5})
    assert not c({"fast": 1, "slow": 4, "period": 5})  # chain: 1 < 1 fails
    assert not c({"fast": 2, "slow": 4, "period": 3})
    assert not c({"fast": 2, "slow": 5, "period": 5})
    assert parse_constraint("name != 'x' and -fast < 0")({"name": "y", "fast": 1})


def _cli(tmp_path, *argv: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from alphadag.cli import main

    path = tmp_path / "panel.parquet"
    if not path.exists():
        _bars(tickers=3).write_parquet(path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["backtest", "--bars", str(path), "--strategy", "sma_cross", *argv])
    return code, out.getvalue(), err.getvalue()


def test_cli_grid_skips_ranks_and_marks_the_best(tmp_path):
    import json

    code, out, err = _cli(tmp_path, "--param", "fast=5,10,20", "--param", "slow=10,30",
                          "--constraint", "slow - fast != 20", "--json", "--no-progress")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert [r["params"] for r in doc["runs"]] == [{"fast": 5, "slow": 10}, {"fast": 5, "slow": 30},
                                                   {"fast": 20, "slow": 30}]  # fmt: skip
    assert doc["skipped"] == [
        {"params": {"fast": 10, "slow": 10}, "reason": "fast (10) must be shorter than slow (10)"},
        {"params": {"fast": 10, "slow": 30},
         "reason": "excluded by the constraint 'slow - fast != 20'"},
        {"params": {"fast": 20, "slow": 10}, "reason": "fast (20) must be shorter than slow (10)"},
    ]  # fmt: skip
    sharpe = [r["stats"]["sharpe"] for r in doc["runs"]]
    ranks = [r["rank"] for r in doc["runs"]]
    assert sorted(ranks) == [1, 2, 3] and doc["maximize"] == "sharpe"
    assert [sharpe[i] for i in sorted(range(3), key=ranks.__getitem__)] == sorted(
        sharpe, reverse=True
    )
    assert doc["best"] == ranks.index(1)

    code, text, _ = _cli(tmp_path, "--param", "fast=5,10,20", "--param", "slow=10,30",
                         "--maximize", "total_return_pct", "--no-progress")  # fmt: skip
    assert code == 0
    assert "ranked by total_return_pct, best first" in text
    lines = [line for line in text.splitlines() if line.startswith(("  *", "   ")) and "." in line]
    assert lines[0].startswith("  *")  # the first row is the best
    assert "skipped 2 combination(s):" in text
    assert "sma_cross(fast=20,slow=10): fast (20) must be shorter than slow (10)" in text


def test_cli_grid_errors(tmp_path):
    code, _, err = _cli(tmp_path, "--param", "fast=30,40", "--param", "slow=10,20")
    assert code == 2 and "no parameter combination is valid for SmaCross (4 skipped)" in err
    assert "fast=40, slow=20: fast (40) must be shorter than slow (20)" in err
    code, _, err = _cli(tmp_path, "--param", "fast=5,10", "--constraint", "fast < slwo")
    assert code == 2 and "names 'slwo', which is not a parameter" in err
    code, _, err = _cli(tmp_path, "--param", "fast=5,10", "--constraint", "open('x')")
    assert code == 2 and "Call is not allowed" in err
    code, _, err = _cli(tmp_path, "--param", "fast=5,10", "--maximize", "Sharpe")
    assert code == 2 and "--maximize 'Sharpe' is not a stats field" in err


def test_cli_topk_dropout_is_sized_by_weight_and_needs_predictions(tmp_path):
    import json

    bars = _bars(tickers=4)
    bars.write_parquet(tmp_path / "panel.parquet")
    momentum = pl.col("close").pct_change(20).over("ticker", order_by="date")
    bars.select("date", "ticker", momentum.alias("y_pred")).write_parquet(tmp_path / "p.parquet")
    base = ("--strategy", "topk_dropout")
    code, _, err = _cli(tmp_path, *base)
    assert code == 2 and "topk_dropout needs --predictions FILE" in err
    code, out, err = _cli(tmp_path, *base, "--predictions", str(tmp_path / "p.parquet"),
                          "--param", "k=2", "--param", "n_drop=1,2,3", "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["settings"]["sizing"] == "weight"
    assert [r["params"]["n_drop"] for r in doc["runs"]] == [1, 2]
    assert doc["skipped"] == [
        {"params": {"k": 2, "n_drop": 3}, "reason": "n_drop (3) cannot exceed k (2)"}
    ]
