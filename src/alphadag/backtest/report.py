"""Backtest reports: an analysis table, interactive charts and one self-contained HTML file.

Input is ``{label: BacktestResult}`` (from :func:`alphadag.backtest.run_backtest`, labels from
:func:`strategy_label`) and an optional benchmark result (buy-and-hold on the benchmark ticker).
:func:`comparison_table` gives one row per run plus the benchmark, with the headline stats, the
excess return over the benchmark and the beta and correlation of daily equity returns against it.
The pure pieces of the report are functions of their own: :func:`rank_runs` (best first),
:func:`monthly_returns` and :func:`monthly_table` (a year x month table), :func:`param_heatmap`
(a metric over a two-parameter grid), :func:`worst_drawdowns` and :func:`trade_list`.
:func:`write_report` writes ``report.html``: plotly figures (price with the trades of the chosen
run, equity against the benchmark with its peak and the worst drawdowns shaded, the parameter
heatmap) with plotly.js inlined once, so it opens offline and makes no network request, plus the
sorted table with the best run marked, its trade list and its monthly returns; and static PNGs
(matplotlib's Agg canvas, no pyplot state) for viewers that only show images.
Pure: no dagster, no mlflow.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from alphadag.backtest.engine import BacktestResult, run_backtest
from alphadag.backtest.strategies import BuyAndHold, ModelSignal, Strategy

__all__ = [
    "COLUMN_LABELS",
    "TABLE_STATS",
    "Heatmap",
    "ReportFiles",
    "comparison_table",
    "monthly_returns",
    "monthly_table",
    "param_heatmap",
    "parse_label",
    "rank_runs",
    "run_comparison",
    "sparkline_svg",
    "strategy_label",
    "trade_list",
    "worst_drawdowns",
    "write_report",
]

TABLE_STATS: tuple[str, ...] = (
    "total_return_pct",
    "cagr_pct",
    "volatility_ann_pct",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_pct",
    "n_trades",
    "win_rate_pct",
    "exposure_pct",
    "profit_factor",
    "commissions",
    "turnover",
    "equity_final",
)
"""The :class:`~alphadag.backtest.Stats` fields shown in the comparison table, in order."""

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote, and the tables it was built from."""

    html: Path
    equity_png: Path
    drawdown_png: Path
    monthly_png: Path
    table: pl.DataFrame  # comparison_table, in the order of the results
    analysis: pl.DataFrame  # analysis.analysis_table (run, role, figures), in the results' order
    monthly: pl.DataFrame  # strategy, year, month, return_pct
    best: str  # the best run by the report's ranking metric
    focus: str  # the run the price, equity, trade and monthly sections show


def strategy_label(name: str, params: Mapping[str, Any]) -> str:
    """``sma_cross(fast=10,slow=20)``: a strategy's name with its parameters, for rows and lines.

    >>> strategy_label("buy_and_hold", {}), strategy_label("sma_cross", {"fast": 5, "slow": 9})
    ('buy_and_hold', 'sma_cross(fast=5,slow=9)')
    """
    inner = ",".join(f"{k}={v}" for k, v in params.items())
    return f"{name}({inner})" if inner else name


def run_comparison(
    bars: pl.DataFrame,
    strategies: Mapping[str, Strategy],
    *,
    benchmark_ticker: str | None,
    predictions: pl.DataFrame | None = None,
    **settings: Any,
) -> tuple[dict[str, BacktestResult], BacktestResult | None]:
    """Run each strategy on the traded universe and buy-and-hold on the benchmark ticker.

    The universe is ``bars`` without index tickers (a leading ``^``, e.g. ``^GSPC``): indices
    are benchmarks, not positions. Sizing: ``"weight"`` for :class:`ModelSignal` (its ``1/k``
    weights), ``"all_in"`` for a one-ticker universe, ``"equal_weight"`` otherwise.
    ``settings`` go to :func:`run_backtest` (``cash``, ``commission``, ``slippage_bps``...).
    The benchmark is buy-and-hold of ``benchmark_ticker`` alone with fractional shares (no cash
    drag), or ``None`` when the ticker has no bars; with it, every run also gets
    ``benchmark=`` (its ``date, close``) for the stats' alpha and beta.

    Returns ``({name: result}, benchmark_result)``.
    """
    universe = bars.filter(~pl.col("ticker").str.starts_with("^"))
    if universe.height == 0:
        raise ValueError("bars hold no tradable ticker (only indices starting with '^')")
    single = universe.get_column("ticker").n_unique() == 1
    bench_bars = None
    if benchmark_ticker is not None:
        bench_bars = bars.filter(pl.col("ticker") == benchmark_ticker)
        bench_bars = bench_bars if bench_bars.height else None
    # alpha and beta in the stats regress each equity curve on the benchmark's close returns
    if bench_bars is not None:
        settings = {"benchmark": bench_bars.select("date", "close"), **settings}
    results = {}
    for name, strategy in strategies.items():
        if isinstance(strategy, ModelSignal):
            sizing = "weight"
        else:
            sizing = "all_in" if single else "equal_weight"
        results[name] = run_backtest(
            universe, strategy, predictions=predictions, **{"sizing": sizing, **settings}
        )
    bench = None
    if bench_bars is not None:
        bench = run_backtest(
            bench_bars, BuyAndHold(), **{**settings, "sizing": "all_in", "fractional": True}
        )
    return results, bench


