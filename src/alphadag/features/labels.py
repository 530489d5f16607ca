"""Forward-return labels: the ``labels`` table, kept apart from ``features`` by design.

A label at ``(ticker, t)`` is the log return from the close of ``t`` to the close ``h`` sessions
(rows of that ticker) later, so it deliberately looks ahead; it lives in its own table and this
package never joins it into the features. The last ``h`` rows of each ticker have no label yet.

Two options for the training target, both pure and neither changing the stored ``labels`` table:

- :func:`align_to_execution` (``lag = 1``): the label of ``t`` becomes the return from the close
  of ``t + 1`` to the close of ``t + 1 + h``, the window a strategy that trades on the day after
  the signal actually holds (a prediction made from the close of ``t`` cannot fill at that close).
  It is the stored ``fwd_ret_{h}d`` of the ticker's next row, so the column name (the window
  length ``h``) is unchanged; ``compute_labels(bars, horizons, lag=1)`` computes the same directly.
  The label window then ends ``h + lag`` sessions after ``t``: the embargo must cover ``h + lag``.
- :func:`normalize_cross_section`: per date, the label demeaned (``"demean"``), standardised
  (``"zscore"``) or mapped to normal scores of its ranks (``"rank_gauss"``), so a model learns
  the cross-sectional ordering the signal trades rather than the market's common move. Per-date
  Pearson IC is unchanged by ``demean``/``zscore`` and rank IC by all three.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from alphadag.features.compute import check_bars_frame

__all__ = [
    "DEFAULT_HORIZONS",
    "LABEL_NORMALIZATIONS",
    "align_to_execution",
    "compute_labels",
    "is_label_column",
    "label_column",
    "label_columns",
    "label_horizon",
    "labels_plan",
    "normalize_cross_section",
]

DEFAULT_HORIZONS: tuple[int, ...] = (1, 5, 20)
"""The default label horizons, in sessions."""

LABEL_NORMALIZATIONS: tuple[str, ...] = ("none", "demean", "zscore", "rank_gauss")
"""The per-date cross-sectional label normalisations of :func:`normalize_cross_section`."""


def _check_lag(lag: object) -> int:
    if isinstance(lag, bool) or not isinstance(lag, int) or lag < 0:
        raise ValueError(f"lag must be a non-negative integer number of sessions, got {lag!r}")
    return lag


def _check_horizons(horizons: Sequence[int]) -> tuple[int, ...]:
    if isinstance(horizons, int | str) or not isinstance(horizons, Sequence):
        raise TypeError(f"horizons must be a sequence of positive integers, got {horizons!r}")
    if not horizons:
        raise ValueError("horizons must name at least one horizon, e.g. (1, 5, 20)")
    for h in horizons:
        if isinstance(h, bool) or not isinstance(h, int) or h < 1:
            raise ValueError(f"every horizon must be a positive integer, got {h!r} in {horizons!r}")
    if len(set(horizons)) != len(horizons):
        raise ValueError(f"horizons must be distinct, got {horizons!r}")
    return tuple(horizons)


LABEL_PREFIX = "fwd_ret_"
"""Every column whose name starts with this is a label (``fwd_ret_{h}d``), never a feature."""


def label_column(horizon: int) -> str:
    """The label column for ``horizon`` sessions: ``fwd_ret_{horizon}d``.

    The one place that writes the label naming convention; :func:`label_horizon` reads it.

    >>> label_column(5)
    'fwd_ret_5d'
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer number of sessions, got {horizon!r}")
    return f"{LABEL_PREFIX}{horizon}d"


def label_horizon(name: str) -> int | None:
    """The horizon in sessions of label column ``name``, or ``None`` if it is not one.

    >>> label_horizon("fwd_ret_20d"), label_horizon("rvol_20"), label_horizon("fwd_ret_0d")
    (20, None, None)
    """
    if name.startswith(LABEL_PREFIX) and name.endswith("d"):
        digits = name[len(LABEL_PREFIX) : -1]
        if digits.isdigit() and int(digits) > 0:
            return int(digits)
    return None


