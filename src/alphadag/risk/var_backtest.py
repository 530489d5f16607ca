"""Backtests of one-day VaR forecasts: breaches, Kupiec's and Christoffersen's likelihood-ratio tests.

A VaR forecast made at the close of ``t`` (a positive loss fraction, :mod:`alphadag.risk.var`) is
*breached* when the next day's simple return is a larger loss: ``r_{t+1} < -VaR_t``, where
``r_{t+1} = close_{t+1} / close_t - 1`` over the ticker's next bar (a missing session makes the
return span the gap, as in :mod:`alphadag.risk.volatility`). Under a correct VaR at level ``c`` the
breach indicators are i.i.d. Bernoulli(``p = 1 - c``). Three likelihood-ratio tests check that:

- **Kupiec's proportion of failures** (unconditional coverage): with ``x`` breaches in ``n``
  forecasts, ``LR_pof = -2 [ (n - x) log(1 - p) + x log p - (n - x) log(1 - x/n) - x log(x/n) ]``,
  asymptotically chi2(1).
- **Christoffersen's independence** test: with ``n_ij`` the number of days in state ``j`` after a
  day in state ``i`` (1 = breach), ``pi_01 = n_01 / (n_00 + n_01)``, ``pi_11 = n_11 / (n_10 +
  n_11)`` and ``pi = (n_01 + n_11) / (n_00 + n_01 + n_10 + n_11)``, ``LR_ind = -2 [ L(pi) -
  L(pi_01, pi_11) ]`` with ``L(pi) = (n_00 + n_10) log(1 - pi) + (n_01 + n_11) log pi`` and
  ``L(pi_01, pi_11) = n_00 log(1 - pi_01) + n_01 log pi_01 + n_10 log(1 - pi_11) + n_11 log
  pi_11``, asymptotically chi2(1): breaches that cluster (a breach makes the next one likelier)
  give ``pi_11 > pi_01``.
- **Conditional coverage**: ``LR_cc = LR_pof + LR_ind``, asymptotically chi2(2) (the common
  form, with Kupiec's statistic over all ``n`` forecasts rather than the ``n - 1`` after the
  first; the difference is one observation).

Conventions, for the edge cases: ``0 * log 0 = 0`` everywhere (``scipy.special.xlogy``), so no
breaches (``x = 0``) gives ``LR_pof = -2 n log(1 - p)`` and all breaches ``LR_pof = -2 n log p``;
a transition row with no days (``n_10 + n_11 = 0``: no breach is ever followed by another
forecast) contributes nothing and ``LR_ind`` is then 0 (no evidence of clustering, p-value 1).
A statistic is clipped at 0 from below (rounding can make an exact 0 a hair negative).

**Pooling across tickers.** The overall figures treat every (ticker, date) forecast as one
observation: ``n`` and ``x`` are summed over tickers for Kupiec, and the transition counts are
counted *within* each ticker's own date-ordered series (consecutive forecasts of one ticker;
a ticker's last forecast and the next ticker's first are never a transition) and then summed
across tickers, which is the independence test of the pooled Markov chain with one ``pi_01`` and
one ``pi_11`` for every ticker. Both tests assume the tickers' breach series independent of each
other. They are not: a market-wide crash breaches many tickers on the same day, so the pooled
p-values are too small (the effective sample is smaller than ``n``); read them together with the
per-ticker and per-year figures (:func:`coverage_table` ``by=``). Rolling figures (per calendar
year of the forecast date) count transitions within each (ticker, year) series.

**Small samples.** Kupiec's statistic depends on ``x ~ Binomial(n, p)`` only, and its chi2 size is
close to nominal from a few hundred forecasts (0.051 at ``n = 1000, p = 0.05``; exact, from the
binomial). ``LR_ind`` needs a few expected ``n_11`` (``n p^2``): in simulations of i.i.d.
Bernoulli(0.05) breaches its 5% test rejected about 2% of the time at ``n = 250`` and 8% at
``n = 1000``, and 5% from ``n = 10,000`` on; one ticker-year is too short for it to mean much.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
from scipy import stats
from scipy.special import xlogy

from alphadag.risk._checks import check_level

__all__ = [
    "BREACH_SCHEMA",
    "COVERAGE_COLUMNS",
    "CoverageTest",
    "breaches",
    "christoffersen_ind",
    "coverage_table",
    "coverage_test",
    "kupiec_pof",
    "transition_counts",
]

BREACH_SCHEMA: dict[str, type[pl.DataType]] = {
    "ticker": pl.String,
    "date": pl.Date,
    "realised_date": pl.Date,
    "level": pl.Float64,
    "var": pl.Float64,
    "ret": pl.Float64,
    "breach": pl.Boolean,
}
"""Columns of :func:`breaches`, in order: one row per (ticker, forecast date, level)."""


@dataclass(frozen=True, slots=True)
class CoverageTest:
    """Kupiec, Christoffersen and conditional-coverage tests of one breach sample at one level.

    ``n`` forecasts, ``breaches`` of them breached, ``rate = breaches / n`` against ``nominal = 1
    - level``; ``n00 .. n11`` the pooled transition counts; ``lr_*`` the statistics and ``p_*``
    their chi2 p-values (``pof`` and ``ind``: 1 degree of freedom, ``cc``: 2).
    """

    level: float
    n: int
    breaches: int
    rate: float
    nominal: float
    lr_pof: float
    p_pof: float
    lr_ind: float
    p_ind: float
    lr_cc: float
    p_cc: float
    n00: int
    n01: int
    n10: int
    n11: int

    def passes(self, alpha: float = 0.05) -> bool:
        """Neither Kupiec nor Christoffersen's independence test rejects at ``alpha``."""
        return self.p_pof >= alpha and self.p_ind >= alpha

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