def _daily_returns(equity: pl.DataFrame) -> pl.DataFrame:
    return equity.sort("date").select(
        "date", (pl.col("equity") / pl.col("equity").shift(1) - 1.0).alias("ret")
    )


def _correlation(equity: pl.DataFrame, bench: pl.DataFrame) -> float:
    """Correlation of daily equity returns on the dates both curves have (nan below three)."""
    joined = (
        _daily_returns(equity)
        .join(_daily_returns(bench), on="date", suffix="_b")
        .drop_nulls()
        .filter(pl.col("ret").is_finite() & pl.col("ret_b").is_finite())
    )
    if joined.height < 3:
        return math.nan
    r, b = joined["ret"].to_numpy(), joined["ret_b"].to_numpy()
    if np.std(r) == 0 or np.std(b) == 0:
        return math.nan
    return float(np.corrcoef(r, b)[0, 1])


def comparison_table(
    results: Mapping[str, BacktestResult],
    benchmark: BacktestResult | None = None,
    *,
    benchmark_name: str = "benchmark",
) -> pl.DataFrame:
    """One row per strategy (then the benchmark): ``strategy, role`` and :data:`TABLE_STATS`.

    With a benchmark, also ``excess_return_pct`` (total return minus the benchmark's, in
    percentage points), ``alpha_ann_pct`` and ``beta`` (the stats' ``benchmark_alpha_ann_pct``
    and ``benchmark_beta``: nan unless the run got ``benchmark=``, as :func:`run_comparison`
    does) and the ``correlation`` of daily equity returns with the benchmark's equity returns
    (on the dates both curves have; ``nan`` with fewer than three).

    >>> import datetime as dt
    >>> from alphadag.backtest import run_backtest, strategies
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, d) for d in (2, 3, 4, 5)],
    ...                      "close": [10.0, 11.0, 12.0, 11.0]})
    >>> r = run_backtest(bars, strategies.BuyAndHold(), cash=100.0, commission=0.0)
    >>> comparison_table({"hold": r}, r, benchmark_name="A").select("strategy", "role").rows()
    [('hold', 'strategy'), ('A', 'benchmark')]
    """
    if not results:
        raise ValueError("results is empty: pass at least one {name: BacktestResult}")
    entries = [(name, "strategy", res) for name, res in results.items()]
    if benchmark is not None:
        entries.append((benchmark_name, "benchmark", benchmark))
    rows = []
    for name, role, res in entries:
        stats = res.stats.to_dict()
        row: dict[str, Any] = {"strategy": name, "role": role}
        row.update({k: float(stats[k]) for k in TABLE_STATS})
        if benchmark is not None:
            row["excess_return_pct"] = stats["total_return_pct"] - benchmark.stats.total_return_pct
            row["alpha_ann_pct"] = float(stats.get("benchmark_alpha_ann_pct", math.nan))
            row["beta"] = float(stats.get("benchmark_beta", math.nan))
            row["correlation"] = _correlation(res.equity, benchmark.equity)
        rows.append(row)
    return pl.DataFrame(rows).with_columns(pl.col("n_trades").cast(pl.Int64))


def monthly_returns(equity: pl.DataFrame) -> pl.DataFrame:
    """Calendar-month simple returns (``year, month, return_pct``) of an equity curve.

    A month's return is its last equity over the previous month's last equity, minus one; the
    first month is measured from the curve's first value.

    >>> import datetime as dt
    >>> eq = pl.DataFrame({"date": [dt.date(2024, 1, 2), dt.date(2024, 1, 31),
    ...                             dt.date(2024, 2, 29)], "equity": [100.0, 110.0, 99.0]})
    >>> monthly_returns(eq)["return_pct"].round(6).to_list()
    [10.0, -10.0]
    """
    missing = {"date", "equity"} - set(equity.columns)
    if missing:
        raise ValueError(f"equity lacks column(s) {sorted(missing)}")
    curve = equity.sort("date")
    first = float(curve["equity"][0])
    ends = (
        curve.group_by(
            pl.col("date").dt.year().alias("year"),
            pl.col("date").dt.month().alias("month"),
            maintain_order=True,
        )
        .agg(pl.col("equity").last().alias("end"))
        .sort("year", "month")
    )
    # the previous month's end (shift reads the past); the first month starts at the first value
    start = pl.col("end").shift(1).fill_null(first)
    return ends.select(
        pl.col("year").cast(pl.Int32),
        pl.col("month").cast(pl.Int8),
        ((pl.col("end") / start - 1.0) * 100.0).alias("return_pct"),
    )


def monthly_table(equity: pl.DataFrame) -> pl.DataFrame:
    """:func:`monthly_returns` as a year x month table: ``year, Jan..Dec, year_pct``.

    One row per calendar year of the curve; a month outside the curve is null. ``year_pct`` is the
    year's months compounded (the year's last equity over the previous year's last, or over the
    curve's first value in its first year). Readable over any number of years: 20 years are 20 rows.

    >>> import datetime as dt
    >>> eq = pl.DataFrame({"date": [dt.date(2023, 12, 29), dt.date(2024, 1, 31),
    ...                             dt.date(2024, 2, 29)], "equity": [100.0, 110.0, 99.0]})
    >>> t = monthly_table(eq)
    >>> t.select("year", "Dec", "Jan", "Feb").with_columns(pl.all().round(6)).rows()
    [(2023, 0.0, None, None), (2024, None, 10.0, -10.0)]
    >>> t["year_pct"].round(6).to_list()
    [0.0, -1.0]
    """
    months = monthly_returns(equity)
    wide = (
        months.with_columns(pl.col("month").replace_strict(_MONTH_NAME, return_dtype=pl.String))
        .pivot(on="month", index="year", values="return_pct")
        .sort("year")
    )
    years = months.group_by("year").agg(
        ((((pl.col("return_pct") / 100.0) + 1.0).product() - 1.0) * 100.0).alias("year_pct")
    )
    return (
        wide.with_columns([pl.lit(None, pl.Float64).alias(m) for m in MONTHS if m not in wide])
        .join(years, on="year")
        .select("year", *MONTHS, "year_pct")
        .sort("year")
    )