def is_label_column(name: str) -> bool:
    """Whether ``name`` is in the label namespace (starts with ``fwd_ret_``): never a feature.

    >>> is_label_column("fwd_ret_5d"), is_label_column("ret_5d")
    (True, False)
    """
    return name.startswith(LABEL_PREFIX)


def label_columns(horizons: Sequence[int] = DEFAULT_HORIZONS) -> tuple[str, ...]:
    """The label column names for ``horizons``.

    >>> label_columns((1, 5))
    ('fwd_ret_1d', 'fwd_ret_5d')
    """
    return tuple(label_column(h) for h in _check_horizons(horizons))


def labels_plan(
    bars: pl.DataFrame | pl.LazyFrame,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    *,
    lag: int = 0,
) -> pl.LazyFrame:
    """The lazy plan of :func:`compute_labels`.

    >>> import datetime as dt
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
    ...                      "close": [1.0, 2.0]})
    >>> labels_plan(bars, (1,)).collect()["fwd_ret_1d"].round(6).to_list()
    [0.693147, None]
    """
    hs = _check_horizons(horizons)
    lag = _check_lag(lag)
    lf = check_bars_frame(bars)
    close = pl.col("close").cast(pl.Float64)
    log_close = pl.when(close.is_finite() & (close > 0.0)).then(close).log()
    return (
        lf.select(pl.col("ticker").cast(pl.String), "date", log_close.alias("_log_close"))
        .sort("ticker", "date")
        .with_columns(
            # shift(-h) reads h rows LATER: intentional look-ahead, this is the label (target);
            # it stays in the labels table and is never joined into features
            (pl.col("_log_close").shift(-h - lag) - pl.col("_log_close").shift(-lag))
            .over("ticker", order_by="date")
            .alias(label_column(h))
            for h in hs
        )
        .drop("_log_close")
    )


def compute_labels(
    bars: pl.DataFrame | pl.LazyFrame,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    *,
    lag: int = 0,
) -> pl.DataFrame:
    """Forward log returns ``fwd_ret_{h}d = ln(close[t+lag+h] / close[t+lag])`` per ticker.

    ``t + h`` counts the ticker's rows in date order (a missing session is absent); the last
    ``h + lag`` rows of each ticker are null. Output: ``ticker``, ``date``, one column per
    horizon, sorted by ``(ticker, date)``. ``lag = 0`` (the default, the ``labels`` table) starts
    the window at the close of ``t``; ``lag = 1`` is the execution-aligned label (see the module
    docstring and :func:`align_to_execution`).

    Parameters
    ----------
    bars:
        ``bars`` with at least ``ticker``, ``date`` and ``close`` (DataFrame or LazyFrame).
    horizons:
        Distinct positive horizons in sessions; default ``(1, 5, 20)``.
    lag:
        Sessions between ``t`` and the start of the label window (0 or more).

    >>> import datetime as dt
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, d) for d in (2, 3, 4)],
    ...                      "close": [100.0, 110.0, 121.0]})
    >>> labels = compute_labels(bars, horizons=(1, 2))
    >>> labels.select(pl.col("fwd_ret_1d", "fwd_ret_2d").round(6)).rows()
    [(0.09531, 0.19062), (0.09531, None), (None, None)]
    """
    # The in-memory engine: streaming chunk boundaries depend on the frame's height and can change
    # the last bit of a value, which would break byte-identical partitions.
    return labels_plan(bars, horizons, lag=lag).collect(engine="in-memory")


