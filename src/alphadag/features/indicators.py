"""TA-Lib-exact indicators as staged polars expressions over a (ticker, date)-sorted panel.

An indicator is a list of *stages*: ``{column name: expression}`` dicts applied one
``with_columns`` after another, a stage reading the columns of the earlier ones. :func:`parallel`
merges indicators stage by stage and :func:`then` runs one after another, so the whole feature
table is a handful of ``with_columns`` calls over the panel that :func:`prepare` sorts by
``(ticker, date)`` once and numbers per ticker (``_i = 0, 1, 2, ...``).

Stage expressions are panel-safe and look only backwards within a ticker. Windows that carry
arithmetic state (rolling sums, means and variances, EMA/Wilder recursions, running totals) run
as :mod:`alphadag.features.kernels` numba kernels through :func:`segmented`: one pass down the
whole sorted column that restarts on each ticker's first row, so every ticker's values are
bit-for-bit those of the ticker computed alone (and, except for the standard deviations,
bit-for-bit those of the polars ``.over("ticker")`` windows they replaced, at a fraction of
their cost). Stateless look-backs (``shift``, ``diff``, rolling min/max) run down the whole
sorted column and are masked with :func:`after` to the rows whose look-back lies inside the
ticker. :func:`per_ticker` (``.over("ticker")``) remains for ad-hoc windows.

The definitions, seeding and warm-up lengths follow TA-Lib's C code (default compatibility, no
unstable period): an EMA starts at row ``n - 1`` from the simple mean of the first ``n`` values,
Wilder's averages (RSI, ATR) from a simple mean of their first ``n`` inputs, and MACD seeds its fast
EMA on the slow EMA's seed bar. Rows before an indicator's first TA-Lib value are null.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import zip_longest

import numpy as np
import polars as pl

from alphadag.features import kernels

__all__ = [
    "INDEX",
    "Stages",
    "after",
    "atr",
    "bbands",
    "ema",
    "evaluate",
    "macd",
    "obv",
    "parallel",
    "per_ticker",
    "prepare",
    "rsi",
    "run",
    "seeded_ewm",
    "segmented",
    "sma",
    "stoch",
    "then",
]

Stages = list[dict[str, pl.Expr]]
"""An indicator: ``with_columns`` stages, each a ``{name: expression}`` dict."""

INDEX = "_i"
"""The per-ticker row number (0 on a ticker's first date) that :func:`prepare` adds."""

_NULL = pl.lit(None, dtype=pl.Float64)
_row = pl.col(INDEX)


def per_ticker(expr: pl.Expr) -> pl.Expr:
    """``expr`` evaluated over each ticker's rows, on a panel :func:`prepare` sorted by
    ``(ticker, date)`` (for windows with state).

    Because the panel is sorted once up front (the masked look-backs rely on it too), the window
    is ``.over("ticker")`` without ``order_by``: re-sorting every window by date would cost ~10%
    of the whole plan for nothing.

    >>> bars = pl.LazyFrame({"ticker": ["A", "B", "A"], "date": [2, 1, 1], "x": [2.0, 5.0, 1.0]})
    >>> frame = prepare(bars)
    >>> frame.select(per_ticker(pl.col("x").cum_sum())).collect()["x"].to_list()
    [1.0, 3.0, 5.0]
    """
    return expr.over("ticker")


def segmented(kernel: Callable[..., np.ndarray], *columns: str, args: tuple = ()) -> pl.Expr:
    """A :mod:`~alphadag.features.kernels` kernel run down whole ``columns`` of a :func:`prepare`-d
    panel, restarting on each ticker's first row: ``kernel(*arrays, INDEX array, *args)``.

    The columns reach the kernel as Float64 numpy arrays with NaN for null, and the kernel's NaN
    come back as null. One pass over the sorted panel replaces a group-by-ticker window.

    >>> frame = prepare(pl.LazyFrame({"ticker": ["B", "A", "A"], "date": [1, 1, 2],
    ...                               "x": [5.0, 1.0, 2.0]}))
    >>> frame.select(segmented(kernels.cum_sum, "x")).collect()["x"].to_list()
    [1.0, 3.0, 5.0]
    """

    def apply(series: list[pl.Series]) -> pl.Series:
        *values, index = (s.to_numpy() for s in series)
        arrays = [np.asarray(v, dtype=np.float64) for v in values]
        return pl.Series(
            kernel(*arrays, index.astype(np.int64, copy=False), *args), nan_to_null=True
        )

    inputs = [pl.col(c).cast(pl.Float64) for c in columns]
    return pl.map_batches([*inputs, _row], apply, return_dtype=pl.Float64)


def prepare(bars: pl.LazyFrame) -> pl.LazyFrame:
    """Sort ``bars`` by ``(ticker, date)`` and add the per-ticker row number :data:`INDEX`.

    >>> bars = pl.LazyFrame({"ticker": ["B", "A", "A"], "date": [1, 2, 1]})
    >>> prepare(bars).collect().rows()
    [('A', 1, 0), ('A', 2, 1), ('B', 1, 0)]
    """
    # Sorting by the string column is the slow part of a two-key sort (~4x the rest): the sort
    # runs on one Int64 key instead, the ticker's rank among the sorted distinct tickers (a hash
    # join of a few hundred names) in the high 32 bits and the date's day number (|days| < 2**31)
    # in the low ones, which orders exactly as ``(ticker, date)``.
    code = "_ticker_code"
    tickers = bars.select(pl.col("ticker").unique()).sort("ticker").with_row_index(code)
    key = pl.col(code).cast(pl.Int64) * (1 << 32) + pl.col("date").to_physical().cast(pl.Int64)
    return (
        bars.join(tickers, on="ticker", how="left")
        .sort(key)
        .drop(code)
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).over("ticker").alias(INDEX))
    )


