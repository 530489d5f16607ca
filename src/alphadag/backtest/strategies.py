"""Built-in strategies: bars (+ predictions) in, one ``signal`` per ``(date, ticker)`` out.

A strategy is any object with a ``name``, a ``warmup`` (the number of leading bars its
indicators need, as backtesting.py counts them: the row of the first non-null indicator value)
and ``signals(bars, predictions=None) -> pl.DataFrame`` returning ``date, ticker, signal``.
``signal`` is the target decided on the close of that row's bar: ``+w`` long, ``-w`` short (flat
when shorting is not allowed), ``0`` flat, null "keep the previous target". The engine, not the
strategy, moves the target one bar later (decision on bar ``t``'s close, fill at bar ``t+1``), so
a signal may use everything up to and including its own bar, and nothing after it.

A strategy may also offer ``signal_grid(close) -> np.ndarray``: the same signals computed on a
dense ``(sessions, tickers)`` float grid of closes (every ticker with a bar on every session), NaN
for null. The engine uses it when the bars are dense: numpy and the numba kernels instead of a
polars plan, identical values (the built-ins are tested bit for bit against ``signals``). A
``cache`` keyword, when the method takes one, receives a dict shared by all the strategies of
one :func:`~alphadag.backtest.run_grid` call (same closes) to reuse indicators across them.

Indicators are the TA-Lib-exact ones of :mod:`alphadag.features.indicators` (the same definitions
as the ``features`` table). Strategies are found by name in :data:`REGISTRY`, extended by the
entry-point group ``alphadag.strategies`` (see :func:`get_strategy`).

>>> import polars as pl
>>> bars = pl.DataFrame({"ticker": "A", "date": list(range(5)),
...                      "close": [1.0, 2.0, 3.0, 2.0, 1.0]})
>>> SmaCross(fast=1, slow=2).signals(bars)["signal"].to_list()
[None, None, None, -1.0, None]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl
from numba import njit

from alphadag.features import indicators as ind
from alphadag.features import kernels

__all__ = [
    "ENTRY_POINT_GROUP",
    "REGISTRY",
    "BuyAndHold",
    "MacdCross",
    "ModelSignal",
    "RsiReversion",
    "SmaCross",
    "Strategy",
    "TopkDropout",
    "get_strategy",
    "strategy_factory",
    "topk_dropout_book",
]

ENTRY_POINT_GROUP = "alphadag.strategies"


@runtime_checkable
class Strategy(Protocol):
    """What :func:`alphadag.backtest.run_backtest` needs from a strategy."""

    name: str

    @property
    def warmup(self) -> int: ...

    def signals(
        self, bars: pl.DataFrame, predictions: pl.DataFrame | None = None
    ) -> pl.DataFrame: ...


def _panel(bars: pl.DataFrame, stages: ind.Stages) -> pl.DataFrame:
    """``bars`` sorted by ``(ticker, date)`` with the indicator columns of ``stages``."""
    return ind.run(ind.prepare(bars.lazy()), stages).drop(ind.INDEX).collect()


def _crossings(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``+1`` where ``a`` crosses above ``b`` on this bar, ``-1`` below, null otherwise.

    backtesting.py's ``crossover``: ``a[t-1] < b[t-1] and a[t] > b[t]``. The ``shift(1)`` reads
    the *previous* bar (past data, no look-ahead); it runs per ticker.
    """
    a_prev = a.shift(1).over("ticker")  # previous bar of the same ticker: the past, not the future
    b_prev = b.shift(1).over("ticker")
    return (
        pl.when((a_prev < b_prev) & (a > b))
        .then(pl.lit(1.0))
        .when((a_prev > b_prev) & (a < b))
        .then(pl.lit(-1.0))
        .otherwise(pl.lit(None, dtype=pl.Float64))
    )


