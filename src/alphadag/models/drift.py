"""Feature drift by the population stability index (PSI), against a model's training data.

At training time :func:`psi_reference` bins each feature of the train segment at its deciles
(``bins`` quantile bins; the outer bins are open-ended) and records each bin's share of rows; the
frame is logged with the model (``drift/feature_reference.parquet``). At serving time
:func:`psi` puts a session's rows into the same bins and sums, per feature,
``(a - e) * ln(a / e)`` over the bins, with expected shares ``e`` and actual shares ``a`` floored at
``eps`` so that an empty bin does not give an infinite index. The usual reading: below 0.1 stable,
0.1-0.25 moderate shift, above 0.25 a shift worth a look. Nulls (warm-up) are left out on both
sides; a feature with no non-null value in the session gets NaN.

Note that one session of a small universe is few rows: the index of 20 rows is noisy, and price-
level features (``sma_*``, ``bb_*``, ``obv``) drift by construction as prices trend, so the check
that uses this is a warning, with its threshold in config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

__all__ = ["REFERENCE_SCHEMA", "psi", "psi_reference"]

REFERENCE_SCHEMA = {
    "feature": pl.String,
    "bin": pl.Int64,
    "upper": pl.Float64,
    "share": pl.Float64,
}
"""Columns of a PSI reference: bin ``i`` holds values ``<= upper`` (the last bin: ``+inf``)."""


def psi_reference(frame: pl.DataFrame, columns: Sequence[str], *, bins: int = 10) -> pl.DataFrame:
    """Quantile bins and their shares of rows, per feature (see the module docstring).

    >>> f = pl.DataFrame({"x": [float(i) for i in range(100)]})
    >>> ref = psi_reference(f, ["x"], bins=4)
    >>> ref["share"].to_list(), ref["upper"].to_list()[:3]
    ([0.25, 0.25, 0.25, 0.25], [24.0, 49.0, 74.0])
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    rows: list[tuple[str, int, float, float]] = []
    for col in columns:
        if col not in frame.columns:
            raise ValueError(f"frame lacks feature column {col!r}")
        x = frame.get_column(col).cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
        if x.size == 0:
            continue
        cuts = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1], method="lower"))
        uppers = [*cuts.tolist(), math.inf]
        counts = np.bincount(np.searchsorted(cuts, x, side="left"), minlength=len(uppers))
        rows += [
            (col, i, float(u), float(c) / x.size)
            for i, (u, c) in enumerate(zip(uppers, counts, strict=True))
        ]
    return pl.DataFrame(rows, schema=REFERENCE_SCHEMA, orient="row")


def psi(reference: pl.DataFrame, frame: pl.DataFrame, *, eps: float = 1e-4) -> dict[str, float]:
    """PSI of each reference feature in ``frame`` (NaN where ``frame`` has no value of it).

    >>> ref = psi_reference(pl.DataFrame({"x": [float(i) for i in range(100)]}), ["x"], bins=4)
    >>> round(psi(ref, pl.DataFrame({"x": [float(i) for i in range(100)]}))["x"], 12)
    0.0
    >>> psi(ref, pl.DataFrame({"x": [200.0] * 10}))["x"] > 1.0
    True
    """
    out: dict[str, float] = {}
    for (feature,), group in reference.sort("feature", "bin").group_by(
        "feature", maintain_order=True
    ):
        if feature not in frame.columns:
            raise ValueError(f"frame lacks feature column {feature!r} of the drift reference")
        x = frame.get_column(str(feature)).cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
        if x.size == 0:
            out[str(feature)] = math.nan
            continue
        cuts = group["upper"].to_numpy()[:-1]
        counts = np.bincount(np.searchsorted(cuts, x, side="left"), minlength=group.height)
        actual = np.maximum(counts / x.size, eps)
        expected = np.maximum(group["share"].to_numpy(), eps)
        out[str(feature)] = float(np.sum((actual - expected) * np.log(actual / expected)))
    return out
