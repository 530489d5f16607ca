"""``alphadag backtest``: run a strategy on any CSV or Parquet file of bars, without the orchestrator.

The file holds ``ticker, date, close`` and optionally ``open, high, low, volume`` (header names are
matched case-insensitively, ``Adj Close`` style spaces read as underscores); a file without a
``ticker`` column is one ticker named after the file stem. ``--param key=value`` sets a strategy
parameter (ints, floats and ``true``/``false`` are parsed); a comma list (``--param fast=5,10,20``)
runs the grid of all combinations, with a progress bar on a terminal (tqdm when installed, else a
plain stderr counter). In a grid, a combination the strategy rejects (e.g. ``fast >= slow``) or
that ``--constraint "fast < slow"`` excludes is skipped and listed with its reason (an error only
when every combination is); the runs are ranked by ``--maximize`` (a stats field, default
``sharpe``, NaN last): the text table best first with the best marked ``*``, the JSON ``runs``
in grid order each with its ``rank`` (1 = best), plus ``best`` (its index in ``runs``, null
when no run has a number) and ``skipped``. ``--json`` prints one JSON object (``nan`` as
``null``); ``--report DIR`` writes the HTML report of :mod:`alphadag.backtest.report` with buy-and-hold on the same bars as
the benchmark. Bad input fails with exit status 2 and a message naming the file and the column.

    alphadag backtest --bars spy.csv --strategy sma_cross --param fast=10 --param slow=20 --json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from alphadag.market.bars_file import CONTRACT_COLUMNS, date_expr, rename_plan

__all__ = ["BarsFileError", "cmd_backtest", "parse_params", "read_bars", "register"]

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


class BarsFileError(ValueError):
    """A bars (or predictions) file that cannot be used, with the file and column named."""


def _read_table(path: Path, targets: Sequence[str]) -> tuple[pl.DataFrame, list[str]]:
    """The file's ``targets`` columns (header mapped by :func:`rename_plan`) and its header."""
    if not path.exists():
        raise BarsFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pl.read_csv(path, try_parse_dates=True, infer_schema_length=10_000)
        elif suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        else:
            raise BarsFileError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")
    except (pl.exceptions.PolarsError, OSError) as e:
        raise BarsFileError(f"{path}: cannot be read: {e}") from e
    # the header mapping every bars reader shares (exact name, then case-insensitive, spaces as _)
    plan = rename_plan(frame.columns, targets=targets)
    return frame.select(pl.col(src).alias(dst) for src, dst in plan.items()), frame.columns


