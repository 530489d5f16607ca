"""The ``alphadag`` command line: run slices of the pipeline without the UI.

``alphadag demo`` materializes the whole asset graph that exists so far for the configured history
as ranged runs on the instance in ``DAGSTER_HOME`` (the embedded default: ``.dagster_home``), so the
runs and materializations then show in the Dagster UI. ``alphadag materialize --start --end``
does the same for any range of sessions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Sequence


def _default_end() -> dt.date:
    from alphadag.market.sources.sample import SAMPLE_COVERAGE

    return SAMPLE_COVERAGE.end or dt.date.today()


def _session_range(start: dt.date, end: dt.date) -> tuple[str, str]:
    from alphadag.market.calendar import sessions

    days = sessions(start, end)
    if not days:
        raise SystemExit(f"no XNYS sessions between {start} and {end}")
    return days[0].isoformat(), days[-1].isoformat()


def materialize_range(
    job_name: str, start: dt.date, end: dt.date, *, log_level: str = "WARNING"
) -> dict:
    """Run ``job_name`` once over the sessions from ``start`` to ``end`` on the current instance.

    Returns a summary: run id, success, seconds, materializations and check outcomes.
    """
    import dagster as dg

    from alphadag.definitions import defs

    first, last = _session_range(start, end)
    job = defs().resolve_job_def(job_name)
    instance = dg.DagsterInstance.get()
    started = time.monotonic()
    result = job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
            "alphadag/kind": "backfill",
        },
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,
    )
    checks: dict[str, bool] = {}
    warnings: set[str] = set()
    for ev in result.get_asset_check_evaluations():
        key = f"{ev.asset_key.to_user_string()}:{ev.check_name}"
        checks[key] = checks.get(key, True) and ev.passed
        if ev.severity == dg.AssetCheckSeverity.WARN:
            warnings.add(key)
    mats: dict[str, int] = {}
    for ev in result.get_asset_materialization_events():
        key = ev.asset_key.to_user_string()
        mats[key] = mats.get(key, 0) + 1
    return {
        "job": job_name,
        "run_id": result.run_id,
        "success": result.success,
        "range": f"{first} .. {last}",
        "seconds": round(time.monotonic() - started, 1),
        "materialized_partitions": mats,
        "checks": checks,
        "warn_checks": sorted(warnings),
    }


def failed_error_checks(summary: dict) -> list[str]:
    """The checks of a run summary that failed with ERROR severity (WARN ones only warn)."""
    warn = set(summary.get("warn_checks", ()))
    return [k for k, ok in summary["checks"].items() if not ok and k not in warn]


def run_unpartitioned(job_name: str, *, tags: dict | None = None, ops: dict | None = None) -> dict:
    """Run an unpartitioned job on the current instance; its materializations' metadata merged.

    Returns ``{"run_id", "success", "seconds", **metadata}``.
    """
    import dagster as dg

    from alphadag.definitions import defs

    job = defs().resolve_job_def(job_name)
    started = time.monotonic()
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(),
        tags=tags,
        run_config={
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            **({"ops": ops} if ops else {}),
        },
        raise_on_error=False,
    )
    meta: dict = {"run_id": result.run_id, "success": result.success}
    for ev in result.get_asset_materialization_events():
        meta.update({k: v.value for k, v in ev.materialization.metadata.items()})
    meta["seconds"] = round(time.monotonic() - started, 1)
    return meta


def train_model() -> dict:
    """Run ``train_job`` (unpartitioned) on the current instance; the ``return_model`` metadata."""
    return run_unpartitioned("train_job", tags={"alphadag/kind": "train"})


DEMO_SERVING_SESSIONS = 30
"""The demo scores the sample's last 30 sessions with the champion, then scores the matured ones."""


def serve_recent(end: dt.date, n_sessions: int) -> dict:
    """Run ``serving_job`` (predictions + prediction_scores) over the last ``n_sessions`` to ``end``."""
    from alphadag.market.calendar import sessions

    days = sessions(end - dt.timedelta(days=2 * n_sessions + 10), end)[-n_sessions:]
    return materialize_range("serving_job", days[0], days[-1])


