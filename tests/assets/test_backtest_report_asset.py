"""The ``backtest_report`` asset end to end on synthetic data, with a real (temporary) MLflow store.

One ranged ``daily_data_job`` run (module fixture) writes 120 sessions of bars and features for six
synthetic tickers plus a synthetic ``^GSPC``. A second module fixture writes an ``oos_predictions``
table from two walk-forward fits (trained through sessions 39 and 79), the model signal's input
(``backtest_report`` reads it as an asset input, no registry lookup). Each test then
materializes ``backtest_report`` and reads back the files, the Dagster metadata and the MLflow run.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from run_results import materializations as _materializations
from run_results import metadata_values as _meta

from alphadag.defs.assets.backtests import backtest_report
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager
from alphadag.market.calendar import sessions

TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "^GSPC")
RANGE = ("2024-01-02", "2024-06-24")  # 120 sessions
DAYS = sessions(*RANGE)
THROUGH = {1: DAYS[39], 2: DAYS[79]}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DEFAULT_ROWS = ["sma_cross(fast=10,slow=20)", "rsi_reversion(period=14,lower=30,upper=70)",
                "macd_cross(fast=12,slow=26,signal=9)", "buy_and_hold"]  # fmt: skip


@pytest.fixture(scope="module")
def data_root(run_job, market, tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("backtest_data"))
    result = run_job(
        "daily_data_job", root, *RANGE, market_data=market(tickers=TICKERS, end="2024-07-31")
    )
    assert result.success
    return root


@pytest.fixture(scope="module")
def oos_store(tmp_path_factory, data_root) -> MlflowResource:
    """An ``oos_predictions`` table from two walk-forward fits (trained through sessions 39 and
    79, scoring 40-79 and 80-119) in the data root, and an empty MLflow store for the report."""
    from alphadag.market.storage import PartitionStore
    from alphadag.models.oos import OOS_SCHEMA

    store = PartitionStore(data_root)
    features = store.read("features", DAYS[40:]).filter(~pl.col("ticker").str.starts_with("^"))
    rng = np.random.default_rng(0)
    through = pl.when(pl.col("date") < DAYS[80]).then(THROUGH[1]).otherwise(THROUGH[2])
    oos = features.select(
        "date",
        "ticker",
        pl.lit("test").alias("segment"),
        pl.lit(3).alias("horizon"),
        pl.lit(0.0).alias("y_true"),
        pl.Series("y_pred", rng.normal(0, 0.01, features.height)),
        pl.lit(0.0).alias("baseline_momentum"),
        pl.lit(0.0).alias("baseline_reversal"),
        pl.lit(DAYS[0]).alias("fit_start"),
        through.alias("fit_trained_through"),
    ).select([pl.col(c).cast(t) for c, t in OOS_SCHEMA.items()])
    store.write_table("oos_predictions", oos.with_columns(pl.lit("{}").alias("experiment")))
    root = tmp_path_factory.mktemp("backtest_mlflow")
    return MlflowResource(
        tracking_uri=f"sqlite:///{root}/mlflow.db", artifact_location=str(root / "art")
    )


def _report(instance, data_root, store: MlflowResource, **config) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        # oos_predictions is read from the data root (written by the fixture), not computed
        [dg.AssetSpec("oos_predictions"), backtest_report],
        instance=instance,
        resources={"io_manager": ParquetPartitionIOManager(data_root=data_root), "mlflow": store},
        run_config={"ops": {"backtest_report": {"config": config}}},
        raise_on_error=False,
    )


def test_report_files_metadata_and_mlflow_run_with_the_model_signal(
    instance, data_root, oos_store, defs
):
    result = _report(instance, data_root, oos_store, commission=0.001, top_k=2)
    assert result.success
    (mat,) = _materializations(result, "backtest_report")
    meta = _meta(mat)

    # one table row per strategy, the walk-forward model signal, then the benchmark
    table = mat.metadata["comparison"].value
    names = [r.data["strategy"] for r in table.records]
    dropout = "topk_dropout(k=2,n_drop=1,rebalance=5,band=5)"  # the default model book
    assert names == [*DEFAULT_ROWS, dropout, "model_signal(k=2)", "^GSPC"]
    assert [r.data["role"] for r in table.records][-1] == "benchmark"
    assert {c.name for c in table.schema.columns} >= {"strategy", "sharpe", "max_drawdown_pct"}
    assert meta["model_signal"].startswith("included: top 2, oos_predictions: 2 walk-forward fits")
    assert f"predictions from {DAYS[40]}, IC horizon 3" in meta["model_signal"]
    # the model's IC over the period (predictions vs realised 3-session returns)
    assert meta["model_ic"]["horizon"] == 3 and meta["model_ic"]["n_dates"] >= 70
    assert meta["period"] == f"{DAYS[0]}..{DAYS[-1]}" and meta["sessions"] == 120
    assert meta["equity_chart"].startswith("![equity](data:image/png;base64,")
    # shown in place in the Dagster UI: markdown under 1,000 characters, the charts as SVG
    best = meta["best_run"].split("**")[1]
    assert best in names[:-1] and best != "^GSPC"
    for key in ("best_run", "equity_vs_benchmark", "drawdown"):
        assert len(meta[key]) < 1000, (key, len(meta[key]))
    for key in ("equity_vs_benchmark", "drawdown"):
        assert meta[key].startswith(f"![{key}](data:image/svg+xml,%3Csvg")
    # the table's figures are rounded: money to the unit, percentages to 0.01, ratios to 0.001
    analysis = mat.metadata["analysis"].value
    for record in [*table.records, *analysis.records]:
        for column, value in record.data.items():
            if isinstance(value, float):
                digits = 0 if column in ("equity_final", "commissions") else 3
                assert value == round(value, digits), (column, value)
    # the analysis table: every run and the benchmark, the figures a quant reads first
    assert [r.data["run"] for r in analysis.records] == names
    columns = {c.name for c in analysis.schema.columns}
    assert columns >= {"information_ratio", "information_ratio_gross", "omega", "turnover"}
    tdrop = next(r.data for r in analysis.records if r.data["run"] == dropout)
    daily = next(r.data for r in analysis.records if r.data["run"] == "model_signal(k=2)")
    assert tdrop["turnover"] < daily["turnover"]  # the dropout book trades less

    # the files, under <data_root>/reports/backtest_report/<run_id>/
    out = Path(data_root) / "reports" / "backtest_report" / result.run_id
    assert meta["report_html"] == str(out / "report.html")
    for png in ("equity.png", "drawdown.png", "monthly_returns.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    html = (out / "report.html").read_text()
    # every run in the table, the best one marked; plotly.js inline, nothing fetched
    assert all(f"{n}</td>" in html for n in names) and f'id="best">{best}<' in html
    assert "<script src" not in html and 'id="price-chart"' in html
    trades = pl.read_csv(out / "trades.csv")
    assert trades.height > 0 and set(trades["ticker"]) <= set(TICKERS) - {"^GSPC"}
    csv = pl.read_csv(out / "comparison.csv")
    assert csv["strategy"].to_list() == names

    # the MLflow run: same stats, the artifacts, the Dagster run id
    client = oos_store.client()
    run = client.get_run(meta["mlflow_run_id"])
    assert run.data.tags["dagster.run_id"] == result.run_id
    hold = next(r.data for r in table.records if r.data["strategy"] == "buy_and_hold")
    assert run.data.metrics["buy_and_hold/total_return_pct"] == pytest.approx(
        hold["total_return_pct"], abs=0.005
    )  # the metric unrounded, the table to 0.01
    assert "model_signal_k_2/sharpe" in run.data.metrics
    # MLflow holds the analysis table's exact figures
    assert run.data.metrics["model_signal_k_2/information_ratio"] == pytest.approx(
        daily["information_ratio"], abs=0.0005
    )
    ic = run.data.metrics["model_signal_ic/rank_ic_mean"]
    assert ic == meta["model_ic"]["rank_ic_mean"]
    assert "GSPC/total_return_pct" in run.data.metrics
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "backtest_report")}
    assert logged >= {
        f"backtest_report/{f}"
        for f in ("report.html", "equity.png", "drawdown.png", "monthly_returns.png",
                  "comparison.csv", "analysis.csv", "monthly_returns.csv", "trades.csv")
    }  # fmt: skip
    assert meta["mlflow_run_url"].endswith(f"/runs/{run.info.run_id}")

    job = defs.resolve_job_def("backtest_job")
    assert job.tags["alphadag/kind"] == "backtest"


def test_a_period_without_oos_predictions_omits_the_model_signal_and_says_why(
    instance, data_root, oos_store
):
    empty = oos_store
    result = _report(
        instance,
        data_root,
        empty,
        start=DAYS[20].isoformat(),
        end=DAYS[39].isoformat(),
        strategies=[{"name": "sma_cross", "params": {"fast": 5, "slow": 15}}],
        benchmark="^IXIC",
    )
    assert result.success
    (mat,) = _materializations(result, "backtest_report")
    meta = _meta(mat)
    names = [r.data["strategy"] for r in mat.metadata["comparison"].value.records]
    assert names == ["sma_cross(fast=5,slow=15)"]  # no model row, no benchmark row
    assert meta["model_signal"] == (
        f"omitted: oos_predictions has no prediction in the period (covers {DAYS[40]}..{DAYS[-1]})"
    )
    assert meta["benchmark"] == "^IXIC: no bars, omitted"
    assert meta["period"] == f"{DAYS[20]}..{DAYS[39]}"
    run = empty.client().get_run(meta["mlflow_run_id"])
    assert run.data.params["model_signal"] == meta["model_signal"]


def test_bad_config_fails_before_anything_is_written(instance, data_root, tmp_path):
    store = MlflowResource(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    for config in (
        {"strategies": [{"name": "no_such_strategy"}]},
        {"start": "2030-01-01"},
    ):
        result = _report(instance, data_root, store, **config)
        assert not result.success, config
        assert _materializations(result, "backtest_report") == []