_MONTH_NAME = {i + 1: m for i, m in enumerate(MONTHS)}
_LABEL = re.compile(r"^(?P<name>[^()]+)\((?P<params>.*)\)$")


def parse_label(label: str) -> tuple[str, dict[str, Any]]:
    """The inverse of :func:`strategy_label`: ``(name, params)``, numbers parsed back.

    >>> parse_label("sma_cross(fast=5,slow=9)"), parse_label("buy_and_hold")
    (('sma_cross', {'fast': 5, 'slow': 9}), ('buy_and_hold', {}))
    """
    match = _LABEL.match(label)
    if match is None:
        return label, {}
    params: dict[str, Any] = {}
    for part in match["params"].split(","):
        key, sep, value = part.partition("=")
        if not sep:
            return label, {}
        params[key.strip()] = _scalar(value.strip())
    return match["name"], params


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


@dataclass(frozen=True)
class Heatmap:
    """A metric over a two-parameter grid: ``z[i, j]`` is the run with ``y = ys[i]``, ``x = xs[j]``
    (``nan`` where the grid has no run, e.g. ``fast >= slow``); ``strategy`` the runs' name and
    ``others`` the parameters that also vary (``z`` is then the best over them)."""

    strategy: str
    x: str
    y: str
    xs: list[Any]
    ys: list[Any]
    z: np.ndarray
    metric: str
    others: tuple[str, ...] = ()


def param_heatmap(
    table: pl.DataFrame, metric: str, *, lower_is_better: bool = False
) -> Heatmap | None:
    """The metric over the two parameters that vary most among one strategy's runs, or ``None``.

    ``table`` has a ``strategy`` column of :func:`strategy_label` labels (e.g. from
    :func:`comparison_table`; rows that are not runs, such as the benchmark, should be dropped).
    The strategy name with the most runs is taken; its parameters that take more than one value
    are the axes (the two with the most distinct values, ties in label order: ``x`` the first);
    with more than two varying, each cell holds the best metric over the rest (max, or min
    with ``lower_is_better``). ``None`` when fewer than two parameters vary.

    >>> t = pl.DataFrame({"strategy": ["s(a=1,b=3)", "s(a=2,b=3)", "s(a=1,b=4)"],
    ...                   "sharpe": [0.5, 0.7, 0.1]})
    >>> h = param_heatmap(t, "sharpe")
    >>> (h.x, h.xs, h.y, h.ys), h.z.tolist()
    (('a', [1, 2], 'b', [3, 4]), [[0.5, 0.7], [0.1, nan]])
    """
    parsed = [parse_label(s) for s in table["strategy"]]
    counts: dict[str, int] = {}
    for name, params in parsed:
        if params:
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return None
    name = max(counts, key=lambda n: counts[n])
    rows = [
        (params, value)
        for (n, params), value in zip(parsed, table[metric].to_list(), strict=True)
        if n == name
    ]
    keys = list(dict.fromkeys(k for params, _ in rows for k in params))
    distinct = {k: list(dict.fromkeys(p.get(k) for p, _ in rows)) for k in keys}
    varying = sorted((k for k in keys if len(distinct[k]) > 1), key=lambda k: -len(distinct[k]))
    if len(varying) < 2:
        return None
    x, y = varying[0], varying[1]
    xs, ys = _ordered(distinct[x]), _ordered(distinct[y])
    z = np.full((len(ys), len(xs)), np.nan)
    better = np.fmin if lower_is_better else np.fmax
    for params, value in rows:
        v = math.nan if value is None else float(value)
        i, j = ys.index(params.get(y)), xs.index(params.get(x))
        z[i, j] = better(z[i, j], v)  # fmax/fmin ignore the nan a cell starts with
    return Heatmap(name, x, y, xs, ys, z, metric, tuple(varying[2:]))


