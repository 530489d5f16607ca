"""The ``predictions`` asset: every session, every ticker scored by the governed model.

Grain: one row per (ticker, session) with features. Partition: one XNYS session (a ranged run
scores each of its sessions). Partition t reads the features of t and the bars of the 300
sessions up to t (for the volatility, VaR/CVaR and drawdown figures): nothing after t's close.
The model is ``models:/<name>@champion``, falling back to ``@previous`` and then to the naive
momentum baseline (:mod:`alphadag.models.serving` says exactly when); a fallback is written into
every row, fails the WARN check ``predictions_model_source`` and sends a ``model_fallback``
alert. The blocking ``predictions_contract`` check stops downstream assets on a batch that is
empty, mislabelled or has an interval that does not contain its prediction.
"""

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from alphadag.defs.assets.session_checks import session_check_results
from alphadag.defs.automation.freshness import DAILY_FRESHNESS
from alphadag.defs.automation.partitions import (
    full_history_backfill,
    partition_days,
    sessions_partitions,
)
from alphadag.defs.partition_metadata import add_partition_metadata
from alphadag.defs.resources.alerting import AlertSink
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.defs.resources.storage import Audited
from alphadag.markdown import markdown_table
from alphadag.models.drift import DRIFT_WINDOW_SESSIONS, drift_test
from alphadag.models.serving import (
    MODEL_SOURCES,
    PREDICTIONS_SCHEMA,
    build_predictions,
    resolve_served_model,
)
from alphadag.risk import portfolio_var_cvar, risk_table, simple_returns, top_k_weights
from alphadag.settings import DEFAULT_HORIZON
from alphadag.storage import storage_metadata

RISK_LOOKBACK_SESSIONS = 300
"""Bars partitions read before each session: the 250-return risk window plus the EWMA's seed."""


class PredictionsConfig(dg.Config):
    """Interval coverage, risk model and the drift threshold of the serving batch."""

    coverage: float = Field(0.9, gt=0.0, lt=1.0, description="nominal interval coverage")
    vol_method: str = Field("ewma", description="ewma | garch (GARCH(1,1) through arch)")
    var_method: str = Field(
        "filtered",
        description="filtered (FHS: EWMA-standardised 250-return quantile x today's sigma; "
        "chosen by the sample's VaR backtest, see var_backtest) | historical | parametric | auto",
    )
    risk_window: int = Field(250, description="trailing returns for VaR/CVaR and drawdown")
    top_k: int = Field(5, description="book size of the top-k long portfolio's VaR/CVaR")
    drift_min_rows: int = Field(
        200, ge=1, description="fewest pooled rows of a feature to test it for drift"
    )
    drift_alpha: float = Field(
        0.05, gt=0.0, lt=1.0, description="Benjamini-Hochberg level of the drift test"
    )
    default_horizon: int = Field(
        DEFAULT_HORIZON, description="the baseline's horizon when no model answers"
    )


