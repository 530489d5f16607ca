"""The ``backtest_report`` asset: configured strategies, the model signal and a benchmark, compared.

Unpartitioned. It reads ``bars`` and ``features`` over the configured period straight from the
partition store (``deps``, not inputs: a period is not a partition range of this asset), runs every
configured strategy on the universe (index tickers excluded), the model signal on walk-forward
predictions from the MLflow registry (each date scored only by a version trained through an
earlier date, :mod:`alphadag.backtest.walk_forward`) and buy-and-hold on the benchmark ticker.
The charts and the self-contained HTML report go to ``<data_root>/reports/backtest_report/<run
id>/`` and, with the stats, to an MLflow run; the comparison table and the equity chart show in
the Dagster UI as table and markdown metadata. The logic is in :mod:`alphadag.backtest.report`.
"""

import base64
import datetime as dt
import math
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field
from upath import UPath

from alphadag.backtest.analysis import ic_analysis
from alphadag.backtest.report import TABLE_STATS, run_comparison, strategy_label, write_report
from alphadag.backtest.strategies import ModelSignal, get_strategy
from alphadag.backtest.walk_forward import (
    registry_history,
    registry_loader,
    walk_forward_predictions,
)
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager
from alphadag.market.storage import PartitionStore

REPORT_DIR = "reports/backtest_report"
DEFAULT_IC_HORIZON = 5
"""IC horizon when the model version has no ``alphadag.horizon`` tag."""