def parallel(*indicators: Stages) -> Stages:
    """Merge indicators stage by stage (their columns must not collide).

    >>> merged = parallel([{"a": pl.lit(1)}], [{"b": pl.lit(2)}, {"c": pl.col("b")}])
    >>> [sorted(stage) for stage in merged]
    [['a', 'b'], ['c']]
    """
    merged: Stages = []
    for stage_group in zip_longest(*indicators, fillvalue={}):
        stage: dict[str, pl.Expr] = {}
        for part in stage_group:
            clash = stage.keys() & part.keys()
            if clash:
                raise ValueError(f"indicators define the same column(s) {sorted(clash)}")
            stage.update(part)
        merged.append(stage)
    return merged


def then(*indicators: Stages) -> Stages:
    """Run indicators one after another: each starts once the previous one is complete.

    >>> len(then([{"a": pl.lit(1)}], [{"b": pl.col("a")}]))
    2
    """
    return [stage for indicator in indicators for stage in indicator]


def run(panel: pl.LazyFrame, indicators: Stages) -> pl.LazyFrame:
    """Apply ``indicators`` to a :func:`prepare`-d panel (one ``with_columns`` per stage)."""
    for stage in indicators:
        if stage:
            panel = panel.with_columns(expr.alias(name) for name, expr in stage.items())
    return panel


def evaluate(frame: pl.DataFrame, *indicators: Stages) -> pl.DataFrame:
    """Evaluate indicators on a small frame (``ticker`` defaults to one ticker, ``date`` to the
    row order): a convenience for examples and tests.

    >>> evaluate(pl.DataFrame({"close": [1.0, 2.0, 3.0]}), sma("close", 2, out="s"))["s"].to_list()
    [None, 1.5, 2.5]
    """
    if "ticker" not in frame.columns:
        frame = frame.with_columns(pl.lit("T").alias("ticker"))
    if "date" not in frame.columns:
        frame = frame.with_row_index("date")
    return run(prepare(frame.lazy()), parallel(*indicators)).drop(INDEX).collect()