@dg.asset(
    partitions_def=sessions_partitions,
    backfill_policy=full_history_backfill,
    group_name="serving",
    kinds={"sklearn", "mlflow", "parquet"},
    freshness_policy=DAILY_FRESHNESS,
    # lineage: the served model comes from return_model's registry aliases, read at run time
    deps=["return_model"],
    ins={
        # the run's sessions are scored; the DRIFT_WINDOW_SESSIONS up to the last feed the drift
        # check (features of sessions before the run, never after it)
        "features": dg.AssetIn(
            metadata=storage_metadata(window_optional=True),
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-(DRIFT_WINDOW_SESSIONS - 1),
                end_offset=0,
                allow_nonexistent_upstream_partitions=True,
            ),
        ),
        "bars": dg.AssetIn(
            metadata=storage_metadata(window_optional=True),
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-RISK_LOOKBACK_SESSIONS,
                end_offset=0,
                allow_nonexistent_upstream_partitions=True,
            ),
        ),
    },
    check_specs=[
        dg.AssetCheckSpec(
            "predictions_contract",
            asset="predictions",
            blocking=True,
            description="One row per ticker with features, the predictions columns, a known "
            "model_source, y_lo <= y_pred <= y_hi, finite predictions. One evaluation per session.",
            partitions_def=sessions_partitions,
        ),
        dg.AssetCheckSpec(
            "predictions_model_source",
            asset="predictions",
            description="WARN when the batch was not scored by the champion (fallback to the "
            "previous model or the baseline); the reasons are in the metadata. One evaluation "
            "per session.",
            partitions_def=sessions_partitions,
        ),
        # Unpartitioned on purpose: it tests the window ending at the run's last session against
        # the model's training data; a test per session of a long backfill would cost more
        # than the scoring.
        dg.AssetCheckSpec(
            "predictions_feature_drift",
            asset="predictions",
            description="WARN when a feature's distribution over the last 10 sessions differs "
            "from the serving model's training rows by more than the training data's own "
            "10-session windows do (chi-square per feature, Benjamini-Hochberg across features "
            "at drift_alpha). Passes as 'insufficient sample' below drift_min_rows rows.",
        ),
    ],
)
def predictions(
    context: dg.AssetExecutionContext,
    config: PredictionsConfig,
    mlflow: MlflowResource,
    alerts: AlertSink,
    features: pl.DataFrame,
    bars: pl.DataFrame,
):
    """Predicted horizon-session log return per (ticker, session), with a calibrated
    interval, a cross-sectional signal, volatility forecast and one-day VaR/CVaR at 95% and 99%.

    Columns: date, ticker, horizon, y_pred, y_lo, y_hi, coverage, signal, vol_forecast, var_95,
    cvar_95, var_99, cvar_99, model_name, model_version, model_source (champion | previous | baseline),
    interval_method. Partition t uses features of t and bars up to t only. A backfill of old
    sessions scores them with today's champion (metadata rows_in_sample counts those on or
    before its trained_through); backtests use walk-forward predictions instead.
    """
    days = partition_days(context)
    recent_features = features  # with the drift window's sessions before the run
    features = features.filter(pl.col("date").is_between(days[0], days[-1]))
    model = resolve_served_model(
        mlflow.client(),
        mlflow.model_name,
        features,
        tracking_uri=mlflow.tracking_uri,
        registry_uri=mlflow.resolved_registry_uri,
        default_horizon=config.default_horizon,
    )
    risk = pl.concat(
        [
            risk_table(
                bars,
                d,
                window=config.risk_window,
                vol_method=config.vol_method,
                var_method=config.var_method,  # type: ignore[arg-type]
            )
            for d in days
        ]
    )
    batch = build_predictions(features, model, coverage=config.coverage, risk=risk)
    book = _portfolio_risk(batch, bars, days[-1], config.top_k, config.risk_window)
    sessions = _by_session(batch, days)
    per_session = {
        day.isoformat(): {
            "mean_interval_width": _mean(part["y_hi"] - part["y_lo"]),
            # a backfill scores past sessions with today's champion: these rows are in-sample
            "rows_in_sample": (
                part.height if model.trained_through and day <= model.trained_through else 0
            ),
        }
        for day, part in sessions.items()
    }
    # the top-k book and the signal table are figures of the run's last session only
    per_session[days[-1].isoformat()].update(
        {
            **book,
            "top_signals": dg.MetadataValue.md(
                markdown_table(
                    sessions[days[-1]]
                    .sort("signal", descending=True)
                    .select("ticker", "y_pred", "y_lo", "y_hi", "signal", "vol_forecast", "var_95")
                )
            ),
        }
    )
    add_partition_metadata(context, "predictions", per_session)
    feature_rows = _rows_by_session(features, days)
    # write-audit-publish: the contract is checked on the staged batch; only passing sessions
    # replace their published predictions
    staged = Audited(
        batch,
        audit=lambda rows: {
            "predictions_contract": {
                day.isoformat(): _contract_outcome(part, feature_rows[day])
                for day, part in _by_session(rows, days).items()
            }
        },
        blocking=frozenset({"predictions_contract"}),
    )
    yield dg.Output(
        staged,
        metadata={  # one model scores the whole run: true of every session
            "model_source": model.source,
            "model": f"{model.name}/{model.version}",
            "fallback_reasons": "; ".join(model.fallback_reasons) or "none",
            "interval_method": batch["interval_method"][0] if batch.height else "",
            "coverage": config.coverage,
            "model_trained_through": str(model.trained_through or ""),
        },
    )
    yield from session_check_results(
        context,
        "predictions",
        "predictions_contract",
        staged.session_outcomes("predictions_contract", [d.isoformat() for d in days]),
    )
    source = {
        "model_source": model.source,
        "model_version": model.version,
        "fallback_reasons": "; ".join(model.fallback_reasons) or "none",
    }
    yield from session_check_results(
        context,
        "predictions",
        "predictions_model_source",
        {day.isoformat(): (model.source == "champion", source) for day in days},
        severity=dg.AssetCheckSeverity.WARN,
    )
    if model.is_fallback:
        message = (
            f"predictions {days[0]}..{days[-1]} scored by {model.source} "
            f"({model.name}/{model.version}): {'; '.join(model.fallback_reasons)}"
        )
        context.log.warning(message)
        alerts.send(
            "model_fallback",
            message,
            source="predictions",
            partitions=[d.isoformat() for d in days],
            model_source=model.source,
            model_version=model.version,
            reasons=list(model.fallback_reasons),
            run_id=context.run.run_id,
        )
    yield _drift_check(
        model.drift_reference,
        recent_features.filter(pl.col("date") <= days[-1]),
        days[-1],
        min_rows=config.drift_min_rows,
        alpha=config.drift_alpha,
    )