def _print_serving(summary: dict) -> None:
    import polars as pl

    from alphadag import settings

    if not summary["success"]:
        return
    root = settings.data_root()
    first, last = summary["range"].split(" .. ")
    preds = pl.read_parquet(os.path.join(root, "predictions", "*", f"{last}.parquet"))
    with pl.Config(tbl_rows=30, tbl_cols=12, tbl_hide_dataframe_shape=True, float_precision=4):
        print(f"\n   predictions for {last} (top 10 by signal; {preds.height} tickers):")
        print(
            preds.sort("signal", descending=True)
            .head(10)
            .select(
                "ticker",
                "y_pred",
                "y_lo",
                "y_hi",
                "signal",
                "vol_forecast",
                "var_95",
                "cvar_95",
                "model_source",
                "model_version",
            )
        )
    sources = sorted(set(preds["model_source"]))
    print(f"   model_source: {', '.join(sources)}   interval: {preds['interval_method'][0]}")
    scores = (
        pl.scan_parquet(os.path.join(root, "prediction_scores", "*", "*.parquet"))
        .filter(
            pl.col("date").is_between(dt.date.fromisoformat(first), dt.date.fromisoformat(last))
        )
        .collect()
        .sort("date")
    )
    if scores.height == 0:
        print("   prediction_scores: no prediction has matured yet")
        return
    r = scores.select(
        pl.len().alias("n"),
        pl.col("ic").mean(),
        pl.col("rank_ic").mean(),
        pl.col("hit_rate").mean(),
        pl.col("coverage").mean(),
        pl.col("nominal_coverage").first(),
    ).row(0, named=True)
    print(
        f"   prediction_scores: {r['n']} matured prediction dates  IC {r['ic']:.4f}  "
        f"rank IC {r['rank_ic']:.4f}  hit rate {r['hit_rate']:.3f}  "
        f"interval coverage {r['coverage']:.3f} (nominal {r['nominal_coverage']:.2f})"
    )


def backtest_report(start: str, end: dt.date) -> dict:
    """Run ``backtest_job`` over ``start``..``end``: the built-in strategies, the walk-forward
    model signal and buy-and-hold of the S&P 500; the ``backtest_report`` metadata."""
    return run_unpartitioned(
        "backtest_job",
        ops={"backtest_report": {"config": {"start": start, "end": end.isoformat()}}},
    )


def _last_bar(ticker: str) -> dt.date | None:
    """The last session with a bar of ``ticker`` in the data root (``None`` without one)."""
    import polars as pl

    from alphadag import settings

    path = os.path.join(settings.data_root(), "bars", "*", "*.parquet")
    last = (
        pl.scan_parquet(path).filter(pl.col("ticker") == ticker).select(pl.col("date").max())
    ).collect()
    return last.item()


def _print_backtest(meta: dict) -> None:
    import polars as pl

    print(
        f"\n== backtest_job: run {meta['run_id']}  success={meta['success']}  "
        f"wall={meta['seconds']}s"
    )
    if not meta["success"]:
        return
    print(
        f"   period {meta['period']}  {meta['tickers']} tickers  model signal: {meta['model_signal']}"
    )
    table = pl.read_csv(f"{meta['report_dir']}/comparison.csv")
    cols = [
        c
        for c in (
            "strategy",
            "role",
            "total_return_pct",
            "cagr_pct",
            "sharpe",
            "max_drawdown_pct",
            "n_trades",
            "excess_return_pct",
            "alpha_ann_pct",
            "beta",
        )
        if c in table.columns
    ]
    with pl.Config(
        tbl_rows=20,
        tbl_hide_dataframe_shape=True,
        float_precision=3,
        fmt_str_lengths=60,
        tbl_width_chars=170,
    ):
        print(table.select(cols))
    print(f"   benchmark: {meta['benchmark']}")
    print(f"   report: {meta['report_html']}")


def _print_training(meta: dict) -> None:
    print(
        f"\n== train_job: run {meta['run_id']}  success={meta['success']}  wall={meta['seconds']}s"
    )
    if not meta["success"]:
        return
    print(f"   registered {meta['model_uri']} -> {meta['decision']} ({meta['reason']})")
    print(f"   test IC {meta['test_ic_mean']:.4f}   test rank IC {meta['test_rank_ic_mean']:.4f}")
    for key, value in sorted(meta.items()):
        if key.endswith("_test_rank_ic_mean"):
            name = key.removesuffix("_test_rank_ic_mean")
            print(f"   baseline {name:<18} test rank IC {value:.4f}")
    print("   MLflow UI: `make mlflow-ui` -> http://127.0.0.1:5000")