def _to_date(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    try:
        parsed = frame.select(date_expr(frame.schema["date"]))["date"]
    except ValueError as e:
        raise BarsFileError(f"{path}: {e}") from e
    bad = frame["date"].filter(parsed.is_null() & frame["date"].is_not_null())
    if bad.len():
        raise BarsFileError(
            f"{path}: column 'date' has values that are not dates, e.g. {bad[0]!r} "
            "(use ISO dates, YYYY-MM-DD)"
        )
    return frame.with_columns(parsed)


def _check_no_nulls(frame: pl.DataFrame, path: Path, column: str) -> None:
    nulls = frame[column].is_null()
    if nulls.any():
        row = int(nulls.arg_true()[0])
        raise BarsFileError(
            f"{path}: column {column!r} has {int(nulls.sum())} missing value(s), first at data "
            f"row {row + 1}"
        )


def read_bars(path: str | Path) -> pl.DataFrame:
    """Bars (``ticker, date, open, high, low, close, volume``) from a CSV or Parquet file.

    Columns ``open``, ``high``, ``low`` and ``volume`` are optional (null when absent); a file
    without ``ticker`` is one ticker named ``path``'s stem. Raises :class:`BarsFileError`
    naming the file and the column for a missing column, a non-numeric or non-positive close,
    an unparseable date or a duplicate ``(ticker, date)``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "SPY.csv"
    >>> _ = p.write_text("Date,Close\\n2024-01-02,470.5\\n2024-01-03,468.0\\n")
    >>> read_bars(p).select("ticker", "date", "close").rows()[0]
    ('SPY', datetime.date(2024, 1, 2), 470.5)
    """
    path = Path(path)
    frame, header = _read_table(path, CONTRACT_COLUMNS)
    missing = [c for c in ("date", "close") if c not in frame.columns]
    if missing:
        raise BarsFileError(
            f"{path}: missing column(s) {missing}; found {header} "
            "(need date and close; ticker, open, high, low, volume are optional)"
        )
    if frame.height == 0:
        raise BarsFileError(f"{path}: no rows")
    if "ticker" not in frame.columns:
        frame = frame.with_columns(pl.lit(path.stem).alias("ticker"))
    _check_no_nulls(frame, path, "ticker")
    _check_no_nulls(frame, path, "date")
    frame = _to_date(frame, path)
    for col in PRICE_COLUMNS:
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
            continue
        cast = frame[col].cast(pl.Float64, strict=False)
        bad = frame[col].filter(cast.is_null() & frame[col].is_not_null())
        if bad.len():
            raise BarsFileError(f"{path}: column {col!r} has non-numeric values, e.g. {bad[0]!r}")
        frame = frame.with_columns(cast.alias(col))
    _check_no_nulls(frame, path, "close")
    if (frame["close"] <= 0).any():
        row = int((frame["close"] <= 0).arg_true()[0])
        raise BarsFileError(f"{path}: column 'close' must be > 0; data row {row + 1} is not")
    frame = frame.select(pl.col("ticker").cast(pl.String), "date", *PRICE_COLUMNS)
    dup = frame.filter(pl.struct("ticker", "date").is_duplicated())
    if dup.height:
        t, d = dup.row(0)[:2]
        raise BarsFileError(f"{path}: duplicate (ticker, date) rows, e.g. ({t}, {d})")
    return frame.sort("ticker", "date")


def read_predictions(path: str | Path) -> pl.DataFrame:
    """Predictions (``date, ticker, y_pred``) for ``model_signal`` from a CSV or Parquet file."""
    path = Path(path)
    frame, header = _read_table(path, ("date", "ticker", "y_pred"))
    missing = [c for c in ("date", "ticker", "y_pred") if c not in frame.columns]
    if missing:
        raise BarsFileError(f"{path}: missing column(s) {missing}; found {header}")
    frame = _to_date(frame, path)
    y = frame["y_pred"].cast(pl.Float64, strict=False)
    if (y.is_null() & frame["y_pred"].is_not_null()).any():
        raise BarsFileError(f"{path}: column 'y_pred' has non-numeric values")
    return frame.select("date", pl.col("ticker").cast(pl.String), y.alias("y_pred"))


def _scalar(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_params(items: Iterable[str]) -> list[dict[str, Any]]:
    """``["fast=5,10", "slow=20"]`` -> every combination as keyword dicts.

    >>> parse_params(["fast=5,10", "slow=20"])
    [{'fast': 5, 'slow': 20}, {'fast': 10, 'slow': 20}]
    >>> parse_params([])
    [{}]
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier() or not value.strip():
            raise ValueError(f"--param {item!r}: expected key=value (e.g. fast=10 or fast=5,10)")
        if key in grid:
            raise ValueError(f"--param {key} given twice; use a comma list for several values")
        grid[key] = [_scalar(v) for v in value.split(",")]
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _progress(items: Sequence[Any], enabled: bool) -> Iterator[Any]:
    """``items``, with a progress bar on stderr when there are several and stderr is a terminal."""
    show = enabled and len(items) > 1 and sys.stderr.isatty()
    if not show:
        yield from items
        return
    try:
        from tqdm import tqdm
    except ImportError:
        for i, item in enumerate(items, 1):
            yield item
            print(f"\rbacktest {i}/{len(items)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        return
    yield from tqdm(items, desc="backtest", unit="run", file=sys.stderr)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _fail(message: str) -> int:
    print(f"alphadag backtest: error: {message}", file=sys.stderr)
    return 2


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run the strategy (or its parameter grid) on the bars file and print the stats."""
    from alphadag.backtest import BacktestSettings, run_backtest
    from alphadag.backtest.engine import plan_grid, rank_order
    from alphadag.backtest.report import strategy_label
    from alphadag.backtest.stats import Stats
    from alphadag.backtest.strategies import ModelSignal, available, strategy_factory

    try:
        bars = read_bars(args.bars)
        if args.start is not None:
            bars = bars.filter(pl.col("date") >= args.start)
        if args.end is not None:
            bars = bars.filter(pl.col("date") <= args.end)
        if bars.height == 0:
            raise BarsFileError(f"{args.bars}: no bars between {args.start} and {args.end}")
        predictions = read_predictions(args.predictions) if args.predictions else None
        grid = parse_params(args.param)
    except (BarsFileError, ValueError) as e:
        return _fail(str(e))
    if args.strategy not in available():
        return _fail(f"unknown strategy {args.strategy!r}; known: {sorted(available())}")
    factory = strategy_factory(args.strategy)
    ranked = isinstance(factory, type) and issubclass(factory, ModelSignal)  # top k by y_pred
    if ranked and predictions is None:
        return _fail(f"{args.strategy} needs --predictions FILE (date, ticker, y_pred)")
    if args.maximize not in Stats.__dataclass_fields__:
        return _fail(f"--maximize {args.maximize!r} is not a stats field, e.g. sharpe, cagr_pct")
    n_tickers = bars["ticker"].n_unique()
    sizing = args.sizing or (
        "weight" if ranked else ("all_in" if n_tickers == 1 else "equal_weight")
    )
    settings = {
        "cash": args.cash,
        "commission": args.commission,
        "slippage_bps": args.slippage_bps,
        "fractional": args.fractional,
        "allow_short": args.allow_short,
        "sizing": sizing,
    }
    try:  # the knobs checked once, before any bar is simulated
        knobs = BacktestSettings(**settings)
    except ValueError as e:
        return _fail(str(e))
    try:  # combinations the strategy rejects or the constraint excludes are skipped
        plan = plan_grid(factory, grid, constraint=args.constraint)
    except (TypeError, ValueError) as e:
        return _fail(f"strategy {args.strategy!r} with --param {args.param}: {e}")
    grid, strategies = plan.params, plan.strategies
    from alphadag.backtest.strategies import BuyAndHold

    # the benchmark of every figure relative to one (excess, IR, alpha, beta, benchmark return)
    # and of the report: equal-weight buy-and-hold of the same bars with the same costs
    hold = run_backtest(bars, BuyAndHold(), settings=knobs, sizing="equal_weight")
    benchmark = hold.equity.select("date", pl.col("equity").alias("close"))
    hold = run_backtest(
        bars, BuyAndHold(), settings=knobs, sizing="equal_weight", benchmark=benchmark
    )
    results = {}
    runs = []
    try:
        for params, strategy in _progress(list(zip(grid, strategies, strict=True)), args.progress):
            result = run_backtest(
                bars, strategy, settings=knobs, predictions=predictions, benchmark=benchmark
            )
            results[strategy_label(args.strategy, params)] = result
            runs.append({"params": params, "stats": result.stats.to_dict()})
    except ValueError as e:
        return _fail(str(e))
    order = rank_order([run["stats"][args.maximize] for run in runs])
    for rank, i in enumerate(order, 1):
        runs[i]["rank"] = rank
    best = order[0] if math.isfinite(runs[order[0]]["stats"][args.maximize]) else None
    report = None
    if args.report is not None:
        from alphadag.backtest.report import write_report

        report = write_report(
            results,
            args.report,
            benchmark=hold,
            benchmark_name="buy_and_hold",
            bars=bars,
            title=f"Backtest: {args.strategy} on {Path(args.bars).name}",
            meta={"bars": args.bars, **settings},
        ).html
    summary = {
        "bars": str(args.bars),
        "tickers": sorted(bars["ticker"].unique().to_list()),
        "start": bars["date"].min().isoformat(),
        "end": bars["date"].max().isoformat(),
        "sessions": bars["date"].n_unique(),
        "strategy": args.strategy,
        "settings": settings,
        "runs": runs,
        "maximize": args.maximize,
        "best": best,
        "skipped": [{"params": p, "reason": why} for p, why in plan.skipped],
        "benchmark": {"name": "buy_and_hold", "stats": hold.stats.to_dict()},
        "report": str(report) if report is not None else None,
    }
    if args.json:
        print(json.dumps(_json_safe(summary), indent=2, allow_nan=False))
        return 0
    _print_text(summary)
    return 0


SHOWN = (
    "total_return_pct",
    "cagr_pct",
    "sharpe",
    "excess_return_ann_pct",
    "information_ratio",
    "max_drawdown_pct",
    "n_trades",
    "win_rate_pct",
)
"""The figures of a grid's one-line-per-run table."""


def _print_text(summary: dict[str, Any]) -> None:
    """The analysis table (:func:`~alphadag.backtest.analysis.analysis_table`, rounded by
    ``format_analysis``) of the run against the buy-and-hold benchmark, then the remaining
    stats; a grid prints one line of :data:`SHOWN` per run."""
    from alphadag.backtest.analysis import ANALYSIS_COLUMNS, analysis_table, format_analysis
    from alphadag.backtest.report import strategy_label
    from alphadag.backtest.stats import Stats

    tickers = summary["tickers"]
    print(
        f"{summary['strategy']} on {summary['bars']}: {len(tickers)} ticker(s), "
        f"{summary['sessions']} sessions {summary['start']}..{summary['end']}"
    )
    runs = summary["runs"]
    bench = summary.get("benchmark")
    if len(runs) == 1:
        stats = {"strategy": Stats(**runs[0]["stats"])}
        table = analysis_table(
            stats,
            Stats(**bench["stats"]) if bench else None,
            benchmark_name=bench["name"] if bench else "benchmark",
        )
        shown = format_analysis(table, labels=False)
        names = table["run"].to_list()
        print(f"  {'':<47} {'':<31}" + "".join(f" {n:>14}" for n in names))
        for col in ANALYSIS_COLUMNS:
            label = f"{col.label} [{col.unit}]"
            cells = "".join(f" {v:>14}" for v in shown[col.name])
            print(f"  {label:<47} {col.name:<31}{cells}")
        print("  other stats (backtesting.py's definitions; buy_hold_return_pct: the tickers' "
              "closes from the end of the warm-up, no costs):")  # fmt: skip
        listed = {c.name for c in ANALYSIS_COLUMNS}
        for key, value in runs[0]["stats"].items():
            if key in listed:
                continue
            print(
                f"  {key:<33} {value:.6g}" if isinstance(value, float) else f"  {key:<33} {value}"
            )
    else:  # the grid, best first by summary["maximize"], the best marked *
        keys = list(runs[0]["params"])
        shown = (summary["maximize"], *(s for s in SHOWN if s != summary["maximize"]))
        print(f"  ranked by {summary['maximize']}, best first (* the best)")
        print(
            "   " + "  ".join(f"{k:>8}" for k in keys) + "  " + "  ".join(f"{s:>16}" for s in shown)
        )
        for i in sorted(range(len(runs)), key=lambda i: runs[i]["rank"]):
            mark = "*" if i == summary["best"] else " "
            params = "  ".join(f"{runs[i]['params'][k]!s:>8}" for k in keys)
            stats = "  ".join(f"{runs[i]['stats'][s]:>16.6g}" for s in shown)
            print(f"  {mark}{params}  {stats}")
    if summary["skipped"]:
        print(f"  skipped {len(summary['skipped'])} combination(s):")
        for skip in summary["skipped"]:
            print(f"    {strategy_label(summary['strategy'], skip['params'])}: {skip['reason']}")
    if summary["report"]:
        print(f"report: {summary['report']}")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``backtest`` sub-command to the ``alphadag`` parser's ``subparsers``."""
    import datetime as dt

    p = subparsers.add_parser(
        "backtest",
        help="run a strategy on a CSV/Parquet file of bars",
        description="Run a strategy on a CSV or Parquet file of bars (see alphadag.backtest.cli).",
    )
    p.add_argument("--bars", required=True, help="CSV or Parquet: [ticker,] date, [open, high, "
                   "low,] close[, volume]")  # fmt: skip
    p.add_argument("--strategy", required=True, help="a registered name, e.g. sma_cross")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="strategy parameter; a comma list runs a grid (repeatable)")  # fmt: skip
    p.add_argument("--cash", type=float, default=1_000_000.0)
    p.add_argument("--commission", type=float, default=0.0, help="rate per side, e.g. 0.002")
    p.add_argument("--slippage-bps", type=float, default=0.0)
    p.add_argument("--sizing", choices=("all_in", "equal_weight", "weight"), default=None,
                   help="default: all_in for one ticker, equal_weight for several")  # fmt: skip
    p.add_argument("--fractional", action="store_true", help="allow fractional shares")
    p.add_argument("--allow-short", action="store_true")
    p.add_argument("--start", type=dt.date.fromisoformat, default=None)
    p.add_argument("--end", type=dt.date.fromisoformat, default=None)
    p.add_argument("--predictions", default=None,
                   help="date, ticker, y_pred (model_signal, topk_dropout)")  # fmt: skip
    p.add_argument("--constraint", default=None, metavar="EXPR",
                   help='grid: keep the combinations where EXPR holds, e.g. "fast < slow"')  # fmt: skip
    p.add_argument("--maximize", default="sharpe", metavar="FIELD",
                   help="grid: rank the runs by this stats field, highest first")  # fmt: skip
    p.add_argument("--report", type=Path, default=None, metavar="DIR", help="write report.html")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_backtest)
    return p