def _ordered(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return values


def worst_drawdowns(equity: pl.DataFrame, n: int = 5) -> pl.DataFrame:
    """The ``n`` deepest drawdown periods: ``peak, trough, recovery, depth_pct, sessions``.

    A period starts at a running peak and ends on the first session the equity is back at or
    above it (``recovery``; null when it never is, and ``sessions`` then counts to the last
    session). ``depth_pct`` is the trough's equity over the peak's, minus one, in percent;
    ``sessions`` the sessions from peak to recovery. Sorted deepest first.

    >>> import datetime as dt
    >>> eq = pl.DataFrame({"date": [dt.date(2024, 1, d) for d in range(1, 7)],
    ...                    "equity": [100.0, 90.0, 100.0, 120.0, 60.0, 90.0]})
    >>> worst_drawdowns(eq).select("peak", pl.col("depth_pct").round(6), "sessions").rows()
    [(datetime.date(2024, 1, 4), -50.0, 2), (datetime.date(2024, 1, 1), -10.0, 2)]
    """
    curve = equity.sort("date")
    dates = curve["date"].to_list()
    values = curve["equity"].to_numpy()
    rows = []
    peak_i = 0
    trough_i = None
    for i in range(1, len(values)):
        if values[i] >= values[peak_i]:
            if trough_i is not None:
                rows.append((peak_i, trough_i, i))
                trough_i = None
            peak_i = i
        elif trough_i is None or values[i] < values[trough_i]:
            trough_i = i
    if trough_i is not None:
        rows.append((peak_i, trough_i, None))
    last = len(values) - 1
    frame = pl.DataFrame(
        {
            "peak": [dates[p] for p, _, _ in rows],
            "trough": [dates[t] for _, t, _ in rows],
            "recovery": [dates[r] if r is not None else None for _, _, r in rows],
            "depth_pct": [(values[t] / values[p] - 1.0) * 100.0 for p, t, _ in rows],
            "sessions": [(r if r is not None else last) - p for p, _, r in rows],
        },
        schema={"peak": pl.Date, "trough": pl.Date, "recovery": pl.Date,
                "depth_pct": pl.Float64, "sessions": pl.Int64},
    )  # fmt: skip
    return frame.sort("depth_pct").head(n)


def trade_list(trades: pl.DataFrame, limit: int = 200) -> tuple[pl.DataFrame, int]:
    """The ``limit`` most recent trades, newest first, with ``days`` held; and the total count.

    >>> import datetime as dt
    >>> t = pl.DataFrame({"ticker": ["A", "B"], "entry_date": [dt.date(2024, 1, 2)] * 2,
    ...                   "exit_date": [dt.date(2024, 1, 5), dt.date(2024, 1, 3)]})
    >>> shown, total = trade_list(t, limit=1)
    >>> shown.select("ticker", "days").rows(), total
    ([('A', 3)], 2)
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    shown = (
        trades.sort(["exit_date", "entry_date", "ticker"], descending=True)
        .head(limit)
        .with_columns((pl.col("exit_date") - pl.col("entry_date")).dt.total_days().alias("days"))
    )
    return shown, trades.height


def rank_runs(
    table: pl.DataFrame, metric: str = "sharpe", *, lower_is_better: bool = False
) -> pl.DataFrame:
    """The strategy rows of ``table`` best first by ``metric`` (nan last), then the other rows.

    >>> t = pl.DataFrame({"strategy": ["a", "b", "c", "bench"], "sharpe": [0.2, float("nan"), 0.9, 1.5],
    ...                   "role": ["strategy"] * 3 + ["benchmark"]})
    >>> rank_runs(t)["strategy"].to_list()
    ['c', 'a', 'b', 'bench']
    """
    if metric not in table.columns:
        raise ValueError(f"cannot rank by {metric!r}: the table has {table.columns}")
    runs = table.filter(pl.col("role") == "strategy") if "role" in table.columns else table
    rest = table.filter(pl.col("role") != "strategy") if "role" in table.columns else table.clear()
    key = pl.col(metric).cast(pl.Float64)
    key = pl.when(key.is_finite()).then(key if lower_is_better else -key).otherwise(None)
    return pl.concat([runs.sort(key, nulls_last=True, maintain_order=True), rest])


# --- static charts (PNG, for MLflow and the Dagster UI) ---------------------------------------


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # no "Software" text chunk: the bytes depend on the data, not on the matplotlib build
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


def _line_chart(curves, focus: str, column: str, path: Path, title: str, ylabel: str,
                rebase: bool) -> Path:  # fmt: skip
    """The focus run and the benchmark in colour, every other run thin and grey behind them."""
    fig = _figure(10, 5)
    ax = fig.add_subplot()
    others = 0
    for name, eq, role in curves:
        eq = eq.sort("date")
        y = eq[column].to_numpy()
        if rebase:
            y = y / y[0] * 100.0
        if name == focus:
            style = {"color": "tab:blue", "linewidth": 1.6, "label": name, "zorder": 3}
        elif role == "benchmark":
            style = {"color": "black", "linestyle": "--", "linewidth": 1.2, "label": name}
        else:
            label = "other runs" if others == 0 else None
            style = {"color": "0.7", "linewidth": 0.7, "label": label, "zorder": 1}
            others += 1
        ax.plot(eq["date"].to_numpy(), y, **style)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, path)


def _monthly_png(table: pl.DataFrame, name: str, path: Path) -> Path:
    grid = table.select(MONTHS).to_numpy().astype(float)
    fig = _figure(11, max(len(table), 1) * 0.32 + 1.2)
    ax = fig.add_subplot()
    lim = _colour_limit(grid)
    image = ax.imshow(grid, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(12), MONTHS, fontsize=8)
    ax.set_yticks(range(len(table)), [str(y) for y in table["year"]], fontsize=8)
    ax.set_title(f"{name}: monthly returns (%)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    fig.tight_layout()
    return _save(fig, path)


def _colour_limit(values: np.ndarray) -> float:
    """The colour scale's half-range: the 95th percentile of |value| (one outlier month does not
    wash out the rest), at least 1 (percent)."""
    finite = np.abs(values[np.isfinite(values)])
    return max(float(np.percentile(finite, 95)) if finite.size else 1.0, 1.0)


# --- the interactive HTML report (plotly, its JS inlined once) --------------------------------

COLUMN_LABELS: dict[str, str] = {
    "strategy": "run",
    "role": "role",
    "total_return_pct": "return %",
    "cagr_pct": "CAGR %",
    "volatility_ann_pct": "vol (ann.) %",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "calmar": "Calmar",
    "max_drawdown_pct": "max DD %",
    "n_trades": "trades",
    "win_rate_pct": "win %",
    "exposure_pct": "exposure %",
    "profit_factor": "profit factor",
    "commissions": "commissions",
    "turnover": "turnover",
    "equity_final": "final equity",
    "excess_return_pct": "excess return pp",
    "alpha_ann_pct": "alpha (ann.) %",
    "beta": "beta",
    "correlation": "corr.",
}
"""Headers of the HTML analysis table (a column without an entry shows its own name)."""

HEATMAP_METRICS = ("sharpe", "total_return_pct", "cagr_pct", "max_drawdown_pct", "calmar")
LOWER_IS_BETTER = frozenset({"volatility_ann_pct", "turnover", "commissions"})
PRICE_TICKERS = 5  # tickers in the price chart's select box (most traded first)
TRADES_SHOWN = 200
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "scrollZoom": False}


def _fmt(value: Any, column: str = "") -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "&ndash;"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.2f}" if column.endswith("_pct") or abs(value) >= 1 else f"{value:.3f}"
    return html.escape(str(value))


def _analysis_html(table: pl.DataFrame, best: str | None, metric: str) -> str:
    cols = [c for c in table.columns if c != "role"]
    from alphadag.backtest.analysis import ANALYSIS_COLUMNS

    units = {c.name: f"{c.label} [{c.unit}]" for c in ANALYSIS_COLUMNS}
    head = "".join(
        f'<th title="{html.escape(units.get(c, c))}"{" class=sorted" if c == metric else ""}>'
        f"{html.escape(COLUMN_LABELS.get(c) or units.get(c, c).split(' [')[0])}</th>"
        for c in cols
    )
    body = []
    for row in table.iter_rows(named=True):
        name = row["strategy"]
        cls = "best" if name == best else ("bench" if row.get("role") == "benchmark" else "")
        mark = '<span class="star" title="best run">&#9733;</span> ' if name == best else ""
        cells = [f"<td>{mark}{html.escape(str(name))}</td>"]
        cells += [f"<td>{_fmt(row[c], c)}</td>" for c in cols[1:]]
        body.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table id="analysis"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _colour(value: float | None, lim: float) -> str:
    """A diverging background: red below zero, green above, white at zero, full at +-lim."""
    if value is None or not math.isfinite(value):
        return ""
    t = min(abs(value) / lim, 1.0)
    r, g, b = (220, 60, 50) if value < 0 else (40, 160, 70)
    mix = [round(255 + (c - 255) * t * 0.85) for c in (r, g, b)]
    return f' style="background:rgb({mix[0]},{mix[1]},{mix[2]})"'


def _monthly_html(table: pl.DataFrame) -> str:
    lim = _colour_limit(table.select(MONTHS).to_numpy().astype(float))
    year_lim = _colour_limit(table["year_pct"].to_numpy().astype(float))
    head = "<th>year</th>" + "".join(f"<th>{m}</th>" for m in MONTHS) + "<th>year</th>"
    rows = []
    for row in table.iter_rows(named=True):
        cells = "".join(f"<td{_colour(row[m], lim)}>{_fmt(row[m], '_pct')}</td>" for m in MONTHS)
        total = row["year_pct"]
        rows.append(
            f"<tr><td>{row['year']}</td>{cells}"
            f"<td class=total{_colour(total, year_lim)}>{_fmt(total, '_pct')}</td></tr>"
        )
    return (
        f'<div class="scroll"><table id="monthly"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


_TRADE_COLUMNS = ("ticker", "entry_date", "exit_date", "days", "size", "entry_price",
                  "exit_price", "pnl", "return_pct", "commission", "exit_reason")  # fmt: skip


def _trades_html(shown: pl.DataFrame, total: int) -> str:
    cols = [c for c in _TRADE_COLUMNS if c in shown.columns]
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(row[c], c)}</td>" for c in cols) + "</tr>"
        for row in shown.iter_rows(named=True)
    )
    note = (
        f"the {shown.height} most recent of {total} trades (all of them in trades.csv)"
        if shown.height < total
        else f"all {total} trades, newest first"
    )
    return (
        f'<p class="note" id="trades-note">{note}</p><div class="scroll box">'
        f'<table id="trades"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def _div(fig, div_id: str) -> str:
    return fig.to_html(
        full_html=False, include_plotlyjs=False, config=_PLOTLY_CONFIG, div_id=div_id
    )


def _price_figure(trades: pl.DataFrame, bars: pl.DataFrame | None, name: str):
    """Close of the most traded tickers with the run's entries and exits; a select box picks the
    ticker (the most traded first). Without bars, only the trade markers."""
    import plotly.graph_objects as go

    counts = trades.group_by("ticker").len().sort(["len", "ticker"], descending=[True, False])
    tickers = counts["ticker"].head(PRICE_TICKERS).to_list()
    fig = go.Figure()
    groups = []
    for k, ticker in enumerate(tickers):
        visible = k == 0
        first = len(fig.data)
        own = trades.filter(pl.col("ticker") == ticker)
        if bars is not None:
            px = bars.filter(pl.col("ticker") == ticker).sort("date")
            fig.add_trace(go.Scatter(x=px["date"].to_numpy(), y=px["close"].to_numpy(),
                                     name=f"{ticker} close", mode="lines", visible=visible,
                                     line={"color": "#444", "width": 1.2}))  # fmt: skip
        for side, (col, price, symbol, colour) in {
            "entry": ("entry_date", "entry_price", "triangle-up", "#1a9850"),
            "exit": ("exit_date", "exit_price", "triangle-down", "#d73027"),
        }.items():
            text = [
                f"{side} {ticker}<br>size {size:g}<br>trade return {ret:.2f}%<br>P&L {pnl:,.0f}"
                for size, ret, pnl in own.select("size", "return_pct", "pnl").iter_rows()
            ]
            fig.add_trace(go.Scatter(
                x=own[col].to_numpy(), y=own[price].to_numpy(), mode="markers", name=side,
                visible=visible, marker={"symbol": symbol, "size": 9, "color": colour,
                                         "line": {"width": 0.5, "color": "#222"}},
                text=text, hoverinfo="text+x", meta=f"trades:{side}",
            ))  # fmt: skip
        groups.append((ticker, range(first, len(fig.data))))
    buttons = [
        {"label": f"{t} ({n} trades)", "method": "update",
         "args": [{"visible": [i in idx for i in range(len(fig.data))]},
                  {"title.text": f"{t}: price and trades of {name}"}]}
        for (t, idx), n in zip(groups, counts["len"].head(PRICE_TICKERS), strict=True)
    ]  # fmt: skip
    title = f"{tickers[0]}: price and trades of {name}" if tickers else "no trades"
    fig.update_layout(
        title={"text": title}, height=430, margin={"t": 60, "b": 30, "l": 60, "r": 20},
        hovermode="closest", legend={"orientation": "h", "y": -0.12},
        updatemenus=[{"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.18,
                      "yanchor": "top"}] if len(buttons) > 1 else [],
    )  # fmt: skip
    return fig


def _equity_figure(curves, focus: str, drawdowns: pl.DataFrame):
    """Equity of the focus run with its running peak, the benchmark rebased to the same start,
    the other runs one legend click away; below, the drawdowns; the worst periods shaded."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32],
                        vertical_spacing=0.04)  # fmt: skip
    start = next(float(eq.sort("date")["equity"][0]) for n, eq, _ in curves if n == focus)
    for name, eq, role in curves:
        eq = eq.sort("date")
        x = eq["date"].to_numpy()
        y = eq["equity"].to_numpy() / float(eq["equity"][0]) * start
        dd = (y / np.maximum.accumulate(y) - 1.0) * 100.0
        if name == focus:
            fig.add_trace(go.Scatter(x=x, y=y, name=name, line={"color": "#1f77b4", "width": 1.8}),
                          row=1, col=1)  # fmt: skip
            fig.add_trace(go.Scatter(x=x, y=np.maximum.accumulate(y), name="peak",
                                     line={"color": "#1f77b4", "width": 0.8, "dash": "dot"}),
                          row=1, col=1)  # fmt: skip
            fig.add_trace(go.Scatter(x=x, y=dd, name=f"drawdown {name}", fill="tozeroy",
                                     line={"color": "#d62728", "width": 0.8}, showlegend=False),
                          row=2, col=1)  # fmt: skip
        elif role == "benchmark":
            fig.add_trace(go.Scatter(x=x, y=y, name=f"{name} (benchmark)",
                                     line={"color": "black", "width": 1.2, "dash": "dash"}),
                          row=1, col=1)  # fmt: skip
            fig.add_trace(go.Scatter(x=x, y=dd, name=f"drawdown {name}", showlegend=False,
                                     line={"color": "black", "width": 0.8, "dash": "dash"}),
                          row=2, col=1)  # fmt: skip
        else:
            fig.add_trace(go.Scatter(x=x, y=y, name=name, visible="legendonly",
                                     line={"width": 1.0}), row=1, col=1)  # fmt: skip
    last = max(eq["date"].max() for _, eq, _ in curves)
    for dd in drawdowns.head(3).iter_rows(named=True):
        label = f"{dd['depth_pct']:.1f}%, {dd['sessions']} sessions"
        fig.add_vrect(x0=dd["peak"], x1=dd["recovery"] or last, fillcolor="#d62728", opacity=0.08,
                      line_width=0, annotation_text=label, annotation_position="top left",
                      annotation_font_size=10, row=1, col=1)  # fmt: skip
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    fig.update_xaxes(row=1, col=1, rangeselector={"buttons": [
        {"count": 1, "label": "1y", "step": "year", "stepmode": "backward"},
        {"count": 5, "label": "5y", "step": "year", "stepmode": "backward"},
        {"step": "all", "label": "all"}]})  # fmt: skip
    fig.update_layout(
        title={"text": f"Equity of {focus} vs the benchmark (worst drawdowns shaded)"},
        height=560, margin={"t": 70, "b": 30, "l": 60, "r": 20}, hovermode="x unified",
        legend={"orientation": "h", "y": -0.08},
    )  # fmt: skip
    return fig