COVERAGE_COLUMNS: tuple[str, ...] = tuple(CoverageTest.__dataclass_fields__)
"""Columns of :func:`coverage_table` after its ``by`` columns."""


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer count, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def _loglik(zeros: int, ones: int) -> float:
    """Bernoulli log-likelihood at the MLE ``ones / (zeros + ones)``; 0 for an empty row."""
    total = zeros + ones
    if total == 0:
        return 0.0
    return float(xlogy(zeros, zeros / total) + xlogy(ones, ones / total))


def kupiec_pof(n: int, x: int, p: float) -> tuple[float, float]:
    """Kupiec's proportion-of-failures statistic and its chi2(1) p-value.

    Parameters
    ----------
    n
        Number of forecasts, ``>= 1``.
    x
        Number of breaches, ``0 <= x <= n``.
    p
        Nominal breach probability ``1 - level`` in (0, 1), e.g. 0.05 for a 95% VaR.

    Returns
    -------
    tuple of float
        ``(LR_pof, p_value)``; ``LR_pof = 0`` (p-value 1) exactly when ``x / n == p``.

    >>> lr, pv = kupiec_pof(100, 10, 0.05)   # 10 breaches where 5 were expected
    >>> round(lr, 4), round(pv, 4)
    (4.1308, 0.0421)
    >>> kupiec_pof(100, 5, 0.05)
    (0.0, 1.0)
    """
    n, x = _count(n, "n"), _count(x, "x")
    p = check_level(p, "p")
    if n == 0:
        raise ValueError("n is 0: there are no forecasts to test")
    if x > n:
        raise ValueError(f"x ({x}) cannot exceed n ({n})")
    if x / n == p:  # the MLE is the null: exactly 0, not the rounding noise of two logs
        return 0.0, 1.0
    null = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    lr = max(0.0, float(-2.0 * (null - _loglik(n - x, x))))
    return lr, float(stats.chi2.sf(lr, 1))


def transition_counts(breach: Sequence[bool] | np.ndarray) -> tuple[int, int, int, int]:
    """``(n00, n01, n10, n11)`` of one date-ordered breach series (``n_ij``: ``i`` then ``j``).

    >>> transition_counts([False, True, True, False, False])
    (1, 1, 1, 1)
    """
    b = np.asarray(breach, dtype=bool)
    if b.ndim != 1:
        raise ValueError(f"breach must be 1-d, got shape {b.shape}")
    prev, nxt = b[:-1], b[1:]
    return (
        int(np.sum(~prev & ~nxt)),
        int(np.sum(~prev & nxt)),
        int(np.sum(prev & ~nxt)),
        int(np.sum(prev & nxt)),
    )


def christoffersen_ind(n00: int, n01: int, n10: int, n11: int) -> tuple[float, float]:
    """Christoffersen's independence statistic from the 2x2 transition counts, chi2(1) p-value.

    Returns ``(0.0, 1.0)`` when there are no transitions, when no breach is followed by another
    forecast (``n10 + n11 = 0``) and whenever ``pi_01 == pi_11``.

    >>> lr, pv = christoffersen_ind(80, 10, 5, 5)   # a breach is followed by one half the time
    >>> round(lr, 4), round(pv, 5)
    (7.8891, 0.00497)
    >>> christoffersen_ind(81, 9, 9, 1)   # pi_01 = pi_11 = 0.1: no clustering
    (0.0, 1.0)
    """
    n00, n01 = _count(n00, "n00"), _count(n01, "n01")
    n10, n11 = _count(n10, "n10"), _count(n11, "n11")
    null = _loglik(n00 + n10, n01 + n11)
    alt = _loglik(n00, n01) + _loglik(n10, n11)
    lr = max(0.0, -2.0 * (null - alt))
    if lr < 1e-12:  # the MLEs coincide: rounding noise, not evidence
        lr = 0.0
    return lr, float(stats.chi2.sf(lr, 1))