def align_to_execution(
    labels: pl.DataFrame | pl.LazyFrame, lag: int = 1, *, columns: Sequence[str] | None = None
) -> pl.LazyFrame:
    """The ``labels`` table with each label moved ``lag`` rows earlier within its ticker.

    ``fwd_ret_{h}d`` at ``(ticker, t)`` becomes the stored value of that ticker's row ``lag``
    rows later: ``ln(close[t+lag+h] / close[t+lag])``, equal to ``compute_labels(bars, lag=lag)``
    when ``labels`` holds every row of the ticker. ``columns`` defaults to every ``fwd_ret_*``
    column; other columns pass through. Rows keep their ``(ticker, date)``; the last ``lag``
    rows of a ticker get null.

    >>> import datetime as dt
    >>> labels = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, d) for d in (2, 3, 4)],
    ...                        "fwd_ret_1d": [0.1, 0.2, None]})
    >>> align_to_execution(labels).collect()["fwd_ret_1d"].to_list()
    [0.2, None, None]
    """
    lag = _check_lag(lag)
    if isinstance(labels, pl.DataFrame):
        labels = labels.lazy()
    if not isinstance(labels, pl.LazyFrame):
        raise TypeError(f"labels must be a polars DataFrame or LazyFrame, got {type(labels)}")
    schema = labels.collect_schema()
    cols = [c for c in schema if is_label_column(c)] if columns is None else list(columns)
    missing = [c for c in ("ticker", "date", *cols) if c not in schema]
    if missing:
        raise ValueError(f"labels lack column(s) {missing}; got {list(schema)}")
    if lag == 0:
        return labels
    # shift(-lag) reads lag rows LATER: intentional, this is the target, never a feature
    return labels.with_columns(
        pl.col(c).shift(-lag).over("ticker", order_by="date").alias(c) for c in cols
    )


def normalize_cross_section(
    frame: pl.DataFrame | pl.LazyFrame, label: str, method: str, *, by: str = "date"
) -> pl.LazyFrame:
    """``label`` normalised across the rows of each ``by`` value (each date).

    ``"none"``: unchanged. ``"demean"``: minus the date's mean. ``"zscore"``: demeaned and
    divided by the date's population standard deviation (0 for a date with one row or no
    dispersion beyond rounding). ``"rank_gauss"``: the normal quantile of ``rank / (n + 1)`` (average ranks,
    ``n`` labelled rows that date; van der Waerden scores, 0 for a single row). Null labels stay
    null and do not count. Normalise the rows the model trains on, after any filtering: the
    date's mean is then a mean of rows in the same segment.

    >>> import datetime as dt
    >>> f = pl.DataFrame({"date": [dt.date(2024, 1, 2)] * 3, "y": [0.01, 0.02, 0.06]})
    >>> normalize_cross_section(f, "y", "demean").collect()["y"].round(6).to_list()
    [-0.02, -0.01, 0.03]
    >>> normalize_cross_section(f, "y", "rank_gauss").collect()["y"].round(4).to_list()
    [-0.6745, 0.0, 0.6745]
    """
    if method not in LABEL_NORMALIZATIONS:
        raise ValueError(f"method must be one of {LABEL_NORMALIZATIONS}, got {method!r}")
    lf = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    if not isinstance(lf, pl.LazyFrame):
        raise TypeError(f"frame must be a polars DataFrame or LazyFrame, got {type(frame)}")
    if method == "none":
        return lf
    y = pl.col(label).cast(pl.Float64)
    centred = y - y.mean().over(by)
    if method == "demean":
        out = centred
    elif method == "zscore":
        std = y.std(ddof=0).over(by)
        # a std below 1e-12 of the date's largest |label| is rounding noise: no dispersion
        flat = std <= 1e-12 * y.abs().max().over(by)
        out = pl.when(y.is_null()).then(None).when(flat).then(0.0).otherwise(centred / std)
    else:  # rank_gauss
        from scipy.special import ndtri

        share = y.rank("average").over(by) / (y.count().over(by) + 1)
        out = share.map_batches(
            lambda s: pl.Series(ndtri(s.to_numpy()), nan_to_null=True), return_dtype=pl.Float64
        )
    return lf.with_columns(out.alias(label))