def _heatmap_figure(table: pl.DataFrame, heat: Heatmap):
    import plotly.graph_objects as go

    metrics = [m for m in HEATMAP_METRICS if m in table.columns]
    maps = {m: param_heatmap(table, m, lower_is_better=m in LOWER_IS_BETTER) for m in metrics}

    def z(h: Heatmap) -> list[list[float | None]]:
        return [[None if not np.isfinite(v) else float(v) for v in row] for row in h.z]

    fig = go.Figure(go.Heatmap(
        z=z(heat), x=[str(v) for v in heat.xs], y=[str(v) for v in heat.ys],
        colorscale="RdYlGn", texttemplate="%{z:.2f}", hoverongaps=False,
        colorbar={"title": {"text": COLUMN_LABELS.get(heat.metric, heat.metric)}},
    ))  # fmt: skip
    buttons = [
        {"label": COLUMN_LABELS.get(m, m), "method": "restyle",
         "args": [{"z": [z(h)], "colorbar.title.text": COLUMN_LABELS.get(m, m)}]}
        for m, h in maps.items() if h is not None
    ]  # fmt: skip
    over = f" (best over {', '.join(heat.others)})" if heat.others else ""
    fig.update_layout(
        title={"text": f"{heat.strategy}: metric over {heat.x} x {heat.y}{over}"},
        xaxis={"title": {"text": heat.x}, "type": "category"},
        yaxis={"title": {"text": heat.y}, "type": "category"},
        height=max(320, 60 * len(heat.ys) + 140), margin={"t": 70, "b": 50, "l": 70, "r": 20},
        updatemenus=[{"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.2,
                      "yanchor": "top"}],
    )  # fmt: skip
    return fig


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; color: #222;
       padding: 0 1.5em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin: 1.4em 0 0.4em; }
