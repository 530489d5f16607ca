"""Backtest reports: a comparison table, equity / drawdown / monthly-returns charts and one HTML file.

Input is ``{strategy_name: BacktestResult}`` (from :func:`alphadag.backtest.run_backtest`) and an
optional benchmark result (buy-and-hold on the benchmark ticker). :func:`comparison_table` gives one
row per strategy plus the benchmark, with the headline stats, the excess return over the benchmark
and the beta and correlation of daily equity returns against it. :func:`monthly_returns` gives the
calendar-month simple returns of an equity curve (month-end equity over the previous month-end, the
first month over the first equity value). :func:`write_report` writes the PNG charts (matplotlib's
Agg canvas, no pyplot state, no display) and a self-contained HTML report with every image
base64-embedded and no external URL, so it opens offline and can be attached to an MLflow run.
Pure: no dagster, no mlflow.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from alphadag.backtest.engine import BacktestResult, run_backtest
from alphadag.backtest.strategies import BuyAndHold, ModelSignal, Strategy

__all__ = [
    "TABLE_STATS",
    "ReportFiles",
    "comparison_table",
    "monthly_returns",
    "run_comparison",
    "strategy_label",
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
    table: pl.DataFrame
    monthly: pl.DataFrame  # strategy, year, month, return_pct


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


def _curves(results: Mapping[str, BacktestResult], benchmark, benchmark_name):
    curves = [(name, res.equity, {}) for name, res in results.items()]
    if benchmark is not None:
        curves.append((benchmark_name, benchmark.equity, {"color": "black", "linestyle": "--"}))
    return curves


def _line_chart(curves, column: str, path: Path, title: str, ylabel: str, rebase: bool) -> Path:
    fig = _figure(10, 5)
    ax = fig.add_subplot()
    for name, eq, style in curves:
        eq = eq.sort("date")
        y = eq[column].to_numpy()
        if rebase:
            y = y / y[0] * 100.0
        ax.plot(eq["date"].to_numpy(), y, label=name, linewidth=1.2, **style)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, path)


def _heatmap(monthly: pl.DataFrame, names: list[str], path: Path) -> Path:
    years_per = {n: sorted(set(monthly.filter(pl.col("strategy") == n)["year"])) for n in names}
    heights = [max(len(y), 1) * 0.45 + 0.9 for y in years_per.values()]
    fig = _figure(11, sum(heights) + 0.3)
    values = monthly["return_pct"].drop_nans().drop_nulls().abs()
    lim = max(float(values.max()) if values.len() else 1.0, 1e-9)
    axes = fig.subplots(len(names), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, name in zip(axes[:, 0], names, strict=True):
        years = years_per[name]
        grid = np.full((len(years), 12), np.nan)
        for year, month, ret in (
            monthly.filter(pl.col("strategy") == name)
            .select("year", "month", "return_pct")
            .iter_rows()
        ):
            grid[years.index(year), month - 1] = ret
        image = ax.imshow(grid, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(12), MONTHS, fontsize=8)
        ax.set_yticks(range(len(years)), [str(y) for y in years], fontsize=8)
        ax.set_title(f"{name}: monthly returns (%)", fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    fig.tight_layout()
    return _save(fig, path)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "&ndash;"
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.4g}"
    return html.escape(str(value))


def _html_table(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in frame.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""


def write_report(
    results: Mapping[str, BacktestResult],
    out_dir: str | Path,
    *,
    benchmark: BacktestResult | None = None,
    benchmark_name: str = "benchmark",
    title: str = "Backtest report",
    meta: Mapping[str, Any] | None = None,
) -> ReportFiles:
    """Write ``equity.png``, ``drawdown.png``, ``monthly_returns.png`` and ``report.html``.

    Parameters:
        results: ``{strategy_name: BacktestResult}``; names label the rows and the lines.
        out_dir: directory for the files (created).
        benchmark: a result to compare against (e.g. buy-and-hold on ``^GSPC``), drawn dashed.
        benchmark_name: its label.
        title / meta: the report's heading and a ``{key: value}`` list shown under it (period,
            costs, run id...); values are HTML-escaped.

    The HTML embeds the images as ``data:`` URIs and links nothing outside itself.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = comparison_table(results, benchmark, benchmark_name=benchmark_name)
    curves = _curves(results, benchmark, benchmark_name)
    monthly = pl.concat(
        [
            monthly_returns(eq).select(pl.lit(name).alias("strategy"), pl.all())
            for name, eq, _ in curves
        ]
    )
    names = [name for name, _, _ in curves]
    equity_png = _line_chart(
        curves, "equity", out / "equity.png", "Equity (rebased to 100)", "equity", True
    )
    drawdown_png = _line_chart(
        curves, "drawdown_pct", out / "drawdown.png", "Drawdown", "drawdown (%)", False
    )
    monthly_png = _heatmap(monthly, names, out / "monthly_returns.png")
    present = sorted(set(monthly["month"].to_list()))
    wide = (
        monthly.pivot(on="month", index=["strategy", "year"], values="return_pct")
        .select("strategy", "year", *[str(m) for m in present])
        .rename({str(m): MONTHS[m - 1] for m in present})
    )
    first = min(eq["date"].min() for _, eq, _ in curves)
    last = max(eq["date"].max() for _, eq, _ in curves)
    info = {"period": f"{first}..{last}", **(meta or {})}
    info_html = "".join(
        f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in info.items()
    )
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<ul>{info_html}</ul>
<h2>Comparison</h2>
{_html_table(table)}
<h2>Equity</h2>
{_img(equity_png, "equity")}
<h2>Drawdown</h2>
{_img(drawdown_png, "drawdown")}
<h2>Monthly returns</h2>
{_img(monthly_png, "monthly returns")}
{_html_table(wide)}
<p>Generated {dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")} by alphadag.</p>
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
        monthly=monthly,
    )