@njit(cache=True, nogil=True)
def _sma_columns(close: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(close.shape)
    idx = np.arange(close.shape[0])
    for j in range(close.shape[1]):
        out[:, j] = kernels._seg_rolling_mean(np.ascontiguousarray(close[:, j]), idx, n)
    return out


@njit(cache=True, nogil=True)
def _ewm_columns(x: np.ndarray, alpha: float, window: int, seed_at: int) -> np.ndarray:
    out = np.empty(x.shape)
    idx = np.arange(x.shape[0])
    for j in range(x.shape[1]):
        column = np.ascontiguousarray(x[:, j])
        out[:, j] = kernels._seg_seeded_ewm(column, idx, alpha, window, seed_at)
    return out


def _sma_grid(close: np.ndarray, n: int, cache: dict | None = None) -> np.ndarray:
    """``SMA(n)`` down each column of a dense grid: the serial kernel behind
    :func:`alphadag.features.indicators.sma` (one thread; the parallel wrapper's start-up costs
    more than the whole window on a few thousand rows). ``cache`` (a dict shared by the
    strategies of one parameter grid over the same ``close``) keeps each window computed once."""
    if cache is None:
        return _sma_columns(close, n)
    key = ("sma", n)
    if key not in cache:
        cache[key] = _sma_columns(close, n)
    return cache[key]


def _ewm_grid(x: np.ndarray, *, alpha: float, window: int, seed_at: int) -> np.ndarray:
    """:func:`alphadag.features.indicators.seeded_ewm` down each column (serial kernel)."""
    return _ewm_columns(x, alpha, window, seed_at)


def _cross_grid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`_crossings` on grids: row ``t`` compares with row ``t - 1`` (the past)."""
    out = np.full(a.shape, np.nan)
    up = (a[:-1] < b[:-1]) & (a[1:] > b[1:])
    down = (a[:-1] > b[:-1]) & (a[1:] < b[1:])
    out[1:][up] = 1.0
    out[1:][down & ~up] = -1.0
    return out


def _check_periods(**periods: int) -> None:
    for name, value in periods.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class SmaCross:
    """Long when SMA(``fast``) crosses above SMA(``slow``) of the close, out (or short) when it
    crosses below; no position before the first crossing.

    >>> SmaCross(fast=10, slow=20).warmup
    19
    """

    fast: int = 10
    slow: int = 20
    name: str = "sma_cross"

    def __post_init__(self) -> None:
        _check_periods(fast=self.fast, slow=self.slow)
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")

    @property
    def warmup(self) -> int:
        return self.slow - 1

    def signals(self, bars: pl.DataFrame, predictions: pl.DataFrame | None = None) -> pl.DataFrame:
        stages = ind.parallel(
            ind.sma("close", self.fast, out="_fast"), ind.sma("close", self.slow, out="_slow")
        )
        panel = _panel(bars.select("ticker", "date", "close"), stages)
        return panel.select(
            "date", "ticker", _crossings(pl.col("_fast"), pl.col("_slow")).alias("signal")
        )

    def signal_grid(self, close: np.ndarray, *, cache: dict | None = None) -> np.ndarray:
        return _cross_grid(_sma_grid(close, self.fast, cache), _sma_grid(close, self.slow, cache))


@dataclass(frozen=True)
class RsiReversion:
    """Mean reversion on RSI(``period``): long below ``lower``, out (or short) above ``upper``,
    keep the position in between.

    >>> RsiReversion(period=14, lower=30, upper=70).warmup
    14
    """

    period: int = 14
    lower: float = 30.0
    upper: float = 70.0
    name: str = "rsi_reversion"

    def __post_init__(self) -> None:
        _check_periods(period=self.period)
        if not 0 <= self.lower < self.upper <= 100:
            raise ValueError(f"need 0 <= lower < upper <= 100, got {self.lower}, {self.upper}")

    @property
    def warmup(self) -> int:
        return self.period

    def signals(self, bars: pl.DataFrame, predictions: pl.DataFrame | None = None) -> pl.DataFrame:
        panel = _panel(
            bars.select("ticker", "date", "close"), ind.rsi("close", self.period, out="_rsi")
        )
        rsi = pl.col("_rsi")
        signal = (
            pl.when(rsi < self.lower)
            .then(pl.lit(1.0))
            .when(rsi > self.upper)
            .then(pl.lit(-1.0))
            .otherwise(pl.lit(None, dtype=pl.Float64))
        )
        return panel.select("date", "ticker", signal.alias("signal"))

    def signal_grid(self, close: np.ndarray) -> np.ndarray:
        n = self.period
        change = np.full(close.shape, np.nan)
        change[1:] = close[1:] - close[:-1]  # the previous bar: the past
        known = ~np.isnan(change)
        gain = np.where(change > 0.0, change, np.where(known, 0.0, np.nan))
        loss = np.where(change < 0.0, -change, np.where(known, 0.0, np.nan))
        avg_gain = _ewm_grid(gain, alpha=1.0 / n, window=n, seed_at=n)
        avg_loss = _ewm_grid(loss, alpha=1.0 / n, window=n, seed_at=n)
        total = avg_gain + avg_loss
        with np.errstate(invalid="ignore", divide="ignore"):
            rsi = np.where(
                total > 0.0, 100.0 * avg_gain / total, np.where(total == 0.0, 0.0, np.nan)
            )
        return np.where(rsi < self.lower, 1.0, np.where(rsi > self.upper, -1.0, np.nan))


@dataclass(frozen=True)
class MacdCross:
    """Long when the MACD line crosses above its signal line, out (or short) when below.

    >>> MacdCross().warmup
    33
    """

    fast: int = 12
    slow: int = 26
    signal: int = 9
    name: str = "macd_cross"

    def __post_init__(self) -> None:
        _check_periods(fast=self.fast, slow=self.slow, signal=self.signal)
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")

    @property
    def warmup(self) -> int:
        return self.slow + self.signal - 2

    def signals(self, bars: pl.DataFrame, predictions: pl.DataFrame | None = None) -> pl.DataFrame:
        stages = ind.macd("close", self.fast, self.slow, self.signal, out=("_m", "_s", "_h"))
        panel = _panel(bars.select("ticker", "date", "close"), stages)
        return panel.select(
            "date", "ticker", _crossings(pl.col("_m"), pl.col("_s")).alias("signal")
        )

    def signal_grid(self, close: np.ndarray) -> np.ndarray:
        seed_at = self.slow - 1
        start = self.slow - 1 + self.signal - 1
        fast = _ewm_grid(close, alpha=2.0 / (self.fast + 1), window=self.fast, seed_at=seed_at)
        slow = _ewm_grid(close, alpha=2.0 / (self.slow + 1), window=self.slow, seed_at=seed_at)
        line = fast - slow
        smooth = _ewm_grid(line, alpha=2.0 / (self.signal + 1), window=self.signal, seed_at=start)
        line[:start] = np.nan  # ``after(line, start)``
        return _cross_grid(line, smooth)


@dataclass(frozen=True)
class BuyAndHold:
    """Long every ticker from its first bar (filled at its second bar's open).

    >>> BuyAndHold().warmup
    0
    """

    name: str = "buy_and_hold"

    @property
    def warmup(self) -> int:
        return 0

    def signals(self, bars: pl.DataFrame, predictions: pl.DataFrame | None = None) -> pl.DataFrame:
        return bars.select("date", "ticker", pl.lit(1.0).alias("signal"))

    def signal_grid(self, close: np.ndarray) -> np.ndarray:
        return np.ones(close.shape)


def _prediction_panel(
    bars: pl.DataFrame, predictions: pl.DataFrame | None, who: str
) -> pl.DataFrame:
    """``bars``' ``date, ticker`` with the latest ``y_pred`` dated on or before each row."""
    if predictions is None:
        raise ValueError(f"{who} needs a predictions frame (date, ticker, y_pred)")
    missing = {"date", "ticker", "y_pred"} - set(predictions.columns)
    if missing:
        raise ValueError(f"predictions lack column(s) {sorted(missing)}")
    preds = (
        predictions.select("date", "ticker", pl.col("y_pred").cast(pl.Float64))
        .group_by("date", "ticker")
        .agg(pl.col("y_pred").last())
    )
    return (
        bars.select("date", "ticker")
        .join(preds, on=["date", "ticker"], how="left")
        .sort("ticker", "date")
        # forward fill only: the latest prediction dated <= t, never one from after t
        .with_columns(pl.col("y_pred").forward_fill().over("ticker"))
    )


@dataclass(frozen=True)
class ModelSignal:
    """Top-``k`` tickers by predicted return ``y_pred`` long (and the bottom ``k`` short when
    ``long_short``), each with weight ``1/k``; use ``sizing="weight"`` to size by these weights.

    ``predictions`` (``date, ticker, y_pred``) dated ``t`` are made from information up to
    ``t``'s close; a bar uses the latest prediction dated on or before it (a forward fill,
    never a backward one), so a prediction dated after ``t`` cannot reach ``t``'s decision.

    >>> import datetime as dt
    >>> bars = pl.DataFrame({"ticker": ["A", "B"] * 2,
    ...                      "date": [dt.date(2024, 1, 2)] * 2 + [dt.date(2024, 1, 3)] * 2,
    ...                      "close": [1.0, 1.0, 1.0, 1.0]})
    >>> preds = pl.DataFrame({"date": [dt.date(2024, 1, 2)] * 2, "ticker": ["A", "B"],
    ...                       "y_pred": [0.01, -0.02]})
    >>> ModelSignal(k=1).signals(bars, preds).sort("date", "ticker")["signal"].to_list()
    [1.0, 0.0, 1.0, 0.0]
    """

    k: int = 5
    long_short: bool = False
    name: str = "model_signal"

    def __post_init__(self) -> None:
        _check_periods(k=self.k)

    @property
    def warmup(self) -> int:
        return 0

    def signals(self, bars: pl.DataFrame, predictions: pl.DataFrame | None = None) -> pl.DataFrame:
        panel = _prediction_panel(bars, predictions, type(self).__name__)
        rank_desc = pl.col("y_pred").rank("ordinal", descending=True).over("date")
        rank_asc = pl.col("y_pred").rank("ordinal").over("date")
        weight = 1.0 / self.k
        signal = (
            pl.when(pl.col("y_pred").is_null()).then(0.0).when(rank_desc <= self.k).then(weight)
        )
        if self.long_short:
            signal = signal.when(rank_asc <= self.k).then(-weight)
        return panel.select("date", "ticker", signal.otherwise(0.0).alias("signal"))


def topk_dropout_book(
    scores: np.ndarray, *, k: int, n_drop: int, rebalance: int, band: int
) -> np.ndarray:
    """The book of :class:`TopkDropout` on a ``(sessions, tickers)`` grid of scores.

    Returns a boolean grid: ``held[t, j]`` is ticker ``j`` held after the decision on session
    ``t``'s close. A NaN score is "no score" (ranked below every scored ticker; never bought).
    Rebalances fall on every ``rebalance``-th session counted from the first session with a
    score; between them the book is carried unchanged. At a rebalance, ranks are ordinal
    (1 = highest score, ties broken by column order) and:

    1. vacancies (fewer than ``k`` holdings, e.g. the first rebalance) are filled with the
       best-ranked unheld tickers;
    2. then up to ``n_drop`` times: the worst-ranked holding is sold, and the best-ranked unheld
       ticker bought in its place, only if that holding ranks below ``k + band`` and the
       candidate ranks above it; otherwise the swaps stop.

    So once the book is full at most ``n_drop`` names leave and ``n_drop`` enter per rebalance,
    and a holding ranked within ``k + band`` is never sold.

    >>> s = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]])
    >>> topk_dropout_book(s, k=2, n_drop=1, rebalance=1, band=0).astype(int).tolist()
    [[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 1]]
    """
    n, m = scores.shape
    held = np.zeros((n, m), dtype=bool)
    scored = ~np.isnan(scores)
    has_score = np.flatnonzero(scored.any(axis=1))
    if has_score.size == 0:
        return held
    book = np.zeros(m, dtype=bool)
    first = int(has_score[0])
    for t in range(first, n):
        if (t - first) % rebalance == 0:
            # ordinal ranks, best first; unscored tickers after every scored one
            key = np.where(scored[t], -scores[t], np.inf)
            order = np.argsort(key, kind="stable")
            rank = np.empty(m, dtype=np.int64)
            rank[order] = np.arange(m)
            candidates = [int(j) for j in order if scored[t, j] and not book[j]]
            vacancies = k - int(book.sum())
            for j in candidates[:vacancies]:
                book[j] = True
            candidates = candidates[max(vacancies, 0) :]
            holdings = sorted(np.flatnonzero(book).tolist(), key=lambda j: -rank[j])  # worst 1st
            for worst, best in zip(holdings[:n_drop], candidates, strict=False):
                if rank[worst] < k + band or rank[best] > rank[worst]:
                    break
                book[worst] = False
                book[best] = True
        held[t] = book
    return held


@dataclass(frozen=True)
class TopkDropout(ModelSignal):
    """The top ``k`` by predicted return with turnover control (Qlib's TopkDropoutStrategy):
    long-only, equal weight ``1/k`` (sized by ``sizing="weight"``, like :class:`ModelSignal`).

    Every ``rebalance`` sessions at most ``n_drop`` holdings are replaced: the worst-ranked
    holdings are sold only while a better-ranked ticker outside the book exists, and never while
    their rank is within ``k + band`` (a no-trade band: hysteresis against names that wobble
    around rank ``k``). Between rebalances nothing trades. See :func:`topk_dropout_book`.

    Turnover bound: once the book is built, a rebalance trades at most ``n_drop`` sells and
    ``n_drop`` buys of about ``1/k`` of the equity each (plus the drift of the sold positions
    away from ``1/k``), so at most about ``2 * n_drop / k * (252 / rebalance)`` times the equity
    a year; the mean holding period is at least ``k / n_drop * rebalance`` sessions.

    The defaults were chosen a priori, never on a test segment: ``k=5`` as ``ModelSignal``;
    ``rebalance=5`` the 5-session forecast horizon of the model (a forecast is held for the
    period it forecasts); ``n_drop=1`` (a bound of 2/5 x 252/5 = 20x equity a year against
    the ~116x measured for the daily top 5); ``band=5`` (= ``k``: a holding stays while it is in
    the top 2k).

    ``predictions`` as for :class:`ModelSignal` (the latest ``y_pred`` dated on or before each
    bar; a forward fill, never a backward one).

    >>> import datetime as dt
    >>> days = [dt.date(2024, 1, d) for d in (2, 3, 4)]
    >>> bars = pl.DataFrame({"ticker": ["A", "B", "C"] * 3, "date": [d for d in days
    ...                      for _ in range(3)], "close": 1.0})
    >>> preds = bars.select("date", "ticker").with_columns(
    ...     y_pred=pl.Series([3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0]))
    >>> s = TopkDropout(k=2, n_drop=1, rebalance=1, band=0).signals(bars, preds)
    >>> s.sort("date", "ticker")["signal"].to_list()
    [0.5, 0.5, 0.0, 0.0, 0.5, 0.5, 0.0, 0.5, 0.5]
    """

    long_short: bool = field(default=False, repr=False)
    name: str = "topk_dropout"
    n_drop: int = 1
    rebalance: int = 5
    band: int = 5

    def __post_init__(self) -> None:
        _check_periods(k=self.k, n_drop=self.n_drop, rebalance=self.rebalance)
        if self.long_short:
            raise ValueError("TopkDropout is long-only; use ModelSignal(long_short=True)")
        if self.n_drop > self.k:
            raise ValueError(f"n_drop ({self.n_drop}) cannot exceed k ({self.k})")
        if not isinstance(self.band, int) or isinstance(self.band, bool) or self.band < 0:
            raise ValueError(f"band must be a non-negative integer, got {self.band!r}")

    def signals(self, bars: pl.DataFrame, predictions: pl.DataFrame | None = None) -> pl.DataFrame:
        panel = _prediction_panel(bars, predictions, type(self).__name__)
        dates = panel.get_column("date").unique().sort()
        tickers = panel.get_column("ticker").unique().sort()
        di = dates.search_sorted(panel.get_column("date")).to_numpy()
        ti = tickers.search_sorted(panel.get_column("ticker")).to_numpy()
        scores = np.full((dates.len(), tickers.len()), np.nan)
        scores[di, ti] = panel.get_column("y_pred").fill_null(np.nan).to_numpy()
        # a session without a ticker's bar keeps its last score (a forward fill: the past only),
        # so a missing bar is not a reason to sell it
        rows = np.where(np.isnan(scores), 0, np.arange(scores.shape[0])[:, None])
        scores = np.take_along_axis(scores, np.maximum.accumulate(rows, axis=0), axis=0)
        held = topk_dropout_book(
            scores, k=self.k, n_drop=self.n_drop, rebalance=self.rebalance, band=self.band
        )
        weight = np.where(held[di, ti], 1.0 / self.k, 0.0)
        return panel.select("date", "ticker", pl.Series("signal", weight))


REGISTRY: dict[str, type] = {
    "sma_cross": SmaCross,
    "rsi_reversion": RsiReversion,
    "macd_cross": MacdCross,
    "buy_and_hold": BuyAndHold,
    "model_signal": ModelSignal,
    "topk_dropout": TopkDropout,
}


def available() -> dict[str, Any]:
    """Built-in strategies plus those registered under the ``alphadag.strategies`` entry points.

    >>> sorted(available())[:2]
    ['buy_and_hold', 'macd_cross']
    """
    found: dict[str, Any] = dict(REGISTRY)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point)
    return found


def strategy_factory(name: str) -> Any:
    """The class (or factory) registered as ``name``, an entry point loaded.

    >>> strategy_factory("topk_dropout").__name__
    'TopkDropout'
    """
    found = available()
    if name not in found:
        raise ValueError(f"unknown strategy {name!r}; known: {sorted(found)}")
    factory = found[name]
    if hasattr(factory, "load") and not isinstance(factory, type):
        factory = factory.load()
    return factory


def get_strategy(name: str, **params: Any) -> Strategy:
    """Build the strategy registered as ``name`` with keyword ``params``.

    >>> get_strategy("sma_cross", fast=5, slow=15)
    SmaCross(fast=5, slow=15, name='sma_cross')
    """
    return strategy_factory(name)(**params)