ul.meta { display: flex; flex-wrap: wrap; gap: 0.3em 1.5em; list-style: none; padding: 0;
          font-size: 0.85em; color: #555; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.5em; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
th.sorted { background: #e3ecf7; }
tr.best td { background: #fff6d5; font-weight: 600; }
tr.bench td { color: #555; font-style: italic; }
.star { color: #d4a000; }
.scroll { overflow-x: auto; }
#analysis td:first-child, #analysis th:first-child { position: sticky; left: 0; background: #fff;
                                                     z-index: 1; }
#analysis tr.best td:first-child { background: #fff6d5; }
.box { max-height: 360px; overflow-y: auto; border: 1px solid #eee; }
.note { font-size: 0.85em; color: #555; margin: 0.2em 0; }
td.total { font-weight: 600; }
"""


def write_report(
    results: Mapping[str, BacktestResult],
    out_dir: str | Path,
    *,
    benchmark: BacktestResult | None = None,
    benchmark_name: str = "benchmark",
    bars: pl.DataFrame | None = None,
    rank_by: str = "sharpe",
    focus: str | None = None,
    title: str = "Backtest report",
    meta: Mapping[str, Any] | None = None,
) -> ReportFiles:
    """Write ``report.html`` (interactive, offline), ``trades.csv`` and three PNG charts.

    Parameters:
        results: ``{label: BacktestResult}``; labels as :func:`strategy_label` makes them (a
            grid of one strategy over two parameters gets a parameter heatmap).
        out_dir: directory for the files (created).
        benchmark: a result to compare against (e.g. buy-and-hold on ``^GSPC``), drawn dashed.
        benchmark_name: its label.
        bars: the bars the runs traded (``ticker, date, close``) for the price chart with the
            trades; without them the chart shows the trade markers only.
        rank_by: the :class:`~alphadag.backtest.Stats` field that sorts the analysis table and
            picks the best run (higher is better; lower for volatility, turnover, commissions).
        focus: the run the equity, price, trade and monthly sections show (default: the best).
        title / meta: the report's heading and a ``{key: value}`` list shown under it (period,
            costs, run id...); values are HTML-escaped.

    The HTML holds plotly.js once, inline, and every figure's data: it makes no network request.
    The PNGs (``equity.png``, ``drawdown.png``: the focus run and the benchmark in colour, the
    other runs grey; ``monthly_returns.png``: the focus run's year x month table) are for viewers
    that show images only (MLflow, the Dagster UI).
    """
    import plotly.offline

    if not results:
        raise ValueError("results is empty: pass at least one {name: BacktestResult}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from alphadag.backtest.analysis import analysis_table

    table = comparison_table(results, benchmark, benchmark_name=benchmark_name)
    analysis = analysis_table(results, benchmark, benchmark_name=benchmark_name)
    shown = rank_runs(analysis.rename({"run": "strategy"}), rank_by,
                      lower_is_better=rank_by in LOWER_IS_BETTER)  # fmt: skip
    best = shown["strategy"][0]
    focus = best if focus is None else focus
    if focus not in results:
        raise ValueError(f"focus {focus!r} is not a run; runs: {list(results)}")
    run = results[focus]
    curves = [(name, res.equity, "strategy") for name, res in results.items()]
    if benchmark is not None:
        curves.append((benchmark_name, benchmark.equity, "benchmark"))
    monthly = pl.concat(
        [
            monthly_returns(eq).select(pl.lit(name).alias("strategy"), pl.all())
            for name, eq, _ in curves
        ]
    )
    months = monthly_table(run.equity)
    equity_png = _line_chart(curves, focus, "equity", out / "equity.png",
                             "Equity (rebased to 100)", "equity", True)  # fmt: skip
    drawdown_png = _line_chart(curves, focus, "drawdown_pct", out / "drawdown.png",
                               "Drawdown", "drawdown (%)", False)  # fmt: skip
    monthly_png = _monthly_png(months, focus, out / "monthly_returns.png")
    run.trades.write_csv(out / "trades.csv")

    runs_only = table.filter(pl.col("role") == "strategy")
    metric = rank_by if rank_by in runs_only.columns else "sharpe"
    heat = param_heatmap(runs_only, metric, lower_is_better=metric in LOWER_IS_BETTER)
    sections = [
        ("Runs", f'<p class="note">{len(results)} run(s) sorted by '
                 f"{html.escape(COLUMN_LABELS.get(rank_by, rank_by))}, best first "
                 f'(&#9733;: <b id="best">{html.escape(best)}</b>)</p>'
                 + _analysis_html(shown, best, rank_by)),
        ("Equity and drawdown", _div(_equity_figure(curves, focus, worst_drawdowns(run.equity)),
                                     "equity-chart")),
    ]  # fmt: skip
    if heat is not None:
        sections.append(("Parameter heatmap", _div(_heatmap_figure(runs_only, heat), "heatmap")))
    sections += [
        ("Price and trades", _div(_price_figure(run.trades, bars, focus), "price-chart")),
        (f"Trades of {focus}", _trades_html(*trade_list(run.trades, TRADES_SHOWN))),
        (f"Monthly returns of {focus} (%)", _monthly_html(months)),
    ]
    first = min(eq["date"].min() for _, eq, _ in curves)
    last = max(eq["date"].max() for _, eq, _ in curves)
    info = {"period": f"{first}..{last}", "focus": focus, **(meta or {})}
    info_html = "".join(
        f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in info.items()
    )
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{content}" for h, content in sections)
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
<ul class="meta">{info_html}</ul>
{body}
<p class="note">Generated {dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")} by alphadag.</p>
</body></html>
"""
    html_path = out / "report.html"
    html_path.write_text(doc, encoding="utf-8")
    return ReportFiles(
        html=html_path,
        equity_png=equity_png,
        drawdown_png=drawdown_png,
        monthly_png=monthly_png,
        table=table,
        analysis=analysis,
        monthly=monthly,
        best=best,
        focus=focus,
    )


def sparkline_svg(
    lines: Sequence[tuple[np.ndarray, str]],
    *,
    width: int = 320,
    height: int = 70,
    max_chars: int = 800,
    fill: bool = False,
) -> str:
    """Curves as a tiny SVG ``data:`` URI of at most ``max_chars`` characters (fewer points until
    it fits), for viewers that render a short markdown image inline (Dagster's asset page shows
    markdown under 1,000 characters in place and hides longer ones behind "Show Markdown").

    ``lines`` are ``(values, style)`` pairs on one shared y scale; ``style`` is ``"solid"``,
    ``"dashed"`` or ``"area"`` (filled down to the top edge: a drawdown). Colours are named (no
    ``#``), coordinates integers, the path relative (``l`` steps), the markup percent-encoded
    where a markdown destination or a data URI needs it (spaces, ``<``, ``>``, ``%``).

    >>> uri = sparkline_svg([(np.array([1.0, 2.0, 1.5]), "solid")], width=20, height=10)
    >>> uri.startswith("data:image/svg+xml,%3Csvg"), " " in uri, len(uri) <= 800
    (True, False, True)
    """
    if not lines:
        raise ValueError("sparkline_svg needs at least one (values, style) line")
    finite = np.concatenate([v[np.isfinite(v)] for v, _ in lines])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = hi - lo or 1.0
    n = max(len(v) for v, _ in lines)
    points = min(n, width // 2)
    while True:
        uri = _svg_uri(lines, width, height, lo, span, points)
        if len(uri) <= max_chars or points <= 8:
            return uri
        points = int(points * 0.85)


_STYLE = {
    "solid": "stroke='steelblue' stroke-width='1.5' fill='none'",
    "dashed": "stroke='black' stroke-width='1' stroke-dasharray='3' fill='none'",
    "area": "stroke='firebrick' stroke-width='1' fill='lightpink'",
}


def _svg_uri(lines, width: int, height: int, lo: float, span: float, points: int) -> str:
    paths = []
    for values, style in lines:
        idx = np.linspace(0, len(values) - 1, min(points, len(values))).round().astype(int)
        v = np.nan_to_num(values[idx], nan=lo)
        xs = np.round(idx / max(len(values) - 1, 1) * width).astype(int)
        ys = np.round((1.0 - (v - lo) / span) * (height - 2) + 1).astype(int)
        steps = ",".join(f"{dx},{dy}" for dx, dy in zip(np.diff(xs), np.diff(ys), strict=True))
        if style == "area":
            d = f"M{xs[0]},0L{xs[0]},{ys[0]}l{steps}L{xs[-1]},0Z"
        else:
            d = f"M{xs[0]},{ys[0]}l{steps}" if steps else f"M{xs[0]},{ys[0]}"
        paths.append(f"<path d='{d}' {_STYLE[style]}/>")
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0,0,{width},{height}'>{''.join(paths)}</svg>"
    )
    encoded = svg.replace("%", "%25").replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")
    return "data:image/svg+xml," + encoded