def after(expr: pl.Expr, warmup: int) -> pl.Expr:
    """``expr`` from the ticker's row ``warmup`` on, null before.

    On the sorted panel, masking a stateless look-back over the whole column (a rolling min/max
    of ``n`` rows with ``warmup >= n - 1``, a ``shift(n)`` with ``warmup >= n``) keeps exactly
    the rows whose look-back lies inside the ticker.

    >>> frame = pl.DataFrame({"ticker": ["A", "A", "B"], "date": [1, 2, 1], "x": [1.0, 2.0, 9.0]})
    >>> prepared = prepare(frame.lazy())
    >>> prepared.select(after(pl.col("x").shift(1), 1)).collect()["x"].to_list()
    [None, 1.0, None]
    """
    return pl.when(_row >= warmup).then(expr)


def sma(x: str, n: int, *, out: str) -> Stages:
    """TA-Lib ``SMA(n)``: the mean of the last ``n`` values, first value at row ``n - 1``.

    >>> evaluate(pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), sma("x", 3, out="s"))["s"].to_list()
    [None, None, 2.0, 3.0]
    """
    return [{out: segmented(kernels.rolling_mean, x, args=(n,))}]


def seeded_ewm(x: str, *, alpha: float, window: int, seed_at: int, out: str) -> Stages:
    """A recursive average ``y[t] = y[t-1] + alpha * (x[t] - y[t-1])`` seeded the TA-Lib way.

    ``y`` starts at row ``seed_at`` with the mean of the ``window`` values of ``x`` ending there
    (TA-Lib's ``prevMA``) and is null before it and wherever ``x`` is null: one pass of
    :func:`alphadag.features.kernels.seeded_ewm` down the panel.

    Parameters
    ----------
    x:
        The input column (a price for an EMA, a gain or a true range for Wilder's average).
    alpha:
        The smoothing factor: ``2 / (n + 1)`` for an EMA, ``1 / n`` for Wilder's average.
    window:
        How many values the seeding simple mean covers (``window - 1 <= seed_at``).
    seed_at:
        The ticker row carrying the seed and the first output.
    out:
        The output column.

    >>> frame = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    >>> evaluate(frame, seeded_ewm("x", alpha=0.5, window=2, seed_at=1, out="y"))["y"].to_list()
    [None, 1.5, 2.25, 3.125]
    """
    if window - 1 > seed_at:
        raise ValueError(f"the seed window ({window}) does not fit before row {seed_at}")
    return [{out: segmented(kernels.seeded_ewm, x, args=(alpha, window, seed_at))}]


def ema(x: str, n: int, *, out: str) -> Stages:
    """TA-Lib ``EMA(n)``: ``k = 2 / (n + 1)``, seeded at row ``n - 1`` with ``SMA(n)``.

    >>> evaluate(pl.DataFrame({"x": [2.0, 4.0, 6.0, 8.0]}), ema("x", 3, out="e"))["e"].to_list()
    [None, None, 4.0, 6.0]
    """
    return seeded_ewm(x, alpha=2.0 / (n + 1), window=n, seed_at=n - 1, out=out)


def rsi(x: str, n: int, *, out: str) -> Stages:
    """TA-Lib ``RSI(n)``: Wilder-smoothed gains and losses, first value at row ``n``.

    The averages start from the simple mean of the first ``n`` gains (losses), rows ``1..n``,
    then follow Wilder's ``(prev * (n - 1) + new) / n``. ``RSI = 100 * gain / (gain + loss)``,
    and 0 where ``gain + loss`` is exactly zero (a flat stretch), as TA-Lib answers.

    >>> frame = pl.DataFrame({"x": [1.0, 2.0, 1.0, 2.0, 2.0]})
    >>> evaluate(frame, rsi("x", 2, out="r"))["r"].to_list()
    [None, None, 50.0, 75.0, 75.0]
    """
    gain, loss = f"_{out}__gain", f"_{out}__loss"
    avg_gain, avg_loss = f"_{out}__avg_gain", f"_{out}__avg_loss"
    # the change from the previous row of the same ticker (after(.., 1) drops the row whose
    # previous row belongs to another ticker): past data only
    change = after(pl.col(x) - pl.col(x).shift(1), 1)
    total = pl.col(avg_gain) + pl.col(avg_loss)
    ratio = pl.when(total > 0.0).then(100.0 * pl.col(avg_gain) / total).when(total == 0.0).then(0.0)
    return then(
        [
            {
                gain: pl.when(change > 0.0).then(change).when(change.is_not_null()).then(0.0),
                loss: pl.when(change < 0.0).then(-change).when(change.is_not_null()).then(0.0),
            }
        ],
        parallel(
            seeded_ewm(gain, alpha=1.0 / n, window=n, seed_at=n, out=avg_gain),
            seeded_ewm(loss, alpha=1.0 / n, window=n, seed_at=n, out=avg_loss),
        ),
        [{out: ratio}],
    )


