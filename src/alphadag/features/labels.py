"""Forward-return labels: the ``labels`` table, kept apart from ``features`` by design.

A label at ``(ticker, t)`` is the log return from the close of ``t`` to the close ``h`` sessions
(rows of that ticker) later, so it deliberately looks ahead; it lives in its own table and this
package never joins it into the features. The last ``h`` rows of each ticker have no label yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from alphadag.features.compute import check_bars_frame

__all__ = ["DEFAULT_HORIZONS", "compute_labels", "label_columns", "labels_plan"]

DEFAULT_HORIZONS: tuple[int, ...] = (1, 5, 20)
"""The default label horizons, in sessions."""


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


def label_columns(horizons: Sequence[int] = DEFAULT_HORIZONS) -> tuple[str, ...]:
    """The label column names for ``horizons``.

    >>> label_columns((1, 5))
    ('fwd_ret_1d', 'fwd_ret_5d')
    """
    return tuple(f"fwd_ret_{h}d" for h in _check_horizons(horizons))


def labels_plan(
    bars: pl.DataFrame | pl.LazyFrame, horizons: Sequence[int] = DEFAULT_HORIZONS
) -> pl.LazyFrame:
    """The lazy plan of :func:`compute_labels`.

    >>> import datetime as dt
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
    ...                      "close": [1.0, 2.0]})
    >>> labels_plan(bars, (1,)).collect()["fwd_ret_1d"].round(6).to_list()
    [0.693147, None]
    """
    hs = _check_horizons(horizons)
    lf = check_bars_frame(bars)
    close = pl.col("close").cast(pl.Float64)
    log_close = pl.when(close.is_finite() & (close > 0.0)).then(close).log()
    return (
        lf.select(pl.col("ticker").cast(pl.String), "date", log_close.alias("_log_close"))
        .sort("ticker", "date")
        .with_columns(
            # shift(-h) reads h rows LATER: intentional look-ahead, this is the label (target);
            # it stays in the labels table and is never joined into features
            (pl.col("_log_close").shift(-h) - pl.col("_log_close"))
            .over("ticker", order_by="date")
            .alias(f"fwd_ret_{h}d")
            for h in hs
        )
        .drop("_log_close")
    )


def compute_labels(
    bars: pl.DataFrame | pl.LazyFrame, horizons: Sequence[int] = DEFAULT_HORIZONS
) -> pl.DataFrame:
    """Forward log returns ``fwd_ret_{h}d = ln(close[t+h] / close[t])`` per ticker.

    ``t + h`` counts the ticker's rows in date order (a missing session is absent); the last
    ``h`` rows of each ticker are null. Output: ``ticker``, ``date``, one column per horizon,
    sorted by ``(ticker, date)``.

    Parameters
    ----------
    bars:
        ``bars`` with at least ``ticker``, ``date`` and ``close`` (DataFrame or LazyFrame).
    horizons:
        Distinct positive horizons in sessions; default ``(1, 5, 20)``.

    >>> import datetime as dt
    >>> bars = pl.DataFrame({"ticker": "A", "date": [dt.date(2024, 1, d) for d in (2, 3, 4)],
    ...                      "close": [100.0, 110.0, 121.0]})
    >>> labels = compute_labels(bars, horizons=(1, 2))
    >>> labels.select(pl.col("fwd_ret_1d", "fwd_ret_2d").round(6)).rows()
    [(0.09531, 0.19062), (0.09531, None), (None, None)]
    """
    # The in-memory engine: streaming chunk boundaries depend on the frame's height and can change
    # the last bit of a value, which would break byte-identical partitions.
    return labels_plan(bars, horizons).collect(engine="in-memory")