def _mean(s: pl.Series) -> float:
    v = s.drop_nulls().mean()
    return float(v) if v is not None else float("nan")


def _portfolio_risk(batch: pl.DataFrame, bars: pl.DataFrame, day, k: int, window: int) -> dict:
    """One-day VaR/CVaR 95% of the top-k long book the last session's signals imply."""
    last = batch.filter(pl.col("date") == day).select("ticker", "signal")
    if last.height == 0:
        return {}
    book = top_k_weights(last, k)
    wide = (
        simple_returns(bars.filter(pl.col("date") <= day))
        .filter(pl.col("ticker").is_in(book["ticker"].to_list()))
        .select("date", "ticker", "ret")
        .pivot(on="ticker", index="date", values="ret")
        .sort("date")
        .drop_nulls()
        .tail(window)
    )
    if wide.height < 30:
        return {"portfolio_tickers": ", ".join(book["ticker"].to_list())}
    figures = portfolio_var_cvar(wide, book, level=0.95)
    return {
        "portfolio_tickers": ", ".join(book["ticker"].to_list()),
        "portfolio_var_95": figures.var,
        "portfolio_cvar_95": figures.cvar,
    }


def _by_session(frame: pl.DataFrame, days) -> dict:
    """``frame`` split by its ``date`` into one (possibly empty) frame per session of ``days``."""
    parts = {k[0]: p for k, p in frame.partition_by("date", as_dict=True).items()}
    return {d: parts.get(d, frame.clear()) for d in days}


def _rows_by_session(frame: pl.DataFrame, days) -> dict:
    counts = dict(frame.group_by("date").len().iter_rows())
    return {d: counts.get(d, 0) for d in days}


def _contract_outcome(batch: pl.DataFrame, feature_rows: int) -> tuple[bool, dict]:
    """predictions_contract of one session's rows (``feature_rows``: its rows of features)."""
    problems: list[str] = []
    if list(batch.schema.items())[: len(PREDICTIONS_SCHEMA)] != list(PREDICTIONS_SCHEMA.items()):
        problems.append("columns or types differ from the predictions contract")
    if batch.height != feature_rows:
        problems.append(f"{batch.height} rows for {feature_rows} feature rows")
    bad_source = batch.filter(~pl.col("model_source").is_in(MODEL_SOURCES)).height
    if bad_source:
        problems.append(f"{bad_source} rows with an unknown model_source")
    if batch.height and not np.isfinite(batch["y_pred"].to_numpy()).all():
        problems.append("non-finite y_pred")
    outside = batch.filter(
        pl.col("y_lo").is_not_null() & ~pl.col("y_pred").is_between(pl.col("y_lo"), pl.col("y_hi"))
    ).height
    if outside:
        problems.append(f"{outside} rows whose interval does not contain y_pred")
    return not problems, {"problems": "; ".join(problems) or "none", "rows": batch.height}


def _drift_check(reference, window: pl.DataFrame, day, *, min_rows: int, alpha: float):
    """predictions_feature_drift: :func:`alphadag.models.drift.drift_test` of the features'
    last sessions up to ``day`` (``window``) against the serving model's training rows."""
    if reference is None or reference.height == 0:
        return dg.AssetCheckResult(
            check_name="predictions_feature_drift",
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="not evaluated: the serving model logged no feature reference "
            "(the baseline, or a model from before drift references were logged)",
            metadata={"evaluated": False},
        )
    result = drift_test(reference, window, min_rows=min_rows, alpha=alpha)
    table = result.table
    tested = table.filter(pl.col("p_value").is_not_null())
    return dg.AssetCheckResult(
        check_name="predictions_feature_drift",
        passed=result.passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=result.describe(),
        metadata={
            "evaluated": True,
            "session": day.isoformat(),
            "window": (
                f"{result.sessions[0]}..{result.sessions[-1]} ({len(result.sessions)} sessions)"
                if result.sessions
                else "none"
            ),
            "rows_pooled": int(table["n_current"].max() or 0),
            "min_rows": min_rows,
            "alpha": alpha,
            "null": ", ".join(sorted(set(tested["null"].to_list()))) or "none",
            "features_tested": tested.height,
            "features_drifted": len(result.drifted),
            "features_insufficient": len(result.insufficient),
            "drifted": ", ".join(result.drifted) or "none",
            "drift": dg.MetadataValue.md(
                markdown_table(table.head(15).with_columns(pl.col(pl.Float64).round_sig_figs(3)))
            ),
        },
    )
