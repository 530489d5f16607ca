"""``run_backtest``: a strategy's signals simulated on bars with shared cash and costs.

Conventions (backtesting.py's, see :func:`run_backtest`): the decision made on bar ``t``'s close
fills at bar ``t+1``'s open (its close when the open is null); commission on both sides;
all-in sizing buys the largest whole number of shares whose cost plus commission fits in cash;
long-only unless ``allow_short``; open trades are closed at the last bar's close. Costs, sizing
and risk controls (stops, weight and leverage caps, a drawdown circuit breaker, volatility-target
sizing) are the fields of :class:`BacktestSettings`, given as keywords or as ``settings=``, and
checked once. :func:`run_grid` runs a whole parameter grid of one strategy in one batch,
skipping the combinations the strategy rejects or a constraint excludes, best first.

Speed: bars are laid out on a ``(sessions, tickers)`` grid from their sorted ``(ticker, date)``
runs (a reshape when every ticker has every session), the built-in strategies compute their
signals on that grid in numpy/numba (``signal_grid``, bit-identical to their polars
``signals``), and one numba loop simulates; ``bench/backtest.py`` measures it against
backtesting.py and vectorbt.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from alphadag.backtest import _sim
from alphadag.backtest.settings import FIELDS, BacktestSettings
from alphadag.backtest.stats import ANNUAL_SESSIONS, Stats, compute_stats, gross_equity_curve
from alphadag.backtest.strategies import Strategy

__all__ = [
    "BacktestResult",
    "BacktestSettings",
    "GridPlan",
    "GridResult",
    "parse_constraint",
    "plan_grid",
    "rank_order",
    "run_backtest",
    "run_grid",
]

_EXIT_REASONS = np.array(_sim.EXIT_REASONS, dtype=object)


@dataclass(frozen=True)
class BacktestResult:
    """``stats`` (:class:`Stats`), ``equity`` (date, equity, cash, drawdown_pct) and
    ``trades`` (ticker, entry_date, exit_date, size, entry_price, exit_price, pnl, return_pct,
    commission, exit_reason)."""

    stats: Stats
    equity: pl.DataFrame
    trades: pl.DataFrame


class _Layout:
    """``bars`` sorted by ``(ticker, date)`` and the ``(sessions, tickers)`` grid they fill.

    Sessions are the sorted distinct dates of all tickers, tickers sorted by name. ``dense``:
    every ticker has a bar on every session (then row ``r`` of the sorted bars is ticker
    ``r // n``, session ``r % n``, and a grid is a reshape). Raises on duplicate rows.
    """

    def __init__(self, bars: pl.DataFrame) -> None:
        if not bars["ticker"].is_sorted():
            bars = bars.sort("ticker", "date")
        runs, lens, d = self._runs(bars)
        if not self._increasing(d, lens):
            bars = bars.sort("ticker", "date")
            runs, lens, d = self._runs(bars)
            if not self._increasing(d, lens):
                raise ValueError("bars has duplicate (ticker, date) rows")
        self.bars = bars
        self.m = lens.size
        self.tickers = runs.struct.field("value").alias("ticker")
        self.ticker_names = self.tickers.to_numpy().astype(object)
        first = int(lens[0])
        self.dense = bool((lens == first).all()) and bool(
            (d.reshape(self.m, first) == d[:first]).all()
        )
        if self.dense:
            self.n = first
            self.dates = bars["date"].slice(0, first)
            self._di = self._ti = None
        else:
            self.dates = bars["date"].unique().sort()
            sessions = self.dates.to_physical().to_numpy().astype(np.int64)
            self.n = sessions.size
            self._di = np.searchsorted(sessions, d)
            self._ti = np.repeat(np.arange(self.m), lens)

    @staticmethod
    def _runs(bars: pl.DataFrame) -> tuple[pl.Series, np.ndarray, np.ndarray]:
        runs = bars["ticker"].rle()
        lens = runs.struct.field("len").to_numpy().astype(np.int64)
        return runs, lens, bars["date"].to_physical().to_numpy().astype(np.int64)

    @staticmethod
    def _increasing(d: np.ndarray, lens: np.ndarray) -> bool:
        """Dates strictly increase within every ticker run (sorted, no duplicates)."""
        step = np.diff(d) > 0
        step[np.cumsum(lens)[:-1] - 1] = True  # a new ticker may start on any date
        return bool(step.all())

    def grid(self, values: pl.Series | np.ndarray) -> np.ndarray:
        """A column of the sorted bars as a C-contiguous ``(n, m)`` float grid (NaN: no bar)."""
        if isinstance(values, pl.Series):
            values = values.cast(pl.Float64).to_numpy()
        values = np.asarray(values, dtype=np.float64)
        if self.dense:
            return np.ascontiguousarray(values.reshape(self.m, self.n).T)
        out = np.full((self.n, self.m), np.nan)
        out[self._di, self._ti] = values
        return out

    def column(self, name: str) -> np.ndarray:
        """A price column of the bars as a grid (all NaN when absent)."""
        if name not in self.bars.columns:
            return np.full((self.n, self.m), np.nan)
        return self.grid(self.bars[name])

    def from_signals(self, frame: pl.DataFrame) -> np.ndarray:
        """A strategy's ``date, ticker, signal`` frame on the grid (NaN where null/absent)."""
        bars = self.bars
        same = (
            frame.height == bars.height
            and frame["ticker"].equals(bars["ticker"])
            and frame["date"].equals(bars["date"])
        )
        if same:
            return self.grid(frame["signal"])
        joined = bars.select("ticker", "date").join(
            frame.select("ticker", "date", "signal"),
            on=["ticker", "date"],
            how="left",
            maintain_order="left",
        )
        if joined.height != bars.height:
            raise ValueError(f"{type(frame).__name__} signals have duplicate (date, ticker) rows")
        return self.grid(joined["signal"])


def _benchmark_returns(benchmark: pl.DataFrame, dates: pl.Series) -> np.ndarray:
    """The benchmark's simple return between consecutive backtest sessions (NaN where either
    close is missing)."""
    if not isinstance(benchmark, pl.DataFrame) or not {"date", "close"} <= set(benchmark.columns):
        raise ValueError("benchmark must be a polars DataFrame with columns date, close")
    if benchmark["date"].is_duplicated().any():
        raise ValueError("benchmark has duplicate dates")
    aligned = (
        dates.to_frame("date")
        .with_row_index("_di")
        .join(
            benchmark.select(pl.col("date").cast(dates.dtype), pl.col("close").cast(pl.Float64)),
            on="date",
            how="left",
        )
        .sort("_di")
    )
    c = aligned["close"].to_numpy().astype(np.float64)
    return c[1:] / c[:-1] - 1.0


def _check_bars(bars: pl.DataFrame) -> None:
    if not isinstance(bars, pl.DataFrame):
        raise TypeError(f"bars must be a polars DataFrame, got {type(bars).__name__}")
    missing = {"ticker", "date", "close"} - set(bars.columns)
    if missing:
        raise ValueError(f"bars lack column(s) {sorted(missing)}")
    if bars.height == 0:
        raise ValueError("bars is empty")


def _sim_params(s: BacktestSettings) -> _sim.SimParams:
    """The settings encoded for the simulator (NaN/inf/-1 mean off)."""
    nan = math.nan
    return _sim.SimParams(
        cash0=float(s.cash),
        rate=float(s.commission),
        fixed=float(s.commission_fixed),
        minimum=float(s.commission_min),
        slip=float(s.slippage_bps) / 1e4,
        fractional=bool(s.fractional),
        sizing=_sim.SIZING_CODES[s.sizing],
        stop_loss=nan if s.stop_loss is None else float(s.stop_loss),
        take_profit=nan if s.take_profit is None else float(s.take_profit),
        max_weight=math.inf if s.max_weight is None else float(s.max_weight),
        leverage=float(s.max_gross_leverage),
        dd_limit=nan if s.drawdown_limit is None else float(s.drawdown_limit),
        cooldown=-1 if s.cooldown is None else int(s.cooldown),
        target_vol=float(s.target_vol),
    )


def run_backtest(
    bars: pl.DataFrame,
    strategy: Strategy,
    *,
    settings: BacktestSettings | None = None,
    predictions: pl.DataFrame | None = None,
    benchmark: pl.DataFrame | None = None,
    **knobs: Any,
) -> BacktestResult:
    """Simulate ``strategy`` on ``bars`` (``ticker, date, close``; optionally ``open``,
    ``high``, ``low``).

    The knobs are the fields of :class:`BacktestSettings`, given as keywords (``cash`` and
    ``commission`` required, e.g. ``cash=1e6, commission=0.002, fractional=False``) or as
    ``settings=BacktestSettings(...)``, whose fields the keywords then override; an unknown
    keyword raises ``TypeError``, an invalid value ``ValueError`` naming the field.
    ``predictions`` go to the strategy's ``signals`` (:class:`ModelSignal`).

    - A signal decided on bar ``t``'s close fills at bar ``t+1``'s open (its close when the
      open is null); a ticker without a bar waits for its next one.
    - ``commission`` (a rate of the traded value) plus ``commission_fixed`` per order, at least
      ``commission_min``, charged on entry and on exit; ``slippage_bps`` moves every fill
      against the trade.
    - ``sizing``: ``"all_in"`` spends all available cash (times the signal's weight) on the
      largest whole number of shares whose cost plus commission fits (``fractional=True``:
      exactly); ``"equal_weight"`` gives each entry ``1/n_tickers`` of the previous close's
      equity; ``"weight"`` gives it ``|signal|`` of that equity (for :class:`ModelSignal`);
      ``"vol_target"`` gives it ``|signal| * min(target_vol / vol, max_weight)`` of that equity,
      ``vol`` the ticker's annualised (x sqrt 252) sample standard deviation of its last
      ``vol_window`` daily log close returns up to the decision's close (no entry while
      unknown). Cash is shared across tickers: exits fill before entries, entries in ticker
      order. Sizes are fixed at entry (no rebalancing while a position is held).
    - ``max_weight``: no entry costs more than this fraction of the previous close's equity.
      ``max_gross_leverage`` (default 1: no borrowing): entries stop where the gross exposure
      (sum of ``|position value|``) would exceed this multiple of equity; above 1 cash may go
      negative (a margin loan, free of interest).
    - ``stop_loss`` / ``take_profit``: fractions of the entry price (e.g. ``0.05``). From the bar
      after the entry fill on, each bar's ``low``/``high`` (where null: its open and close) is
      checked against ``entry * (1 -/+ stop_loss)`` and ``entry * (1 +/- take_profit)`` (mirror
      for shorts); the order fills at that level, or at the bar's open (close-only data: its
      close) when that is already beyond the level (a gap). The stop is assumed first when a bar
      reaches both. A stopped-out ticker stays flat until its target changes.
    - ``drawdown_limit``: when the equity at a close is more than this fraction below its
      running peak, every position is closed at the next bar's fill and no position is opened
      again for the rest of the run (``cooldown=None``) or for ``cooldown`` bars: tripped on bar
      ``t``'s close, flat through bars ``t+1 .. t+cooldown``, the strategy's current targets fill
      again from bar ``t+cooldown+1`` on, and the peak restarts from the equity at resumption.
    - Negative signals short only when ``allow_short``; otherwise they mean flat.
    - ``benchmark`` (a frame of ``date, close``, e.g. ``^GSPC``): the stats'
      ``benchmark_alpha_ann_pct`` and ``benchmark_beta`` regress the daily equity returns on
      its close-to-close returns over the backtest's sessions (nan without it).
    - Open trades are closed at the last bar's close (exit commission charged). The ledger's
      ``exit_reason`` is one of ``signal stop_loss take_profit drawdown_limit end``.

    >>> import datetime as dt
    >>> from alphadag.backtest.strategies import BuyAndHold
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, d) for d in (2, 3, 4)],
    ...                      "open": [10.0, 10.0, 12.0], "close": [10.0, 11.0, 12.0]})
    >>> r = run_backtest(bars, BuyAndHold(), cash=100.0, commission=0.0)
    >>> r.stats.equity_final, r.trades["size"].to_list()
    (120.0, [10.0])
    >>> half = run_backtest(bars, BuyAndHold(), cash=100.0, commission=0.0, max_weight=0.5)
    >>> half.trades["size"].to_list()
    [5.0]
    >>> base = BacktestSettings(cash=100.0, commission=0.0)
    >>> run_backtest(bars, BuyAndHold(), settings=base, max_weight=0.5).trades["size"].to_list()
    [5.0]
    """
    s = BacktestSettings.from_keywords(settings, knobs, caller="run_backtest")
    _check_bars(bars)
    layout = _Layout(bars)
    grids = _grids(layout, s)
    signal = _strategy_grid(strategy, layout, grids.close, predictions)
    target, changes = _sim.targets(signal, bool(s.allow_short))
    sim = _sim.simulate(grids, target, _capacity(changes, layout, s), _sim_params(s))
    bench = None if benchmark is None else _benchmark_returns(benchmark, layout.dates)
    return _result(layout, grids.close, strategy.warmup, bench, sim)


def _grids(layout: _Layout, s: BacktestSettings) -> _sim.Grids:
    """The fill (open, else close), close, high, low and (``vol_target``) volatility grids."""
    close = layout.column("close")
    open_ = layout.column("open")
    fill = np.where(np.isnan(open_), close, open_)
    if s.sizing == "vol_target":
        # realised volatility up to and including each close (a trailing window: the past only)
        vol = layout.grid(
            layout.bars.select(
                (
                    pl.col("close").cast(pl.Float64).log().diff().rolling_std(s.vol_window)
                    * math.sqrt(ANNUAL_SESSIONS)
                ).over("ticker", order_by="date")
            ).to_series()
        )
    else:
        vol = np.full((1, 1), np.nan)
    return _sim.Grids(fill, close, layout.column("high"), layout.column("low"), vol)


def _strategy_grid(
    strategy: Strategy,
    layout: _Layout,
    close: np.ndarray,
    predictions: pl.DataFrame | None,
    cache: dict | None = None,
) -> np.ndarray:
    """The strategy's signals on the grid: its ``signal_grid`` on dense bars (the same values
    as ``signals``, without a polars plan), else ``signals`` mapped onto the grid. ``cache``
    (indicators shared across a parameter grid) goes to ``signal_grid``: pass it only to one
    that takes it (see :func:`_takes_cache`)."""
    fast = getattr(strategy, "signal_grid", None)
    if fast is not None and layout.dense and predictions is None:
        if cache is not None:
            return np.asarray(fast(close, cache=cache), dtype=np.float64)
        return np.asarray(fast(close), dtype=np.float64)
    return layout.from_signals(strategy.signals(layout.bars, predictions))


def _takes_cache(strategy: Strategy) -> bool:
    """Whether the strategy's ``signal_grid`` takes a ``cache`` keyword."""
    fast = getattr(strategy, "signal_grid", None)
    return fast is not None and "cache" in inspect.signature(fast).parameters


def _capacity(changes: int, layout: _Layout, s: BacktestSettings) -> int:
    """The most trades a simulation can open: one per target change and ticker, plus the
    re-entries after each breaker cooldown."""
    capacity = changes + layout.m + 1
    if s.drawdown_limit is not None and s.cooldown is not None:
        # every resumption after a cooldown may re-enter each ticker once
        capacity += layout.m * (layout.n // (s.cooldown + 1) + 1)
    return capacity


def _buy_hold(close: np.ndarray, dense: bool) -> np.ndarray:
    """The equal-weight buy-and-hold path of the tickers (each from its first close)."""
    if dense:
        return (close / close[0]).mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        first = np.nanargmax(~np.isnan(close), axis=0)
        base = close[first, np.arange(close.shape[1])]
        rows = np.where(~np.isnan(close), np.arange(close.shape[0])[:, None], 0)
        filled = np.take_along_axis(close, np.maximum.accumulate(rows, axis=0), axis=0)
        return np.nanmean(filled / base, axis=1)


def _stats(layout: _Layout, sim: _sim.SimResult, buy_hold: np.ndarray, warmup: int, bench) -> Stats:
    """:func:`compute_stats` of one simulation's equity curve and ledger (the curve before
    costs adds back every commission paid so far)."""
    commissions = sim.entry_commission + sim.exit_commission
    size, ep, xp = sim.size, sim.entry_price, sim.exit_price
    span = layout.dates[-1] - layout.dates[0]
    return compute_stats(
        equity=sim.equity,
        trade_pnl=size * (xp - ep) - commissions,
        trade_return=np.sign(size) * (xp / ep - 1.0) - commissions / (np.abs(size) * ep),
        trade_commission=commissions,
        trade_entry_bar=sim.entry_bar,
        trade_exit_bar=sim.exit_bar,
        benchmark=buy_hold,
        years=span.days / 365.25 if hasattr(span, "days") else math.nan,
        turnover=sim.traded / float(np.mean(sim.equity)),
        first_trading_bar=min(int(warmup), sim.equity.size - 1),
        benchmark_returns=bench,
        gross_equity=gross_equity_curve(
            sim.equity,
            np.concatenate([sim.entry_bar, sim.exit_bar]),
            np.concatenate([sim.entry_commission, sim.exit_commission]),
        ),
    )


def _result(
    layout: _Layout,
    close: np.ndarray,
    warmup: int,
    bench: np.ndarray | None,
    sim: _sim.SimResult,
    buy_hold: np.ndarray | None = None,
) -> BacktestResult:
    """Stats, equity frame and ledger of one simulation."""
    commissions = sim.entry_commission + sim.exit_commission
    size, ep, xp = sim.size, sim.entry_price, sim.exit_price
    pnl = size * (xp - ep) - commissions
    ret = np.sign(size) * (xp / ep - 1.0) - commissions / (np.abs(size) * ep)
    date_values = layout.dates
    if buy_hold is None:
        buy_hold = _buy_hold(close, layout.dense)
    stats = _stats(layout, sim, buy_hold, warmup, bench)
    equity = sim.equity
    peak = np.maximum.accumulate(equity)
    equity_frame = pl.DataFrame(
        {
            "date": date_values,
            "equity": equity,
            "cash": sim.cash,
            "drawdown_pct": (equity / peak - 1.0) * 100.0,
        }
    )
    # indices to values with numpy (a polars gather costs ~100x more on a short ledger)
    day = date_values.to_physical().to_numpy()
    trades = pl.DataFrame(
        {
            "ticker": pl.Series(layout.ticker_names[sim.ticker], dtype=pl.String),
            "entry_date": pl.Series(day[sim.entry_bar]).cast(date_values.dtype),
            "exit_date": pl.Series(day[sim.exit_bar]).cast(date_values.dtype),
            "size": size,
            "entry_price": ep,
            "exit_price": xp,
            "pnl": pnl,
            "return_pct": ret * 100.0,
            "commission": commissions,
            "exit_reason": pl.Series(_EXIT_REASONS[sim.exit_reason], dtype=pl.String),
        }
    )
    return BacktestResult(stats=stats, equity=equity_frame, trades=trades)


Constraint = Callable[[Mapping[str, Any]], bool]
"""A grid constraint: a combination's parameters (with the strategy's defaults) -> keep it?"""

_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Add: operator.add, ast.Sub: operator.sub,
    ast.Mult: operator.mul, ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod, ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
}  # fmt: skip


def parse_constraint(text: str) -> Constraint:
    """A constraint from an expression over parameter names, e.g. ``"fast < slow"`` or
    ``"fast * 2 <= slow and period != 10"``: comparisons (chains too), ``and or not``,
    ``+ - * / // %``, numbers, strings, ``True``/``False``. Nothing else (no calls, attributes
    or subscripts): the text is parsed, never ``eval``-ed. A name that is not a parameter of the
    combination raises ``ValueError`` when the constraint is applied.

    >>> keep = parse_constraint("fast < slow")
    >>> keep({"fast": 5, "slow": 20}), keep({"fast": 20, "slow": 20})
    (True, False)
    >>> parse_constraint("fast.real < 3")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: constraint 'fast.real < 3': Attribute is not allowed (use names, numbers, ...
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"a constraint is a non-empty expression such as 'fast < slow', got {text!r}"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"constraint {text!r} is not an expression: {e.msg}") from None
    allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.BinOp, ast.Compare,
               ast.Name, ast.Load, ast.Constant, *_OPERATORS)  # fmt: skip
    for node in ast.walk(tree):
        if not isinstance(node, allowed) or (
            isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str)
        ):
            raise ValueError(
                f"constraint {text!r}: {type(node).__name__} is not allowed (use names, numbers, "
                "comparisons, and/or/not, + - * / // %)"
            )

    def value(node: ast.AST, params: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Expression):
            return value(node.body, params)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in params:
                raise ValueError(
                    f"constraint {text!r} names {node.id!r}, which is not a parameter; "
                    f"known: {sorted(params)}"
                )
            return params[node.id]
        if isinstance(node, ast.BoolOp):
            parts = (value(v, params) for v in node.values)
            return all(parts) if isinstance(node.op, ast.And) else any(parts)
        if isinstance(node, ast.UnaryOp):
            return _OPERATORS[type(node.op)](value(node.operand, params))
        if isinstance(node, ast.BinOp):
            return _OPERATORS[type(node.op)](value(node.left, params), value(node.right, params))
        if not isinstance(node, ast.Compare):  # the walk above leaves no other node
            raise ValueError(f"constraint {text!r}: cannot evaluate {type(node).__name__}")
        left = value(node.left, params)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = value(comparator, params)
            if not _OPERATORS[type(op)](left, right):
                return False
            left = right
        return True

    return _Expression(text.strip(), lambda params: bool(value(tree, params)))


@dataclass(frozen=True)
class _Expression:
    """A parsed constraint: called like any constraint, its ``text`` names it in a reason."""

    text: str
    keep: Constraint = field(repr=False)

    def __call__(self, params: Mapping[str, Any]) -> bool:
        return self.keep(params)


@dataclass(frozen=True)
class GridPlan:
    """The combinations of a grid that will run (``params``, with their built ``strategies``)
    and those that will not: ``skipped`` pairs of ``(params, reason)``."""

    params: list[dict[str, Any]]
    strategies: list[Strategy]
    skipped: list[tuple[dict[str, Any], str]]


def _defaults(factory: Callable[..., Any]) -> dict[str, Any]:
    """The keyword defaults of a strategy class (or factory), for a constraint to read."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    return {
        name: p.default
        for name, p in signature.parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def plan_grid(
    strategy: Callable[..., Strategy],
    combinations: Iterable[Mapping[str, Any]],
    *,
    constraint: Constraint | str | None = None,
) -> GridPlan:
    """Split ``combinations`` into the strategies to run and the skipped ones, with why.

    A combination is skipped when ``constraint`` (a callable on the combination's parameters
    merged over the strategy's defaults, or an expression for :func:`parse_constraint`) is
    false, or when building the strategy raises ``ValueError`` (its own check, e.g.
    ``SmaCross`` with ``fast >= slow``). A ``TypeError`` (an unknown parameter name) is not a
    combination's fault: it propagates. Raises ``ValueError`` listing the reasons when every
    combination is skipped.

    >>> from alphadag.backtest.strategies import SmaCross
    >>> plan = plan_grid(SmaCross, [{"fast": 5, "slow": 5}, {"fast": 5, "slow": 20}])
    >>> [p for p in plan.params], plan.skipped
    ([{'fast': 5, 'slow': 20}], [({'fast': 5, 'slow': 5}, 'fast (5) must be shorter than slow (5)')])
    """
    if isinstance(constraint, str):
        constraint = parse_constraint(constraint)
    defaults = _defaults(strategy) if constraint is not None else {}
    kept, built, skipped = [], [], []
    for combination in combinations:
        params = dict(combination)
        if constraint is not None and not constraint({**defaults, **params}):
            name = (
                repr(constraint.text)
                if isinstance(constraint, _Expression)
                else getattr(constraint, "__name__", "")
            )
            skipped.append((params, f"excluded by the constraint {name}".rstrip()))
            continue
        try:
            built.append(strategy(**params))
        except ValueError as e:
            skipped.append((params, str(e)))
            continue
        kept.append(params)
    if not kept:
        name = getattr(strategy, "__name__", repr(strategy))
        shown = "; ".join(
            f"{', '.join(f'{k}={v}' for k, v in p.items())}: {why}" for p, why in skipped[:10]
        )
        more = f"; and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        raise ValueError(
            f"no parameter combination is valid for {name} ({len(skipped)} skipped): "
            f"{shown or 'the grid is empty'}{more}"
        )
    return GridPlan(params=kept, strategies=built, skipped=skipped)