def _print_summary(summary: dict) -> None:
    print(f"\n== {summary['job']} over {summary['range']}: run {summary['run_id']}")
    print(f"   success={summary['success']}  wall={summary['seconds']}s")
    for key, n in sorted(summary["materialized_partitions"].items()):
        print(f"   materialized {key:<22} {n:>6} partitions")
    warn = set(summary.get("warn_checks", ()))
    for key, passed in sorted(summary["checks"].items()):
        outcome = "PASS" if passed else ("WARN" if key in warn else "FAIL")
        print(f"   check {key:<40} {outcome}")


def _data_summary() -> None:
    import polars as pl

    from alphadag import settings

    root = settings.data_root()
    for dataset in ("raw_bars", "bars", "quarantined_bars", "features", "labels"):
        path = os.path.join(root, dataset)
        if not os.path.isdir(path):
            continue
        frame = pl.scan_parquet(os.path.join(path, "*", "*.parquet"))
        stats = frame.select(
            pl.len().alias("rows"),
            pl.col("ticker").n_unique().alias("tickers"),
            pl.col("date").min().alias("first"),
            pl.col("date").max().alias("last"),
        ).collect()
        r = stats.row(0, named=True)
        print(
            f"   {dataset:<18} {r['rows']:>9} rows  {r['tickers']:>3} tickers  "
            f"{r['first']} .. {r['last']}  ({path})"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    """Materialize everything for the configured history and print what was produced."""
    from alphadag import settings

    start = args.start or settings.history_start()
    end = args.end or _default_end()
    print(f"alphadag demo: sample universe, sessions {start} .. {end}")
    print(f"   DAGSTER_HOME={os.environ.get('DAGSTER_HOME')}  data={settings.data_root()}")
    t0 = time.monotonic()
    summary = materialize_range("daily_data_job", start, end)
    _print_summary(summary)
    print("\nProduced:")
    _data_summary()
    training = train_model() if summary["success"] else {"success": False}
    if summary["success"]:
        _print_training(training)
    serving = {"success": False, "checks": {}}
    backtest = {"success": False}
    if training["success"]:
        serving = serve_recent(end, DEMO_SERVING_SESSIONS)
        _print_summary(serving)
        _print_serving(serving)
        benchmark_end = _last_bar("^GSPC")
        if benchmark_end is not None:  # the sample's S&P 500 series ends in 2018
            print("\n   strategies against the S&P 500 over its last three years in the sample:")
            vs_index = backtest_report(
                (benchmark_end - dt.timedelta(days=3 * 365)).isoformat(), benchmark_end
            )
            _print_backtest(vs_index)
        print("\n   strategies and the walk-forward model signal over the model's test period:")
        backtest = backtest_report(training["segments"]["test_start"], end)
        _print_backtest(backtest)
    print(
        f"\nTotal {time.monotonic() - t0:.1f}s. Open the Dagster UI with `make dev` -> http://127.0.0.1:3000"
    )
    ok = (
        summary["success"]
        and not failed_error_checks(summary)
        and training["success"]
        and serving["success"]
        and not failed_error_checks(serving)
        and backtest["success"]
    )
    return 0 if ok else 1


def cmd_materialize(args: argparse.Namespace) -> int:
    """Run a job over a session range."""
    summary = materialize_range(args.job, args.start, args.end)
    _print_summary(summary)
    return 0 if summary["success"] else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``alphadag`` command."""
    parser = argparse.ArgumentParser(prog="alphadag", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="materialize the whole graph for the configured history")
    demo.add_argument("--start", type=dt.date.fromisoformat, default=None)
    demo.add_argument("--end", type=dt.date.fromisoformat, default=None)
    demo.set_defaults(func=cmd_demo)
    mat = sub.add_parser("materialize", help="run a job over a range of sessions")
    mat.add_argument("--job", default="ingest_job")
    mat.add_argument("--start", type=dt.date.fromisoformat, required=True)
    mat.add_argument("--end", type=dt.date.fromisoformat, required=True)
    mat.set_defaults(func=cmd_materialize)
    from alphadag.backtest.cli import register as register_backtest

    register_backtest(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alphadag`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