def macd(x: str, fast: int, slow: int, signal: int, *, out: tuple[str, str, str]) -> Stages:
    """TA-Lib ``MACD(fast, slow, signal)`` into the columns ``out = (macd, signal, hist)``.

    TA-Lib seeds *both* EMAs on row ``slow - 1``: the slow one with the mean of rows
    ``0..slow-1``, the fast one with the mean of the ``fast`` rows ending there, so the fast EMA
    inside MACD is *not* the standalone ``EMA(fast)`` (which starts ``slow - fast`` rows
    earlier). The signal is an EMA of the MACD line seeded with the mean of its first ``signal``
    values, and all three outputs start at row ``slow + signal - 2`` (33 for 12/26/9).

    >>> frame = pl.DataFrame({"x": [1.0, 2.0, 4.0, 8.0, 16.0]})
    >>> out = evaluate(frame, macd("x", 2, 3, 2, out=("m", "s", "h")))
    >>> out.select(pl.col("m", "s", "h").round(6)).rows()[2:]
    [(None, None, None), (1.166667, 0.916667, 0.25), (2.194444, 1.768519, 0.425926)]
    """
    if not 1 < fast < slow or signal < 1:
        raise ValueError(
            f"MACD needs 1 < fast < slow and signal >= 1, got {fast}, {slow}, {signal}"
        )
    line_col, signal_col, hist_col = out
    prefix = f"_{line_col}"
    fast_ema, slow_ema, line, smooth = (f"{prefix}__{s}" for s in ("fast", "slow", "line", "sig"))
    seed_at = slow - 1
    start = slow - 1 + signal - 1
    return then(
        parallel(
            seeded_ewm(x, alpha=2.0 / (fast + 1), window=fast, seed_at=seed_at, out=fast_ema),
            seeded_ewm(x, alpha=2.0 / (slow + 1), window=slow, seed_at=seed_at, out=slow_ema),
        ),
        [{line: pl.col(fast_ema) - pl.col(slow_ema)}],
        seeded_ewm(line, alpha=2.0 / (signal + 1), window=signal, seed_at=start, out=smooth),
        [
            {
                line_col: after(pl.col(line), start),
                signal_col: pl.col(smooth),
                hist_col: pl.col(line) - pl.col(smooth),
            }
        ],
    )


def bbands(x: str, n: int, width: float, *, out: tuple[str, str, str]) -> Stages:
    """TA-Lib ``BBANDS(n, width, width, SMA)`` into ``out = (upper, middle, lower)``.

    The middle band is ``SMA(n)``; the bands add and subtract ``width`` times the *population*
    standard deviation (``ddof=0``) of the same ``n`` values. A flat window has zero deviation,
    so all three bands coincide.

    >>> frame = pl.DataFrame({"x": [1.0, 3.0, 1.0, 3.0]})
    >>> evaluate(frame, bbands("x", 2, 2.0, out=("u", "m", "l"))).select("u", "m", "l").row(3)
    (4.0, 2.0, 0.0)
    """
    upper, middle, lower = out
    deviation = f"_{middle}__dev"
    std = segmented(kernels.rolling_std, x, args=(n, 0))
    return [
        {middle: segmented(kernels.rolling_mean, x, args=(n,)), deviation: std * width},
        {
            upper: pl.col(middle) + pl.col(deviation),
            lower: pl.col(middle) - pl.col(deviation),
        },
    ]