def rank_order(values: Sequence[float]) -> list[int]:
    """Indices of ``values`` from the highest to the lowest, ties in input order; NaN, None and
    infinities (a profit factor or Omega with no losing day) last, as the report ranks them
    (report.rank_runs), so the first is the best whenever any value is a finite number.

    >>> rank_order([0.5, float("nan"), 1.2, 0.5, float("inf")])
    [2, 0, 3, 1, 4]
    """

    def key(i: int) -> tuple[bool, float]:
        v = values[i]
        missing = v is None or not math.isfinite(v)
        return (missing, 0.0 if missing else -float(v))

    return sorted(range(len(values)), key=key)


_STAT_NAMES = tuple(f.name for f in dataclasses.fields(Stats))


@dataclass(frozen=True)
class GridResult:
    """``stats``: one row per combination that ran (the parameters, every :class:`Stats` field,
    then ``best``), sorted by ``maximize`` from the highest (NaN last; combination order when
    ``maximize`` is None); ``best`` marks the first row when its ``maximize`` value is a number
    (:attr:`best` its index, else None). ``equity``: the ``(combinations, sessions)`` equity
    curves in the same row order; ``dates`` the sessions; ``skipped``: the parameters of each
    combination that did not run and its ``reason`` (the strategy's error or the constraint);
    :meth:`result` the full :class:`BacktestResult` of one row (built on demand)."""

    stats: pl.DataFrame
    equity: np.ndarray
    dates: pl.Series
    _build: Callable[[int], BacktestResult] = field(repr=False)
    skipped: pl.DataFrame = field(default_factory=pl.DataFrame)
    maximize: str | None = None
    best: int | None = None

    def result(self, i: int) -> BacktestResult:
        """The :class:`BacktestResult` of row ``i`` of :attr:`stats`."""
        if not 0 <= i < self.equity.shape[0]:
            raise IndexError(f"combination {i} out of range 0..{self.equity.shape[0] - 1}")
        return self._build(i)