def _test(level: float, n: int, x: int, counts: tuple[int, int, int, int]) -> CoverageTest:
    p = round(1.0 - level, 12)  # 0.05, not 1 - 0.95 = 0.050000000000000044
    lr_pof, p_pof = kupiec_pof(n, x, p)
    lr_ind, p_ind = christoffersen_ind(*counts)
    lr_cc = lr_pof + lr_ind
    return CoverageTest(
        level=level,
        n=n,
        breaches=x,
        rate=x / n,
        nominal=p,
        lr_pof=lr_pof,
        p_pof=p_pof,
        lr_ind=lr_ind,
        p_ind=p_ind,
        lr_cc=lr_cc,
        p_cc=float(stats.chi2.sf(lr_cc, 2)),
        n00=counts[0],
        n01=counts[1],
        n10=counts[2],
        n11=counts[3],
    )


def coverage_test(
    series: Sequence[bool] | np.ndarray | Sequence[Sequence[bool] | np.ndarray], level: float
) -> CoverageTest:
    """The three tests of one breach series, or of several pooled (one per ticker).

    Parameters
    ----------
    series
        One date-ordered sequence of breach indicators, or a list of them (one per ticker):
        breaches and forecasts are summed, transitions counted within each series and summed.
    level
        The VaR's confidence level (0.95: nominal breach rate 0.05).

    >>> t = coverage_test([[False] * 19 + [True], [True, True] + [False] * 18], 0.95)
    >>> t.n, t.breaches, (t.n00, t.n01, t.n10, t.n11)
    (40, 3, (35, 1, 1, 1))
    >>> round(t.p_pof, 3), round(t.p_ind, 3)   # 3 of 40 is fine; a breach after a breach is not
    (0.498, 0.053)
    """
    level = check_level(level)
    if isinstance(series, np.ndarray):
        if series.ndim not in (1, 2):
            raise ValueError(f"series must be 1-d or 2-d, got shape {series.shape}")
        arrays = [series.astype(bool)] if series.ndim == 1 else [row.astype(bool) for row in series]
    elif all(isinstance(v, bool | np.bool_ | int | np.integer) for v in series):
        arrays = [np.asarray(series, dtype=bool)]
    else:
        arrays = [np.asarray(s, dtype=bool) for s in series]  # type: ignore[union-attr]
    n = sum(a.size for a in arrays)
    if n == 0:
        raise ValueError("series is empty: there are no forecasts to test")
    x = int(sum(int(a.sum()) for a in arrays))
    counts = np.sum([transition_counts(a) for a in arrays], axis=0)
    return _test(level, n, x, tuple(int(c) for c in counts))  # type: ignore[arg-type]


def breaches(
    forecasts: pl.DataFrame | pl.LazyFrame,
    bars: pl.DataFrame | pl.LazyFrame,
    *,
    levels: Sequence[float] = (0.95, 0.99),
) -> pl.DataFrame:
    """Each VaR forecast beside the next day's realised return and whether it was breached.

    Parameters
    ----------
    forecasts
        ``ticker``, ``date`` and one column ``var_<NN>`` per level (``var_95`` for 0.95), positive
        losses known at the close of ``date`` (the predictions contract has ``var_95``).
        Nulls (warm-up) are dropped.
    bars
        The bars contract (``ticker``, ``date``, ``close``), covering the forecast dates and the
        bar after each.
    levels
        Confidence levels to test; each needs its ``var_<NN>`` column.

    Returns
    -------
    polars.DataFrame
        :data:`BREACH_SCHEMA`: ``ticker, date`` (forecast), ``realised_date`` (the ticker's next
        bar), ``level``, ``var``, ``ret`` (the simple return from ``date`` to ``realised_date``)
        and ``breach = ret < -var``, sorted by level, ticker, date. A forecast whose next bar has
        not arrived (or whose date has no bar) is left out: it has not matured.

    >>> import datetime as dt
    >>> days = [dt.date(2024, 1, d) for d in (2, 3, 4, 5)]
    >>> bars = pl.DataFrame({"ticker": "A", "date": days, "close": [100.0, 97.0, 96.0, 97.0]})
    >>> fc = pl.DataFrame({"ticker": "A", "date": days, "var_95": [0.02, 0.02, 0.02, 0.02]})
    >>> b = breaches(fc, bars, levels=[0.95])   # returns -3%, -1%, +1%; the last has not matured
    >>> b["breach"].to_list(), b["realised_date"].dt.day().to_list()
    ([True, False, False], [3, 4, 5])
    """
    levels = [check_level(level) for level in levels]
    if not levels:
        raise ValueError("levels is empty: pass e.g. (0.95, 0.99)")
    columns = {level: f"var_{round(level * 100):d}" for level in levels}
    have = forecasts.collect_schema().names()
    for col in ("ticker", "date", *columns.values()):
        if col not in have:
            raise ValueError(
                f"forecasts lack column {col!r} (need ticker, date and var_NN per level; "
                f"the served predictions carry var_95 only)"
            )
    for col in ("ticker", "date", "close"):
        if col not in bars.collect_schema().names():
            raise ValueError(f"bars lack column {col!r} (bars contract: ticker, date, close)")
    nxt = (
        bars.lazy()
        .select(pl.col("ticker").cast(pl.String), "date", pl.col("close").cast(pl.Float64))
        .with_columns(
            # shift(-1) looks one bar *ahead*: this is the outcome being tested, never an input
            pl.col("date").shift(-1).over("ticker", order_by="date").alias("realised_date"),
            (pl.col("close").shift(-1) / pl.col("close") - 1.0)
            .over("ticker", order_by="date")
            .alias("ret"),
        )
        .drop("close")
    )
    fc = forecasts.lazy().with_columns(pl.col("ticker").cast(pl.String))
    long = pl.concat(
        [
            fc.select(
                "ticker",
                "date",
                pl.lit(level, dtype=pl.Float64).alias("level"),
                pl.col(col).cast(pl.Float64).alias("var"),
            )
            for level, col in columns.items()
        ]
    )
    return (
        long.join(nxt, on=["ticker", "date"], how="inner")
        .drop_nulls(["var", "ret"])
        .with_columns((pl.col("ret") < -pl.col("var")).alias("breach"))
        .select([pl.col(c).cast(t) for c, t in BREACH_SCHEMA.items()])
        .sort("level", "ticker", "date")
        .collect()
    )


