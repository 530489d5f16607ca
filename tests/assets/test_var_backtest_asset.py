"""``var_backtest`` in ``serving_job`` on real files and a real (temporary SQLite) instance.

A module fixture writes 110 sessions of a six-ticker synthetic market (daily_data_job); serving
runs score them with the baseline (the default empty registry) and ``var_backtest`` tests the
served ``var_95`` against the next bars. The breaches are recomputed here from the predictions and
bars files on disk, the statistics from the closed forms; a single-session run (the daily
increment) must agree with the ranged run (the backfill) on the session they share.
"""

import math
from pathlib import Path

import polars as pl
import pytest
from run_results import checks_by_session, materializations, metadata_values

from alphadag.market.calendar import sessions
from alphadag.risk.var_backtest import christoffersen_ind, kupiec_pof, transition_counts

TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")
RANGE = ("2024-01-02", "2024-06-07")  # 110 sessions: the first VaR comes after 60 returns
SERVE = ("2024-05-01", "2024-06-07")  # 27 sessions scored


@pytest.fixture(scope="module")
def data_root(run_job, market, tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("var_backtest_data"))
    result = run_job(
        "daily_data_job", root, *RANGE, market_data=market(tickers=TICKERS, end="2024-06-28")
    )
    assert result.success
    return root


def _read(root: str, dataset: str) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in sorted(Path(root, dataset).rglob("*.parquet"))])


def _expected(root: str, through: str) -> pl.DataFrame:
    """Breaches recomputed from the files: each served var_95 and var_99 against the ticker's
    next close."""
    return pl.concat([_expected_at(root, through, level) for level in (95, 99)]).sort(
        "date", "ticker", "level"
    )


def _expected_at(root: str, through: str, level: int) -> pl.DataFrame:
    bars = _read(root, "bars").sort("ticker", "date")
    nxt = bars.with_columns(
        pl.col("date").shift(-1).over("ticker").alias("next_date"),
        pl.col("close").shift(-1).over("ticker").alias("next_close"),
    )
    var = f"var_{level}"
    preds = _read(root, "predictions").select("ticker", "date", var).drop_nulls()
    return (
        preds.join(nxt, on=["ticker", "date"])
        .filter(pl.col("next_date") <= pl.lit(through).str.to_date())
        .select(
            pl.col("next_date").alias("date"),
            pl.col("date").alias("prediction_date"),
            "ticker",
            (pl.col("next_close") / pl.col("close") - 1).alias("ret"),
            pl.col(var).alias("var"),
            pl.lit(level / 100).alias("level"),
        )
        .with_columns((pl.col("ret") < -pl.col("var")).alias("breach"))
        .sort("date", "ticker")
    )


def test_var_backtest_tests_the_served_var_against_the_next_bar(run_job, data_root):
    first = sessions(*SERVE)[0].isoformat()
    # the first served session alone: nothing has matured yet, the check says so and passes
    early = run_job("serving_job", data_root, first)
    assert early.success
    (check,) = checks_by_session(early)["var_backtest_passes"].values()
    assert check.passed and check.partition is None
    assert metadata_values(check)["evaluated"] is False
    assert "no served VaR forecast has matured" in check.description

    result = run_job("serving_job", data_root, *SERVE)
    assert result.success
    days = [d.isoformat() for d in sessions(*SERVE)]
    written = _read(data_root, "var_backtest").sort("date", "ticker", "level")
    expected = _expected(data_root, SERVE[1])
    # both served levels; the last session's VaR is unmatured
    assert expected.height == 2 * len(TICKERS) * (len(days) - 1)
    assert set(written["level"]) == {0.95, 0.99}
    assert written.select(expected.columns).equals(expected.select(expected.columns))
    both, expected = expected, expected.filter(pl.col("level") == 0.95)  # 95% figures below
    assert written["breach"].sum() > 0  # the synthetic market breaches now and then

    mats = {m.partition: metadata_values(m) for m in materializations(result, "var_backtest")}
    assert sorted(mats) == days
    for day, meta in mats.items():
        on_day = both.filter(pl.col("date") == pl.lit(day).str.to_date())  # both levels
        assert meta["matured_forecasts"] == on_day.height
        assert meta["breaches"] == on_day["breach"].sum()
        assert meta["levels_not_served"] == "none" and meta["levels_tested"] == "0.95, 0.99"
    assert mats[first]["matured_forecasts"] == 0
    last = mats[days[-1]]
    n, x = expected.height, int(expected["breach"].sum())
    assert last["overall_n_95"] == n
    assert last["overall_breach_rate_95"] == pytest.approx(x / n)
    assert last["overall_kupiec_p_95"] == pytest.approx(kupiec_pof(n, x, 0.05)[1], rel=1e-12)
    counts = [0, 0, 0, 0]
    for (_,), series in expected.group_by("ticker"):
        for i, c in enumerate(transition_counts(series.sort("date")["breach"].to_numpy())):
            counts[i] += c
    assert last["overall_christoffersen_p_95"] == pytest.approx(
        christoffersen_ind(*counts)[1], rel=1e-12
    )
    # fewer than 250 sessions: the rolling window is the whole history, equal to overall
    assert last["rolling_kupiec_p_95"] == pytest.approx(last["overall_kupiec_p_95"])
    assert "per_year" in last and "overall" in last
    assert all("overall" not in mats[d] for d in days[:-1])  # tables on the last session only

    (check,) = checks_by_session(result)["var_backtest_passes"].values()
    assert check.severity.value == "WARN"
    ok = last["overall_kupiec_p_95"] >= 0.05 and last["overall_christoffersen_p_95"] >= 0.05
    assert check.passed == ok
    assert metadata_values(check)["overall_kupiec_p_95"] == last["overall_kupiec_p_95"]

    # the daily increment of the last session equals what the range wrote for it, and a strict
    # alpha makes the WARN check fail, naming the level and the p-values
    before = pl.read_parquet(next(Path(data_root, "var_backtest").rglob(f"{days[-1]}.parquet")))
    single = run_job(
        "serving_job",
        data_root,
        days[-1],
        run_config={"ops": {"var_backtest": {"config": {"alpha": 0.999}}}},
    )
    assert single.success
    after = pl.read_parquet(next(Path(data_root, "var_backtest").rglob(f"{days[-1]}.parquet")))
    assert after.equals(before)
    (meta,) = [metadata_values(m) for m in materializations(single, "var_backtest")]
    for key in ("overall_kupiec_p_95", "overall_christoffersen_p_95", "overall_n_95"):
        assert meta[key] == last[key], key
    (check,) = checks_by_session(single)["var_backtest_passes"].values()
    assert not check.passed and check.severity.value == "WARN"
    assert "0.95: breach rate" in check.description and "Kupiec p" in check.description
    assert math.isfinite(metadata_values(check)["overall_cc_p_95"])