def run_grid(
    bars: pl.DataFrame,
    strategy: Callable[..., Strategy],
    *,
    settings: BacktestSettings | None = None,
    predictions: pl.DataFrame | None = None,
    benchmark: pl.DataFrame | None = None,
    constraint: Constraint | str | None = None,
    maximize: str | None = "sharpe",
    **params: Any,
) -> GridResult:
    """:func:`run_backtest` of ``strategy(**combination)`` for every combination of ``params``
    (their Cartesian product, in keyword order), in one batch: the bars are laid out once, each
    combination's signals come from the strategy's ``signal_grid`` (numpy) on dense bars, and
    one numba call simulates all combinations. Each combination's numbers equal its
    :func:`run_backtest` (same knobs, same conventions).

    - The keywords named like a :class:`BacktestSettings` field are the knobs (as for
      :func:`run_backtest`: ``cash=..., commission=...`` or ``settings=``, keywords override);
      every other keyword is a strategy parameter's list of values.

    - Combinations the strategy rejects (its ``ValueError``, e.g. ``SmaCross`` with ``fast >=
      slow``) or that ``constraint`` excludes (a callable on the combination's parameters over
      the strategy's defaults, or an expression such as ``"fast < slow"``, see
      :func:`parse_constraint`) are skipped and listed with the reason in ``skipped``; only a
      grid where every combination is skipped raises (``ValueError`` listing why).
    - The rows are sorted by the :class:`Stats` field ``maximize``, highest first (default
      ``"sharpe"``: return per unit of risk, comparable across combinations that trade more or
      less; NaN, e.g. no trade, last), and the first is marked ``best``; ``maximize=None``
      keeps the combinations in keyword order. The test segment is not the place to choose.

    >>> import datetime as dt
    >>> from alphadag.backtest.strategies import SmaCross
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, 1) + dt.timedelta(i)
    ...                      for i in range(60)], "close": [10.0 + (i % 17) for i in range(60)]})
    >>> g = run_grid(bars, SmaCross, cash=1e4, commission=0.0, fast=[2, 3], slow=[3, 8],
    ...              maximize=None)
    >>> g.stats.select("fast", "slow").rows(), g.skipped.rows()
    ([(2, 3), (2, 8), (3, 8)], [(3, 3, 'fast (3) must be shorter than slow (3)')])
    >>> alone = run_backtest(bars, SmaCross(2, 8), cash=1e4, commission=0.0)
    >>> repr(g.result(1).stats) == repr(alone.stats)  # every field, exact, nan matching nan
    True
    >>> best = run_grid(bars, SmaCross, cash=1e4, commission=0.0, fast=[2, 3], slow=[3, 8],
    ...                 constraint="slow - fast >= 2")
    >>> best.stats.filter("best").select("fast", "slow").rows() == best.stats[:1].select(
    ...     "fast", "slow").rows(), best.skipped.height
    (True, 2)
    """
    knobs = {name: params.pop(name) for name in FIELDS if name in params}
    s = BacktestSettings.from_keywords(settings, knobs, caller="run_grid")
    _check_bars(bars)
    if not params:
        raise ValueError("run_grid needs at least one parameter list, e.g. fast=[5, 10]")
    if maximize is not None and maximize not in _STAT_NAMES:
        raise ValueError(f"maximize must be a Stats field or None, got {maximize!r}; known: "
                         f"{', '.join(_STAT_NAMES)}")  # fmt: skip
    names = list(params)
    plan = plan_grid(
        strategy,
        (dict(zip(names, v, strict=True)) for v in itertools.product(*map(list, params.values()))),
        constraint=constraint,
    )
    combos = [tuple(p[name] for name in names) for p in plan.params]
    strategies_ = plan.strategies
    layout = _Layout(bars)
    grids = _grids(layout, s)
    targets = np.empty((len(combos), layout.n, layout.m))
    capacities = np.empty(len(combos), np.int64)
    cache: dict | None = {} if _takes_cache(strategies_[0]) else None
    for c, strat in enumerate(strategies_):
        signal = _strategy_grid(strat, layout, grids.close, predictions, cache)
        targets[c], changes = _sim.targets(signal, bool(s.allow_short))
        capacities[c] = _capacity(changes, layout, s)
    sims = _sim.simulate_many(grids, targets, capacities, _sim_params(s))
    bench = None if benchmark is None else _benchmark_returns(benchmark, layout.dates)
    buy_hold = _buy_hold(grids.close, layout.dense)

    def build(c: int) -> BacktestResult:
        return _result(
            layout, grids.close, strategies_[c].warmup, bench, sims[c], buy_hold=buy_hold
        )

    rows = [
        _stats(layout, sim, buy_hold, strat.warmup, bench).to_dict()
        for sim, strat in zip(sims, strategies_, strict=True)
    ]
    order = list(range(len(rows))) if maximize is None else rank_order([r[maximize] for r in rows])
    best = None
    if maximize is not None and math.isfinite(rows[order[0]][maximize]):
        best = 0
    table = pl.concat(
        [pl.DataFrame(combos, schema=names, orient="row"), pl.DataFrame(rows)], how="horizontal"
    )[order].with_columns(pl.Series("best", [i == best for i in range(len(order))]))
    skipped = pl.DataFrame(
        [(*(p.get(n) for n in names), why) for p, why in plan.skipped],
        schema=[*names, "reason"],
        orient="row",
    )
    return GridResult(
        stats=table,
        equity=np.stack([sims[i].equity for i in order]),
        dates=layout.dates,
        _build=lambda i: build(order[i]),
        skipped=skipped,
        maximize=maximize,
        best=best,
    )