def atr(high: str, low: str, close: str, n: int, *, out: str) -> Stages:
    """TA-Lib ``ATR(n)``: Wilder's average of the true range, first value at row ``n``.

    ``TRANGE`` is the greatest of ``high - low``, ``|prev close - high|`` and
    ``|prev close - low|`` (from row 1); the seed is the mean of the true ranges of rows
    ``1..n``, then ``atr = (prev * (n - 1) + tr) / n``.

    >>> frame = pl.DataFrame({"h": [2.0, 3.0, 4.0, 5.0], "l": [1.0, 1.0, 3.0, 3.0],
    ...                       "c": [1.5, 2.0, 3.5, 4.0]})
    >>> evaluate(frame, atr("h", "l", "c", 2, out="a"))["a"].to_list()
    [None, None, 2.0, 2.0]
    """
    tr = f"_{out}__tr"
    h, lo = pl.col(high), pl.col(low)
    # shift(1): the previous row's close; after(.., 1) drops it on a ticker's first row
    prev_close = after(pl.col(close).shift(1), 1)
    greatest = pl.max_horizontal(h - lo, (prev_close - h).abs(), (prev_close - lo).abs())
    complete = h.is_not_null() & lo.is_not_null() & prev_close.is_not_null()
    return then(
        [{tr: pl.when(complete).then(greatest)}],
        seeded_ewm(tr, alpha=1.0 / n, window=n, seed_at=n, out=out),
    )


def obv(close: str, volume: str, *, out: str) -> Stages:
    """TA-Lib ``OBV``: the *first row's volume*, plus (minus) each later volume when the close
    rises (falls); an unchanged close leaves it as is.

    OBV is a running total from the first row the series is given, so its level depends on
    where the series starts; its changes do not.

    >>> frame = pl.DataFrame({"c": [1.0, 2.0, 2.0, 1.0], "v": [5.0, 6.0, 7.0, 8.0]})
    >>> evaluate(frame, obv("c", "v", out="o"))["o"].to_list()
    [5.0, 11.0, 11.0, 3.0]
    """
    step = f"_{out}__step"
    # shift(1): the previous close of the same ticker (row 0 takes its own volume instead)
    direction = (pl.col(close) - pl.col(close).shift(1)).sign()
    v = pl.col(volume)
    return [
        {step: pl.when(_row == 0).then(v).otherwise(direction * v)},
        {out: pl.when(v.is_not_null()).then(segmented(kernels.cum_sum, step))},
    ]


def stoch(
    high: str,
    low: str,
    close: str,
    fastk: int,
    slowk: int,
    slowd: int,
    *,
    out: tuple[str, str],
) -> Stages:
    """TA-Lib ``STOCH(fastk, slowk, SMA, slowd, SMA)`` into ``out = (slow %K, slow %D)``.

    ``fast %K = (close - lowest low) / ((highest high - lowest low) / 100)`` over ``fastk`` rows
    (0 where the range is exactly zero), slow %K its ``SMA(slowk)``, slow %D the ``SMA(slowd)`` of
    slow %K. TA-Lib reports *both* lines only from row ``fastk + slowk + slowd - 3`` (17 for
    14/3/3), although slow %K exists ``slowd - 1`` rows earlier.

    >>> frame = pl.DataFrame({"h": [2.0, 4.0, 4.0, 6.0], "l": [1.0, 1.0, 2.0, 2.0],
    ...                       "c": [1.5, 3.0, 4.0, 5.0]})
    >>> out = evaluate(frame, stoch("h", "l", "c", 2, 1, 2, out=("k", "d")))
    >>> out.select(pl.col("k", "d").round(6)).rows()
    [(None, None), (None, None), (100.0, 83.333333), (75.0, 87.5)]
    """
    k_col, d_col = out
    fast_col, slow_col = f"_{k_col}__fast", f"_{k_col}__slow"
    start = fastk - 1 + slowk - 1 + slowd - 1
    return [
        {fast_col: segmented(kernels.stoch_fast_k, high, low, close, args=(fastk,))},
        {slow_col: segmented(kernels.rolling_mean, fast_col, args=(slowk,))},
        {
            k_col: after(pl.col(slow_col), start),
            d_col: after(segmented(kernels.rolling_mean, slow_col, args=(slowd,)), start),
        },
    ]