class StrategyConfig(dg.Config):
    """One strategy by registered name (built-ins or the ``alphadag.strategies`` entry points)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


def _default_strategies() -> list[StrategyConfig]:
    return [
        StrategyConfig(name="sma_cross", params={"fast": 10, "slow": 20}),
        StrategyConfig(name="rsi_reversion", params={"period": 14, "lower": 30, "upper": 70}),
        StrategyConfig(name="macd_cross", params={"fast": 12, "slow": 26, "signal": 9}),
        StrategyConfig(name="buy_and_hold"),
    ]


class BacktestReportConfig(dg.Config):
    """What to compare, over which period, with which costs (the model signal is added)."""

    strategies: list[StrategyConfig] = Field(default_factory=_default_strategies)
    start: str | None = Field(None, description="first session (ISO date; default: the first)")
    end: str | None = Field(None, description="last session (ISO date; default: the last)")
    cash: float = 1_000_000.0
    commission: float = Field(0.001, description="rate per side")
    slippage_bps: float = 0.0
    top_k: int = Field(5, description="model signal: long the top k by predicted return")
    benchmark: str = Field("^GSPC", description="benchmark ticker (buy and hold)")


def _period(store: PartitionStore, config: BacktestReportConfig) -> list[dt.date]:
    days = sorted(dt.date.fromisoformat(p.stem) for p in (store.root / "bars").glob("*/*.parquet"))
    lo = dt.date.fromisoformat(config.start) if config.start else dt.date.min
    hi = dt.date.fromisoformat(config.end) if config.end else dt.date.max
    days = [d for d in days if lo <= d <= hi]
    if len(days) < 2:
        raise ValueError(
            f"backtest_report needs at least two sessions of bars in {config.start}..{config.end}, "
            f"found {len(days)}: run daily_data_job over the period first"
        )
    return days


def _model_signal(
    mlflow: MlflowResource, store: PartitionStore, days: list[dt.date], bars: pl.DataFrame
) -> tuple[pl.DataFrame | None, str, dict[str, float]]:
    """Walk-forward predictions (or ``None``), why, and their IC against realised returns."""
    try:
        features = store.read("features", days, missing_ok=True)
    except FileNotFoundError:
        return None, "omitted: no features partition in the period", {}
    client = mlflow.client()
    history = registry_history(client, mlflow.model_name)
    if not history:
        return None, f"omitted: no version of {mlflow.model_name} has alphadag.trained_through", {}
    load = registry_loader(
        mlflow.model_name,
        tracking_uri=mlflow.tracking_uri,
        registry_uri=mlflow.resolved_registry_uri,
    )
    universe = features.filter(~pl.col("ticker").str.starts_with("^"))
    preds = walk_forward_predictions(universe, history, load)
    if preds.height == 0:
        first = min(history.values())
        return None, f"omitted: no version was trained before the period (earliest: {first})", {}
    used = sorted(set(preds["model_version"].to_list()))
    latest = client.get_model_version(mlflow.model_name, str(used[-1]))
    horizon = int(latest.tags.get("alphadag.horizon", DEFAULT_IC_HORIZON))
    ic = ic_analysis(preds, bars, horizon=horizon).to_dict()
    note = f"versions {used}, predictions from {preds['date'].min()}, IC horizon {horizon}"
    return preds, note, {k: float(v) for k, v in ic.items() if math.isfinite(v)}


def _publish(local_dir: Path, target: UPath) -> None:
    """Copy the report files to the data root (local or object store)."""
    target.mkdir(parents=True, exist_ok=True)
    for local in sorted(local_dir.iterdir()):
        (target / local.name).write_bytes(local.read_bytes())


def _table(table: pl.DataFrame) -> dg.TableMetadataValue:
    types = {pl.String: "string", pl.Int64: "int"}
    columns = [dg.TableColumn(c, types.get(t, "float")) for c, t in table.schema.items()]
    records = [
        dg.TableRecord(
            {
                k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in row.items()
            }
        )
        for row in table.iter_rows(named=True)
    ]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns))


def _image_md(path: Path, alt: str) -> dg.MarkdownMetadataValue:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


@dg.asset(group_name="backtests", kinds={"polars", "mlflow"}, deps=["bars", "features"])
def backtest_report(
    context: dg.AssetExecutionContext,
    config: BacktestReportConfig,
    io_manager: dg.ResourceParam[ParquetPartitionIOManager],
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """Strategies vs the model signal vs buy-and-hold of the benchmark over one period.

    Unpartitioned; grain: one report per run. Decisions on a session's close fill at the next
    session's open; the model signal on a session uses only a registry version whose
    ``alphadag.trained_through`` is before that session (no look-ahead through the model).
    """
    from alphadag.models.tracking import log_run, metric_key

    strategies = {
        strategy_label(s.name, s.params): get_strategy(s.name, **s.params)
        for s in config.strategies
    }
    store = io_manager.store
    days = _period(store, config)
    period = f"{days[0]}..{days[-1]}"
    bars = store.read("bars", days)
    predictions, model_note, ic = _model_signal(mlflow, store, days, bars)
    if predictions is not None:
        model_note = f"included: top {config.top_k}, {model_note}"
        strategies[strategy_label("model_signal", {"k": config.top_k})] = ModelSignal(
            k=config.top_k
        )
    settings = {
        "cash": config.cash,
        "commission": config.commission,
        "slippage_bps": config.slippage_bps,
    }
    results, bench = run_comparison(
        bars, strategies, benchmark_ticker=config.benchmark, predictions=predictions, **settings
    )
    bench_note = config.benchmark if bench is not None else f"{config.benchmark}: no bars, omitted"
    notes = {"model_signal": model_note, "benchmark": bench_note}
    target = UPath(io_manager.data_root) / REPORT_DIR / context.run_id
    with tempfile.TemporaryDirectory() as tmp:
        files = write_report(
            results,
            tmp,
            benchmark=bench,
            benchmark_name=config.benchmark,
            title=f"Backtest report {period}",
            meta={**settings, **notes, **{f"model_{k}": v for k, v in ic.items()}},
        )
        files.table.write_csv(Path(tmp) / "comparison.csv")
        files.monthly.write_csv(Path(tmp) / "monthly_returns.csv")
        _publish(Path(tmp), target)
        mlflow.ensure_experiment()
        run_id = log_run(
            tracking_uri=mlflow.tracking_uri,
            registry_uri=mlflow.resolved_registry_uri,
            experiment=mlflow.experiment,
            params={"config": config.model_dump_json(), "period": period, **notes},
            metrics={
                **{
                    metric_key(row["strategy"], stat): row[stat]
                    for row in files.table.iter_rows(named=True)
                    for stat in (*TABLE_STATS, "excess_return_pct", "alpha_ann_pct", "beta")
                    if row.get(stat) is not None
                },
                **{metric_key("model_signal_ic", k): v for k, v in ic.items()},
            },
            artifacts={"backtest_report": tmp},
            tags={"dagster.run_id": context.run_id, "alphadag.kind": "backtest"},
        )
        charts = {
            "equity_chart": _image_md(files.equity_png, "equity"),
            "drawdown_chart": _image_md(files.drawdown_png, "drawdown"),
        }
    return dg.MaterializeResult(
        metadata={
            "comparison": _table(files.table),
            **charts,
            "report_html": dg.MetadataValue.path(str(target / files.html.name)),
            "report_dir": dg.MetadataValue.path(str(target)),
            "period": period,
            "sessions": len(days),
            "tickers": bars.get_column("ticker").n_unique(),
            "strategies": list(results),
            **notes,
            "model_ic": ic,
            "mlflow_run_id": run_id,
            "mlflow_run_url": dg.MetadataValue.url(mlflow.ui_url(run_id)),
        }
    )