def coverage_table(breach_rows: pl.DataFrame, *, by: Sequence[str | pl.Expr] = ()) -> pl.DataFrame:
    """:func:`coverage_test` per level (and per ``by`` group) of a :func:`breaches` frame.

    Parameters
    ----------
    breach_rows
        Rows of :data:`BREACH_SCHEMA` (at least ``ticker, date, level, breach``).
    by
        Extra grouping columns or expressions, e.g. ``pl.col("date").dt.year().alias("year")``
        for the rolling per-year figures or ``"ticker"`` for one test per ticker. Transitions
        are always counted within one ticker's series inside a group.

    Returns
    -------
    polars.DataFrame
        The ``by`` columns, then :data:`COVERAGE_COLUMNS` (``level, n, breaches, rate, nominal,
        lr_pof, p_pof, lr_ind, p_ind, lr_cc, p_cc, n00, n01, n10, n11``), sorted by the ``by``
        columns and level. An empty input gives an empty table.

    >>> import datetime as dt
    >>> rows = pl.DataFrame({"ticker": ["A"] * 4 + ["B"] * 4, "level": 0.95,
    ...                      "date": [dt.date(2024, 1, d) for d in (2, 3, 4, 5)] * 2,
    ...                      "breach": [True, True, False, False, False, False, False, True]})
    >>> coverage_table(rows).select("n", "breaches", "n00", "n01", "n10", "n11").row(0)
    (8, 3, 3, 1, 1, 1)
    """
    for col in ("ticker", "date", "level", "breach"):
        if col not in breach_rows.columns:
            raise ValueError(f"breach_rows lack column {col!r}: build them with breaches()")
    keyed = breach_rows.with_columns(*[pl.col(b) if isinstance(b, str) else b for b in by])
    keys = [b if isinstance(b, str) else b.meta.output_name() for b in by]
    prev = pl.col("breach").shift(1).over([*keys, "level", "ticker"], order_by="date")
    cur = pl.col("breach")
    per_series = keyed.group_by([*keys, "level"]).agg(
        pl.len().alias("n"),
        cur.sum().alias("x"),
        (~prev & ~cur).sum().alias("n00"),
        (~prev & cur).sum().alias("n01"),
        (prev & ~cur).sum().alias("n10"),
        (prev & cur).sum().alias("n11"),
    )
    rows = [
        {k: r[k] for k in keys}
        | _test(r["level"], r["n"], r["x"], (r["n00"], r["n01"], r["n10"], r["n11"])).to_dict()
        for r in per_series.iter_rows(named=True)
    ]
    schema = {k: keyed.schema[k] for k in keys} | {
        c: pl.Int64 if c in ("n", "breaches", "n00", "n01", "n10", "n11") else pl.Float64
        for c in COVERAGE_COLUMNS
    }
    return pl.DataFrame(rows, schema=schema).sort([*keys, "level"])
